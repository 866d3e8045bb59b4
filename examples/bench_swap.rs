//! Times the face swap per face, split into its stages (align, ArcFace, AEI-Net or the classic
//! blend, paste), median over runs after a warm-up, every stage read back to the host.
//!
//!   bench_swap --mtcnn DIR (--arcface FILE [--aei FILE] | --random-official) --virtual PHOTO
//!              [--engine faceshifter|classic] [--blend poisson|multiband] [--runs N]
//!              [--backend cpu|wgpu] [--json OUT] [--ab | --burn-conv] PHOTO
//!
//! `--ab` alternates runs with Facecast's CPU kernels off (burn's own ops, the state before issue
//! 18) and on, and prints both medians per face and their ratio (the JSON report is the "on" side);
//! `--burn-conv` runs with them off only.
//!
//! The weight files may be the released checkpoints or any file in their layout (e.g. random weights
//! at the full released widths, saved by the PyTorch reference): the networks are built from the
//! files' own shapes. `--random-official` needs no files: both networks are built at the released
//! widths with random weights (the timing does not depend on the values). A side-by-side comparison
//! runs the reference on the same machine in the same run.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use facecast::compute::{BackendChoice, Compute};
use facecast::io::{DecodeLimits, load_photo};
use facecast::nets::arcface::{ArcFace, ArcFaceConfig};
use facecast::nets::faceshifter::{AeiConfig, AeiNet};
use facecast::pipeline::detect::photo::{DetectSettings, detect_photo};
use facecast::pipeline::swap::identity::identity_from_photo;
use facecast::pipeline::swap::{ClassicBlend, SwapEngine, SwapJob, SwapNets, SwapSettings, swap_faces};
use facecast::weights::models::{load_aei, load_arcface, load_mtcnn};
use serde::Serialize;

#[derive(Serialize)]
struct Report {
    tool: &'static str,
    backend: String,
    engine: &'static str,
    photo: String,
    faces: usize,
    runs: usize,
    /// Threads the machine offers (the CPU backend uses them all).
    threads: usize,
    /// Medians over runs and faces, in milliseconds.
    align_ms: f64,
    arcface_ms: f64,
    generate_ms: f64,
    paste_ms: f64,
    per_face_total_ms: f64,
    /// ArcFace on the virtual model's crops, once per run.
    identity_ms: f64,
    /// "files" or "random at the released widths".
    weights: &'static str,
    arcface_config: String,
    aei_config: Option<String>,
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The 1-minute load average (the machines running this are shared).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut mtcnn, mut arcface, mut aei, mut virtual_photo, mut json) = (None, None, None, None, None);
    let mut random_official = false;
    let mut ab = false;
    let (mut runs, mut engine, mut blend, mut backend, mut photo) = (
        5usize,
        SwapEngine::FaceShifter,
        ClassicBlend::Poisson,
        BackendChoice::Cpu,
        None,
    );
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--mtcnn" => mtcnn = Some(PathBuf::from(value()?)),
            "--arcface" => arcface = Some(PathBuf::from(value()?)),
            "--aei" => aei = Some(PathBuf::from(value()?)),
            "--virtual" => virtual_photo = Some(PathBuf::from(value()?)),
            "--json" => json = Some(PathBuf::from(value()?)),
            "--random-official" => random_official = true,
            "--ab" => ab = true,
            "--burn-conv" => facecast::nets::cpu_conv::set_enabled(false),
            "--runs" => runs = value()?.parse().context("--runs")?,
            "--engine" => {
                engine = match value()?.as_str() {
                    "faceshifter" => SwapEngine::FaceShifter,
                    "classic" => SwapEngine::Classic,
                    other => bail!("--engine {other}: use faceshifter or classic"),
                }
            }
            "--blend" => {
                blend = match value()?.as_str() {
                    "poisson" => ClassicBlend::Poisson,
                    "multiband" => ClassicBlend::MultiBand,
                    other => bail!("--blend {other}: use poisson or multiband"),
                }
            }
            "--backend" => backend = BackendChoice::parse(&value()?)?,
            other if !other.starts_with("--") => photo = Some(PathBuf::from(other)),
            other => bail!("unknown option {other}"),
        }
    }
    let photo = photo.context("give the photo to swap")?;
    let mtcnn_dir = mtcnn.context("--mtcnn DIR (pnet.pt, rnet.pt, onet.pt) is required")?;
    let virtual_photo = virtual_photo.context("--virtual PHOTO is required")?;
    let compute = Compute::select(backend)?;
    let device = &compute.device;

    let detector = load_mtcnn(&mtcnn_dir, device)?;
    let (arcface, arcface_config) = if random_official {
        let config = ArcFaceConfig::official();
        (ArcFace::new(&config, device), config)
    } else {
        load_arcface(
            &arcface.context("--arcface FILE (or --random-official) is required")?,
            device,
        )?
    };
    let aei = match (engine, &aei) {
        (SwapEngine::Classic, _) => None,
        (SwapEngine::FaceShifter, _) if random_official => {
            let config = AeiConfig::official();
            Some((AeiNet::new(&config, device)?, config))
        }
        (SwapEngine::FaceShifter, Some(file)) => Some(load_aei(file, device)?),
        (SwapEngine::FaceShifter, None) => {
            bail!("--engine faceshifter needs --aei FILE (or --random-official)")
        }
    };
    let image = load_photo(&photo, &DecodeLimits::default())?.rgb;
    let faces: Vec<_> = detect_photo(&detector, &image, &DetectSettings::default(), device)?
        .faces
        .into_iter()
        .filter(|f| f.score >= DetectSettings::default().min_score)
        .enumerate()
        .collect();
    if faces.is_empty() {
        bail!("{}: no face to swap", photo.display());
    }
    let identity = identity_from_photo(&virtual_photo, &detector, device)?;
    let settings = SwapSettings {
        engine,
        classic_blend: blend,
        ..SwapSettings::default()
    };
    let job = SwapJob {
        photo: &image,
        faces: &faces,
        identity: &identity,
        settings: &settings,
        engine,
    };
    let nets = SwapNets {
        arcface: Some(&arcface),
        aei: aei.as_ref().map(|(net, _)| net),
    };

    let (mut align, mut arc, mut generate, mut paste, mut total, mut ident) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    // Per face and run with the kernels off (burn's ops), for --ab.
    let mut before: Vec<f64> = Vec::new();
    let (mut before_arc, mut before_gen) = (Vec::new(), Vec::new());
    let load_start = load_average();
    // The first run warms up the device (kernels, autotune, allocations) and is not counted.
    for run in 0..=runs {
        if ab {
            facecast::nets::cpu_conv::set_enabled(false);
            let outcome = swap_faces(&job, nets, device, &mut |_, _| true)?;
            facecast::nets::cpu_conv::set_enabled(true);
            if run > 0 {
                for f in &outcome.faces {
                    before.push(ms(f.timings.total()));
                    before_arc.push(ms(f.timings.arcface));
                    before_gen.push(ms(f.timings.generate));
                }
            }
        }
        let outcome = swap_faces(&job, nets, device, &mut |_, _| true)?;
        if run == 0 {
            continue;
        }
        ident.push(ms(outcome.identity_time));
        for f in &outcome.faces {
            align.push(ms(f.timings.align));
            arc.push(ms(f.timings.arcface));
            generate.push(ms(f.timings.generate));
            paste.push(ms(f.timings.paste));
            total.push(ms(f.timings.total()));
        }
    }
    let report = Report {
        tool: "bench_swap",
        backend: compute.label(),
        engine: engine.label(),
        photo: photo.display().to_string(),
        faces: faces.len(),
        runs,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        align_ms: median(align),
        arcface_ms: median(arc),
        generate_ms: median(generate),
        paste_ms: median(paste),
        per_face_total_ms: median(total),
        identity_ms: median(ident),
        weights: if random_official {
            "random at the released widths"
        } else {
            "files"
        },
        arcface_config: format!("{arcface_config:?}"),
        aei_config: aei.as_ref().map(|(_, c)| format!("{c:?}")),
    };
    let generate_name = match engine {
        SwapEngine::FaceShifter => "AEI-Net",
        SwapEngine::Classic => "blend",
    };
    println!(
        "{} on {} ({} faces, {} runs): align {:.1} ms, ArcFace {:.1} ms, {generate_name} {:.1} ms, paste {:.1} ms, \
         per face {:.1} ms; identity {:.1} ms per run",
        report.engine,
        report.backend,
        report.faces,
        runs,
        report.align_ms,
        report.arcface_ms,
        report.generate_ms,
        report.paste_ms,
        report.per_face_total_ms,
        report.identity_ms
    );
    if ab {
        let (b, a) = (median(before), report.per_face_total_ms);
        println!(
            "A/B per face: burn's ops {b:.1} ms (ArcFace {:.1}, {generate_name} {:.1}) | Facecast kernels {a:.1} ms \
             (ArcFace {:.1}, {generate_name} {:.1}) | speed-up {:.2}x; load {load_start} -> {}",
            median(before_arc),
            median(before_gen),
            report.arcface_ms,
            report.generate_ms,
            b / a,
            load_average()
        );
    }
    if let Some(path) = json {
        std::fs::write(&path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| path.display().to_string())?;
    }
    Ok(())
}
