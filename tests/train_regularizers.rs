//! The second-order regularisers of StyleGAN2 training against one iteration of rosinality's
//! `train.py` (fixture `stylegan2_train`, phase-local replay, `meta.json`'s tolerance groups).

mod common;

use burn::tensor::Device;
use facecast::parity::Fixture;
use facecast::parity::stylegan2_regularizers::{compare_grouped, path_step};

fn fixture() -> Fixture {
    Fixture::open(&common::fixture_dir("stylegan2_train")).expect("fixture opens")
}

/// Reports each case and the worst error per tolerance group, then asserts all passed.
fn assert_all_pass(cases: &[facecast::parity::CaseResult]) {
    let mut worst: std::collections::BTreeMap<String, (f64, String)> = Default::default();
    for case in cases {
        let group = case.note.clone().unwrap_or_default();
        let group = group.split(';').next().unwrap_or_default().to_string();
        let entry = worst.entry(group).or_insert((0.0, String::new()));
        if case.max_abs_err > entry.0 || case.max_abs_err.is_nan() {
            *entry = (case.max_abs_err, case.name.clone());
        }
    }
    for (group, (err, key)) in &worst {
        eprintln!("{group}: worst max_abs_err {err:.3e} at {key}");
    }
    let failed: Vec<_> = cases.iter().filter(|c| !c.passed).collect();
    for case in &failed {
        eprintln!(
            "FAILED {} (max abs err {:e}): {:?}",
            case.name, case.max_abs_err, case.note
        );
    }
    assert!(
        failed.is_empty(),
        "{} of {} keys failed",
        failed.len(),
        cases.len()
    );
}

#[test]
fn path_length_step_matches_the_official_iteration() {
    let fx = fixture();
    let outputs = path_step(&fx, &Device::flex()).expect("path step runs");
    // Every key the phase writes in the fixture is produced (no parameter left without a gradient).
    for key in fx.names_with_prefix("path_step.") {
        assert!(outputs.get(&key).is_some(), "{key} is not computed");
    }
    let cases = compare_grouped(&fx, &outputs).expect("tolerance groups");
    assert_all_pass(&cases);
    // Trap 2: the ToRGB biases are outside the penalty's graph and get an explicit zero.
    for key in ["path_step.grad.to_rgb1.bias", "path_step.grad.to_rgbs.0.bias"] {
        let grad = outputs.get(key).expect("present").to_f32();
        assert!(grad.iter().all(|&v| v == 0.0), "{key}: {grad:?}");
    }
}
