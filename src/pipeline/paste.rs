//! Pasting an edited aligned crop back into its photo through a soft mask.
//!
//! Swap, restore and makeup all end here. Only the photo region the crop covers is warped and
//! blended, so a 24-megapixel photo costs no more than its face, and every pixel outside that
//! region (and wherever the mask is 0) is copied from the photo unchanged, byte for byte.

use image::RgbImage;

use crate::face::align::Similarity;
use crate::face::mask::{MaskError, Plane, blend};
use crate::face::warp::{Border, warp_affine, warp_plane};

/// The photo-pixel rectangle `[x0, x1) × [y0, y1)` that an aligned crop covers, clipped to the photo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub x0: u32,
    pub y0: u32,
    pub x1: u32,
    pub y1: u32,
}

impl Region {
    pub fn width(&self) -> u32 {
        self.x1 - self.x0
    }

    pub fn height(&self) -> u32 {
        self.y1 - self.y0
    }

    pub fn is_empty(&self) -> bool {
        self.x1 <= self.x0 || self.y1 <= self.y0
    }

    /// The translation from photo to region coordinates.
    fn photo_to_region(&self) -> Similarity {
        Similarity {
            a: 1.0,
            b: 0.0,
            tx: -(self.x0 as f64),
            ty: -(self.y0 as f64),
        }
    }
}

/// Where a `crop_w`×`crop_h` crop cut by `photo_to_crop` lies in a `photo_w`×`photo_h` photo, with a
/// pixel of margin for the bilinear taps.
pub fn crop_region(
    photo_to_crop: &Similarity,
    crop_w: u32,
    crop_h: u32,
    photo_w: u32,
    photo_h: u32,
) -> Region {
    let back = photo_to_crop.inverse();
    let corners = [
        (-0.5, -0.5),
        (crop_w as f64 - 0.5, -0.5),
        (-0.5, crop_h as f64 - 0.5),
        (crop_w as f64 - 0.5, crop_h as f64 - 0.5),
    ]
    .map(|(x, y)| back.apply_f64(x, y));
    let finite = corners.iter().all(|(x, y)| x.is_finite() && y.is_finite());
    if !finite {
        return Region {
            x0: 0,
            y0: 0,
            x1: 0,
            y1: 0,
        };
    }
    let clamp = |v: f64, hi: u32| v.clamp(0.0, hi as f64) as u32;
    let (min_x, max_x) = corners
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), c| (lo.min(c.0), hi.max(c.0)));
    let (min_y, max_y) = corners
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), c| (lo.min(c.1), hi.max(c.1)));
    Region {
        x0: clamp(min_x.floor() - 1.0, photo_w),
        y0: clamp(min_y.floor() - 1.0, photo_h),
        x1: clamp(max_x.ceil() + 2.0, photo_w),
        y1: clamp(max_y.ceil() + 2.0, photo_h),
    }
}

/// `photo` with `crop` (cut from it by `photo_to_crop`, then edited) blended back through `mask`
/// (crop-sized, 0…1). Outside the crop's region and wherever the warped mask is 0 the photo is
/// unchanged.
pub fn paste_crop(
    photo: &RgbImage,
    crop: &RgbImage,
    photo_to_crop: &Similarity,
    mask: &Plane,
) -> Result<RgbImage, MaskError> {
    if (mask.width, mask.height) != (crop.width() as usize, crop.height() as usize) {
        return Err(MaskError::SizeMismatch(
            crop.width() as usize,
            crop.height() as usize,
            mask.width,
            mask.height,
        ));
    }
    let (w, h) = photo.dimensions();
    let region = crop_region(photo_to_crop, crop.width(), crop.height(), w, h);
    let mut out = photo.clone();
    if region.is_empty() {
        return Ok(out);
    }
    // region → crop = (photo → crop) ∘ (region → photo).
    let region_to_crop = photo_to_crop.compose(&region.photo_to_region().inverse());
    let crop_to_region = region_to_crop.inverse();
    let patch = warp_affine(
        crop,
        &crop_to_region,
        region.width(),
        region.height(),
        Border::Constant([0; 3]),
    );
    let soft = warp_plane(mask, &crop_to_region, region.width(), region.height(), 0.0);
    let under =
        image::imageops::crop_imm(photo, region.x0, region.y0, region.width(), region.height()).to_image();
    let mixed = blend(&under, &patch, &soft)?;
    image::imageops::replace(&mut out, &mixed, region.x0 as i64, region.y0 as i64);
    Ok(out)
}

/// The crop-space mask brought into photo coordinates over the whole photo (0 outside the crop), for
/// previews of the mask and for tests of what may change.
pub fn mask_in_photo(mask: &Plane, photo_to_crop: &Similarity, photo_w: u32, photo_h: u32) -> Plane {
    let region = crop_region(
        photo_to_crop,
        mask.width as u32,
        mask.height as u32,
        photo_w,
        photo_h,
    );
    let mut out = Plane::filled(photo_w as usize, photo_h as usize, 0.0);
    if region.is_empty() {
        return out;
    }
    let region_to_crop = photo_to_crop.compose(&region.photo_to_region().inverse());
    let soft = warp_plane(
        mask,
        &region_to_crop.inverse(),
        region.width(),
        region.height(),
        0.0,
    );
    for y in 0..region.height() as usize {
        for x in 0..region.width() as usize {
            out.set(region.x0 as usize + x, region.y0 as usize + y, soft.get(x, y));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use image::Rgb;

    use super::*;
    use crate::face::warp::warp_back;
    use crate::face::warp::warp_plane_back;

    fn photo(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            Rgb([(x * 7 % 256) as u8, (y * 5 % 256) as u8, ((x + y) % 256) as u8])
        })
    }

    fn transform() -> Similarity {
        // A face about 60 px wide near (70, 50), turned a little, into a 32 px crop.
        Similarity::from_scale_rotation_translation(0.55, 0.3, -20.0, 4.0)
    }

    #[test]
    fn pasting_equals_the_whole_photo_warp_and_leaves_the_rest_alone() {
        let src = photo(160, 120);
        let t = transform();
        let crop = RgbImage::from_pixel(32, 32, Rgb([250, 10, 10]));
        let mut mask = Plane::filled(32, 32, 0.0);
        for y in 8..24 {
            for x in 8..24 {
                mask.set(x, y, 1.0);
            }
        }
        let pasted = paste_crop(&src, &crop, &t, &mask).unwrap();
        let full = blend(
            &src,
            &warp_back(&crop, &t, 160, 120),
            &warp_plane_back(&mask, &t, 160, 120),
        )
        .unwrap();
        // Same sampling positions, composed in another order: at most a rounding step apart.
        for (a, b) in pasted.pixels().zip(full.pixels()) {
            for c in 0..3 {
                assert!(
                    a[c].abs_diff(b[c]) <= 1,
                    "region paste {a:?} vs full-frame paste {b:?}"
                );
            }
        }
        let weights = mask_in_photo(&mask, &t, 160, 120);
        let mut changed = 0;
        for (x, y, p) in pasted.enumerate_pixels() {
            if weights.get(x as usize, y as usize) <= 0.0 {
                assert_eq!(
                    p,
                    src.get_pixel(x, y),
                    "pixel ({x}, {y}) outside the mask changed"
                );
            } else if p != src.get_pixel(x, y) {
                changed += 1;
            }
        }
        assert!(
            changed > 100,
            "the face region was pasted ({changed} pixels changed)"
        );
    }

    #[test]
    fn a_crop_outside_the_photo_changes_nothing() {
        let src = photo(40, 30);
        let far = Similarity::from_scale_rotation_translation(1.0, 0.0, 500.0, 500.0);
        let crop = RgbImage::from_pixel(16, 16, Rgb([0, 0, 0]));
        let mask = Plane::filled(16, 16, 1.0);
        assert_eq!(paste_crop(&src, &crop, &far, &mask).unwrap(), src);
    }

    #[test]
    fn a_mask_of_the_wrong_size_is_refused() {
        let src = photo(40, 30);
        let crop = RgbImage::new(16, 16);
        let mask = Plane::filled(8, 8, 1.0);
        assert!(paste_crop(&src, &crop, &transform(), &mask).is_err());
    }
}
