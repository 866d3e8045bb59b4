//! Soft masks for pasting faces back: a feathered box, a dilated landmark hull, Gaussian blur and
//! the blend that leaves unmasked pixels untouched.

use image::{Rgb, RgbImage};
use thiserror::Error;

use super::align::Point;

/// One f32 channel, row-major; masks hold 0..1.
#[derive(Debug, Clone, PartialEq)]
pub struct Plane {
    pub width: usize,
    pub height: usize,
    pub data: Vec<f32>,
}

impl Plane {
    pub fn filled(width: usize, height: usize, value: f32) -> Plane {
        Plane {
            width,
            height,
            data: vec![value; width * height],
        }
    }

    pub fn get(&self, x: usize, y: usize) -> f32 {
        self.data[y * self.width + x]
    }

    pub fn set(&mut self, x: usize, y: usize, v: f32) {
        self.data[y * self.width + x] = v;
    }

    /// The pixel-wise minimum (mask intersection); sizes must match.
    pub fn min(&self, other: &Plane) -> Result<Plane, MaskError> {
        same_size((self.width, self.height), (other.width, other.height))?;
        let data = self
            .data
            .iter()
            .zip(&other.data)
            .map(|(a, b)| a.min(*b))
            .collect();
        Ok(Plane {
            width: self.width,
            height: self.height,
            data,
        })
    }
}

#[derive(Debug, Error, PartialEq)]
pub enum MaskError {
    #[error("image sizes differ: {0}×{1} against {2}×{3}")]
    SizeMismatch(usize, usize, usize, usize),
}

fn same_size(a: (usize, usize), b: (usize, usize)) -> Result<(), MaskError> {
    if a == b {
        Ok(())
    } else {
        Err(MaskError::SizeMismatch(a.0, a.1, b.0, b.1))
    }
}

/// How the paste-back mask of an aligned crop is shaped. Saved in recipes, so fields a file lacks
/// keep their defaults.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct MaskSettings {
    /// The box's margin on every side, as a fraction of the crop side (GPEN: 26/512).
    pub padding: f32,
    /// Feathering: the Gaussian sigma in crop pixels (0: hard edge).
    pub blur_sigma: f32,
    /// The landmark hull is grown by this fraction of the crop side; `None` skips the hull.
    pub hull_dilate: Option<f32>,
}

impl Default for MaskSettings {
    fn default() -> Self {
        MaskSettings {
            padding: 26.0 / 512.0,
            blur_sigma: 8.0,
            hull_dilate: Some(0.2),
        }
    }
}

/// 1 inside `[pad, size − pad)` in both axes, 0 outside.
pub fn box_mask(width: usize, height: usize, pad: usize) -> Plane {
    let mut m = Plane::filled(width, height, 0.0);
    for y in pad..height.saturating_sub(pad) {
        for x in pad..width.saturating_sub(pad) {
            m.set(x, y, 1.0);
        }
    }
    m
}

/// The convex hull of `points`, counter-clockwise in (x right, y down) screen terms as cross > 0
/// (Andrew's monotone chain; collinear points dropped).
pub fn convex_hull(points: &[Point]) -> Vec<Point> {
    let mut pts: Vec<Point> = points
        .iter()
        .copied()
        .filter(|p| p[0].is_finite() && p[1].is_finite())
        .collect();
    pts.sort_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
    pts.dedup();
    if pts.len() < 3 {
        return pts;
    }
    let cross = |o: Point, a: Point, b: Point| (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
    let mut hull: Vec<Point> = Vec::with_capacity(2 * pts.len());
    for pass in 0..2 {
        let start = hull.len();
        let iter: Box<dyn Iterator<Item = &Point>> = if pass == 0 {
            Box::new(pts.iter())
        } else {
            Box::new(pts.iter().rev())
        };
        for &p in iter {
            while hull.len() >= start + 2 && cross(hull[hull.len() - 2], hull[hull.len() - 1], p) <= 0.0 {
                hull.pop();
            }
            hull.push(p);
        }
        hull.pop();
    }
    hull
}

fn segment_distance(p: Point, a: Point, b: Point) -> f32 {
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 {
        (((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    (p[0] - a[0] - t * dx).hypot(p[1] - a[1] - t * dy)
}

/// 1 at pixels inside the convex hull of `points` or within `dilate` px of it, else 0.
pub fn hull_mask(width: usize, height: usize, points: &[Point], dilate: f32) -> Plane {
    let hull = convex_hull(points);
    let mut m = Plane::filled(width, height, 0.0);
    if hull.is_empty() {
        return m;
    }
    let n = hull.len();
    for y in 0..height {
        for x in 0..width {
            let p = [x as f32, y as f32];
            let inside = n >= 3
                && (0..n).all(|i| {
                    let (a, b) = (hull[i], hull[(i + 1) % n]);
                    (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0]) >= 0.0
                });
            let near = || (0..n).any(|i| segment_distance(p, hull[i], hull[(i + 1) % n]) <= dilate);
            if inside || near() {
                m.set(x, y, 1.0);
            }
        }
    }
    m
}

/// The paste-back mask of a `size`×`size` aligned crop: the padded box, intersected with the
/// dilated hull of `landmarks` (crop coordinates) when the settings ask for it, then feathered.
/// The blur has finite support (3σ), so pixels farther than that from the region stay exactly 0.
pub fn face_mask(size: usize, settings: &MaskSettings, landmarks: &[Point]) -> Plane {
    let pad = (settings.padding.max(0.0) * size as f32).round() as usize;
    let mut m = box_mask(size, size, pad);
    if let Some(d) = settings.hull_dilate {
        let hull = hull_mask(size, size, landmarks, d.max(0.0) * size as f32);
        m.data
            .iter_mut()
            .zip(&hull.data)
            .for_each(|(a, b)| *a = a.min(*b));
    }
    gaussian_blur_plane(&m, settings.blur_sigma)
}

/// A normalised Gaussian kernel of radius ⌈3σ⌉.
pub fn gaussian_kernel(sigma: f32) -> Vec<f32> {
    if sigma <= 0.0 || !sigma.is_finite() {
        return vec![1.0];
    }
    let r = (3.0 * sigma).ceil() as i64;
    let k: Vec<f64> = (-r..=r)
        .map(|i| (-((i * i) as f64) / (2.0 * (sigma as f64).powi(2))).exp())
        .collect();
    let sum: f64 = k.iter().sum();
    k.iter().map(|v| (v / sum) as f32).collect()
}

/// Reflect-101 index (cv2's default border: `gfedcb|abcdefgh|gfedcba`).
fn reflect101(i: i64, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let period = 2 * (n as i64 - 1);
    let m = i.rem_euclid(period);
    (if m < n as i64 { m } else { period - m }) as usize
}

/// One separable pass over `c` interleaved channels along rows (`horizontal`) or columns.
fn blur_pass(src: &[f32], w: usize, h: usize, c: usize, kernel: &[f32], horizontal: bool) -> Vec<f32> {
    let r = (kernel.len() / 2) as i64;
    let mut out = vec![0.0f32; src.len()];
    for y in 0..h {
        for x in 0..w {
            for ch in 0..c {
                let mut acc = 0.0f32;
                for (k, kv) in kernel.iter().enumerate() {
                    let off = k as i64 - r;
                    let (sx, sy) = if horizontal {
                        (reflect101(x as i64 + off, w), y)
                    } else {
                        (x, reflect101(y as i64 + off, h))
                    };
                    acc += kv * src[(sy * w + sx) * c + ch];
                }
                out[(y * w + x) * c + ch] = acc;
            }
        }
    }
    out
}

fn blur_interleaved(data: &[f32], w: usize, h: usize, c: usize, sigma: f32) -> Vec<f32> {
    let kernel = gaussian_kernel(sigma);
    if kernel.len() == 1 || w == 0 || h == 0 {
        return data.to_vec();
    }
    let tmp = blur_pass(data, w, h, c, &kernel, true);
    blur_pass(&tmp, w, h, c, &kernel, false)
}

/// Separable Gaussian blur of a plane (radius ⌈3σ⌉, reflect-101 border).
pub fn gaussian_blur_plane(src: &Plane, sigma: f32) -> Plane {
    Plane {
        width: src.width,
        height: src.height,
        data: blur_interleaved(&src.data, src.width, src.height, 1, sigma),
    }
}

/// Separable Gaussian blur of an RGB image (radius ⌈3σ⌉, reflect-101 border), rounded back to u8.
pub fn gaussian_blur_rgb(src: &RgbImage, sigma: f32) -> RgbImage {
    let (w, h) = (src.width() as usize, src.height() as usize);
    let data: Vec<f32> = src.as_raw().iter().map(|&v| v as f32).collect();
    let out = blur_interleaved(&data, w, h, 3, sigma);
    let bytes = out.iter().map(|v| v.round().clamp(0.0, 255.0) as u8).collect();
    RgbImage::from_raw(src.width(), src.height(), bytes).unwrap_or_else(|| src.clone())
}

/// `photo·(1 − m) + patch·m`, rounded. Where `m ≤ 0` the photo's pixel is copied unchanged, and
/// where `m ≥ 1` the patch's.
pub fn blend(photo: &RgbImage, patch: &RgbImage, mask: &Plane) -> Result<RgbImage, MaskError> {
    let size = |i: &RgbImage| (i.width() as usize, i.height() as usize);
    same_size(size(photo), size(patch))?;
    same_size(size(photo), (mask.width, mask.height))?;
    let mut out = photo.clone();
    for ((px, q), &m) in out.pixels_mut().zip(patch.pixels()).zip(&mask.data) {
        // NaN counts as 0: never let a bad mask value change the photo.
        if m.is_nan() || m <= 0.0 {
            continue;
        }
        let m = m.min(1.0);
        let mix = |a: u8, b: u8| (a as f32 * (1.0 - m) + b as f32 * m).round().clamp(0.0, 255.0) as u8;
        *px = Rgb([mix(px[0], q[0]), mix(px[1], q[1]), mix(px[2], q[2])]);
    }
    Ok(out)
}
