//! `facecast weights ...` (being written)
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct WeightsArgs {}

pub fn run(_args: WeightsArgs, _data_dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet")
}
