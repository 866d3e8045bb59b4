//! PNet on host memory, for the flex CPU backend.
//!
//! On a large photo PNet runs over pyramid levels of millions of pixels with 3 to 32 channels.
//! burn's flex convolution turns each layer into im2col + gemm over products whose inner size is
//! 27 to 144 and whose output has 10 to 32 columns, and writes every intermediate map whole (the
//! 32-channel features alone are 275 MB on the first level of a 6000×4000 photo). Here each 3×3
//! layer is a direct convolution that computes a band of output channels over eight neighbouring
//! output pixels at once (the input row segment loaded once per tap, one weight broadcast per
//! channel), rows in parallel on rayon, with the PReLU and the 2×2 ceil-mode pool fused after
//! conv1 and the two 1×1 heads and the softmax fused after conv3, so the features are never
//! stored. The result is PNet's up to the order of float additions (the tests compare it with
//! burn's).

use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::{Device, Tensor};
use rayon::prelude::*;

use super::common::PRelu;
use super::kernel_switch::KernelSwitch;
use super::mtcnn::{PNet, pnet_grid};

/// Output pixels of one register tile: one AVX2 vector (two SSE vectors).
const XB: usize = 8;

/// Whether the detector takes this path on the CPU.
static SWITCH: KernelSwitch = KernelSwitch::on();

pub fn set_enabled(on: bool) {
    SWITCH.set(on);
}

/// Whether the detector should run PNet here on `device`: the flex CPU backend, not under
/// autodiff (a host result would cut a training graph; detection never trains, but the rule is
/// the one of the other host kernels).
pub fn applies(device: &Device) -> bool {
    SWITCH.enabled() && *device == Device::flex() && !device.is_autodiff()
}

#[derive(Debug, thiserror::Error)]
pub enum PNetHostError {
    #[error("PNet's {what} could not be read from the device: {reason}")]
    Read { what: &'static str, reason: String },
    #[error("PNet's {what} has the shape {dims:?}, not {want}")]
    Shape {
        what: &'static str,
        dims: Vec<usize>,
        want: &'static str,
    },
    #[error("a PNet input must be at least 12×12 with 3 channels, got {channels}×{height}×{width}")]
    Input {
        channels: usize,
        height: usize,
        width: usize,
    },
}

fn values<const D: usize>(t: Tensor<D>, what: &'static str) -> Result<Vec<f32>, PNetHostError> {
    t.into_data()
        .try_to_vec::<f32>()
        .map_err(|e| PNetHostError::Read {
            what,
            reason: format!("{e:?}"),
        })
}

/// A dense 3×3 stride-1 unpadded convolution, its weights packed for [`Conv3x3::row`].
struct Conv3x3 {
    c_in: usize,
    c_out: usize,
    /// Output channels per pass (a divisor of `c_out`).
    ob: usize,
    /// Per band of `ob` output channels: `[c][ky][kx][ob]`, so a tap's weights are adjacent.
    packed: Vec<f32>,
    /// `[o][c][ky][kx]`, for maps narrower than a tile.
    plain: Vec<f32>,
    bias: Vec<f32>,
}

impl Conv3x3 {
    fn new(conv: &Conv2d, ob: usize, what: &'static str) -> Result<Conv3x3, PNetHostError> {
        let dims = conv.weight.val().dims();
        let [c_out, c_in, kh, kw] = dims;
        let valid = (kh, kw) == (3, 3)
            && c_out % ob == 0
            && conv.stride == [1, 1]
            && conv.dilation == [1, 1]
            && conv.groups == 1
            && matches!(conv.padding, PaddingConfig2d::Valid);
        if !valid {
            return Err(PNetHostError::Shape {
                what,
                dims: dims.to_vec(),
                want: "a dense unpadded 3×3 stride-1 convolution",
            });
        }
        let plain = values(conv.weight.val(), what)?;
        let bias = match &conv.bias {
            Some(b) => values(b.val(), what)?,
            None => vec![0.0; c_out],
        };
        let mut packed = vec![0.0f32; plain.len()];
        for o in 0..c_out {
            let (band, ob_i) = (o / ob, o % ob);
            for tap in 0..c_in * 9 {
                packed[(band * c_in * 9 + tap) * ob + ob_i] = plain[o * c_in * 9 + tap];
            }
        }
        Ok(Conv3x3 {
            c_in,
            c_out,
            ob,
            packed,
            plain,
            bias,
        })
    }

    /// One output row of every output channel, `w_out` wide, into `out` as `[o][x]`.
    /// `src` holds the input with channel stride `cs` and row stride `rs`; `at` indexes its
    /// channel 0 at the first input row and column the output row reads.
    ///
    /// The row is computed twice over, for the baseline x86-64 (SSE2) and for AVX2, and chosen at
    /// run time; both round alike (no fused multiply-add is formed from separate `*` and `+`).
    fn row<const OB: usize>(
        &self,
        src: &[f32],
        at: usize,
        [cs, rs]: [usize; 2],
        w_out: usize,
        out: &mut [f32],
    ) {
        debug_assert_eq!(OB, self.ob);
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            unsafe { self.row_avx2::<OB>(src, at, [cs, rs], w_out, out) };
            return;
        }
        self.row_impl::<OB>(src, at, [cs, rs], w_out, out);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn row_avx2<const OB: usize>(
        &self,
        src: &[f32],
        at: usize,
        strides: [usize; 2],
        w_out: usize,
        out: &mut [f32],
    ) {
        self.row_impl::<OB>(src, at, strides, w_out, out);
    }

    #[inline(always)]
    fn row_impl<const OB: usize>(
        &self,
        src: &[f32],
        at: usize,
        strides: [usize; 2],
        w_out: usize,
        out: &mut [f32],
    ) {
        if w_out < XB {
            self.row_narrow(src, at, strides, w_out, out);
            return;
        }
        let band_len = self.c_in * 9 * OB;
        for (band, weights) in self.packed.chunks_exact(band_len).enumerate() {
            let bias: [f32; OB] = std::array::from_fn(|i| self.bias[band * OB + i]);
            let mut x0 = 0;
            loop {
                // The last tile overlaps the one before it rather than running past the row.
                let x = x0.min(w_out - XB);
                let acc = tile::<OB>(src, at + x, strides, self.c_in, weights, bias);
                for (i, lanes) in acc.iter().enumerate() {
                    let o = band * OB + i;
                    out[o * w_out + x..o * w_out + x + XB].copy_from_slice(lanes);
                }
                if x + XB >= w_out {
                    break;
                }
                x0 += XB;
            }
        }
    }

    /// The same row one pixel at a time, for maps narrower than a tile.
    fn row_narrow(&self, src: &[f32], at: usize, [cs, rs]: [usize; 2], w_out: usize, out: &mut [f32]) {
        for o in 0..self.c_out {
            let weights = &self.plain[o * self.c_in * 9..(o + 1) * self.c_in * 9];
            for x in 0..w_out {
                let mut sum = self.bias[o];
                for c in 0..self.c_in {
                    for ky in 0..3 {
                        for kx in 0..3 {
                            sum += weights[(c * 3 + ky) * 3 + kx] * src[at + c * cs + ky * rs + x + kx];
                        }
                    }
                }
                out[o * w_out + x] = sum;
            }
        }
    }
}

/// `OB` output channels at `XB` neighbouring pixels, bias first, then every tap in turn.
#[inline(always)]
fn tile<const OB: usize>(
    src: &[f32],
    at: usize,
    [cs, rs]: [usize; 2],
    c_in: usize,
    weights: &[f32],
    bias: [f32; OB],
) -> [[f32; XB]; OB] {
    let mut acc: [[f32; XB]; OB] = bias.map(|b| [b; XB]);
    for c in 0..c_in {
        for ky in 0..3 {
            let base = at + c * cs + ky * rs;
            let row = &src[base..base + XB + 2];
            let taps = &weights[(c * 3 + ky) * 3 * OB..(c * 3 + ky + 1) * 3 * OB];
            for kx in 0..3 {
                let mut v = [0.0f32; XB];
                v.copy_from_slice(&row[kx..kx + XB]);
                for (lanes, &w) in acc.iter_mut().zip(&taps[kx * OB..(kx + 1) * OB]) {
                    for (a, &x) in lanes.iter_mut().zip(&v) {
                        *a += w * x;
                    }
                }
            }
        }
    }
    acc
}

/// PReLU on a `[o][x]` row, one slope per output channel.
fn prelu(row: &mut [f32], slopes: &[f32], width: usize) {
    for (chunk, &a) in row.chunks_exact_mut(width).zip(slopes) {
        for v in chunk {
            if *v < 0.0 {
                *v *= a;
            }
        }
    }
}

/// PNet's outputs over one pyramid level, on the host.
#[derive(Debug, Clone, PartialEq)]
pub struct PNetMaps {
    /// The output grid (see [`pnet_grid`]).
    pub height: usize,
    pub width: usize,
    /// `(height, width)`: the face probability (softmax channel 1).
    pub prob: Vec<f32>,
    /// `(height, 4, width)`: the box offsets, row by row.
    pub reg: Vec<f32>,
}

impl PNetMaps {
    /// The four box offsets at grid cell `(y, x)`.
    pub fn offsets(&self, y: usize, x: usize) -> [f32; 4] {
        std::array::from_fn(|k| self.reg[(y * 4 + k) * self.width + x])
    }
}

/// PNet's weights on the host, packed for the kernels of this module.
pub struct PNetHost {
    conv1: Conv3x3,
    slopes1: Vec<f32>,
    conv2: Conv3x3,
    slopes2: Vec<f32>,
    conv3: Conv3x3,
    slopes3: Vec<f32>,
    /// The 1×1 heads as one `(6, features)` matrix: two logits, then four offsets.
    head_w: Vec<f32>,
    head_b: Vec<f32>,
}

/// Output channels per pass of conv1 (10 channels) and of conv2 and conv3 (16 and 32).
const OB1: usize = 5;
const OB23: usize = 8;

impl PNetHost {
    pub fn new(pnet: &PNet) -> Result<PNetHost, PNetHostError> {
        let conv1 = Conv3x3::new(&pnet.conv1, OB1, "conv1")?;
        let conv2 = Conv3x3::new(&pnet.conv2, OB23, "conv2")?;
        let conv3 = Conv3x3::new(&pnet.conv3, OB23, "conv3")?;
        let chained = conv1.c_in == 3 && conv2.c_in == conv1.c_out && conv3.c_in == conv2.c_out;
        if !chained {
            return Err(PNetHostError::Shape {
                what: "convolution stack",
                dims: vec![conv1.c_in, conv1.c_out, conv2.c_out, conv3.c_out],
                want: "3 input channels, each layer reading the one before",
            });
        }
        let slopes = |p: &PRelu, channels: usize, what: &'static str| -> Result<Vec<f32>, PNetHostError> {
            let v = values(p.weight.val(), what)?;
            if v.len() == channels {
                Ok(v)
            } else {
                Err(PNetHostError::Shape {
                    what,
                    dims: vec![v.len()],
                    want: "one slope per channel",
                })
            }
        };
        let mut head_w = Vec::new();
        let mut head_b = Vec::new();
        for (conv, outs, what) in [(&pnet.conv4_1, 2, "conv4_1"), (&pnet.conv4_2, 4, "conv4_2")] {
            let dims = conv.weight.val().dims();
            if dims != [outs, conv3.c_out, 1, 1] {
                return Err(PNetHostError::Shape {
                    what,
                    dims: dims.to_vec(),
                    want: "a 1×1 convolution of conv3's features",
                });
            }
            head_w.extend(values(conv.weight.val(), what)?);
            match &conv.bias {
                Some(b) => head_b.extend(values(b.val(), what)?),
                None => head_b.extend(std::iter::repeat_n(0.0, outs)),
            }
        }
        Ok(PNetHost {
            slopes1: slopes(&pnet.prelu1, conv1.c_out, "prelu1")?,
            slopes2: slopes(&pnet.prelu2, conv2.c_out, "prelu2")?,
            slopes3: slopes(&pnet.prelu3, conv3.c_out, "prelu3")?,
            conv1,
            conv2,
            conv3,
            head_w,
            head_b,
        })
    }

    /// PNet on one normalised `(3, height, width)` image (planar RGB).
    pub fn forward(
        &self,
        input: &[f32],
        [channels, height, width]: [usize; 3],
    ) -> Result<PNetMaps, PNetHostError> {
        if channels != 3 || height < 12 || width < 12 || input.len() != 3 * height * width {
            return Err(PNetHostError::Input {
                channels,
                height,
                width,
            });
        }
        let (pooled, ph, pw) = self.conv1_pool(input, height, width);
        let (hidden, h2, w2) = self.conv2(&pooled, ph, pw);
        let (gh, gw) = pnet_grid(height, width);
        debug_assert_eq!((gh, gw), (h2 - 2, w2 - 2));
        Ok(self.conv3_heads(&hidden, w2, gh, gw))
    }

    /// conv1, PReLU and the 2×2 ceil-mode max pool; the result is `(ph, 10, pw)`, row by row.
    fn conv1_pool(&self, input: &[f32], h: usize, w: usize) -> (Vec<f32>, usize, usize) {
        let c = self.conv1.c_out;
        let (h1, w1) = (h - 2, w - 2);
        let (ph, pw) = (h1.div_ceil(2), w1.div_ceil(2));
        let mut pooled = vec![0.0f32; ph * c * pw];
        pooled.par_chunks_mut(c * pw).enumerate().for_each_init(
            || vec![0.0f32; 2 * c * w1],
            |buf, (py, out)| {
                let (top, bottom) = buf.split_at_mut(c * w1);
                let y = 2 * py;
                self.conv1.row::<OB1>(input, y * w, [h * w, w], w1, top);
                prelu(top, &self.slopes1, w1);
                // A ceil-mode window that overhangs the last row or column pools what it covers.
                if y + 1 < h1 {
                    self.conv1.row::<OB1>(input, (y + 1) * w, [h * w, w], w1, bottom);
                    prelu(bottom, &self.slopes1, w1);
                    for (t, &b) in top.iter_mut().zip(bottom.iter()) {
                        *t = t.max(b);
                    }
                }
                for (row, pooled_row) in top.chunks_exact(w1).zip(out.chunks_exact_mut(pw)) {
                    for (px, p) in pooled_row.iter_mut().enumerate() {
                        let x = 2 * px;
                        *p = if x + 1 < w1 {
                            row[x].max(row[x + 1])
                        } else {
                            row[x]
                        };
                    }
                }
            },
        );
        (pooled, ph, pw)
    }

    /// conv2 and PReLU over the pooled map; the result is `(h2, 16, w2)`, row by row.
    fn conv2(&self, pooled: &[f32], ph: usize, pw: usize) -> (Vec<f32>, usize, usize) {
        let (c_in, c) = (self.conv2.c_in, self.conv2.c_out);
        let (h2, w2) = (ph - 2, pw - 2);
        let mut hidden = vec![0.0f32; h2 * c * w2];
        hidden.par_chunks_mut(c * w2).enumerate().for_each(|(y, out)| {
            self.conv2
                .row::<OB23>(pooled, y * c_in * pw, [pw, c_in * pw], w2, out);
            prelu(out, &self.slopes2, w2);
        });
        (hidden, h2, w2)
    }

    /// conv3, PReLU, both 1×1 heads and the two-way softmax, row by row.
    fn conv3_heads(&self, hidden: &[f32], w2: usize, gh: usize, gw: usize) -> PNetMaps {
        let (c_in, c) = (self.conv3.c_in, self.conv3.c_out);
        let heads = self.head_b.len();
        let mut prob = vec![0.0f32; gh * gw];
        let mut reg = vec![0.0f32; gh * 4 * gw];
        prob.par_chunks_mut(gw)
            .zip(reg.par_chunks_mut(4 * gw))
            .enumerate()
            .for_each_init(
                || (vec![0.0f32; c * gw], vec![0.0f32; heads * gw]),
                |(features, out), (y, (prob_row, reg_row))| {
                    self.conv3
                        .row::<OB23>(hidden, y * c_in * w2, [w2, c_in * w2], gw, features);
                    prelu(features, &self.slopes3, gw);
                    for (k, head_row) in out.chunks_exact_mut(gw).enumerate() {
                        head_row.fill(self.head_b[k]);
                        let weights = &self.head_w[k * c..(k + 1) * c];
                        for (feature_row, &wk) in features.chunks_exact(gw).zip(weights) {
                            for (h, &f) in head_row.iter_mut().zip(feature_row) {
                                *h += wk * f;
                            }
                        }
                    }
                    let (logits, offsets) = out.split_at(2 * gw);
                    let (background, face) = logits.split_at(gw);
                    for ((p, &b), &f) in prob_row.iter_mut().zip(background).zip(face) {
                        let m = b.max(f);
                        let (eb, ef) = ((b - m).exp(), (f - m).exp());
                        *p = ef / (eb + ef);
                    }
                    reg_row.copy_from_slice(offsets);
                },
            );
        PNetMaps {
            height: gh,
            width: gw,
            prob,
            reg,
        }
    }
}

#[cfg(test)]
#[path = "pnet_host_tests.rs"]
mod tests;
