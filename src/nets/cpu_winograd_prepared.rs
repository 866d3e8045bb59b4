//! Winograd with the weights transformed once, for networks whose weights are fixed after
//! loading (ArcFace), and a second way to share the work between threads for small maps.
//!
//! `conv2d_f32` of the parent transforms the weights on every call and cuts the tiles into
//! blocks, each multiplying by all of `U`; on ArcFace's 14² and 28² maps that made it slower than
//! the direct convolution (`MIN_PIXELS`). Here `U` is computed once ([`PreparedWeights`]), and
//! when the whole map's `V` and `M` are small ([`SMALL_ELEMS`]) the work is split in two
//! parallel passes instead: every input channel's tiles transformed (over channels), then the
//! products and the output transform over blocks of output channels, so each thread reads only
//! its own rows of `U` and both threads work even on a 7×7 grid of tiles.

use rayon::prelude::*;

use super::{OutLayout, OutPtr, Plan, SCRATCH, Scratch, Tile, grow, transform_weights, two_sided};
use crate::nets::cpu_conv::out_size;

/// Floats of `V` and `M` (all tiles of the call) up to which the channel-split passes run;
/// larger maps use the parent's blocks of tiles (with the prepared `U`).
pub const SMALL_ELEMS: usize = 1 << 22;
/// Output channels per block of the second pass, at least (a multiple of gemm's 8 lanes).
const MIN_OUT_BLOCK: usize = 16;
/// Values of `V` per task of the first pass, at least (so that tiny channels are batched).
const MIN_TASK_VALUES: usize = 1 << 13;

/// The transformed weights `U` `[a², O, C]` of one 3×3 (or 2×2 for [`Tile::F4K2`]) kernel.
#[derive(Debug, Clone)]
pub struct PreparedWeights {
    tile: Tile,
    o: usize,
    c: usize,
    u: Vec<f32>,
}

impl PreparedWeights {
    /// Transforms `weight` `[O, C, r, r]` for `tile` (r is the tile's kernel side).
    pub fn new(weight: &[f32], [o, c, kh, kw]: [usize; 4], tile: Tile) -> PreparedWeights {
        let r = tile.kernel();
        assert_eq!((kh, kw), (r, r), "winograd: the kernel is {kh}x{kw}, not {r}x{r}");
        assert_eq!(weight.len(), o * c * r * r, "winograd: weight length");
        PreparedWeights {
            tile,
            o,
            c,
            u: transform_weights(weight, o, c, tile.transforms()),
        }
    }

    /// The tile the weights were transformed for.
    pub fn tile(&self) -> Tile {
        self.tile
    }
}

/// The stride-1 convolution of `x` `[B, C, H, W]` with prepared weights, `bias` `[O]` and
/// `padding` `[(top, bottom), (left, right)]`: the parent's `conv2d_f32` with the original
/// weights and the same tile, up to the order in which gemm adds up its products.
pub fn conv2d_prepared(
    x: &[f32],
    [b, c, h, w]: [usize; 4],
    weights: &PreparedWeights,
    bias: Option<&[f32]>,
    padding: [(usize, usize); 2],
) -> (Vec<f32>, [usize; 4]) {
    let (tf, o, r) = (weights.tile.transforms(), weights.o, weights.tile.kernel());
    assert_eq!(
        c, weights.c,
        "winograd: input has {c} channels, the weight {}",
        weights.c
    );
    assert_eq!(x.len(), b * c * h * w, "winograd: input length");
    if let Some(bias) = bias {
        assert_eq!(bias.len(), o, "winograd: bias length");
    }
    let oh = out_size(h, r, 1, padding[0]);
    let ow = out_size(w, r, 1, padding[1]);
    let mut out = vec![0.0f32; b * o * oh * ow];
    if out.is_empty() {
        return (out, [b, o, oh, ow]);
    }
    let plan = Plan {
        tf,
        c,
        h,
        w,
        o,
        oh,
        ow,
        th: oh.div_ceil(tf.m),
        tw: ow.div_ceil(tf.m),
        pad: [padding[0].0, padding[1].0],
        layout: OutLayout {
            plane: oh * ow,
            row: ow,
            step: [1, 1],
            offset: [0, 0],
        },
    };
    let tiles = b * plan.th * plan.tw;
    let dst = OutPtr(out.as_mut_ptr());
    if tiles * tf.a * tf.a * (c + o) <= SMALL_ELEMS {
        plan.split_channels(x, tiles, &weights.u, bias, dst);
    } else {
        plan.run_blocks(x, b, &weights.u, bias, dst);
    }
    (out, [b, o, oh, ow])
}

impl Plan {
    /// All `n` tiles at once: `V` `[C, a², n]` over input channels, then the products and the
    /// output transform over blocks of output channels.
    fn split_channels(&self, x: &[f32], n: usize, u: &[f32], bias: Option<&[f32]>, dst: OutPtr) {
        let a2 = self.tf.a * self.tf.a;
        let mut v = vec![0.0f32; self.c * a2 * n];
        v.par_chunks_mut(a2 * n)
            .enumerate()
            .with_min_len(MIN_TASK_VALUES.div_ceil(a2 * n))
            .for_each(|(ci, vc)| {
                SCRATCH.with(|s| self.input_channel(x, ci, n, &mut s.borrow_mut(), vc));
            });
        let threads = rayon::current_num_threads().max(1);
        // Two blocks per thread, so that a thread slowed by other work is caught up by the other.
        let per_block = self
            .o
            .div_ceil(2 * threads)
            .next_multiple_of(8)
            .max(MIN_OUT_BLOCK);
        let blocks = self.o.div_ceil(per_block);
        (0..blocks).into_par_iter().for_each(|i| {
            let o0 = i * per_block;
            let o1 = (o0 + per_block).min(self.o);
            SCRATCH.with(|s| self.output_block(u, &v, bias, (o0, o1), n, &mut s.borrow_mut(), dst));
        });
    }

    /// `V[ci]` `[a², n]`: input channel `ci` of every tile, transformed. The plane sums are
    /// compiled for AVX2 too, as in the parent's `block`.
    fn input_channel(&self, x: &[f32], ci: usize, n: usize, s: &mut Scratch, vc: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            unsafe { self.input_channel_avx2(x, ci, n, s, vc) };
            return;
        }
        self.input_channel_impl(x, ci, n, s, vc);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn input_channel_avx2(&self, x: &[f32], ci: usize, n: usize, s: &mut Scratch, vc: &mut [f32]) {
        self.input_channel_impl(x, ci, n, s, vc);
    }

    #[inline(always)]
    fn input_channel_impl(&self, x: &[f32], ci: usize, n: usize, s: &mut Scratch, vc: &mut [f32]) {
        let (a, c, plane) = (self.tf.a, self.c, self.h * self.w);
        let Scratch { d, tmp, .. } = s;
        let (d, tmp) = (grow(d, a * a * n), grow(tmp, a * a * n));
        self.rows(0, n, |img, ty, tx0, tx1, j0| {
            let xc = &x[(img * c + ci) * plane..][..plane];
            self.gather(xc, ty, tx0, tx1, j0, n, d);
        });
        two_sided(d, self.tf.bt, (a, a), n, tmp, vc);
    }

    /// Output channels `o0..o1` of every tile: `M[ξ]` rows `o0..o1` = `U[ξ]` rows `o0..o1` ·
    /// `V[ξ]`, then the output transform, the bias and the write.
    #[allow(clippy::too_many_arguments)]
    fn output_block(
        &self,
        u: &[f32],
        v: &[f32],
        bias: Option<&[f32]>,
        range: (usize, usize),
        n: usize,
        s: &mut Scratch,
        out: OutPtr,
    ) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            unsafe { self.output_block_avx2(u, v, bias, range, n, s, out) };
            return;
        }
        self.output_block_impl(u, v, bias, range, n, s, out);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn output_block_avx2(
        &self,
        u: &[f32],
        v: &[f32],
        bias: Option<&[f32]>,
        range: (usize, usize),
        n: usize,
        s: &mut Scratch,
        out: OutPtr,
    ) {
        self.output_block_impl(u, v, bias, range, n, s, out);
    }

    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn output_block_impl(
        &self,
        u: &[f32],
        v: &[f32],
        bias: Option<&[f32]>,
        (o0, o1): (usize, usize),
        n: usize,
        s: &mut Scratch,
        out: OutPtr,
    ) {
        let (m, a, c, o) = (self.tf.m, self.tf.a, self.c, self.o);
        let (a2, ob) = (a * a, o1 - o0);
        assert!(
            o1 <= o && u.len() == a2 * o * c && v.len() == c * a2 * n,
            "winograd: block {o0}..{o1} of {o} channels, U {} and V {} floats",
            u.len(),
            v.len()
        );
        let Scratch { m: mb, tmp, y, .. } = s;
        let (mb, tmp, y) = (grow(mb, ob * a2 * n), grow(tmp, a2 * n), grow(y, m * m * n));
        for xi in 0..a2 {
            // SAFETY: M[ξ] is rows 0..ob of stride a²·n and n columns from ξ·n inside `mb`
            // ([ob, a², n]); rows o0..o1 of U[ξ] ([O, C], row stride C) lie inside `u` ([a², O,
            // C]) and V[ξ] ([C, n], row stride a²·n, from ξ·n) inside `v` ([C, a², n]), as
            // asserted above.
            unsafe {
                gemm::gemm(
                    ob,
                    n,
                    c,
                    mb.as_mut_ptr().add(xi * n),
                    1,
                    (a2 * n) as isize,
                    false,
                    u.as_ptr().add((xi * o + o0) * c),
                    1,
                    c as isize,
                    v.as_ptr().add(xi * n),
                    1,
                    (a2 * n) as isize,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
            }
        }
        for oc in o0..o1 {
            two_sided(&mb[(oc - o0) * a2 * n..][..a2 * n], self.tf.at, (m, a), n, tmp, y);
            let bias = bias.map_or(0.0, |b| b[oc]);
            self.rows(0, n, |img, ty, tx0, tx1, j0| {
                self.scatter(
                    y,
                    bias,
                    (img * o + oc) * self.layout.plane,
                    ty,
                    tx0,
                    tx1,
                    j0,
                    n,
                    out,
                );
            });
        }
    }
}
