//! The pixels the screening classifier sees: the whole photo fitted into a square (never cropped,
//! so a face at the edge of a portrait-format shot is still there), and the random variations of it
//! that training shows so a few hundred labelled photos generalise.
//!
//! Randomness comes from [`Rng`], a small seeded generator of our own, so that a seed alone decides
//! every split, crop, flip and jitter of a training run, whatever else runs in the process.

use image::RgbImage;

use crate::nets::mobilenetv2::preprocess::resize_bilinear_pil;

const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];

/// SplitMix64: tiny, fast, and its stream is fixed by the seed alone.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize % n.max(1)
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u = self.unit().max(f64::MIN_POSITIVE);
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// Fisher–Yates.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

/// A copy no larger than needed for `size`-pixel inputs with room for crops, so a training set
/// of large photos stays small in memory. Never enlarges.
pub fn shrink_for_training(img: &RgbImage, size: u32) -> RgbImage {
    let limit = size + size / 4;
    let long = img.width().max(img.height());
    if long <= limit {
        return img.clone();
    }
    let f = limit as f64 / long as f64;
    let w = ((img.width() as f64 * f).round() as u32).max(1);
    let h = ((img.height() as f64 * f).round() as u32).max(1);
    resize_bilinear_pil(img, w, h)
}

/// The whole image fitted into a `size`×`size` square (long side = size, antialiased bilinear),
/// centred, the rest filled with the ImageNet mean; as normalised (3, size, size) planes.
pub fn letterbox(img: &RgbImage, size: u32) -> Vec<f32> {
    let fitted = fit(img, size);
    planes(&fitted, size)
}

/// A random variation of `img` for training: a crop keeping 80–100% of each side, a mirror image
/// half of the time, brightness, contrast and saturation within ±20%; then letterboxed.
pub fn augmented(img: &RgbImage, size: u32, rng: &mut Rng) -> Vec<f32> {
    let (w, h) = img.dimensions();
    let cw = ((w as f64 * rng.range(0.8, 1.0)).round() as u32).clamp(1, w.max(1));
    let ch = ((h as f64 * rng.range(0.8, 1.0)).round() as u32).clamp(1, h.max(1));
    let x0 = rng.below((w - cw + 1) as usize) as u32;
    let y0 = rng.below((h - ch + 1) as usize) as u32;
    let mut crop = image::imageops::crop_imm(img, x0, y0, cw, ch).to_image();
    if rng.unit() < 0.5 {
        image::imageops::flip_horizontal_in_place(&mut crop);
    }
    let brightness = rng.range(0.8, 1.2) as f32;
    let contrast = rng.range(0.8, 1.2) as f32;
    let saturation = rng.range(0.8, 1.2) as f32;
    let fitted = jitter(&fit(&crop, size), brightness, contrast, saturation);
    planes(&fitted, size)
}

fn fit(img: &RgbImage, size: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    let long = w.max(h).max(1);
    let nw = ((w as f64 * size as f64 / long as f64).round() as u32).clamp(1, size);
    let nh = ((h as f64 * size as f64 / long as f64).round() as u32).clamp(1, size);
    if (nw, nh) == (w, h) {
        img.clone()
    } else {
        resize_bilinear_pil(img, nw, nh)
    }
}

/// torchvision's ColorJitter order (brightness, contrast, saturation) with fixed factors.
fn jitter(img: &RgbImage, brightness: f32, contrast: f32, saturation: f32) -> RgbImage {
    let grey = |p: [f32; 3]| 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2];
    let mut px: Vec<[f32; 3]> = img
        .pixels()
        .map(|p| p.0.map(|v| (v as f32 * brightness).clamp(0.0, 255.0)))
        .collect();
    let mean = px.iter().map(|&p| grey(p)).sum::<f32>() / px.len().max(1) as f32;
    for p in &mut px {
        *p = p.map(|v| ((v - mean) * contrast + mean).clamp(0.0, 255.0));
        let g = grey(*p);
        *p = p.map(|v| ((v - g) * saturation + g).clamp(0.0, 255.0));
    }
    let bytes = px.iter().flat_map(|p| p.map(|v| v.round() as u8)).collect();
    RgbImage::from_raw(img.width(), img.height(), bytes).unwrap_or_else(|| img.clone())
}

/// Normalised planes of a fitted image centred on a size×size canvas (0 = the mean colour).
fn planes(fitted: &RgbImage, size: u32) -> Vec<f32> {
    let side = size as usize;
    let mut data = vec![0.0f32; 3 * side * side];
    let (w, h) = (fitted.width() as usize, fitted.height() as usize);
    let (left, top) = ((side - w.min(side)) / 2, (side - h.min(side)) / 2);
    for (x, y, p) in fitted.enumerate_pixels() {
        let (x, y) = (x as usize + left, y as usize + top);
        if x >= side || y >= side {
            continue;
        }
        for c in 0..3 {
            data[c * side * side + y * side + x] = (p.0[c] as f32 / 255.0 - MEAN[c]) / STD[c];
        }
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_is_fixed_by_its_seed() {
        let a: Vec<u64> = {
            let mut r = Rng::new(7);
            (0..4).map(|_| r.next_u64()).collect()
        };
        let b: Vec<u64> = {
            let mut r = Rng::new(7);
            (0..4).map(|_| r.next_u64()).collect()
        };
        assert_eq!(a, b);
        let mut r = Rng::new(1);
        assert!((0..1000).all(|_| r.below(3) < 3));
        let mean = (0..4000).map(|_| r.normal()).sum::<f64>() / 4000.0;
        assert!(mean.abs() < 0.1, "{mean}");
        let mut items: Vec<u32> = (0..10).collect();
        r.shuffle(&mut items);
        items.sort();
        assert_eq!(items, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn letterboxing_keeps_the_whole_photo_and_pads_with_the_mean() {
        // A 40x20 white photo in a 16 px square: 16x8 of white centred, mean colour above and below.
        let img = RgbImage::from_pixel(40, 20, image::Rgb([255; 3]));
        let data = letterbox(&img, 16);
        let at = |c: usize, x: usize, y: usize| data[c * 256 + y * 16 + x];
        assert_eq!(at(0, 0, 0), 0.0);
        assert_eq!(at(2, 15, 15), 0.0);
        let white = (1.0 - MEAN[0]) / STD[0];
        assert!((at(0, 0, 4) - white).abs() < 1e-5 && (at(0, 15, 11) - white).abs() < 1e-5);
        let mut rng = Rng::new(3);
        assert_eq!(augmented(&img, 16, &mut rng).len(), 3 * 16 * 16);
        assert_eq!(shrink_for_training(&img, 16).dimensions(), (20, 10));
    }
}
