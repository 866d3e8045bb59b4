//! Face restoration (GPEN) of one photo's chosen faces, on the compute lane: the batch's restore
//! step, run on the current edit with progress per face. The network is loaded once per checkpoint
//! file and kept in the worker's network runtime.

use std::path::PathBuf;
use std::sync::Arc;

use image::RgbImage;

use super::photo_edit::{current_pixels, step_failed};
use super::photos::PhotoId;
use super::{Job, JobContext, JobError, JobOutput, Lane};
use crate::pipeline::detect::Face;
use crate::pipeline::faces_text;
use crate::pipeline::restore::RestoreSettings;
use crate::pipeline::steps::restore_step;
use crate::pipeline::warmup::WarmNetwork;
use crate::weights::store::WeightsStore;

/// Restores some faces of a photo and hands the result back as a new edit of it.
#[derive(Debug, Clone)]
pub struct RestoreFaces {
    pub store: WeightsStore,
    pub photo: PhotoId,
    /// The photo's file, read when there is no edit to work on.
    pub path: PathBuf,
    /// The photo's current edit (a swap, say): restoring works on it rather than on the file.
    pub base: Option<Arc<RgbImage>>,
    /// The faces to restore, in the photo's displayed orientation and full-resolution pixels.
    pub faces: Vec<Face>,
    /// The size the faces were detected at; the image worked on must have it.
    pub photo_size: (u32, u32),
    pub settings: RestoreSettings,
}

impl Job for RestoreFaces {
    fn label(&self) -> String {
        format!(
            "Restoring {} ({})",
            faces_text(self.faces.len()),
            self.settings.model.label()
        )
    }

    fn lane(&self) -> Lane {
        Lane::Compute
    }

    fn run(self: Box<Self>, ctx: &JobContext) -> Result<(), JobError> {
        let RestoreFaces {
            store,
            photo,
            path,
            base,
            faces,
            photo_size,
            settings,
        } = *self;
        let fail = |e: &dyn std::fmt::Display| JobError::Failed(e.to_string());
        // Steps: loading the network, then one per face.
        let total = faces.len() + 1;
        ctx.progress(0, total);
        settings.validate().map_err(|e| fail(&e))?;
        if !settings.is_enabled() {
            return Err(JobError::Failed(
                "Restore is set to None: choose GPEN or Blur then GPEN".into(),
            ));
        }
        if faces.is_empty() {
            return Err(JobError::Failed("no face was chosen to restore".into()));
        }
        let id = settings.model.id();
        let mut cache = ctx.model_cache();
        let key = cache
            .gpen(&store, id, &ctx.compute().device)
            .map_err(|e| fail(&e))?;
        super::warmup::note_first_use(ctx, &mut cache, &[WarmNetwork::Gpen(settings.model)]);
        let net = cache.get(&key).map_err(|e| fail(&e))?;
        // The export's own step, so the section's result is the pixels an export writes.
        let step = restore_step(net, settings, &store, &ctx.compute().device);
        ctx.check_cancelled()?;
        ctx.progress(1, total);

        let image = current_pixels(&base, &path)?;
        if image.dimensions() != photo_size {
            return Err(JobError::Failed(format!(
                "{}: the image to restore is {}×{} but its faces were found on a {}×{} image",
                path.display(),
                image.width(),
                image.height(),
                photo_size.0,
                photo_size.1
            )));
        }
        let restored = step
            .restore(&image, &faces, |done, _| {
                ctx.progress(1 + done, total);
                !ctx.is_cancelled()
            })
            .map_err(|e| step_failed(&path, e))?;
        ctx.output(JobOutput::Edited {
            photo,
            label: format!("{}, {}", step.settings.describe(), faces_text(faces.len())),
            image: Arc::new(restored.image),
            notes: restored.notes,
        });
        Ok(())
    }
}
