//! Runs the shared `arcface_ir_se50` fixture through the port on the CPU backend.

mod common;

use burn::tensor::Device;

#[test]
fn arcface_matches_the_reference() {
    let dir = common::fixture_dir("arcface_ir_se50");
    common::assert_fixture_passes(&dir, &Device::flex());
}
