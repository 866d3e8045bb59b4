//! Transposed 2-D convolution on host slices: one `gemm` per band of input rows giving every
//! output tap of every input pixel, `cols = Wᵀ · x`, then a scatter-add of those taps into the
//! output (col2im), in parallel over output channels.
//!
//! burn 0.22's flex runs StyleGAN2's stride-2 upsampling convolutions at a few GFLOP/s (a quarter
//! of StyleGAN2-256's time in `bench_nets --profile`); here the arithmetic is one large product
//! and the scatter is a memory pass over the patches. Called by
//! [`super::cpu_conv::conv_transpose2d`] for dense, undilated f32 convolutions.

use rayon::prelude::*;

/// Patches per band: `cols` holds about this many floats (16 MiB), whatever the channels.
const BAND_ELEMS: usize = 1 << 22;

/// `x` `[B, C, H, W]`, `weight` `[C, O, kh, kw]` (PyTorch's layout), `bias` `[O]`; returns the
/// output `[B, O, (H−1)·sh + kh − 2·ph + oph, …]` and its shape.
#[allow(clippy::too_many_arguments)]
pub fn conv_transpose2d_f32(
    x: &[f32],
    [b, c, h, w]: [usize; 4],
    weight: &[f32],
    [wc, o, kh, kw]: [usize; 4],
    bias: Option<&[f32]>,
    [sh, sw]: [usize; 2],
    [ph, pw]: [usize; 2],
    [oph, opw]: [usize; 2],
) -> (Vec<f32>, [usize; 4]) {
    assert_eq!(c, wc, "conv_transpose2d: input has {c} channels, the weight {wc}");
    assert_eq!(x.len(), b * c * h * w, "conv_transpose2d: input length");
    assert_eq!(weight.len(), c * o * kh * kw, "conv_transpose2d: weight length");
    let oh = ((h.max(1) - 1) * sh + kh + oph).saturating_sub(2 * ph);
    let ow = ((w.max(1) - 1) * sw + kw + opw).saturating_sub(2 * pw);
    let plane = oh * ow;
    let mut out = vec![0.0f32; b * o * plane];
    if let Some(bias) = bias {
        assert_eq!(bias.len(), o, "conv_transpose2d: bias length");
        for (chunk, &v) in out.chunks_mut(plane.max(1)).zip(bias.iter().cycle()) {
            chunk.fill(v);
        }
    }
    if plane == 0 || h == 0 || w == 0 || o == 0 {
        return (out, [b, o, oh, ow]);
    }
    let m = o * kh * kw;
    let rows = (BAND_ELEMS / (m * w).max(1)).clamp(1, h);
    let mut cols = vec![0.0f32; m * rows * w];
    let threads = rayon::current_num_threads();
    let parallelism = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    for img in 0..b {
        let xi = &x[img * c * h * w..(img + 1) * c * h * w];
        let out_img = &mut out[img * o * plane..(img + 1) * o * plane];
        let mut r0 = 0;
        while r0 < h {
            let r1 = (r0 + rows).min(h);
            let n = (r1 - r0) * w;
            let cols = &mut cols[..m * n];
            // SAFETY: cols is [m, n] row-major; Wᵀ reads weight [c, m] with strides (1, m); the
            // input band is rows r0..r1 of every channel, [c, n] with strides (h·w, 1).
            unsafe {
                gemm::gemm(
                    m,
                    n,
                    c,
                    cols.as_mut_ptr(),
                    1,
                    n as isize,
                    false,
                    weight.as_ptr(),
                    m as isize,
                    1,
                    xi.as_ptr().add(r0 * w),
                    1,
                    (h * w) as isize,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    parallelism,
                );
            }
            let cols: &[f32] = cols;
            let scatter = Scatter {
                w,
                kh,
                kw,
                oh,
                ow,
                stride: [sh, sw],
                pad: [ph, pw],
            };
            out_img.par_chunks_mut(plane).enumerate().for_each(|(co, dst)| {
                scatter.add(&cols[co * kh * kw * n..(co + 1) * kh * kw * n], r0, r1, dst)
            });
            r0 = r1;
        }
    }
    (out, [b, o, oh, ow])
}

/// The col2im of one output channel.
#[derive(Clone, Copy)]
struct Scatter {
    w: usize,
    kh: usize,
    kw: usize,
    oh: usize,
    ow: usize,
    stride: [usize; 2],
    pad: [usize; 2],
}

impl Scatter {
    /// Adds the taps `cols` `[kh·kw, (r1−r0)·w]` of input rows `r0..r1` into the plane `dst`.
    fn add(&self, cols: &[f32], r0: usize, r1: usize, dst: &mut [f32]) {
        let Scatter {
            w,
            kh,
            kw,
            oh,
            ow,
            stride: [sh, sw],
            pad: [ph, pw],
        } = *self;
        let n = (r1 - r0) * w;
        for ky in 0..kh {
            for kx in 0..kw {
                let taps = &cols[(ky * kw + kx) * n..][..n];
                // Input columns whose output column ix·sw + kx − pw lies inside [0, ow).
                let lo = pw.saturating_sub(kx).div_ceil(sw).min(w);
                let hi = if ow + pw > kx {
                    ((ow + pw - kx - 1) / sw + 1).min(w)
                } else {
                    0
                }
                .max(lo);
                if hi == lo {
                    continue;
                }
                for (iy, src) in (r0..r1).zip(taps.chunks_exact(w)) {
                    let oy = (iy * sh + ky) as isize - ph as isize;
                    if oy < 0 || oy >= oh as isize {
                        continue;
                    }
                    let row = &mut dst[oy as usize * ow..(oy as usize + 1) * ow];
                    let first = lo * sw + kx - pw;
                    if sw == 1 {
                        for (d, s) in row[first..first + (hi - lo)].iter_mut().zip(&src[lo..hi]) {
                            *d += *s;
                        }
                    } else {
                        for (d, s) in row[first..].iter_mut().step_by(sw).zip(&src[lo..hi]) {
                            *d += *s;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::module::conv_transpose2d as burn_conv_transpose2d;
    use burn::tensor::ops::ConvTransposeOptions;
    use burn::tensor::{Device, Distribution, Tensor};

    use crate::nets::cpu_conv::conv_transpose2d;

    #[allow(clippy::too_many_arguments)]
    fn check(
        b: usize,
        c: usize,
        o: usize,
        k: usize,
        stride: usize,
        pad: usize,
        pad_out: usize,
        (h, w): (usize, usize),
        bias: bool,
    ) {
        let device = Device::flex();
        let normal = Distribution::Normal(0.0, 1.0);
        let x = Tensor::<4>::random([b, c, h, w], normal, &device);
        let wt = Tensor::<4>::random([c, o, k, k], normal, &device);
        let bias = bias.then(|| Tensor::<1>::random([o], normal, &device));
        let options = ConvTransposeOptions::new([stride; 2], [pad; 2], [pad_out; 2], [1, 1], 1);
        let want = burn_conv_transpose2d(x.clone(), wt.clone(), bias.clone(), options.clone());
        let got = conv_transpose2d(x, wt, bias, options);
        assert_eq!(got.dims(), want.dims());
        let diff = (got - want)
            .abs()
            .max()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap_or_default()[0];
        assert!(
            diff < 1e-3,
            "b {b} c {c} o {o} k {k} stride {stride} pad {pad}/{pad_out} {h}x{w}: {diff}"
        );
    }

    #[test]
    fn matches_burn_for_the_networks_shapes_and_edge_cases() {
        // StyleGAN2's upsampling conv (3×3, stride 2, no padding) and BeautyGAN's (4×4/2, pad 1).
        check(1, 6, 4, 3, 2, 0, 0, (5, 7), false);
        check(2, 5, 3, 4, 2, 1, 0, (6, 5), true);
        // Stride 1, an output padding, a kernel smaller than the stride.
        check(1, 3, 2, 3, 1, 1, 0, (4, 4), true);
        check(1, 3, 2, 3, 2, 1, 1, (4, 6), false);
        check(1, 2, 3, 1, 2, 0, 0, (3, 3), true);
    }

    #[test]
    fn several_bands_match_burn() {
        // 512 output taps per pixel: 81 input rows of 100 per band, so 128 rows make two bands.
        check(1, 8, 128, 2, 2, 0, 0, (128, 100), true);
    }
}
