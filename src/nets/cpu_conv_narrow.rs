//! Direct stride-1 convolution for layers with very few input or output channels: BeautyGAN's
//! 7×7 64→3 output heads and 7×7 3→64 input convs.
//!
//! As im2col + gemm these are poor products: with 3 output channels gemm's micro-kernel, built
//! for tall blocks of the weight matrix, mostly multiplies padding, and with 3 input channels the
//! im2col matrix is 49× the input (38 MB at 256²) for a product of depth 147. Here each strip of
//! 32 output pixels of up to 3 output channels is summed in registers over every input channel
//! and tap: per tap, four vector loads of the (zero-padded) input row feed twelve fused
//! multiply-adds, so the loop is bound by the multiply-adds, not by memory. The input is padded
//! once per image so the strips need no edge cases. Output rows run in parallel on rayon.
//!
//! The sums run in a different order (and with fused multiply-adds on AVX2+FMA) than the gemm
//! path, so results agree with burn's up to float rounding; the tests compare them.

use rayon::prelude::*;

use super::cpu_conv::{self, OutPtr};
use super::kernel_switch::KernelSwitch;

/// Output pixels per strip: four AVX vectors.
const STRIP: usize = 32;
/// Output channels summed together in one strip (3 × 4 accumulators + a load and a broadcast
/// fit AVX2's 16 registers).
const GROUP: usize = 3;
/// Channel counts at or below which a side counts as narrow.
pub const MAX_NARROW: usize = 4;
/// Taps below which the direct path is not taken. The kernel itself serves any size (the tests
/// cover 3×3), but the narrow 3×3 layers of other networks (ArcFace's 3→64 stem, AEI-Net's
/// 3-channel outputs) were not measured with it, so they keep im2col + gemm.
const MIN_TAPS: usize = 25;

/// Whether eligible narrow convolutions take the direct path.
static SWITCH: KernelSwitch = KernelSwitch::on();

pub fn set_enabled(on: bool) {
    SWITCH.set(on);
}

/// Whether `cpu_conv` should run a dense convolution here: stride 1, a kernel of at least 5×5,
/// and at most [`MAX_NARROW`] input or output channels.
pub fn applies(c: usize, o: usize, (kh, kw): (usize, usize), stride: [usize; 2]) -> bool {
    SWITCH.enabled()
        && stride == [1, 1]
        && kh * kw >= MIN_TAPS
        && c > 0
        && o > 0
        && (c <= MAX_NARROW || o <= MAX_NARROW)
}

/// A stride-1 convolution of `x` `[B, C, H, W]` with `weight` `[O, C, kh, kw]`, `bias` `[O]`,
/// `padding` `[(top, bottom), (left, right)]`. Returns the output and its shape, as
/// `cpu_conv::conv2d_f32`.
pub fn conv2d_f32(
    x: &[f32],
    [b, c, h, w]: [usize; 4],
    weight: &[f32],
    [o, wc, kh, kw]: [usize; 4],
    bias: Option<&[f32]>,
    padding: [(usize, usize); 2],
) -> (Vec<f32>, [usize; 4]) {
    let [_, _, oh, ow] =
        cpu_conv::conv2d_out_shape(x, [b, c, h, w], weight, [o, wc, kh, kw], bias, [1, 1], padding);
    let plane = oh * ow;
    let mut out = vec![0.0f32; b * o * plane];
    if out.is_empty() {
        return (out, [b, o, oh, ow]);
    }
    // The padded input holds every value a strip reads: oh + kh − 1 rows of whole strips plus
    // kw − 1 columns, zero outside the image.
    let strips = ow.div_ceil(STRIP);
    let geometry = Padded {
        c,
        rows: oh + kh - 1,
        cols: strips * STRIP + kw - 1,
        kh,
        kw,
    };
    let mut xp = Vec::new();
    for img in 0..b {
        geometry.fill(
            &x[img * c * h * w..(img + 1) * c * h * w],
            [h, w],
            [padding[0].0, padding[1].0],
            &mut xp,
        );
        let xp = &xp[..];
        let dst = OutPtr(out[img * o * plane..].as_mut_ptr());
        let groups = o.div_ceil(GROUP);
        // One task per output row of a group of channels.
        (0..groups * oh).into_par_iter().with_min_len(4).for_each(|task| {
            let (g0, oy) = ((task / oh) * GROUP, task % oh);
            let g1 = (g0 + GROUP).min(o);
            let mut acc = [[0.0f32; STRIP]; GROUP];
            for s in 0..strips {
                geometry.strip(xp, weight, g0..g1, oy, s * STRIP, &mut acc);
                let x0 = s * STRIP;
                let len = (ow - x0).min(STRIP);
                for (oc, a) in (g0..g1).zip(&acc) {
                    let bias = bias.map_or(0.0, |b| b[oc]);
                    // SAFETY: row oy, columns x0..x0 + len < ow of channel oc of this image,
                    // inside `out`; only the task of (oc's group, oy) writes it.
                    let row = unsafe {
                        std::slice::from_raw_parts_mut(dst.get().add(oc * plane + oy * ow + x0), len)
                    };
                    for (d, v) in row.iter_mut().zip(a) {
                        *d = v + bias;
                    }
                }
            }
        });
    }
    (out, [b, o, oh, ow])
}

/// One image's zero-padded input `[C, rows, cols]` and the kernel size.
#[derive(Clone, Copy)]
struct Padded {
    c: usize,
    rows: usize,
    cols: usize,
    kh: usize,
    kw: usize,
}

impl Padded {
    /// Copies the image `x` `[C, H, W]` into `xp` with `top` rows and `left` columns of zeros
    /// before it and zeros after it.
    fn fill(&self, x: &[f32], [h, w]: [usize; 2], [top, left]: [usize; 2], xp: &mut Vec<f32>) {
        let (rows, cols) = (self.rows, self.cols);
        xp.clear();
        xp.resize(self.c * rows * cols, 0.0);
        xp.par_chunks_mut(rows * cols).enumerate().for_each(|(ci, dst)| {
            let src = &x[ci * h * w..(ci + 1) * h * w];
            for (r, row) in dst.chunks_exact_mut(cols).enumerate() {
                let Some(iy) = r.checked_sub(top).filter(|&iy| iy < h) else {
                    continue;
                };
                let n = w.min(cols.saturating_sub(left));
                row[left..left + n].copy_from_slice(&src[iy * w..iy * w + n]);
            }
        });
    }

    /// `acc[g][j]` = output channel `g0 + g` at (oy, x0 + j) without bias, for the channels
    /// `group` (at most [`GROUP`]).
    fn strip(
        &self,
        xp: &[f32],
        weight: &[f32],
        group: std::ops::Range<usize>,
        oy: usize,
        x0: usize,
        acc: &mut [[f32; STRIP]; GROUP],
    ) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX2 and FMA (checked just above).
            unsafe {
                match group.len() {
                    1 => self.strip_avx2::<1>(xp, weight, group.start, oy, x0, acc),
                    2 => self.strip_avx2::<2>(xp, weight, group.start, oy, x0, acc),
                    _ => self.strip_avx2::<3>(xp, weight, group.start, oy, x0, acc),
                }
            }
            return;
        }
        self.strip_scalar(xp, weight, group, oy, x0, acc);
    }

    /// The portable version of [`Padded::strip`].
    fn strip_scalar(
        &self,
        xp: &[f32],
        weight: &[f32],
        group: std::ops::Range<usize>,
        oy: usize,
        x0: usize,
        acc: &mut [[f32; STRIP]; GROUP],
    ) {
        let Padded {
            c,
            rows,
            cols,
            kh,
            kw,
        } = *self;
        let taps = kh * kw;
        for (g, oc) in group.enumerate() {
            let a = &mut acc[g];
            a.fill(0.0);
            for ci in 0..c {
                let wk = &weight[(oc * c + ci) * taps..][..taps];
                for ky in 0..kh {
                    let row = &xp[(ci * rows + oy + ky) * cols + x0..][..STRIP + kw - 1];
                    for kx in 0..kw {
                        let wv = wk[ky * kw + kx];
                        for (a, &v) in a.iter_mut().zip(&row[kx..kx + STRIP]) {
                            *a += wv * v;
                        }
                    }
                }
            }
        }
    }

    /// [`Padded::strip`] for `G` channels from `g0` with AVX2 and FMA: 4·G accumulators in
    /// registers across all C·kh·kw taps.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn strip_avx2<const G: usize>(
        &self,
        xp: &[f32],
        weight: &[f32],
        g0: usize,
        oy: usize,
        x0: usize,
        acc: &mut [[f32; STRIP]; GROUP],
    ) {
        use std::arch::x86_64::*;
        let Padded {
            c,
            rows,
            cols,
            kh,
            kw,
        } = *self;
        let taps = kh * kw;
        // Every read below is inside `xp` ([C, rows, cols]): rows oy..oy + kh ≤ rows and
        // columns x0..x0 + STRIP + kw − 1 ≤ cols (x0 is a strip start); and inside `weight`
        // ([O, C, kh, kw]) for channels g0..g0 + G ≤ O.
        assert!(oy + kh <= rows && x0 + STRIP + kw - 1 <= cols && xp.len() >= c * rows * cols);
        assert!(weight.len() >= (g0 + G) * c * taps);
        let mut s = [[_mm256_setzero_ps(); 4]; G];
        let xp = xp.as_ptr();
        let wt = weight.as_ptr();
        for ci in 0..c {
            for ky in 0..kh {
                // SAFETY: see the bounds asserted above.
                unsafe {
                    let row = xp.add((ci * rows + oy + ky) * cols + x0);
                    let mut wk = [wt; G];
                    for (g, p) in wk.iter_mut().enumerate() {
                        *p = wt.add(((g0 + g) * c + ci) * taps + ky * kw);
                    }
                    for kx in 0..kw {
                        let v0 = _mm256_loadu_ps(row.add(kx));
                        let v1 = _mm256_loadu_ps(row.add(kx + 8));
                        let v2 = _mm256_loadu_ps(row.add(kx + 16));
                        let v3 = _mm256_loadu_ps(row.add(kx + 24));
                        for (sg, wg) in s.iter_mut().zip(&wk) {
                            let wv = _mm256_broadcast_ss(&*wg.add(kx));
                            sg[0] = _mm256_fmadd_ps(wv, v0, sg[0]);
                            sg[1] = _mm256_fmadd_ps(wv, v1, sg[1]);
                            sg[2] = _mm256_fmadd_ps(wv, v2, sg[2]);
                            sg[3] = _mm256_fmadd_ps(wv, v3, sg[3]);
                        }
                    }
                }
            }
        }
        for (sg, ag) in s.iter().zip(acc.iter_mut()) {
            for (v, dst) in sg.iter().zip(ag.chunks_exact_mut(8)) {
                // SAFETY: each chunk holds 8 floats.
                unsafe { _mm256_storeu_ps(dst.as_mut_ptr(), *v) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::module::conv2d as burn_conv2d;
    use burn::tensor::ops::ConvOptions;
    use burn::tensor::{Device, Distribution, Tensor};

    use super::*;

    #[allow(clippy::too_many_arguments)]
    fn check(
        b: usize,
        c: usize,
        o: usize,
        k: (usize, usize),
        padding: [(usize, usize); 2],
        hw: (usize, usize),
        bias: bool,
    ) {
        let device = Device::flex();
        let normal = Distribution::Normal(0.0, 1.0);
        let x = Tensor::<4>::random([b, c, hw.0, hw.1], normal, &device);
        let wt = Tensor::<4>::random([o, c, k.0, k.1], normal, &device);
        let bt = bias.then(|| Tensor::<1>::random([o], normal, &device));
        let options = ConvOptions::new_with_padding([1, 1], padding, [1, 1], 1);
        let want = burn_conv2d(x.clone(), wt.clone(), bt.clone(), options);
        let values = |t: Tensor<4>| t.into_data().try_to_vec::<f32>().unwrap_or_default();
        let (want_dims, want) = (want.dims(), values(want));
        let bv = bt.map(|t| t.into_data().try_to_vec::<f32>().unwrap_or_default());
        let (got, dims) = conv2d_f32(
            &values(x),
            [b, c, hw.0, hw.1],
            &values(wt),
            [o, c, k.0, k.1],
            bv.as_deref(),
            padding,
        );
        assert_eq!(dims, want_dims);
        let diff = crate::parity::max_abs_diff(&got, &want);
        assert!(
            diff < 1e-3,
            "b {b} c {c} o {o} k {k:?} pad {padding:?} {hw:?}: {diff}"
        );
    }

    #[test]
    fn matches_burn_on_the_networks_shapes() {
        // BeautyGAN's heads and input convs (at a reduced size), and the fixture's 16→3.
        check(1, 64, 3, (7, 7), [(3, 3), (3, 3)], (40, 70), false);
        check(1, 3, 64, (7, 7), [(3, 3), (3, 3)], (37, 64), false);
        check(1, 16, 3, (7, 7), [(3, 3), (3, 3)], (32, 32), true);
    }

    #[test]
    fn matches_burn_on_edge_cases() {
        // Channel groups of 1, 2 and 3 (o = 1, 2, 4, 5), a map narrower than a strip and than
        // the kernel, uneven and zero padding, batches, a 3×3 kernel and a non-square one.
        check(2, 5, 1, (3, 3), [(1, 1), (1, 1)], (9, 10), true);
        check(1, 6, 2, (5, 3), [(2, 0), (0, 1)], (7, 33), false);
        check(2, 2, 4, (3, 3), [(0, 0), (0, 0)], (5, 40), true);
        check(1, 4, 5, (7, 7), [(3, 3), (3, 3)], (3, 2), false);
        check(1, 1, 7, (4, 4), [(1, 2), (2, 1)], (6, 65), true);
    }
}
