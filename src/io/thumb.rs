//! Thumbnails for lists and previews.

use image::RgbImage;

/// Shrinks `img` so that its longer side is at most `max_side` (at least 1), keeping the aspect
/// ratio; an image already small enough is returned as a copy. Uses the crate's box-filter
/// thumbnail, which is fast on large photos and does not alias.
pub fn thumbnail(img: &RgbImage, max_side: u32) -> RgbImage {
    let max_side = max_side.max(1);
    let (width, height) = img.dimensions();
    if width <= max_side && height <= max_side {
        return img.clone();
    }
    let scale = f64::from(max_side) / f64::from(width.max(height));
    let scaled = |side: u32| ((f64::from(side) * scale).round() as u32).clamp(1, max_side);
    image::imageops::thumbnail(img, scaled(width), scaled(height))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_aspect_and_bounds() {
        let img = RgbImage::from_pixel(4000, 1000, image::Rgb([10, 200, 30]));
        let small = thumbnail(&img, 256);
        assert_eq!(small.dimensions(), (256, 64));
        assert_eq!(small.get_pixel(100, 30), &image::Rgb([10, 200, 30]));
        let sliver = thumbnail(&RgbImage::new(5000, 2), 100);
        assert_eq!(sliver.dimensions(), (100, 1));
        assert_eq!(thumbnail(&RgbImage::new(30, 20), 256).dimensions(), (30, 20));
    }
}
