//! One fine-tuning run from start to registration, shared by `facecast virtual train` and the
//! window's Train job: start a new run or resume one, align the photos, write `run.json`, step,
//! checkpoint atomically every N iterations, prune, and register the result.
//!
//! The run reports through [`RunEvent`]s and is steered by a [`TrainControl`] checked between
//! iterations: pause blocks on a condition variable (no polling of the trainer, no CPU burnt),
//! cancel stops after the current iteration and writes a checkpoint so the run can be resumed,
//! without registering anything.
//!
//! Previews: a fixed set of seeds rendered by `g_ema` (no truncation, each seed's own noise
//! maps), at the start and every `preview_every` iterations, so successive grids show the same
//! faces changing.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use burn::tensor::Device;
use image::RgbImage;

use super::TrainError;
pub use super::control::TrainControl;
use super::data::TrainingSet;
use super::registry::{
    Lineage, PhotoRecord, SkippedPhoto, check_name, file_sha256, generator_file, latest_checkpoint,
    list_generators, now_rfc3339, prune_checkpoints, read_lineage, register, run_dir, write_json,
};
use super::save::save_checkpoint;
use super::trainer::{Losses, TrainSettings, Trainer};
use crate::nets::mtcnn::MtcnnNets;
use crate::nets::stylegan2::StyleGan2;
use crate::pipeline::generate::{GenerateSettings, NoiseChoice, generate};
use crate::weights::models::STYLEGAN2_ID;
use crate::weights::store::WeightsStore;

/// How the training set mirrors faces, as `model.json` records it.
pub const MIRRORING: &str =
    "every face also mirrored; batches draw uniformly from both (train.py flips at random, p = 0.5)";

/// The seeds of the preview grid (fixed, so every grid shows the same eight faces).
pub const PREVIEW_SEEDS: [u32; 8] = [1, 2, 3, 4, 5, 6, 7, 8];

/// What to run.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// The trained generator's name (and the run's, unless `resume` names another).
    pub name: String,
    /// Continue this run from its latest checkpoint (its photos, seed and settings).
    pub resume: Option<String>,
    /// The photos; taken from the run when resuming and `None`.
    pub photos: Option<PathBuf>,
    /// `installed` for the installed StyleGAN2, else a `train.py` checkpoint file.
    pub from: String,
    /// Train until this many iterations are done (counting those of a resumed run).
    pub steps: u64,
    pub checkpoint_every: u64,
    /// The resolution asked for; it must be the base generator's.
    pub size: Option<usize>,
    /// The settings of a new run (a resumed run keeps its own, see [`settings_of`]).
    pub settings: TrainSettings,
    /// Render the preview seeds every this many iterations (0: no previews).
    pub preview_every: u64,
}

/// What a run reports, in order.
#[derive(Debug, Clone)]
pub enum RunEvent {
    Resuming {
        run: String,
        checkpoint: PathBuf,
        iteration: u64,
    },
    Aligning {
        photos: PathBuf,
        size: usize,
    },
    /// One photo is being aligned (`done` before it, of `total`).
    Photo {
        done: usize,
        total: usize,
    },
    Prepared {
        faces: usize,
        skipped: Vec<(PathBuf, String)>,
        /// A resumed run found other photos than it started with.
        photos_changed: bool,
        size: usize,
        batch: usize,
        from: u64,
        to: u64,
    },
    Iteration {
        losses: Losses,
        /// Iterations done so far (the run's counter after this one).
        done: u64,
        steps: u64,
        /// Smoothed over recent iterations, pauses and saves left out.
        steps_per_sec: f64,
        left: Duration,
    },
    Checkpoint {
        iteration: u64,
        file: PathBuf,
        losses: Option<Losses>,
        elapsed: Duration,
    },
    /// The preview seeds rendered by `g_ema` after `iteration` iterations.
    Previews {
        iteration: u64,
        images: Vec<(u32, RgbImage)>,
    },
    /// The run waits between iterations (`iteration` done) until resumed or cancelled.
    Paused {
        iteration: u64,
    },
    Resumed {
        iteration: u64,
    },
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum RunOutcome {
    /// All iterations done and the generator registered.
    Registered {
        name: String,
        file: PathBuf,
        lineage: Box<Lineage>,
    },
    /// Stopped on request after `iteration` iterations; `checkpoint` resumes it.
    Cancelled { iteration: u64, checkpoint: PathBuf },
}

/// The settings a run was started with, from its record: a resumed run trains as it started.
pub fn settings_of(lineage: &Lineage) -> TrainSettings {
    TrainSettings {
        batch: lineage.batch,
        seed: lineage.seed,
        r1: lineage.r1,
        d_reg_every: lineage.d_reg_every,
        path_regularize: lineage.path_regularize,
        g_reg_every: lineage.g_reg_every,
        augment: lineage.augment,
        ..TrainSettings::default()
    }
}

/// The file a run starts from: `installed` (the installed StyleGAN2) or a checkpoint file.
pub fn base_file(store: &WeightsStore, from: &str) -> Result<PathBuf, TrainError> {
    if from != "installed" {
        // Absolute, so the lineage names the file whatever folder the command ran in.
        return std::fs::canonicalize(from).map_err(|e| TrainError::Input(format!("--from {from}: {e}")));
    }
    let files = store
        .require(STYLEGAN2_ID)
        .map_err(|e| TrainError::Input(e.to_string()))?;
    files
        .into_iter()
        .next()
        .ok_or_else(|| TrainError::Input(format!("{STYLEGAN2_ID} lists no file")))
}

/// The checkpoint of the trained generator `name`, or an error listing the ones there are.
pub fn trained_generator_file(data: &Path, name: &str) -> Result<PathBuf, TrainError> {
    check_name(name)?;
    let file = generator_file(data, name);
    if file.is_file() {
        return Ok(file);
    }
    let known = list_generators(data);
    Err(TrainError::Input(format!(
        "no trained generator called {name:?} ({} is missing); trained generators: {}",
        file.display(),
        if known.is_empty() {
            "none yet (make one with `facecast virtual train`)".to_string()
        } else {
            known.join(", ")
        }
    )))
}

/// A run of `name` that can be resumed: its record, when it has a checkpoint.
pub fn resumable(data: &Path, name: &str) -> Option<Lineage> {
    check_name(name).ok()?;
    let dir = run_dir(data, name);
    latest_checkpoint(&dir)?;
    read_lineage(&dir.join("run.json")).ok()
}

fn records(list: impl IntoIterator<Item = (PathBuf, String)>) -> Vec<PhotoRecord> {
    list.into_iter()
        .map(|(p, sha256)| PhotoRecord {
            file: p.display().to_string(),
            sha256,
        })
        .collect()
}

/// A run being prepared or trained.
pub struct TrainingRun {
    pub trainer: Trainer,
    pub lineage: Lineage,
    request: RunRequest,
    dir: PathBuf,
    data: PathBuf,
    set: Option<TrainingSet>,
    device: Device,
}

impl TrainingRun {
    /// Starts a new run (refusing a name whose run has checkpoints) or resumes one, with the
    /// networks loaded on `device`.
    pub fn open(
        store: &WeightsStore,
        request: RunRequest,
        device: &Device,
        on_event: &mut dyn FnMut(RunEvent),
    ) -> Result<TrainingRun, TrainError> {
        check_name(&request.name)?;
        let data = store.data_dir().to_path_buf();
        let run_name = request.resume.clone().unwrap_or_else(|| request.name.clone());
        check_name(&run_name)?;
        let dir = run_dir(&data, &run_name);
        let (trainer, lineage) = match &request.resume {
            Some(run) => {
                let lineage = read_lineage(&dir.join("run.json")).map_err(|e| {
                    TrainError::Input(format!("cannot resume {run:?}: it has no run record ({e})"))
                })?;
                let Some(ckpt) = latest_checkpoint(&dir) else {
                    return Err(TrainError::Input(format!(
                        "the run {run:?} has no checkpoint yet ({}); start it again without --resume",
                        dir.display()
                    )));
                };
                let trainer = Trainer::resume(&ckpt, settings_of(&lineage), device)?;
                on_event(RunEvent::Resuming {
                    run: run.clone(),
                    checkpoint: ckpt,
                    iteration: trainer.iteration,
                });
                (trainer, lineage)
            }
            None => {
                if latest_checkpoint(&dir).is_some() {
                    return Err(TrainError::Input(format!(
                        "a run called {run_name:?} exists already ({}); continue it with --resume {run_name}, or choose another --name",
                        dir.display()
                    )));
                }
                let base = base_file(store, &request.from)?;
                let settings = request.settings;
                let trainer = Trainer::from_file(&base, settings, device)?;
                let photos = request
                    .photos
                    .as_deref()
                    .ok_or_else(|| TrainError::Input("--photos DIR is needed to start a run".into()))?;
                let photos = std::fs::canonicalize(photos)
                    .map_err(|e| TrainError::Input(format!("--photos {}: {e}", photos.display())))?;
                let now = now_rfc3339();
                let lineage = Lineage {
                    name: request.name.clone(),
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
        if let Some(size) = request.size
            && size != trainer.size()
        {
            return Err(TrainError::Input(format!(
                "--size {size}: the base generator makes {} px faces, and fine-tuning keeps its resolution; \
                 start from a generator of {size} px",
                trainer.size()
            )));
        }
        Ok(TrainingRun {
            trainer,
            lineage,
            request,
            dir,
            data,
            set: None,
            device: device.clone(),
        })
    }

    /// The run's folder (`training/<run>`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Aligns the faces of the photos with MTCNN and writes the run's record, which exists
    /// before the first checkpoint so a run killed after that checkpoint can be resumed.
    pub fn align(&mut self, nets: &MtcnnNets, on_event: &mut dyn FnMut(RunEvent)) -> Result<(), TrainError> {
        let size = self.trainer.size();
        let photos_dir = self
            .request
            .photos
            .clone()
            .unwrap_or_else(|| PathBuf::from(&self.lineage.photos_dir));
        on_event(RunEvent::Aligning {
            photos: photos_dir.clone(),
            size,
        });
        let total = super::data::list_photos(&photos_dir)?.len();
        let mut done = 0;
        let set = TrainingSet::from_folder(&photos_dir, size as u32, nets, &self.device, &mut |_| {
            on_event(RunEvent::Photo { done, total });
            done += 1;
        })?;
        let photos = records(set.photos.iter().map(|p| (p.path.clone(), p.sha256.clone())));
        let lineage = &mut self.lineage;
        let photos_changed =
            self.request.resume.is_some() && !lineage.photos.is_empty() && photos != lineage.photos;
        lineage.photos = photos;
        lineage.skipped = set
            .skipped
            .iter()
            .map(|(p, why)| SkippedPhoto {
                file: p.display().to_string(),
                reason: why.clone(),
            })
            .collect();
        lineage.name = self.request.name.clone();
        on_event(RunEvent::Prepared {
            faces: set.photos.len(),
            skipped: set.skipped.clone(),
            photos_changed,
            size,
            batch: self.trainer.settings.batch,
            from: self.trainer.iteration,
            to: self.request.steps,
        });
        lineage.steps = self.trainer.iteration;
        lineage.updated = now_rfc3339();
        write_json(&self.dir.join("run.json"), lineage)?;
        self.set = Some(set);
        Ok(())
    }

    fn checkpoint(&mut self) -> Result<PathBuf, TrainError> {
        let file = self.trainer.checkpoint_path(&self.dir.join("checkpoint"));
        save_checkpoint(&self.trainer, &file)?;
        self.lineage.steps = self.trainer.iteration;
        self.lineage.ada_aug_p = self.trainer.augment_p();
        self.lineage.updated = now_rfc3339();
        write_json(&self.dir.join("run.json"), &self.lineage)?;
        prune_checkpoints(&self.dir, &file);
        Ok(file)
    }

    /// The aligned training faces, once [`TrainingRun::align`] has run (and after a finished run).
    pub fn training_set(&self) -> Option<&TrainingSet> {
        self.set.as_ref()
    }

    /// The preview seeds through `g_ema` as it is now.
    pub fn previews(&self) -> Result<Vec<(u32, RgbImage)>, TrainError> {
        // No latent average: truncation is off, so the centre is never used.
        let model = StyleGan2 {
            generator: self.trainer.g_ema.clone(),
            latent_avg: None,
            noise_buffers: None,
        };
        PREVIEW_SEEDS
            .iter()
            .map(|&seed| {
                let settings = GenerateSettings {
                    seed,
                    truncation: 1.0,
                    noise: NoiseChoice::Seeded,
                };
                generate(&model, &settings)
                    .map(|g| (seed, g.image))
                    .map_err(|e| TrainError::Input(format!("rendering the previews: {e}")))
            })
            .collect()
    }

    /// Trains up to the requested iteration, then registers the generator. `stop` is a second
    /// way to cancel (the caller's own flag), looked at between iterations and while paused.
    pub fn run(
        &mut self,
        control: &TrainControl,
        stop: &dyn Fn() -> bool,
        on_event: &mut dyn FnMut(RunEvent),
    ) -> Result<RunOutcome, TrainError> {
        let set = self
            .set
            .take()
            .ok_or_else(|| TrainError::Input("the run's photos were not aligned".into()))?;
        let steps = self.request.steps;
        let every = self.request.checkpoint_every.max(1);
        let preview_every = self.request.preview_every;
        let started = Instant::now();
        let mut last = latest_checkpoint(&self.dir);
        if let Some(keep) = &last {
            prune_checkpoints(&self.dir, keep);
        }
        if preview_every > 0 {
            on_event(RunEvent::Previews {
                iteration: self.trainer.iteration,
                images: self.previews()?,
            });
        }
        let mut last_losses = None;
        let mut seconds_per_step: Option<f64> = None;
        while self.trainer.iteration < steps {
            if control.is_paused() && !control.is_cancelled() {
                let iteration = self.trainer.iteration;
                on_event(RunEvent::Paused { iteration });
                control.wait_while_paused(stop);
                if !control.is_cancelled() {
                    on_event(RunEvent::Resumed { iteration });
                }
            }
            if control.is_cancelled() || stop() {
                let iteration = self.trainer.iteration;
                // No second save when the last checkpoint is of this very iteration.
                let name = format!("{iteration:06}");
                let saved = last
                    .as_ref()
                    .filter(|f| f.file_stem().and_then(|s| s.to_str()) == Some(name.as_str()));
                let checkpoint = match saved {
                    Some(file) => file.clone(),
                    None => {
                        let file = self.checkpoint()?;
                        on_event(RunEvent::Checkpoint {
                            iteration,
                            file: file.clone(),
                            losses: last_losses,
                            elapsed: started.elapsed(),
                        });
                        file
                    }
                };
                return Ok(RunOutcome::Cancelled {
                    iteration,
                    checkpoint,
                });
            }
            let t = Instant::now();
            let losses = self.trainer.iteration(&set)?;
            let took = t.elapsed().as_secs_f64();
            // An exponential average: steady, and the first iterations (kernel compilation on a
            // GPU) fade out instead of weighing on the estimate for the whole run.
            let spi = match seconds_per_step {
                Some(avg) => 0.9 * avg + 0.1 * took,
                None => took,
            };
            seconds_per_step = Some(spi);
            let done = self.trainer.iteration;
            on_event(RunEvent::Iteration {
                losses,
                done,
                steps,
                steps_per_sec: if spi > 0.0 { 1.0 / spi } else { 0.0 },
                left: Duration::from_secs_f64(spi * steps.saturating_sub(done) as f64),
            });
            last_losses = Some(losses);
            if done.is_multiple_of(every) || done == steps {
                let file = self.checkpoint()?;
                on_event(RunEvent::Checkpoint {
                    iteration: done,
                    file: file.clone(),
                    losses: Some(losses),
                    elapsed: started.elapsed(),
                });
                last = Some(file);
            }
            if preview_every > 0 && (done.is_multiple_of(preview_every) || done == steps) {
                on_event(RunEvent::Previews {
                    iteration: done,
                    images: self.previews()?,
                });
            }
        }
        let Some(last) = last else {
            return Err(TrainError::Input(format!(
                "no iteration was run (the run is at {} already) and it has no checkpoint",
                self.trainer.iteration
            )));
        };
        let file = register(&self.data, &self.lineage, &last)?;
        // Kept for what follows a finished run (the near-copy check compares with these faces).
        self.set = Some(set);
        Ok(RunOutcome::Registered {
            name: self.lineage.name.clone(),
            file,
            lineage: Box::new(self.lineage.clone()),
        })
    }
}
