//! The Train window's state: the worker's training events folded into what the window shows
//! (phase, progress, the loss history for the plot, the latest previews). Part of the app state,
//! so the events are folded whether or not the window is open.

use std::path::PathBuf;
use std::time::Duration;

use image::RgbImage;

use crate::jobs::train_generator::TrainOutput;
use crate::jobs::{JobEvent, JobEventKind, JobId, JobOutcome, JobOutput};
use crate::pipeline::generator_training::run::{RunEvent, RunOutcome, TrainControl};

/// Where the window's run stands.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum TrainPhase {
    #[default]
    Idle,
    /// Loading the networks and aligning the photos.
    Preparing,
    Training,
    /// The worker acknowledged the pause and waits.
    Paused,
    /// The generator was registered under this name.
    Done(String),
    /// Cancelled; the run resumes from its checkpoint.
    Stopped {
        iteration: u64,
        checkpoint: PathBuf,
    },
    Failed(String),
}

/// The loss curves, by iteration.
#[derive(Debug, Clone, Default)]
pub struct LossHistory {
    pub d: Vec<[f64; 2]>,
    pub g: Vec<[f64; 2]>,
    pub r1: Vec<[f64; 2]>,
    pub path: Vec<[f64; 2]>,
}

impl LossHistory {
    pub fn points(&self) -> usize {
        self.d.len() + self.g.len() + self.r1.len() + self.path.len()
    }
}

/// The Train job's events, folded (part of the app state).
#[derive(Debug, Default)]
pub struct TrainInbox {
    pub job: Option<JobId>,
    pub(super) control: Option<TrainControl>,
    pub phase: TrainPhase,
    /// Photos aligned so far, of how many.
    pub aligning: (usize, usize),
    pub faces: usize,
    /// Iterations done (the run's counter), and where this session started and ends.
    pub iteration: u64,
    pub from: u64,
    pub steps: u64,
    pub steps_per_sec: f64,
    pub left: Duration,
    pub history: LossHistory,
    pub previews: Vec<(u32, RgbImage)>,
    /// The iteration the shown previews were rendered at.
    pub preview_iteration: Option<u64>,
    /// The iteration at which the worker last acknowledged a pause.
    pub paused_at: Option<u64>,
    pub checkpoint: Option<(u64, PathBuf)>,
    pub notes: Vec<String>,
    /// A generator registered that the Cast window has not listed yet.
    pub registered: Option<String>,
}

impl TrainInbox {
    pub(super) fn begin(&mut self, job: JobId, control: TrainControl) {
        *self = TrainInbox {
            job: Some(job),
            control: Some(control),
            phase: TrainPhase::Preparing,
            ..TrainInbox::default()
        };
    }

    pub fn is_running(&self) -> bool {
        self.job.is_some()
    }

    /// Notes what concerns the Train job.
    pub fn observe(&mut self, event: &JobEvent) {
        if self.job != Some(event.job) {
            return;
        }
        match &event.kind {
            JobEventKind::Output(JobOutput::Train(output)) => self.fold(output),
            JobEventKind::Finished(outcome) => {
                self.job = None;
                self.control = None;
                match outcome {
                    JobOutcome::Failed(reason) => self.phase = TrainPhase::Failed(reason.clone()),
                    // Cancelled before any checkpoint could be written (e.g. while loading).
                    JobOutcome::Cancelled if !matches!(self.phase, TrainPhase::Stopped { .. }) => {
                        self.phase = TrainPhase::Failed("cancelled before training began".into())
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }

    fn fold(&mut self, output: &TrainOutput) {
        match output {
            TrainOutput::Run(event) => self.fold_event(event),
            TrainOutput::Ended(RunOutcome::Registered { name, .. }) => {
                self.phase = TrainPhase::Done(name.clone());
                self.registered = Some(name.clone());
            }
            TrainOutput::Ended(RunOutcome::Cancelled {
                iteration,
                checkpoint,
            }) => {
                self.phase = TrainPhase::Stopped {
                    iteration: *iteration,
                    checkpoint: checkpoint.clone(),
                }
            }
        }
    }

    fn fold_event(&mut self, event: &RunEvent) {
        match event {
            RunEvent::Resuming {
                run,
                checkpoint,
                iteration,
            } => self.notes.push(format!(
                "Resuming {run} from {} (iteration {iteration})",
                checkpoint.display()
            )),
            RunEvent::Aligning { .. } => self.aligning = (0, 0),
            RunEvent::Photo { done, total } => self.aligning = (*done, *total),
            RunEvent::Prepared {
                faces,
                skipped,
                photos_changed,
                from,
                to,
                ..
            } => {
                for (path, why) in skipped {
                    self.notes.push(format!("Skipped {}: {why}", path.display()));
                }
                if *photos_changed {
                    self.notes.push(
                        "The photos differ from those the run started with; the lineage records the new set"
                            .into(),
                    );
                }
                self.faces = *faces;
                self.from = *from;
                self.iteration = *from;
                self.steps = *to;
                self.phase = TrainPhase::Training;
            }
            RunEvent::Iteration {
                losses,
                done,
                steps,
                steps_per_sec,
                left,
            } => {
                let x = *done as f64;
                self.history.d.push([x, losses.d_loss]);
                self.history.g.push([x, losses.g_loss]);
                if let Some(r1) = losses.r1_loss {
                    self.history.r1.push([x, r1]);
                }
                if let Some(path) = losses.path_loss {
                    self.history.path.push([x, path]);
                }
                self.iteration = *done;
                self.steps = *steps;
                self.steps_per_sec = *steps_per_sec;
                self.left = *left;
            }
            RunEvent::Checkpoint { iteration, file, .. } => {
                self.checkpoint = Some((*iteration, file.clone()))
            }
            RunEvent::Previews { iteration, images } => {
                self.previews = images.clone();
                self.preview_iteration = Some(*iteration);
            }
            RunEvent::Paused { iteration } => {
                self.paused_at = Some(*iteration);
                self.phase = TrainPhase::Paused;
            }
            RunEvent::Resumed { .. } => self.phase = TrainPhase::Training,
        }
    }
}
