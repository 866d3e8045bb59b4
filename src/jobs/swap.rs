//! The face swap on the compute lane: loads what the chosen engine needs into the worker's model
//! cache (once), resolves the virtual model's face, swaps the faces one by one with progress and
//! cancellation between faces, and hands the result to the UI as a new, undoable version.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::tensor::Device;

use super::photos::{PhotoId, decode_photo, display_name};
use super::{Job, JobContext, JobError, JobOutput, Lane, MTCNN_ID, ModelCache};
use crate::nets::arcface::ArcFace;
use crate::nets::faceshifter::AeiNet;
use crate::nets::mtcnn::MtcnnNets;
use crate::pipeline::detect::Face;
use crate::pipeline::swap::{
    IdentitySource, SwapEngine, SwapError, SwapJob, SwapNets, SwapSettings, choose_engine, resolve_identity,
    swap_faces,
};
use crate::weights::models::{AEI_ID, ARCFACE_ID, load_aei, load_arcface, load_mtcnn};
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
        let faces = match self.faces.len() {
            1 => "1 face".to_string(),
            n => format!("{n} faces"),
        };
        format!("Swapping {faces} in {}", display_name(&self.path))
    }

    fn lane(&self) -> Lane {
        Lane::Compute
    }

    fn run(self: Box<Self>, ctx: &JobContext) -> Result<(), JobError> {
        let total = self.faces.len();
        ctx.progress(0, total);
        let base = match &self.base {
            Some(image) => Arc::clone(image),
            None => Arc::new(decode_photo(&self.path).map_err(JobError::Failed)?.into_rgb8()),
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
        .map_err(JobError::Failed)?;
        ctx.check_cancelled()?;
        let (engine, fallback) =
            choose_engine(&self.settings, loaded.faceshifter_missing.as_deref()).map_err(failed)?;
        let mtcnn = loaded.mtcnn.as_deref().and_then(|k| cache.get::<MtcnnNets>(k));
        let identity = resolve_identity(&self.identity, mtcnn, device).map_err(failed)?;
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

/// Which networks are in the cache for a swap, under which keys, and why any is missing.
#[derive(Debug, Default)]
pub struct LoadedSwapModels {
    pub mtcnn: Option<String>,
    pub arcface: Option<String>,
    pub aei: Option<String>,
    /// Why FaceShifter cannot run (`None` when it can, or when it was not asked for).
    pub faceshifter_missing: Option<String>,
    /// Things the operator should know (reduced test weights in use).
    pub notes: Vec<String>,
}

impl LoadedSwapModels {
    /// The cached networks the chosen engine runs: ArcFace whenever it loaded (the identity check),
    /// AEI-Net only for FaceShifter.
    pub fn nets<'c>(&self, cache: &'c ModelCache, engine: SwapEngine) -> SwapNets<'c> {
        SwapNets {
            arcface: self.arcface.as_deref().and_then(|k| cache.get::<ArcFace>(k)),
            aei: match engine {
                SwapEngine::FaceShifter => self.aei.as_deref().and_then(|k| cache.get::<AeiNet>(k)),
                SwapEngine::Classic => None,
            },
        }
    }
}

/// Loads into `cache` what the settings need: MTCNN when the virtual model comes from a photo,
/// ArcFace for the identity (and its check), AEI-Net when FaceShifter is asked for. A missing
/// FaceShifter network is not an error here (the classic engine may take over); a missing detector
/// is, since without it the virtual model's face cannot be found.
pub fn load_swap_models(
    store: &WeightsStore,
    settings: &SwapSettings,
    need_detector: bool,
    cache: &mut ModelCache,
    device: &Device,
) -> Result<LoadedSwapModels, String> {
    let mut out = LoadedSwapModels::default();
    if need_detector {
        store.require(MTCNN_ID).map_err(|e| e.to_string())?;
        let dir = store.model_dir(MTCNN_ID);
        // The detection job caches MTCNN under the same key, so it is loaded once for both.
        let key = format!("mtcnn:{}", dir.display());
        if !cache.contains(&key) {
            let nets =
                load_mtcnn(&dir, device).map_err(|e| format!("loading MTCNN from {}: {e}", dir.display()))?;
            cache.insert(key.clone(), nets);
        }
        out.mtcnn = Some(key);
    }
    let mut missing = Vec::new();
    match cached(store, ARCFACE_ID, cache, &mut out.notes, |p| {
        load_arcface(p, device).map(|(net, _)| net)
    }) {
        Ok(key) => out.arcface = Some(key),
        Err(reason) => missing.push(reason),
    }
    if settings.engine == SwapEngine::FaceShifter {
        match cached(store, AEI_ID, cache, &mut out.notes, |p| {
            load_aei(p, device).map(|(net, _)| net)
        }) {
            Ok(key) => out.aei = Some(key),
            Err(reason) => missing.push(reason),
        }
        if !missing.is_empty() {
            out.faceshifter_missing = Some(missing.join("; "));
        }
    }
    Ok(out)
}

/// The cache key of a store model's only file, loading it first when it is not cached yet. The key
/// holds the file's size and time, so weights imported again are loaded again.
fn cached<T: Send + 'static, E: std::fmt::Display>(
    store: &WeightsStore,
    id: &str,
    cache: &mut ModelCache,
    notes: &mut Vec<String>,
    load: impl FnOnce(&Path) -> Result<T, E>,
) -> Result<String, String> {
    let state = store.status(id).map_err(|e| e.to_string())?;
    if !state.status.is_usable() {
        return Err(format!(
            "{id} is {}; install it from the Weights window or with `facecast weights install {id}`",
            state.status.describe()
        ));
    }
    let file = state
        .files
        .first()
        .map(|f| f.path.clone())
        .ok_or_else(|| format!("{id} lists no file"))?;
    if state.status.is_reduced() {
        notes.push(format!(
            "{id} has reduced-width test weights: the swap will not look like a real face"
        ));
    }
    let stamp = std::fs::metadata(&file)
        .ok()
        .and_then(|m| Some((m.len(), m.modified().ok()?)))
        .map(|(len, time)| format!("{len}:{time:?}"))
        .unwrap_or_default();
    let key = format!("{id}:{}:{stamp}", file.display());
    if !cache.contains(&key) {
        let net = load(&file).map_err(|e| e.to_string())?;
        cache.insert(key.clone(), net);
    }
    Ok(key)
}

/// Keeps the ArcFace identity a swap computed in the virtual model's library entry, when the virtual
/// model is a library model that has none yet (or one made by other weights). Returns a note when it
/// could not be saved; the swap itself stands either way.
pub fn remember_identity(
    store: &WeightsStore,
    source: &IdentitySource,
    embedding: Option<&[f32]>,
) -> Option<String> {
    let (IdentitySource::Model(model), Some(embedding)) = (source, embedding) else {
        return None;
    };
    let reduced = store.status(ARCFACE_ID).is_ok_and(|s| s.status.is_reduced());
    if model
        .identity
        .as_ref()
        .is_some_and(|known| known.network == ARCFACE_ID && known.reduced == reduced)
    {
        return None;
    }
    let identity = crate::cast::Identity {
        network: ARCFACE_ID.to_string(),
        reduced,
        embedding: embedding.to_vec(),
    };
    crate::cast::VirtualModelLibrary::open(store.data_dir())
        .set_identity(&model.id, identity)
        .err()
        .map(|e| format!("the identity embedding was not saved in the library: {e}"))
}
