//! The Rust side of the GPU benchmark kit (`scripts/gpu-kit.sh` builds it, `scripts/gpu-bench.sh`
//! runs it on a lent GPU machine, which has no Rust toolchain): one small binary that lists the
//! adapters, checks parity fixtures, times the networks and times a whole shot.
//!
//!   gpu_bench [--kernel-cache DIR] adapters --json OUT
//!   gpu_bench [--kernel-cache DIR] check-fixtures [--backend wgpu|cpu] --json OUT DIR...
//!   gpu_bench [--kernel-cache DIR] serve [--vocab FILE]        (bench_nets' line protocol)
//!   gpu_bench [--kernel-cache DIR] shot [--backend wgpu|cpu] --mtcnn DIR --face PHOTO
//!             [--runs N] [--width W] [--height H] [--save PNG] --json OUT
//!   gpu_bench --list                                            (the network cases)
//!
//! `--kernel-cache DIR` keeps the GPU runtime's caches in DIR (as the app keeps them in its data
//! directory), so a run can start from an empty cache (first-call latency) or a filled one.
//!
//! "wgpu" is the best hardware adapter when there is one (as `Auto` picks it) and otherwise wgpu's
//! default adapter, software Vulkan included: on a machine without a GPU the software adapter
//! stands in for the GPU on purpose. Every report names the adapter that ran.
//!
//! Each JSON report is rewritten after every step (fixture, run), so a part cut off by its time
//! limit still leaves what it measured.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use facecast::compute::Compute;
use facecast::compute::adapters::{self, AutoChoice};
use facecast::nets::arcface::{ArcFace, ArcFaceConfig};
use facecast::nets::faceshifter::{AeiConfig, AeiNet};
use facecast::nets::gpen::{FullGenerator, GpenConfig};
use facecast::parity::Fixture;
use facecast::parity::check::FixtureCheck;
use facecast::pipeline::detect::photo::{DetectSettings, detect_photo};
use facecast::pipeline::restore::{GpenModel, RestoreSettings, restore_faces};
use facecast::pipeline::swap::identity::identity_from_photo;
use facecast::pipeline::swap::{SwapEngine, SwapJob, SwapNets, SwapSettings, swap_faces};
use facecast::weights::models::load_mtcnn;
use image::{Rgb, RgbImage, imageops};
use serde_json::{Value, json};

#[path = "bench_common/nets.rs"]
mod nets;

use nets::{Bench, CASES};

fn main() -> Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--kernel-cache") {
        let dir = PathBuf::from(args.get(1).context("--kernel-cache needs a folder")?);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        // Before any device starts: the runtime reads its configuration once.
        if !facecast::compute::kernel_cache::keep_kernels_in(&dir) {
            bail!(
                "the GPU runtime was configured before {} could be set",
                dir.display()
            );
        }
        args.drain(..2);
    }
    let Some(command) = args.first().cloned() else {
        bail!("give a command: adapters, check-fixtures, serve, shot or --list");
    };
    let rest = &args[1..];
    match command.as_str() {
        "--list" => {
            for (name, what) in CASES {
                println!("{name:<16} {what}");
            }
            Ok(())
        }
        "adapters" => adapters_report(&Options::parse(rest)?),
        "check-fixtures" => check_fixtures(&Options::parse(rest)?),
        "serve" => {
            let opts = Options::parse(rest)?;
            let vocab = opts
                .vocab
                .clone()
                .unwrap_or_else(|| PathBuf::from("models/clip/bpe_simple_vocab_16e6.txt.gz"));
            Bench::new("facecast gpu_bench", vocab, select).serve()
        }
        "shot" => shot(&Options::parse(rest)?),
        other => bail!("unknown command {other}: adapters, check-fixtures, serve, shot or --list"),
    }
}

/// Every option of every command; each command takes the ones it needs.
struct Options {
    backend: String,
    json: Option<PathBuf>,
    vocab: Option<PathBuf>,
    mtcnn: Option<PathBuf>,
    face: Option<PathBuf>,
    save: Option<PathBuf>,
    runs: usize,
    width: u32,
    height: u32,
    dirs: Vec<PathBuf>,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options> {
        let mut o = Options {
            backend: "wgpu".into(),
            json: None,
            vocab: None,
            mtcnn: None,
            face: None,
            save: None,
            runs: 3,
            width: 2000,
            height: 3000,
            dirs: Vec::new(),
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut value = || it.next().with_context(|| format!("{arg} needs a value"));
            match arg.as_str() {
                "--backend" => o.backend = value()?.clone(),
                "--json" => o.json = Some(PathBuf::from(value()?)),
                "--vocab" => o.vocab = Some(PathBuf::from(value()?)),
                "--mtcnn" => o.mtcnn = Some(PathBuf::from(value()?)),
                "--face" => o.face = Some(PathBuf::from(value()?)),
                "--save" => o.save = Some(PathBuf::from(value()?)),
                "--runs" => o.runs = value()?.parse().context("--runs")?,
                "--width" => o.width = value()?.parse().context("--width")?,
                "--height" => o.height = value()?.parse().context("--height")?,
                other if !other.starts_with("--") => o.dirs.push(PathBuf::from(other)),
                other => bail!("unknown option {other}"),
            }
        }
        Ok(o)
    }

    fn json(&self) -> Result<&Path> {
        self.json.as_deref().context("--json OUT is required")
    }
}

/// The device of a backend name: "cpu" is flex; "wgpu" the best hardware adapter, else wgpu's
/// default adapter (software Vulkan standing in for a GPU).
fn select(backend: &str) -> Result<Compute> {
    match backend {
        "cpu" => Ok(Compute::cpu()),
        "wgpu" => {
            let listed = adapters::list_adapters();
            match adapters::choose(&listed) {
                AutoChoice::Wgpu { adapter, reason } => {
                    Compute::on_adapter(&listed[adapter], reason).map_err(|e| anyhow!("{e}"))
                }
                AutoChoice::Cpu { .. } => Compute::wgpu().map_err(|e| anyhow!("{e}")),
            }
        }
        other => bail!("unknown backend {other} (wgpu or cpu)"),
    }
}

/// Writes the report whole, through a temporary file, so a reader never sees half of it.
fn write_json(path: &Path, value: &Value) -> Result<()> {
    let tmp = path.with_extension("json.part");
    std::fs::write(&tmp, serde_json::to_vec_pretty(value)?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Every adapter wgpu sees, `Auto`'s choice, and the one "wgpu" runs the kit on.
fn adapters_report(opts: &Options) -> Result<()> {
    let listed = adapters::list_adapters();
    let auto = match adapters::choose(&listed) {
        AutoChoice::Wgpu { adapter, reason } => {
            json!({"backend": "wgpu", "adapter": listed[adapter].name, "reason": reason})
        }
        AutoChoice::Cpu { reason } => json!({"backend": "cpu", "reason": reason}),
    };
    let started = Instant::now();
    let kit = match select("wgpu") {
        Ok(c) => json!({"label": c.label(), "reason": c.reason, "start_ms": ms(started.elapsed())}),
        Err(e) => json!({"error": format!("{e:#}")}),
    };
    let report = json!({"adapters": listed, "auto": auto, "kit_wgpu": kit});
    println!("{}", serde_json::to_string_pretty(&report)?);
    write_json(opts.json()?, &report)
}

/// Runs every fixture folder with the library's parity code, as `facecast check-fixture` does.
fn check_fixtures(opts: &Options) -> Result<()> {
    let out = opts.json()?;
    if opts.dirs.is_empty() {
        bail!("give the fixture folders");
    }
    let started = Instant::now();
    let compute = select(&opts.backend)?;
    let mut report = json!({
        "backend": compute.label(),
        "device_start_ms": ms(started.elapsed()),
        "fixtures": [],
    });
    println!("backend: {}", compute.label());
    let mut check = FixtureCheck::default();
    for dir in &opts.dirs {
        let t = Instant::now();
        let model = Fixture::open(dir).map(|f| f.model).unwrap_or_default();
        let mut entry = json!({"dir": dir.display().to_string(), "model": model});
        match check.run(dir, &compute.device, &mut |line| println!("{line}")) {
            Ok(cases) => {
                let rows: Vec<Value> = cases
                    .iter()
                    .map(|case| {
                        json!({
                            "name": case.name, "passed": case.passed,
                            // NaN (a shape mismatch, a NaN output) is written as null.
                            "max_abs_err": case.max_abs_err, "note": case.note,
                        })
                    })
                    .collect();
                entry["passed"] = json!(cases.iter().all(|c| c.passed));
                entry["cases"] = json!(rows);
            }
            Err(err) => {
                entry["passed"] = json!(false);
                entry["error"] = json!(err.to_string());
            }
        }
        entry["ms"] = json!(ms(t.elapsed()));
        if let Some(list) = report["fixtures"].as_array_mut() {
            list.push(entry);
        }
        report["cases_passed"] = json!(check.passed);
        report["cases_failed"] = json!(check.failed);
        write_json(out, &report)?;
    }
    println!("{}", check.summary());
    Ok(())
}

/// A `width`×`height` product photo with two faces: the face photo enlarged twice (once mirrored)
/// on a light studio-grey gradient, the way a full-length shot frames two models.
fn two_face_photo(face: &RgbImage, width: u32, height: u32) -> RgbImage {
    let mut photo = RgbImage::from_fn(width, height, |_, y| {
        let v = (235.0 - 30.0 * y as f32 / height as f32) as u8;
        Rgb([v, v, v.saturating_sub(4)])
    });
    // Each copy spans 45% of the width: faces of about 15% of it, well above MTCNN's minimum on
    // the 1600-px copy that detection works on.
    let side = width * 45 / 100;
    let copy = imageops::resize(face, side, side, imageops::FilterType::CatmullRom);
    let mirrored = imageops::flip_horizontal(&copy);
    imageops::overlay(&mut photo, &copy, i64::from(width / 20), i64::from(height / 10));
    imageops::overlay(
        &mut photo,
        &mirrored,
        i64::from(width - side - width / 20),
        i64::from(height / 2),
    );
    photo
}

/// The networks of the shot, built once.
struct ShotNets {
    detector: facecast::nets::mtcnn::MtcnnNets,
    arcface: ArcFace,
    aei: AeiNet,
    gpen: FullGenerator,
}

/// One whole shot: detect, swap both faces (FaceShifter), GPEN-512 on both, each pasted back.
fn shot_once(
    nets: &ShotNets,
    photo: &RgbImage,
    identity: &facecast::pipeline::swap::VirtualIdentity,
    device: &burn::tensor::Device,
) -> Result<Value> {
    let settings = DetectSettings::default();
    let t = Instant::now();
    let found = detect_photo(&nets.detector, photo, &settings, device)?;
    let detect = t.elapsed();
    let faces: Vec<_> = found
        .faces
        .into_iter()
        .filter(|f| f.score >= settings.min_score)
        .enumerate()
        .collect();
    if faces.is_empty() {
        bail!("no face found in the {}×{} shot", photo.width(), photo.height());
    }
    let swap_settings = SwapSettings {
        engine: SwapEngine::FaceShifter,
        ..SwapSettings::default()
    };
    let job = SwapJob {
        photo,
        faces: &faces,
        identity,
        settings: &swap_settings,
        engine: SwapEngine::FaceShifter,
    };
    let swap_nets = SwapNets {
        arcface: Some(&nets.arcface),
        aei: Some(&nets.aei),
    };
    let t = Instant::now();
    let swapped = swap_faces(&job, swap_nets, device, &mut |_, _| true)?;
    let swap = t.elapsed();
    let plain: Vec<_> = faces.iter().map(|(_, f)| *f).collect();
    let restore_settings = RestoreSettings::gpen(None, 100.0, GpenModel::Bfr512);
    let t = Instant::now();
    let restored = restore_faces(
        &nets.gpen,
        device,
        &swapped.image,
        &plain,
        &restore_settings,
        |_, _| true,
    )?;
    let restore = t.elapsed();
    let sum = |f: fn(&facecast::pipeline::swap::FaceTimings) -> Duration| {
        ms(swapped.faces.iter().map(|r| f(&r.timings)).sum())
    };
    Ok(json!({
        "faces": faces.len(),
        "total_ms": ms(detect + swap + restore),
        "detect_ms": ms(detect),
        "swap_ms": ms(swap),
        "restore_ms": ms(restore),
        "swap_stages_ms": {
            "identity": ms(swapped.identity_time),
            "align": sum(|t| t.align),
            "arcface": sum(|t| t.arcface),
            "aei_net": sum(|t| t.generate),
            "paste": sum(|t| t.paste),
        },
        "restore_stages_ms": {
            "align": ms(restored.timings.align),
            "gpen": ms(restored.timings.network),
            "paste": ms(restored.timings.paste),
        },
        "image": restored.image.dimensions(),
    }))
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

/// The median over runs of every number of the runs' reports, keyed by its path ("swap_stages_ms.aei_net").
fn medians(runs: &[Value]) -> Value {
    let mut out = serde_json::Map::new();
    let Some(first) = runs.first() else {
        return Value::Object(out);
    };
    let mut keys = Vec::new();
    collect_numbers(first, "", &mut keys);
    for key in keys {
        let values: Vec<f64> = runs
            .iter()
            .filter_map(|r| r.pointer(&format!("/{}", key.replace('.', "/"))))
            .filter_map(Value::as_f64)
            .collect();
        if let Some(m) = median(values) {
            out.insert(key, json!(m));
        }
    }
    Value::Object(out)
}

fn collect_numbers(value: &Value, prefix: &str, keys: &mut Vec<String>) {
    if let Value::Object(map) = value {
        for (k, v) in map {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            // Times are the numbers named `*_ms` or held in an object named so.
            let is_time = k.ends_with("_ms") || prefix.ends_with("_ms");
            if v.is_number() && is_time {
                keys.push(key);
            } else {
                collect_numbers(v, &key, keys);
            }
        }
    }
}

/// Times the whole shot: the first one in this process (kernels compiled or read from the cache
/// folder), then `runs` more, warm. Weights are random at the released widths (ArcFace IR-SE50,
/// AEI-Net, GPEN-BFR-512); MTCNN's are the real ones of the fixture folder.
fn shot(opts: &Options) -> Result<()> {
    let out = opts.json()?;
    let process_start = Instant::now();
    let mtcnn = opts
        .mtcnn
        .as_deref()
        .context("--mtcnn DIR (pnet.pt, rnet.pt, onet.pt) is required")?;
    let face_path = opts
        .face
        .as_deref()
        .context("--face PHOTO (one face) is required")?;
    let face = image::open(face_path)
        .with_context(|| format!("reading {}", face_path.display()))?
        .to_rgb8();
    let photo = two_face_photo(&face, opts.width, opts.height);
    if let Some(save) = &opts.save {
        photo
            .save(save)
            .with_context(|| format!("writing {}", save.display()))?;
    }

    let t = Instant::now();
    let compute = select(&opts.backend)?;
    let device = &compute.device;
    let device_start = t.elapsed();
    let mut report = json!({
        "tool": "gpu_bench shot",
        "backend": compute.label(),
        "profile": nets::profile(),
        "photo": {"width": opts.width, "height": opts.height, "faces_placed": 2},
        "weights": "MTCNN: the fixture's real weights; ArcFace IR-SE50, AEI-Net and GPEN-BFR-512: random at the released widths",
        "device_start_ms": ms(device_start),
    });
    let t = Instant::now();
    let gpen_config = GpenConfig::bfr_512();
    let nets = ShotNets {
        detector: load_mtcnn(mtcnn, device)?,
        arcface: nets::randomized(ArcFace::new(&ArcFaceConfig::official(), device), device, false),
        aei: nets::randomized(AeiNet::new(&AeiConfig::official(), device)?, device, false),
        gpen: nets::randomized(FullGenerator::new(&gpen_config, device)?, device, true),
    };
    report["build_ms"] = json!(ms(t.elapsed()));
    // The virtual model's identity: the face photo itself, detected and aligned as the app does.
    let t = Instant::now();
    let identity = identity_from_photo(face_path, &nets.detector, device)?;
    report["identity_ms"] = json!(ms(t.elapsed()));
    write_json(out, &report)?;

    let first = shot_once(&nets, &photo, &identity, device)?;
    report["first"] = first.clone();
    // What a user waits for from starting the program to the first finished shot.
    report["process_to_first_shot_ms"] = json!(ms(process_start.elapsed()));
    println!(
        "first shot on {}: {:.0} ms ({} faces; {:.0} ms from the process start)",
        compute.label(),
        first["total_ms"].as_f64().unwrap_or(f64::NAN),
        first["faces"],
        ms(process_start.elapsed())
    );
    write_json(out, &report)?;
    let mut runs = Vec::new();
    for i in 0..opts.runs {
        let run = shot_once(&nets, &photo, &identity, device)?;
        println!(
            "shot {}: {:.0} ms",
            i + 1,
            run["total_ms"].as_f64().unwrap_or(f64::NAN)
        );
        runs.push(run);
        report["warm_runs"] = json!(runs.len());
        report["median"] = medians(&runs);
        report["runs"] = json!(runs);
        write_json(out, &report)?;
    }
    Ok(())
}
