//! Bilinear resizing with `align_corners = True` for the flex CPU backend, as two separable passes.
//!
//! burn 0.22's flex `interpolate` computes, for every output pixel, both source coordinates in
//! f64, four gathered loads and a four-term sum. AEI-Net upsamples every generator level ×2
//! (up to 64 channels at 256²), so here each plane is resized along its rows once (a table of
//! column taps, each input row read once) and then each output row is one two-row blend, a
//! contiguous multiply-add the compiler vectorises. The taps are burn's (coordinates in f64,
//! `in·(in − 1)/(out − 1)`), so the result matches burn's up to float rounding.

use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{DType, Tensor};
use rayon::prelude::*;

use super::cpu_conv;
use super::kernel_switch::KernelSwitch;
use super::profile;

/// Whether the resize takes this kernel.
static SWITCH: KernelSwitch = KernelSwitch::on();

pub fn set_enabled(on: bool) {
    SWITCH.set(on);
}

pub fn enabled() -> bool {
    SWITCH.enabled()
}

/// burn's bilinear `interpolate` of `x` to `[oh, ow]` with `align_corners = True`, through the
/// host kernel where the CPU kernels apply (f32 on flex, not under autodiff, both switches on).
pub fn resize_bilinear_aligned(x: Tensor<4>, [oh, ow]: [usize; 2]) -> Tensor<4> {
    let dims = x.dims();
    let burn_resize = move |x: Tensor<4>| {
        let options = InterpolateOptions {
            align_corners: true,
            ..InterpolateOptions::new(InterpolateMode::Bilinear)
        }
        .with_output_size([oh, ow]);
        interpolate(x, options)
    };
    profile::scope(
        "resize_bilinear",
        move || format!("{} -> {oh}x{ow}", profile::shape4(dims)),
        || {
            if !enabled() || x.dtype() != DType::F32 {
                return burn_resize(x);
            }
            cpu_conv::on_host_unary(
                x,
                |xs, [n, c, h, w]| {
                    (
                        resize_bilinear_aligned_f32(xs, [n, c, h, w], [oh, ow]),
                        [n, c, oh, ow],
                    )
                },
                burn_resize,
            )
        },
    )
}

/// Planes smaller than this are handed to rayon several at a time.
const MIN_PARALLEL_VALUES: usize = 1 << 14;

/// One output coordinate's two source indices and the weight of the second.
#[derive(Debug, Clone, Copy)]
struct Tap {
    lo: usize,
    hi: usize,
    frac: f32,
}

/// burn's align-corners mapping: `out · (in − 1) / max(out − 1, 1)`, clamped to the input.
fn taps(input: usize, output: usize) -> Vec<Tap> {
    let ratio = (input as f64 - 1.0) / (output.max(1) - 1).max(1) as f64;
    (0..output)
        .map(|o| {
            let coord = o as f64 * ratio;
            let lo = (coord.floor().max(0.0) as usize).min(input - 1);
            Tap {
                lo,
                hi: (lo + 1).min(input - 1),
                frac: (coord - lo as f64).max(0.0) as f32,
            }
        })
        .collect()
}

/// Bilinear resize of `x` `[N, C, H, W]` to `[oh, ow]` with `align_corners = True`.
pub fn resize_bilinear_aligned_f32(x: &[f32], [n, c, h, w]: [usize; 4], [oh, ow]: [usize; 2]) -> Vec<f32> {
    assert_eq!(x.len(), n * c * h * w, "resize: input length");
    let mut out = vec![0.0f32; n * c * oh * ow];
    if out.is_empty() || h == 0 || w == 0 {
        return out;
    }
    let (rows, cols) = (taps(h, oh), taps(w, ow));
    let out_plane = oh * ow;
    out.par_chunks_mut(out_plane)
        .zip(x.par_chunks(h * w))
        .with_min_len(MIN_PARALLEL_VALUES.div_ceil(out_plane))
        .for_each_init(Vec::new, |wide, (o, xs)| {
            // Every input row resized along x: [h, ow].
            wide.resize(h * ow, 0.0f32);
            for (src, dst) in xs.chunks_exact(w).zip(wide.chunks_exact_mut(ow)) {
                for (d, t) in dst.iter_mut().zip(&cols) {
                    *d = src[t.lo] * (1.0 - t.frac) + src[t.hi] * t.frac;
                }
            }
            for (dst, t) in o.chunks_exact_mut(ow).zip(&rows) {
                let a = &wide[t.lo * ow..(t.lo + 1) * ow];
                let b = &wide[t.hi * ow..(t.hi + 1) * ow];
                let (wa, wb) = (1.0 - t.frac, t.frac);
                for ((d, &a), &b) in dst.iter_mut().zip(a).zip(b) {
                    *d = a * wa + b * wb;
                }
            }
        });
    out
}
