//! The "non-leaking" augmentation of rosinality's `train.py --augment` (`non_leaking.py`'s
//! `augment(img, p)`): a random affine warp, then a random colour transform, each of their parts
//! applied to each image with probability `p`, on a batch `[B, 3, S, S]` in `[-1, 1]`.
//!
//! The parts and their parameter laws, in the official order (each a matrix that multiplies the
//! transform built so far from the left when its Bernoulli(p) draw is taken):
//! - geometric (3×3, pixels, origin at the image centre `((W−1)/2, (H−1)/2)`): x-flip
//!   (category {0, 1}); a 90° rotation by `−π/2 · k` with `k` from the categories **(0, 3)** as the
//!   official code has it (so 0° or +90°, never 180°); an integer translation of
//!   `round(U(−0.125, 0.125) · size)` pixels (ties to even, as `torch.round`); an isotropic scale
//!   `lognormal(0, 0.2·ln 2)`; a pre-rotation by `−U(−π, π)` and a post-rotation likewise, each
//!   with probability `1 − √(1 − p)`; an anisotropic scale `(s, 1/s)`, `s ~ lognormal(0, 0.2·ln 2)`;
//!   a fractional translation `N(0, 0.125) · size`.
//! - colour (4×4 on `(r, g, b, 1)`): brightness `+N(0, 0.2)`; contrast `×lognormal(0, 0.5·ln 2)`;
//!   a luma flip (category {0, 1}) about the axis `(1, 1, 1)/√3`; a hue rotation about that axis
//!   by `U(−π, π)`; a saturation scale `lognormal(0, ln 2)` orthogonal to it.
//!
//! The image is resampled at `G⁻¹ · x` for every output pixel `x` (the official `G_try`),
//! the input reflected at its borders by as many pixels as the corners of the transformed image
//! need (the official `get_padding`, capped at `size − 1`), zero beyond.
//!
//! # Where this differs from the official resampling, and why
//! The official code upsamples the padded image 2× with the 12-tap `sym6` wavelet filter, samples
//! it bilinearly (`grid_sample`, `align_corners=False`) and filters and decimates back. Here the
//! image is sampled bilinearly at its own resolution, without the 2× anti-aliasing. Here, the
//! transforms that move pixels onto pixels (flips, 90° rotations, integer translations) are exact
//! pixel permutations; there, integer translations are exact too (the `sym6` up/down pair is
//! orthonormal), but a flip or a quarter turn also mirrors the filter, and since `sym6` is not
//! symmetric the pair no longer cancels: the official result is the permutation slightly
//! low-passed. For fractional and shrinking transforms this warp is a little sharper and aliases
//! where the official one low-passes. Measured against the official `random_apply_affine` and
//! `apply_color` (torch 2.15, CPU) on fixed matrices, 32×32 images in [−1, 1], a smooth pattern /
//! uniform noise, mean (max) absolute difference: integer translation 4e-8 (2e-7) / 4e-7 (3e-6),
//! so centre, direction and reflection agree; x-flip 0.006 (0.021) / 0.071 (0.29) and quarter
//! turn 0.004 (0.014) / 0.069 (0.28), the official filtering; a rotation by 0.3 rad with scales
//! (0.9, 1.1) and a fractional shift 0.0026 (0.024) / 0.094 (0.60); the colour transform 6e-8 /
//! 1.2e-7. The reason is the R1 step: `train.py` takes R1's gradient with
//! respect to the image *before* augmentation, so the warp's adjoint has to be written out as
//! differentiable operations ([`Augmentation::adjoint`]); a four-tap gather and its scatter are
//! exact and cheap, where the filtered path would need the adjoints of two more resamplings at
//! twice the resolution (four times the memory of the image batch per R1 step).

use burn::tensor::{Device, IndexingUpdateOp, Int, Tensor, TensorData};

use super::TrainError;
use crate::pipeline::generate::SeedStream;

/// A 3×3 matrix, rows first.
pub type Mat3 = [[f64; 3]; 3];
/// A 4×4 matrix, rows first.
pub type Mat4 = [[f64; 4]; 4];

fn eye3() -> Mat3 {
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
}

fn eye4() -> Mat4 {
    let mut m = [[0.0; 4]; 4];
    for (i, row) in m.iter_mut().enumerate() {
        row[i] = 1.0;
    }
    m
}

fn mul3(a: &Mat3, b: &Mat3) -> Mat3 {
    std::array::from_fn(|i| std::array::from_fn(|j| (0..3).map(|k| a[i][k] * b[k][j]).sum()))
}

fn mul4(a: &Mat4, b: &Mat4) -> Mat4 {
    std::array::from_fn(|i| std::array::from_fn(|j| (0..4).map(|k| a[i][k] * b[k][j]).sum()))
}

/// The inverse of an affine 3×3 matrix (last row `0 0 1`), or `None` when it is singular.
pub fn invert_affine(m: &Mat3) -> Option<Mat3> {
    let det = m[0][0] * m[1][1] - m[0][1] * m[1][0];
    if det.abs() < 1e-12 || !det.is_finite() {
        return None;
    }
    let (a, b, c, d) = (m[1][1] / det, -m[0][1] / det, -m[1][0] / det, m[0][0] / det);
    let tx = -(a * m[0][2] + b * m[1][2]);
    let ty = -(c * m[0][2] + d * m[1][2]);
    Some([[a, b, tx], [c, d, ty], [0.0, 0.0, 1.0]])
}

pub fn translate(tx: f64, ty: f64) -> Mat3 {
    [[1.0, 0.0, tx], [0.0, 1.0, ty], [0.0, 0.0, 1.0]]
}

pub fn rotate(theta: f64) -> Mat3 {
    let (s, c) = theta.sin_cos();
    [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]
}

pub fn scale(sx: f64, sy: f64) -> Mat3 {
    [[sx, 0.0, 0.0], [0.0, sy, 0.0], [0.0, 0.0, 1.0]]
}

/// `exp(N(0, std))`, `torch.Tensor.log_normal_`.
fn lognormal(s: &mut SeedStream, std: f64) -> f64 {
    (s.gauss() * std).exp()
}

fn uniform(s: &mut SeedStream, low: f64, high: f64) -> f64 {
    low + (high - low) * s.next_f64()
}

/// A draw from `categories`, uniformly.
fn category(s: &mut SeedStream, categories: &[f64]) -> f64 {
    let k = (s.next_f64() * categories.len() as f64) as usize;
    categories[k.min(categories.len() - 1)]
}

/// What was drawn for one image: its geometric and colour transforms, and whether any part of
/// each was taken (an untouched image is passed through as it is).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImageTransform {
    /// The forward transform `G` in centred pixels (the output is `img(G⁻¹ x)`).
    pub geometric: Mat3,
    pub warped: bool,
    /// The colour matrix `C`: `rgb' = C[:3, :3] rgb + C[:3, 3]`.
    pub color: Mat4,
    pub colored: bool,
}

impl ImageTransform {
    pub fn identity() -> ImageTransform {
        ImageTransform {
            geometric: eye3(),
            warped: false,
            color: eye4(),
            colored: false,
        }
    }
}

/// `sample_affine(p, 1, height, width)` for one image.
pub fn sample_geometric(s: &mut SeedStream, p: f64, height: usize, width: usize) -> (Mat3, bool) {
    let (h, w) = (height as f64, width as f64);
    let mut g = eye3();
    let mut taken = false;
    let mut apply = |s: &mut SeedStream, prob: f64, m: Mat3| {
        if s.next_f64() < prob {
            g = mul3(&m, &g);
            taken = true;
        }
    };
    // Every parameter is drawn whether or not its part is taken, as the official code draws a
    // whole batch of parameters per part; the stream then does not depend on p's outcomes.
    let flip = category(s, &[0.0, 1.0]);
    apply(s, p, scale(1.0 - 2.0 * flip, 1.0));
    let quarter = category(s, &[0.0, 3.0]);
    apply(s, p, rotate(-std::f64::consts::FRAC_PI_2 * quarter));
    let (ty, tx) = (uniform(s, -0.125, 0.125), uniform(s, -0.125, 0.125));
    apply(
        s,
        p,
        translate((tx * w).round_ties_even(), (ty * h).round_ties_even()),
    );
    let iso = lognormal(s, 0.2 * std::f64::consts::LN_2);
    apply(s, p, scale(iso, iso));
    let p_rot = 1.0 - (1.0 - p).max(0.0).sqrt();
    let pre = uniform(s, -std::f64::consts::PI, std::f64::consts::PI);
    apply(s, p_rot, rotate(-pre));
    let aniso = lognormal(s, 0.2 * std::f64::consts::LN_2);
    apply(s, p, scale(aniso, 1.0 / aniso));
    let post = uniform(s, -std::f64::consts::PI, std::f64::consts::PI);
    apply(s, p_rot, rotate(-post));
    let (fy, fx) = (s.gauss() * 0.125, s.gauss() * 0.125);
    apply(s, p, translate(fx * w, fy * h));
    (g, taken)
}

/// The luma axis `(1, 1, 1, 0)/√3`'s outer product with itself, entry `(i, j)`.
fn luma_outer(i: usize, j: usize) -> f64 {
    if i < 3 && j < 3 { 1.0 / 3.0 } else { 0.0 }
}

/// `luma_flip_mat`: `I − 2·u uᵀ·i` (a reflection of the colours through the grey plane when
/// `i = 1`).
pub fn luma_flip(i: f64) -> Mat4 {
    std::array::from_fn(|r| std::array::from_fn(|c| f64::from(u8::from(r == c)) - 2.0 * luma_outer(r, c) * i))
}

/// `rotate3d_mat` about the luma axis (a hue rotation): Rodrigues' `cos·I + sin·[u]× +
/// (1 − cos)·u uᵀ` in the top-left 3×3.
pub fn hue_rotation(theta: f64) -> Mat4 {
    let v = 1.0 / 3f64.sqrt();
    let cross = [[0.0, -v, v], [v, 0.0, -v], [-v, v, 0.0]];
    let (sin, cos) = theta.sin_cos();
    std::array::from_fn(|i| {
        std::array::from_fn(|j| match (i, j) {
            (3, 3) => 1.0,
            (3, _) | (_, 3) => 0.0,
            _ => cos * f64::from(u8::from(i == j)) + sin * cross[i][j] + (1.0 - cos) * luma_outer(i, j),
        })
    })
}

/// `saturation_mat`: `u uᵀ + (I − u uᵀ)·s` (the official 4×4 eye makes the last entry `s` too;
/// it multiplies only the homogeneous coordinate, which `apply_color` never reads).
pub fn saturation(sat: f64) -> Mat4 {
    std::array::from_fn(|i| {
        std::array::from_fn(|j| luma_outer(i, j) + (f64::from(u8::from(i == j)) - luma_outer(i, j)) * sat)
    })
}

/// `sample_color(p, 1)` for one image.
pub fn sample_color(s: &mut SeedStream, p: f64) -> (Mat4, bool) {
    let mut c = eye4();
    let mut taken = false;
    let mut apply = |s: &mut SeedStream, m: Mat4| {
        if s.next_f64() < p {
            c = mul4(&m, &c);
            taken = true;
        }
    };
    let b = s.gauss() * 0.2;
    let mut m = eye4();
    (0..3).for_each(|i| m[i][3] = b);
    apply(s, m);

    let k = lognormal(s, 0.5 * std::f64::consts::LN_2);
    let mut m = eye4();
    (0..3).for_each(|i| m[i][i] = k);
    apply(s, m);

    let flip = category(s, &[0.0, 1.0]);
    apply(s, luma_flip(flip));
    let theta = uniform(s, -std::f64::consts::PI, std::f64::consts::PI);
    apply(s, hue_rotation(theta));
    let sat = lognormal(s, std::f64::consts::LN_2);
    apply(s, saturation(sat));
    (c, taken)
}

/// `augment(img, p)`'s draws for a batch of `batch` images of `size`² pixels.
pub fn sample(s: &mut SeedStream, p: f64, batch: usize, size: usize) -> Augmentation {
    let transforms = (0..batch)
        .map(|_| {
            let (geometric, warped) = sample_geometric(s, p, size, size);
            let (color, colored) = sample_color(s, p);
            ImageTransform {
                geometric,
                warped,
                color,
                colored,
            }
        })
        .collect();
    Augmentation { transforms }
}

/// A batch's transforms, applied by [`Augmentation::apply`] and transposed by
/// [`Augmentation::adjoint`].
#[derive(Debug, Clone, PartialEq)]
pub struct Augmentation {
    pub transforms: Vec<ImageTransform>,
}

/// The warp as a sparse linear map on the flattened batch: output element `o` is
/// `Σ_k weights[k·n + o] · input[index[k·n + o]]` over four bilinear taps.
struct Taps {
    index: Tensor<1, Int>,
    weights: Tensor<1>,
    n: usize,
}

/// `get_padding` for the batch: how far (left, right, top, bottom) the input must be reflected
/// so that the corners of every output map inside it, plus 2·(12/4) pixels, capped at size − 1.
fn padding(inverses: &[Mat3], height: usize, width: usize) -> [f64; 4] {
    let (cx, cy) = ((width as f64 - 1.0) / 2.0, (height as f64 - 1.0) / 2.0);
    let corners = [(-cx, -cy), (cx, -cy), (cx, cy), (-cx, cy)];
    let mut reach = [f64::MIN; 4];
    for m in inverses {
        for &(x, y) in &corners {
            let px = m[0][0] * x + m[0][1] * y + m[0][2];
            let py = m[1][0] * x + m[1][1] * y + m[1][2];
            reach = [
                reach[0].max(-px),
                reach[1].max(px),
                reach[2].max(-py),
                reach[3].max(py),
            ];
        }
    }
    // pad_k · 2 with the 12-tap kernel's pad_k = 3.
    let extra = 6.0;
    let caps = [
        width as f64 - 1.0,
        width as f64 - 1.0,
        height as f64 - 1.0,
        height as f64 - 1.0,
    ];
    let centre = [cx, cx, cy, cy];
    std::array::from_fn(|i| (reach[i] + extra - centre[i]).clamp(0.0, caps[i]).ceil())
}

/// Index `i` reflected into `[0, n)` (torch's `reflect`: the edge is not repeated), or `None`
/// beyond the padding.
fn reflect(i: i64, n: usize, before: f64, after: f64) -> Option<usize> {
    let last = n as i64 - 1;
    if (i as f64) < -before || (i as f64) > last as f64 + after {
        return None;
    }
    let r = if i < 0 {
        -i
    } else if i > last {
        2 * last - i
    } else {
        i
    };
    (0..=last).contains(&r).then_some(r as usize)
}

/// Coordinates this close to a whole pixel are taken as that pixel, so that flips, quarter turns
/// and integer shifts are exact permutations despite `sin(π/2) ≠ 1` in floating point.
const SNAP: f64 = 1e-6;

impl Augmentation {
    /// The identity for `batch` images.
    pub fn identity(batch: usize) -> Augmentation {
        Augmentation {
            transforms: vec![ImageTransform::identity(); batch],
        }
    }

    /// Whether this leaves every image as it is (`p = 0`, or no part drawn).
    pub fn is_identity(&self) -> bool {
        self.transforms.iter().all(|t| !t.warped && !t.colored)
    }

    fn check(&self, dims: [usize; 4]) -> Result<(), TrainError> {
        if dims[0] != self.transforms.len() || dims[1] != 3 {
            return Err(TrainError::Input(format!(
                "augmentation drawn for {} RGB images applied to a batch {dims:?}",
                self.transforms.len()
            )));
        }
        Ok(())
    }

    fn taps(&self, dims: [usize; 4], device: &Device) -> Result<Taps, TrainError> {
        let [batch, channels, height, width] = dims;
        let inverses = self
            .transforms
            .iter()
            .map(|t| {
                invert_affine(&t.geometric).ok_or_else(|| {
                    TrainError::Input(format!("a singular augmentation matrix {:?}", t.geometric))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let [left, right, top, bottom] = padding(&inverses, height, width);
        let (cx, cy) = ((width as f64 - 1.0) / 2.0, (height as f64 - 1.0) / 2.0);
        let n = batch * channels * height * width;
        let mut index = vec![0i64; 4 * n];
        let mut weights = vec![0f32; 4 * n];
        let snap = |v: f64| {
            if (v - v.round()).abs() < SNAP {
                v.round()
            } else {
                v
            }
        };
        for (b, m) in inverses.iter().enumerate() {
            for y in 0..height {
                for x in 0..width {
                    let (ox, oy) = (x as f64 - cx, y as f64 - cy);
                    let sx = snap(m[0][0] * ox + m[0][1] * oy + m[0][2] + cx);
                    let sy = snap(m[1][0] * ox + m[1][1] * oy + m[1][2] + cy);
                    let (x0, y0) = (sx.floor(), sy.floor());
                    let (fx, fy) = (sx - x0, sy - y0);
                    let taps = [
                        (0, 0, (1.0 - fx) * (1.0 - fy)),
                        (1, 0, fx * (1.0 - fy)),
                        (0, 1, (1.0 - fx) * fy),
                        (1, 1, fx * fy),
                    ];
                    for (k, (dx, dy, w)) in taps.into_iter().enumerate() {
                        let ix = reflect(x0 as i64 + dx, width, left, right);
                        let iy = reflect(y0 as i64 + dy, height, top, bottom);
                        let (Some(ix), Some(iy)) = (ix, iy) else { continue };
                        if w == 0.0 {
                            continue;
                        }
                        for c in 0..channels {
                            let o = ((b * channels + c) * height + y) * width + x;
                            let i = ((b * channels + c) * height + iy) * width + ix;
                            index[k * n + o] = i as i64;
                            weights[k * n + o] = w as f32;
                        }
                    }
                }
            }
        }
        Ok(Taps {
            index: Tensor::from_data(TensorData::new(index, [4 * n]), device),
            weights: Tensor::from_data(TensorData::new(weights, [4 * n]), device),
            n,
        })
    }

    /// `C[:3, :3]` per image `[B, 3, 3]` (transposed when `transpose`) and `C[:3, 3]` `[B, 3, 1]`.
    fn color_mats(&self, transpose: bool, device: &Device) -> (Tensor<3>, Tensor<3>) {
        let mut mats = Vec::with_capacity(self.transforms.len() * 9);
        let mut shifts = Vec::with_capacity(self.transforms.len() * 3);
        for t in &self.transforms {
            for (i, row) in t.color.iter().take(3).enumerate() {
                mats.extend((0..3).map(|j| (if transpose { t.color[j][i] } else { row[j] }) as f32));
                shifts.push(row[3] as f32);
            }
        }
        let b = self.transforms.len();
        (
            Tensor::from_data(TensorData::new(mats, [b, 3, 3]), device),
            Tensor::from_data(TensorData::new(shifts, [b, 3, 1]), device),
        )
    }

    /// The geometric warp alone (differentiable in `img`).
    pub fn warp(&self, img: Tensor<4>) -> Result<Tensor<4>, TrainError> {
        let dims = img.dims();
        self.check(dims)?;
        if self.transforms.iter().all(|t| !t.warped) {
            return Ok(img);
        }
        let taps = self.taps(dims, &img.device())?;
        let flat = img.reshape([taps.n]);
        let picked = flat.select(0, taps.index) * taps.weights;
        Ok(picked.reshape([4, taps.n]).sum_dim(0).reshape(dims))
    }

    /// The warp's transpose: `⟨warp(x), v⟩ = ⟨x, warp_adjoint(v)⟩` (differentiable in `v`).
    pub fn warp_adjoint(&self, v: Tensor<4>) -> Result<Tensor<4>, TrainError> {
        let dims = v.dims();
        self.check(dims)?;
        if self.transforms.iter().all(|t| !t.warped) {
            return Ok(v);
        }
        let taps = self.taps(dims, &v.device())?;
        let spread = v.reshape([1, taps.n]).repeat_dim(0, 4).reshape([4 * taps.n]) * taps.weights;
        let zeros = Tensor::<1>::zeros([taps.n], &spread.device());
        Ok(zeros
            .select_assign(0, taps.index, spread, IndexingUpdateOp::Add)
            .reshape(dims))
    }

    /// The colour transform alone (`apply_color`).
    pub fn color(&self, img: Tensor<4>) -> Result<Tensor<4>, TrainError> {
        let dims = img.dims();
        self.check(dims)?;
        if self.transforms.iter().all(|t| !t.colored) {
            return Ok(img);
        }
        let [b, c, h, w] = dims;
        let (mats, shifts) = self.color_mats(false, &img.device());
        Ok((mats.matmul(img.reshape([b, c, h * w])) + shifts).reshape(dims))
    }

    /// The colour transform's linear part transposed (its shift has no share in a gradient).
    pub fn color_adjoint(&self, v: Tensor<4>) -> Result<Tensor<4>, TrainError> {
        let dims = v.dims();
        self.check(dims)?;
        if self.transforms.iter().all(|t| !t.colored) {
            return Ok(v);
        }
        let [b, c, h, w] = dims;
        let (mats, _) = self.color_mats(true, &v.device());
        Ok(mats.matmul(v.reshape([b, c, h * w])).reshape(dims))
    }

    /// `augment(img, p)` with these draws: the warp, then the colour transform.
    pub fn apply(&self, img: Tensor<4>) -> Result<Tensor<4>, TrainError> {
        self.color(self.warp(img)?)
    }

    /// The gradient with respect to the un-augmented image of a function of the augmented one,
    /// given its gradient `v` with respect to the augmented image: `Jᵀ v`, written as
    /// differentiable operations of `v` (R1 differentiates through it).
    pub fn adjoint(&self, v: Tensor<4>) -> Result<Tensor<4>, TrainError> {
        self.warp_adjoint(self.color_adjoint(v)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_mat(what: &str, got: Mat4, want: [[f64; 4]; 4]) {
        for (g, w) in got.iter().flatten().zip(want.iter().flatten()) {
            assert!((g - w).abs() < 1e-6, "{what}: {got:?} vs {want:?}");
        }
    }

    /// The values printed by the official `rotate3d_mat`, `saturation_mat` and `luma_flip_mat`
    /// (non_leaking.py at bef283a, torch 2.15) for θ = 0.7, s = 1.7 and i = 1.
    #[test]
    fn colour_matrices_are_the_official_ones() {
        let (a, b, c) = (0.843_228_101_7, -0.293_553_322_6, 0.450_325_191_0);
        assert_mat(
            "hue",
            hue_rotation(0.7),
            [
                [a, b, c, 0.0],
                [c, a, b, 0.0],
                [b, c, a, 0.0],
                [0.0, 0.0, 0.0, 1.0],
            ],
        );
        let (d, o) = (1.466_666_698_5, -0.233_333_349_2);
        assert_mat(
            "saturation",
            saturation(1.7),
            [
                [d, o, o, 0.0],
                [o, d, o, 0.0],
                [o, o, d, 0.0],
                [0.0, 0.0, 0.0, 1.7],
            ],
        );
        let (d, o) = (1.0 / 3.0, -2.0 / 3.0);
        assert_mat(
            "luma flip",
            luma_flip(1.0),
            [
                [d, o, o, 0.0],
                [o, d, o, 0.0],
                [o, o, d, 0.0],
                [0.0, 0.0, 0.0, 1.0],
            ],
        );
        assert_mat("no flip", luma_flip(0.0), eye4());
    }

    #[test]
    fn affine_inverse_undoes_the_matrix() {
        let m = mul3(&rotate(0.4), &mul3(&scale(1.3, 0.7), &translate(2.0, -1.5)));
        let i = invert_affine(&m).expect("invertible");
        let e = mul3(&m, &i);
        for (r, row) in e.iter().enumerate() {
            for (c, v) in row.iter().enumerate() {
                assert!((v - f64::from(u8::from(r == c))).abs() < 1e-12, "{e:?}");
            }
        }
        assert!(invert_affine(&scale(0.0, 1.0)).is_none());
    }
}
