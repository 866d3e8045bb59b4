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
    /// Succeed even when some references are reported "not checked" (parts of a port that do
    /// not exist yet); failures still fail.
    #[arg(long)]
    pub partial: bool,
}

pub fn run(args: CheckFixtureArgs, backend: BackendChoice) -> anyhow::Result<ExitCode> {
    let compute = Compute::select(backend)?;
    println!("backend: {}", compute.label());
    let (mut passed, mut failed, mut unchecked) = (0usize, 0usize, 0usize);
    for dir in &args.dirs {
        match parity::run_fixture(dir, &compute.device) {
            Ok(cases) => {
                for case in cases {
                    let status = if case.unchecked {
                        "----"
                    } else if case.passed {
                        "ok  "
                    } else {
                        "FAIL"
                    };
                    let note = case.note.map(|n| format!("  ({n})")).unwrap_or_default();
                    if case.unchecked {
                        println!("{status} {}: {}  not checked{note}", dir.display(), case.name);
                        unchecked += 1;
                        continue;
                    }
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
    if unchecked > 0 {
        let verdict = if args.partial {
            "accepted with --partial"
        } else {
            "a failure without --partial"
        };
        println!("{passed} passed, {failed} failed, {unchecked} not checked ({verdict})");
    } else {
        println!("{passed} passed, {failed} failed");
    }
    Ok(if failed == 0 && (unchecked == 0 || args.partial) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
