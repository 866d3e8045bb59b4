//! The discriminator run with a tape, and its input gradient `∂D(x).sum()/∂x` written out as
//! differentiable operations (see [`super::vjp`]) so that R1, built on that gradient, can be
//! differentiated by first-order autodiff.

use std::f64::consts::FRAC_1_SQRT_2;

use burn::tensor::Tensor;
use burn::tensor::module::conv_transpose2d;
use burn::tensor::ops::ConvTransposeOptions;

use super::vjp::{leaky_relu_mask, upfirdn2d_adjoint};
use crate::nets::stylegan2::discriminator::{ConvLayer, Discriminator};
use crate::nets::stylegan2::layers::{EqualConv2d, EqualLinear};
use crate::nets::stylegan2::upfirdn::{Pad, downsample_blur_pad, upfirdn2d};

/// A ConvLayer's forward record: the leaky-ReLU input (when activated).
#[derive(Debug, Clone)]
struct ConvTape {
    pre_activation: Option<Tensor<4>>,
}

#[derive(Debug, Clone)]
struct BlockTape {
    conv1: ConvTape,
    conv2: ConvTape,
}

/// Everything the input gradient needs from one forward pass.
#[derive(Debug, Clone)]
pub struct DiscriminatorTape {
    from_rgb: ConvTape,
    blocks: Vec<BlockTape>,
    /// The last block's output `[B, C, 4, 4]`, the minibatch-stddev input.
    features: Tensor<4>,
    group: usize,
    final_conv: ConvTape,
    /// `final_linear`'s pre-activation `[B, C]`.
    linear_pre: Tensor<2>,
}

fn scaled_conv_weight(conv: &EqualConv2d) -> Tensor<4> {
    let [_, input, kh, kw] = conv.weight.dims();
    conv.weight
        .val()
        .mul_scalar(1.0 / ((input * kh * kw) as f64).sqrt())
}

fn scaled_linear_weight(linear: &EqualLinear) -> Tensor<2> {
    let scale = linear.lr_mul / (linear.input_dim() as f64).sqrt();
    linear.weight.val().mul_scalar(scale)
}

fn blur_pad(layer: &ConvLayer) -> Pad {
    downsample_blur_pad(layer.blur_taps.len(), layer.conv.weight.dims()[2], 2)
}

fn conv_layer_taped(layer: &ConvLayer, x: Tensor<4>) -> (Tensor<4>, ConvTape) {
    let x = if layer.downsample {
        upfirdn2d(x, &layer.blur_taps, 1, 1, blur_pad(layer))
    } else {
        x
    };
    let y = layer.conv.forward(x);
    match &layer.act {
        Some(act) => {
            let bias = act.bias.val();
            let c = bias.dims()[0];
            let pre = y.clone() + bias.reshape([1, c, 1, 1]);
            (
                act.forward(y),
                ConvTape {
                    pre_activation: Some(pre),
                },
            )
        }
        None => (y, ConvTape { pre_activation: None }),
    }
}

/// The input gradient of a ConvLayer: activation mask, the (strided) convolution's adjoint, then
/// the blur's adjoint.
fn conv_layer_vjp(layer: &ConvLayer, tape: &ConvTape, g_out: Tensor<4>) -> Tensor<4> {
    let g = match &tape.pre_activation {
        Some(pre) => g_out * leaky_relu_mask(pre),
        None => g_out,
    };
    let (stride, padding) = (layer.conv.stride, layer.conv.padding);
    let options = ConvTransposeOptions::new([stride; 2], [padding; 2], [0, 0], [1, 1], 1);
    let g = conv_transpose2d(g, scaled_conv_weight(&layer.conv), None, options);
    if layer.downsample {
        upfirdn2d_adjoint(g, &layer.blur_taps, 1, blur_pad(layer))
    } else {
        g
    }
}

/// rosinality's minibatch stddev (sample `g·M + m` in row `g` of column `m`), as the
/// discriminator computes it.
fn stddev_map(x: &Tensor<4>, group: usize, feat: usize) -> Tensor<4> {
    let [batch, c, h, w] = x.dims();
    let m = batch / group;
    let x = x.clone().reshape([group, m, feat, c / feat, h, w]);
    let centered = x.clone() - x.mean_dim(0);
    let std = centered.square().mean_dim(0).add_scalar(1e-8).sqrt();
    let std = std
        .mean_dim(3)
        .mean_dim(4)
        .mean_dim(5)
        .reshape([1, m, feat, 1, 1]);
    std.expand([group, m, feat, h, w]).reshape([batch, feat, h, w])
}

/// The minibatch stddev's input gradient for the gradient `g_map` `[B, F, H, W]` of its output:
/// with `sd = sqrt(mean_G (x − μ)² + 1e-8)` and the map the mean of `sd` over C/F·H·W,
/// `∂/∂x = g_S · (x − μ) / (G · C/F·H·W · sd)` (the μ term's share sums to zero over the group).
fn stddev_vjp(x: &Tensor<4>, group: usize, feat: usize, g_map: Tensor<4>) -> Tensor<4> {
    let [batch, c, h, w] = x.dims();
    let m = batch / group;
    let xr = x.clone().reshape([group, m, feat, c / feat, h, w]);
    let centered = xr.clone() - xr.mean_dim(0);
    let sd = centered.clone().square().mean_dim(0).add_scalar(1e-8).sqrt();
    let g_s = g_map
        .reshape([group, m, feat, 1, h, w])
        .sum_dim(0)
        .sum_dim(4)
        .sum_dim(5);
    let count = (group * (c / feat) * h * w) as f64;
    let g_x = centered * (g_s / sd).div_scalar(count);
    g_x.reshape([batch, c, h, w])
}

/// `D(x)` `[B, 1]` with its tape.
pub fn discriminate_taped(d: &Discriminator, x: Tensor<4>) -> (Tensor<2>, DiscriminatorTape) {
    let batch = x.dims()[0];
    let group = batch.min(d.stddev_group);
    let (mut out, from_rgb) = conv_layer_taped(&d.from_rgb, x);
    let mut blocks = Vec::new();
    for block in &d.blocks {
        let (c1, conv1) = conv_layer_taped(&block.conv1, out.clone());
        let (c2, conv2) = conv_layer_taped(&block.conv2, c1);
        let skip = block.skip.forward(out);
        out = (c2 + skip).mul_scalar(FRAC_1_SQRT_2);
        blocks.push(BlockTape { conv1, conv2 });
    }
    let features = out.clone();
    let stddev = stddev_map(&out, group, d.stddev_feat);
    let (out, final_conv) = conv_layer_taped(&d.final_conv, Tensor::cat(vec![out, stddev], 1));
    let [_, c, h, w] = out.dims();
    let flat = out.reshape([batch, c * h * w]);
    let linear_pre = flat
        .clone()
        .matmul(scaled_linear_weight(&d.final_linear).transpose())
        + d.final_linear
            .bias
            .val()
            .mul_scalar(d.final_linear.lr_mul)
            .unsqueeze_dim(0);
    let hidden = d.final_linear.forward(flat);
    let logits = d.final_out.forward(hidden);
    let tape = DiscriminatorTape {
        from_rgb,
        blocks,
        features,
        group,
        final_conv,
        linear_pre,
    };
    (logits, tape)
}

/// `∂D(x).sum()/∂x` `[B, 3, S, S]` from the tape, differentiable with respect to D's
/// parameters (and x).
pub fn input_gradient(d: &Discriminator, tape: &DiscriminatorTape) -> Tensor<4> {
    let [batch, _] = tape.linear_pre.dims();
    let device = tape.linear_pre.device();
    // d(sum of logits)/d(logits) = 1; through final_out's weight to the hidden features.
    let ones: Tensor<2> = Tensor::ones([batch, 1], &device);
    let g_hidden = ones.matmul(scaled_linear_weight(&d.final_out));
    let g_flat = (g_hidden * leaky_relu_mask(&tape.linear_pre)).matmul(scaled_linear_weight(&d.final_linear));
    let [_, c, h, w] = tape.features.dims();
    let g_cat = conv_layer_vjp(&d.final_conv, &tape.final_conv, g_flat.reshape([batch, c, h, w]));
    let feat = d.stddev_feat;
    let g_main = g_cat.clone().narrow(1, 0, c);
    let g_map = g_cat.narrow(1, c, feat);
    let mut g = g_main + stddev_vjp(&tape.features, tape.group, feat, g_map);
    for (block, bt) in d.blocks.iter().zip(&tape.blocks).rev() {
        let g_sum = g.mul_scalar(FRAC_1_SQRT_2);
        let g_skip = conv_layer_vjp(&block.skip, &ConvTape { pre_activation: None }, g_sum.clone());
        let g_c1 = conv_layer_vjp(&block.conv2, &bt.conv2, g_sum);
        g = conv_layer_vjp(&block.conv1, &bt.conv1, g_c1) + g_skip;
    }
    conv_layer_vjp(&d.from_rgb, &tape.from_rgb, g)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use burn::tensor::{Device, Distribution, Tensor};

    use super::super::testing::{assert_close, randomised};
    use super::*;
    use crate::nets::stylegan2::DiscriminatorConfig;

    /// The hand-written input gradient against burn's gradient of `D(x).sum()`, and the taped
    /// forward pass against the discriminator's own, with two stddev groups of four (strided).
    #[test]
    fn input_gradient_matches_autodiff() {
        let ad = Device::flex().autodiff();
        let config = DiscriminatorConfig {
            size: 16,
            channels: BTreeMap::from([(4, 6), (8, 5), (16, 4)]),
            blur_kernel: vec![1.0, 3.0, 3.0, 1.0],
            stddev_group: 4,
            stddev_feat: 2,
        };
        let d = randomised(Discriminator::new(&config, &ad).expect("valid config"));
        let x = Tensor::<4>::random([8, 3, 16, 16], Distribution::Normal(0.0, 1.0), &ad).require_grad();
        let (logits, _) = discriminate_taped(&d, x.clone());
        let reference = d.forward(x.clone()).expect("forward runs");
        assert_close("logits", logits.clone().inner(), reference.inner());
        let grads = logits.sum().backward();
        let want = x.grad(&grads).expect("x is in the graph");

        let (_, tape) = discriminate_taped(&d, x.detach());
        assert_close("input gradient", input_gradient(&d, &tape).inner(), want);
    }

    #[test]
    fn stddev_vjp_matches_autodiff() {
        let ad = Device::flex().autodiff();
        let x = Tensor::<4>::random([8, 6, 4, 4], Distribution::Normal(0.0, 1.0), &ad).require_grad();
        let v = Tensor::<4>::random([8, 2, 4, 4], Distribution::Normal(0.0, 1.0), &ad);
        let grads = (stddev_map(&x, 4, 2) * v.clone()).sum().backward();
        let want = x.grad(&grads).expect("x is in the graph");
        assert_close("stddev", stddev_vjp(&x.detach(), 4, 2, v).inner(), want);
    }
}
