//! `facecast virtual train`: fine-tune StyleGAN2 on a folder of face photos, with checkpoints a
//! killed run resumes from, and register the result as a generator `virtual generate` can use.
//!
//! The run itself (start or resume, checkpoints, registration) is
//! [`crate::pipeline::generator_training::run`], shared with the window's Train job; this file
//! parses the flags and prints what the run reports.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use burn::tensor::Device;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::batch_progress::short_duration;
use crate::compute::{BackendChoice, Compute};
use crate::pipeline::generator_training::ada::{ADA_LENGTH, ADA_TARGET, AugmentSettings};
use crate::pipeline::generator_training::run::{
    RunEvent, RunOutcome, RunRequest, TrainControl, TrainingRun, trained_generator_file,
};
use crate::pipeline::generator_training::trainer::{Losses, TrainSettings};
use crate::weights::models::{LoadedStyleGan2, MTCNN_ID, load_mtcnn, load_stylegan2_file};
use crate::weights::store::WeightsStore;

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
    let file = trained_generator_file(data, name)?;
    Ok(load_stylegan2_file(&file, device)?)
}

impl TrainArgs {
    /// The settings of a new run (a resumed run keeps those it started with).
    fn settings(&self) -> TrainSettings {
        TrainSettings {
            batch: self.batch,
            seed: self.seed,
            r1: self.r1,
            d_reg_every: self.d_reg_every,
            path_regularize: self.path_regularize,
            g_reg_every: self.g_reg_every,
            augment: AugmentSettings {
                augment: self.augment,
                augment_p: self.augment_p,
                ada_target: self.ada_target,
                ada_length: self.ada_length,
            },
            ..TrainSettings::default()
        }
    }

    fn request(&self) -> RunRequest {
        RunRequest {
            name: self.name.clone(),
            resume: self.resume.clone(),
            photos: self.photos.clone(),
            from: self.from.clone(),
            steps: self.steps,
            checkpoint_every: self.checkpoint_every,
            size: self.size,
            settings: self.settings(),
            // The terminal shows no images.
            preview_every: 0,
        }
    }
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

/// Prints a run's events: notes on stderr, checkpoints on stdout, a progress bar on a terminal.
struct Printer {
    bar: Option<ProgressBar>,
}

impl Printer {
    fn event(&mut self, event: RunEvent) {
        match event {
            RunEvent::Resuming {
                run,
                checkpoint,
                iteration,
            } => eprintln!(
                "resuming {run} from {} (iteration {iteration})",
                checkpoint.display()
            ),
            RunEvent::Aligning { photos, size } => {
                eprintln!("aligning the faces of {} at {size} px…", photos.display())
            }
            RunEvent::Photo { .. } | RunEvent::Previews { .. } => {}
            RunEvent::Prepared {
                faces,
                skipped,
                photos_changed,
                size,
                batch,
                from,
                to,
            } => {
                for (path, why) in &skipped {
                    eprintln!("skipped {}: {why}", path.display());
                }
                if photos_changed {
                    eprintln!(
                        "note: the photos differ from those the run started with; the lineage records the new set"
                    );
                }
                eprintln!(
                    "{faces} faces ({} skipped), {size} px, batch {batch}, iterations {from} to {to}",
                    skipped.len()
                );
                self.bar = Some(progress_bar(to.saturating_sub(from)));
            }
            RunEvent::Iteration { losses, .. } => {
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                    bar.set_message(losses_text(&losses));
                }
            }
            RunEvent::Checkpoint {
                iteration,
                file,
                losses,
                elapsed,
            } => {
                let losses = losses
                    .map(|l| format!("{}; ", losses_text(&l)))
                    .unwrap_or_default();
                let line = format!(
                    "iteration {iteration}: checkpoint {} ({losses}{} elapsed)",
                    file.display(),
                    short_duration(elapsed)
                );
                match &self.bar {
                    Some(bar) => bar.suspend(|| println!("{line}")),
                    None => println!("{line}"),
                }
            }
            // The command line has no pause.
            RunEvent::Paused { .. } | RunEvent::Resumed { .. } => {}
        }
    }
}

fn progress_bar(todo: u64) -> ProgressBar {
    let bar = ProgressBar::new(todo);
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {per_sec} {eta} left  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

pub fn run(args: TrainArgs, store: &WeightsStore, backend: BackendChoice) -> anyhow::Result<ExitCode> {
    let compute = Compute::select(backend)?;
    let device = compute.device.clone();
    let mut printer = Printer { bar: None };
    let mut on_event = |e| printer.event(e);
    let mut run = TrainingRun::open(store, args.request(), &device, &mut on_event)?;
    store.require(MTCNN_ID)?;
    let nets = load_mtcnn(&store.model_dir(MTCNN_ID), &device)?;
    run.align(&nets, &mut on_event)?;
    // Ctrl-C kills the process; the last checkpoint resumes it.
    let outcome = run.run(&TrainControl::default(), &|| false, &mut on_event)?;
    if let Some(bar) = &printer.bar {
        bar.finish_and_clear();
    }
    match outcome {
        RunOutcome::Registered {
            name,
            file,
            mut lineage,
        } => {
            println!(
                "trained generator {name} registered: {} (generate with `facecast virtual generate --generator {name} --seed N --out FILE`)",
                file.display()
            );
            if let Some(set) = run.training_set() {
                super::check_copies::after_training(store, store.data_dir(), &mut lineage, set, &device);
            }
        }
        RunOutcome::Cancelled {
            iteration,
            checkpoint,
        } => println!(
            "stopped after iteration {iteration}; checkpoint {}",
            checkpoint.display()
        ),
    }
    Ok(ExitCode::SUCCESS)
}
