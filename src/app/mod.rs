//! The eframe window: a thin view over plain state. Never runs a network on the UI thread.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::compute::BackendChoice;

pub mod weights_window;

/// What the command line asks of the window.
#[derive(Debug, Clone, Default)]
pub struct WindowOptions {
    pub backend: BackendChoice,
    pub data_dir: Option<PathBuf>,
    pub open: Vec<PathBuf>,
    pub samples: bool,
}

pub fn run_window(_options: WindowOptions) -> anyhow::Result<ExitCode> {
    anyhow::bail!("the window is being written")
}
