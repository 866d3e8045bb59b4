//! Face detection on library photos, on the compute lane. MTCNN is loaded once and kept in the
//! worker's model cache, so a second batch starts at once.

use std::path::PathBuf;
use std::sync::Arc;

use super::photos::{PhotoId, photo_pixels};
use super::{Job, JobContext, JobError, JobOutput, Lane};
use crate::nets::mtcnn::MtcnnNets;
use crate::pipeline::detect::photo::{DetectSettings, PhotoFaces, detect_photo};
use crate::pipeline::warmup::WarmNetwork;
use crate::weights::store::WeightsStore;

pub use crate::weights::models::MTCNN_ID;

/// One photo to screen: its file, and its decoded pixels when the thumbnail job still had them (so the
/// photo is not decoded a second time).
#[derive(Debug, Clone)]
pub struct DetectTarget {
    pub photo: PhotoId,
    pub path: PathBuf,
    pub rgb: Option<Arc<image::RgbImage>>,
}

/// Detects the faces of a batch of photos, reporting each photo as it is done.
#[derive(Debug, Clone)]
pub struct DetectFaces {
    pub store: WeightsStore,
    pub photos: Vec<DetectTarget>,
    pub settings: DetectSettings,
}

impl Job for DetectFaces {
    fn label(&self) -> String {
        match self.photos.len() {
            1 => "Detecting faces in 1 photo".to_string(),
            n => format!("Detecting faces in {n} photos"),
        }
    }

    fn lane(&self) -> Lane {
        Lane::Compute
    }

    fn run(self: Box<Self>, ctx: &JobContext) -> Result<(), JobError> {
        let DetectFaces {
            store,
            photos,
            settings,
        } = *self;
        let total = photos.len();
        ctx.progress(0, total);
        // A missing or damaged install is reported once for the batch, with the store's install hint.
        let mut cache = ctx.model_cache();
        let failed = |e: crate::pipeline::runtime::RuntimeError| JobError::Failed(e.to_string());
        let key = cache.mtcnn(&store, &ctx.compute().device).map_err(failed)?;
        super::warmup::note_first_use(ctx, &mut cache, &[WarmNetwork::Mtcnn]);
        let nets = cache.get(&key).map_err(failed)?;
        for (done, target) in photos.into_iter().enumerate() {
            ctx.check_cancelled()?;
            let result = detect_one(nets, &target, &settings, &ctx.compute().device);
            ctx.output(JobOutput::Faces {
                photo: target.photo,
                result,
            });
            ctx.progress(done + 1, total);
        }
        Ok(())
    }
}

fn detect_one(
    nets: &MtcnnNets,
    target: &DetectTarget,
    settings: &DetectSettings,
    device: &burn::tensor::Device,
) -> Result<PhotoFaces, String> {
    let decoded;
    let rgb = match &target.rgb {
        Some(rgb) => rgb.as_ref(),
        None => {
            decoded = photo_pixels(&target.path).map_err(|e| e.to_string())?;
            &decoded
        }
    };
    detect_photo(nets, rgb, settings, device).map_err(|e| format!("{}: {e}", target.path.display()))
}
