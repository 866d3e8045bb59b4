//! Fine-tuning StyleGAN2 for the Train window: one [`TrainingRun`] on the compute lane (the
//! worker's device, MTCNN from its network runtime), reporting through [`JobOutput::Train`].
//!
//! Pause and cancel go through the job's [`TrainControl`], which the window keeps: pause blocks
//! the lane thread on a condition variable between iterations, cancel stops after the current
//! iteration and leaves a checkpoint to resume from. Closing the window cancels through the
//! worker's token, with the same checkpoint.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::photos::PhotoImage;
use super::{Job, JobContext, JobError, JobOutput, Lane};
use crate::pipeline::generator_training::TrainError;
use crate::pipeline::generator_training::run::{RunEvent, RunOutcome, RunRequest, TrainControl, TrainingRun};
use crate::pipeline::generator_training::trainer::Losses;
use crate::weights::store::WeightsStore;

/// What the training job reports.
#[derive(Debug, Clone)]
pub enum TrainOutput {
    /// A line for the window's log (resuming, skipped photos, a changed photo set).
    Note(String),
    /// Aligning the photos: `done` of `total`.
    Aligning {
        done: usize,
        total: usize,
    },
    /// The faces are aligned; training runs from iteration `from` to `to`.
    Prepared {
        faces: usize,
        skipped: usize,
        from: u64,
        to: u64,
    },
    Iteration {
        losses: Losses,
        done: u64,
        steps: u64,
        steps_per_sec: f64,
        left: Duration,
    },
    Checkpoint {
        iteration: u64,
        file: PathBuf,
    },
    /// The preview seeds rendered by `g_ema` after `iteration` iterations.
    Previews {
        iteration: u64,
        images: Vec<(u32, Arc<PhotoImage>)>,
    },
    /// The run waits between iterations, `iteration` done.
    Paused {
        iteration: u64,
    },
    Resumed {
        iteration: u64,
    },
    /// The generator is registered under `name`.
    Registered {
        name: String,
        file: PathBuf,
    },
    /// Cancelled after `iteration` iterations; `checkpoint` resumes the run.
    Stopped {
        iteration: u64,
        checkpoint: PathBuf,
    },
}

/// Trains (or resumes) a run and registers the generator.
#[derive(Debug, Clone)]
pub struct TrainGenerator {
    pub store: WeightsStore,
    pub request: RunRequest,
    pub control: TrainControl,
}

fn send(ctx: &JobContext, output: TrainOutput) {
    ctx.output(JobOutput::Train(Box::new(output)));
}

fn failed(e: TrainError) -> JobError {
    JobError::Failed(e.to_string())
}

fn forward(ctx: &JobContext, event: RunEvent) {
    let output = match event {
        RunEvent::Resuming {
            run,
            checkpoint,
            iteration,
        } => TrainOutput::Note(format!(
            "Resuming {run} from {} (iteration {iteration})",
            checkpoint.display()
        )),
        RunEvent::Aligning { .. } => TrainOutput::Aligning { done: 0, total: 0 },
        RunEvent::Photo { done, total } => {
            ctx.progress(done, total);
            TrainOutput::Aligning { done, total }
        }
        RunEvent::Prepared {
            faces,
            skipped,
            photos_changed,
            from,
            to,
            ..
        } => {
            for (path, why) in &skipped {
                send(
                    ctx,
                    TrainOutput::Note(format!("Skipped {}: {why}", path.display())),
                );
            }
            if photos_changed {
                send(
                    ctx,
                    TrainOutput::Note(
                        "The photos differ from those the run started with; the lineage records the new set"
                            .into(),
                    ),
                );
            }
            ctx.progress(0, to.saturating_sub(from) as usize);
            TrainOutput::Prepared {
                faces,
                skipped: skipped.len(),
                from,
                to,
            }
        }
        RunEvent::Iteration {
            losses,
            done,
            steps,
            steps_per_sec,
            left,
        } => {
            ctx.progress(done as usize, steps as usize);
            TrainOutput::Iteration {
                losses,
                done,
                steps,
                steps_per_sec,
                left,
            }
        }
        RunEvent::Checkpoint { iteration, file, .. } => TrainOutput::Checkpoint { iteration, file },
        RunEvent::Previews { iteration, images } => TrainOutput::Previews {
            iteration,
            images: images
                .into_iter()
                .map(|(seed, rgb)| (seed, Arc::new(image::DynamicImage::ImageRgb8(rgb).into_rgba8())))
                .collect(),
        },
        RunEvent::Paused { iteration } => TrainOutput::Paused { iteration },
        RunEvent::Resumed { iteration } => TrainOutput::Resumed { iteration },
    };
    send(ctx, output);
}

impl Job for TrainGenerator {
    fn label(&self) -> String {
        format!("Training the generator {}", self.request.name)
    }

    fn lane(&self) -> Lane {
        Lane::Compute
    }

    fn run(self: Box<Self>, ctx: &JobContext) -> Result<(), JobError> {
        let TrainGenerator {
            store,
            request,
            control,
        } = *self;
        let device = ctx.compute().device.clone();
        let mut on_event = |event| forward(ctx, event);
        let mut run = TrainingRun::open(&store, request, &device, &mut on_event).map_err(failed)?;
        {
            let mut cache = ctx.model_cache();
            let key = cache
                .mtcnn(&store, &device)
                .map_err(|e| JobError::Failed(format!("aligning the training faces needs MTCNN: {e}")))?;
            let nets = cache.get(&key).map_err(|e| JobError::Failed(e.to_string()))?;
            run.align(nets, &mut on_event).map_err(failed)?;
        }
        let outcome = run
            .run(&control, &|| ctx.is_cancelled(), &mut on_event)
            .map_err(failed)?;
        match outcome {
            RunOutcome::Registered { name, file, .. } => {
                send(ctx, TrainOutput::Registered { name, file });
                Ok(())
            }
            RunOutcome::Cancelled {
                iteration,
                checkpoint,
            } => {
                send(
                    ctx,
                    TrainOutput::Stopped {
                        iteration,
                        checkpoint,
                    },
                );
                Err(JobError::Cancelled)
            }
        }
    }
}
