//! AEI-Net's whole AAD layer as one host kernel for the flex CPU backend.
//!
//! Through separate steps an AAD layer at 256² (64 channels) makes six full passes over maps of
//! 16 MiB besides the two 1×1 convolutions: the instance norm writes `h̄`, the mask's 1×1 conv
//! reads it, the γ and β convolutions each copy the shared attribute map, fill a bias and write
//! their output, and the blend reads `h̄`, γ, β and the mask back. These are memory-bound (the
//! profile had the 64→64 1×1 convolutions at about 6 GFLOP/s). Here one statistics pass over `h`
//! gives each plane's mean and 1/σ, and then the map is cut into bands of pixels; per band, γ and
//! β come out of two small products `W[C, Cₐ]·z[Cₐ, n]` into a per-thread buffer that stays in
//! cache, the mask is summed from the normalised band, and the blend writes the output once. The
//! normalised map, γ and β never reach memory.
//!
//! The arithmetic is the reference's (`AADLayer.forward`) up to the order of float additions:
//! `h̄ = (h − μ)/σ` (statistics in f64 as `fused::instance_norm`), `m = sigmoid(w_h·h̄ + b_h)`,
//! `out = (1 − m)·(γₐ·h̄ + βₐ) + m·(γᵢ·h̄ + βᵢ)`, then a ReLU when asked.

use std::cell::RefCell;

use rayon::prelude::*;

use super::common::INSTANCE_NORM_EPS;
use super::cpu_conv::OutPtr;
use super::kernel_switch::KernelSwitch;

/// Floats of a band's γ/β buffer (`2C·n`): 256 KiB, so that it, the band of `h` and the output
/// band stay in a core's L2 between the product and the blend.
const BAND_BUFFER: usize = 1 << 16;
/// Bounds on a band's pixels: below the lower one gemm's packing of the weights (repeated per
/// band) costs more than the product; at 512 channels its buffer is then 1 MiB.
const MIN_BAND_PIXELS: usize = 256;
const MAX_BAND_PIXELS: usize = 4096;

/// Whether AEI-Net's AAD layers take this kernel.
static SWITCH: KernelSwitch = KernelSwitch::on();

pub fn set_enabled(on: bool) {
    SWITCH.set(on);
}

pub fn enabled() -> bool {
    SWITCH.enabled()
}

thread_local! {
    static SCRATCH: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// One AAD layer's parameters on the host. `C` is the width of `h`, `Cₐ` of the attribute map.
#[derive(Debug, Clone, Copy)]
pub struct AadParams<'a> {
    /// γ of the attributes: weight `[C, Cₐ]` (the 1×1 kernel flattened) and bias `[C]`.
    pub w_gamma: &'a [f32],
    pub b_gamma: &'a [f32],
    /// β of the attributes, shaped as γ.
    pub w_beta: &'a [f32],
    pub b_beta: &'a [f32],
    /// γ and β of the identity, `[N, C]` (the Linear layers' outputs).
    pub gamma_id: &'a [f32],
    pub beta_id: &'a [f32],
    /// The mask's 1×1 conv: weight `[C]`, bias.
    pub w_mask: &'a [f32],
    pub b_mask: f32,
}

/// The AAD layer on host values: `h` `[N, C, H, W]`, `z_attr` `[N, Cₐ, H, W]`. Returns the
/// blended map `[N, C, H, W]` (through a ReLU when `then_relu`) and the mask `[N, 1, H, W]`.
pub fn aad_f32(
    h: &[f32],
    [n, c, hh, ww]: [usize; 4],
    z_attr: &[f32],
    ca: usize,
    p: &AadParams,
    then_relu: bool,
) -> (Vec<f32>, Vec<f32>) {
    let plane = hh * ww;
    assert_eq!(h.len(), n * c * plane, "aad: h length");
    assert_eq!(z_attr.len(), n * ca * plane, "aad: z_attr length");
    assert_eq!(p.w_gamma.len(), c * ca, "aad: γ weight length");
    assert_eq!(p.w_beta.len(), c * ca, "aad: β weight length");
    assert_eq!(p.b_gamma.len(), c, "aad: γ bias length");
    assert_eq!(p.b_beta.len(), c, "aad: β bias length");
    assert_eq!(p.gamma_id.len(), n * c, "aad: identity γ length");
    assert_eq!(p.beta_id.len(), n * c, "aad: identity β length");
    assert_eq!(p.w_mask.len(), c, "aad: mask weight length");
    let mut out = vec![0.0f32; h.len()];
    let mut mask = vec![0.0f32; n * plane];
    if out.is_empty() {
        return (out, mask);
    }
    let stats = plane_stats(h, plane);
    let band = (BAND_BUFFER / (2 * c))
        .clamp(MIN_BAND_PIXELS, MAX_BAND_PIXELS)
        .min(plane);
    let bands_per_image = plane.div_ceil(band);
    let bands = n * bands_per_image;
    let threads = rayon::current_num_threads().max(1);
    let job = Job {
        h,
        z_attr,
        p,
        stats: &stats,
        c,
        ca,
        plane,
        band,
        bands_per_image,
        then_relu,
        out: OutPtr(out.as_mut_ptr()),
        mask: OutPtr(mask.as_mut_ptr()),
    };
    if bands >= 2 * threads {
        (0..bands)
            .into_par_iter()
            .for_each(|b| job.run(b, gemm::Parallelism::None));
    } else {
        // Few pixels and (in AEI-Net) wide weights: the products are weight-bound, so one band
        // per image with gemm's own threads reads each weight once.
        let parallelism = if threads > 1 {
            gemm::Parallelism::Rayon(threads)
        } else {
            gemm::Parallelism::None
        };
        (0..bands).for_each(|b| job.run(b, parallelism));
    }
    (out, mask)
}

/// Mean and 1/√(var + ε) of every plane (biased variance, centred before squaring, in f64).
fn plane_stats(h: &[f32], plane: usize) -> Vec<(f32, f32)> {
    const LANES: usize = 8;
    // Independent partial sums, so that the f64 additions vectorise; the sums stay in f64.
    let sum = |xs: &[f32], f: &dyn Fn(f32) -> f64| {
        let mut acc = [0.0f64; LANES];
        let chunks = xs.chunks_exact(LANES);
        let tail: f64 = chunks.remainder().iter().map(|&v| f(v)).sum();
        for chunk in chunks {
            for (a, &v) in acc.iter_mut().zip(chunk) {
                *a += f(v);
            }
        }
        acc.iter().sum::<f64>() + tail
    };
    h.par_chunks(plane)
        .with_min_len((1usize << 14).div_ceil(plane))
        .map(|xs| {
            let len = xs.len() as f64;
            let mean = sum(xs, &|v| v as f64) / len;
            let var = sum(xs, &|v| (v as f64 - mean).powi(2)) / len;
            (mean as f32, (1.0 / (var + INSTANCE_NORM_EPS).sqrt()) as f32)
        })
        .collect()
}

/// What every band reads and where it writes.
struct Job<'a> {
    h: &'a [f32],
    z_attr: &'a [f32],
    p: &'a AadParams<'a>,
    stats: &'a [(f32, f32)],
    c: usize,
    ca: usize,
    plane: usize,
    band: usize,
    bands_per_image: usize,
    then_relu: bool,
    out: OutPtr,
    mask: OutPtr,
}

impl Job<'_> {
    /// Band `b`: pixels `p0..p1` of image `b / bands_per_image`, every channel.
    fn run(&self, b: usize, parallelism: gemm::Parallelism) {
        let Job { c, ca, plane, .. } = *self;
        let img = b / self.bands_per_image;
        let p0 = (b % self.bands_per_image) * self.band;
        let p1 = (p0 + self.band).min(plane);
        let n = p1 - p0;
        let h = &self.h[img * c * plane..(img + 1) * c * plane];
        let z = &self.z_attr[img * ca * plane + p0..];
        let stats = &self.stats[img * c..(img + 1) * c];
        SCRATCH.with(|s| {
            let mut scratch = s.borrow_mut();
            let (buf, acc) = &mut *scratch;
            if buf.len() < 2 * c * n {
                buf.resize(2 * c * n, 0.0);
            }
            if acc.len() < n {
                acc.resize(n, 0.0);
            }
            let (gamma, beta) = buf[..2 * c * n].split_at_mut(c * n);
            for (dst, w) in [(gamma, self.p.w_gamma), (beta, self.p.w_beta)] {
                // SAFETY: dst is a [c, n] buffer (row stride n); lhs is the [c, ca] weight; rhs
                // is pixels p0..p1 of the ca channels of image `img`, row stride `plane`: its
                // last row ends at p1 ≤ plane inside `z_attr`.
                unsafe {
                    gemm::gemm(
                        c,
                        n,
                        ca,
                        dst.as_mut_ptr(),
                        1,
                        n as isize,
                        false,
                        w.as_ptr(),
                        1,
                        ca as isize,
                        z.as_ptr(),
                        1,
                        plane as isize,
                        0.0,
                        1.0,
                        false,
                        false,
                        false,
                        parallelism,
                    );
                }
            }
            let acc = &mut acc[..n];
            acc.fill(self.p.b_mask);
            for (ci, &(mean, inv)) in stats.iter().enumerate() {
                let wm = self.p.w_mask[ci];
                for (a, &x) in acc.iter_mut().zip(&h[ci * plane + p0..ci * plane + p1]) {
                    *a += wm * ((x - mean) * inv);
                }
            }
            for a in acc.iter_mut() {
                *a = sigmoid(*a);
            }
            // SAFETY: pixels p0..p1 of image `img`'s mask plane, written by this band only.
            let mask_out =
                unsafe { std::slice::from_raw_parts_mut(self.mask.get().add(img * plane + p0), n) };
            mask_out.copy_from_slice(acc);
            let (gamma, beta) = buf[..2 * c * n].split_at(c * n);
            for (ci, &(mean, inv)) in stats.iter().enumerate() {
                let (bg, bb) = (self.p.b_gamma[ci], self.p.b_beta[ci]);
                let (gi, bi) = (self.p.gamma_id[img * c + ci], self.p.beta_id[img * c + ci]);
                // SAFETY: pixels p0..p1 of channel `ci` of image `img`, written by this band
                // only (bands of one image cover disjoint pixel ranges of every channel).
                let o = unsafe {
                    std::slice::from_raw_parts_mut(self.out.get().add((img * c + ci) * plane + p0), n)
                };
                let values = o
                    .iter_mut()
                    .zip(&h[ci * plane + p0..ci * plane + p1])
                    .zip(&gamma[ci * n..(ci + 1) * n])
                    .zip(&beta[ci * n..(ci + 1) * n])
                    .zip(acc.iter());
                for ((((o, &x), &g), &be), &mk) in values {
                    let x = (x - mean) * inv;
                    let a = (g + bg) * x + (be + bb);
                    let i = gi * x + bi;
                    let v = (1.0 - mk) * a + mk * i;
                    *o = if self.then_relu { v.max(0.0) } else { v };
                }
            }
        });
    }
}

/// The logistic function as burn's flex backend computes it (no overflow for large |x|).
fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}
