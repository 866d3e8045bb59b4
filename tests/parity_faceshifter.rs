//! Runs the shared `faceshifter_aei` fixture through the port on the CPU backend.

use std::path::PathBuf;

use burn::tensor::Device;

fn fixture(name: &str) -> Option<PathBuf> {
    let root = std::env::var("FACECAST_FIXTURES").unwrap_or_else(|_| "../shared/fixtures".to_string());
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(root).join(name);
    if dir.join("meta.json").exists() {
        return Some(dir);
    }
    // Under CI a missing fixture is a failure, locally a skip.
    assert!(
        std::env::var_os("CI").is_none(),
        "fixture {} is missing",
        dir.display()
    );
    eprintln!(
        "skipping: fixture {} not found (set FACECAST_FIXTURES)",
        dir.display()
    );
    None
}

#[test]
fn faceshifter_matches_the_reference() {
    let Some(dir) = fixture("faceshifter_aei") else {
        return;
    };
    let cases = facecast::parity::run_fixture(&dir, &Device::flex()).unwrap_or_else(|e| panic!("{e}"));
    let failed: Vec<_> = cases.iter().filter(|c| !c.passed).collect();
    for case in &failed {
        eprintln!(
            "FAIL {}: max abs err {:.3e} {:?}",
            case.name, case.max_abs_err, case.note
        );
    }
    assert!(!cases.is_empty(), "the fixture ran no case");
    assert!(
        failed.is_empty(),
        "{} of {} cases failed",
        failed.len(),
        cases.len()
    );
    // The end-to-end case (ArcFace fixture → identity → swap) must have run, not been skipped.
    assert!(
        cases.iter().any(|c| c.name.starts_with("chain.output")),
        "no chain case"
    );
}
