//! What a check of fixture folders reports: one line per case (or per folder that cannot be run)
//! and the counts. `facecast check-fixture` prints it; the GPU bench prints the same and also
//! records each folder in its JSON report, so both go through here.

use std::path::Path;

use burn::tensor::Device;

use super::{CaseResult, ParityError, run_fixture};

/// Cases passed and failed so far; a folder that cannot be run counts as one failure.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FixtureCheck {
    pub passed: usize,
    pub failed: usize,
}

impl FixtureCheck {
    /// Runs the fixture folder `dir`, hands `say` its lines and counts its cases. The result is
    /// returned for callers that record more than the lines.
    pub fn run(
        &mut self,
        dir: &Path,
        device: &Device,
        say: &mut dyn FnMut(String),
    ) -> Result<Vec<CaseResult>, ParityError> {
        let result = run_fixture(dir, device);
        match &result {
            Ok(cases) => {
                for case in cases {
                    say(case_line(dir, case));
                    if case.passed {
                        self.passed += 1;
                    } else {
                        self.failed += 1;
                    }
                }
            }
            Err(err) => {
                say(format!("FAIL {}: {err}", dir.display()));
                self.failed += 1;
            }
        }
        result
    }

    /// The closing line.
    pub fn summary(&self) -> String {
        format!("{} passed, {} failed", self.passed, self.failed)
    }
}

fn case_line(dir: &Path, case: &CaseResult) -> String {
    let status = if case.passed { "ok  " } else { "FAIL" };
    let note = case.note.as_ref().map(|n| format!("  ({n})")).unwrap_or_default();
    format!(
        "{status} {}: {}  max abs err {:.3e}{note}",
        dir.display(),
        case.name,
        case.max_abs_err
    )
}
