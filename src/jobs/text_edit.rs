//! StyleCLIP text edits on the compute lane: the window's live preview and "save as new version".
//!
//! The networks load once and stay in the worker's network runtime (StyleGAN2 shared with casting),
//! with the prompt embeddings (one text-encoder pass per prompt) and the relevance of the last
//! prompt pair, so a slider move costs one threshold and one render. A job checks for cancellation
//! between its steps: the window cancels a preview as soon as a newer one is asked for. The edit
//! itself is [`crate::pipeline::text_edit::run`].

use std::sync::Mutex;

use super::{Job, JobContext, JobError, JobOutput, Lane};
use crate::cast::{VirtualModel, VirtualModelLibrary};
use crate::jobs::cast::{CastOutput, emit_listing, with_stylegan2};
pub use crate::pipeline::text_edit::run::{
    EditRequest, EditRunError, EditSubject, STEPS, TextEditCache, TextEditPreview, run_edit,
    save_edited_version, subject_of, version_name,
};
use crate::weights::models;
use crate::weights::store::WeightsStore;

impl From<EditRunError> for JobError {
    fn from(e: EditRunError) -> JobError {
        JobError::Failed(e.0)
    }
}

fn lock(cache: &Mutex<TextEditCache>) -> std::sync::MutexGuard<'_, TextEditCache> {
    // A panic in an earlier job leaves loaded networks that are still whole.
    cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn failed(e: impl std::fmt::Display) -> JobError {
    JobError::Failed(e.to_string())
}

/// Renders a text edit of a virtual model: a preview, or the version to save.
#[derive(Debug, Clone)]
pub struct TextEditJob {
    pub store: WeightsStore,
    pub subject: EditSubject,
    pub request: EditRequest,
    pub tag: u64,
}

impl Job for TextEditJob {
    fn label(&self) -> String {
        match &self.request {
            EditRequest::Global { prompt, .. } => {
                format!("Editing {}: \"{}\"", self.subject.name, prompt.trim())
            }
            EditRequest::Mapper { id, .. } => format!(
                "Editing {}: {}",
                self.subject.name,
                id.trim_start_matches(models::STYLECLIP_MAPPER_PREFIX)
            ),
        }
    }

    fn lane(&self) -> Lane {
        Lane::Compute
    }

    fn run(self: Box<Self>, ctx: &JobContext) -> Result<(), JobError> {
        let device = ctx.compute().device.clone();
        // Taken before StyleGAN2, whose loader holds the runtime while it runs.
        let shared = ctx.model_cache().text_edit();
        let mut step = |done, total| {
            ctx.progress(done, total);
            ctx.check_cancelled()
        };
        step(0, STEPS)?;
        let preview = with_stylegan2(ctx, &self.store, |loaded, _| {
            let mut cache = lock(&shared);
            run_edit(
                &mut cache,
                &self.store,
                &loaded.model,
                &self.subject,
                &self.request,
                &device,
                &mut step,
            )
        })?;
        ctx.output(JobOutput::TextEdited(Box::new(TextEditPreview {
            tag: self.tag,
            ..preview
        })));
        Ok(())
    }
}

/// "Save as new version" from the Edit window; reports like saving a candidate does
/// ([`CastOutput::Saved`], then the new listing).
#[derive(Debug, Clone)]
pub struct SaveTextEdit {
    pub store: WeightsStore,
    pub library: VirtualModelLibrary,
    pub parent: VirtualModel,
    pub name: String,
    pub preview: Box<TextEditPreview>,
}

impl Job for SaveTextEdit {
    fn label(&self) -> String {
        format!("Saving {}", self.name)
    }

    fn lane(&self) -> Lane {
        Lane::Compute
    }

    fn run(self: Box<Self>, ctx: &JobContext) -> Result<(), JobError> {
        let model = with_stylegan2(ctx, &self.store, |_, detector| {
            let device = &ctx.compute().device;
            save_edited_version(
                &self.library,
                &self.parent,
                &self.name,
                &self.preview,
                detector.map(|d| (d, device)),
            )
            .map_err(failed)
        })?;
        let note = format!(
            "Saved {}, edited from {}: {}",
            model.name,
            self.parent.name,
            self.preview.record.describe()
        );
        ctx.output(JobOutput::Cast(Box::new(CastOutput::Saved { model, note })));
        emit_listing(ctx, &self.library)
    }
}
