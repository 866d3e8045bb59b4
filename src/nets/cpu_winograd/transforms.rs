//! The transforms of the three Winograd tiles (Lavin & Gray's `Bᵀ`, `G`, `Aᵀ`) and the plane sums
//! that apply them: once to the weights per call ([`transform_weights`]), and to every block's
//! input patches and products ([`two_sided`]).

use rayon::prelude::*;

use crate::nets::cpu_conv::OutPtr;

/// Output tile side and kernel: F(2×2, 3×3) or F(4×4, 3×3), or F(4×4, 2×2) for the 2×2
/// kernels that stride-2 4×4 convolutions and their transposes split into (`cpu_winograd_s2`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tile {
    F2,
    F4,
    F4K2,
}

/// The three transforms of one F(m×m, r×r), row-major: `bt` [a, a], `g` [a, r], `at` [m, a],
/// with a = m + r − 1.
pub(super) struct Transforms {
    pub(super) m: usize,
    pub(super) r: usize,
    pub(super) a: usize,
    pub(super) bt: &'static [f64],
    pub(super) g: &'static [f64],
    pub(super) at: &'static [f64],
}

// Interpolation points 0, 1, −1 and ∞.
const F2: Transforms = Transforms {
    m: 2,
    r: 3,
    a: 4,
    #[rustfmt::skip]
    bt: &[
        1.0, 0.0, -1.0, 0.0,
        0.0, 1.0, 1.0, 0.0,
        0.0, -1.0, 1.0, 0.0,
        0.0, 1.0, 0.0, -1.0,
    ],
    #[rustfmt::skip]
    g: &[
        1.0, 0.0, 0.0,
        0.5, 0.5, 0.5,
        0.5, -0.5, 0.5,
        0.0, 0.0, 1.0,
    ],
    #[rustfmt::skip]
    at: &[
        1.0, 1.0, 1.0, 0.0,
        0.0, 1.0, -1.0, -1.0,
    ],
};

// Interpolation points 0, ±1, ±2 and ∞.
const F4: Transforms = Transforms {
    m: 4,
    r: 3,
    a: 6,
    #[rustfmt::skip]
    bt: &[
        4.0, 0.0, -5.0, 0.0, 1.0, 0.0,
        0.0, -4.0, -4.0, 1.0, 1.0, 0.0,
        0.0, 4.0, -4.0, -1.0, 1.0, 0.0,
        0.0, -2.0, -1.0, 2.0, 1.0, 0.0,
        0.0, 2.0, -1.0, -2.0, 1.0, 0.0,
        0.0, 4.0, 0.0, -5.0, 0.0, 1.0,
    ],
    #[rustfmt::skip]
    g: &[
        1.0 / 4.0, 0.0, 0.0,
        -1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0,
        -1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0,
        1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0,
        1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0,
        0.0, 0.0, 1.0,
    ],
    #[rustfmt::skip]
    at: &[
        1.0, 1.0, 1.0, 1.0, 1.0, 0.0,
        0.0, 1.0, -1.0, 2.0, -2.0, 0.0,
        0.0, 1.0, 1.0, 4.0, 4.0, 0.0,
        0.0, 1.0, -1.0, 8.0, -8.0, 1.0,
    ],
};

// F(4×4, 2×2), interpolation points 0, ±1, 2 and ∞ (Toom-Cook as in Lavin & Gray, solved
// exactly in rationals).
const F4K2: Transforms = Transforms {
    m: 4,
    r: 2,
    a: 5,
    #[rustfmt::skip]
    bt: &[
        2.0, -1.0, -2.0, 1.0, 0.0,
        0.0, -2.0, -1.0, 1.0, 0.0,
        0.0, 2.0, -3.0, 1.0, 0.0,
        0.0, -1.0, 0.0, 1.0, 0.0,
        0.0, 2.0, -1.0, -2.0, 1.0,
    ],
    #[rustfmt::skip]
    g: &[
        1.0 / 2.0, 0.0,
        -1.0 / 2.0, -1.0 / 2.0,
        -1.0 / 6.0, 1.0 / 6.0,
        1.0 / 6.0, 1.0 / 3.0,
        0.0, 1.0,
    ],
    #[rustfmt::skip]
    at: &[
        1.0, 1.0, 1.0, 1.0, 0.0,
        0.0, 1.0, -1.0, 2.0, 0.0,
        0.0, 1.0, 1.0, 4.0, 0.0,
        0.0, 1.0, -1.0, 8.0, 1.0,
    ],
};

impl Tile {
    pub(super) fn transforms(self) -> &'static Transforms {
        match self {
            Tile::F2 => &F2,
            Tile::F4 => &F4,
            Tile::F4K2 => &F4K2,
        }
    }

    /// The kernel side the tile serves.
    pub fn kernel(self) -> usize {
        self.transforms().r
    }
}

/// `U[ξ][o][c] = (G g[o][c] Gᵀ)[ξ]`, in chunks of (o, c) pairs: a chunk's r² taps are gathered
/// into planes (a few kB, so they stay in L1), and each position ξ is a sum of those planes,
/// written to the chunk's part of `U[ξ]`. Every weight is read once.
pub(super) fn transform_weights(weight: &[f32], o: usize, c: usize, tf: &Transforms) -> Vec<f32> {
    const CHUNK: usize = 256;
    let (a, r) = (tf.a, tf.r);
    let (pairs, taps) = (o * c, r * r);
    // Every tile's kernel is 2×2 or 3×3.
    assert!(taps <= 9, "winograd: {r}x{r} kernels have no tile");
    let mut u = vec![0.0f32; a * a * pairs];
    let dst = OutPtr(u.as_mut_ptr());
    // The coefficients in f64, rounded once: U[ξ = (i, j)] = Σ_{k,l} G[i][k]·G[j][l]·g[k][l].
    let coef: Vec<f32> = (0..a * a * taps)
        .map(|n| {
            let (xi, kl) = (n / taps, n % taps);
            (tf.g[(xi / a) * r + kl / r] * tf.g[(xi % a) * r + kl % r]) as f32
        })
        .collect();
    (0..pairs.div_ceil(CHUNK)).into_par_iter().for_each(|chunk| {
        let p0 = chunk * CHUNK;
        let len = (pairs - p0).min(CHUNK);
        let mut planes = [0.0f32; 9 * CHUNK];
        let mut out = [0.0f32; CHUNK];
        for (kl, plane) in planes.chunks_exact_mut(CHUNK).take(taps).enumerate() {
            for (d, s) in plane
                .iter_mut()
                .zip(weight[p0 * taps + kl..].iter().step_by(taps).take(len))
            {
                *d = *s;
            }
        }
        for (xi, k) in coef.chunks_exact(taps).enumerate() {
            let terms = k
                .iter()
                .zip(planes.chunks_exact(CHUNK))
                .map(|(&k, p)| (k, &p[..len]));
            sum_planes(&mut out[..len], terms);
            // SAFETY: pairs p0..p0 + len of plane ξ, inside `u` ([a², O·C]); only this chunk
            // writes them.
            unsafe { std::ptr::copy_nonoverlapping(out.as_ptr(), dst.get().add(xi * pairs + p0), len) };
        }
    });
    u
}

/// `dst = Σ coef · src` over the terms whose coefficient is not zero (`dst` zero if none).
#[inline(always)]
fn sum_planes<'s>(dst: &mut [f32], terms: impl Iterator<Item = (f32, &'s [f32])>) {
    let mut first = true;
    for (k, src) in terms {
        if k == 0.0 {
            continue;
        }
        let src = &src[..dst.len()];
        if first {
            if k == 1.0 {
                dst.copy_from_slice(src);
            } else {
                dst.iter_mut().zip(src).for_each(|(d, s)| *d = k * s);
            }
            first = false;
        } else if k == 1.0 {
            dst.iter_mut().zip(src).for_each(|(d, s)| *d += s);
        } else if k == -1.0 {
            dst.iter_mut().zip(src).for_each(|(d, s)| *d -= s);
        } else {
            dst.iter_mut().zip(src).for_each(|(d, s)| *d += k * s);
        }
    }
    if first {
        dst.fill(0.0);
    }
}

/// `dst(i, j) = Σ_k Σ_l mat[i][k] · mat[j][l] · src(k, l)` for `mat` `[ro, ri]`, where plane
/// (k, l) of `src` is `src[(k·ri + l)·n..][..n]`, and likewise `dst` with `ro`; `tmp` holds
/// `ro·ri·n`. The two one-sided products are sums of whole planes.
#[inline(always)]
pub(super) fn two_sided(
    src: &[f32],
    mat: &[f64],
    (ro, ri): (usize, usize),
    n: usize,
    tmp: &mut [f32],
    dst: &mut [f32],
) {
    for i in 0..ro {
        for l in 0..ri {
            let terms = (0..ri).map(|k| (mat[i * ri + k] as f32, &src[(k * ri + l) * n..][..n]));
            sum_planes(&mut tmp[(i * ri + l) * n..][..n], terms);
        }
    }
    for i in 0..ro {
        for j in 0..ro {
            let terms = (0..ri).map(|l| (mat[j * ri + l] as f32, &tmp[(i * ri + l) * n..][..n]));
            sum_planes(&mut dst[(i * ro + j) * n..][..n], terms);
        }
    }
}
