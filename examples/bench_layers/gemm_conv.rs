//! Convolution lowered to one matrix product per band of output rows.
//!
//! burn's CPU backend (flex) runs a dense convolution as im2col + gemm over tiles of 512
//! output pixels: every tile repacks the whole weight matrix, converts the input to NHWC and
//! scatters its result back, which on this project's networks costs about half of the
//! convolution time (see `benches/RESULTS.md`). Here the patches of a whole band of rows are
//! gathered once, channel-major, by strided copies, and multiplied by the weight matrix in a
//! single product, so the weights are packed once per band and the output comes out in NCHW
//! directly. The result is the same convolution (zero padding, any kernel and stride, no
//! dilation, one group); only the order of the float additions differs.
//!
//! Measured (`benches/RESULTS.md`, "Convolution lowerings"): faster than burn's conv2d only on maps
//! of 64² and smaller, up to 2.2× slower at 1024², so the networks keep burn's conv2d and this
//! lowering stays here, beside the benchmark that judges it.

use burn::tensor::ops::PadMode;
use burn::tensor::{Slice, Tensor};

/// Largest im2col band, in elements (64 MiB of f32): bounds the extra memory at any resolution.
const BAND_ELEMS: usize = 1 << 24;

/// `conv2d(x, weight, stride, padding)` for `x` `[B, C, H, W]`, `weight` `[O, C, kh, kw]`,
/// `padding` `(before, after)` on both spatial axes.
pub fn conv2d_gemm(x: Tensor<4>, weight: Tensor<4>, stride: usize, padding: (usize, usize)) -> Tensor<4> {
    conv2d_banded(x, weight, stride, padding, BAND_ELEMS)
}

fn conv2d_banded(
    x: Tensor<4>,
    weight: Tensor<4>,
    stride: usize,
    padding: (usize, usize),
    band_elems: usize,
) -> Tensor<4> {
    let [b, _, h, w] = x.dims();
    let [out, input, kh, kw] = weight.dims();
    let (p0, p1) = padding;
    let oh = (h + p0 + p1 - kh) / stride + 1;
    let ow = (w + p0 + p1 - kw) / stride + 1;
    let x = if p0 + p1 > 0 {
        x.pad([(p0, p1), (p0, p1)], PadMode::Constant(0.0))
    } else {
        x
    };
    let k = input * kh * kw;
    // Column order (ky, kx, c) matches the order the taps are stacked in below.
    let wmat = weight.permute([0, 2, 3, 1]).reshape([out, k]);
    let rows = (band_elems / (k * ow).max(1)).clamp(1, oh.max(1));
    let mut bands = Vec::with_capacity(oh.div_ceil(rows));
    let mut r0 = 0;
    while r0 < oh {
        let r = rows.min(oh - r0);
        let mut taps = Vec::with_capacity(kh * kw);
        for dy in 0..kh {
            for dx in 0..kw {
                let y0 = r0 * stride + dy;
                let tap = if stride == 1 {
                    x.clone().narrow(2, y0, r).narrow(3, dx, ow)
                } else {
                    let span = |start: usize, n: usize| {
                        Slice::new(
                            start as isize,
                            Some((start + (n - 1) * stride + 1) as isize),
                            stride as isize,
                        )
                    };
                    x.clone()
                        .slice([Slice::full(), Slice::full(), span(y0, r), span(dx, ow)])
                };
                taps.push(tap);
            }
        }
        let cols = Tensor::cat(taps, 1);
        let band = if b == 1 {
            wmat.clone()
                .matmul(cols.reshape([k, r * ow]))
                .reshape([1, out, r, ow])
        } else {
            wmat.clone()
                .unsqueeze::<3>()
                .expand([b, out, k])
                .matmul(cols.reshape([b, k, r * ow]))
                .reshape([b, out, r, ow])
        };
        bands.push(band);
        r0 += r;
    }
    if bands.len() == 1 {
        bands.remove(0)
    } else {
        Tensor::cat(bands, 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::module::conv2d;
    use burn::tensor::ops::ConvOptions;
    use burn::tensor::{Device, Distribution};

    fn max_diff(a: Tensor<4>, b: Tensor<4>) -> f32 {
        assert_eq!(a.dims(), b.dims());
        let d = (a - b)
            .abs()
            .max()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap_or_default();
        d[0]
    }

    #[test]
    fn matches_burn_conv2d_for_every_kernel_stride_and_padding() {
        let device = Device::flex();
        for (b, c, o, k, stride, pad, hw) in [
            (1, 3, 5, 3, 1, 1, 9),
            (2, 4, 3, 4, 2, 1, 10),
            (1, 6, 2, 7, 1, 3, 8),
            (1, 5, 4, 3, 2, 0, 11),
            (2, 2, 3, 1, 1, 0, 5),
        ] {
            let x = Tensor::<4>::random([b, c, hw, hw + 1], Distribution::Normal(0.0, 1.0), &device);
            let w = Tensor::<4>::random([o, c, k, k], Distribution::Normal(0.0, 1.0), &device);
            let want = conv2d(
                x.clone(),
                w.clone(),
                None,
                ConvOptions::new([stride; 2], [pad; 2], [1, 1], 1),
            );
            let got = conv2d_gemm(x, w, stride, (pad, pad));
            assert!(max_diff(got, want) < 1e-4, "k {k} stride {stride} pad {pad}");
        }
    }

    #[test]
    fn asymmetric_padding_and_several_bands() {
        let device = Device::flex();
        let (c, h, w) = (4, 13, 7);
        let x = Tensor::<4>::random([1, c, h, w], Distribution::Normal(0.0, 1.0), &device);
        let w = Tensor::<4>::random([2, c, 3, 3], Distribution::Normal(0.0, 1.0), &device);
        let want = conv2d(
            x.clone().pad([(2, 1), (2, 1)], PadMode::Constant(0.0)),
            w.clone(),
            None,
            ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
        );
        // Bands of 2 rows (36 taps × 8 columns each): 14 output rows in 7 bands.
        let got = conv2d_banded(x, w, 1, (2, 1), 36 * 8 * 2);
        assert!(max_diff(got, want) < 1e-4);
    }
}
