//! Fine-tuning StyleGAN2 for the Train window: one [`TrainingRun`] on the compute lane (the
//! worker's device, MTCNN from its network runtime), reporting through [`JobOutput::Train`].
//!
//! Pause and cancel go through the job's [`TrainControl`], which the window keeps: pause blocks
//! the lane thread on a condition variable between iterations, cancel stops after the current
//! iteration and leaves a checkpoint to resume from. Closing the window cancels through the
//! worker's token, with the same checkpoint.

use super::{Job, JobContext, JobError, JobOutput, Lane};
use crate::pipeline::generator_training::TrainError;
use crate::pipeline::generator_training::run::{RunEvent, RunOutcome, RunRequest, TrainControl, TrainingRun};
use crate::weights::store::WeightsStore;

/// What the training job reports: the run's own events as they come, then how it ended (the
/// window words and folds them, so the job adds nothing of its own but the progress bar).
#[derive(Debug, Clone)]
pub enum TrainOutput {
    Run(RunEvent),
    Ended(RunOutcome),
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
    match &event {
        RunEvent::Photo { done, total } => ctx.progress(*done, *total),
        RunEvent::Prepared { from, to, .. } => ctx.progress(0, to.saturating_sub(*from) as usize),
        RunEvent::Iteration { done, steps, .. } => ctx.progress(*done as usize, *steps as usize),
        _ => {}
    }
    send(ctx, TrainOutput::Run(event));
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
        let cancelled = matches!(outcome, RunOutcome::Cancelled { .. });
        send(ctx, TrainOutput::Ended(outcome));
        if cancelled {
            Err(JobError::Cancelled)
        } else {
            Ok(())
        }
    }
}
