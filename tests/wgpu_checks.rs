//! A few cross-checks on the wgpu backend, which the app prefers (Mesa's software Vulkan where there
//! is no GPU). The maths is tested on the CPU backend; these catch what only the GPU path gets wrong.

mod common;

use burn::tensor::{Device, Tensor, TensorData};

/// Deterministic values in [-1, 1) with a per-channel offset, so mean and variance both matter.
fn map(channels: usize, side: usize) -> TensorData {
    let mut state = 0x2545_f491_u32;
    let values: Vec<f32> = (0..channels * side * side)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let channel = (i / (side * side)) as f32;
            (state as f32 / u32::MAX as f32) * 2.0 - 1.0 + 0.5 * channel
        })
        .collect();
    TensorData::new(values, [1, channels, side, side])
}

fn host(x: Tensor<4>) -> Vec<f32> {
    x.into_data().try_to_vec::<f32>().expect("f32 values")
}

#[test]
fn instance_norm_of_large_maps_matches_the_cpu_on_wgpu() {
    let gpu = common::wgpu_device();
    let cpu = Device::flex();
    // 512×512: one reduction over all H·W values would span 262,144 elements.
    for side in [64, 256, 512] {
        let data = map(2, side);
        let on_cpu = host(facecast::nets::common::instance_norm(Tensor::from_data(
            data.clone(),
            &cpu,
        )));
        let on_gpu = host(facecast::nets::common::instance_norm(Tensor::from_data(
            data, &gpu,
        )));
        let worst = facecast::parity::max_abs_diff(&on_cpu, &on_gpu);
        assert!(
            worst < 1e-4,
            "{side}×{side}: wgpu differs from the CPU by {worst}"
        );
    }
}

/// `facecast devices --json` as a user runs it, with the automatic choice: every adapter is listed
/// with its type, API and driver, and a software adapter never runs the networks unasked.
#[test]
fn devices_lists_the_adapters_and_auto_never_picks_a_software_one() {
    let data = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_facecast"))
        .env("FACECAST_DATA_DIR", data.path())
        .env_remove("FACECAST_BACKEND")
        .args(["devices", "--json"])
        .output()
        .expect("run facecast");
    assert!(out.status.success(), "{}", common::text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let adapters = report["adapters"].as_array().expect("adapters");
    for adapter in adapters {
        for key in ["name", "device_type", "api", "driver"] {
            assert!(adapter[key].is_string(), "{key} missing in {adapter}");
        }
    }
    let kind = |a: &serde_json::Value| a["device_type"].as_str().unwrap_or_default().to_string();
    // Setup installs Mesa's software Vulkan on every machine, GPU or not.
    assert!(
        adapters.iter().any(|a| kind(a) == "software"),
        "no software adapter listed: {report}"
    );
    let hardware: Vec<_> = adapters
        .iter()
        .filter(|a| !["software", "other"].contains(&kind(a).as_str()))
        .collect();
    let chosen = &report["chosen"];
    let reason = chosen["reason"].as_str().expect("a reason");
    if hardware.is_empty() {
        assert_eq!(chosen["backend"], "cpu", "{report}");
        assert!(reason.starts_with("no GPU found"), "{reason}");
    } else {
        assert_eq!(chosen["backend"], "wgpu", "{report}");
        assert!(
            hardware.iter().any(|a| a["name"] == chosen["adapter"]),
            "chose {} over the GPUs {hardware:?}",
            chosen["adapter"]
        );
    }
}
