//! Random tensors on the CPU backend and their comparison, for the tests of the host kernels
//! against burn's own ops on the same values.
#![allow(dead_code)]

use burn::tensor::{Device, Distribution, Tensor};

pub fn max_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
    assert_eq!(a.dims(), b.dims());
    let (a, b) = (a.into_data(), b.into_data());
    a.iter::<f32>()
        .zip(b.iter::<f32>())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Uniform values in `[lo, hi)` on the flex device.
pub fn rand<const D: usize>(shape: [usize; D], lo: f64, hi: f64) -> Tensor<D> {
    Tensor::random(shape, Distribution::Uniform(lo, hi), &Device::flex())
}

/// Fails unless every named kernel switch is on. Nothing in these test binaries turns one off, so
/// the host paths are the ones compared; a switch found off means nothing host-side was tested.
pub fn assert_kernels_on(switches: &[(&str, bool)]) {
    for (name, on) in switches {
        assert!(on, "the {name} host kernel is off: nothing fused was compared");
    }
}
