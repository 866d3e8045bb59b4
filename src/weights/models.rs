//! Official checkpoint files → ready networks. The one place that knows which file of a model
//! holds which network, used alike by the app, the CLI and `check-fixture`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::Device;

use super::load::LoadError;
use super::{CheckpointError, read_checkpoint};
use crate::nets::gpen::{self, FullGenerator, GpenConfig};
use super::manifest::{ManifestError, key_list};
use super::{CheckpointError, TensorMap, read_checkpoint};
use crate::nets::beautygan::{BeautyGanConfig, Generator};
use crate::nets::mobilenetv2::{MobileNetV2, MobileNetV2Config};
use crate::nets::mtcnn::MtcnnNets;

/// The store's id of the BeautyGAN generator.
pub const BEAUTYGAN_ID: &str = "beautygan";
/// The store's id of the ImageNet MobileNetV2 that face/no-face classifiers are fine-tuned from.
pub const MOBILENETV2_IMAGENET_ID: &str = "mobilenetv2-imagenet-v2";
/// The store's id of the face/no-face classifier trained by `facecast train-classifier`.
pub const FACE_CLASSIFIER_ID: &str = "mobilenetv2-face";

#[derive(Debug, thiserror::Error)]
pub enum ModelLoadError {
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    StyleGan(#[from] crate::nets::stylegan2::StyleGanError),
    #[error(transparent)]
    Store(#[from] super::store::StoreError),
    /// The file's shapes fit no configuration of the network.
    #[error("{}: {reason}", file.display())]
    Config { file: PathBuf, reason: String },
}

/// Key → shape of every tensor of a state dict, what config inference reads.
pub fn shapes(tensors: &TensorMap) -> BTreeMap<String, Vec<usize>> {
    tensors
        .tensors
        .iter()
        .map(|(k, t)| (k.clone(), t.shape.clone()))
        .collect()
}

/// Key → shape of a released checkpoint as listed in `models/keys/<name>.txt`.
pub fn key_list_shapes(name: &str) -> Result<BTreeMap<String, Vec<usize>>, ManifestError> {
    Ok(key_list(name)?.into_iter().map(|k| (k.key, k.shape)).collect())
}

/// BeautyGAN's generator from a `Generator_branch` state dict, built at the config its shapes
/// say (the released 64/6, or any other width and depth).
pub fn load_beautygan(file: &Path, device: &Device) -> Result<(Generator, BeautyGanConfig), ModelLoadError> {
    let tensors = read_checkpoint(file)?.flatten_tensors();
    let config = BeautyGanConfig::infer(&shapes(&tensors)).map_err(|e| ModelLoadError::Config {
        file: file.to_path_buf(),
        reason: format!("not a BeautyGAN generator: {e}"),
    })?;
    let generator = Generator::from_state_dict(&config, &tensors, file, device)?;
    Ok((generator, config))
}

/// MobileNetV2 from a torchvision state dict already read (`file` names it in errors), built at
/// the width and class count its shapes say.
pub fn mobilenetv2_from_tensors(
    tensors: &TensorMap,
    file: &Path,
    device: &Device,
) -> Result<(MobileNetV2, MobileNetV2Config), ModelLoadError> {
    let config = MobileNetV2Config::infer(&shapes(tensors)).map_err(|e| ModelLoadError::Config {
        file: file.to_path_buf(),
        reason: format!("not a MobileNetV2: {e}"),
    })?;
    let net = MobileNetV2::from_state_dict(&config, tensors, file, device)?;
    Ok((net, config))
}

/// MobileNetV2 from a torchvision checkpoint (ImageNet V1/V2, or a fine-tune of them).
pub fn load_mobilenetv2(
    file: &Path,
    device: &Device,
) -> Result<(MobileNetV2, MobileNetV2Config), ModelLoadError> {
    let tensors = read_checkpoint(file)?.flatten_tensors();
    mobilenetv2_from_tensors(&tensors, file, device)
}

/// MTCNN from a folder holding facenet-pytorch's `pnet.pt`, `rnet.pt` and `onet.pt`.
pub fn load_mtcnn(dir: &Path, device: &Device) -> Result<MtcnnNets, ModelLoadError> {
    let read = |name: &str| -> Result<(super::TensorMap, PathBuf), ModelLoadError> {
        let path = dir.join(name);
        Ok((read_checkpoint(&path)?.flatten_tensors(), path))
    };
    let (p, pp) = read("pnet.pt")?;
    let (r, rp) = read("rnet.pt")?;
    let (o, op) = read("onet.pt")?;
    Ok(MtcnnNets::from_state_dicts(
        [(&p, &pp), (&r, &rp), (&o, &op)],
        device,
    )?)
}

/// GPEN's FullGenerator from `GPEN-BFR-512.pth`, `GPEN-BFR-256.pth` or any checkpoint of the same
/// layout (reduced-width test weights, a training checkpoint's `g_ema`), built at the configuration
/// its tensor shapes give; the crop size the restore step uses is the network's.
pub fn load_gpen(path: &Path, device: &Device) -> Result<FullGenerator, ModelLoadError> {
    let all = read_checkpoint(path)?.flatten_tensors();
    let config = GpenConfig::from_state_dict(&all, path)?;
    Ok(gpen::from_tensors(&all, path, &config, device)?)
}

/// The weights store's id of the StyleGAN2 FFHQ generator.
pub const STYLEGAN2_ID: &str = "stylegan2-ffhq";

/// A StyleGAN2 generator with the shape it was built at and where it came from.
#[derive(Debug)]
pub struct LoadedStyleGan2 {
    pub model: crate::nets::stylegan2::StyleGan2,
    /// Inferred from the file's own tensor shapes.
    pub config: crate::nets::stylegan2::StyleGan2Config,
    pub path: PathBuf,
    /// Not the released FFHQ 1024 network (reduced-width test weights).
    pub reduced: bool,
}

/// Loads a StyleGAN2 checkpoint (`{"g_ema", "latent_avg"}` or a bare generator state dict),
/// building the generator at the shape its tensors have.
pub fn load_stylegan2_file(path: &Path, device: &Device) -> Result<LoadedStyleGan2, ModelLoadError> {
    use crate::nets::stylegan2::{StyleGan2Config, StyleGanError, checkpoint, infer};
    let all = read_checkpoint(path)?.flatten_tensors();
    let config = infer::config_from_state(&all).map_err(|e| match e {
        StyleGanError::Config(what) => StyleGanError::Layout {
            file: path.to_path_buf(),
            what,
        },
        other => other,
    })?;
    let model = checkpoint::from_tensors(&all, path, &config, device)?;
    let reduced = config != StyleGan2Config::ffhq_1024();
    Ok(LoadedStyleGan2 {
        model,
        config,
        path: path.to_path_buf(),
        reduced,
    })
}

/// The installed StyleGAN2 FFHQ generator, or a store error saying what is missing and how to
/// install it.
pub fn load_stylegan2_installed(
    store: &super::store::WeightsStore,
    device: &Device,
) -> Result<LoadedStyleGan2, ModelLoadError> {
    let files = store.require(STYLEGAN2_ID)?;
    let path = files
        .into_iter()
        .next()
        .ok_or_else(|| super::store::StoreError::NotInstalled {
            model: STYLEGAN2_ID.to_string(),
            reason: "the manifest lists no file".into(),
        })?;
    load_stylegan2_file(&path, device)
}

/// The face/no-face classifier written by `facecast train-classifier` (a MobileNetV2 state dict in
/// safetensors with its description in the header; see [`crate::pipeline::classifier`]).
pub fn load_face_classifier(
    file: &Path,
    device: &Device,
) -> Result<crate::pipeline::classifier::FaceClassifier, crate::pipeline::classifier::ClassifierError> {
    crate::pipeline::classifier::FaceClassifier::load(file, device)
}
