//! The synthesis blocks: modulated convolution, noise injection, StyledConv, ToRGB, const input.
//! Field names follow rosinality's state dict (`convs.0.conv.modulation.weight`, …).

use burn::module::{Module, Param};
use burn::tensor::Device;
use burn::tensor::Tensor;
use burn::tensor::module::{conv_transpose2d, conv2d};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};

use super::layers::{EqualLinear, FusedLeakyRelu};
use super::upfirdn::{Pad, scaled, upconv_blur_pad, upfirdn2d, upsample_pad};

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
    pub fn forward(&self, x: Tensor<4>, s: Tensor<2>) -> Tensor<4> {
        let [_, out, input, k, _] = self.weight.dims();
        let [b, _] = s.dims();
        let scale = 1.0 / ((input * k * k) as f64).sqrt();
        let weight = self.weight.val().reshape([out, input, k, k]).mul_scalar(scale);
        let x = x * s.clone().reshape([b, input, 1, 1]);
        let y = if self.upsample {
            // conv_transpose2d(stride 2) gives 2H+1; the ×4-gain blur brings it back to 2H.
            let options = ConvTransposeOptions::new([2, 2], [0, 0], [0, 0], [1, 1], 1);
            let y = conv_transpose2d(x, weight.clone().swap_dims(0, 1), None, options);
            let pad = upconv_blur_pad(self.blur_taps.len(), k, 2);
            upfirdn2d(y, &scaled(&self.blur_taps, 2.0), 1, 1, pad)
        } else {
            conv2d(
                x,
                weight.clone(),
                None,
                ConvOptions::new([1, 1], [k / 2, k / 2], [1, 1], 1),
            )
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

    pub fn forward(&self, x: Tensor<4>, s: Tensor<2>, noise: Tensor<4>) -> Tensor<4> {
        self.activate
            .forward(self.noise.forward(self.conv.forward(x, s), noise))
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
