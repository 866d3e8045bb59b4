//! Photos per minute of a whole batch export (decode → detect → the recipe's steps → atomic export)
//! and the process's peak memory (VmHWM) as the run goes, to show it stays flat over many photos.
//!
//!   bench_batch [--photos N] [--side PX] [--recipe FILE] [--data-dir DIR] [--mtcnn DIR] [--keep DIR]
//!               [--random-faceshifter [--virtual PHOTO]] [--no-lookahead] [--burn-conv]
//!
//! The photos are made from the shared fixture photos (`$FACECAST_FIXTURES/mtcnn`, or `--mtcnn`),
//! scaled so the long side is `--side` pixels (default 1600, a typical catalogue size), each one
//! slightly different so no step can reuse another's work, written as JPEG into a temporary folder.
//! The recipe is `--recipe` or the default one; MTCNN is imported from the fixtures when the data
//! folder has none. Prints a Markdown table.
//!
//! `--random-faceshifter` runs the default recipe's swap with FaceShifter for real on a machine
//! without the released checkpoints: ArcFace IR-SE50 and AEI-Net weights are drawn at random at
//! the released shapes (the key lists under `models/keys/`), saved in PyTorch's format and imported
//! into a temporary data folder through the store's import, as `facecast weights import --reduced`
//! would; the virtual model is `--virtual` (default the fixtures' `astronaut.png`) unless the
//! recipe names one. The time of a network does not depend on its weights' values. The output
//! images are noise: only the figures mean anything.
//!
//! `--no-lookahead` decodes and detects each photo in turn instead of during the previous photo's
//! steps; `--burn-conv` runs burn's own CPU ops instead of Facecast's kernels (the state before
//! issue 18), for before/after figures.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use facecast::compute::Compute;
use facecast::pipeline::batch::{BatchInput, BatchObserver, FileReport, FileStatus};
use facecast::pipeline::recipe::Recipe;
use facecast::pipeline::runtime::NetworkCache;
use facecast::pipeline::steps::{StepEnv, build_engine, load_networks};
use facecast::weights::manifest::DtypeClass;
use facecast::weights::models::{AEI_FILE, AEI_ID, ARCFACE_FILE, ARCFACE_ID, MTCNN_ID};
use facecast::weights::store::{Import, WeightsStore};
use facecast::weights::tensors::{RawTensor, TensorValues, Value};
use facecast::weights::torch_save::torch_save_bytes;
use image::{ImageEncoder, RgbImage, imageops};

struct Options {
    photos: usize,
    side: u32,
    recipe: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    mtcnn: PathBuf,
    keep: Option<PathBuf>,
    random_faceshifter: bool,
    virtual_model: Option<PathBuf>,
    lookahead: bool,
}

fn parse() -> Result<Options> {
    let fixtures = std::env::var_os("FACECAST_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures"));
    let mut opts = Options {
        photos: 200,
        side: 1600,
        recipe: None,
        data_dir: None,
        mtcnn: fixtures.join("mtcnn"),
        keep: None,
        random_faceshifter: false,
        virtual_model: None,
        lookahead: true,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--photos" => opts.photos = value()?.parse()?,
            "--side" => opts.side = value()?.parse()?,
            "--recipe" => opts.recipe = Some(value()?.into()),
            "--data-dir" => opts.data_dir = Some(value()?.into()),
            "--mtcnn" => opts.mtcnn = value()?.into(),
            "--keep" => opts.keep = Some(value()?.into()),
            "--random-faceshifter" => opts.random_faceshifter = true,
            "--virtual" => opts.virtual_model = Some(value()?.into()),
            "--no-lookahead" => opts.lookahead = false,
            "--burn-conv" => facecast::nets::cpu_conv::set_enabled(false),
            other => bail!("unknown argument {other}"),
        }
    }
    Ok(opts)
}

/// VmHWM and VmRSS of this process, in MiB (Linux).
fn memory_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

struct Meter {
    start: Instant,
    checkpoints: Vec<usize>,
    rows: Vec<(usize, f64, f64, f64)>,
}

impl BatchObserver for Meter {
    fn file_finished(&mut self, index: usize, _total: usize, _report: &FileReport) {
        let n = index + 1;
        if self.checkpoints.contains(&n) {
            let (hwm, rss) = memory_mib();
            self.rows.push((n, self.start.elapsed().as_secs_f64(), hwm, rss));
        }
    }
}

fn make_photos(dir: &Path, sources: &[RgbImage], count: usize, side: u32) -> Result<Vec<BatchInput>> {
    let mut inputs = Vec::with_capacity(count);
    for i in 0..count {
        let src = &sources[i % sources.len()];
        let f = side as f32 / src.width().max(src.height()) as f32;
        let (w, h) = (
            (src.width() as f32 * f).round() as u32,
            (src.height() as f32 * f).round() as u32,
        );
        let mut img = imageops::resize(src, w, h, imageops::FilterType::Triangle);
        // A faint per-photo brightness shift: every photo is different work.
        let shift = (i % 7) as u8;
        for p in img.pixels_mut() {
            for c in 0..3 {
                p[c] = p[c].saturating_add(shift);
            }
        }
        let path = dir.join(format!("shot-{i:04}.jpg"));
        let mut bytes = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90).write_image(
            img.as_raw(),
            w,
            h,
            image::ExtendedColorType::Rgb8,
        )?;
        std::fs::write(&path, bytes)?;
        inputs.push(BatchInput::new(path));
    }
    Ok(inputs)
}

fn main() -> Result<()> {
    let opts = parse()?;
    let compute = Compute::cpu();
    let names = ["astronaut.png", "camera.png", "montage.png", "chelsea.png"];
    let sources: Vec<RgbImage> = names
        .iter()
        .map(|n| {
            let path = opts.mtcnn.join(n);
            Ok(image::open(&path)
                .with_context(|| format!("reading {}", path.display()))?
                .to_rgb8())
        })
        .collect::<Result<_>>()?;
    let work = tempfile::tempdir()?;
    let photos_dir = work.path().join("photos");
    std::fs::create_dir(&photos_dir)?;
    let out_dir = opts.keep.clone().unwrap_or_else(|| work.path().join("out"));
    let inputs = make_photos(&photos_dir, &sources, opts.photos, opts.side)?;

    let mut recipe = match &opts.recipe {
        Some(path) => Recipe::load(path)?,
        None => Recipe::default(),
    };
    recipe.export.folder = Some(out_dir.clone());
    if opts.random_faceshifter && opts.data_dir.is_some() {
        bail!("--random-faceshifter installs into a temporary data folder: leave out --data-dir");
    }
    let data_dir = if opts.random_faceshifter {
        Some(work.path().join("data"))
    } else {
        opts.data_dir.clone()
    };
    let store = WeightsStore::open(data_dir)?;
    if opts.random_faceshifter {
        install_random_faceshifter(&store, work.path())?;
        if recipe.virtual_model.is_none() {
            let photo = opts
                .virtual_model
                .clone()
                .unwrap_or_else(|| opts.mtcnn.join("astronaut.png"));
            recipe.virtual_model = Some(photo.display().to_string());
        }
    }
    let env = StepEnv {
        store: &store,
        device: &compute.device,
    };
    let mut cache = NetworkCache::default();
    if store.require(MTCNN_ID).is_err() {
        // No detector installed: the fixture's (real) MTCNN weights, imported as a user would.
        store.import(MTCNN_ID, std::slice::from_ref(&opts.mtcnn))?;
        eprintln!(
            "bench_batch: imported MTCNN from {} into {}",
            opts.mtcnn.display(),
            store.data_dir().display()
        );
    }
    let loaded = load_networks(&recipe, &env, &mut cache)?;
    let mut engine = build_engine(recipe, &env, &cache, &loaded)?.with_lookahead(opts.lookahead);
    let networks = engine.networks();
    let mut checkpoints: Vec<usize> = [1, 10, 25, 50, 100, 150, 200, 300, 500]
        .into_iter()
        .filter(|&n| n <= opts.photos)
        .collect();
    checkpoints.push(opts.photos);
    let (hwm0, rss0) = memory_mib();
    let mut meter = Meter {
        start: Instant::now(),
        checkpoints,
        rows: Vec::new(),
    };
    let summary = engine.run(&inputs, &mut meter)?;
    let total_s = meter.start.elapsed().as_secs_f64();

    println!(
        "batch of {} photos, long side {} px, CPU ({}), rayon threads {}, profile {}",
        opts.photos,
        opts.side,
        compute.label(),
        rayon_threads(),
        if cfg!(debug_assertions) { "dev" } else { "release" }
    );
    println!(
        "networks: {}; edit steps: {}; look-ahead {}; CPU kernels {}{}",
        networks.join(", "),
        engine.step_count(),
        if opts.lookahead { "on" } else { "off" },
        if facecast::nets::cpu_conv::enabled() {
            "Facecast's"
        } else {
            "burn's (--burn-conv)"
        },
        if opts.random_faceshifter {
            "; ArcFace and AEI-Net: random weights at the released shapes"
        } else {
            ""
        }
    );
    println!(
        "faces edited: {} (in {} photos done); load average {}",
        summary.reports.iter().map(|r| r.faces).sum::<usize>(),
        summary.count(FileStatus::Done),
        load_average()
    );
    println!(
        "done {}, skipped {}, failed {}",
        summary.count(FileStatus::Done),
        summary.count(FileStatus::Skipped),
        summary.count(FileStatus::Failed)
    );
    for report in summary
        .reports
        .iter()
        .filter(|r| r.status == FileStatus::Failed)
        .take(3)
    {
        eprintln!("failed: {}", report.reason.as_deref().unwrap_or("?"));
    }
    println!(
        "throughput: {:.1} photos/min ({:.0} ms per photo)",
        opts.photos as f64 / total_s * 60.0,
        total_s * 1000.0 / opts.photos as f64
    );
    println!();
    println!("| photos done | elapsed s | photos/min so far | VmHWM MiB | VmRSS MiB |");
    println!("|---:|---:|---:|---:|---:|");
    println!("| 0 (before) | 0 | – | {hwm0:.0} | {rss0:.0} |");
    for (n, t, hwm, rss) in &meter.rows {
        println!(
            "| {n} | {t:.1} | {:.1} | {hwm:.0} | {rss:.0} |",
            *n as f64 / t * 60.0
        );
    }
    Ok(())
}

/// The 1-, 5- and 15-minute load averages (the machines running this are shared).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// Writes ArcFace IR-SE50 and AEI-Net checkpoints of random values at the released shapes into
/// `work` and imports them into `store` (as reduced test weights: their sha256 is not the released
/// one, everything else is).
fn install_random_faceshifter(store: &WeightsStore, work: &Path) -> Result<()> {
    let dir = work.join("random-weights");
    std::fs::create_dir_all(&dir)?;
    for (id, keys, file, seed) in [
        (ARCFACE_ID, "arcface-ir-se50", ARCFACE_FILE, 1u64),
        (AEI_ID, "faceshifter-aei", AEI_FILE, 2u64),
    ] {
        let path = dir.join(file);
        write_random_checkpoint(keys, &path, seed)?;
        store
            .import_with(id, std::slice::from_ref(&path), Import::Reduced)
            .with_context(|| format!("importing random {id} weights from {}", path.display()))?;
        eprintln!("bench_batch: random {id} weights at the released shapes imported");
    }
    Ok(())
}

/// Random values for every key of the key list `keys`, saved in `torch.save`'s format.
fn write_random_checkpoint(keys: &str, path: &Path, seed: u64) -> Result<()> {
    let mut state = seed;
    let mut entries = Vec::new();
    for spec in facecast::weights::manifest::key_list(keys)? {
        let n: usize = spec.shape.iter().product();
        let values = match spec.dtype {
            DtypeClass::Float => TensorValues::F32(random_values(&spec.key, &spec.shape, n, &mut state)),
            DtypeClass::Int => TensorValues::I64(vec![0; n]),
            DtypeClass::Bool => TensorValues::Bool(vec![false; n]),
        };
        entries.push((
            Value::Str(spec.key),
            Value::Tensor(RawTensor {
                shape: spec.shape,
                values,
            }),
        ));
    }
    let bytes = torch_save_bytes(&Value::Dict(entries))?;
    std::fs::write(path, bytes).with_context(|| path.display().to_string())
}

/// Values in a range that keeps activations in a sane range (no overflow, no denormals, which
/// would change the timing): positive variances and norm scales, small shifts, and weights of
/// variance 1/fan-in.
fn random_values(key: &str, shape: &[usize], n: usize, state: &mut u64) -> Vec<f32> {
    let (lo, hi) = if key.ends_with("running_var") || (shape.len() == 1 && key.ends_with(".weight")) {
        (0.5, 1.5)
    } else if shape.len() <= 1 {
        (-0.1, 0.1)
    } else {
        let fan_in: usize = shape[1..].iter().product();
        let bound = (3.0 / fan_in.max(1) as f32).sqrt();
        (-bound, bound)
    };
    (0..n).map(|_| lo + (hi - lo) * uniform(state)).collect()
}

/// splitmix64, as a uniform float in [0, 1).
fn uniform(state: &mut u64) -> f32 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 40) as f32 / (1u64 << 24) as f32
}

fn rayon_threads() -> String {
    std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| {
        std::thread::available_parallelism()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| "?".into())
    })
}
