//! Fused inference steps for the flex CPU backend (ArcFace, AEI-Net, MobileNetV2).
//!
//! burn runs an eval-mode batch norm as four broadcast passes over the map (subtract the mean,
//! divide by the deviation, scale, shift), an instance norm as five, and AEI-Net's AAD blend
//! `(1 - M)·(γₐ·h + βₐ) + M·(γᵢ·h + βᵢ)` as nine. Here:
//! - a batch norm right after a convolution is folded into it (`W·s`, bias `b·s + t`, with
//!   `s = γ / √(σ² + ε)` and `t = β − μ·s`): exact up to float rounding, and the map is never
//!   touched by the norm at all;
//! - a batch norm on its own is one multiply-add per value;
//! - an instance norm is one pass for the statistics (in f64) and one for the output;
//! - the AAD blend (and the ReLU after it) is one pass.
//!
//! Each runs only where [`cpu_conv`]'s host kernels apply (flex, not under autodiff, kernels on);
//! anywhere else the same computation goes through burn's ops as before, so wgpu and training
//! are unchanged. The tests compare every kernel with burn's result.

use burn::nn::conv::{Conv2d, ConvTranspose2d};
use burn::nn::{BatchNorm, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use burn::tensor::{DType, Tensor, TensorData};
use rayon::prelude::*;

use super::common::{INSTANCE_NORM_EPS, instance_norm as burn_instance_norm};
use super::cpu_conv::{self, host_kernels_apply};
use super::profile;

/// Planes smaller than this are handed to rayon several at a time.
const MIN_PARALLEL_VALUES: usize = 1 << 14;

/// The per-channel `(scale, shift)` of an eval-mode batch norm: `y = x·scale + shift`.
pub fn bn_scale_shift(bn: &BatchNorm) -> (Tensor<1>, Tensor<1>) {
    let scale = bn.gamma.val() / (bn.running_var.value() + bn.epsilon).sqrt();
    let shift = bn.beta.val() - bn.running_mean.value() * scale.clone();
    (scale, shift)
}

/// Whether the fused host steps may run on `x` (f32 on flex, not under autodiff, kernels on).
pub(crate) fn fusable<const D: usize>(x: &Tensor<D>) -> bool {
    x.dtype() == DType::F32 && host_kernels_apply(&x.device())
}

/// `conv`'s options, or None where burn's private `Same` padding rule applies.
fn conv_options(conv: &Conv2d) -> Option<ConvOptions<2>> {
    let padding = match conv.padding {
        PaddingConfig2d::Valid => [(0, 0), (0, 0)],
        PaddingConfig2d::Explicit(top, left, bottom, right) => [(top, bottom), (left, right)],
        _ => return None,
    };
    Some(ConvOptions::new_with_padding(
        conv.stride,
        padding,
        conv.dilation,
        conv.groups,
    ))
}

/// `bn(conv(x))` with the norm folded into the convolution's weights and bias.
pub fn conv_bn(conv: &Conv2d, bn: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    let options = match conv_options(conv) {
        Some(options) if fusable(&x) => options,
        _ => return bn.forward(cpu_conv::conv2d_module(conv, x)),
    };
    let (scale, shift) = bn_scale_shift(bn);
    let [o, ..] = conv.weight.dims();
    let weight = conv.weight.val() * scale.clone().reshape([o, 1, 1, 1]);
    let bias = match &conv.bias {
        Some(b) => b.val() * scale + shift,
        None => shift,
    };
    cpu_conv::conv2d(x, weight, Some(bias), options)
}

/// `bn(deconv(x))` with the norm folded into the transposed convolution (weight `[in, out, kh,
/// kw]`: the scale follows dimension 1).
pub fn conv_transpose_bn(deconv: &ConvTranspose2d, bn: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    if deconv.groups != 1 || !fusable(&x) {
        return bn.forward(cpu_conv::conv_transpose2d_module(deconv, x));
    }
    let (scale, shift) = bn_scale_shift(bn);
    let [_, o, _, _] = deconv.weight.dims();
    let weight = deconv.weight.val() * scale.clone().reshape([1, o, 1, 1]);
    let bias = match &deconv.bias {
        Some(b) => b.val() * scale + shift,
        None => shift,
    };
    let options = ConvTransposeOptions::new(
        deconv.stride,
        deconv.padding,
        deconv.padding_out,
        deconv.dilation,
        deconv.groups,
    );
    cpu_conv::conv_transpose2d(x, weight, Some(bias), options)
}

/// The values of `t` on the host. A tensor nothing else holds gives its buffer up without a copy.
pub(crate) fn host_values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    let data = t.into_data();
    if data.as_slice::<f32>().is_err() {
        return data.iter::<f32>().collect();
    }
    // An f32 buffer that `as_slice` just read converts without error.
    data.try_into_vec::<f32>().unwrap_or_default()
}

/// An eval-mode batch norm of an (N, C, H, W) map as one multiply-add per value.
pub fn batch_norm(bn: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    let dims = x.dims();
    profile::scope(
        "batch_norm",
        move || profile::shape4(dims),
        || {
            if !fusable(&x) {
                return bn.forward(x);
            }
            let (scale, shift) = bn_scale_shift(bn);
            cpu_conv::on_host_unary(
                x,
                |xs, shape| {
                    let (s, t) = (host_values(scale), host_values(shift));
                    (channel_affine(xs, shape, &s, &t), shape)
                },
                |x| bn.forward(x),
            )
        },
    )
}

/// `x·s[c] + t[c]` per channel of an (N, C, H, W) map.
pub fn channel_affine(x: &[f32], [_, c, h, w]: [usize; 4], s: &[f32], t: &[f32]) -> Vec<f32> {
    let plane = (h * w).max(1);
    let mut out = vec![0.0f32; x.len()];
    out.par_chunks_mut(plane)
        .zip(x.par_chunks(plane))
        .enumerate()
        .with_min_len(MIN_PARALLEL_VALUES.div_ceil(plane))
        .for_each(|(p, (o, xs))| {
            let (sc, sh) = (s[p % c], t[p % c]);
            for (o, &v) in o.iter_mut().zip(xs) {
                *o = v * sc + sh;
            }
        });
    out
}

/// `InstanceNorm2d` without affine (biased variance, ε = 1e-5), like
/// [`super::common::instance_norm`], in one statistics pass and one output pass per plane.
pub fn instance_norm(x: Tensor<4>) -> Tensor<4> {
    let dims = x.dims();
    profile::scope(
        "instance_norm",
        move || profile::shape4(dims),
        || {
            if !fusable(&x) {
                return burn_instance_norm(x);
            }
            cpu_conv::on_host_unary(
                x,
                |xs, shape| (instance_norm_f32(xs, shape), shape),
                burn_instance_norm,
            )
        },
    )
}

/// The instance norm on host values: statistics accumulated in f64, centred before squaring.
pub fn instance_norm_f32(x: &[f32], [_, _, h, w]: [usize; 4]) -> Vec<f32> {
    let plane = (h * w).max(1);
    let mut out = vec![0.0f32; x.len()];
    out.par_chunks_mut(plane)
        .zip(x.par_chunks(plane))
        .with_min_len(MIN_PARALLEL_VALUES.div_ceil(plane))
        .for_each(|(o, xs)| {
            let n = xs.len() as f64;
            let mean = xs.iter().map(|&v| v as f64).sum::<f64>() / n;
            let var = xs.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
            let inv = 1.0 / (var + INSTANCE_NORM_EPS).sqrt();
            let (mean, inv) = (mean as f32, inv as f32);
            for (o, &v) in o.iter_mut().zip(xs) {
                *o = (v - mean) * inv;
            }
        });
    out
}

/// AEI-Net's AAD blend `(1 − m)·(γₐ·h + βₐ) + m·(γᵢ·h + βᵢ)`, then a ReLU when `then_relu`:
/// `h`, `gamma_attr`, `beta_attr` (N, C, H, W), `gamma_id`, `beta_id` (N, C), `mask` (N, 1, H, W).
pub fn aad_blend(
    h: Tensor<4>,
    gamma_attr: Tensor<4>,
    beta_attr: Tensor<4>,
    gamma_id: Tensor<2>,
    beta_id: Tensor<2>,
    mask: Tensor<4>,
    then_relu: bool,
) -> Tensor<4> {
    let dims = h.dims();
    profile::scope(
        "aad_blend",
        move || profile::shape4(dims),
        || {
            let [n, c, _, _] = dims;
            let same = |t: &Tensor<4>| t.dims() == dims && t.dtype() == DType::F32;
            if !(fusable(&h)
                && same(&gamma_attr)
                && same(&beta_attr)
                && gamma_id.dims() == [n, c]
                && beta_id.dims() == [n, c]
                && mask.dims() == [n, 1, dims[2], dims[3]])
            {
                return burn_aad_blend(h, gamma_attr, beta_attr, gamma_id, beta_id, mask, then_relu);
            }
            let device = h.device();
            let (hs, ga, ba) = (host_values(h), host_values(gamma_attr), host_values(beta_attr));
            let (gi, bi, m) = (host_values(gamma_id), host_values(beta_id), host_values(mask));
            let out = aad_blend_f32(&hs, &ga, &ba, &gi, &bi, &m, dims, then_relu);
            Tensor::from_data(TensorData::new(out, dims), &device)
        },
    )
}

/// The blend through burn's ops (other devices, autodiff, kernels off).
fn burn_aad_blend(
    h: Tensor<4>,
    gamma_attr: Tensor<4>,
    beta_attr: Tensor<4>,
    gamma_id: Tensor<2>,
    beta_id: Tensor<2>,
    mask: Tensor<4>,
    then_relu: bool,
) -> Tensor<4> {
    let [n, c, _, _] = h.dims();
    let a = gamma_attr * h.clone() + beta_attr;
    let i = gamma_id.reshape([n, c, 1, 1]) * h + beta_id.reshape([n, c, 1, 1]);
    let out = (mask.clone().neg() + 1.0) * a + mask * i;
    if then_relu { relu(out) } else { out }
}

/// The blend on host values (see [`aad_blend`]).
#[allow(clippy::too_many_arguments)]
pub fn aad_blend_f32(
    h: &[f32],
    gamma_attr: &[f32],
    beta_attr: &[f32],
    gamma_id: &[f32],
    beta_id: &[f32],
    mask: &[f32],
    [n, c, hh, ww]: [usize; 4],
    then_relu: bool,
) -> Vec<f32> {
    let plane = (hh * ww).max(1);
    assert_eq!(h.len(), n * c * hh * ww, "aad_blend: h length");
    assert_eq!(mask.len(), n * plane, "aad_blend: mask length");
    let mut out = vec![0.0f32; h.len()];
    out.par_chunks_mut(plane)
        .enumerate()
        .with_min_len(MIN_PARALLEL_VALUES.div_ceil(plane))
        .for_each(|(p, o)| {
            let img = p / c;
            let range = p * plane..(p + 1) * plane;
            let (gi, bi) = (gamma_id[p], beta_id[p]);
            let m = &mask[img * plane..(img + 1) * plane];
            let values = o
                .iter_mut()
                .zip(&h[range.clone()])
                .zip(&gamma_attr[range.clone()])
                .zip(&beta_attr[range])
                .zip(m);
            for ((((o, &x), &ga), &ba), &mk) in values {
                let a = ga * x + ba;
                let i = gi * x + bi;
                let v = (1.0 - mk) * a + mk * i;
                *o = if then_relu { v.max(0.0) } else { v };
            }
        });
    out
}
