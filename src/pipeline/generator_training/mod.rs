//! Fine-tuning the StyleGAN2 generator: one iteration of rosinality's `train.py` on burn's autodiff.
//!
//! - [`losses`]: the non-saturating logistic losses.
//! - [`augment`], [`ada`]: `train.py --augment`'s non-leaking augmentation and its adaptive
//!   probability.
//! - [`near_copy`]: whether generated faces are near-copies of training photos (ArcFace).
//! - [`adam`]: torch's Adam, with the lazy-regularisation corrections of lr and betas.
//! - [`ema`]: the exponential moving average `g_ema` (parameters only).
//! - [`checkpoint`]: reading `train.py`'s checkpoint layout (`g`, `d`, `g_ema`, both optimisers).
//! - [`named`]: module parameters and gradients by checkpoint key, the currency of the above.
//! - [`step`]: the first-order phases (discriminator and generator steps); the regularisers
//!   (R1, path length) plug in through the interface described there.
//! - [`regularizers`]: R1 and path-length regularisation, whose gradients go through a gradient.
//! - [`data`]: the user's photos as FFHQ-aligned training faces (with their mirror images).
//! - [`trainer`]: a run: `train.py`'s loop body over networks, optimisers and a seeded stream.
//! - [`save`]: the run's checkpoints in `train.py`'s layout, written atomically.
//! - [`registry`]: runs and trained generators in the data folder, with their lineage.
//! - [`run`]: one run from start (or resume) to registration, with events, pause and cancel
//!   ([`control`]).

pub mod ada;
pub mod adam;
pub mod augment;
pub mod checkpoint;
pub mod control;
pub mod data;
pub mod ema;
pub mod losses;
pub mod named;
pub mod near_copy;
pub mod registry;
pub mod regularizers;
pub mod run;
pub mod save;
pub mod step;
pub mod trainer;

use std::path::PathBuf;

use crate::nets::stylegan2::StyleGanError;
use crate::weights::CheckpointError;
use crate::weights::load::LoadError;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Network(#[from] StyleGanError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The file is a checkpoint but not in `train.py`'s layout, or a part of it is malformed.
    #[error("{}: {what}", file.display())]
    Layout { file: PathBuf, what: String },
    /// Parameters, gradients and optimiser state do not line up (a bug or a foreign state).
    #[error("optimiser: {0}")]
    Optimizer(String),
    #[error("{0}")]
    Input(String),
}
