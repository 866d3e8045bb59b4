//! Facecast: replace the faces in product photos with one consistent virtual model.
//!
//! The crate is split by responsibility (see `../shared/DESIGN.md` and the README):
//! - [`app`]: the eframe window, a thin view over plain state; never runs a network.
//! - [`cast`]: the virtual-model library on disk (generated and imported faces).
//! - [`jobs`]: the background worker that owns the compute device and the loaded networks.
//! - [`pipeline`]: plain functions over images (detect, align, swap, restore, edit, paste).
//! - [`face`]: geometry and pixels (landmarks, similarity transforms, warps, masks).
//! - [`nets`]: one burn module per network, knowing nothing about files or the UI.
//! - [`weights`]: the model manifest, the store, and the checkpoint reader that never executes.
//! - [`parity`]: `check-fixture`, proving each port against the official PyTorch code.
//! - [`io`]: image decoding with limits, atomic export.
//! - [`compute`]: which burn device runs the networks, and how it is named to the user.

pub mod app;
pub mod cast;
pub mod cli;
pub mod compute;
pub mod face;
pub mod io;
pub mod jobs;
pub mod nets;
pub mod parity;
pub mod pipeline;
pub mod weights;
