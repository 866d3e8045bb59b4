//! sRGB ↔ CIELAB (D65) and mean/std colour transfer in LAB, used to match a new face's skin tone
//! to the target's.

use image::{Rgb, RgbImage};

use super::mask::{MaskError, Plane};

/// D65 reference white (CIE 1931 2°), normalised to Y = 1.
const WHITE: [f64; 3] = [0.950_47, 1.0, 1.088_83];
const EPSILON: f64 = 216.0 / 24389.0;
const KAPPA: f64 = 24389.0 / 27.0;

fn srgb_to_linear(v: f64) -> f64 {
    if v <= 0.04045 {
        v / 12.92
    } else {
        ((v + 0.055) / 1.055).powf(2.4)
    }
}

fn linear_to_srgb(v: f64) -> f64 {
    if v <= 0.003_130_8 {
        v * 12.92
    } else {
        1.055 * v.powf(1.0 / 2.4) - 0.055
    }
}

/// An 8-bit sRGB colour as CIELAB (L in 0..100, a and b roughly −128..127).
pub fn rgb_to_lab(rgb: [u8; 3]) -> [f32; 3] {
    let [r, g, b] = rgb.map(|v| srgb_to_linear(v as f64 / 255.0));
    let xyz = [
        0.412_456_4 * r + 0.357_576_1 * g + 0.180_437_5 * b,
        0.212_672_9 * r + 0.715_152_2 * g + 0.072_175_0 * b,
        0.019_333_9 * r + 0.119_192_0 * g + 0.950_304_1 * b,
    ];
    let f = |t: f64| {
        if t > EPSILON {
            t.cbrt()
        } else {
            (KAPPA * t + 16.0) / 116.0
        }
    };
    let [fx, fy, fz] = [f(xyz[0] / WHITE[0]), f(xyz[1] / WHITE[1]), f(xyz[2] / WHITE[2])];
    [
        (116.0 * fy - 16.0) as f32,
        (500.0 * (fx - fy)) as f32,
        (200.0 * (fy - fz)) as f32,
    ]
}

/// CIELAB back to 8-bit sRGB, rounding and clipping colours outside the sRGB gamut.
pub fn lab_to_rgb(lab: [f32; 3]) -> [u8; 3] {
    let [l, a, b] = lab.map(|v| v as f64);
    let fy = (l + 16.0) / 116.0;
    let (fx, fz) = (fy + a / 500.0, fy - b / 200.0);
    let finv = |f: f64| {
        let t = f * f * f;
        if t > EPSILON {
            t
        } else {
            (116.0 * f - 16.0) / KAPPA
        }
    };
    let y = if l > KAPPA * EPSILON {
        fy.powi(3)
    } else {
        l / KAPPA
    };
    let (x, z) = (finv(fx) * WHITE[0], finv(fz) * WHITE[2]);
    let rgb = [
        3.240_454_2 * x - 1.537_138_5 * y - 0.498_531_4 * z,
        -0.969_266_0 * x + 1.876_010_8 * y + 0.041_556_0 * z,
        0.055_643_4 * x - 0.204_025_9 * y + 1.057_225_2 * z,
    ];
    rgb.map(|v| {
        (linear_to_srgb(v.clamp(0.0, 1.0)) * 255.0)
            .round()
            .clamp(0.0, 255.0) as u8
    })
}

/// Per-channel LAB statistics of a masked region.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LabStats {
    pub mean: [f64; 3],
    pub std: [f64; 3],
}

/// Per-channel LAB mean and standard deviation over the pixels where `mask > 0`, weighted by it.
/// `None` when the mask selects nothing.
pub fn lab_stats(img: &RgbImage, mask: &Plane) -> Result<Option<LabStats>, MaskError> {
    check(img, mask)?;
    let (mut sw, mut s1, mut s2) = (0.0f64, [0.0f64; 3], [0.0f64; 3]);
    for (px, &m) in img.pixels().zip(&mask.data) {
        if m.is_nan() || m <= 0.0 {
            continue;
        }
        let w = m.min(1.0) as f64;
        let lab = rgb_to_lab(px.0);
        sw += w;
        for c in 0..3 {
            s1[c] += w * lab[c] as f64;
            s2[c] += w * (lab[c] as f64).powi(2);
        }
    }
    if sw <= 0.0 {
        return Ok(None);
    }
    let mean = s1.map(|s| s / sw);
    let std = [0, 1, 2].map(|c| (s2[c] / sw - mean[c] * mean[c]).max(0.0).sqrt());
    Ok(Some(LabStats { mean, std }))
}

fn check(img: &RgbImage, mask: &Plane) -> Result<(), MaskError> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    if (w, h) == (mask.width, mask.height) {
        Ok(())
    } else {
        Err(MaskError::SizeMismatch(w, h, mask.width, mask.height))
    }
}

/// Reinhard-style transfer: moves the LAB mean and standard deviation of `patch` (measured under
/// `patch_mask`) to those of `reference` (under `reference_mask`). Every patch pixel is mapped;
/// the paste-back mask decides which of them end up in the photo. A channel whose patch std is
/// ~0 only has its mean shifted. Either mask selecting nothing returns the patch unchanged.
pub fn transfer_lab(
    patch: &RgbImage,
    patch_mask: &Plane,
    reference: &RgbImage,
    reference_mask: &Plane,
) -> Result<RgbImage, MaskError> {
    let (Some(p), Some(r)) = (
        lab_stats(patch, patch_mask)?,
        lab_stats(reference, reference_mask)?,
    ) else {
        return Ok(patch.clone());
    };
    let (pm, ps, rm, rs) = (p.mean, p.std, r.mean, r.std);
    let gain = [0, 1, 2].map(|c| if ps[c] > 1e-6 { rs[c] / ps[c] } else { 1.0 });
    let mut out = patch.clone();
    for px in out.pixels_mut() {
        let lab = rgb_to_lab(px.0);
        let moved = [0, 1, 2].map(|c| ((lab[c] as f64 - pm[c]) * gain[c] + rm[c]) as f32);
        *px = Rgb(lab_to_rgb(moved));
    }
    Ok(out)
}
