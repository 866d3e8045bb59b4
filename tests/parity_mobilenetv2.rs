//! MobileNetV2 against the torchvision fixture, its pre-processing, and checkpoint variants.

mod common;

use std::path::PathBuf;

use burn::tensor::Device;
use facecast::nets::mobilenetv2::{MobileNetV2, MobileNetV2Config};
use facecast::weights::TensorMap;

fn fixture() -> PathBuf {
    common::fixture_dir("mobilenetv2")
}

fn weights(dir: &std::path::Path) -> (MobileNetV2Config, TensorMap, PathBuf) {
    let (fx, tensors, path) = common::fixture_weights(dir);
    let config = MobileNetV2Config::from_json(fx.config()).unwrap_or_else(|e| panic!("{e}"));
    (config, tensors, path)
}

#[test]
fn every_case_of_the_fixture_passes() {
    let dir = fixture();
    let results = common::assert_fixture_passes(&dir, &Device::flex());
    assert!(
        results.iter().any(|r| r.name == "pre.output"),
        "the pre-processing case did not run"
    );
    assert!(results.len() >= 8, "only {} cases ran", results.len());
}

#[test]
fn counters_may_be_absent_and_a_data_parallel_prefix_is_stripped() {
    let dir = fixture();
    let (config, tensors, path) = weights(&dir);
    assert!(
        tensors.tensors.keys().any(|k| k.ends_with("num_batches_tracked")),
        "the fixture has the counters"
    );
    let bare = TensorMap {
        tensors: tensors
            .tensors
            .iter()
            .filter(|(k, _)| !k.ends_with("num_batches_tracked"))
            .map(|(k, v)| (format!("module.{k}"), v.clone()))
            .collect(),
    };
    let net = MobileNetV2::from_state_dict(&config, &bare, &path, &Device::flex())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(net.num_classes(), config.num_classes);
}

#[test]
fn a_head_of_the_wrong_size_is_named() {
    let dir = fixture();
    let (config, tensors, path) = weights(&dir);
    let imagenet_head = MobileNetV2Config {
        num_classes: 1000,
        ..config
    };
    let err = MobileNetV2::from_state_dict(&imagenet_head, &tensors, &path, &Device::flex())
        .expect_err("a 2-class file must not load into a 1000-class network");
    let text = err.to_string();
    assert!(
        text.contains("classifier.1.weight") && text.contains("classifier.1.bias"),
        "{text}"
    );
    assert!(err.missing.is_empty() && err.unexpected.is_empty(), "{text}");
}
