//! Runs the shared `faceshifter_aei` fixture through the port on the CPU backend.

mod common;

use burn::tensor::Device;

#[test]
fn faceshifter_matches_the_reference() {
    let dir = common::fixture_dir("faceshifter_aei");
    let cases = common::assert_fixture_passes(&dir, &Device::flex());
    // The end-to-end case (ArcFace fixture → identity → swap) must have run, not been skipped.
    assert!(
        cases.iter().any(|c| c.name.starts_with("chain.output")),
        "no chain case"
    );
}
