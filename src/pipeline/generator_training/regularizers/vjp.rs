//! Input gradients (vector-Jacobian products) of the generator's layers, written as ordinary
//! differentiable burn operations.
//!
//! burn 0.22 has no `create_graph`: the gradients `backward()` returns live on the inner backend,
//! outside any graph, and an autodiff device cannot wrap another one. The regularisers need the
//! gradient of a gradient, so the first gradient is spelled out here layer by layer with the
//! same tensors the forward pass recorded; first-order autodiff over these expressions then gives
//! the exact second-order parameter gradients. Every function is checked against burn's own
//! first-order gradient in the tests below.

use std::f64::consts::SQRT_2;

use burn::tensor::Tensor;
use burn::tensor::module::{conv_transpose2d, conv2d};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};

use crate::nets::stylegan2::blocks::ModulatedConv2d;
use crate::nets::stylegan2::upfirdn::{Pad, scaled, upconv_blur_pad, upfirdn2d, upsample_pad};

/// The adjoint of `upfirdn2d(x, taps, 1 or up, 1, pad)` restricted to its filtering part: a
/// correlation with the flipped filter and the complementary padding, then, for an upsampling
/// forward pass, every `up`-th sample (the adjoint of zero insertion).
pub fn upfirdn2d_adjoint(g: Tensor<4>, taps: &[f32], up: usize, pad: Pad) -> Tensor<4> {
    let k = taps.len() as isize;
    let reversed: Vec<f32> = taps.iter().rev().copied().collect();
    upfirdn2d(g, &reversed, 1, up, Pad(k - 1 - pad.0, k - 1 - pad.1))
}

/// The ×4-gain blur after an upsampling transposed conv of side `k`.
pub fn upconv_blur(y: Tensor<4>, taps: &[f32], k: usize) -> Tensor<4> {
    upfirdn2d(y, &scaled(taps, 2.0), 1, 1, upconv_blur_pad(taps.len(), k, 2))
}

pub fn upconv_blur_adjoint(g: Tensor<4>, taps: &[f32], k: usize) -> Tensor<4> {
    upfirdn2d_adjoint(g, &scaled(taps, 2.0), 1, upconv_blur_pad(taps.len(), k, 2))
}

/// ToRGB's skip upsampling (×2, pad (2, 1)).
pub fn skip_upsample(skip: Tensor<4>, taps: &[f32]) -> Tensor<4> {
    upfirdn2d(skip, &scaled(taps, 2.0), 2, 1, upsample_pad(taps.len(), 2))
}

pub fn skip_upsample_adjoint(g: Tensor<4>, taps: &[f32]) -> Tensor<4> {
    upfirdn2d_adjoint(g, &scaled(taps, 2.0), 2, upsample_pad(taps.len(), 2))
}

/// `√2·leaky_relu(z, 0.2)`'s derivative as a constant mask: its second derivative is zero (almost
/// everywhere), so the mask takes no part in the outer differentiation.
pub fn leaky_relu_mask<const D: usize>(z: &Tensor<D>) -> Tensor<D> {
    z.clone()
        .detach()
        .greater_elem(0.0)
        .float()
        .mul_scalar(SQRT_2 * 0.8)
        .add_scalar(SQRT_2 * 0.2)
}

/// What a modulated convolution's forward pass keeps for its input gradient.
#[derive(Debug, Clone)]
pub struct ModTape {
    /// The layer input `[B, in, H, W]`.
    pub x: Tensor<4>,
    /// The style `[B, in]`.
    pub s: Tensor<2>,
    /// The convolution output before demodulation.
    pub y: Tensor<4>,
    /// `Σ_{kh,kw} W²` `[out, in]` and the demodulation `[B, out]`, when the layer demodulates.
    pub demod: Option<(Tensor<2>, Tensor<2>)>,
}

/// The weight with its equalised-lr scale, `[out, in, k, k]`.
fn scaled_weight(conv: &ModulatedConv2d) -> Tensor<4> {
    let [_, out, input, k, _] = conv.weight.dims();
    conv.weight
        .val()
        .mul_scalar(1.0 / ((input * k * k) as f64).sqrt())
        .reshape([out, input, k, k])
}

/// The modulated convolution in its shared-weight form (`x·s`, one convolution, `·demod`), as
/// `ModulatedConv2d::forward_shared`, keeping what [`modulated_conv_vjp`] needs.
pub fn modulated_conv_taped(conv: &ModulatedConv2d, x: Tensor<4>, s: Tensor<2>) -> (Tensor<4>, ModTape) {
    let weight = scaled_weight(conv);
    let [out, input, k, _] = weight.dims();
    let [b, _] = s.dims();
    let xm = x.clone() * s.clone().reshape([b, input, 1, 1]);
    let y = if conv.upsample {
        let options = ConvTransposeOptions::new([2, 2], [0, 0], [0, 0], [1, 1], 1);
        let t = conv_transpose2d(xm, weight.clone().swap_dims(0, 1), None, options);
        upconv_blur(t, &conv.blur_taps, k)
    } else {
        let options = ConvOptions::new([1, 1], [k / 2, k / 2], [1, 1], 1);
        conv2d(xm, weight.clone(), None, options)
    };
    let (result, demod) = if conv.demodulate {
        let energy = weight.square().sum_dims(&[2, 3]).reshape([out, input]);
        let d = s
            .clone()
            .square()
            .matmul(energy.clone().transpose())
            .add_scalar(1e-8)
            .sqrt()
            .recip();
        (y.clone() * d.clone().reshape([b, out, 1, 1]), Some((energy, d)))
    } else {
        (y.clone(), None)
    };
    (result, ModTape { x, s, y, demod })
}

/// Input and style gradients of [`modulated_conv_taped`] for the output gradient `g_out`:
/// through the demodulation rsqrt, the (transposed) convolution and its blur, and the style.
pub fn modulated_conv_vjp(
    conv: &ModulatedConv2d,
    tape: &ModTape,
    g_out: Tensor<4>,
) -> (Tensor<4>, Tensor<2>) {
    let weight = scaled_weight(conv);
    let [out, input, k, _] = weight.dims();
    let [b, _] = tape.s.dims();
    let (g_y, g_s_demod) = match &tape.demod {
        Some((energy, d)) => {
            let g_y = g_out.clone() * d.clone().reshape([b, out, 1, 1]);
            // d = (q + 1e-8)^(-1/2) with q = s² · energyᵀ, so ∂d/∂q = -d³/2.
            let g_d = (g_out * tape.y.clone()).sum_dims(&[2, 3]).reshape([b, out]);
            let g_q = g_d * d.clone().powi_scalar(3).mul_scalar(-0.5);
            let g_s = g_q.matmul(energy.clone()) * tape.s.clone().mul_scalar(2.0);
            (g_y, Some(g_s))
        }
        None => (g_out, None),
    };
    let g_xm = if conv.upsample {
        let g_t = upconv_blur_adjoint(g_y, &conv.blur_taps, k);
        let options = ConvOptions::new([2, 2], [0, 0], [1, 1], 1);
        conv2d(g_t, weight.swap_dims(0, 1), None, options)
    } else {
        let options = ConvTransposeOptions::new([1, 1], [k / 2, k / 2], [0, 0], [1, 1], 1);
        conv_transpose2d(g_y, weight, None, options)
    };
    let g_x = g_xm.clone() * tape.s.clone().reshape([b, input, 1, 1]);
    let g_s = (g_xm * tape.x.clone()).sum_dims(&[2, 3]).reshape([b, input]);
    let g_s = match g_s_demod {
        Some(extra) => g_s + extra,
        None => g_s,
    };
    (g_x, g_s)
}

/// The gradient of a W+ row from its style gradient: `s = w·(c·W)ᵀ + lr_mul·b`.
pub fn modulation_vjp(conv: &ModulatedConv2d, g_s: Tensor<2>) -> Tensor<2> {
    let m = &conv.modulation;
    let scale = m.lr_mul / (m.input_dim() as f64).sqrt();
    g_s.matmul(m.weight.val().mul_scalar(scale))
}

#[cfg(test)]
mod tests {
    use super::super::testing::assert_close;
    use super::*;
    use burn::module::Param;
    use burn::tensor::{Device, Distribution};

    fn random<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D> {
        Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
    }

    const TAPS: [f32; 4] = [0.125, 0.375, 0.375, 0.125];

    /// `<f(x), v>` differentiated by burn against the hand-written adjoint applied to `v`.
    fn check_linear(what: &str, f: impl Fn(Tensor<4>) -> Tensor<4>, adj: impl Fn(Tensor<4>) -> Tensor<4>) {
        let ad = Device::flex().autodiff();
        let x = random([2, 3, 5, 5], &ad).require_grad();
        let y = f(x.clone());
        let v = random(y.dims(), &ad);
        let grads = (y * v.clone()).sum().backward();
        let want = x.grad(&grads).expect("x takes part in the graph");
        assert_close(what, adj(v.inner()), want);
    }

    #[test]
    fn filter_adjoints_match_autodiff() {
        // An asymmetric kernel proves the flips.
        let taps = [0.1f32, 0.5, 0.3, 0.2];
        check_linear(
            "blur",
            |x| upconv_blur(x, &taps, 3),
            |g| upconv_blur_adjoint(g, &taps, 3),
        );
        check_linear(
            "skip upsample",
            |x| skip_upsample(x, &taps),
            |g| skip_upsample_adjoint(g, &taps),
        );
    }

    #[test]
    fn leaky_relu_mask_is_its_derivative() {
        let ad = Device::flex().autodiff();
        let z = random([2, 3, 4, 4], &ad).require_grad();
        let y = burn::tensor::activation::leaky_relu(z.clone(), 0.2).mul_scalar(SQRT_2);
        let v = random([2, 3, 4, 4], &ad);
        let grads = (y * v.clone()).sum().backward();
        let want = z.grad(&grads).expect("z is in the graph");
        assert_close("lrelu", (leaky_relu_mask(&z) * v).inner(), want);
    }

    /// Every kind of modulated conv: input, style and W+-row gradients against autodiff.
    #[test]
    fn modulated_conv_vjp_matches_autodiff() {
        let ad = Device::flex().autodiff();
        for (k, demodulate, upsample) in [(3, true, false), (3, true, true), (1, false, false)] {
            let mut conv = ModulatedConv2d::new(4, 5, k, 6, demodulate, upsample, &TAPS, &ad);
            conv.weight = Param::from_tensor(random([1, 5, 4, k, k], &ad));
            conv.modulation.weight = Param::from_tensor(random([4, 6], &ad));
            conv.modulation.bias = Param::from_tensor(random([4], &ad).add_scalar(1.0));
            let x = random([2, 4, 6, 6], &ad).require_grad();
            let w = random([2, 6], &ad).require_grad();
            let s = conv.modulation.forward(w.clone());
            let (y, tape) = modulated_conv_taped(&conv, x.clone(), s);
            let v = random(y.dims(), &ad);
            let grads = (y * v.clone()).sum().backward();
            let (want_x, want_w) = (x.grad(&grads), w.grad(&grads));

            // A fresh forward: backward consumed the first graph.
            let s = conv.modulation.forward(w.clone().inner());
            let (_, tape2) = modulated_conv_taped(&conv, x.clone().inner(), s);
            drop(tape);
            let (g_x, g_s) = modulated_conv_vjp(&conv, &tape2, v.inner());
            let what = format!("k {k} demod {demodulate} up {upsample}");
            assert_close(&what, g_x, want_x.expect("x in graph"));
            assert_close(&what, modulation_vjp(&conv, g_s), want_w.expect("w in graph"));
        }
    }
}
