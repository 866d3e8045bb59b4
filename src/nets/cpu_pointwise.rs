//! 1×1 convolution (stride 1, no padding, groups 1) on host memory as one product per tile, with
//! a per-channel affine (an eval batch norm, a bias), ReLU6 and a residual added while the tile
//! is still in cache: MobileNetV2's expand and project layers.
//!
//! In NCHW a 1×1 convolution is `W[O, C] · X[C, H·W]` with the input read where it lies: no
//! im2col, no layout change. The output is cut into tiles of output channels × pixels, enough of
//! them to keep every thread busy on small maps (a 7² map has 49 pixels, so its tiles split the
//! channels); each tile is one `gemm` product written straight into the output, then one pass
//! over the tile applies `v·scale[o] + shift[o]`, ReLU6 and the residual. The batch norm is thus
//! applied exactly as the network states it, to the product, rather than folded into a scaled
//! copy of the weights on every call. Results agree with burn's conv2d followed by its norm
//! and activation up to float rounding (the tests compare them).

use rayon::prelude::*;

use super::cpu_conv::OutPtr;
use super::cpu_depthwise::ChannelEpilogue;

/// Pixels per tile on large maps: with up to a few hundred channels the tile's output and the
/// input columns it reads stay in the per-core cache.
const TILE_PIXELS: usize = 512;
/// Output channels per tile are a multiple of this (gemm's register block height).
const CHANNEL_STEP: usize = 16;

/// The 1×1 convolution of `x` `[B, C, H, W]` with `weight` `[O, C]` (the `[O, C, 1, 1]` weight
/// flattened), then `epilogue` per output channel, then `+ residual` (`[B, O, H, W]`) when given.
/// Returns the output and its shape.
pub fn pointwise_f32(
    x: &[f32],
    [b, c, h, w]: [usize; 4],
    weight: &[f32],
    o: usize,
    epilogue: ChannelEpilogue,
    residual: Option<&[f32]>,
) -> (Vec<f32>, [usize; 4]) {
    let plane = h * w;
    assert_eq!(x.len(), b * c * plane, "pointwise: input length");
    assert_eq!(weight.len(), o * c, "pointwise: weight length");
    for v in [epilogue.scale, epilogue.shift].into_iter().flatten() {
        assert_eq!(v.len(), o, "pointwise: one scale and shift per output channel");
    }
    if let Some(r) = residual {
        assert_eq!(r.len(), b * o * plane, "pointwise: residual length");
    }
    let shape = [b, o, h, w];
    let len = b * o * plane;
    if len == 0 {
        return (Vec::new(), shape);
    }
    // Every value is written by exactly one tile's product (gemm does not read the destination)
    // before anything reads it, so the output is not zeroed first: that would be one more pass
    // over the largest maps of the network. Without input channels the product is zero.
    let mut out: Vec<f32> = if c == 0 {
        vec![0.0; len]
    } else {
        Vec::with_capacity(len)
    };
    let pixel_tiles = plane.div_ceil(TILE_PIXELS);
    let tile_pixels = plane.div_ceil(pixel_tiles);
    // Split the channels only where the pixels give too few tiles for the threads.
    let want = 4 * rayon::current_num_threads();
    let channel_tiles = want.div_ceil(b * pixel_tiles).clamp(1, o.div_ceil(CHANNEL_STEP));
    let tile_channels = o.div_ceil(channel_tiles).div_ceil(CHANNEL_STEP) * CHANNEL_STEP;
    let channel_tiles = o.div_ceil(tile_channels);
    let tiles = b * channel_tiles * pixel_tiles;
    let dst = OutPtr(out.as_mut_ptr());
    (0..tiles).into_par_iter().for_each(|t| {
        let img = t / (channel_tiles * pixel_tiles);
        let o0 = (t / pixel_tiles % channel_tiles) * tile_channels;
        let p0 = (t % pixel_tiles) * tile_pixels;
        let (m, n) = (tile_channels.min(o - o0), tile_pixels.min(plane - p0));
        let base = img * o * plane + o0 * plane + p0;
        if c > 0 {
            // SAFETY: the tile writes rows o0..o0 + m, columns p0..p0 + n of image `img`'s
            // output planes, inside `out`'s capacity and written by no other tile; the left
            // operand is rows o0..o0 + m of `weight` [O, C], the right one columns p0..p0 + n
            // of image `img`'s input [C, H·W] (row stride H·W), both inside their slices.
            unsafe {
                gemm::gemm(
                    m,
                    n,
                    c,
                    dst.get().add(base),
                    1,
                    plane as isize,
                    false,
                    weight.as_ptr().add(o0 * c),
                    1,
                    c as isize,
                    x.as_ptr().add(img * c * plane + p0),
                    1,
                    plane as isize,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
            }
        }
        let (lo, hi) = if epilogue.relu6 {
            (0.0, 6.0)
        } else {
            (f32::NEG_INFINITY, f32::INFINITY)
        };
        for oc in o0..o0 + m {
            let (s, sh) = (
                epilogue.scale.map_or(1.0, |v| v[oc]),
                epilogue.shift.map_or(0.0, |v| v[oc]),
            );
            let at = img * o * plane + oc * plane + p0;
            // SAFETY: row oc, columns p0..p0 + n of this tile (see above), written by this tile
            // only, and the gemm into it has returned.
            let row = unsafe { std::slice::from_raw_parts_mut(dst.get().add(at), n) };
            match residual {
                Some(r) => {
                    for (v, &r) in row.iter_mut().zip(&r[at..at + n]) {
                        *v = (*v * s + sh).max(lo).min(hi) + r;
                    }
                }
                None => {
                    for v in row.iter_mut() {
                        *v = (*v * s + sh).max(lo).min(hi);
                    }
                }
            }
        }
    });
    // SAFETY: the tiles cover rows 0..o of every image's output planes, columns 0..plane, so
    // all `len` values within the capacity were written above.
    unsafe { out.set_len(len) };
    (out, shape)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::module::conv2d;
    use burn::tensor::ops::ConvOptions;
    use burn::tensor::{Device, Distribution, Tensor};

    fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap_or_default()
    }

    /// burn's conv2d, affine, ReLU6 and residual add against the kernel.
    fn check(b: usize, c: usize, o: usize, (h, w): (usize, usize), relu6: bool, residual: bool) {
        let device = Device::flex();
        let x = Tensor::<4>::random([b, c, h, w], Distribution::Normal(0.0, 1.0), &device);
        let wt = Tensor::<4>::random([o, c, 1, 1], Distribution::Normal(0.0, 0.3), &device);
        let scale = Tensor::<1>::random([o], Distribution::Uniform(0.5, 1.5), &device);
        let shift = Tensor::<1>::random([o], Distribution::Normal(0.0, 1.0), &device);
        let res = Tensor::<4>::random([b, o, h, w], Distribution::Normal(0.0, 1.0), &device);
        let options = ConvOptions::new([1, 1], [0, 0], [1, 1], 1);
        let mut want = conv2d(x.clone(), wt.clone(), None, options) * scale.clone().reshape([1, o, 1, 1])
            + shift.clone().reshape([1, o, 1, 1]);
        if relu6 {
            want = want.clamp(0.0, 6.0);
        }
        if residual {
            want = want + res.clone();
        }
        let want = host(want);
        let (s, t, r) = (host(scale), host(shift), host(res));
        let epilogue = ChannelEpilogue {
            scale: Some(&s),
            shift: Some(&t),
            relu6,
        };
        let (got, dims) = pointwise_f32(
            &host(x),
            [b, c, h, w],
            &host(wt),
            o,
            epilogue,
            residual.then_some(&r[..]),
        );
        assert_eq!(dims, [b, o, h, w]);
        let diff = crate::parity::max_abs_diff(&got, &want);
        assert!(
            diff < 1e-3,
            "b {b} c {c} o {o} {h}x{w} relu6 {relu6} residual {residual}: {diff}"
        );
    }

    #[test]
    fn matches_burn_on_mobilenet_shapes() {
        check(1, 16, 96, (112, 112), true, false);
        check(1, 96, 24, (56, 56), false, false);
        check(1, 144, 24, (56, 56), false, true);
        check(1, 64, 384, (14, 14), true, false);
        check(1, 960, 160, (7, 7), false, true);
        check(1, 320, 1280, (7, 7), true, false);
    }

    #[test]
    fn matches_burn_on_odd_tiles_and_batches() {
        // Channel counts off the tile step, pixel counts off the tile size, one pixel, batches.
        check(2, 5, 7, (3, 5), true, true);
        check(3, 17, 33, (1, 1), false, true);
        check(2, 8, 50, (23, 29), true, false);
        check(1, 3, 1, (31, 33), false, false);
    }
}
