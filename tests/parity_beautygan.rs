//! BeautyGAN's generator against the PyTorch fixture, and the checkpoint's case-sensitive keys.

mod common;

use std::path::PathBuf;

use burn::tensor::Device;
use facecast::nets::beautygan::{BeautyGanConfig, Generator};
use facecast::weights::TensorMap;

fn fixture() -> PathBuf {
    common::fixture_dir("beautygan")
}

#[test]
fn every_case_of_the_fixture_passes() {
    let dir = fixture();
    let results = common::assert_fixture_passes(&dir, &Device::flex());
    assert!(results.len() >= 6, "only {} cases ran", results.len());
}

fn weights(dir: &std::path::Path) -> (BeautyGanConfig, TensorMap, PathBuf) {
    let (fx, tensors, path) = common::fixture_weights(dir);
    let config = BeautyGanConfig::from_json(fx.config()).unwrap_or_else(|e| panic!("{e}"));
    (config, tensors, path)
}

#[test]
fn encoder_and_head_keys_differ_only_by_case_and_are_not_interchangeable() {
    let dir = fixture();
    let (config, mut tensors, path) = weights(&dir);
    let key = "Branch_1.0.weight";
    let moved = tensors
        .tensors
        .remove(key)
        .expect("the fixture holds Branch_1.0.weight");
    tensors.tensors.insert("branch_1.0.weight".to_string(), moved);
    let err = Generator::from_state_dict(&config, &tensors, &path, &Device::flex())
        .expect_err("a lower-case key must not load");
    assert!(err.missing.iter().any(|k| k == key), "missing: {:?}", err.missing);
    assert!(!err.mismatched.is_empty() || !err.unexpected.is_empty(), "{err}");
    assert!(err.to_string().contains("weights.pth"), "{err}");
}

#[test]
fn a_data_parallel_prefix_is_stripped_and_a_wrong_repeat_num_is_named() {
    let dir = fixture();
    let (config, tensors, path) = weights(&dir);
    let wrapped = TensorMap {
        tensors: tensors
            .tensors
            .iter()
            .map(|(k, v)| (format!("module.{k}"), v.clone()))
            .collect(),
    };
    let g = Generator::from_state_dict(&config, &wrapped, &path, &Device::flex())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(g.repeat_num(), config.repeat_num);

    let fewer = BeautyGanConfig {
        repeat_num: config.repeat_num - 1,
        ..config
    };
    let err = Generator::from_state_dict(&fewer, &tensors, &path, &Device::flex())
        .expect_err("wrong depth must fail");
    assert!(!err.unexpected.is_empty(), "{err}");
}

#[test]
fn released_layout_has_the_documented_size() {
    // 9,237,376 float32 values in the released checkpoint.
    use burn::module::Module;
    let g = Generator::new(&BeautyGanConfig::default(), &Device::flex());
    assert_eq!(g.num_params(), 9_237_376);
}
