//! The networks a swap runs, loaded through the network runtime, and what a swap keeps afterwards
//! (the identity ArcFace computed). The window's swap job, `facecast swap` and the batch's swap step
//! all load through here.

use burn::tensor::Device;

use super::{IdentitySource, SwapEngine, SwapNets, SwapSettings};
use crate::nets::arcface::ArcFace;
use crate::nets::faceshifter::AeiNet;
use crate::nets::mtcnn::MtcnnNets;
use crate::pipeline::runtime::{NetKey, NetworkCache, RuntimeError};
use crate::weights::models::{AEI_ID, ARCFACE_ID};
use crate::weights::store::WeightsStore;

/// Which networks are in the cache for a swap, and why any is missing.
#[derive(Debug, Default)]
pub struct LoadedSwapModels {
    pub mtcnn: Option<NetKey<MtcnnNets>>,
    pub arcface: Option<NetKey<ArcFace>>,
    pub aei: Option<NetKey<AeiNet>>,
    /// Why FaceShifter cannot run (`None` when it can, or when it was not asked for).
    pub faceshifter_missing: Option<String>,
    /// Things the operator should know (reduced test weights in use).
    pub notes: Vec<String>,
}

impl LoadedSwapModels {
    /// The cached networks the chosen engine runs: ArcFace whenever it loaded (the identity check),
    /// AEI-Net only for FaceShifter.
    pub fn nets<'c>(&self, cache: &'c NetworkCache, engine: SwapEngine) -> SwapNets<'c> {
        SwapNets {
            arcface: self.arcface.as_ref().and_then(|k| cache.get(k).ok()),
            aei: match engine {
                SwapEngine::FaceShifter => self.aei.as_ref().and_then(|k| cache.get(k).ok()),
                SwapEngine::Classic => None,
            },
        }
    }

    /// The detector, when it was loaded (the virtual model came from a photo).
    pub fn detector<'c>(&self, cache: &'c NetworkCache) -> Option<&'c MtcnnNets> {
        self.mtcnn.as_ref().and_then(|k| cache.get(k).ok())
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
    cache: &mut NetworkCache,
    device: &Device,
) -> Result<LoadedSwapModels, RuntimeError> {
    let mut out = LoadedSwapModels::default();
    if need_detector {
        out.mtcnn = Some(cache.mtcnn(store, device)?);
    }
    let mut missing = Vec::new();
    match cache.arcface(store, device) {
        Ok(key) => {
            note_reduced(store, ARCFACE_ID, &mut out.notes);
            out.arcface = Some(key);
        }
        Err(reason) => missing.push(reason.to_string()),
    }
    if settings.engine == SwapEngine::FaceShifter {
        match cache.aei(store, device) {
            Ok(key) => {
                note_reduced(store, AEI_ID, &mut out.notes);
                out.aei = Some(key);
            }
            Err(reason) => missing.push(reason.to_string()),
        }
        if !missing.is_empty() {
            out.faceshifter_missing = Some(missing.join("; "));
        }
    }
    Ok(out)
}

fn note_reduced(store: &WeightsStore, id: &str, notes: &mut Vec<String>) {
    if store.status(id).is_ok_and(|state| state.status.is_reduced()) {
        notes.push(format!(
            "{id} has reduced-width test weights: the swap will not look like a real face"
        ));
    }
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
