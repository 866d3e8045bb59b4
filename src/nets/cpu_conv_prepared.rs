//! Convolutions whose weights are fixed after loading, prepared once for the flex CPU backend:
//! an eval batch norm after the convolution folded into the weights and bias, and the Winograd
//! transform of the weights computed ahead for the map size the layer will see.
//!
//! `fused::conv_bn` folds the norm on every call (a full pass over the weights through burn's
//! ops: for ArcFace some 64 MB read and written per face), and `cpu_winograd::conv2d_f32`
//! transforms the weights on every call, which is why it had to leave maps under 32² to the
//! direct convolution. With both done once, small maps of wide layers (ArcFace's 256 channels at
//! 14², 512 at 7², 128 at 28²) take Winograd too ([`winograd_tile`]).

use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, PaddingConfig2d};
use burn::tensor::module::conv2d as burn_conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Tensor, TensorData};

use super::cpu_conv::{self, read_f32};
use super::cpu_winograd::{self, PreparedWeights, Tile};
use super::profile;

/// Columns below which a product is counted as this many in [`winograd_tile`]'s cost: gemm
/// streams the whole weight matrix for however few columns it has, so very few tiles (or
/// pixels) cost about as much as this many.
const MIN_COLUMNS: usize = 24;

/// The Winograd tile for a prepared convolution of `c` → `o` channels with a `kernel` kernel and
/// `stride`, producing `b` maps of `oh` × `ow`, or None where the direct convolution is
/// expected to be faster. The cost counted is the products per weight: the direct convolution
/// does 9 per output pixel, F(m×m) does (m+2)² per tile of m×m (tiles at the border counted
/// whole), each at least [`MIN_COLUMNS`]. ArcFace-112: 256→256 @14² F(2×2) (784 against
/// 1,764; F(4×4) 864), 512→512 @7² F(2×2) (384 against 441), 128→128 @28² and 64→64
/// @56²/112² F(4×4). `bench_layers --prepared` (then `examples/probe_small`) timed the 7² and 14² layers, alternating, at load 11:
/// 512→512 @7² direct 31.4 ms (min 15.9), F(2×2) 8.4 (min 6.2), F(4×4) 47.6 (min 14.0);
/// 256→256 @14² direct 107.8 (min 37.2), F(2×2) 61.4 (min 22.8), F(4×4) 44.3 (min 32.0).
pub fn winograd_tile(
    (c, o): (usize, usize),
    kernel: (usize, usize),
    stride: [usize; 2],
    (b, oh, ow): (usize, usize, usize),
) -> Option<Tile> {
    if kernel != (3, 3)
        || stride != [1, 1]
        || c < cpu_winograd::MIN_CHANNELS
        || o < cpu_winograd::MIN_CHANNELS
    {
        return None;
    }
    let direct = 9 * (b * oh * ow).max(MIN_COLUMNS);
    let cost = |m: usize| (m + 2) * (m + 2) * (b * oh.div_ceil(m) * ow.div_ceil(m)).max(MIN_COLUMNS);
    let (f2, f4) = (cost(2), cost(4));
    let (best, tile) = if f4 < f2 { (f4, Tile::F4) } else { (f2, Tile::F2) };
    (best < direct).then_some(tile)
}

/// A convolution with fixed weights, read out of its module once (see the module's notes).
#[derive(Debug, Clone)]
pub struct PreparedConv {
    weight: Vec<f32>,
    wshape: [usize; 4],
    bias: Option<Vec<f32>>,
    stride: [usize; 2],
    padding: [(usize, usize); 2],
    /// The transformed weights for the map size given at preparation, if Winograd serves it.
    winograd: Option<PreparedWeights>,
}

impl PreparedConv {
    /// `bn(conv(x))` (or `conv(x)` without `bn`) for `b` input maps of `input_hw`, with the
    /// norm folded in (in f64, rounded once). None where the convolution is grouped or dilated,
    /// uses burn's `Same` padding, or a parameter is not f32.
    pub fn new(
        conv: &Conv2d,
        bn: Option<&BatchNorm>,
        b: usize,
        input_hw: [usize; 2],
    ) -> Option<PreparedConv> {
        let padding = match conv.padding {
            PaddingConfig2d::Valid => [(0, 0), (0, 0)],
            PaddingConfig2d::Explicit(top, left, bottom, right) => [(top, bottom), (left, right)],
            _ => return None,
        };
        if conv.groups != 1 || conv.dilation != [1, 1] {
            return None;
        }
        let wshape = conv.weight.dims();
        let o = wshape[0];
        let mut weight = f32_values(&conv.weight.val())?;
        let mut bias = match &conv.bias {
            Some(b) => Some(f32_values(&b.val())?),
            None => None,
        };
        if let Some(bn) = bn {
            let (scale, shift) = bn_f64(bn)?;
            if scale.len() != o {
                return None;
            }
            let per_out = weight.len() / o.max(1);
            for (chunk, s) in weight.chunks_mut(per_out.max(1)).zip(&scale) {
                chunk.iter_mut().for_each(|w| *w = (*w as f64 * s) as f32);
            }
            let folded = (0..o)
                .map(|i| (bias.as_ref().map_or(0.0, |b| b[i] as f64) * scale[i] + shift[i]) as f32)
                .collect();
            bias = Some(folded);
        }
        Some(PreparedConv::from_parts(
            weight,
            wshape,
            bias,
            conv.stride,
            padding,
            b,
            input_hw,
        ))
    }

    /// A convolution of `weight` `[O, C, kh, kw]` and `bias` `[O]`, with `padding` `[(top,
    /// bottom), (left, right)]`, prepared for `b` input maps of `input_hw`.
    pub fn from_parts(
        weight: Vec<f32>,
        wshape: [usize; 4],
        bias: Option<Vec<f32>>,
        stride: [usize; 2],
        padding: [(usize, usize); 2],
        b: usize,
        input_hw: [usize; 2],
    ) -> PreparedConv {
        let [o, c, kh, kw] = wshape;
        assert_eq!(weight.len(), o * c * kh * kw, "prepared conv: weight length");
        if let Some(bias) = &bias {
            assert_eq!(bias.len(), o, "prepared conv: bias length");
        }
        let (oh, ow) = out_hw(input_hw, (kh, kw), stride, padding);
        let winograd = winograd_tile((c, o), (kh, kw), stride, (b, oh, ow))
            .map(|tile| PreparedWeights::new(&weight, wshape, tile));
        PreparedConv {
            weight,
            wshape,
            bias,
            stride,
            padding,
            winograd,
        }
    }

    /// The tile of the prepared Winograd weights, if any.
    pub fn tile(&self) -> Option<Tile> {
        self.winograd.as_ref().map(PreparedWeights::tile)
    }

    /// The convolution of `x` `[B, C, H, W]` on host slices: Winograd with the prepared weights
    /// where [`winograd_tile`] picks their tile for this input, else `cpu_conv::conv2d_f32`.
    pub fn forward_f32(&self, x: &[f32], shape: [usize; 4]) -> (Vec<f32>, [usize; 4]) {
        let [b, c, h, w] = shape;
        let [o, _, kh, kw] = self.wshape;
        let (oh, ow) = out_hw([h, w], (kh, kw), self.stride, self.padding);
        let tile = winograd_tile((c, o), (kh, kw), self.stride, (b, oh, ow));
        match &self.winograd {
            Some(prepared) if tile == Some(prepared.tile()) => {
                cpu_winograd::conv2d_prepared(x, shape, prepared, self.bias.as_deref(), self.padding)
            }
            _ => cpu_conv::conv2d_f32(
                x,
                shape,
                &self.weight,
                self.wshape,
                self.bias.as_deref(),
                self.stride,
                self.padding,
            ),
        }
    }

    /// The convolution of a tensor: on the host where `cpu_conv`'s kernels apply, else burn's
    /// `conv2d` with the prepared weights.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [_, c, h, w] = x.dims();
        let [o, _, kh, kw] = self.wshape;
        let (stride, tile) = (self.stride[0], self.tile());
        profile::scope(
            "conv2d",
            move || {
                let how = match tile {
                    Some(Tile::F2) => " prepared F2",
                    Some(_) => " prepared F4",
                    None => " prepared",
                };
                format!("{c}->{o} {kh}x{kw}/{stride} @{h}x{w}{how}")
            },
            || {
                cpu_conv::on_host_unary(
                    x,
                    |xs, shape| self.forward_f32(xs, shape),
                    |x| {
                        let device = x.device();
                        let weight =
                            Tensor::from_data(TensorData::new(self.weight.clone(), self.wshape), &device);
                        let bias = self
                            .bias
                            .as_ref()
                            .map(|b| Tensor::from_data(TensorData::new(b.clone(), [b.len()]), &device));
                        let options = ConvOptions::new_with_padding(self.stride, self.padding, [1, 1], 1);
                        burn_conv2d(x, weight, bias, options)
                    },
                )
            },
        )
    }
}

/// Output side of a convolution (no dilation), as `cpu_conv` computes it.
fn out_hw(
    [h, w]: [usize; 2],
    (kh, kw): (usize, usize),
    stride: [usize; 2],
    padding: [(usize, usize); 2],
) -> (usize, usize) {
    let side =
        |n: usize, k: usize, s: usize, p: (usize, usize)| (n + p.0 + p.1).saturating_sub(k) / s.max(1) + 1;
    (
        side(h, kh, stride[0], padding[0]),
        side(w, kw, stride[1], padding[1]),
    )
}

/// The values of an f32 tensor (None for another dtype).
fn f32_values<const D: usize>(t: &Tensor<D>) -> Option<Vec<f32>> {
    (t.dtype() == burn::tensor::DType::F32).then(|| read_f32(t, |v| v.to_vec()))
}

/// An eval batch norm's `(scale, shift)` in f64: `y = x·scale + shift`.
fn bn_f64(bn: &BatchNorm) -> Option<(Vec<f64>, Vec<f64>)> {
    let gamma = f32_values(&bn.gamma.val())?;
    let beta = f32_values(&bn.beta.val())?;
    let mean = f32_values(&bn.running_mean.value())?;
    let var = f32_values(&bn.running_var.value())?;
    let n = gamma.len();
    if beta.len() != n || mean.len() != n || var.len() != n {
        return None;
    }
    let scale: Vec<f64> = gamma
        .iter()
        .zip(&var)
        .map(|(&g, &v)| g as f64 / (v as f64 + bn.epsilon).sqrt())
        .collect();
    let shift = (0..n)
        .map(|i| beta[i] as f64 - mean[i] as f64 * scale[i])
        .collect();
    Some((scale, shift))
}

#[cfg(test)]
#[path = "cpu_conv_prepared_tests.rs"]
mod tests;
