//! `upfirdn2d` (zero-insertion upsampling, padding, FIR filter, decimation) for separable kernels.
//!
//! The reference's CPU fallback filters one channel at a time and spends 38-53 % of StyleGAN2's
//! and GPEN's time there. Here the filter is one depthwise convolution over all channels
//! (`groups = C`) with the padding folded into the convolution and the decimation into its
//! stride, so no padded copy and no per-channel loop exist.

use burn::tensor::ops::ConvOptions;
use burn::tensor::{Tensor, TensorData};

use rayon::prelude::*;

use crate::nets::cpu_conv::{conv2d, on_host_unary};
use crate::nets::profile;

/// Padding before and after, on both spatial axes (negative values crop), as in
/// `upfirdn2d(..., pad=(pad0, pad1))`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pad(pub isize, pub isize);

/// `upfirdn2d(x, outer(taps, taps), up, down, pad)` with a true convolution (the taps are
/// flipped). `taps` already carry any gain (rosinality multiplies the 2-D kernel by `up²`,
/// i.e. each 1-D tap by `up`).
pub fn upfirdn2d(x: Tensor<4>, taps: &[f32], up: usize, down: usize, pad: Pad) -> Tensor<4> {
    let dims = x.dims();
    let k = taps.len();
    profile::scope(
        "upfirdn2d",
        move || format!("{} up {up} down {down} k{k}", profile::shape4(dims)),
        || upfirdn2d_inner(x, taps, up, down, pad),
    )
}

fn upfirdn2d_inner(x: Tensor<4>, taps: &[f32], up: usize, down: usize, pad: Pad) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    let x = if up > 1 {
        // Each sample is followed by up−1 zeros on both axes, as in upfirdn2d_native.
        x.reshape([b, c, h, 1, w, 1])
            .pad([(0, up - 1), (0, 0), (0, up - 1)], 0.0)
            .reshape([b, c, h * up, w * up])
    } else {
        x
    };
    let x = crop_negative(x, pad);
    let (p0, p1) = (pad.0.max(0) as usize, pad.1.max(0) as usize);
    let k = taps.len();
    let flipped: Vec<f32> = taps.iter().rev().copied().collect();
    let kernel2d: Vec<f32> = flipped
        .iter()
        .flat_map(|&a| flipped.iter().map(move |&b| a * b))
        .collect();
    let burn_blur = |x: Tensor<4>| {
        let device = x.device();
        let weight: Tensor<4> = Tensor::from_data(TensorData::new(kernel2d, [1, 1, k, k]), &device);
        let weight = weight.expand([c, 1, k, k]);
        let options = ConvOptions {
            stride: [down, down],
            padding: [(p0, p1), (p0, p1)],
            dilation: [1, 1],
            groups: c,
        };
        conv2d(x, weight, None, options)
    };
    on_host_unary(
        x,
        |xs, shape| blur_separable_f32(xs, shape, &flipped, down, (p0, p1)),
        burn_blur,
    )
}

/// The depthwise filter `outer(f, f)` (cross-correlation, zero padding `(p0, p1)` on both
/// axes, stride `down`) on every `[H, W]` plane of `x`, as a horizontal then a vertical 1-D
/// pass: 2k multiply-adds per output pixel instead of k², and loops over whole rows that the
/// compiler vectorises. burn's flex runs the same filter as a depthwise k×k convolution at
/// 1-2 GFLOP/s (`benches/RESULTS.md`).
pub fn blur_separable_f32(
    x: &[f32],
    [b, c, h, w]: [usize; 4],
    f: &[f32],
    down: usize,
    (p0, p1): (usize, usize),
) -> (Vec<f32>, [usize; 4]) {
    let k = f.len();
    let out_len = |n: usize| (n + p0 + p1).checked_sub(k).map_or(0, |span| span / down + 1);
    let (oh, ow) = (out_len(h), out_len(w));
    let mut out = vec![0.0f32; b * c * oh * ow];
    if oh == 0 || ow == 0 || h == 0 || w == 0 {
        return (out, [b, c, oh, ow]);
    }
    out.par_chunks_mut(oh * ow)
        .zip(x.par_chunks(h * w))
        .for_each(|(dst, src)| {
            // Horizontal pass into `rows` [h, ow], through one zero-padded input row.
            let mut padded = vec![0.0f32; w + p0 + p1];
            let mut rows = vec![0.0f32; h * ow];
            for (y, acc) in rows.chunks_exact_mut(ow).enumerate() {
                padded[p0..p0 + w].copy_from_slice(&src[y * w..(y + 1) * w]);
                for (j, &t) in f.iter().enumerate() {
                    if down == 1 {
                        for (a, &v) in acc.iter_mut().zip(&padded[j..j + ow]) {
                            *a += t * v;
                        }
                    } else {
                        for (a, &v) in acc.iter_mut().zip(padded[j..].iter().step_by(down)) {
                            *a += t * v;
                        }
                    }
                }
            }
            // Vertical pass: output row oy sums input rows oy·down + i − p0 (zero outside).
            for (oy, acc) in dst.chunks_exact_mut(ow).enumerate() {
                for (i, &t) in f.iter().enumerate() {
                    let iy = (oy * down + i) as isize - p0 as isize;
                    if iy < 0 || iy >= h as isize {
                        continue;
                    }
                    let iy = iy as usize;
                    for (a, &v) in acc.iter_mut().zip(&rows[iy * ow..(iy + 1) * ow]) {
                        *a += t * v;
                    }
                }
            }
        });
    (out, [b, c, oh, ow])
}

/// Applies the negative parts of `pad` as crops (the positive parts go into the convolution).
fn crop_negative(x: Tensor<4>, pad: Pad) -> Tensor<4> {
    if pad.0 >= 0 && pad.1 >= 0 {
        return x;
    }
    let [_, _, h, w] = x.dims();
    let begin = (-pad.0).max(0) as usize;
    let end_cut = (-pad.1).max(0) as usize;
    x.narrow(2, begin, h.saturating_sub(begin + end_cut))
        .narrow(3, begin, w.saturating_sub(begin + end_cut))
}

/// Python's floor division, which rosinality's pad formulas rely on for negative values.
fn floor_div(a: isize, b: isize) -> isize {
    a.div_euclid(b)
}

/// Pads of the blur after a stride-`factor` transposed conv of side `kernel_size`
/// (`ModulatedConv2d(upsample=True)`): `(1, 1)` for a 3×3 conv and 4 taps.
pub fn upconv_blur_pad(taps: usize, kernel_size: usize, factor: usize) -> Pad {
    let p = (taps as isize - factor as isize) - (kernel_size as isize - 1);
    Pad(floor_div(p + 1, 2) + factor as isize - 1, floor_div(p, 2) + 1)
}

/// Pads of `Upsample(kernel, factor)` (the ToRGB skip path): `(2, 1)` for 4 taps.
pub fn upsample_pad(taps: usize, factor: usize) -> Pad {
    let p = taps as isize - factor as isize;
    Pad(floor_div(p + 1, 2) + factor as isize - 1, floor_div(p, 2))
}

/// Pads of the blur before a stride-`factor` conv (`ConvLayer(downsample=True)`): `(2, 2)` for
/// a 3×3 conv and 4 taps.
pub fn downsample_blur_pad(taps: usize, kernel_size: usize, factor: usize) -> Pad {
    let p = (taps as isize - factor as isize) + (kernel_size as isize - 1);
    Pad(floor_div(p + 1, 2), floor_div(p, 2))
}

/// The taps times a gain (e.g. `factor` per axis for the upsampling blurs).
pub fn scaled(taps: &[f32], gain: f32) -> Vec<f32> {
    taps.iter().map(|t| t * gain).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    /// Direct transcription of upfirdn2d_native for one channel, for comparison.
    fn reference(x: &[f32], h: usize, w: usize, taps: &[f32], up: usize, down: usize, pad: Pad) -> Vec<f32> {
        let (uh, uw) = (h * up, w * up);
        let mut upx = vec![0.0f32; uh * uw];
        for i in 0..h {
            for j in 0..w {
                upx[i * up * uw + j * up] = x[i * w + j];
            }
        }
        let (ph, pw) = (
            (uh as isize + pad.0 + pad.1) as usize,
            (uw as isize + pad.0 + pad.1) as usize,
        );
        let at = |i: isize, j: isize| -> f32 {
            let (si, sj) = (i - pad.0, j - pad.0);
            if si < 0 || sj < 0 || si >= uh as isize || sj >= uw as isize {
                0.0
            } else {
                upx[si as usize * uw + sj as usize]
            }
        };
        let k = taps.len();
        let (oh, ow) = ((ph - k) / down + 1, (pw - k) / down + 1);
        let mut out = vec![0.0f32; oh * ow];
        for oi in 0..oh {
            for oj in 0..ow {
                let mut acc = 0.0;
                for a in 0..k {
                    for b in 0..k {
                        // true convolution: kernel flipped
                        acc += taps[k - 1 - a]
                            * taps[k - 1 - b]
                            * at((oi * down + a) as isize, (oj * down + b) as isize);
                    }
                }
                out[oi * ow + oj] = acc;
            }
        }
        out
    }

    fn check(up: usize, down: usize, pad: Pad, taps: &[f32]) {
        let device = Device::flex();
        let (h, w) = (5, 6);
        let data: Vec<f32> = (0..2 * h * w).map(|i| ((i * 37 % 11) as f32) - 5.0).collect();
        let x = Tensor::<4>::from_data(TensorData::new(data.clone(), [1, 2, h, w]), &device);
        let got = upfirdn2d(x, taps, up, down, pad);
        let dims = got.dims();
        let got = got.into_data().try_into_vec_as::<f32>().unwrap_or_default();
        for ch in 0..2 {
            let want = reference(&data[ch * h * w..(ch + 1) * h * w], h, w, taps, up, down, pad);
            let plane = dims[2] * dims[3];
            assert_eq!(plane, want.len(), "up {up} down {down} pad {pad:?}");
            for (g, wv) in got[ch * plane..(ch + 1) * plane].iter().zip(&want) {
                assert!(
                    (g - wv).abs() < 1e-4,
                    "up {up} down {down} pad {pad:?}: {g} vs {wv}"
                );
            }
        }
    }

    #[test]
    fn matches_the_native_definition() {
        // An asymmetric kernel proves the flip.
        let taps = [0.1f32, 0.5, 0.3, 0.2];
        check(1, 1, Pad(1, 1), &taps);
        check(2, 1, Pad(2, 1), &taps);
        check(1, 2, Pad(2, 2), &taps);
        check(2, 1, Pad(-1, 2), &taps);
        // Decimation and a pad larger than the kernel overhang.
        check(1, 2, Pad(1, 1), &taps);
        check(1, 1, Pad(3, 0), &taps);
    }

    #[test]
    fn pads_follow_rosinality() {
        assert_eq!(upconv_blur_pad(4, 3, 2), Pad(1, 1));
        assert_eq!(upsample_pad(4, 2), Pad(2, 1));
        assert_eq!(downsample_blur_pad(4, 3, 2), Pad(2, 2));
    }
}
