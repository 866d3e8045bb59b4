//! Shared test helpers: where the parity fixtures are.
#![allow(dead_code)]

use std::path::PathBuf;

/// `$FACECAST_FIXTURES`, else `../shared/fixtures` beside the repository. Under CI a missing
/// folder fails the test; elsewhere the test is skipped with a note.
pub fn fixtures_root() -> Option<PathBuf> {
    let root = std::env::var_os("FACECAST_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures"));
    if root.is_dir() {
        return Some(root);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "fixture folder {} is missing (set FACECAST_FIXTURES)",
            root.display()
        );
    }
    eprintln!("note: fixtures not found at {}; skipping", root.display());
    None
}

/// One fixture folder; panics when it is missing, since the tests that ask for it cannot run.
pub fn fixture_dir(name: &str) -> PathBuf {
    let root = std::env::var_os("FACECAST_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures"));
    let dir = root.join(name);
    assert!(
        dir.is_dir(),
        "fixture folder {} is missing (set FACECAST_FIXTURES)",
        dir.display()
    );
    dir
}
