//! The kernels of the CLIP text encoder's host path (`super::host`), on row-major `[rows, width]`
//! slices: layer norm, the `gemm` products with bias and residual accumulated in place,
//! QuickGELU, and causal attention over the packed prompts. Each is tested against burn's op in
//! `host_tests.rs`.

use rayon::prelude::*;

use super::encoder::LN_EPS;
use crate::nets::profile;

/// QuickGELU's sigmoid slope (`x · σ(1.702·x)`).
const QUICK_GELU: f32 = 1.702;

/// Products with fewer multiply-adds than this run on one thread: splitting them costs more
/// than it saves.
const PARALLEL_MACS: usize = 1 << 16;

/// Layer norm of each row of `width` values of `x` into `out`: mean and biased variance of the
/// row, then `(x − mean) / √(var + ε) · γ + β`, each row in one visit while it sits in L1.
pub(crate) fn layer_norm(x: &[f32], out: &mut [f32], gamma: &[f32], beta: Option<&[f32]>, width: usize) {
    profile::scope(
        "layer_norm",
        || format!("{} rows x {width}", x.len() / width.max(1)),
        || {
            let norm_row = |(src, dst): (&[f32], &mut [f32])| {
                let mean = src.iter().sum::<f32>() / width as f32;
                let var = src.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / width as f32;
                let inv = 1.0 / (var + LN_EPS as f32).sqrt();
                match beta {
                    Some(beta) => {
                        for (((o, v), g), b) in dst.iter_mut().zip(src).zip(gamma).zip(beta) {
                            *o = (v - mean) * inv * g + b;
                        }
                    }
                    None => {
                        for ((o, v), g) in dst.iter_mut().zip(src).zip(gamma) {
                            *o = (v - mean) * inv * g;
                        }
                    }
                }
            };
            if x.len() >= 64 * 512 {
                x.par_chunks_exact(width)
                    .zip(out.par_chunks_exact_mut(width))
                    .for_each(norm_row);
            } else {
                x.chunks_exact(width)
                    .zip(out.chunks_exact_mut(width))
                    .for_each(norm_row);
            }
        },
    );
}

/// Each row of `dst` (rows of `width`) set to `bias`, or zeros without one.
pub(crate) fn fill_rows(dst: &mut [f32], bias: Option<&[f32]>, width: usize) {
    match bias {
        Some(b) => dst.chunks_exact_mut(width).for_each(|row| row.copy_from_slice(b)),
        None => dst.fill(0.0),
    }
}

/// `bias` added to each row of `dst` (rows of `width`).
pub(crate) fn add_rows(dst: &mut [f32], bias: Option<&[f32]>, width: usize) {
    if let Some(b) = bias {
        for row in dst.chunks_exact_mut(width) {
            row.iter_mut().zip(b).for_each(|(v, b)| *v += b);
        }
    }
}

/// How a weight matrix is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Weight {
    /// `[in, out]` row-major (burn's `Linear`): `y = x · W`.
    InOut,
    /// `[out, in]` row-major (PyTorch's, `in_proj_weight`): `y = x · Wᵀ`.
    OutIn,
}

/// `y[rows, n] = x[rows, k] · W` (W as `layout` says), added onto `y` when `accumulate` (the
/// bias or the residual stream already there), else overwriting it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn linear(
    y: &mut [f32],
    x: &[f32],
    w: &[f32],
    layout: Weight,
    rows: usize,
    k: usize,
    n: usize,
    accumulate: bool,
) {
    assert!(
        y.len() >= rows * n && x.len() >= rows * k && w.len() >= k * n,
        "linear: buffers smaller than [{rows}, {k}] · [{k}, {n}]"
    );
    if rows == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            y[..rows * n].fill(0.0);
        }
        return;
    }
    let (rhs_cs, rhs_rs) = match layout {
        Weight::InOut => (1, n as isize),
        Weight::OutIn => (k as isize, 1),
    };
    let threads = rayon::current_num_threads();
    let parallelism = if threads > 1 && rows * k * n >= PARALLEL_MACS {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    profile::scope(
        "linear",
        || format!("{rows}x{k} -> {n}"),
        || {
            // SAFETY: the asserts above keep every index of the three row-major operands
            // (`y` [rows, n], `x` [rows, k], `w` [k, n] or [n, k]) inside its slice, and `y`
            // is borrowed mutably, so it aliases neither input.
            unsafe {
                gemm::gemm(
                    rows,
                    n,
                    k,
                    y.as_mut_ptr(),
                    1,
                    n as isize,
                    accumulate,
                    x.as_ptr(),
                    1,
                    k as isize,
                    w.as_ptr(),
                    rhs_cs,
                    rhs_rs,
                    1.0,
                    1.0,
                    false,
                    false,
                    false,
                    parallelism,
                );
            }
        },
    );
}

/// QuickGELU (`x · σ(1.702·x)`) in place.
pub(crate) fn quick_gelu(x: &mut [f32]) {
    let len = x.len();
    profile::scope(
        "quick_gelu",
        || format!("{len} values"),
        || {
            let f = |v: &mut f32| *v /= 1.0 + (-QUICK_GELU * *v).exp();
            if len >= 1 << 16 {
                x.par_chunks_mut(1 << 14).for_each(|c| c.iter_mut().for_each(f));
            } else {
                x.iter_mut().for_each(f);
            }
        },
    );
}

/// Causal multi-head attention of packed `qkv` (`[rows, 3·width]`: q, k, v, each heads × d)
/// into `out` (`[rows, width]`, heads side by side): each query row scores only the keys of its
/// own prompt at or before it, the mask's lower triangle, so nothing masked is computed.
pub(crate) fn causal_attention(
    qkv: &[f32],
    out: &mut [f32],
    start: &[usize],
    len: &[usize],
    width: usize,
    heads: usize,
) {
    let rows: usize = len.iter().sum();
    let d = width / heads;
    let scale = 1.0 / (d as f32).sqrt();
    let w3 = 3 * width;
    // Prompt start of every packed row, so rows can be spread over threads one by one.
    let mut first = Vec::with_capacity(rows);
    for (&s, &n) in start.iter().zip(len) {
        first.extend(std::iter::repeat_n(s, n));
    }
    profile::scope(
        "attention",
        || format!("{rows} rows, {heads} heads of {d}"),
        || {
            out[..rows * width]
                .par_chunks_mut(width)
                .enumerate()
                .with_min_len(4)
                .for_each_init(Vec::new, |scores: &mut Vec<f32>, (r, o)| {
                    let s = first[r];
                    let keys = s..=r;
                    for h in 0..heads {
                        let q = &qkv[r * w3 + h * d..r * w3 + (h + 1) * d];
                        scores.clear();
                        scores.extend(keys.clone().map(|j| {
                            let k = &qkv[j * w3 + width + h * d..j * w3 + width + (h + 1) * d];
                            dot(q, k) * scale
                        }));
                        let max = scores.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
                        let mut sum = 0.0;
                        for v in scores.iter_mut() {
                            *v = (*v - max).exp();
                            sum += *v;
                        }
                        let o = &mut o[h * d..(h + 1) * d];
                        o.fill(0.0);
                        for (j, &p) in keys.clone().zip(scores.iter()) {
                            let v = &qkv[j * w3 + 2 * width + h * d..j * w3 + 2 * width + (h + 1) * d];
                            let p = p / sum;
                            o.iter_mut().zip(v).for_each(|(o, v)| *o += p * v);
                        }
                    }
                });
        },
    );
}

/// Dot product with eight partial sums (so it vectorises despite float ordering).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}
