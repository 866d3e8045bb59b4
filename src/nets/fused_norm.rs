//! The affine instance norm with what follows it, in one pass over the map (BeautyGAN).
//!
//! BeautyGAN follows every convolution with `InstanceNorm2d(affine=True)` and a ReLU, or, at the
//! end of a residual block, with the norm and the block's skip add. Through burn's ops that is
//! the five broadcast passes of [`common::instance_norm`], two more for the affine part and one
//! each for the ReLU and the add, every one allocating a new map. Here, where `cpu_conv`'s host
//! kernels apply (flex, not under autodiff, kernels on, f32): one statistics pass per plane in
//! f64 and one output pass, in place in the buffer the convolution just returned. Anywhere else
//! the same computation goes through burn's ops.

use burn::tensor::activation::relu;
use burn::tensor::{DType, Tensor, TensorData};
use rayon::prelude::*;

use super::common::{INSTANCE_NORM_EPS, instance_norm};
use super::cpu_conv::host_kernels_apply;
use super::fused::host_values;
use super::kernel_switch::KernelSwitch;
use super::profile;

/// Planes smaller than this are handed to rayon several at a time.
const MIN_PARALLEL_VALUES: usize = 1 << 14;

/// Whether instance norms take the one-pass kernel.
static SWITCH: KernelSwitch = KernelSwitch::on();

pub fn set_enabled(on: bool) {
    SWITCH.set(on);
}

/// What follows the norm: `y = IN(x)·γ + β`, then `max(y, 0)` when `relu`, then `+ residual`.
pub struct After {
    pub relu: bool,
    pub residual: Option<Tensor<4>>,
}

/// `IN(x)·γ + β` per channel (`weight` γ and `bias` β of length C), then [`After`].
pub fn instance_norm_affine(x: Tensor<4>, weight: Tensor<1>, bias: Tensor<1>, after: After) -> Tensor<4> {
    let dims = x.dims();
    let kind = match (after.relu, after.residual.is_some()) {
        (true, _) => "instance_norm_relu",
        (false, true) => "instance_norm_add",
        (false, false) => "instance_norm_affine",
    };
    profile::scope(
        kind,
        move || profile::shape4(dims),
        || {
            let host = SWITCH.enabled()
                && x.dtype() == DType::F32
                && host_kernels_apply(&x.device())
                && weight.dims() == [dims[1]]
                && bias.dims() == [dims[1]]
                && after
                    .residual
                    .as_ref()
                    .is_none_or(|r| r.dims() == dims && r.dtype() == DType::F32);
            if !host {
                return burn_instance_norm_affine(x, weight, bias, after);
            }
            let device = x.device();
            let mut values = host_values(x);
            let (gamma, beta) = (host_values(weight), host_values(bias));
            let residual = after.residual.map(host_values);
            instance_norm_affine_f32(&mut values, dims, &gamma, &beta, after.relu, residual.as_deref());
            Tensor::from_data(TensorData::new(values, dims), &device)
        },
    )
}

/// The same through burn's ops (other devices, autodiff, kernels off).
fn burn_instance_norm_affine(x: Tensor<4>, weight: Tensor<1>, bias: Tensor<1>, after: After) -> Tensor<4> {
    let c = x.dims()[1];
    let y = instance_norm(x) * weight.reshape([1, c, 1, 1]) + bias.reshape([1, c, 1, 1]);
    let y = if after.relu { relu(y) } else { y };
    match after.residual {
        Some(r) => r + y,
        None => y,
    }
}

/// [`instance_norm_affine`] on host values, in place: `x` (N, C, H, W), `gamma` and `beta` (C),
/// `residual` like `x`. Statistics in f64 (biased variance, ε = 1e-5), centred before squaring.
pub fn instance_norm_affine_f32(
    x: &mut [f32],
    [n, c, h, w]: [usize; 4],
    gamma: &[f32],
    beta: &[f32],
    relu: bool,
    residual: Option<&[f32]>,
) {
    let plane = (h * w).max(1);
    assert_eq!(x.len(), n * c * h * w, "instance_norm_affine: input length");
    assert!(
        gamma.len() == c && beta.len() == c,
        "instance_norm_affine: γ and β need {c} values"
    );
    if let Some(r) = residual {
        assert_eq!(r.len(), x.len(), "instance_norm_affine: residual length");
    }
    if x.is_empty() {
        return;
    }
    x.par_chunks_mut(plane)
        .enumerate()
        .with_min_len(MIN_PARALLEL_VALUES.div_ceil(plane))
        .for_each(|(p, xs)| {
            let (mean, inv) = plane_stats(xs);
            let (scale, shift) = (inv * gamma[p % c], beta[p % c]);
            let res = residual.map(|r| &r[p * plane..(p + 1) * plane]);
            match (relu, res) {
                (false, None) => xs.iter_mut().for_each(|v| *v = (*v - mean) * scale + shift),
                (true, None) => xs
                    .iter_mut()
                    .for_each(|v| *v = ((*v - mean) * scale + shift).max(0.0)),
                (false, Some(r)) => xs
                    .iter_mut()
                    .zip(r)
                    .for_each(|(v, r)| *v = r + ((*v - mean) * scale + shift)),
                (true, Some(r)) => xs
                    .iter_mut()
                    .zip(r)
                    .for_each(|(v, r)| *v = r + ((*v - mean) * scale + shift).max(0.0)),
            }
        });
}

/// The mean and `1/√(var + ε)` of one plane, summed in f64 over eight lanes (so the loops
/// vectorise; the order differs from a serial sum only by f64 rounding).
fn plane_stats(xs: &[f32]) -> (f32, f32) {
    const L: usize = 8;
    let n = xs.len() as f64;
    let chunks = xs.chunks_exact(L);
    let tail = chunks.remainder();
    let mut acc = [0.0f64; L];
    for ch in chunks.clone() {
        for k in 0..L {
            acc[k] += ch[k] as f64;
        }
    }
    let mean = (acc.iter().sum::<f64>() + tail.iter().map(|&v| v as f64).sum::<f64>()) / n;
    let mut acc = [0.0f64; L];
    for ch in chunks {
        for k in 0..L {
            let d = ch[k] as f64 - mean;
            acc[k] += d * d;
        }
    }
    let var = (acc.iter().sum::<f64>() + tail.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>()) / n;
    (mean as f32, (1.0 / (var + INSTANCE_NORM_EPS).sqrt()) as f32)
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Distribution};

    use super::*;

    fn max_diff(a: Tensor<4>, b: Tensor<4>) -> f32 {
        assert_eq!(a.dims(), b.dims());
        (a - b)
            .abs()
            .max()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap_or_default()[0]
    }

    /// Every combination of ReLU and residual, on planes below and above the parallel threshold,
    /// a plane whose length is not a multiple of 8, and a constant plane (variance 0).
    #[test]
    fn matches_burns_ops_with_relu_and_residual() {
        let device = Device::flex();
        for dims in [[2, 3, 5, 7], [1, 4, 130, 129], [1, 2, 1, 1]] {
            let x = Tensor::<4>::random(dims, Distribution::Normal(2.0, 3.0), &device);
            let x = Tensor::cat(
                vec![x, Tensor::full([dims[0], 1, dims[2], dims[3]], 1.5, &device)],
                1,
            );
            let c = dims[1] + 1;
            let gamma = Tensor::<1>::random([c], Distribution::Uniform(0.5, 1.5), &device);
            let beta = Tensor::<1>::random([c], Distribution::Normal(0.0, 0.5), &device);
            let residual = Tensor::<4>::random(x.dims(), Distribution::Normal(0.0, 1.0), &device);
            for relu in [false, true] {
                for with_residual in [false, true] {
                    let after = || After {
                        relu,
                        residual: with_residual.then(|| residual.clone()),
                    };
                    let want = burn_instance_norm_affine(x.clone(), gamma.clone(), beta.clone(), after());
                    let got = instance_norm_affine(x.clone(), gamma.clone(), beta.clone(), after());
                    let diff = max_diff(got, want);
                    assert!(
                        diff < 1e-5,
                        "{dims:?} relu {relu} residual {with_residual}: {diff}"
                    );
                }
            }
        }
    }

    #[test]
    fn switched_off_it_is_burns_ops() {
        let device = Device::flex();
        let x = Tensor::<4>::random([1, 2, 6, 6], Distribution::Normal(0.0, 1.0), &device);
        let (g, b) = (Tensor::<1>::ones([2], &device), Tensor::<1>::zeros([2], &device));
        let after = || After {
            relu: true,
            residual: None,
        };
        let want = burn_instance_norm_affine(x.clone(), g.clone(), b.clone(), after());
        set_enabled(false);
        let got = instance_norm_affine(x, g, b, after());
        set_enabled(true);
        assert_eq!(max_diff(got, want), 0.0);
    }
}
