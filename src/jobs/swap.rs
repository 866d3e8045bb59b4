//! The face swap on the compute lane: loads what the chosen engine needs into the worker's model
//! cache (once), resolves the virtual model's face, swaps the faces one by one with progress and
//! cancellation between faces, and hands the result to the UI as a new, undoable version.

use std::path::PathBuf;
use std::sync::Arc;

use super::photos::{PhotoId, display_name, photo_pixels};
use super::{Job, JobContext, JobError, JobOutput, Lane};
use crate::pipeline::detect::Face;
use crate::pipeline::faces_text;
use crate::pipeline::swap::{
    IdentitySource, SwapEngine, SwapError, SwapJob, SwapSettings, choose_engine, load_swap_models,
    remember_identity, resolve_identity, swap_faces,
};
use crate::pipeline::warmup::WarmNetwork;
use crate::weights::store::WeightsStore;

/// Swaps faces of one photo for the virtual model's.
#[derive(Debug, Clone)]
pub struct SwapPhoto {
    pub store: WeightsStore,
    pub photo: PhotoId,
    pub path: PathBuf,
    /// The photo's current edit, which the swap builds on; `None`: the file as loaded.
    pub base: Option<Arc<image::RgbImage>>,
    /// The faces to swap, with their indices in the photo's detections.
    pub faces: Vec<(usize, Face)>,
    pub identity: IdentitySource,
    pub settings: SwapSettings,
}

impl Job for SwapPhoto {
    fn label(&self) -> String {
        format!(
            "Swapping {} in {}",
            faces_text(self.faces.len()),
            display_name(&self.path)
        )
    }

    fn lane(&self) -> Lane {
        Lane::Compute
    }

    fn run(self: Box<Self>, ctx: &JobContext) -> Result<(), JobError> {
        let total = self.faces.len();
        ctx.progress(0, total);
        let base = match &self.base {
            Some(image) => Arc::clone(image),
            None => Arc::new(photo_pixels(&self.path)?),
        };
        ctx.check_cancelled()?;
        let device = &ctx.compute().device;
        let mut cache = ctx.model_cache();
        let loaded = load_swap_models(
            &self.store,
            &self.settings,
            self.identity.needs_detector(),
            &mut cache,
            device,
        )
        .map_err(|e| JobError::Failed(e.to_string()))?;
        ctx.check_cancelled()?;
        let (engine, fallback) =
            choose_engine(&self.settings, loaded.faceshifter_missing.as_deref()).map_err(failed)?;
        let mut used = vec![WarmNetwork::ArcFace];
        if engine == SwapEngine::FaceShifter {
            used.push(WarmNetwork::AeiNet);
        }
        super::warmup::note_first_use(ctx, &mut cache, &used);
        let identity = resolve_identity(&self.identity, loaded.detector(&cache), device).map_err(failed)?;
        let nets = loaded.nets(&cache, engine);
        let job = SwapJob {
            photo: &base,
            faces: &self.faces,
            identity: &identity,
            settings: &self.settings,
            engine,
        };
        let outcome = swap_faces(&job, nets, device, &mut |done, total| {
            ctx.progress(done, total);
            !ctx.is_cancelled()
        })
        .map_err(failed)?;
        let mut notes = outcome.note_lines();
        notes.extend(fallback);
        notes.extend(loaded.notes);
        notes.extend(remember_identity(
            &self.store,
            &self.identity,
            outcome.identity_embedding.as_deref(),
        ));
        ctx.output(JobOutput::Edited {
            photo: self.photo,
            label: outcome.label(),
            image: Arc::new(outcome.image),
            notes,
        });
        Ok(())
    }
}

fn failed(e: SwapError) -> JobError {
    match e {
        SwapError::Cancelled => JobError::Cancelled,
        other => JobError::Failed(other.to_string()),
    }
}
