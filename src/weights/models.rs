//! Official checkpoint files → ready networks. The one place that knows which file of a model
//! holds which network, used alike by the app, the CLI and `check-fixture`.

use std::path::{Path, PathBuf};

use burn::tensor::Device;

use super::load::LoadError;
use super::{CheckpointError, read_checkpoint};
use crate::nets::gpen::{self, FullGenerator, GpenConfig};
use crate::nets::mtcnn::MtcnnNets;
use crate::nets::stylegan2::StyleGanError;

#[derive(Debug, thiserror::Error)]
pub enum ModelLoadError {
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Load(#[from] LoadError),
    /// GPEN's file did not fit a FullGenerator (no `From`: the StyleGAN2 loader shares the type).
    #[error(transparent)]
    Gpen(StyleGanError),
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
    let config = GpenConfig::from_state_dict(&all, path).map_err(ModelLoadError::Gpen)?;
    gpen::from_tensors(&all, path, &config, device).map_err(ModelLoadError::Gpen)
}
