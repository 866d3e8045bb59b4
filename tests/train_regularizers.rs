//! The second-order regularisers of StyleGAN2 training (R1 and path length) against one iteration
//! of rosinality's `train.py`: fixture `stylegan2_train`, phase-local replay, compared under
//! `meta.json`'s tolerance groups (the first group whose globs match a key).

mod common;

use burn::tensor::Device;
use facecast::parity::Fixture;
use facecast::parity::stylegan2_regularizers::{path_step, r1_step};
use facecast::parity::stylegan2_train::fnmatch;
use facecast::weights::TensorMap;

fn fixture() -> Fixture {
    Fixture::open(&common::fixture_dir("stylegan2_train")).expect("fixture opens")
}

/// `(group name, abs, abs_of_tensor_max, rel)` of the first group matching `key`.
fn group(fx: &Fixture, key: &str) -> (String, f64, f64, f64) {
    let groups = fx.meta["tolerance"]["groups"]
        .as_array()
        .expect("tolerance.groups");
    let g = groups
        .iter()
        .find(|g| {
            g["match"]
                .as_array()
                .expect("match globs")
                .iter()
                .any(|p| fnmatch(p.as_str().expect("a glob"), key))
        })
        .unwrap_or_else(|| panic!("no group for {key}"));
    let num = |f: &str| g[f].as_f64().unwrap_or(0.0);
    let name = g["name"].as_str().unwrap_or("?").to_string();
    (name, num("abs"), num("abs_of_tensor_max"), num("rel"))
}

/// Every key of the phase in the fixture is computed and within its group's tolerance; prints
/// the worst error per group.
fn assert_phase_passes(fx: &Fixture, phase: &str, outputs: &TensorMap) {
    let keys = fx.names_with_prefix(&format!("{phase}."));
    assert!(keys.len() > 20, "{phase}: only {} reference keys", keys.len());
    let mut worst: std::collections::BTreeMap<String, (f64, String)> = Default::default();
    let mut failures = Vec::new();
    for key in &keys {
        let got = outputs
            .get(key)
            .unwrap_or_else(|| panic!("{key} is not computed"))
            .to_f32();
        let reference = fx.raw(key).expect("reference").to_f32();
        assert_eq!(got.len(), reference.len(), "{key}: element count");
        let (name, abs, of_max, rel) = group(fx, key);
        let peak = reference.iter().fold(0.0f64, |m, &v| m.max((v as f64).abs()));
        let mut err_max = 0.0f64;
        for (&g, &r) in got.iter().zip(&reference) {
            let err = (g as f64 - r as f64).abs();
            let allowed = abs + of_max * peak + rel * (r as f64).abs();
            if err.is_nan() || err > allowed {
                failures.push(format!("{key}: {g} vs {r} (allowed {allowed:e})"));
            }
            err_max = err_max.max(err);
        }
        let entry = worst.entry(name).or_insert((0.0, String::new()));
        if err_max >= entry.0 {
            *entry = (err_max, key.clone());
        }
    }
    for (name, (err, key)) in &worst {
        eprintln!("{phase} group {name}: worst |err| {err:.3e} at {key}");
    }
    assert!(
        failures.is_empty(),
        "{} elements out of tolerance: {:?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );
}

#[test]
fn path_length_step_matches_the_official_iteration() {
    let fx = fixture();
    let outputs = path_step(&fx, &Device::flex()).expect("path step runs");
    assert_phase_passes(&fx, "path_step", &outputs);
    // Trap 2: the ToRGB biases are outside the penalty's graph and get an explicit zero.
    for key in ["path_step.grad.to_rgb1.bias", "path_step.grad.to_rgbs.2.bias"] {
        let grad = outputs.get(key).expect("present").to_f32();
        assert!(grad.iter().all(|&v| v == 0.0), "{key}: {grad:?}");
    }
}

#[test]
fn r1_step_matches_the_official_iteration() {
    let fx = fixture();
    let outputs = r1_step(&fx, &Device::flex()).expect("R1 step runs");
    assert_phase_passes(&fx, "r1_step", &outputs);
    // Trap 1: exactly zero after the minibatch stddev (leaky ReLU has no second derivative) and
    // for the logit's bias (outside R1's graph); non-zero for the biases before it.
    for key in ["final_conv.1.bias", "final_linear.0.bias", "final_linear.1.bias"] {
        let grad = outputs
            .get(&format!("r1_step.grad.{key}"))
            .expect("present")
            .to_f32();
        assert!(grad.iter().all(|&v| v == 0.0), "{key}: {grad:?}");
    }
    let before = outputs
        .get("r1_step.grad.convs.3.conv2.2.bias")
        .expect("present")
        .to_f32();
    assert!(
        before.iter().any(|&v| v != 0.0),
        "the stddev layer must reach the biases before it"
    );
}

/// Both phases on wgpu: the same maths through another backend's kernels.
#[test]
#[ignore = "needs a wgpu adapter; slow on software Vulkan"]
fn both_phases_match_on_wgpu() {
    let fx = fixture();
    let device = common::wgpu_device();
    let outputs = r1_step(&fx, &device).expect("R1 step runs");
    assert_phase_passes(&fx, "r1_step", &outputs);
    let outputs = path_step(&fx, &device).expect("path step runs");
    assert_phase_passes(&fx, "path_step", &outputs);
}
