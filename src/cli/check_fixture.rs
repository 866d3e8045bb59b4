//! `facecast check-fixture DIR...` (being written)
use std::path::PathBuf;
use std::process::ExitCode;

use crate::compute::BackendChoice;

#[derive(Debug, clap::Args)]
pub struct CheckFixtureArgs {
    /// Fixture folders (each with meta.json, weights and io.safetensors).
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
}

pub fn run(_args: CheckFixtureArgs, _backend: BackendChoice) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet")
}
