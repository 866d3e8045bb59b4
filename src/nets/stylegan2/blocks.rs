//! The synthesis blocks: modulated convolution, noise injection, StyledConv, ToRGB, const input.
//! Field names follow rosinality's state dict (`convs.0.conv.modulation.weight`, …).

use burn::module::{Module, Param};
use burn::tensor::Device;
use burn::tensor::Tensor;
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};

use super::host_act;
use super::layers::{EqualLinear, FusedLeakyRelu};
use super::upfirdn::{Pad, scaled, upconv_blur_pad, upfirdn2d, upsample_pad};
use crate::nets::cpu_conv::{conv_transpose2d, conv2d};
use crate::nets::profile;

/// `ModulatedConv2d`: a convolution whose input channels are scaled by a per-sample style and
/// whose output channels are (optionally) demodulated.
///
/// The reference builds per-sample weights and runs one grouped convolution. Scaling the input
/// by the style, convolving with the shared weight, and scaling the output by the
/// demodulation coefficients is the same linear map (rosinality's `fused=False` path), keeps
/// the whole batch in one dense convolution, and never materialises B weight copies.
#[derive(Module, Debug)]
pub struct ModulatedConv2d {
    /// `[1, out, in, k, k]`, raw (the `1/√(in·k²)` scale is applied at run time).
    pub weight: Param<Tensor<5>>,
    /// style_dim → in, its bias stored with the +1 init already added.
    pub modulation: EqualLinear,
    pub demodulate: bool,
    pub upsample: bool,
    /// Normalised 1-D blur taps for the upsampling path.
    pub blur_taps: Vec<f32>,
}

impl ModulatedConv2d {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        input: usize,
        output: usize,
        kernel: usize,
        style_dim: usize,
        demodulate: bool,
        upsample: bool,
        blur_taps: &[f32],
        device: &Device,
    ) -> ModulatedConv2d {
        ModulatedConv2d {
            weight: Param::from_tensor(Tensor::zeros([1, output, input, kernel, kernel], device)),
            modulation: EqualLinear::new(style_dim, input, 1.0, false, device),
            demodulate,
            upsample,
            blur_taps: blur_taps.to_vec(),
        }
    }

    pub fn in_channels(&self) -> usize {
        self.weight.dims()[2]
    }

    pub fn out_channels(&self) -> usize {
        self.weight.dims()[1]
    }

    /// The style vector `s = modulation(w)`, one row per sample: this layer's S-space entry.
    pub fn style(&self, w: Tensor<2>) -> Tensor<2> {
        self.modulation.forward(w)
    }

    /// Convolves `x` `[B, in, H, W]` modulated by the style `s` `[B, in]` (or `[1, in]`).
    ///
    /// Two exact forms of the same map, chosen by which touches less memory: per-sample
    /// modulated weights in one grouped convolution (the reference's form; cheapest at high
    /// resolution, where a weight is far smaller than a feature map), or the style applied to
    /// the input and the demodulation to the output around one shared-weight convolution
    /// (cheapest at low resolution and wide layers, where the weights dominate).
    pub fn forward(&self, x: Tensor<4>, s: Tensor<2>) -> Tensor<4> {
        let [_, out, _, k, _] = self.weight.dims();
        let [_, input, h, w] = x.dims();
        let grouped = out * k * k <= h * w;
        let detail = || {
            format!(
                "{input}->{out} {k}x{k}{} @{h}x{w}",
                if self.upsample { " up" } else { "" }
            )
        };
        if grouped {
            profile::scope("modconv_grouped", detail, || self.forward_grouped(x, s))
        } else {
            profile::scope("modconv_shared", detail, || self.forward_shared(x, s))
        }
    }

    fn scaled_weight(&self) -> Tensor<5> {
        let [_, _, input, k, _] = self.weight.dims();
        self.weight
            .val()
            .mul_scalar(1.0 / ((input * k * k) as f64).sqrt())
    }

    /// Per-sample weights `[B·out, in, k, k]` and a convolution with `groups = B`.
    pub fn forward_grouped(&self, x: Tensor<4>, s: Tensor<2>) -> Tensor<4> {
        let [_, out, input, k, _] = self.weight.dims();
        let batch = x.dims()[0].max(s.dims()[0]);
        let [_, _, h, w] = x.dims();
        let s = s.expand([batch, input]);
        let mut weight = self.scaled_weight() * s.reshape([batch, 1, input, 1, 1]);
        if self.demodulate {
            let demod = weight
                .clone()
                .square()
                .sum_dims(&[2, 3, 4])
                .add_scalar(1e-8)
                .sqrt()
                .recip();
            weight = weight * demod;
        }
        let x = x.expand([batch, input, h, w]).reshape([1, batch * input, h, w]);
        if self.upsample {
            let weight = weight.swap_dims(1, 2).reshape([batch * input, out, k, k]);
            let options = ConvTransposeOptions::new([2, 2], [0, 0], [0, 0], [1, 1], batch);
            let y = conv_transpose2d(x, weight, None, options);
            let [_, _, h2, w2] = y.dims();
            self.upsample_blur(y.reshape([batch, out, h2, w2]), k)
        } else {
            let weight = weight.reshape([batch * out, input, k, k]);
            let options = ConvOptions::new([1, 1], [k / 2, k / 2], [1, 1], batch);
            conv2d(x, weight, None, options).reshape([batch, out, h, w])
        }
    }

    /// `x·s`, one convolution with the shared weight, then `·demod[b, out]`
    /// (rosinality's `fused=False` path).
    pub fn forward_shared(&self, x: Tensor<4>, s: Tensor<2>) -> Tensor<4> {
        let [_, out, input, k, _] = self.weight.dims();
        let [b, _] = s.dims();
        let weight = self.scaled_weight().reshape([out, input, k, k]);
        let x = x * s.clone().reshape([b, input, 1, 1]);
        let y = if self.upsample {
            let options = ConvTransposeOptions::new([2, 2], [0, 0], [0, 0], [1, 1], 1);
            let y = conv_transpose2d(x, weight.clone().swap_dims(0, 1), None, options);
            self.upsample_blur(y, k)
        } else {
            let options = ConvOptions::new([1, 1], [k / 2, k / 2], [1, 1], 1);
            conv2d(x, weight.clone(), None, options)
        };
        if !self.demodulate {
            return y;
        }
        // Σ_{i,kh,kw} (W[o,i,kh,kw]·s[b,i])² = Σ_i s[b,i]² · Σ_{kh,kw} W[o,i,kh,kw]²
        let energy = weight.square().sum_dims(&[2, 3]).reshape([out, input]);
        let demod = s
            .square()
            .matmul(energy.transpose())
            .add_scalar(1e-8)
            .sqrt()
            .recip();
        y * demod.reshape([b, out, 1, 1])
    }

    /// The transposed conv gives 2H+1; the ×4-gain blur brings it back to 2H.
    fn upsample_blur(&self, y: Tensor<4>, k: usize) -> Tensor<4> {
        let pad = upconv_blur_pad(self.blur_taps.len(), k, 2);
        upfirdn2d(y, &scaled(&self.blur_taps, 2.0), 1, 1, pad)
    }
}

/// `NoiseInjection`: `x + weight·noise` (noise `[1 or B, 1, H, W]`), or with `isconcat` (GPEN)
/// `cat([x, weight·noise], 1)` where the noise carries its own channels.
#[derive(Module, Debug)]
pub struct NoiseInjection {
    /// A single learned strength, shape `[1]`.
    pub weight: Param<Tensor<1>>,
    pub isconcat: bool,
}

impl NoiseInjection {
    pub fn new(isconcat: bool, device: &Device) -> NoiseInjection {
        NoiseInjection {
            weight: Param::from_tensor(Tensor::zeros([1], device)),
            isconcat,
        }
    }

    pub fn forward(&self, x: Tensor<4>, noise: Tensor<4>) -> Tensor<4> {
        let dims = x.dims();
        profile::scope(
            "noise",
            move || profile::shape4(dims),
            || self.forward_inner(x, noise),
        )
    }

    fn forward_inner(&self, x: Tensor<4>, noise: Tensor<4>) -> Tensor<4> {
        let scaled = noise * self.weight.val().reshape([1, 1, 1, 1]);
        if self.isconcat {
            let [b, _, h, w] = x.dims();
            let c = scaled.dims()[1];
            Tensor::cat(vec![x, scaled.expand([b, c, h, w])], 1)
        } else {
            x + scaled
        }
    }
}

/// `StyledConv`: modulated conv → noise → fused leaky ReLU (its bias covers the concatenated
/// noise channels too when `isconcat`).
#[derive(Module, Debug)]
pub struct StyledConv {
    pub conv: ModulatedConv2d,
    pub noise: NoiseInjection,
    pub activate: FusedLeakyRelu,
}

impl StyledConv {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        input: usize,
        output: usize,
        style_dim: usize,
        upsample: bool,
        isconcat: bool,
        blur_taps: &[f32],
        device: &Device,
    ) -> StyledConv {
        let activated = if isconcat { 2 * output } else { output };
        StyledConv {
            conv: ModulatedConv2d::new(input, output, 3, style_dim, true, upsample, blur_taps, device),
            noise: NoiseInjection::new(isconcat, device),
            activate: FusedLeakyRelu::new(activated, device),
        }
    }

    /// Channels of the noise this layer expects: 1, or the conv output's when concatenating.
    pub fn noise_channels(&self) -> usize {
        if self.noise.isconcat {
            self.conv.out_channels()
        } else {
            1
        }
    }

    // `host_act` hands `y` back in `Err` where its pass does not apply (see there).
    #[allow(clippy::result_large_err)]
    pub fn forward(&self, x: Tensor<4>, s: Tensor<2>, noise: Tensor<4>) -> Tensor<4> {
        let y = self.conv.forward(x, s);
        let dims = y.dims();
        let fused = profile::scope(
            "noise_act",
            move || profile::shape4(dims),
            || {
                host_act::noise_bias_leaky_relu(
                    y,
                    &noise,
                    &self.noise.weight.val(),
                    self.noise.isconcat,
                    &self.activate.bias.val(),
                )
            },
        );
        match fused {
            Ok(out) => out,
            Err(y) => self.activate.forward(self.noise.forward(y, noise)),
        }
    }
}

/// `ToRGB`: 1×1 modulated conv without demodulation, plus a bias, plus the upsampled skip.
#[derive(Module, Debug)]
pub struct ToRgb {
    pub conv: ModulatedConv2d,
    /// `[1, 3, 1, 1]`.
    pub bias: Param<Tensor<4>>,
    /// Whether a skip input is upsampled ×2 (every ToRGB but the first).
    pub upsample: bool,
}

impl ToRgb {
    pub fn new(input: usize, style_dim: usize, upsample: bool, blur_taps: &[f32], device: &Device) -> ToRgb {
        ToRgb {
            conv: ModulatedConv2d::new(input, 3, 1, style_dim, false, false, blur_taps, device),
            bias: Param::from_tensor(Tensor::zeros([1, 3, 1, 1], device)),
            upsample,
        }
    }

    pub fn forward(&self, x: Tensor<4>, s: Tensor<2>, skip: Option<Tensor<4>>) -> Tensor<4> {
        let out = self.conv.forward(x, s) + self.bias.val();
        match skip {
            Some(skip) if self.upsample => {
                let taps = &self.conv.blur_taps;
                let pad: Pad = upsample_pad(taps.len(), 2);
                out + upfirdn2d(skip, &scaled(taps, 2.0), 2, 1, pad)
            }
            Some(skip) => out + skip,
            None => out,
        }
    }
}

/// `ConstantInput`: the learned 4×4 start of the synthesis, repeated over the batch.
#[derive(Module, Debug)]
pub struct ConstantInput {
    /// `[1, C, 4, 4]`.
    pub input: Param<Tensor<4>>,
}

impl ConstantInput {
    pub fn new(channels: usize, device: &Device) -> ConstantInput {
        ConstantInput {
            input: Param::from_tensor(Tensor::zeros([1, channels, 4, 4], device)),
        }
    }

    pub fn forward(&self, batch: usize) -> Tensor<4> {
        let [_, c, h, w] = self.input.dims();
        self.input.val().expand([batch, c, h, w])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    fn random<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D> {
        Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
    }

    /// The grouped and the shared-weight forms must agree, for every kind of layer and for a
    /// style given once for the whole batch.
    #[test]
    fn grouped_and_shared_forms_agree() {
        let device = Device::flex();
        let taps = [0.125f32, 0.375, 0.375, 0.125];
        for (k, demodulate, upsample, style_rows) in [
            (3, true, false, 2),
            (3, true, true, 2),
            (1, false, false, 2),
            (3, true, true, 1),
        ] {
            let mut conv = ModulatedConv2d::new(5, 4, k, 6, demodulate, upsample, &taps, &device);
            conv.weight = Param::from_tensor(random([1, 4, 5, k, k], &device));
            let x = random([2, 5, 6, 6], &device);
            let s = random([style_rows, 5], &device).add_scalar(1.0);
            let a = conv.forward_grouped(x.clone(), s.clone());
            let b = conv.forward_shared(x, s);
            assert_eq!(a.dims(), b.dims());
            let diff = (a - b)
                .abs()
                .max()
                .into_data()
                .try_into_vec_as::<f32>()
                .unwrap_or_default();
            assert!(diff[0] < 1e-4, "k {k} demod {demodulate} up {upsample}: {diff:?}");
        }
    }
}
