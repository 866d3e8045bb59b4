//! Winograd convolution for dense 3×3, stride-1, undilated f32 convolutions on host slices
//! (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016).
//!
//! An m×m output tile of a 3×3 convolution is `Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A`, where `d` is the
//! (m+2)×(m+2) input patch and `g` the 3×3 kernel. Summed over input channels, each of the
//! (m+2)² transform positions ξ becomes one matrix product `M[ξ] = U[ξ] · V[ξ]` with
//! `U[ξ]` `[O, C]` (the transformed weights) and `V[ξ]` `[C, tiles]` (the transformed patches):
//! F(4×4, 3×3) does 36 products of C·O per 16 outputs where the direct convolution does 144,
//! F(2×2, 3×3) 16 per 4 where it does 36. The rest is linear-time transforms. F(4×4, 2×2) (25
//! products per 16 outputs instead of 64) serves the 2×2 convolutions that `cpu_winograd_s2`
//! turns stride-2 4×4 convolutions and their transposes into; its output can be written
//! interleaved into a larger map ([`OutLayout`]).
//!
//! The tiles are cut into blocks (one per thread unless `V` and `M` grow too large); blocks run
//! in parallel on rayon, each with its own buffers, and gemm runs single-threaded inside. Every
//! transform is written as sums of whole planes (one value per tile of the block), so the inner
//! loops are contiguous and vectorise. Weights are transformed once per call: the modulated
//! convolutions of StyleGAN2/GPEN change theirs on every call, and the cost is measured small
//! next to the products (`benches/RESULTS.md`).
//!
//! The result is the same convolution up to rounding; F(4×4) rounds more than the direct sum
//! (its transforms have entries up to 8 and 1/24), which the tests and `bench_layers` measure.

use std::cell::RefCell;

use rayon::prelude::*;

use super::cpu_conv::{self, OutPtr};
use super::kernel_switch::KernelSwitch;

mod transforms;

pub use transforms::Tile;
use transforms::{Transforms, transform_weights, two_sided};

/// Channels below which the transforms cost more than the products save. `bench_layers
/// --winograd` at load 1 (21:03 UTC), F(4×4) against the direct path: 32→32 @1024² 0.80×
/// (StyleGAN2-1024's top layer: 37 MB of `V` and `M` per block, the transforms memory-bound),
/// 32→32 @64² 1.55×, 64→64 @512² 1.19×, @256² 1.25×, @56² 1.34×, @32² 1.44×; every layer of
/// 64 channels or more at 32² or more won (1.16-1.99×), so 64 is the safe bound.
pub const MIN_CHANNELS: usize = 64;
/// Output pixels below which the direct convolution wins: every block multiplies by all of
/// `U` (36·O·C floats), so few tiles leave it memory-bound (same run: 512→512 @8² 0.13×, 64→64
/// @24² 0.30×, 256→256 @14² 0.60×, 128→128 @28² 0.87×; 64→64 @32² 1.23×, 512→512 @32² 1.24×).
pub const MIN_PIXELS: usize = 32 * 32;

/// Tiles per block: as few blocks as keep every thread busy, since each block streams all of
/// `U` through gemm's packing once (the first run used 8 MiB blocks: 512→512 @64² made 6 blocks
/// and read `U`'s 38 MB six times), but at most this many floats of `V` and `M` per block
/// (32 MiB per thread).
const BLOCK_ELEMS: usize = 1 << 23;
const MIN_BLOCK_TILES: usize = 32;
const MAX_BLOCK_TILES: usize = 4096;

/// Whether eligible 3×3 convolutions take the Winograd path.
static SWITCH: KernelSwitch = KernelSwitch::on();

/// Whether layers with one side of 32-63 channels and the other of at least 64 take this path
/// at up to [`MAX_HALF_WIDE_PIXELS`] outputs: GPEN-256's 64→32 at 256² ran 2.1-2.5× faster here
/// than on the direct path (`bench_nets --profile`, load 14, `benches/RESULTS.md`). The pixel
/// bound keeps the memory-bound case measured above (32→32 at 1024², 0.80×) direct.
static HALF_WIDE: KernelSwitch = KernelSwitch::on();
pub const MAX_HALF_WIDE_PIXELS: usize = 256 * 256;

/// Turns the half-wide layers' Winograd path on or off (for A/B benchmarks; on by default).
pub fn set_half_wide(on: bool) {
    HALF_WIDE.set(on);
}

pub fn set_enabled(on: bool) {
    SWITCH.set(on);
}

/// The tile used by [`conv2d_f32`] when it is called through `cpu_conv`.
pub const DEFAULT_TILE: Tile = Tile::F4;

/// Where the output planes of a call go: output pixel (y, x) of plane p is written at
/// `p·plane + (y·step[0] + offset[0])·row + x·step[1] + offset[1]` of the output buffer, so that
/// the four phases of a transposed convolution interleave into one map.
#[derive(Clone, Copy, Debug)]
pub struct OutLayout {
    pub plane: usize,
    pub row: usize,
    pub step: [usize; 2],
    pub offset: [usize; 2],
}

/// Whether `cpu_conv` should run a convolution here: dense 3×3, stride 1, wide enough and large
/// enough that the fewer multiplies outweigh the transforms (see [`MIN_CHANNELS`], [`MIN_PIXELS`]).
pub fn applies(c: usize, o: usize, (kh, kw): (usize, usize), stride: [usize; 2], out_pixels: usize) -> bool {
    let wide = c >= MIN_CHANNELS && o >= MIN_CHANNELS;
    let half_wide = HALF_WIDE.enabled()
        && c.min(o) >= MIN_CHANNELS / 2
        && c.max(o) >= MIN_CHANNELS
        && out_pixels <= MAX_HALF_WIDE_PIXELS;
    SWITCH.enabled()
        && (kh, kw) == (3, 3)
        && stride == [1, 1]
        && out_pixels >= MIN_PIXELS
        && (wide || half_wide)
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// One block's buffers: `v` [C, a², n], `m` [O, a², n], `d` and `tmp` [a², n], `y` [m², n].
#[derive(Default)]
struct Scratch {
    v: Vec<f32>,
    m: Vec<f32>,
    d: Vec<f32>,
    tmp: Vec<f32>,
    y: Vec<f32>,
}

fn grow(buf: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    &mut buf[..len]
}

/// A stride-1 convolution of `x` `[B, C, H, W]` with `weight` `[O, C, r, r]` (r = 3, or 2 for
/// [`Tile::F4K2`]), `bias` `[O]`, `padding` `[(top, bottom), (left, right)]`, by Winograd
/// F(m×m, r×r). Returns the output and its shape, as `cpu_conv::conv2d_f32`.
pub fn conv2d_f32(
    x: &[f32],
    shape: [usize; 4],
    weight: &[f32],
    wshape: [usize; 4],
    bias: Option<&[f32]>,
    padding: [(usize, usize); 2],
    tile: Tile,
) -> (Vec<f32>, [usize; 4]) {
    let [b, o, oh, ow] = cpu_conv::conv2d_out_shape(x, shape, weight, wshape, bias, [1, 1], padding);
    let mut out = vec![0.0f32; b * o * oh * ow];
    let layout = OutLayout {
        plane: oh * ow,
        row: ow,
        step: [1, 1],
        offset: [0, 0],
    };
    conv2d_into(x, shape, weight, wshape, bias, padding, tile, &mut out, layout);
    (out, [b, o, oh, ow])
}

/// [`conv2d_f32`] writing into `out` as `layout` says (every pixel of the output shape is
/// written, nothing else is touched).
#[allow(clippy::too_many_arguments)]
pub fn conv2d_into(
    x: &[f32],
    [b, c, h, w]: [usize; 4],
    weight: &[f32],
    [o, wc, kh, kw]: [usize; 4],
    bias: Option<&[f32]>,
    padding: [(usize, usize); 2],
    tile: Tile,
    out: &mut [f32],
    layout: OutLayout,
) {
    let tf = tile.transforms();
    let r = tf.r;
    assert_eq!((kh, kw), (r, r), "winograd: the kernel is {kh}x{kw}, not {r}x{r}");
    let [_, _, oh, ow] =
        cpu_conv::conv2d_out_shape(x, [b, c, h, w], weight, [o, wc, kh, kw], bias, [1, 1], padding);
    if b * o * oh * ow == 0 {
        return;
    }
    // Every pixel must land inside its own plane and row, and every plane inside `out`.
    let OutLayout {
        plane,
        row,
        step: [sy, sx],
        offset: [py, px],
    } = layout;
    assert!(
        (ow - 1) * sx + px < row && ((oh - 1) * sy + py + 1) * row <= plane && b * o * plane <= out.len(),
        "winograd: the output layout {layout:?} does not hold {b}x{o}x{oh}x{ow}"
    );
    let m = tf.m;
    let plan = Plan {
        tf,
        c,
        h,
        w,
        o,
        oh,
        ow,
        th: oh.div_ceil(m),
        tw: ow.div_ceil(m),
        pad: [padding[0].0, padding[1].0],
        layout,
    };
    let u = transform_weights(weight, o, c, tf);
    plan.run_blocks(x, b, &u, bias, OutPtr(out.as_mut_ptr()));
}

/// Shapes of one call.
struct Plan {
    tf: &'static Transforms,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    oh: usize,
    ow: usize,
    /// Tile rows and columns per image.
    th: usize,
    tw: usize,
    /// Top and left padding.
    pad: [usize; 2],
    /// Where the output goes.
    layout: OutLayout,
}

impl Plan {
    /// The whole convolution of `b` images with the transformed weights `u`, cut into blocks of
    /// tiles (see [`BLOCK_ELEMS`]).
    fn run_blocks(&self, x: &[f32], b: usize, u: &[f32], bias: Option<&[f32]>, dst: OutPtr) {
        let (a, c, o) = (self.tf.a, self.c, self.o);
        let tiles = b * self.th * self.tw;
        let threads = rayon::current_num_threads().max(1);
        let per_tile = a * a * (c + o);
        let max_tiles = (BLOCK_ELEMS / per_tile).clamp(MIN_BLOCK_TILES, MAX_BLOCK_TILES);
        // A multiple of the threads, so that the last round of blocks keeps every thread busy.
        let blocks = tiles.div_ceil(max_tiles).div_ceil(threads) * threads;
        let per_block = tiles.div_ceil(blocks);
        (0..blocks).into_par_iter().for_each(|i| {
            let t0 = (i * per_block).min(tiles);
            let t1 = (t0 + per_block).min(tiles);
            if t0 < t1 {
                SCRATCH.with(|s| self.block(x, u, bias, t0, t1, &mut s.borrow_mut(), dst));
            }
        });
    }

    /// Calls `f(img, ty, tx0, tx1, j0)` for each run of tiles `t0..t1` (numbered image by
    /// image, row by row) that lies in one tile row; `j0` is the run's first index in the block.
    #[inline(always)]
    fn rows(&self, t0: usize, t1: usize, mut f: impl FnMut(usize, usize, usize, usize, usize)) {
        let mut t = t0;
        while t < t1 {
            let (img, rem) = (t / (self.th * self.tw), t % (self.th * self.tw));
            let (ty, tx0) = (rem / self.tw, rem % self.tw);
            let tx1 = (tx0 + t1 - t).min(self.tw);
            f(img, ty, tx0, tx1, t - t0);
            t += tx1 - tx0;
        }
    }

    /// Tiles `t0..t1`: input transform, one product per position, output transform. The
    /// transforms' plane sums are compiled twice, for the baseline x86-64 (SSE2: 4 lanes) and
    /// for AVX2 (8 lanes), chosen at run time like gemm's own kernels; both round alike (no
    /// fused multiply-add is formed from separate `*` and `+`).
    #[allow(clippy::too_many_arguments)]
    fn block(
        &self,
        x: &[f32],
        u: &[f32],
        bias: Option<&[f32]>,
        t0: usize,
        t1: usize,
        s: &mut Scratch,
        out: OutPtr,
    ) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            unsafe { self.block_avx2(x, u, bias, t0, t1, s, out) };
            return;
        }
        self.block_impl(x, u, bias, t0, t1, s, out);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn block_avx2(
        &self,
        x: &[f32],
        u: &[f32],
        bias: Option<&[f32]>,
        t0: usize,
        t1: usize,
        s: &mut Scratch,
        out: OutPtr,
    ) {
        self.block_impl(x, u, bias, t0, t1, s, out);
    }

    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn block_impl(
        &self,
        x: &[f32],
        u: &[f32],
        bias: Option<&[f32]>,
        t0: usize,
        t1: usize,
        s: &mut Scratch,
        out: OutPtr,
    ) {
        let Plan { tf, c, h, w, o, .. } = *self;
        let (m, a) = (tf.m, tf.a);
        let (n, a2) = (t1 - t0, a * a);
        let Scratch { v, m: mb, d, tmp, y } = s;
        let (v, mb) = (grow(v, c * a2 * n), grow(mb, o * a2 * n));
        let (d, tmp, y) = (grow(d, a2 * n), grow(tmp, a2 * n), grow(y, m * m * n));
        for ci in 0..c {
            self.rows(t0, t1, |img, ty, tx0, tx1, j0| {
                let xc = &x[(img * c + ci) * h * w..][..h * w];
                self.gather(xc, ty, tx0, tx1, j0, n, d);
            });
            two_sided(d, tf.bt, (a, a), n, tmp, &mut v[ci * a2 * n..][..a2 * n]);
        }
        for xi in 0..a2 {
            // SAFETY: M[ξ] is rows o of stride a²·n and n columns starting at ξ·n inside `mb`
            // ([O, a², n]); U[ξ] is [O, C] inside `u`; V[ξ] is [C, n] with row stride a²·n
            // starting at ξ·n inside `v` ([C, a², n]).
            unsafe {
                gemm::gemm(
                    o,
                    n,
                    c,
                    mb.as_mut_ptr().add(xi * n),
                    1,
                    (a2 * n) as isize,
                    false,
                    u.as_ptr().add(xi * o * c),
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
        for oc in 0..o {
            two_sided(&mb[oc * a2 * n..][..a2 * n], tf.at, (m, a), n, tmp, y);
            let bias = bias.map_or(0.0, |b| b[oc]);
            self.rows(t0, t1, |img, ty, tx0, tx1, j0| {
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

    /// Plane (k, l) of `d`, columns `j0..`: the input pixel (ty·m + k − top, tx·m + l − left)
    /// of channel plane `xc` for tiles tx0..tx1 of tile row `ty` (zero outside the image).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn gather(&self, xc: &[f32], ty: usize, tx0: usize, tx1: usize, j0: usize, n: usize, d: &mut [f32]) {
        let (m, a) = (self.tf.m, self.tf.a);
        let (h, w, [pt, pl]) = (self.h, self.w, self.pad);
        for k in 0..a {
            let iy = (ty * m + k).checked_sub(pt).filter(|&iy| iy < h);
            for l in 0..a {
                let dst = &mut d[(k * a + l) * n + j0..][..tx1 - tx0];
                let Some(iy) = iy else {
                    dst.fill(0.0);
                    continue;
                };
                // Tiles whose column tx·m + l − left lies inside [0, w).
                let lo = pl.saturating_sub(l).div_ceil(m).clamp(tx0, tx1);
                let hi = if w + pl > l { (w + pl - l - 1) / m + 1 } else { 0 }.clamp(lo, tx1);
                dst[..lo - tx0].fill(0.0);
                dst[hi - tx0..].fill(0.0);
                if hi > lo {
                    let row = &xc[iy * w..(iy + 1) * w];
                    let first = lo * m + l - pl;
                    for (dv, sv) in dst[lo - tx0..hi - tx0]
                        .iter_mut()
                        .zip(row[first..].iter().step_by(m))
                    {
                        *dv = *sv;
                    }
                }
            }
        }
    }

    /// Writes the output tiles `y` (planes (r, s), columns `j0..` for tiles tx0..tx1 of tile
    /// row `ty`) plus `bias` into the output plane starting at `base`, clipped to oh × ow and
    /// placed as the layout says.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn scatter(
        &self,
        y: &[f32],
        bias: f32,
        base: usize,
        ty: usize,
        tx0: usize,
        tx1: usize,
        j0: usize,
        n: usize,
        out: OutPtr,
    ) {
        let m = self.tf.m;
        let (oh, ow) = (self.oh, self.ow);
        let OutLayout {
            row,
            step: [sy, sx],
            offset: [py, px],
            ..
        } = self.layout;
        for r in 0..m {
            let oy = ty * m + r;
            if oy >= oh {
                break;
            }
            let line = base + (oy * sy + py) * row + px;
            for s in 0..m {
                // Tiles whose column tx·m + s lies inside [0, ow).
                let hi = if ow > s { (ow - s - 1) / m + 1 } else { 0 }.clamp(tx0, tx1);
                let src = &y[(r * m + s) * n + j0..][..hi - tx0];
                for (tx, v) in (tx0..hi).zip(src) {
                    // SAFETY: (oy, tx·m + s) is inside oh × ow, which the layout places inside
                    // `out` (checked in `conv2d_into`), a distinct position per pixel; the pixel
                    // belongs to tile (ty, tx), which is in this block only, so no other thread
                    // writes it.
                    unsafe { *out.get().add(line + (tx * m + s) * sx) = v + bias };
                }
            }
        }
    }
}

#[path = "cpu_winograd_prepared.rs"]
mod prepared;
pub use prepared::{PreparedWeights, conv2d_prepared};

#[cfg(test)]
#[path = "cpu_winograd_tests.rs"]
mod tests;
