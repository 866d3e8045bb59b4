//! Wall time of one fine-tuning iteration (`Trainer::iteration`, `train.py`'s loop body: D step,
//! R1 when due, G step, path length when due, EMA) on the CPU backend, for the side-by-side with
//! rosinality's `train.py` in `benches/RESULTS.md`.
//!
//!   bench_train --ckpt FILE [--iters N] [--batch B] [--size S]
//!
//! FILE is a `train.py`-layout checkpoint (`g`, `d`, `g_ema` state dicts) at any size; the
//! comparison uses one of random values at the released 256 px shapes (style_dim 512, n_mlp 8,
//! channel_multiplier 2), written by the reference side so both time the same weights. Timing does
//! not depend on the values. The faces are eight random images (the trainer draws from them and
//! their mirrors). Settings: `train.py`'s defaults (R1 every 16, path length every 4, mixing 0.9)
//! with batch B (4 unless given). Each iteration's line says whether R1 (i % 16 == 0) and the path
//! length (i % 4 == 0) ran, and the peak RSS so far (VmHWM).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use facecast::compute::Compute;
use facecast::pipeline::generator_training::data::{TrainingPhoto, TrainingSet};
use facecast::pipeline::generator_training::trainer::{TrainSettings, Trainer};
use image::RgbImage;

struct Options {
    ckpt: PathBuf,
    iters: u64,
    batch: usize,
}

fn parse() -> Result<Options> {
    let mut ckpt = None;
    let mut iters = 5;
    let mut batch = 4;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--ckpt" => ckpt = Some(PathBuf::from(value("--ckpt")?)),
            "--iters" => iters = value("--iters")?.parse().context("--iters: a count")?,
            "--batch" => batch = value("--batch")?.parse().context("--batch: a count")?,
            other => bail!("unknown argument {other}"),
        }
    }
    Ok(Options {
        ckpt: ckpt.context("--ckpt FILE is required")?,
        iters,
        batch,
    })
}

/// Peak resident memory of this process (VmHWM), in MiB.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// Eight faces of uniform noise (a small xorshift stream, so runs are repeatable).
fn random_set(size: u32) -> TrainingSet {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let photos = (0..8)
        .map(|i| {
            let face = RgbImage::from_fn(size, size, |_, _| {
                let mut px = [0u8; 3];
                for c in px.iter_mut() {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    *c = (state >> 56) as u8;
                }
                image::Rgb(px)
            });
            TrainingPhoto {
                path: PathBuf::from(format!("random_{i}.png")),
                sha256: String::new(),
                face,
            }
        })
        .collect();
    TrainingSet {
        size,
        photos,
        skipped: Vec::new(),
    }
}

fn main() -> Result<()> {
    let opts = parse()?;
    let compute = Compute::cpu();
    let settings = TrainSettings {
        batch: opts.batch,
        ..TrainSettings::default()
    };
    let start = Instant::now();
    let mut trainer = Trainer::from_file(&opts.ckpt, settings, &compute.device)
        .with_context(|| format!("loading {}", opts.ckpt.display()))?;
    let size = trainer.size();
    eprintln!(
        "bench_train: {} px, batch {}, loaded in {:.1} s, load {}",
        size,
        opts.batch,
        start.elapsed().as_secs_f64(),
        load_average()
    );
    let set = random_set(size as u32);
    let mut times = Vec::new();
    for _ in 0..opts.iters {
        let i = trainer.iteration;
        let r1 = i.is_multiple_of(settings.d_reg_every as u64);
        let path = i.is_multiple_of(settings.g_reg_every as u64);
        let t = Instant::now();
        let losses = trainer
            .iteration(&set)
            .with_context(|| format!("iteration {i}"))?;
        let secs = t.elapsed().as_secs_f64();
        times.push((secs, r1, path));
        println!(
            "facecast iter {i}: {secs:.2} s  r1={r1} path={path}  d={:.3} g={:.3}  VmHWM {:.0} MiB",
            losses.d_loss,
            losses.g_loss,
            peak_rss_mib()
        );
    }
    let plain: Vec<f64> = times.iter().filter(|t| !t.1 && !t.2).map(|t| t.0).collect();
    if !plain.is_empty() {
        println!(
            "facecast plain iterations: mean {:.2} s ({} of them)",
            plain.iter().sum::<f64>() / plain.len() as f64,
            plain.len()
        );
    }
    println!(
        "facecast {size} px batch {}: peak RSS {:.0} MiB, load {}",
        opts.batch,
        peak_rss_mib(),
        load_average()
    );
    Ok(())
}
