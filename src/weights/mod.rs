//! Where weights come from, how they are verified, and how they are read.
//!
//! - [`manifest`]: the committed list of every network (`models/manifest.toml`).
//! - [`store`]: the per-user weights directory: install, verify, import, remove.
//! - [`download`]: HTTP downloads with resume, progress and sha256.
//! - [`features`]: which networks each feature of the app needs.
//! - [`drive`]: Google Drive's large-file confirmation page, followed to the file.
//! - [`checkpoint`]: reads PyTorch (zip, legacy, TorchScript), safetensors and numpy files into
//!   plain [`Value`]s through [`pickle`], a pickle reader that never executes anything.
//! - [`torch_save`]: writes a [`Value`] tree as a `torch.save` zip that PyTorch loads back.
//! - [`load`]: puts a [`TensorMap`] into a burn module, reporting missing, unexpected and misshapen keys.
//! - [`models`]: one reader per network, from its files to the module `nets` builds from tensors.
//! - [`samples`]: the sample photos, installed like a model.

pub mod checkpoint;
pub mod download;
pub mod drive;
pub mod features;
pub mod load;
pub mod manifest;
pub mod models;
pub mod pickle;
pub mod samples;
pub mod store;
pub mod tensors;
pub mod torch_save;

pub use checkpoint::{CheckpointError, read_checkpoint};
pub use tensors::{RawTensor, TensorMap, TensorValues, Value};
