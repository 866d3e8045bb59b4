//! `facecast virtual train`: fine-tune StyleGAN2 on a folder of face photos, with checkpoints a
//! killed run resumes from, and register the result as a generator `virtual generate` can use.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use burn::tensor::Device;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::batch_progress::short_duration;
use crate::compute::{BackendChoice, Compute};
use crate::pipeline::generator_training::ada::{ADA_LENGTH, ADA_TARGET, AugmentSettings};
use crate::pipeline::generator_training::data::TrainingSet;
use crate::pipeline::generator_training::registry::{
    Lineage, PhotoRecord, SkippedPhoto, check_name, file_sha256, generator_file, latest_checkpoint,
    list_generators, now_rfc3339, prune_checkpoints, read_lineage, register, run_dir, write_json,
};
use crate::pipeline::generator_training::save::save_checkpoint;
use crate::pipeline::generator_training::trainer::{Losses, TrainSettings, Trainer};
use crate::weights::models::{LoadedStyleGan2, MTCNN_ID, STYLEGAN2_ID, load_mtcnn, load_stylegan2_file};
use crate::weights::store::WeightsStore;

/// How the training set mirrors faces, as `model.json` records it.
const MIRRORING: &str =
    "every face also mirrored; batches draw uniformly from both (train.py flips at random, p = 0.5)";

#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// The folder of face photos (the largest face of each is used; photos without one are listed
    /// and skipped). Taken from the run when resuming.
    #[arg(long, value_name = "DIR")]
    photos: Option<PathBuf>,
    /// The checkpoint to start from: a train.py checkpoint holding g_ema and the discriminator d,
    /// or `installed` for the installed StyleGAN2 (whose released file has no discriminator).
    #[arg(long = "from", value_name = "FILE|installed", default_value = "installed")]
    from: String,
    /// Train until this many iterations are done (counting those of a resumed run).
    #[arg(long, default_value_t = 1000)]
    steps: u64,
    #[arg(long, default_value_t = 4)]
    batch: usize,
    /// The resolution; it must be the base generator's (fine-tuning keeps the architecture).
    #[arg(long)]
    size: Option<usize>,
    /// Continue the run of this name from its latest checkpoint (its photos, seed and settings).
    #[arg(long, value_name = "RUN")]
    resume: Option<String>,
    /// Write a checkpoint every N iterations (a killed run loses at most the last N).
    #[arg(long, value_name = "N", default_value_t = 500)]
    checkpoint_every: u64,
    /// The trained generator's name (and the run's, unless --resume names another).
    #[arg(long)]
    name: String,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// R1 weight (train.py: 10); 0 trains without R1.
    #[arg(long, default_value_t = 10.0)]
    r1: f64,
    /// Path-length weight (train.py: 2); 0 trains without it.
    #[arg(long, default_value_t = 2.0)]
    path_regularize: f64,
    #[arg(long, default_value_t = 16)]
    d_reg_every: usize,
    #[arg(long, default_value_t = 4)]
    g_reg_every: usize,
    /// Adaptive discriminator augmentation (train.py's --augment): flips, rotations, shifts,
    /// scaling and colour changes before D, with a probability that adapts to D's over-fitting.
    #[arg(long)]
    augment: bool,
    /// A fixed augmentation probability instead of the adaptive one (0: adaptive).
    #[arg(
        long = "augment-p",
        alias = "augment_p",
        default_value_t = 0.0,
        value_name = "P"
    )]
    augment_p: f64,
    /// The r_t the adaptive probability steers D's real predictions to (train.py: 0.6).
    #[arg(long = "ada-target", alias = "ada_target", default_value_t = ADA_TARGET)]
    ada_target: f64,
    /// Real images over which p can go from 0 to 1 (train.py: 500000).
    #[arg(long = "ada-length", alias = "ada_length", default_value_t = ADA_LENGTH)]
    ada_length: u64,
}

/// A generator trained by `virtual train`, by name.
pub fn load_trained(data: &Path, name: &str, device: &Device) -> anyhow::Result<LoadedStyleGan2> {
    check_name(name)?;
    let file = generator_file(data, name);
    if !file.is_file() {
        let known = list_generators(data);
        bail!(
            "no trained generator called {name:?} ({} is missing); trained generators: {}",
            file.display(),
            if known.is_empty() {
                "none yet (make one with `facecast virtual train`)".to_string()
            } else {
                known.join(", ")
            }
        );
    }
    Ok(load_stylegan2_file(&file, device)?)
}

fn base_file(store: &WeightsStore, from: &str) -> anyhow::Result<PathBuf> {
    if from != "installed" {
        // Absolute, so the lineage names the file whatever folder the command ran in.
        return std::fs::canonicalize(from).with_context(|| format!("--from {from}"));
    }
    let files = store.require(STYLEGAN2_ID)?;
    files
        .into_iter()
        .next()
        .with_context(|| format!("{STYLEGAN2_ID} lists no file"))
}

fn records(list: impl IntoIterator<Item = (PathBuf, String)>) -> Vec<PhotoRecord> {
    list.into_iter()
        .map(|(p, sha256)| PhotoRecord {
            file: p.display().to_string(),
            sha256,
        })
        .collect()
}

fn losses_text(l: &Losses) -> String {
    let r1 = l.r1_loss.map(|r| format!(" r1 {r:.4}")).unwrap_or_default();
    let path = l.path_loss.map(|p| format!(" path {p:.4}")).unwrap_or_default();
    let ada = match l.r_t {
        Some(r_t) => format!(" p {:.4} r_t {r_t:.2}", l.ada_aug_p),
        None if l.ada_aug_p > 0.0 => format!(" p {:.4}", l.ada_aug_p),
        None => String::new(),
    };
    format!("d {:.4} g {:.4}{r1}{path}{ada}", l.d_loss, l.g_loss)
}

pub fn run(args: TrainArgs, store: &WeightsStore, backend: BackendChoice) -> anyhow::Result<ExitCode> {
    check_name(&args.name)?;
    let data = store.data_dir().to_path_buf();
    let run_name = args.resume.clone().unwrap_or_else(|| args.name.clone());
    check_name(&run_name)?;
    let dir = run_dir(&data, &run_name);
    let run_json = dir.join("run.json");
    let compute = Compute::select(backend)?;
    let device = compute.device.clone();

    let (mut trainer, mut lineage) = match &args.resume {
        Some(run) => {
            let lineage = read_lineage(&run_json)
                .with_context(|| format!("cannot resume {run:?}: it has no run record"))?;
            let Some(ckpt) = latest_checkpoint(&dir) else {
                bail!(
                    "the run {run:?} has no checkpoint yet ({}); start it again without --resume",
                    dir.display()
                );
            };
            let settings = TrainSettings {
                batch: lineage.batch,
                seed: lineage.seed,
                r1: lineage.r1,
                d_reg_every: lineage.d_reg_every,
                path_regularize: lineage.path_regularize,
                g_reg_every: lineage.g_reg_every,
                augment: lineage.augment,
                ..TrainSettings::default()
            };
            let trainer = Trainer::resume(&ckpt, settings, &device)?;
            eprintln!(
                "resuming {run} from {} (iteration {})",
                ckpt.display(),
                trainer.iteration
            );
            (trainer, lineage)
        }
        None => {
            if latest_checkpoint(&dir).is_some() {
                bail!(
                    "a run called {run_name:?} exists already ({}); continue it with --resume {run_name}, or choose another --name",
                    dir.display()
                );
            }
            let base = base_file(store, &args.from)?;
            let settings = TrainSettings {
                batch: args.batch,
                seed: args.seed,
                r1: args.r1,
                d_reg_every: args.d_reg_every,
                path_regularize: args.path_regularize,
                g_reg_every: args.g_reg_every,
                augment: AugmentSettings {
                    augment: args.augment,
                    augment_p: args.augment_p,
                    ada_target: args.ada_target,
                    ada_length: args.ada_length,
                },
                ..TrainSettings::default()
            };
            let trainer = Trainer::from_file(&base, settings, &device)?;
            let photos = args
                .photos
                .as_deref()
                .context("--photos DIR is needed to start a run")?;
            let photos =
                std::fs::canonicalize(photos).with_context(|| format!("--photos {}", photos.display()))?;
            let now = now_rfc3339();
            let lineage = Lineage {
                name: args.name.clone(),
                base_file: base.display().to_string(),
                base_sha256: file_sha256(&base)?,
                photos_dir: photos.display().to_string(),
                photos: Vec::new(),
                skipped: Vec::new(),
                steps: trainer.iteration,
                size: trainer.size(),
                batch: settings.batch,
                seed: settings.seed,
                r1: settings.r1,
                d_reg_every: settings.d_reg_every,
                path_regularize: settings.path_regularize,
                g_reg_every: settings.g_reg_every,
                mirroring: MIRRORING.to_string(),
                started: now.clone(),
                updated: now,
                augment: settings.augment,
                ada_aug_p: trainer.augment_p(),
                near_copies: None,
            };
            (trainer, lineage)
        }
    };
    if let Some(size) = args.size
        && size != trainer.size()
    {
        bail!(
            "--size {size}: the base generator makes {} px faces, and fine-tuning keeps its resolution; \
             start from a generator of {size} px",
            trainer.size()
        );
    }

    store.require(MTCNN_ID)?;
    let nets = load_mtcnn(&store.model_dir(MTCNN_ID), &device)?;
    let photos_dir = args
        .photos
        .clone()
        .unwrap_or_else(|| PathBuf::from(&lineage.photos_dir));
    eprintln!(
        "aligning the faces of {} at {} px…",
        photos_dir.display(),
        trainer.size()
    );
    let set = TrainingSet::from_folder(&photos_dir, trainer.size() as u32, &nets, &device, &mut |_| {})?;
    for (path, why) in &set.skipped {
        eprintln!("skipped {}: {why}", path.display());
    }
    let photos = records(set.photos.iter().map(|p| (p.path.clone(), p.sha256.clone())));
    if args.resume.is_some() && !lineage.photos.is_empty() && photos != lineage.photos {
        eprintln!("note: the photos differ from those the run started with; the lineage records the new set");
    }
    lineage.photos = photos;
    lineage.skipped = set
        .skipped
        .iter()
        .map(|(p, why)| SkippedPhoto {
            file: p.display().to_string(),
            reason: why.clone(),
        })
        .collect();
    lineage.name = args.name.clone();
    eprintln!(
        "{} faces ({} skipped), {} px, batch {}, iterations {} to {}",
        set.photos.len(),
        set.skipped.len(),
        trainer.size(),
        trainer.settings.batch,
        trainer.iteration,
        args.steps
    );

    // The record exists before the first checkpoint, so a run killed at any point after that
    // checkpoint can be resumed (it names the photos, the seed and the settings).
    lineage.steps = trainer.iteration;
    lineage.updated = now_rfc3339();
    write_json(&run_json, &lineage)?;

    let every = args.checkpoint_every.max(1);
    let todo = args.steps.saturating_sub(trainer.iteration);
    let bar = ProgressBar::new(todo);
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {per_sec} {eta} left  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let mut last = latest_checkpoint(&dir);
    if let Some(keep) = &last {
        prune_checkpoints(&dir, keep);
    }
    while trainer.iteration < args.steps {
        let losses = trainer.iteration(&set)?;
        bar.inc(1);
        bar.set_message(losses_text(&losses));
        if trainer.iteration % every == 0 || trainer.iteration == args.steps {
            let file = trainer.checkpoint_path(&dir.join("checkpoint"));
            save_checkpoint(&trainer, &file)?;
            lineage.steps = trainer.iteration;
            lineage.ada_aug_p = trainer.augment_p();
            lineage.updated = now_rfc3339();
            write_json(&run_json, &lineage)?;
            prune_checkpoints(&dir, &file);
            bar.suspend(|| {
                println!(
                    "iteration {}: checkpoint {} ({}; {} elapsed)",
                    trainer.iteration,
                    file.display(),
                    losses_text(&losses),
                    short_duration(started.elapsed())
                )
            });
            last = Some(file);
        }
    }
    bar.finish_and_clear();
    let Some(last) = last else {
        bail!(
            "no iteration was run (the run is at {} already) and it has no checkpoint",
            trainer.iteration
        );
    };
    let registered = register(&data, &lineage, &last)?;
    println!(
        "trained generator {} registered: {} (generate with `facecast virtual generate --generator {} --seed N --out FILE`)",
        lineage.name,
        registered.display(),
        lineage.name
    );
    super::check_copies::after_training(store, &data, &mut lineage, &set, &device);
    Ok(ExitCode::SUCCESS)
}
