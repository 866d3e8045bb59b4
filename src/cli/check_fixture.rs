//! `facecast check-fixture DIR...`: runs parity fixture folders and prints one line per case.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::compute::{BackendChoice, Compute};
use crate::parity::check::FixtureCheck;

#[derive(Debug, clap::Args)]
pub struct CheckFixtureArgs {
    /// Fixture folders (each with meta.json, the weights and io.safetensors).
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
}

pub fn run(args: CheckFixtureArgs, backend: BackendChoice) -> anyhow::Result<ExitCode> {
    let compute = Compute::select(backend)?;
    println!("backend: {}", compute.label());
    let mut check = FixtureCheck::default();
    for dir in &args.dirs {
        // The lines say everything; the cases themselves are only counted.
        let _ = check.run(dir, &compute.device, &mut |line| println!("{line}"));
    }
    println!("{}", check.summary());
    Ok(if check.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
