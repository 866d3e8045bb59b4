//! Official checkpoint files → ready networks. The one place that knows which file of a model
//! holds which network, used alike by the app, the CLI and `check-fixture`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::Device;

use super::load::LoadError;
use super::manifest::{ManifestError, key_list};
use super::{CheckpointError, TensorMap, read_checkpoint};
use crate::nets::arcface::{ArcFace, ArcFaceConfig, ArcFaceError};
use crate::nets::beautygan::{BeautyGanConfig, Generator};
use crate::nets::faceshifter::{AeiConfig, AeiError, AeiNet};
use crate::nets::gpen::{self, FullGenerator, GpenConfig};
use crate::nets::mobilenetv2::{MobileNetV2, MobileNetV2Config};
use crate::nets::mtcnn::MtcnnNets;
use crate::nets::styleclip::mapper::{LevelsMapper, MapperInfo};

/// The store's id of the BeautyGAN generator.
pub const BEAUTYGAN_ID: &str = "beautygan";
/// The store's id of MTCNN, the face detector (facenet-pytorch's three networks).
pub const MTCNN_ID: &str = "mtcnn";
/// The store's id of the ImageNet MobileNetV2 that face/no-face classifiers are fine-tuned from.
pub const MOBILENETV2_IMAGENET_ID: &str = "mobilenetv2-imagenet-v2";
/// The store's id of the face/no-face classifier trained by `facecast train-classifier`.
pub const FACE_CLASSIFIER_ID: &str = "mobilenetv2-face";
/// The store's ids and file names of FaceShifter's two networks.
pub const ARCFACE_ID: &str = "arcface-ir-se50";
pub const ARCFACE_FILE: &str = "model_ir_se50.pth";
pub const AEI_ID: &str = "faceshifter-aei";
pub const AEI_FILE: &str = "G_latest.pth";

#[derive(Debug, thiserror::Error)]
pub enum ModelLoadError {
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The file is a checkpoint, but not of the network asked for (the message names the file).
    #[error("{0}")]
    WrongNetwork(String),
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

/// The store's id of CLIP ViT-B/32 (`ViT-B-32.pt`; only its text tower is read).
pub const CLIP_TEXT_ID: &str = "clip-vit-b32";
/// The store's id of CLIP's BPE vocabulary.
pub const CLIP_VOCAB_ID: &str = "clip-bpe-vocab";
/// The store's id of StyleCLIP's global directions for FFHQ (`fs3.npy`, `S_mean_std`).
pub const STYLECLIP_GLOBAL_ID: &str = "styleclip-global-ffhq";
/// Every StyleCLIP latent mapper's store id starts with this.
pub const STYLECLIP_MAPPER_PREFIX: &str = "styleclip-mapper-";

/// Why a text-edit network could not be made ready.
#[derive(Debug, thiserror::Error)]
pub enum TextModelError {
    #[error(transparent)]
    Store(#[from] super::store::StoreError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Tokenizer(#[from] crate::nets::clip_text::TokenizerError),
    #[error(transparent)]
    Mapper(#[from] crate::nets::styleclip::mapper::MapperError),
    #[error("{}: {cause}", file.display())]
    Data { file: PathBuf, cause: String },
}

/// CLIP's text side: the tokenizer and the text transformer, ready to turn prompts into features.
#[derive(Debug)]
pub struct ClipText {
    pub tokenizer: crate::nets::clip_text::ClipTokenizer,
    pub encoder: crate::nets::clip_text::ClipTextEncoder,
}

/// The CLIP text tower from `ViT-B-32.pt` (the TorchScript archive, fp16 promoted) or any state
/// dict of the same keys; its sizes are read from the tensors, so reduced test weights load too.
pub fn load_clip_text(
    path: &Path,
    device: &Device,
) -> Result<crate::nets::clip_text::ClipTextEncoder, TextModelError> {
    let tensors = read_checkpoint(path)?.flatten_tensors();
    Ok(crate::nets::clip_text::from_state_dict(
        &tensors, path, None, device,
    )?)
}

/// The BPE vocabulary: the store's `clip-bpe-vocab` when installed; else `FACECAST_CLIP_VOCAB`;
/// else where `scripts/fetch-clip-vocab.sh` (run by setup) puts it,
/// `models/clip/bpe_simple_vocab_16e6.txt.gz` under the working directory. When none exists the
/// store's error says what to install.
pub fn clip_vocab_path(store: &super::store::WeightsStore) -> Result<PathBuf, TextModelError> {
    let installed = store.require(CLIP_VOCAB_ID);
    if let Ok(paths) = &installed
        && let Some(path) = paths.first()
    {
        return Ok(path.clone());
    }
    if let Some(path) = crate::parity::clip_text::vocab_path() {
        return Ok(path);
    }
    installed?;
    Err(TextModelError::Data {
        file: store.model_dir(CLIP_VOCAB_ID),
        cause: "the CLIP vocabulary model lists no file".into(),
    })
}

/// CLIP's BPE tokenizer from its vocabulary file (`bpe_simple_vocab_16e6.txt.gz`, or the text).
pub fn load_clip_tokenizer(
    path: &Path,
) -> Result<crate::nets::clip_text::ClipTokenizer, crate::nets::clip_text::TokenizerError> {
    let bytes = std::fs::read(path).map_err(|e| crate::nets::clip_text::TokenizerError::Read {
        path: path.to_path_buf(),
        cause: e.to_string(),
    })?;
    crate::nets::clip_text::ClipTokenizer::from_bytes(bytes, path)
}

/// Tokenizer and text tower from the store (`clip-bpe-vocab`, `clip-vit-b32`).
pub fn load_clip_installed(
    store: &super::store::WeightsStore,
    device: &Device,
) -> Result<ClipText, TextModelError> {
    let weights = first_file(store, CLIP_TEXT_ID)?;
    let vocab = clip_vocab_path(store)?;
    Ok(ClipText {
        tokenizer: load_clip_tokenizer(&vocab)?,
        encoder: load_clip_text(&weights, device)?,
    })
}

/// StyleCLIP's global directions from `fs3.npy` and `S_mean_std`. The style layout (how many S
/// layers, how wide) is read from `S_mean_std`, which lists every layer; the convolution layers are
/// every layer but the toRGB ones (index ≡ 1 mod 3), and `fs3` must end on one of their boundaries.
pub fn load_global_directions(
    fs3: &Path,
    s_mean_std: &Path,
    device: &Device,
) -> Result<crate::nets::styleclip::global::GlobalDirections, TextModelError> {
    use crate::nets::styleclip::global::{GlobalDirections, SLayout};
    let stats_value = read_checkpoint(s_mean_std)?;
    let stats = stats_value.flatten_tensors();
    let data_err = |file: &Path, cause: String| TextModelError::Data {
        file: file.to_path_buf(),
        cause,
    };
    let layers = (0..)
        .take_while(|l| stats.get(&format!("1.{l}")).is_some())
        .count();
    if layers == 0 {
        return Err(data_err(
            s_mean_std,
            "not StyleCLIP's style statistics: expected a pickled [means, stds] of per-layer arrays".into(),
        ));
    }
    let mut dims = Vec::with_capacity(layers);
    for l in 0..layers {
        let std = stats.get(&format!("1.{l}")).map(|t| t.numel()).unwrap_or(0);
        let mean = stats.get(&format!("0.{l}")).map(|t| t.numel());
        if mean.is_some_and(|m| m != std) {
            return Err(data_err(
                s_mean_std,
                format!("style layer {l} has {} means but {std} stds", mean.unwrap_or(0)),
            ));
        }
        dims.push(std);
    }
    let fs3_value = read_checkpoint(fs3)?;
    GlobalDirections::from_values(&fs3_value, &stats_value, SLayout::new(dims, None), device)
        .map_err(|e| data_err(fs3, e.to_string()))
}

/// The global directions from the store (`styleclip-global-ffhq`).
pub fn load_global_installed(
    store: &super::store::WeightsStore,
    device: &Device,
) -> Result<crate::nets::styleclip::global::GlobalDirections, TextModelError> {
    let paths = store.require(STYLECLIP_GLOBAL_ID)?;
    let find = |name: &str| {
        paths
            .iter()
            .find(|p| p.file_name().is_some_and(|n| n == name))
            .cloned()
            .ok_or_else(|| TextModelError::Data {
                file: store.model_dir(STYLECLIP_GLOBAL_ID).join(name),
                cause: "not part of the installed global directions".into(),
            })
    };
    load_global_directions(&find("fs3.npy")?, &find("S_mean_std")?, device)
}

/// A released StyleCLIP mapper (`{"state_dict", "opts"}`); its width and levels are read from the
/// file, the generator stored beside it is not loaded.
pub fn load_mapper(path: &Path, device: &Device) -> Result<(LevelsMapper, MapperInfo), TextModelError> {
    let checkpoint = read_checkpoint(path)?;
    Ok(LevelsMapper::from_checkpoint(&checkpoint, path, device)?)
}

/// A mapper from the store by id (`styleclip-mapper-…`).
pub fn load_mapper_installed(
    store: &super::store::WeightsStore,
    id: &str,
    device: &Device,
) -> Result<(LevelsMapper, MapperInfo), TextModelError> {
    load_mapper(&first_file(store, id)?, device)
}

/// The manifest's StyleCLIP mappers, in manifest order.
pub fn mapper_models(manifest: &super::manifest::Manifest) -> Vec<&super::manifest::ModelEntry> {
    manifest
        .models
        .iter()
        .filter(|m| m.id.starts_with(STYLECLIP_MAPPER_PREFIX))
        .collect()
}

fn first_file(store: &super::store::WeightsStore, id: &str) -> Result<PathBuf, TextModelError> {
    store
        .require(id)?
        .into_iter()
        .next()
        .ok_or_else(|| TextModelError::Data {
            file: store.model_dir(id),
            cause: "the model lists no file".into(),
        })
}

/// ArcFace IR-SE from a bare `Backbone` state dict (`model_ir_se50.pth`, or reduced test weights),
/// built at the architecture the file's shapes describe.
pub fn load_arcface(path: &Path, device: &Device) -> Result<(ArcFace, ArcFaceConfig), ModelLoadError> {
    let tensors = read_checkpoint(path)?.flatten_tensors();
    ArcFace::from_checkpoint(tensors, path, device).map_err(|e| match e {
        ArcFaceError::Load(e) => ModelLoadError::Load(e),
        ArcFaceError::Config(e) => ModelLoadError::WrongNetwork(format!("{}: {e}", path.display())),
        other => ModelLoadError::WrongNetwork(other.to_string()),
    })
}

/// AEI-Net from a bare `AEI_Net` state dict (`G_latest.pth`, or reduced test weights), built at
/// the widths the file's shapes describe. Other generators of the same name are refused by name.
pub fn load_aei(path: &Path, device: &Device) -> Result<(AeiNet, AeiConfig), ModelLoadError> {
    let tensors = read_checkpoint(path)?.flatten_tensors();
    AeiNet::from_checkpoint(tensors, path, device).map_err(|e| match e {
        AeiError::Load(e) => ModelLoadError::Load(e),
        AeiError::Config(e) => ModelLoadError::WrongNetwork(format!("{}: {e}", path.display())),
        other => ModelLoadError::WrongNetwork(other.to_string()),
    })
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
