//! GPEN's FullGenerator against yangxy/GPEN (fixture `gpen`). The fixture's `pipeline.align.*`
//! tensors belong to the restore pipeline's alignment and are tested there.

mod common;

use std::path::Path;

use burn::tensor::{Device, Tensor};
use facecast::nets::gpen::{GpenConfig, load_gpen};
use facecast::nets::stylegan2::StyleGanError;
use facecast::parity::Fixture;

#[test]
fn fixture_passes_every_network_case() {
    let dir = common::fixture_dir("gpen");
    let cases = common::assert_fixture_passes(&dir, &Device::flex());
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
    let root = common::fixtures_root();
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
    let root = common::fixtures_root();
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
    use facecast::nets::gpen::{FullGenerator, gpen_tensors};
    let root = common::fixtures_root();
    let state = common::shapes_only(common::official_keys(&root.join("gpen/official_keys.txt")));
    let want = common::parameter_keys(gpen_tensors(&state));
    let net = FullGenerator::new(&GpenConfig::bfr_512(), &Device::flex()).expect("official config");
    assert_eq!(common::module_keys(&net), want);
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

/// The released GPEN-BFR-512 checkpoint's shapes (`models/keys/gpen-bfr-512.txt`), no values.
fn bfr_512_shapes() -> facecast::weights::TensorMap {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/models/keys/gpen-bfr-512.txt"
    ))
    .expect("models/keys/gpen-bfr-512.txt");
    common::shapes_only(common::key_rows(&text))
}

#[test]
fn the_config_of_the_fixture_weights_is_read_from_their_shapes() {
    let (fx, state, file) = common::fixture_weights(&common::fixtures_root().join("gpen"));
    let inferred = GpenConfig::from_state_dict(&state, &file).expect("inferred");
    assert_eq!(inferred, GpenConfig::from_json(fx.config()).expect("meta config"));
    assert_eq!(inferred.size(), 64);
    // The shared loader builds the network from those shapes and reproduces the reference output.
    let device = Device::flex();
    let net = facecast::weights::models::load_gpen(&file, &device).expect("loader");
    let out = net
        .forward(fx.tensor::<4>("input", &device).expect("input"))
        .expect("forward");
    let case = fx.compare("output", out);
    assert!(case.passed, "output differs: {:e}", case.max_abs_err);
}

#[test]
fn the_released_bfr_512_key_list_gives_its_config() {
    let state = bfr_512_shapes();
    let config = GpenConfig::from_state_dict(&state, Path::new("GPEN-BFR-512.pth")).expect("inferred");
    assert_eq!(config, GpenConfig::bfr_512());
    assert_eq!(config.decoder.n_latent(), 16);
}

/// GPEN-BFR-256's shapes as the model note gives them (size 256, style 512, channel multiplier 1,
/// narrow 0.5: widths 256 up to 32 px, then 128, 64, 32), under the released key names.
fn bfr_256_shapes(names: &[String]) -> facecast::weights::TensorMap {
    let c = |r: usize| match r {
        4..=32 => 256,
        64 => 128,
        128 => 64,
        256 => 32,
        _ => panic!("no resolution {r} in GPEN-256"),
    };
    let sd = 512;
    let mut state = facecast::weights::TensorMap::default();
    for key in names {
        let parts: Vec<&str> = key.split('.').collect();
        let shape: Vec<usize> = match parts.as_slice() {
            ["generator", "style", _, "weight"] => vec![sd, sd],
            ["generator", "style", _, "bias"] => vec![sd],
            ["generator", "input", "input"] => vec![1, c(4), 4, 4],
            ["generator", conv, rest @ ..] if *conv == "conv1" || *conv == "convs" => {
                let (input, out) = if *conv == "conv1" {
                    (c(4), c(4))
                } else {
                    let i: usize = rest[0].parse().expect("index");
                    let r = 8 << (i / 2);
                    // Even convs upsample from r/2; odd ones stay at r.
                    let from = if i.is_multiple_of(2) { r / 2 } else { r };
                    (2 * c(from), c(r))
                };
                let field = if *conv == "conv1" { rest } else { &rest[1..] };
                match field {
                    ["conv", "weight"] => vec![1, out, input, 3, 3],
                    ["conv", "blur", "kernel"] => vec![4, 4],
                    ["conv", "modulation", "weight"] => vec![input, sd],
                    ["conv", "modulation", "bias"] => vec![input],
                    ["noise", "weight"] => vec![1],
                    ["activate", "bias"] => vec![2 * out],
                    other => panic!("unexpected StyledConv key {key} ({other:?})"),
                }
            }
            ["generator", rgb, rest @ ..] if *rgb == "to_rgb1" || *rgb == "to_rgbs" => {
                let input = if *rgb == "to_rgb1" {
                    2 * c(4)
                } else {
                    let k: usize = rest[0].parse().expect("index");
                    2 * c(8 << k)
                };
                let field = if *rgb == "to_rgb1" { rest } else { &rest[1..] };
                match field {
                    ["bias"] => vec![1, 3, 1, 1],
                    ["upsample", "kernel"] => vec![4, 4],
                    ["conv", "weight"] => vec![1, 3, input, 1, 1],
                    ["conv", "modulation", "weight"] => vec![input, sd],
                    ["conv", "modulation", "bias"] => vec![input],
                    other => panic!("unexpected ToRGB key {key} ({other:?})"),
                }
            }
            ["final_linear", "0", "weight"] => vec![sd, c(4) * 16],
            ["final_linear", "0", "bias"] => vec![sd],
            [ecd, "0", layer, field] if ecd.starts_with("ecd") => {
                let n: usize = ecd[3..].parse().expect("stage");
                let (out, input) = (c(256 >> n), if n == 0 { 3 } else { c(256 >> (n - 1)) });
                match (n, *layer, *field) {
                    (0, "0", "weight") => vec![out, 3, 1, 1],
                    (0, "1", "bias") => vec![out],
                    (_, "0", "kernel") => vec![4, 4],
                    (_, "1", "weight") => vec![out, input, 3, 3],
                    (_, "2", "bias") => vec![out],
                    _ => panic!("unexpected encoder key {key}"),
                }
            }
            _ => panic!("unexpected key {key}"),
        };
        state
            .tensors
            .insert(key.clone(), facecast::weights::RawTensor::f32(shape, Vec::new()));
    }
    state
}

#[test]
fn bfr_256_shapes_give_its_config_and_parameter_count() {
    use burn::module::Module;
    use facecast::nets::gpen::FullGenerator;
    // GPEN-256's keys are GPEN-512's without the 512-px stages.
    let names: Vec<String> = bfr_512_shapes()
        .tensors
        .into_keys()
        .filter(|k| {
            let index = |prefix: &str| {
                k.strip_prefix(prefix)
                    .and_then(|r| r.split('.').next()?.parse::<usize>().ok())
            };
            !(k.starts_with("ecd7.")
                || index("generator.convs.").is_some_and(|i| i >= 12)
                || index("generator.to_rgbs.").is_some_and(|i| i >= 6))
        })
        .collect();
    assert_eq!(names.len(), 144, "the manifest's key count of GPEN-BFR-256.pth");
    let state = bfr_256_shapes(&names);
    let config = GpenConfig::from_state_dict(&state, Path::new("GPEN-BFR-256.pth")).expect("inferred");
    assert_eq!(config, GpenConfig::bfr_256());
    let net = FullGenerator::new(&config, &Device::flex()).expect("builds");
    assert_eq!(
        net.num_params(),
        18_879_010,
        "meta.json's GPEN-BFR-256 num_parameters"
    );
}

#[test]
fn files_that_are_not_gpen_are_refused_by_name() {
    use facecast::weights::{RawTensor, TensorMap};
    let file = Path::new("other.pth");
    let mut state = TensorMap::default();
    state
        .tensors
        .insert("conv.weight".into(), RawTensor::f32(vec![8, 3, 3, 3], Vec::new()));
    let err = GpenConfig::from_state_dict(&state, file)
        .expect_err("not GPEN")
        .to_string();
    assert!(err.contains("other.pth") && err.contains("not a GPEN"), "{err}");
    // A gap in the encoder stages is named too.
    let mut state = bfr_512_shapes();
    state.tensors.retain(|k, _| !k.starts_with("ecd3."));
    let err = GpenConfig::from_state_dict(&state, file)
        .expect_err("gap")
        .to_string();
    assert!(err.contains("encoder stages"), "{err}");
}
