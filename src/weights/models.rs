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
