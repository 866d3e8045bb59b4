//! The window's export: the batch engine on the compute lane, reporting each photo as it goes. It is
//! the same engine and the same step builder as `facecast batch`, so the same recipe gives the same
//! files from either.

use std::path::PathBuf;

use super::{Job, JobContext, JobError, JobOutput, Lane};
use crate::pipeline::batch::{BatchInput, BatchObserver, FileReport, StopReason};
use crate::pipeline::recipe::Recipe;
use crate::pipeline::steps::{StepEnv, build_engine, load_networks};
use crate::pipeline::warmup::{is_installed, warmup_plan};
use crate::weights::store::WeightsStore;

/// What an export job tells the window, besides the usual progress events.
#[derive(Debug, Clone)]
pub enum ExportEvent {
    /// The output folder is ready; `total` photos will be reported.
    Started { total: usize, out_dir: PathBuf },
    /// Photo `index` (from 0) is being worked on.
    Working { index: usize, input: PathBuf },
    /// Photo `index` is finished.
    File { index: usize, report: FileReport },
    /// Every photo is reported; `stopped` says why the run ended early, if it did, and
    /// `stale_removed` how many temporary files of interrupted exports were cleaned up.
    Ended {
        stopped: Option<StopReason>,
        stale_removed: usize,
    },
}

/// Runs a recipe over photos of the library.
#[derive(Debug, Clone)]
pub struct ExportPhotos {
    pub store: WeightsStore,
    /// The effective recipe, with the output folder set.
    pub recipe: Recipe,
    pub inputs: Vec<BatchInput>,
}

impl Job for ExportPhotos {
    fn label(&self) -> String {
        match self.inputs.len() {
            1 => "Exporting 1 photo".to_string(),
            n => format!("Exporting {n} photos"),
        }
    }

    fn lane(&self) -> Lane {
        Lane::Compute
    }

    fn run(self: Box<Self>, ctx: &JobContext) -> Result<(), JobError> {
        let ExportPhotos {
            store,
            recipe,
            inputs,
        } = *self;
        let total = inputs.len();
        ctx.progress(0, total);
        let failed = |e: &dyn std::fmt::Display| JobError::Failed(e.to_string());
        let device = &ctx.compute().device;
        let env = StepEnv {
            store: &store,
            device,
        };
        let mut cache = ctx.model_cache();
        let loaded = load_networks(&recipe, &env, &mut cache).map_err(|e| failed(&e))?;
        let used = warmup_plan(&recipe, |id| is_installed(&store, id));
        super::warmup::note_first_use(ctx, &mut cache, &used);
        let mut engine = build_engine(recipe, &env, &cache, &loaded).map_err(|e| failed(&e))?;
        let out_dir = engine.out_dir().to_path_buf();
        let mut observer = Reporter {
            ctx,
            started: false,
            out_dir,
        };
        let summary = engine.run(&inputs, &mut observer).map_err(|e| failed(&e))?;
        let cancelled = summary.stopped == Some(StopReason::Cancelled);
        ctx.output(JobOutput::Export(ExportEvent::Ended {
            stopped: summary.stopped,
            stale_removed: summary.stale_removed,
        }));
        if cancelled {
            return Err(JobError::Cancelled);
        }
        Ok(())
    }
}

struct Reporter<'a> {
    ctx: &'a JobContext,
    started: bool,
    out_dir: PathBuf,
}

impl BatchObserver for Reporter<'_> {
    fn is_cancelled(&self) -> bool {
        self.ctx.is_cancelled()
    }

    fn file_started(&mut self, index: usize, total: usize, input: &std::path::Path) {
        self.announce(total);
        self.ctx.output(JobOutput::Export(ExportEvent::Working {
            index,
            input: input.to_path_buf(),
        }));
    }

    fn file_finished(&mut self, index: usize, total: usize, report: &FileReport) {
        self.announce(total);
        self.ctx.output(JobOutput::Export(ExportEvent::File {
            index,
            report: report.clone(),
        }));
        self.ctx.progress(index + 1, total);
    }
}

impl Reporter<'_> {
    fn announce(&mut self, total: usize) {
        if !std::mem::replace(&mut self.started, true) {
            self.ctx.output(JobOutput::Export(ExportEvent::Started {
                total,
                out_dir: self.out_dir.clone(),
            }));
        }
    }
}
