//! Warming the networks on a GPU: which networks the window is about to run, and one run of each
//! on a dummy input at the shapes the window feeds it.
//!
//! On wgpu the first call of a network compiles its kernels and autotunes them: seconds on a GPU,
//! minutes on software Vulkan (RESULTS.md). The window's worker runs [`warm`] over
//! [`warmup_plan`] after start-up, so the operator's first detection or swap finds the kernels
//! compiled instead of stalling. The CPU backend compiles nothing, so nothing is warmed there (the
//! worker decides that; these functions run on any device).
//!
//! Each run goes through the same pipeline function the window calls (detection on a photo, the
//! identity embedding, one AEI-Net pass, GPEN on a crop, a makeup transfer), so the kernels and
//! shapes are the ones a real call meets, not a hand-made copy of them.

use burn::tensor::{Device, Tensor};
use image::{Rgb, RgbImage};

use super::detect::photo::{DetectSettings, detect_photo};
use super::makeup::references::CROP_SIZE as MAKEUP_CROP;
use super::recipe::Recipe;
use super::restore::{GpenModel, to_network_input};
use super::runtime::{NetworkCache, RuntimeError};
use super::swap::faceshifter::{generate, identity_embedding};
use super::swap::{CROP_SIZE as SWAP_CROP, SwapEngine};
use crate::weights::models::{AEI_ID, ARCFACE_ID, BEAUTYGAN_ID, MTCNN_ID};
use crate::weights::store::WeightsStore;

/// The photo size detection is warmed at (width, height): a 4:3 product photo of about a megapixel.
/// PNet's pyramid levels, and so its kernels, follow the photo's size; larger photos are detected on
/// a copy capped at the recipe's `max_side` (1600 px), so every photo meets levels of this range.
pub const TYPICAL_PHOTO: (u32, u32) = (1024, 768);

/// How many 24×24 crops RNet is warmed on: the candidates PNet passes on a photo are tens to hundreds.
pub const RNET_CROPS: usize = 64;

/// How many 48×48 crops ONet is warmed on: the few boxes RNet keeps.
pub const ONET_CROPS: usize = 8;

/// A network the window runs, as the warm-up knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WarmNetwork {
    /// The face detector: every photo added to the library is screened with it.
    Mtcnn,
    /// The identity network of the swap (both engines check the identity with it).
    ArcFace,
    /// FaceShifter's generator, when the recipe swaps with FaceShifter.
    AeiNet,
    /// The restore step's GPEN generator.
    Gpen(GpenModel),
    /// The makeup step's generator.
    BeautyGan,
}

impl WarmNetwork {
    /// The weights store's id of the network.
    pub fn id(self) -> &'static str {
        match self {
            WarmNetwork::Mtcnn => MTCNN_ID,
            WarmNetwork::ArcFace => ARCFACE_ID,
            WarmNetwork::AeiNet => AEI_ID,
            WarmNetwork::Gpen(model) => model.id(),
            WarmNetwork::BeautyGan => BEAUTYGAN_ID,
        }
    }

    /// How the status bar names it.
    pub fn label(self) -> &'static str {
        match self {
            WarmNetwork::Mtcnn => "MTCNN",
            WarmNetwork::ArcFace => "ArcFace",
            WarmNetwork::AeiNet => "AEI-Net",
            WarmNetwork::Gpen(GpenModel::Bfr512) => "GPEN-512",
            WarmNetwork::Gpen(GpenModel::Bfr256) => "GPEN-256",
            WarmNetwork::BeautyGan => "BeautyGAN",
        }
    }

    /// The dummy input it is warmed on, in words (logs, the job's hover text).
    pub fn input(self) -> String {
        let (w, h) = TYPICAL_PHOTO;
        match self {
            WarmNetwork::Mtcnn => format!(
                "a {w}×{h} photo through the detector, then RNet on {RNET_CROPS} crops and ONet on {ONET_CROPS}"
            ),
            WarmNetwork::ArcFace => format!("one aligned {SWAP_CROP}×{SWAP_CROP} face (read at 112×112)"),
            WarmNetwork::AeiNet => format!("one aligned {SWAP_CROP}×{SWAP_CROP} face and an identity"),
            WarmNetwork::Gpen(model) => {
                let side = model.side();
                format!("one aligned {side}×{side} face")
            }
            WarmNetwork::BeautyGan => format!("two aligned {MAKEUP_CROP}×{MAKEUP_CROP} faces"),
        }
    }
}

/// Why one network could not be warmed. The next use of the network meets the same problem and
/// reports it to the operator; the warm-up only logs it and goes on.
#[derive(Debug, thiserror::Error)]
pub enum WarmupError {
    /// Not installed, damaged, or unreadable (the message names the file and the cause).
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("{network} failed on its warm-up input: {cause}")]
    Network { network: &'static str, cause: String },
}

/// The networks to warm, in the order they are warmed: the detector first (every photo added is
/// screened with it, so it is the first one the operator waits for), then the steps the recipe
/// enables, in the order they run. Networks that are not installed (`installed(id)` false) are left
/// out: there is nothing to run, and the window asks for them when a feature needs them.
pub fn warmup_plan(recipe: &Recipe, installed: impl Fn(&str) -> bool) -> Vec<WarmNetwork> {
    let mut plan = vec![WarmNetwork::Mtcnn];
    if recipe.swap.enabled {
        plan.push(WarmNetwork::ArcFace);
        if recipe.swap.settings.engine == SwapEngine::FaceShifter {
            plan.push(WarmNetwork::AeiNet);
        }
    }
    let restore = recipe.restore_settings();
    if restore.is_enabled() {
        plan.push(WarmNetwork::Gpen(restore.model));
    }
    if recipe.makeup.enabled {
        plan.push(WarmNetwork::BeautyGan);
    }
    plan.retain(|network| installed(network.id()));
    plan
}

/// Whether `store` holds a usable copy of `id` (what [`warmup_plan`] asks).
pub fn is_installed(store: &WeightsStore, id: &str) -> bool {
    store.status(id).is_ok_and(|state| state.status.is_usable())
}

/// Loads `network` into `cache` (where the window's jobs find it afterwards) and runs it once on its
/// dummy input, reading the result back so every kernel really ran.
pub fn warm(
    network: WarmNetwork,
    store: &WeightsStore,
    cache: &mut NetworkCache,
    device: &Device,
) -> Result<(), WarmupError> {
    let failed = |cause: String| WarmupError::Network {
        network: network.label(),
        cause,
    };
    match network {
        WarmNetwork::Mtcnn => {
            let key = cache.mtcnn(store, device)?;
            let nets = cache.get(&key)?;
            let (w, h) = TYPICAL_PHOTO;
            detect_photo(nets, &dummy_photo(w, h), &DetectSettings::default(), device)
                .map_err(|e| failed(e.to_string()))?;
            // A dummy photo may give RNet and ONet no candidate at all: run them on crops directly.
            let rnet = nets.rnet.forward(Tensor::zeros([RNET_CROPS, 3, 24, 24], device));
            for out in [rnet.reg, rnet.prob] {
                read_back(out).map_err(failed)?;
            }
            let onet = nets.onet.forward(Tensor::zeros([ONET_CROPS, 3, 48, 48], device));
            for out in [onet.reg, onet.landmarks, onet.prob] {
                read_back(out).map_err(failed)?;
            }
        }
        WarmNetwork::ArcFace => {
            let key = cache.arcface(store, device)?;
            let arcface = cache.get(&key)?;
            identity_embedding(arcface, &[dummy_photo(SWAP_CROP, SWAP_CROP)], device)
                .map_err(|e| failed(e.to_string()))?;
        }
        WarmNetwork::AeiNet => {
            let key = cache.aei(store, device)?;
            let aei = cache.get(&key)?;
            // Any unit vector will do: the kernels do not depend on the identity's values.
            let dim = aei.identity_dim();
            let z = vec![1.0 / (dim as f32).sqrt(); dim];
            generate(aei, &dummy_photo(SWAP_CROP, SWAP_CROP), &z, device)
                .map_err(|e| failed(e.to_string()))?;
        }
        WarmNetwork::Gpen(model) => {
            let key = cache.gpen(store, model.id(), device)?;
            let net = cache.get(&key)?;
            let side = net.size() as u32;
            let out = net
                .forward(to_network_input(&dummy_photo(side, side), device))
                .map_err(|e| failed(e.to_string()))?;
            read_back(out).map_err(failed)?;
        }
        WarmNetwork::BeautyGan => {
            let key = cache.beautygan(store, device)?;
            let generator = cache.get(&key)?;
            let face = dummy_photo(MAKEUP_CROP, MAKEUP_CROP);
            super::makeup::transfer(generator, &face, &face, device).map_err(|e| failed(e.to_string()))?;
        }
    }
    Ok(())
}

/// A smooth colour gradient: any pixels will do, since the kernels depend on the shapes only.
fn dummy_photo(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        Rgb([
            (x * 255 / width.max(1)) as u8,
            (y * 255 / height.max(1)) as u8,
            ((x + y) % 256) as u8,
        ])
    })
}

/// Waits for a tensor's values on the host; burn runs lazily, so only this makes the kernels run.
fn read_back<const D: usize>(tensor: Tensor<D>) -> Result<(), String> {
    tensor
        .into_data()
        .try_to_vec::<f32>()
        .map(|_| ())
        .map_err(|e| format!("{e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::restore::RestoreMode;

    fn everything(_: &str) -> bool {
        true
    }

    #[test]
    fn the_default_recipe_warms_the_detector_and_the_faceshifter_swap() {
        let plan = warmup_plan(&Recipe::default(), everything);
        assert_eq!(
            plan,
            [WarmNetwork::Mtcnn, WarmNetwork::ArcFace, WarmNetwork::AeiNet]
        );
    }

    #[test]
    fn every_enabled_step_is_warmed_in_the_order_it_runs() {
        let mut recipe = Recipe::default();
        recipe.restore.enabled = true;
        recipe.restore.settings.model = GpenModel::Bfr256;
        recipe.makeup.enabled = true;
        let plan = warmup_plan(&recipe, everything);
        let labels: Vec<&str> = plan.iter().map(|n| n.label()).collect();
        assert_eq!(labels, ["MTCNN", "ArcFace", "AEI-Net", "GPEN-256", "BeautyGAN"]);
        assert_eq!(plan[3].id(), GpenModel::Bfr256.id());
    }

    #[test]
    fn the_classic_engine_needs_no_aei_net_and_disabled_steps_nothing() {
        let mut recipe = Recipe::default();
        recipe.swap.settings.engine = SwapEngine::Classic;
        recipe.restore.enabled = false;
        recipe.restore.settings.mode = RestoreMode::Gpen;
        assert_eq!(
            warmup_plan(&recipe, everything),
            [WarmNetwork::Mtcnn, WarmNetwork::ArcFace]
        );
        recipe.swap.enabled = false;
        assert_eq!(warmup_plan(&recipe, everything), [WarmNetwork::Mtcnn]);
    }

    #[test]
    fn networks_that_are_not_installed_are_left_out() {
        let mut recipe = Recipe::default();
        recipe.makeup.enabled = true;
        let only = |id: &str| id == ARCFACE_ID || id == BEAUTYGAN_ID;
        assert_eq!(
            warmup_plan(&recipe, only),
            [WarmNetwork::ArcFace, WarmNetwork::BeautyGan]
        );
        assert!(warmup_plan(&recipe, |_| false).is_empty());
    }
}
