//! `facecast train-classifier`: fine-tunes the face/no-face screening classifier on two folders of
//! the user's photos and installs it, and `facecast classify`: asks it about photos.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::compute::{BackendChoice, Compute};
use crate::io::collect::collect_photos;
use crate::io::{DecodeLimits, load_photo};
use crate::pipeline::classifier::train::{TrainEvent, TrainSettings, photos_from_folders, train};
use crate::pipeline::classifier::{
    FACE_THRESHOLD, FaceClassifier, base_from_file, base_from_store, install, load_installed, save_checkpoint,
};
use crate::weights::models::FACE_CLASSIFIER_ID;
use crate::weights::store::WeightsStore;

#[derive(Debug, clap::Args)]
pub struct TrainClassifierArgs {
    /// A folder of photos that show a face (searched recursively).
    #[arg(long, value_name = "DIR")]
    pub faces: PathBuf,
    /// A folder of photos that show no face.
    #[arg(long, value_name = "DIR")]
    pub no_faces: PathBuf,
    /// At most this many passes over the photos.
    #[arg(long, default_value_t = TrainSettings::default().epochs)]
    pub epochs: usize,
    /// Decides the split, the augmentation and the initial head: the same photos and seed give
    /// the same classifier.
    #[arg(long, default_value_t = TrainSettings::default().seed)]
    pub seed: u64,
    /// Also write the checkpoint here (it is always installed into the data directory unless
    /// --no-install).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Do not install the result as the app's classifier.
    #[arg(long)]
    pub no_install: bool,
    /// Start from this MobileNetV2 checkpoint instead of the installed mobilenetv2-imagenet-v2.
    #[arg(long, value_name = "FILE")]
    pub base: Option<PathBuf>,
    /// Side of the square input in pixels (224: MobileNetV2's ImageNet size; smaller is faster).
    #[arg(long, default_value_t = TrainSettings::default().input_size)]
    pub size: u32,
    #[arg(long, default_value_t = TrainSettings::default().batch_size)]
    pub batch_size: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = TrainSettings::default().learning_rate)]
    pub lr: f64,
    /// Stop after this many epochs without a better validation accuracy (0: never).
    #[arg(long, default_value_t = TrainSettings::default().patience)]
    pub patience: usize,
    /// Share of each folder held out for validation.
    #[arg(long, default_value_t = TrainSettings::default().val_fraction)]
    pub val_fraction: f64,
    /// Print the training record as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(
    args: TrainClassifierArgs,
    backend: BackendChoice,
    data_dir: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let store = WeightsStore::open(data_dir)?;
    let compute = Compute::select(backend)?;
    let base = match &args.base {
        Some(file) => base_from_file(file)?,
        None => base_from_store(&store)?,
    };
    if base.info.reduced {
        eprintln!("note: starting from reduced-width test weights, not the released ImageNet network");
    }
    let photos = photos_from_folders(&args.faces, &args.no_faces)?;
    let settings = TrainSettings {
        epochs: args.epochs,
        seed: args.seed,
        batch_size: args.batch_size,
        learning_rate: args.lr,
        patience: args.patience,
        val_fraction: args.val_fraction,
        input_size: args.size,
    };
    eprintln!(
        "training on {} photos from {} and {} ({}, seed {})",
        photos.len(),
        args.faces.display(),
        args.no_faces.display(),
        compute.label(),
        settings.seed
    );
    let mut progress = Progress::new(std::io::stderr().is_terminal());
    let trained = train(
        &base.tensors,
        &base.path,
        base.info.clone(),
        &photos,
        &settings,
        &compute.device,
        &mut |event| progress.on(event),
        &|| false,
    );
    progress.finish();
    let trained = trained?;
    let info = &trained.info;
    let best = info.training.best_epoch;
    let accuracy = info.val_accuracy().unwrap_or(0.0);
    eprintln!(
        "kept epoch {best}: validation accuracy {:.1}% on {} photos",
        accuracy * 100.0,
        info.training.val_counts.iter().sum::<usize>()
    );
    if let Some(out) = &args.out {
        save_checkpoint(out, &trained.tensors, info)?;
        eprintln!("wrote {}", out.display());
    }
    if !args.no_install {
        let installed = install(&store, &trained)?;
        eprintln!("installed as {FACE_CLASSIFIER_ID}: {}", installed.display());
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&trained.info).context("writing the record as JSON")?
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A bar over all batches on a terminal, one line per epoch always.
struct Progress {
    terminal: bool,
    bar: Option<ProgressBar>,
    epochs: usize,
}

impl Progress {
    fn new(terminal: bool) -> Progress {
        Progress {
            terminal,
            bar: None,
            epochs: 0,
        }
    }

    fn line(&self, text: String) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    fn on(&mut self, event: TrainEvent) {
        match event {
            TrainEvent::Loading { done, total } => {
                if done == total {
                    eprintln!("read {total} photos");
                }
            }
            TrainEvent::Skipped { path, reason } => {
                self.line(format!("skipped {}: {reason}", path.display()));
            }
            TrainEvent::Started {
                train,
                val,
                batches_per_epoch,
                epochs,
            } => {
                self.epochs = epochs;
                eprintln!(
                    "training on {} with a face and {} without; validating on {} and {}",
                    train[1], train[0], val[1], val[0]
                );
                if self.terminal {
                    let bar = ProgressBar::new((batches_per_epoch * epochs) as u64);
                    let style = ProgressStyle::with_template(
                        "  {bar:40.cyan/blue} {pos}/{len} batches, eta {eta} {msg}",
                    );
                    if let Ok(style) = style {
                        bar.set_style(style.progress_chars("=> "));
                    }
                    self.bar = Some(bar);
                }
            }
            TrainEvent::Batch { epoch, loss, .. } => {
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                    bar.set_message(format!("epoch {epoch}, loss {loss:.3}"));
                }
            }
            TrainEvent::Epoch { stats, best } => {
                let mark = if best { "  (best so far)" } else { "" };
                self.line(format!(
                    "epoch {}/{}: train loss {:.3}, accuracy {:.1}%; validation loss {:.3}, accuracy {:.1}%{mark}",
                    stats.epoch,
                    self.epochs,
                    stats.train_loss,
                    stats.train_accuracy * 100.0,
                    stats.val_loss,
                    stats.val_accuracy * 100.0
                ));
            }
            TrainEvent::EarlyStop { epoch, best_epoch } => {
                self.line(format!(
                    "stopping early after epoch {epoch}: no better validation result since epoch {best_epoch}"
                ));
            }
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct ClassifyArgs {
    /// Print a JSON report on stdout.
    #[arg(long)]
    pub json: bool,
    /// Use this classifier checkpoint instead of the installed one.
    #[arg(long, value_name = "FILE")]
    pub classifier: Option<PathBuf>,
    /// Photos or folders (searched recursively).
    #[arg(required = true, value_name = "PATHS")]
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, Serialize)]
struct Verdict {
    path: String,
    face_probability: Option<f32>,
    face: Option<bool>,
    error: Option<String>,
}

pub fn classify(
    args: ClassifyArgs,
    backend: BackendChoice,
    data_dir: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let compute = Compute::select(backend)?;
    let classifier = match &args.classifier {
        Some(file) => FaceClassifier::load(file, &compute.device)?,
        None => load_installed(&WeightsStore::open(data_dir)?, &compute.device)
            .context("no face classifier is installed; train one with `facecast train-classifier`")?,
    };
    let mut verdicts = Vec::new();
    for path in collect_photos(&args.paths) {
        let verdict = classify_one(&classifier, &path, &compute);
        if !args.json {
            match (&verdict.error, verdict.face_probability) {
                (Some(e), _) => println!("{}: error: {e}", verdict.path),
                (None, Some(p)) => println!(
                    "{}: {} (face probability {p:.3})",
                    verdict.path,
                    if p >= FACE_THRESHOLD { "face" } else { "no face" }
                ),
                (None, None) => {}
            }
        }
        verdicts.push(verdict);
    }
    let failed = verdicts.iter().filter(|v| v.error.is_some()).count();
    if args.json {
        println!("{}", serde_json::json!({ "images": verdicts }));
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

fn classify_one(classifier: &FaceClassifier, path: &Path, compute: &Compute) -> Verdict {
    let name = path.to_string_lossy().into_owned();
    let result = load_photo(path, &DecodeLimits::default())
        .map_err(|e| e.to_string())
        .and_then(|photo| {
            classifier
                .face_probability(&[&photo.rgb], &compute.device)
                .map_err(|e| format!("{}: {e}", path.display()))
        });
    match result {
        Ok(p) => {
            let p = p.first().copied();
            Verdict {
                path: name,
                face_probability: p,
                face: p.map(|p| p >= FACE_THRESHOLD),
                error: None,
            }
        }
        Err(e) => Verdict {
            path: name,
            face_probability: None,
            face: None,
            error: Some(e),
        },
    }
}
