//! Times the whole MTCNN detector per photo (median after a warm-up, faces read back to the host) on
//! the CPU and wgpu backends for several `max_side` caps, so the default cap is chosen by measurement.
//!
//!   bench_detect --weights DIR [--runs N] [--backends "cpu wgpu"] [--max-sides 0,1024,1600,2048]
//!                [--budget-s S] [--json OUT] [--ab] [--profile] PHOTOS...
//!   bench_detect --make-big OUT.png PHOTOS...   (the 6000×4000 test photo, tiled from PHOTOS)
//!
//! `--ab` times each case twice over, alternating run by run between burn's own ops (the host PNet
//! and the host convolution kernels switched off: backend label "… burn ops") and the default path.
//! `--profile` prints the detector's stages for one extra run per case.
//!
//! `scripts/bench-mtcnn.sh` runs this beside facenet-pytorch and prints the ratios.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use facecast::compute::Compute;
use facecast::pipeline::detect::photo::{DetectSettings, detect_photo};
use image::{RgbImage, imageops};
use serde::Serialize;

#[derive(Serialize)]
struct Row {
    photo: String,
    width: u32,
    height: u32,
    backend: String,
    max_side: u32,
    /// True when the cap is at least the photo's long side, so the photo is detected as it is.
    cap_inactive: bool,
    runs: usize,
    median_ms: f64,
    min_ms: f64,
    faces: usize,
    /// Face box heights as a percentage of the photo's height, largest face first.
    face_height_pct: Vec<f32>,
}

#[derive(Serialize)]
struct Report {
    tool: &'static str,
    rayon_threads: usize,
    profile: &'static str,
    rows: Vec<Row>,
}

struct Options {
    weights: PathBuf,
    runs: usize,
    backends: Vec<String>,
    max_sides: Vec<u32>,
    budget_s: f64,
    json: Option<PathBuf>,
    /// Alternate burn's ops and the host kernels run by run in one process (an A/B comparison).
    ab: bool,
    /// Print where each photo's time goes (the detector's profile scopes), once per case.
    profile: bool,
    photos: Vec<PathBuf>,
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--make-big") {
        let out = args.get(1).context("--make-big needs an output path")?;
        let photos: Vec<PathBuf> = args[2..].iter().map(PathBuf::from).collect();
        return make_big(Path::new(out), &photos);
    }
    let opts = parse(&args)?;
    let photos: Vec<(String, RgbImage)> = opts
        .photos
        .iter()
        .map(|p| {
            let img = image::open(p)
                .with_context(|| format!("reading {}", p.display()))?
                .to_rgb8();
            Ok((
                p.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                img,
            ))
        })
        .collect::<Result<_>>()?;

    let mut rows = Vec::new();
    for backend in &opts.backends {
        let compute = match backend.as_str() {
            "cpu" => Compute::cpu(),
            "wgpu" => match Compute::wgpu() {
                Ok(c) => c,
                Err(err) => {
                    eprintln!("skipping wgpu: {err}");
                    continue;
                }
            },
            other => bail!("unknown backend {other} (cpu or wgpu)"),
        };
        let label = compute.label();
        let nets = facecast::weights::models::load_mtcnn(&opts.weights, &compute.device)
            .with_context(|| format!("loading MTCNN from {}", opts.weights.display()))?;
        for (name, img) in &photos {
            let long = img.width().max(img.height());
            let mut did_inactive = false;
            for &max_side in &opts.max_sides {
                let inactive = max_side == 0 || max_side >= long;
                // Every cap at or above the long side runs the same work: time it once.
                if inactive && did_inactive {
                    continue;
                }
                did_inactive |= inactive;
                let settings = DetectSettings {
                    max_side,
                    ..DetectSettings::default()
                };
                // Variants timed alternately, run by run, so that both see the same load.
                let variants: &[bool] = if opts.ab { &[false, true] } else { &[true] };
                let mut times = vec![Vec::new(); variants.len()];
                let mut found_faces = vec![Vec::new(); variants.len()];
                // One warm-up run (shader compilation, autotune, allocator), then the timed runs,
                // stopping early when a slow case would blow the time budget.
                let started = Instant::now();
                for i in 0..=opts.runs {
                    for (v, &host_kernels) in variants.iter().enumerate() {
                        set_host_kernels(host_kernels);
                        let t = Instant::now();
                        let found = detect_photo(&nets, img, &settings, &compute.device)
                            .with_context(|| format!("detecting on {name}"))?;
                        let ms = t.elapsed().as_secs_f64() * 1e3;
                        if i > 0 {
                            times[v].push(ms);
                        }
                        found_faces[v] = found.faces;
                    }
                    if i > 0 && times[0].len() >= 3 && started.elapsed().as_secs_f64() > opts.budget_s {
                        break;
                    }
                }
                set_host_kernels(true);
                if opts.profile {
                    facecast::nets::profile::set_enabled(true);
                    detect_photo(&nets, img, &settings, &compute.device)
                        .with_context(|| format!("detecting on {name}"))?;
                    facecast::nets::profile::set_enabled(false);
                    eprintln!("profile of {name} at max_side {max_side} (own ms, calls):");
                    for ((kind, detail), entry) in facecast::nets::profile::take() {
                        eprintln!(
                            "  {:>9.1} {:>5}  {kind} {detail}",
                            entry.own.as_secs_f64() * 1e3,
                            entry.calls
                        );
                    }
                }
                for ((mut times, faces), &host_kernels) in times.into_iter().zip(found_faces).zip(variants) {
                    times.sort_by(f64::total_cmp);
                    let row = Row {
                        photo: name.clone(),
                        width: img.width(),
                        height: img.height(),
                        backend: if host_kernels {
                            label.clone()
                        } else {
                            format!("{label} burn ops")
                        },
                        max_side,
                        cap_inactive: inactive,
                        runs: times.len(),
                        median_ms: median(&times),
                        min_ms: times.first().copied().unwrap_or(f64::NAN),
                        faces: faces.len(),
                        face_height_pct: faces
                            .iter()
                            .map(|f| ((f.bbox[3] - f.bbox[1]) / img.height() as f32 * 1000.0).round() / 10.0)
                            .collect(),
                    };
                    eprintln!(
                        "{:<20} {:>9} {:<28} max_side {:>5}{} {:>10.1} ms (n={}) faces {} heights% {:?}",
                        row.photo,
                        format!("{}x{}", row.width, row.height),
                        row.backend,
                        row.max_side,
                        if inactive { "*" } else { " " },
                        row.median_ms,
                        row.runs,
                        row.faces,
                        row.face_height_pct
                    );
                    rows.push(row);
                }
            }
        }
    }
    let report = Report {
        tool: "facecast",
        rayon_threads: rayon_threads(),
        profile: if cfg!(debug_assertions) { "dev" } else { "release" },
        rows,
    };
    let text = serde_json::to_string_pretty(&report)?;
    match &opts.json {
        Some(path) => std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?,
        None => println!("{text}"),
    }
    Ok(())
}

/// The host PNet and the host convolution kernels on (the default) or off (burn's own ops).
fn set_host_kernels(on: bool) {
    facecast::nets::pnet_host::set_enabled(on);
    facecast::nets::cpu_conv::set_enabled(on);
}

fn median(sorted: &[f64]) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        n if !n.is_multiple_of(2) => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

fn rayon_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
}

fn parse(args: &[String]) -> Result<Options> {
    let mut opts = Options {
        weights: PathBuf::new(),
        runs: 7,
        backends: vec!["cpu".into(), "wgpu".into()],
        max_sides: vec![0, 1024, 1600, 2048],
        budget_s: 30.0,
        json: None,
        ab: false,
        profile: false,
        photos: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--weights" => opts.weights = PathBuf::from(value()?),
            "--runs" => opts.runs = value()?.parse().context("--runs")?,
            "--backends" => opts.backends = value()?.split_whitespace().map(String::from).collect(),
            "--max-sides" => {
                opts.max_sides = value()?
                    .split(',')
                    .map(|s| s.trim().parse())
                    .collect::<Result<_, _>>()
                    .context("--max-sides")?
            }
            "--budget-s" => opts.budget_s = value()?.parse().context("--budget-s")?,
            "--json" => opts.json = Some(PathBuf::from(value()?)),
            "--ab" => opts.ab = true,
            "--profile" => opts.profile = true,
            flag if flag.starts_with("--") => bail!("unknown option {flag}"),
            photo => opts.photos.push(PathBuf::from(photo)),
        }
    }
    if opts.weights.as_os_str().is_empty() || opts.photos.is_empty() {
        bail!("usage: bench_detect --weights DIR [options] PHOTOS... (see the file's header)");
    }
    Ok(opts)
}

/// A 6000×4000 "product shot" tiled from the shared photos (astronaut, camera, chelsea, montage, in
/// that order) at several scales, so faces range from about 11% down to under 3% of its height.
fn make_big(out: &Path, photos: &[PathBuf]) -> Result<()> {
    let [astronaut, camera, chelsea, montage] = photos else {
        bail!("--make-big needs astronaut, camera, chelsea and montage, in that order");
    };
    let load = |p: &PathBuf| -> Result<RgbImage> {
        Ok(image::open(p)
            .with_context(|| format!("reading {}", p.display()))?
            .to_rgb8())
    };
    let (astronaut, camera, chelsea, montage) =
        (load(astronaut)?, load(camera)?, load(chelsea)?, load(montage)?);
    let mut canvas = RgbImage::from_pixel(6000, 4000, image::Rgb([200, 196, 190]));
    let mut paste = |img: &RgbImage, scale: f32, x: i64, y: i64| {
        let (w, h) = (
            (img.width() as f32 * scale).round() as u32,
            (img.height() as f32 * scale).round() as u32,
        );
        let scaled = imageops::resize(img, w, h, imageops::FilterType::Triangle);
        imageops::overlay(&mut canvas, &scaled, x, y);
    };
    paste(&astronaut, 4.0, 0, 0); // face ≈ 11% of the height
    paste(&montage, 2.5, 2150, 0); // four faces, 2.5× their montage size
    paste(&camera, 2.0, 4300, 1250);
    paste(&chelsea, 3.0, 2150, 2900); // a cat: no face
    paste(&astronaut, 1.0, 0, 2200); // face ≈ 3% of the height
    paste(&astronaut, 0.9, 560, 2200); // a little under 3%
    paste(&camera, 1.0, 1100, 2200);
    paste(&astronaut, 1.5, 0, 3000 - 250);
    canvas
        .save(out)
        .with_context(|| format!("writing {}", out.display()))?;
    eprintln!("wrote {} (6000x4000)", out.display());
    Ok(())
}
