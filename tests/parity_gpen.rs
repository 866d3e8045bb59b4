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

#[test]
fn the_released_bfr_512_keys_fit_the_full_generator() {
    use burn::module::Module;
    use burn::store::ModuleSnapshot;
    use facecast::nets::gpen::{FullGenerator, gpen_tensors};
    use facecast::weights::{RawTensor, TensorMap};
    let Some(root) = common::fixtures_root() else {
        return;
    };
    let text = std::fs::read_to_string(root.join("gpen/official_keys.txt")).expect("official_keys.txt");
    let mut state = TensorMap::default();
    for line in text.lines() {
        let mut cols = line.split('\t');
        let (Some(key), Some(shape)) = (cols.next(), cols.next()) else {
            continue;
        };
        let dims: Vec<usize> = shape
            .trim_matches(|c| c == '[' || c == ']')
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect();
        state
            .tensors
            .insert(key.to_string(), RawTensor::f32(dims, Vec::new()));
    }
    let mut want: Vec<(String, Vec<usize>)> = gpen_tensors(&state)
        .tensors
        .into_iter()
        .filter(|(k, _)| !k.ends_with(".kernel"))
        .map(|(k, t)| (k, t.shape))
        .collect();
    want.sort();
    let net = FullGenerator::new(&GpenConfig::bfr_512(), &Device::flex()).expect("official config");
    let mut got: Vec<(String, Vec<usize>)> = net
        .collect(None, None, false)
        .into_iter()
        .map(|t| (t.name.clone(), t.shape.to_vec()))
        .collect();
    got.sort();
    assert_eq!(got, want);
    assert_eq!(
        net.num_params(),
        71_005_223,
        "meta.json official_config.num_parameters"
    );
}

#[test]
fn bfr_256_has_the_released_parameter_count() {
    use burn::module::Module;
    use facecast::nets::gpen::FullGenerator;
    let net = FullGenerator::new(&GpenConfig::bfr_256(), &Device::flex()).expect("official config");
    assert_eq!(net.num_params(), 18_879_010);
}
