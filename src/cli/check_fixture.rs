//! `facecast check-fixture DIR...`: runs parity fixture folders and prints one line per case.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::compute::{BackendChoice, Compute};
use crate::parity;

#[derive(Debug, clap::Args)]
pub struct CheckFixtureArgs {
    /// Fixture folders (each with meta.json, the weights and io.safetensors).
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
}

pub fn run(args: CheckFixtureArgs, backend: BackendChoice) -> anyhow::Result<ExitCode> {
    let compute = Compute::select(backend)?;
    println!("backend: {}", compute.label());
    let (mut passed, mut failed) = (0usize, 0usize);
    for dir in &args.dirs {
        match parity::run_fixture(dir, &compute.device) {
            Ok(cases) => {
                for case in cases {
                    let status = if case.passed { "ok  " } else { "FAIL" };
                    let note = case.note.map(|n| format!("  ({n})")).unwrap_or_default();
                    println!(
                        "{status} {}: {}  max abs err {:.3e}{note}",
                        dir.display(),
                        case.name,
                        case.max_abs_err
                    );
                    if case.passed {
                        passed += 1;
                    } else {
                        failed += 1;
                    }
                }
            }
            Err(err) => {
                println!("FAIL {}: {err}", dir.display());
                failed += 1;
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
