//! GPEN's FullGenerator against yangxy/GPEN (fixture `gpen`). The fixture's `pipeline.align.*`
//! tensors belong to the restore pipeline's alignment and are tested there.

mod common;

use burn::tensor::{Device, Tensor};
use facecast::nets::gpen::{GpenConfig, load_gpen};
use facecast::nets::stylegan2::StyleGanError;
use facecast::parity::{Fixture, run_fixture};

#[test]
fn fixture_passes_every_network_case() {
    let Some(root) = common::fixtures_root() else {
        return;
    };
    let dir = root.join("gpen");
    let cases = run_fixture(&dir, &Device::flex()).expect("fixture runs");
    let failed: Vec<String> = cases
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{} ({:e}) {:?}", c.name, c.max_abs_err, c.note))
        .collect();
    assert!(failed.is_empty(), "failed cases: {failed:#?}");
    let fx = Fixture::open(&dir).expect("fixture opens");
    for name in fx.io.tensors.keys() {
        if name == "input" || name.starts_with("pipeline.") {
            continue;
        }
        assert!(
            cases.iter().any(|c| &c.name == name),
            "io tensor {name} is not compared"
        );
    }
}

#[test]
fn a_crop_of_the_wrong_size_is_an_error() {
    let Some(root) = common::fixtures_root() else {
        return;
    };
    let dir = root.join("gpen");
    let config = GpenConfig::from_json(Fixture::open(&dir).expect("fixture").config()).expect("config");
    let device = Device::flex();
    let net = load_gpen(&dir.join("weights.pth"), &config, &device).expect("weights load");
    let half = config.size() / 2;
    let err = net
        .forward(Tensor::zeros([1, 3, half, half], &device))
        .expect_err("wrong size");
    assert!(matches!(err, StyleGanError::Input(_)), "{err}");
}

#[test]
fn the_official_widths_do_not_fit_the_reduced_weights() {
    let Some(root) = common::fixtures_root() else {
        return;
    };
    let file = root.join("gpen/weights.pth");
    let err =
        load_gpen(&file, &GpenConfig::new(64, 512, 8, 2, 1.0), &Device::flex()).expect_err("shape mismatch");
    let text = err.to_string();
    assert!(
        text.contains("gpen/weights.pth") && text.contains("wrong shape"),
        "{text}"
    );
}
