//! The generator's synthesis network run with a tape, and its W+ gradient written out as
//! differentiable operations (see [`super::vjp`]), so that the path-length penalty built on that
//! gradient can itself be differentiated by first-order autodiff.

use burn::tensor::Tensor;

use super::vjp::{
    ModTape, leaky_relu_mask, modulated_conv_taped, modulated_conv_vjp, modulation_vjp, skip_upsample,
    skip_upsample_adjoint,
};
use crate::nets::stylegan2::Generator;
use crate::nets::stylegan2::blocks::{StyledConv, ToRgb};
use crate::nets::stylegan2::layers::fused_leaky_relu;

/// A StyledConv's forward record: its modulated conv and the leaky-ReLU input.
#[derive(Debug, Clone)]
struct StyledTape {
    conv: ModTape,
    pre_activation: Tensor<4>,
}

/// Everything the W+ gradient needs from one forward pass.
#[derive(Debug, Clone)]
pub struct SynthesisTape {
    conv1: StyledTape,
    to_rgb1: ModTape,
    convs: Vec<StyledTape>,
    to_rgbs: Vec<ModTape>,
    shape: [usize; 3],
}

/// The W+ row feeding a layer, as in `Generator::style_layers`.
fn row(wplus: &Tensor<3>, index: usize) -> Tensor<2> {
    let [b, _, d] = wplus.dims();
    wplus.clone().narrow(1, index, 1).reshape([b, d])
}

fn styled_forward(
    layer: &StyledConv,
    x: Tensor<4>,
    w: Tensor<2>,
    noise: Tensor<4>,
) -> (Tensor<4>, StyledTape) {
    let s = layer.conv.style(w);
    let (y, conv) = modulated_conv_taped(&layer.conv, x, s);
    let noised = layer.noise.forward(y, noise);
    let bias = layer.activate.bias.val();
    let c = bias.dims()[0];
    let pre_activation = noised.clone() + bias.clone().reshape([1, c, 1, 1]);
    let out = fused_leaky_relu(noised, bias);
    (out, StyledTape { conv, pre_activation })
}

/// Input and W+-row gradients of a StyledConv (the noise adds a constant, the bias shifts).
fn styled_vjp(layer: &StyledConv, tape: &StyledTape, g_out: Tensor<4>) -> (Tensor<4>, Tensor<2>) {
    let g_y = g_out * leaky_relu_mask(&tape.pre_activation);
    let (g_x, g_s) = modulated_conv_vjp(&layer.conv, &tape.conv, g_y);
    (g_x, modulation_vjp(&layer.conv, g_s))
}

fn to_rgb_forward(
    layer: &ToRgb,
    x: Tensor<4>,
    w: Tensor<2>,
    skip: Option<Tensor<4>>,
) -> (Tensor<4>, ModTape) {
    let s = layer.conv.style(w);
    let (y, tape) = modulated_conv_taped(&layer.conv, x, s);
    let out = y + layer.bias.val();
    let out = match skip {
        Some(skip) if layer.upsample => out + skip_upsample(skip, &layer.conv.blur_taps),
        Some(skip) => out + skip,
        None => out,
    };
    (out, tape)
}

/// W+ `[B, n_latent, style_dim]` and one noise map per StyledConv → image and tape. The same
/// maths as `Generator::synthesize_wplus` (in its shared-weight form).
pub fn synthesize_taped(g: &Generator, wplus: &Tensor<3>, noise: &[Tensor<4>]) -> (Tensor<4>, SynthesisTape) {
    let shape = wplus.dims();
    let mut out = g.input.forward(shape[0]);
    let (o, conv1) = styled_forward(&g.conv1, out, row(wplus, 0), noise[0].clone());
    out = o;
    let (mut skip, to_rgb1) = to_rgb_forward(&g.to_rgb1, out.clone(), row(wplus, 1), None);
    let (mut convs, mut to_rgbs) = (Vec::new(), Vec::new());
    for (k, rgb) in g.to_rgbs.iter().enumerate() {
        for j in 0..2 {
            let i = 2 * k + j;
            let (o, tape) = styled_forward(&g.convs[i], out, row(wplus, i + 1), noise[i + 1].clone());
            out = o;
            convs.push(tape);
        }
        let (s, tape) = to_rgb_forward(rgb, out.clone(), row(wplus, 2 * k + 3), Some(skip));
        skip = s;
        to_rgbs.push(tape);
    }
    let tape = SynthesisTape {
        conv1,
        to_rgb1,
        convs,
        to_rgbs,
        shape,
    };
    (skip, tape)
}

/// `∂⟨image, g_image⟩/∂W+` `[B, n_latent, style_dim]`, built from the tape's tensors so that it
/// stays differentiable with respect to the generator's parameters and W+ itself.
pub fn wplus_gradient(g: &Generator, tape: &SynthesisTape, g_image: Tensor<4>) -> Tensor<3> {
    let [b, n_latent, d] = tape.shape;
    let mut rows: Vec<Option<Tensor<2>>> = vec![None; n_latent];
    let mut add = |index: usize, grad: Tensor<2>| {
        rows[index] = Some(match rows[index].take() {
            Some(sum) => sum + grad,
            None => grad,
        });
    };
    let mut g_skip = g_image;
    // Gradient reaching the features left by the block above (None at the top).
    let mut g_features: Option<Tensor<4>> = None;
    for (k, rgb) in g.to_rgbs.iter().enumerate().rev() {
        let (g_x, g_s) = modulated_conv_vjp(&rgb.conv, &tape.to_rgbs[k], g_skip.clone());
        add(2 * k + 3, modulation_vjp(&rgb.conv, g_s));
        g_skip = skip_upsample_adjoint(g_skip, &rgb.conv.blur_taps);
        let mut g_out = match g_features.take() {
            Some(above) => g_x + above,
            None => g_x,
        };
        for j in (0..2).rev() {
            let i = 2 * k + j;
            let (g_in, g_w) = styled_vjp(&g.convs[i], &tape.convs[i], g_out);
            add(i + 1, g_w);
            g_out = g_in;
        }
        g_features = Some(g_out);
    }
    let (g_x, g_s) = modulated_conv_vjp(&g.to_rgb1.conv, &tape.to_rgb1, g_skip);
    add(1, modulation_vjp(&g.to_rgb1.conv, g_s));
    let g_out = match g_features {
        Some(above) => g_x + above,
        None => g_x,
    };
    let (_, g_w) = styled_vjp(&g.conv1, &tape.conv1, g_out);
    add(0, g_w);
    let device = g.input.input.device();
    let rows = rows
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Tensor::zeros([b, d], &device)))
        .collect();
    Tensor::stack(rows, 1)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use burn::tensor::{Device, Distribution, Tensor};

    use super::super::testing::{assert_close, randomised};
    use super::*;
    use crate::nets::stylegan2::{Noise, StyleGan2Config};

    /// A 16-pixel generator with random weights (two resolutions above 4×4).
    fn small_generator(device: &Device) -> Generator {
        let config = StyleGan2Config {
            size: 16,
            style_dim: 8,
            n_mlp: 2,
            blur_kernel: vec![1.0, 3.0, 3.0, 1.0],
            lr_mlp: 0.01,
            channels: BTreeMap::from([(4, 6), (8, 5), (16, 4)]),
            isconcat: false,
        };
        randomised(Generator::new(&config, device).expect("valid config"))
    }

    /// The hand-written W+ gradient against burn's gradient of `⟨image, v⟩`, and the taped
    /// forward pass against the generator's own.
    #[test]
    fn wplus_gradient_matches_autodiff() {
        let ad = Device::flex().autodiff();
        let g = small_generator(&ad);
        let normal = Distribution::Normal(0.0, 1.0);
        let wplus = Tensor::<3>::random([2, g.n_latent, 8], normal, &ad).require_grad();
        let noise: Vec<Tensor<4>> = [4, 8, 8, 16, 16]
            .iter()
            .map(|&r| Tensor::random([2, 1, r, r], normal, &ad))
            .collect();
        let (image, _) = synthesize_taped(&g, &wplus, &noise);
        let reference = g
            .synthesize_wplus(wplus.clone(), &Noise::Given(noise.clone()))
            .expect("synthesis runs");
        assert_close("image", image.clone().inner(), reference.inner());
        let v = Tensor::<4>::random(image.dims(), normal, &ad);
        let grads = (image * v.clone()).sum().backward();
        let want = wplus.grad(&grads).expect("W+ is in the graph");

        let fresh = wplus.detach();
        let (_, tape) = synthesize_taped(&g, &fresh, &noise);
        assert_close("W+ gradient", wplus_gradient(&g, &tape, v).inner(), want);
    }
}
