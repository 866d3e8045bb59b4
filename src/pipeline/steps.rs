//! From a recipe's step sections to runnable [`PhotoStep`]s: the one place that knows which module
//! implements which step. The window's export job and `facecast batch` both build their steps here,
//! so both run exactly the same pipeline.
//!
//! A step whose module is not part of this build cannot be faked: a recipe that enables it is refused
//! with "not available in this build", naming the step, before anything is loaded or written.

use burn::tensor::Device;

use super::batch::{BatchEngine, BatchError, PhotoStep};
use super::recipe::{Recipe, StepSection};
use crate::jobs::{MTCNN_ID, ModelCache};
use crate::nets::mtcnn::MtcnnNets;
use crate::weights::models::load_mtcnn;
use crate::weights::store::{ModelStatus, WeightsStore};

/// What building the steps may need: the installed weights and the device the networks run on.
pub struct StepEnv<'a> {
    pub store: &'a WeightsStore,
    pub device: &'a Device,
}

/// One step a recipe can enable, in the order steps run.
struct StepInfo {
    /// The recipe's key.
    key: &'static str,
    /// How messages name it.
    what: &'static str,
    /// What implements it, for the "not available" message.
    by: &'static str,
    /// Whether this build has it.
    built: bool,
}

const STEPS: [StepInfo; 3] = [
    StepInfo {
        key: "swap",
        what: "the face swap",
        by: "FaceShifter and the classic engine (issue #6)",
        built: false,
    },
    StepInfo {
        key: "restore",
        what: "face restoration",
        by: "GPEN (issue #7)",
        built: false,
    },
    StepInfo {
        key: "makeup",
        what: "makeup transfer",
        by: "BeautyGAN (issue #9)",
        built: false,
    },
];

fn section<'r>(recipe: &'r Recipe, key: &str) -> &'r StepSection {
    match key {
        "swap" => &recipe.swap,
        "restore" => &recipe.restore,
        _ => &recipe.makeup,
    }
}

/// The cache key of the detector's networks; the window's face detection uses the same key, so an
/// export after screening loads nothing.
pub fn detector_key(store: &WeightsStore) -> String {
    format!("mtcnn:{}", store.model_dir(MTCNN_ID).display())
}

/// Loads every network a run of `recipe` needs into `cache`: the detector and each enabled step's.
/// What is already there is kept (the window's worker keeps its cache for its lifetime). Errors say
/// what is missing and how to install it.
pub fn load_networks(recipe: &Recipe, env: &StepEnv<'_>, cache: &mut ModelCache) -> Result<(), BatchError> {
    check_available(recipe)?;
    let store = env.store;
    store
        .require(MTCNN_ID)
        .map_err(|e| BatchError::Prepare(e.to_string()))?;
    let key = detector_key(store);
    if !cache.contains(&key) {
        let dir = store.model_dir(MTCNN_ID);
        let nets = load_mtcnn(&dir, env.device)
            .map_err(|e| BatchError::Prepare(format!("loading MTCNN from {}: {e}", dir.display())))?;
        cache.insert(key, nets);
    }
    Ok(())
}

/// The recipe ready to run, with the networks [`load_networks`] put into `cache`: the engine that
/// both the window's export job and `facecast batch` run.
pub fn build_engine<'a>(
    recipe: Recipe,
    env: &StepEnv<'a>,
    cache: &'a ModelCache,
) -> Result<BatchEngine<'a>, BatchError> {
    check_available(&recipe)?;
    let detector: &MtcnnNets = cache.get(&detector_key(env.store)).ok_or_else(|| {
        BatchError::Prepare("the face detector is not loaded (load_networks was not called)".into())
    })?;
    let steps: Vec<Box<dyn PhotoStep + 'a>> = Vec::new();
    Ok(BatchEngine::new(recipe, detector, env.device, steps)?
        .with_detector_name(network_label(env.store, MTCNN_ID)))
}

/// Refuses a recipe that enables a step this build does not have, without loading anything (the
/// window checks before it starts an export).
pub fn check_available(recipe: &Recipe) -> Result<(), BatchError> {
    match STEPS.iter().find(|s| !s.built && section(recipe, s.key).enabled) {
        Some(step) => Err(BatchError::StepUnavailable {
            step: step.what.to_string(),
            detail: format!(
                "{} is not part of this build; disable the step in the recipe to export without it",
                step.by
            ),
        }),
        None => Ok(()),
    }
}

/// The keys of the steps a recipe enables that this build does not have.
pub fn missing_steps(recipe: &Recipe) -> Vec<&'static str> {
    STEPS
        .iter()
        .filter(|s| !s.built && section(recipe, s.key).enabled)
        .map(|s| s.key)
        .collect()
}

/// The keys of the steps a recipe enables, in the order they run.
pub fn enabled_steps(recipe: &Recipe) -> Vec<&'static str> {
    STEPS
        .iter()
        .filter(|s| section(recipe, s.key).enabled)
        .map(|s| s.key)
        .collect()
}

/// How a network is named in reports and metadata: its weights id, marked when the installed file is
/// reduced-width test weights rather than the released network.
pub fn network_label(store: &WeightsStore, id: &str) -> String {
    match store.status(id).map(|state| state.status) {
        Ok(ModelStatus::Unverified { reason }) if reason.contains("reduced-width") => {
            format!("{id} (reduced-width test weights)")
        }
        _ => id.to_string(),
    }
}
