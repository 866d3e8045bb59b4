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
    let Some(gpu) = common::wgpu_device() else {
        return;
    };
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
