//! From a recipe's step sections to runnable [`PhotoStep`]s: the one place that knows which module
//! implements which step. The window's export job and `facecast batch` both build their steps here,
//! so both run exactly the same pipeline.
//!
//! A step whose module is not part of this build cannot be faked: a recipe that enables it is refused
//! with "not available in this build", naming the step, before anything is loaded or written.

use burn::tensor::Device;

use super::batch::{BatchError, PhotoStep};
use super::recipe::{Recipe, StepSection};
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

/// The recipe's steps in the order they run (swap, restore, makeup), each with its networks loaded.
pub fn build_steps<'a>(
    recipe: &Recipe,
    env: &StepEnv<'a>,
) -> Result<Vec<Box<dyn PhotoStep + 'a>>, BatchError> {
    check_available(recipe)?;
    let _ = (env.store, env.device);
    let steps: Vec<Box<dyn PhotoStep + 'a>> = Vec::new();
    Ok(steps)
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
