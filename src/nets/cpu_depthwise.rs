//! Depthwise 3×3 convolution (groups = channels, padding 1, stride 1 or 2) on host memory, with a
//! per-channel affine (an eval batch norm, a bias) and ReLU6 applied as the output is stored:
//! MobileNetV2's depthwise layers.
//!
//! burn's flex backend runs a grouped convolution as one small im2col + gemm per group, which for
//! a depthwise layer is a 1-row product per channel: all overhead. Here each channel plane is
//! copied once into a zero-padded, thread-local buffer (for stride 2 with its even and odd
//! columns split apart, so every tap reads contiguous values), and each output row is summed
//! eight pixels at a time from three rows of that buffer. Channels run in parallel on rayon.
//!
//! The loop is plain Rust over 8-lane arrays, compiled once for the baseline x86-64 and once with
//! AVX2 enabled (chosen at run time); both round alike (no fused multiply-adds are formed). The
//! sums run in a different order than burn's, so results agree up to float rounding (the tests
//! compare them with burn's grouped `conv2d`).

use std::cell::RefCell;
use std::mem::MaybeUninit;

use rayon::prelude::*;

/// Output pixels summed together: one AVX2 vector.
const LANES: usize = 8;
/// Channel planes smaller than this are handed to rayon several at a time.
const MIN_TASK_VALUES: usize = 1 << 13;

thread_local! {
    static PADDED: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// What happens to each output value after the sum: `v·scale[c] + shift[c]`, then ReLU6 when
/// `relu6`. `None` scales by 1 or shifts by 0.
#[derive(Clone, Copy, Debug, Default)]
pub struct ChannelEpilogue<'a> {
    pub scale: Option<&'a [f32]>,
    pub shift: Option<&'a [f32]>,
    pub relu6: bool,
}

impl ChannelEpilogue<'_> {
    fn check(&self, channels: usize) {
        for v in [self.scale, self.shift].into_iter().flatten() {
            assert_eq!(v.len(), channels, "depthwise: one scale and shift per channel");
        }
    }

    fn scale(&self, c: usize) -> f32 {
        self.scale.map_or(1.0, |s| s[c])
    }

    fn shift(&self, c: usize) -> f32 {
        self.shift.map_or(0.0, |s| s[c])
    }
}

/// Output side of a 3×3 window with padding 1.
pub fn out_size(input: usize, stride: usize) -> usize {
    (input + 2 - 3) / stride + 1
}

/// The depthwise convolution of `x` `[B, C, H, W]` with `weight` `[C, 1, 3, 3]`, padding 1 on
/// every side, `stride` 1 or 2, then `epilogue`. Returns the output and its shape.
pub fn depthwise3x3_f32(
    x: &[f32],
    [b, c, h, w]: [usize; 4],
    weight: &[f32],
    stride: usize,
    epilogue: ChannelEpilogue,
) -> (Vec<f32>, [usize; 4]) {
    assert!(stride == 1 || stride == 2, "depthwise: stride {stride}");
    assert_eq!(x.len(), b * c * h * w, "depthwise: input length");
    assert_eq!(weight.len(), c * 9, "depthwise: weight length");
    epilogue.check(c);
    let (oh, ow) = (out_size(h, stride), out_size(w, stride));
    let shape = [b, c, oh, ow];
    if h == 0 || w == 0 {
        return (vec![0.0; b * c * oh * ow], shape);
    }
    let plane = Plane::new(h, w, stride);
    let oplane = oh * ow;
    let len = b * c * oplane;
    // Every output value is written once below, so the buffer is not zeroed first (one pass
    // over the map saved).
    let mut out: Vec<MaybeUninit<f32>> = Vec::with_capacity(len);
    // SAFETY: MaybeUninit values need no initialisation.
    unsafe { out.set_len(len) };
    out.par_chunks_mut(oplane)
        .enumerate()
        .with_min_len(MIN_TASK_VALUES.div_ceil(oplane))
        .for_each(|(p, dst)| {
            let ch = p % c;
            let scale = epilogue.scale(ch);
            let taps: [f32; 9] = std::array::from_fn(|i| weight[ch * 9 + i] * scale);
            let bias = epilogue.shift(ch);
            let src = &x[p * h * w..(p + 1) * h * w];
            PADDED.with(|buf| {
                let mut buf = buf.borrow_mut();
                plane.pad(src, &mut buf);
                plane.convolve(&buf[..], taps, bias, epilogue.relu6, dst);
            });
        });
    // `convolve` wrote every value of every plane (its rows and vectors cover the plane).
    let mut out = std::mem::ManuallyDrop::new(out);
    // SAFETY: the buffer came from a Vec of the same length and capacity, MaybeUninit<f32> has
    // f32's layout, and every value is initialised (above).
    let out = unsafe { Vec::from_raw_parts(out.as_mut_ptr().cast::<f32>(), out.len(), out.capacity()) };
    (out, shape)
}

/// One channel's geometry and the layout of its padded copy: `rows` rows of `stride` streams
/// of `row_len` values. Stride 1 keeps one stream per row (padded row `r` holds input row
/// `r − 1`, shifted right by one column); stride 2 splits the padded row into its even columns
/// and its odd ones, so the taps of eight neighbouring outputs are eight neighbouring values.
#[derive(Clone, Copy)]
struct Plane {
    h: usize,
    w: usize,
    ow: usize,
    stride: usize,
    rows: usize,
    row_len: usize,
}

impl Plane {
    fn new(h: usize, w: usize, stride: usize) -> Plane {
        let (oh, ow) = (out_size(h, stride), out_size(w, stride));
        Plane {
            h,
            w,
            ow,
            stride,
            // Output row y reads padded rows y·s .. y·s + 2.
            rows: (oh - 1) * stride + 3,
            // Whole vectors of output, plus the two columns the last taps reach past them.
            row_len: ow.div_ceil(LANES) * LANES + 2,
        }
    }

    /// Values per padded row.
    fn row_stride(&self) -> usize {
        self.stride * self.row_len
    }

    /// Where tap `kx` reads within a padded row, for output column 0.
    fn tap_offsets(&self) -> [usize; 3] {
        if self.stride == 1 {
            [0, 1, 2]
        } else {
            // Padded column 2x + kx: even stream at x, odd stream at x, even stream at x + 1.
            [0, self.row_len, 1]
        }
    }

    /// Writes the padded copy of the plane `src` `[H, W]` into `buf`, every value of it.
    fn pad(&self, src: &[f32], buf: &mut Vec<f32>) {
        let rs = self.row_stride();
        buf.clear();
        buf.resize(self.rows * rs, 0.0);
        for (r, row) in buf.chunks_exact_mut(rs).enumerate() {
            let Some(iy) = r.checked_sub(1).filter(|&iy| iy < self.h) else {
                continue;
            };
            let line = &src[iy * self.w..(iy + 1) * self.w];
            if self.stride == 1 {
                row[1..1 + self.w].copy_from_slice(line);
            } else {
                // Padded column j holds input column j − 1: even j = 2i from column 2i − 1,
                // odd j = 2i + 1 from column 2i.
                let (even, odd) = row.split_at_mut(self.row_len);
                for (e, &v) in even[1..].iter_mut().zip(line.iter().skip(1).step_by(2)) {
                    *e = v;
                }
                for (o, &v) in odd.iter_mut().zip(line.iter().step_by(2)) {
                    *o = v;
                }
            }
        }
    }

    /// The output plane `dst` `[oh, ow]` from the padded copy.
    fn convolve(&self, buf: &[f32], taps: [f32; 9], bias: f32, relu6: bool, dst: &mut [MaybeUninit<f32>]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            unsafe { self.convolve_avx2(buf, taps, bias, relu6, dst) };
            return;
        }
        self.convolve_impl(buf, taps, bias, relu6, dst);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn convolve_avx2(
        &self,
        buf: &[f32],
        taps: [f32; 9],
        bias: f32,
        relu6: bool,
        dst: &mut [MaybeUninit<f32>],
    ) {
        self.convolve_impl(buf, taps, bias, relu6, dst);
    }

    #[inline(always)]
    fn convolve_impl(
        &self,
        buf: &[f32],
        taps: [f32; 9],
        bias: f32,
        relu6: bool,
        dst: &mut [MaybeUninit<f32>],
    ) {
        let rs = self.row_stride();
        let offsets = self.tap_offsets();
        let (lo, hi) = if relu6 {
            (0.0, 6.0)
        } else {
            (f32::NEG_INFINITY, f32::INFINITY)
        };
        for (y, out_row) in dst.chunks_exact_mut(self.ow).enumerate() {
            let rows: [&[f32]; 3] = std::array::from_fn(|ky| &buf[(y * self.stride + ky) * rs..][..rs]);
            for (v, out) in out_row.chunks_mut(LANES).enumerate() {
                let x0 = v * LANES;
                let mut acc = [bias; LANES];
                for (ky, row) in rows.iter().enumerate() {
                    for (kx, &off) in offsets.iter().enumerate() {
                        let t = taps[ky * 3 + kx];
                        for (a, &s) in acc.iter_mut().zip(&row[off + x0..off + x0 + LANES]) {
                            *a += t * s;
                        }
                    }
                }
                for (o, a) in out.iter_mut().zip(acc) {
                    o.write(a.max(lo).min(hi));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::module::conv2d;
    use burn::tensor::ops::ConvOptions;
    use burn::tensor::{Device, Distribution, Tensor};

    fn host(t: Tensor<4>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap_or_default()
    }

    /// burn's grouped conv2d, then `x·scale + shift` and ReLU6 with burn's ops, against the kernel.
    fn check(b: usize, c: usize, (h, w): (usize, usize), stride: usize, affine: bool, relu6: bool) {
        let device = Device::flex();
        let x = Tensor::<4>::random([b, c, h, w], Distribution::Normal(0.0, 2.0), &device);
        let wt = Tensor::<4>::random([c, 1, 3, 3], Distribution::Normal(0.0, 1.0), &device);
        let scale = Tensor::<1>::random([c], Distribution::Uniform(0.5, 1.5), &device);
        let shift = Tensor::<1>::random([c], Distribution::Normal(0.0, 1.0), &device);
        let options = ConvOptions::new([stride, stride], [1, 1], [1, 1], c);
        let mut want = conv2d(x.clone(), wt.clone(), None, options);
        if affine {
            want = want * scale.clone().reshape([1, c, 1, 1]) + shift.clone().reshape([1, c, 1, 1]);
        }
        if relu6 {
            want = want.clamp(0.0, 6.0);
        }
        let want_dims = want.dims();
        let want = host(want);
        let (xs, ws) = (host(x), host(wt));
        let (s, t) = (
            scale.into_data().try_to_vec::<f32>().unwrap_or_default(),
            shift.into_data().try_to_vec::<f32>().unwrap_or_default(),
        );
        let epilogue = ChannelEpilogue {
            scale: affine.then_some(&s[..]),
            shift: affine.then_some(&t[..]),
            relu6,
        };
        let (got, dims) = depthwise3x3_f32(&xs, [b, c, h, w], &ws, stride, epilogue);
        assert_eq!(dims, want_dims, "shape, {h}x{w} stride {stride}");
        let diff = crate::parity::max_abs_diff(&got, &want);
        assert!(
            diff < 1e-4,
            "b {b} c {c} {h}x{w} stride {stride} affine {affine} relu6 {relu6}: {diff}"
        );
    }

    #[test]
    fn matches_burn_on_mobilenet_shapes() {
        // MobileNetV2 at 224²: 112² stride 1 and 2, 56², 28², 14², 7² stride 1.
        check(1, 32, (112, 112), 1, true, true);
        check(1, 96, (112, 112), 2, true, true);
        check(1, 144, (56, 56), 1, true, true);
        check(1, 144, (56, 56), 2, true, false);
        check(1, 192, (28, 28), 2, true, true);
        check(1, 384, (14, 14), 1, true, true);
        check(1, 576, (14, 14), 2, true, true);
        check(1, 960, (7, 7), 1, true, true);
    }

    #[test]
    fn matches_burn_on_edge_sizes_and_batches() {
        for stride in [1, 2] {
            // Odd and even sides, a single row or column, widths around one vector.
            for (h, w) in [
                (1, 1),
                (1, 9),
                (9, 1),
                (2, 2),
                (3, 3),
                (5, 7),
                (8, 8),
                (9, 17),
                (16, 15),
                (17, 16),
            ] {
                check(2, 3, (h, w), stride, true, true);
            }
            check(3, 5, (13, 11), stride, false, false);
            check(1, 4, (10, 12), stride, true, false);
            check(2, 2, (6, 23), stride, false, true);
        }
    }
}
