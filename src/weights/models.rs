//! Official checkpoint files → ready networks. The one place that knows which file of a model
//! holds which network, used alike by the app, the CLI and `check-fixture`.

use std::path::{Path, PathBuf};

use burn::tensor::Device;

use super::load::LoadError;
use super::{CheckpointError, read_checkpoint};
use crate::nets::mtcnn::MtcnnNets;

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
