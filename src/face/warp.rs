//! Bilinear similarity warps with `cv2.warpAffine`'s conventions.
//!
//! The transform given to every function here maps **input coordinates to output coordinates**
//! (as `cv2.warpAffine` takes it without `WARP_INVERSE_MAP`): to cut a face crop pass the
//! photo → crop transform, to paste it back pass the same transform to [`warp_back`].
//! Output pixel (x, y) samples the input at `T⁻¹(x, y)`, pixel centres at integer coordinates.
//! cv2 rounds sampling positions to 1/32 px and uses 15-bit fixed-point weights; this uses
//! exact f64 positions and weights, so results may differ from cv2 by one grey level.

use image::{Rgb, RgbImage};

use super::align::Similarity;
use super::mask::Plane;

/// What bilinear taps outside the input read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Border {
    /// A fixed colour (cv2 `BORDER_CONSTANT`; the reference pipelines use black).
    Constant([u8; 3]),
    /// The nearest edge pixel (cv2 `BORDER_REPLICATE`).
    Replicate,
}

/// The four taps and weights of a bilinear sample at (x, y), or `None` for a tap outside
/// a `w`×`h` grid (under `Border::Constant`) — callers substitute the border value.
fn taps(x: f64, y: f64, w: u32, h: u32, replicate: bool) -> [(Option<(u32, u32)>, f64); 4] {
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let at = |xi: f64, yi: f64| -> Option<(u32, u32)> {
        if replicate {
            Some((
                xi.clamp(0.0, w as f64 - 1.0) as u32,
                yi.clamp(0.0, h as f64 - 1.0) as u32,
            ))
        } else if xi >= 0.0 && yi >= 0.0 && xi < w as f64 && yi < h as f64 {
            Some((xi as u32, yi as u32))
        } else {
            None
        }
    };
    [
        (at(x0, y0), (1.0 - fx) * (1.0 - fy)),
        (at(x0 + 1.0, y0), fx * (1.0 - fy)),
        (at(x0, y0 + 1.0), (1.0 - fx) * fy),
        (at(x0 + 1.0, y0 + 1.0), fx * fy),
    ]
}

/// Warps `src` into an `out_w`×`out_h` image by `to_output` (input → output, see the module
/// note), sampling bilinearly.
pub fn warp_affine(
    src: &RgbImage,
    to_output: &Similarity,
    out_w: u32,
    out_h: u32,
    border: Border,
) -> RgbImage {
    let inv = to_output.inverse();
    let (w, h) = src.dimensions();
    let (replicate, fill) = match border {
        Border::Constant(c) => (false, c),
        Border::Replicate => (true, [0; 3]),
    };
    let mut out = RgbImage::new(out_w, out_h);
    if w == 0 || h == 0 {
        return out;
    }
    for (ox, oy, px) in out.enumerate_pixels_mut() {
        let (x, y) = inv.apply_f64(ox as f64, oy as f64);
        // Far outside: skip the taps (also guards the float → int conversions).
        if !replicate && (x <= -1.0 || y <= -1.0 || x >= w as f64 || y >= h as f64) {
            *px = Rgb(fill);
            continue;
        }
        let mut acc = [0.0f64; 3];
        for (tap, wt) in taps(x, y, w, h, replicate) {
            let v = match tap {
                Some((tx, ty)) => src.get_pixel(tx, ty).0,
                None => fill,
            };
            for c in 0..3 {
                acc[c] += wt * v[c] as f64;
            }
        }
        *px = Rgb(acc.map(|v| v.round().clamp(0.0, 255.0) as u8));
    }
    out
}

/// Warps an f32 plane by `to_output` (input → output); taps outside read `border`.
pub fn warp_plane(src: &Plane, to_output: &Similarity, out_w: u32, out_h: u32, border: f32) -> Plane {
    let inv = to_output.inverse();
    let (w, h) = (src.width as u32, src.height as u32);
    let mut out = Plane::filled(out_w as usize, out_h as usize, border);
    if w == 0 || h == 0 {
        return out;
    }
    for oy in 0..out_h {
        for ox in 0..out_w {
            let (x, y) = inv.apply_f64(ox as f64, oy as f64);
            if x <= -1.0 || y <= -1.0 || x >= w as f64 || y >= h as f64 {
                continue;
            }
            let mut acc = 0.0f64;
            for (tap, wt) in taps(x, y, w, h, false) {
                let v = match tap {
                    Some((tx, ty)) => src.get(tx as usize, ty as usize),
                    None => border,
                };
                acc += wt * v as f64;
            }
            out.set(ox as usize, oy as usize, acc as f32);
        }
    }
    out
}

/// Cuts the `size`×`size` aligned crop of `photo` given the photo → crop transform (black border,
/// as GPEN and FaceShifter do).
pub fn crop_aligned(photo: &RgbImage, photo_to_crop: &Similarity, size: u32) -> RgbImage {
    warp_affine(photo, photo_to_crop, size, size, Border::Constant([0; 3]))
}

/// The inverse of [`crop_aligned`]: brings `crop` back into a `photo_w`×`photo_h` frame through
/// the exact inverse of `photo_to_crop`. Pixels no crop pixel reaches are black; blend the
/// result with a mask warped by [`warp_plane_back`] so that they never show.
pub fn warp_back(crop: &RgbImage, photo_to_crop: &Similarity, photo_w: u32, photo_h: u32) -> RgbImage {
    warp_affine(
        crop,
        &photo_to_crop.inverse(),
        photo_w,
        photo_h,
        Border::Constant([0; 3]),
    )
}

/// A crop-space mask brought back into the photo's frame (0 where the crop does not reach).
pub fn warp_plane_back(mask: &Plane, photo_to_crop: &Similarity, photo_w: u32, photo_h: u32) -> Plane {
    warp_plane(mask, &photo_to_crop.inverse(), photo_w, photo_h, 0.0)
}
