//! From a recipe's step sections to runnable [`PhotoStep`]s: the one place that knows which module
//! implements which step. The window's export job and `facecast batch` both build their steps here,
//! so both run exactly the same pipeline.
//!
//! Running is two calls: [`load_networks`] puts every network the recipe needs into the network
//! runtime (the window's worker keeps it between exports), then [`build_engine`] makes the steps
//! over those loaded networks.

use std::path::Path;

use burn::tensor::Device;

use super::batch::{BatchEngine, BatchError, PhotoStep};
use super::makeup::MakeupSettings;
use super::makeup::references::{Reference, ReferenceLibrary};
use super::recipe::Recipe;
use super::restore::RestoreSettings;
use super::runtime::{NetKey, NetworkCache, RuntimeError};
use super::swap::{LoadedSwapModels, load_swap_models};
use super::swap::{SwapSettings, choose_engine, resolve_identity};
use crate::nets::beautygan::Generator;
use crate::nets::gpen::FullGenerator;
use crate::nets::mtcnn::MtcnnNets;
use crate::pipeline::swap::identity::source_from_arg;
use crate::weights::models::{AEI_ID, ARCFACE_ID, BEAUTYGAN_ID, MTCNN_ID};
use crate::weights::store::{REDUCED_NOTE, WeightsStore};

mod edits;

pub use edits::{MakeupStep, RestoreStep, SwapStep};

/// What building the steps may need: the installed weights and the device the networks run on.
pub struct StepEnv<'a> {
    pub store: &'a WeightsStore,
    pub device: &'a Device,
}

/// Where [`load_networks`] put each enabled step's networks in the cache, and what it found out.
#[derive(Debug)]
pub struct LoadedNetworks {
    detector: NetKey<MtcnnNets>,
    swap: Option<LoadedSwapModels>,
    /// The GPEN generator the restore settings name.
    restore: Option<NetKey<FullGenerator>>,
    makeup: Option<NetKey<Generator>>,
}

impl LoadedNetworks {
    /// The face detector the run uses (to choose faces before a run, as `facecast swap --faces`).
    pub fn detector<'c>(&self, cache: &'c NetworkCache) -> Result<&'c MtcnnNets, RuntimeError> {
        cache.get(&self.detector)
    }
}

/// Loads every network a run of `recipe` needs into `cache`: the detector and each enabled step's.
/// What is already there is kept (the window's worker keeps its cache for its lifetime). Errors say
/// what is missing and how to install it.
pub fn load_networks(
    recipe: &Recipe,
    env: &StepEnv<'_>,
    cache: &mut NetworkCache,
) -> Result<LoadedNetworks, BatchError> {
    let store = env.store;
    let prepare = |e: &dyn std::fmt::Display| BatchError::Prepare(e.to_string());
    let mut loaded = LoadedNetworks {
        detector: cache.mtcnn(store, env.device).map_err(|e| prepare(&e))?,
        swap: None,
        restore: None,
        makeup: None,
    };
    if recipe.swap.enabled {
        let settings = swap_settings(recipe)?;
        // The detector is loaded above whatever the virtual model is, so it is never needed again.
        loaded.swap =
            Some(load_swap_models(store, &settings, false, cache, env.device).map_err(|e| prepare(&e))?);
    }
    if recipe.restore.enabled {
        let settings = restore_settings(recipe)?;
        let id = settings.model.id();
        let key = cache.gpen(store, id, env.device).map_err(|e| prepare(&e))?;
        loaded.restore = Some(key);
    }
    if recipe.makeup.enabled {
        makeup_settings(recipe)?;
        loaded.makeup = Some(cache.beautygan(store, env.device).map_err(|e| prepare(&e))?);
    }
    Ok(loaded)
}

/// The recipe ready to run, with the networks [`load_networks`] put into `cache`: the engine that
/// both the window's export job and `facecast batch` run. Resolves the virtual model (a library
/// model by name or id, or a face photo) and the makeup reference once, before any photo.
pub fn build_engine<'a>(
    recipe: Recipe,
    env: &StepEnv<'a>,
    cache: &'a NetworkCache,
    loaded: &LoadedNetworks,
) -> Result<BatchEngine<'a>, BatchError> {
    let prepare = |e: &dyn std::fmt::Display| BatchError::Prepare(e.to_string());
    let detector = cache.get(&loaded.detector).map_err(|e| prepare(&e))?;
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
        let key = loaded.restore.as_ref().ok_or_else(|| not_loaded("GPEN"))?;
        let net = cache.get(key).map_err(|e| prepare(&e))?;
        steps.push(Box::new(restore_step(
            net,
            restore_settings(&recipe)?,
            env.store,
            env.device,
        )));
    }
    if recipe.makeup.enabled {
        let key = loaded.makeup.as_ref().ok_or_else(|| not_loaded("BeautyGAN"))?;
        let generator = cache.get(key).map_err(|e| prepare(&e))?;
        let settings = makeup_settings(&recipe)?;
        let reference = reference(env.store.data_dir(), &settings)?;
        steps.push(Box::new(makeup_step(
            generator, reference, settings, env.store, env.device,
        )));
    }
    let engine = BatchEngine::new(recipe, detector, env.device, steps)?
        .with_detector_name(network_label(env.store, MTCNN_ID));
    Ok(match model_name {
        Some(name) => engine.with_model_name(Some(name)),
        None => engine,
    })
}

/// The restore step with `net`, the GPEN generator `settings.model` names, loaded from `store`:
/// the batch's step and the window's Restore section alike.
pub fn restore_step<'a>(
    net: &'a FullGenerator,
    settings: RestoreSettings,
    store: &WeightsStore,
    device: &'a Device,
) -> RestoreStep<'a> {
    let id = settings.model.id();
    RestoreStep {
        net,
        notes: reduced_note(store, id),
        network: network_label(store, id),
        settings,
        device,
    }
}

/// The makeup step with BeautyGAN's `generator`, loaded from `store`: the batch's step and the
/// window's Makeup section alike.
pub fn makeup_step<'a>(
    generator: &'a Generator,
    reference: Reference,
    settings: MakeupSettings,
    store: &WeightsStore,
    device: &'a Device,
) -> MakeupStep<'a> {
    MakeupStep {
        generator,
        reference,
        settings,
        device,
        notes: reduced_note(store, BEAUTYGAN_ID),
        network: network_label(store, BEAUTYGAN_ID),
    }
}

fn swap_step<'a>(
    recipe: &Recipe,
    env: &StepEnv<'a>,
    cache: &'a NetworkCache,
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

fn swap_settings(recipe: &Recipe) -> Result<SwapSettings, BatchError> {
    Ok(recipe.swap.settings.clone())
}

/// The restore settings a run uses ([`Recipe::restore_settings`]), checked.
fn restore_settings(recipe: &Recipe) -> Result<RestoreSettings, BatchError> {
    let settings = recipe.restore_settings();
    settings.validate().map_err(|e| bad_settings("restore", e))?;
    Ok(settings)
}

fn makeup_settings(recipe: &Recipe) -> Result<MakeupSettings, BatchError> {
    let settings = recipe.makeup.settings.clone();
    if settings.reference.is_none() {
        return Err(bad_settings(
            "makeup",
            "no reference face is set (makeup.reference: an id from `facecast makeup list`)",
        ));
    }
    Ok(settings)
}

fn reference(data_dir: &Path, settings: &MakeupSettings) -> Result<Reference, BatchError> {
    let id = settings.reference.as_deref().unwrap_or_default();
    ReferenceLibrary::new(data_dir)
        .get(id)
        .map_err(|e| BatchError::Prepare(format!("the makeup reference {id:?}: {e}")))
}

fn reduced_note(store: &WeightsStore, id: &str) -> Vec<String> {
    match store.status(id) {
        Ok(state) if state.status.is_reduced() => vec![format!("{id}: {REDUCED_NOTE}")],
        _ => Vec::new(),
    }
}

/// The keys of the steps a recipe enables, in the order they run.
pub fn enabled_steps(recipe: &Recipe) -> Vec<&'static str> {
    [
        ("swap", recipe.swap.enabled),
        ("restore", recipe.restore.enabled),
        ("makeup", recipe.makeup.enabled),
    ]
    .into_iter()
    .filter(|(_, enabled)| *enabled)
    .map(|(key, _)| key)
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
