//! From a recipe's step sections to runnable [`PhotoStep`]s: the one place that knows which module
//! implements which step. The window's export job and `facecast batch` both build their steps here,
//! so both run exactly the same pipeline.
//!
//! A step whose module is not part of this build cannot be faked: a recipe that enables it is refused
//! with "not available in this build", naming the step, before anything is loaded or written.
//!
//! Running is two calls: [`load_networks`] puts every network the recipe needs into the model
//! cache (the window's worker keeps it between exports), then [`build_engine`] makes the steps
//! over those cached networks.

use std::path::Path;

use burn::tensor::Device;

use super::batch::{BatchEngine, BatchError, PhotoStep};
use super::makeup::MakeupSettings;
use super::makeup::references::ReferenceLibrary;
use super::recipe::{Recipe, StepSection, unknown_fields};
use super::restore::{RestoreMode, RestoreSettings};
use super::swap::{SwapSettings, choose_engine, resolve_identity};
use crate::jobs::swap::{LoadedSwapModels, load_swap_models};
use crate::jobs::{MTCNN_ID, ModelCache};
use crate::nets::beautygan::Generator;
use crate::nets::gpen::FullGenerator;
use crate::nets::mtcnn::MtcnnNets;
use crate::pipeline::swap::identity::source_from_arg;
use crate::weights::models::{AEI_ID, ARCFACE_ID, BEAUTYGAN_ID, load_beautygan, load_gpen, load_mtcnn};
use crate::weights::store::{REDUCED_NOTE, WeightsStore};

mod edits;

pub use edits::{MakeupStep, RestoreStep, SwapStep};

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
        built: true,
    },
    StepInfo {
        key: "restore",
        what: "face restoration",
        by: "GPEN (issue #7)",
        built: true,
    },
    StepInfo {
        key: "makeup",
        what: "makeup transfer",
        by: "BeautyGAN (issue #9)",
        built: true,
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

/// Where [`load_networks`] put each enabled step's networks in the cache, and what it found out.
#[derive(Debug, Default)]
pub struct LoadedNetworks {
    swap: Option<LoadedSwapModels>,
    /// Cache key of the GPEN generator, with the weights id it came from.
    restore: Option<(String, &'static str)>,
    /// Cache key of the BeautyGAN generator.
    makeup: Option<String>,
}

/// Loads every network a run of `recipe` needs into `cache`: the detector and each enabled step's.
/// What is already there is kept (the window's worker keeps its cache for its lifetime). Errors say
/// what is missing and how to install it.
pub fn load_networks(
    recipe: &Recipe,
    env: &StepEnv<'_>,
    cache: &mut ModelCache,
) -> Result<LoadedNetworks, BatchError> {
    check_available(recipe)?;
    let store = env.store;
    let prepare = |e: &dyn std::fmt::Display| BatchError::Prepare(e.to_string());
    let key = detector_key(store);
    if !cache.contains(&key) {
        store.require(MTCNN_ID).map_err(|e| prepare(&e))?;
        let dir = store.model_dir(MTCNN_ID);
        let nets = load_mtcnn(&dir, env.device)
            .map_err(|e| BatchError::Prepare(format!("loading MTCNN from {}: {e}", dir.display())))?;
        cache.insert(key, nets);
    }
    let mut loaded = LoadedNetworks::default();
    if recipe.swap.enabled {
        let settings = swap_settings(recipe)?;
        // The detector is loaded above whatever the virtual model is, so it is never needed again.
        loaded.swap =
            Some(load_swap_models(store, &settings, false, cache, env.device).map_err(|e| prepare(&e))?);
    }
    if recipe.restore.enabled {
        let settings = restore_settings(recipe)?;
        let id = settings.model.id();
        let file = first_file(store, id)?;
        let key = crate::jobs::restore::cache_key(&file);
        if !cache.contains(&key) {
            let net = load_gpen(&file, env.device)
                .map_err(|e| BatchError::Prepare(format!("loading {}: {e}", file.display())))?;
            cache.insert(key.clone(), net);
        }
        loaded.restore = Some((key, id));
    }
    if recipe.makeup.enabled {
        makeup_settings(recipe)?;
        let file = first_file(store, BEAUTYGAN_ID)?;
        let key = format!("beautygan:{}", crate::jobs::makeup::file_key(&file));
        if !cache.contains(&key) {
            let (generator, _) = load_beautygan(&file, env.device)
                .map_err(|e| BatchError::Prepare(format!("loading BeautyGAN: {e}")))?;
            cache.insert(key.clone(), generator);
        }
        loaded.makeup = Some(key);
    }
    Ok(loaded)
}

/// The recipe ready to run, with the networks [`load_networks`] put into `cache`: the engine that
/// both the window's export job and `facecast batch` run. Resolves the virtual model (a library
/// model by name or id, or a face photo) and the makeup reference once, before any photo.
pub fn build_engine<'a>(
    recipe: Recipe,
    env: &StepEnv<'a>,
    cache: &'a ModelCache,
    loaded: &LoadedNetworks,
) -> Result<BatchEngine<'a>, BatchError> {
    check_available(&recipe)?;
    let detector: &MtcnnNets = cache.get(&detector_key(env.store)).ok_or_else(|| {
        BatchError::Prepare("the face detector is not loaded (load_networks was not called)".into())
    })?;
    let not_loaded =
        |what: &str| BatchError::Prepare(format!("{what} is not loaded (load_networks was not called)"));
    let mut steps: Vec<Box<dyn PhotoStep + 'a>> = Vec::new();
    let mut model_name = None;
    if recipe.swap.enabled {
        let swap = loaded.swap.as_ref().ok_or_else(|| not_loaded("the swap step"))?;
        let step = swap_step(&recipe, env, cache, detector, swap)?;
        model_name = Some(step.identity.name.clone());
        steps.push(Box::new(step));
    }
    if recipe.restore.enabled {
        let (key, id) = loaded.restore.as_ref().ok_or_else(|| not_loaded("GPEN"))?;
        let net: &FullGenerator = cache.get(key).ok_or_else(|| not_loaded("GPEN"))?;
        steps.push(Box::new(RestoreStep {
            net,
            settings: restore_settings(&recipe)?,
            device: env.device,
            notes: reduced_note(env.store, id),
            network: network_label(env.store, id),
        }));
    }
    if recipe.makeup.enabled {
        let key = loaded.makeup.as_ref().ok_or_else(|| not_loaded("BeautyGAN"))?;
        let generator: &Generator = cache.get(key).ok_or_else(|| not_loaded("BeautyGAN"))?;
        let settings = makeup_settings(&recipe)?;
        let reference = reference(env.store.data_dir(), &settings)?;
        steps.push(Box::new(MakeupStep {
            generator,
            reference,
            settings,
            device: env.device,
            notes: reduced_note(env.store, BEAUTYGAN_ID),
            network: network_label(env.store, BEAUTYGAN_ID),
        }));
    }
    let engine = BatchEngine::new(recipe, detector, env.device, steps)?
        .with_detector_name(network_label(env.store, MTCNN_ID));
    Ok(match model_name {
        Some(name) => engine.with_model_name(Some(name)),
        None => engine,
    })
}

fn swap_step<'a>(
    recipe: &Recipe,
    env: &StepEnv<'a>,
    cache: &'a ModelCache,
    detector: &MtcnnNets,
    loaded: &LoadedSwapModels,
) -> Result<SwapStep<'a>, BatchError> {
    let prepare = |e: &dyn std::fmt::Display| BatchError::Prepare(e.to_string());
    let settings = swap_settings(recipe)?;
    let reference = recipe.virtual_model.as_deref().ok_or_else(|| {
        BatchError::Prepare(
            "the swap step needs a virtual model: choose one in the Cast panel, or pass --virtual NAME_OR_PHOTO"
                .into(),
        )
    })?;
    let source = source_from_arg(reference, Some(env.store.data_dir())).map_err(|e| prepare(&e))?;
    let identity = resolve_identity(&source, Some(detector), env.device).map_err(|e| prepare(&e))?;
    let (engine, fallback) =
        choose_engine(&settings, loaded.faceshifter_missing.as_deref()).map_err(|e| prepare(&e))?;
    let nets = loaded.nets(cache, engine);
    let mut networks = Vec::new();
    if nets.arcface.is_some() {
        networks.push(network_label(env.store, ARCFACE_ID));
    }
    if nets.aei.is_some() {
        networks.push(network_label(env.store, AEI_ID));
    }
    let mut notes: Vec<String> = fallback.into_iter().collect();
    notes.extend(loaded.notes.iter().cloned());
    Ok(SwapStep {
        identity,
        settings,
        engine,
        nets,
        device: env.device,
        notes,
        networks,
        remember: Some((env.store, source)),
    })
}

fn bad_settings(step: &str, e: impl std::fmt::Display) -> BatchError {
    BatchError::Prepare(format!("the recipe's {step} settings: {e}"))
}

/// A step's settings as its own type. serde alone would drop a misspelt setting silently and run
/// with the default, so every key must be one the type writes back.
fn typed<S: serde::de::DeserializeOwned + serde::Serialize>(
    section: &StepSection,
    step: &str,
) -> Result<S, BatchError> {
    let settings: S = section.settings_as().map_err(|e| bad_settings(step, e))?;
    let known = serde_json::to_value(&settings).map_err(|e| bad_settings(step, e))?;
    let mut unknown = Vec::new();
    unknown_fields(
        &serde_json::Value::Object(section.settings.clone()),
        &known,
        step,
        &mut unknown,
    );
    match unknown.first() {
        None => Ok(settings),
        Some(field) => Err(bad_settings(
            step,
            format!(
                "unknown setting \"{}\" (known here: {})",
                field.path,
                field.known.join(", ")
            ),
        )),
    }
}

fn swap_settings(recipe: &Recipe) -> Result<SwapSettings, BatchError> {
    typed(&recipe.swap, "swap")
}

/// The restore settings; an enabled step whose mode is left out (or "none") restores with GPEN,
/// since enabling the step is asking for restoration.
fn restore_settings(recipe: &Recipe) -> Result<RestoreSettings, BatchError> {
    let mut settings: RestoreSettings = typed(&recipe.restore, "restore")?;
    if settings.mode == RestoreMode::None {
        settings.mode = RestoreMode::Gpen;
    }
    settings.validate().map_err(|e| bad_settings("restore", e))?;
    Ok(settings)
}

fn makeup_settings(recipe: &Recipe) -> Result<MakeupSettings, BatchError> {
    let settings: MakeupSettings = typed(&recipe.makeup, "makeup")?;
    if settings.reference.is_none() {
        return Err(bad_settings(
            "makeup",
            "no reference face is set (makeup.reference: an id from `facecast makeup list`)",
        ));
    }
    Ok(settings)
}

fn reference(
    data_dir: &Path,
    settings: &MakeupSettings,
) -> Result<super::makeup::references::Reference, BatchError> {
    let id = settings.reference.as_deref().unwrap_or_default();
    ReferenceLibrary::new(data_dir)
        .get(id)
        .map_err(|e| BatchError::Prepare(format!("the makeup reference {id:?}: {e}")))
}

fn first_file(store: &WeightsStore, id: &str) -> Result<std::path::PathBuf, BatchError> {
    store
        .require(id)
        .map_err(|e| BatchError::Prepare(e.to_string()))?
        .into_iter()
        .next()
        .ok_or_else(|| BatchError::Prepare(format!("{id} lists no file")))
}

fn reduced_note(store: &WeightsStore, id: &str) -> Vec<String> {
    match store.status(id) {
        Ok(state) if state.status.is_reduced() => vec![format!("{id}: {REDUCED_NOTE}")],
        _ => Vec::new(),
    }
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
    if store.status(id).is_ok_and(|state| state.status.is_reduced()) {
        format!("{id} (reduced-width test weights)")
    } else {
        id.to_string()
    }
}
