//! Photos per minute of a whole batch export (decode → detect → the recipe's steps → atomic export)
//! and the process's peak memory (VmHWM) as the run goes, to show it stays flat over many photos.
//!
//!   bench_batch [--photos N] [--side PX] [--recipe FILE] [--data-dir DIR] [--mtcnn DIR] [--keep DIR]
//!
//! The photos are made from the shared fixture photos (`$FACECAST_FIXTURES/mtcnn`, or `--mtcnn`),
//! scaled so the long side is `--side` pixels (default 1600, a typical catalogue size), each one
//! slightly different so no step can reuse another's work, written as JPEG into a temporary folder.
//! The recipe is `--recipe` or the default one; MTCNN is imported from the fixtures when the data
//! folder has none. Prints a Markdown table.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use facecast::compute::Compute;
use facecast::pipeline::batch::{BatchInput, BatchObserver, FileReport, FileStatus};
use facecast::pipeline::recipe::Recipe;
use facecast::pipeline::runtime::NetworkCache;
use facecast::pipeline::steps::{StepEnv, build_engine, load_networks};
use facecast::weights::models::MTCNN_ID;
use facecast::weights::store::WeightsStore;
use image::{ImageEncoder, RgbImage, imageops};

struct Options {
    photos: usize,
    side: u32,
    recipe: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    mtcnn: PathBuf,
    keep: Option<PathBuf>,
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
    let store = WeightsStore::open(opts.data_dir.clone())?;
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
    let mut engine = build_engine(recipe, &env, &cache, &loaded)?;
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
        "networks: {}; edit steps: {}",
        networks.join(", "),
        engine.step_count()
    );
    println!(
        "done {}, skipped {}, failed {}",
        summary.count(FileStatus::Done),
        summary.count(FileStatus::Skipped),
        summary.count(FileStatus::Failed)
    );
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

fn rayon_threads() -> String {
    std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| {
        std::thread::available_parallelism()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| "?".into())
    })
}
