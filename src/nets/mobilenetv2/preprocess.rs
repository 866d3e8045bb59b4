//! torchvision's `ImageClassification` preset as the ImageNet checkpoints were evaluated with it:
//! resize the short side (PIL bilinear with antialiasing, 8-bit result), centre crop, scale to
//! [0, 1], normalise per channel.
//!
//! The resize follows Pillow's `Resample.c` step by step (triangle filter stretched by the
//! scale when shrinking, 22-bit fixed-point weights, horizontal pass first with an 8-bit
//! intermediate image), so pixels match PIL's to the last bit rather than to a few levels.

use burn::tensor::Device;
use burn::tensor::{Tensor, TensorData};
use image::RgbImage;

use crate::face::resample::Planes;

/// How an image becomes the network's input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Preset {
    /// The short side after resizing.
    pub resize_short: u32,
    /// Side of the square centre crop.
    pub crop: u32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

impl Preset {
    /// IMAGENET1K_V1 (`mobilenet_v2-b0353104.pth`): short side 256.
    pub const IMAGENET1K_V1: Preset = Preset {
        resize_short: 256,
        crop: 224,
        mean: IMAGENET_MEAN,
        std: IMAGENET_STD,
    };
    /// IMAGENET1K_V2 (`mobilenet_v2-7ebf99e0.pth`): short side 232.
    pub const IMAGENET1K_V2: Preset = Preset {
        resize_short: 232,
        crop: 224,
        mean: IMAGENET_MEAN,
        std: IMAGENET_STD,
    };

    /// The network input for one image: (3, crop, crop) planes, normalised.
    pub fn apply(&self, img: &RgbImage) -> Planes {
        let (w, h) = (img.width(), img.height());
        let (new_w, new_h) = short_side_size(w, h, self.resize_short);
        let resized = if (new_w, new_h) == (w, h) {
            img.clone()
        } else {
            resize_bilinear_pil(img, new_w, new_h)
        };
        let left = crop_offset(new_w, self.crop);
        let top = crop_offset(new_h, self.crop);
        let side = self.crop as usize;
        let mut data = vec![0.0f32; 3 * side * side];
        for y in 0..side {
            let sy = top + y as i64;
            for x in 0..side {
                let sx = left + x as i64;
                // torchvision pads with zeros when the crop is larger than the image.
                let inside = sy >= 0 && sx >= 0 && sy < new_h as i64 && sx < new_w as i64;
                let px = if inside {
                    resized.get_pixel(sx as u32, sy as u32).0
                } else {
                    [0; 3]
                };
                for c in 0..3 {
                    data[c * side * side + y * side + x] =
                        (px[c] as f32 / 255.0 - self.mean[c]) / self.std[c];
                }
            }
        }
        Planes {
            channels: 3,
            height: side,
            width: side,
            data,
        }
    }

    /// A batch of images as one (N, 3, crop, crop) tensor.
    pub fn batch(&self, images: &[RgbImage], device: &Device) -> Tensor<4> {
        let side = self.crop as usize;
        let data: Vec<f32> = images.iter().flat_map(|img| self.apply(img).data).collect();
        Tensor::from_data(TensorData::new(data, [images.len(), 3, side, side]), device)
    }
}

/// torchvision's `Resize(int)`: the short side becomes `size`, the long side
/// `int(size * long / short)`. Returns (width, height).
pub fn short_side_size(w: u32, h: u32, size: u32) -> (u32, u32) {
    let (short, long) = if w <= h { (w, h) } else { (h, w) };
    let new_long = (size as f64 * long as f64 / short.max(1) as f64) as u32;
    if w <= h {
        (size, new_long)
    } else {
        (new_long, size)
    }
}

/// torchvision's `center_crop` offset: `round((size - crop) / 2)` with Python's rounding
/// (halves to even); negative when the crop is larger, which torchvision fills by padding
/// `(crop - size) // 2` zeros in front.
fn crop_offset(size: u32, crop: u32) -> i64 {
    if size >= crop {
        let diff = (size - crop) as i64;
        // diff/2 is either whole or a half; a half rounds to the even neighbour.
        let floor = diff / 2;
        if diff % 2 == 1 && floor % 2 == 1 {
            floor + 1
        } else {
            floor
        }
    } else {
        -(((crop - size) / 2) as i64)
    }
}

/// Bits of Pillow's fixed-point weights for 8-bit images.
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Per output pixel: the first input index and the fixed-point weights.
struct Coeffs {
    bounds: Vec<(usize, usize)>,
    weights: Vec<i32>,
    ksize: usize,
}

/// Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for the bilinear (triangle) filter.
fn coeffs(in_size: usize, out_size: usize) -> Coeffs {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filterscale; // the triangle's support is 1
    let ksize = support.ceil() as usize * 2 + 1;
    let mut bounds = Vec::with_capacity(out_size);
    let mut weights = vec![0i32; out_size * ksize];
    let mut k = vec![0.0f64; ksize];
    for xx in 0..out_size {
        let center = (xx as f64 + 0.5) * scale;
        let ss = 1.0 / filterscale;
        // C's (int) cast truncates towards zero.
        let xmin = ((center - support + 0.5).trunc() as i64).max(0) as usize;
        let xmax = ((center + support + 0.5).trunc() as i64).min(in_size as i64) as usize - xmin;
        let mut ww = 0.0;
        for (x, slot) in k.iter_mut().enumerate().take(xmax) {
            let t = ((x + xmin) as f64 - center + 0.5) * ss;
            let w = (1.0 - t.abs()).max(0.0);
            *slot = w;
            ww += w;
        }
        let one = (1u64 << PRECISION_BITS) as f64;
        for x in 0..xmax {
            let w = if ww != 0.0 { k[x] / ww } else { k[x] };
            weights[xx * ksize + x] = if w < 0.0 {
                (-0.5 + w * one).trunc() as i32
            } else {
                (0.5 + w * one).trunc() as i32
            };
        }
        bounds.push((xmin, xmax));
    }
    Coeffs {
        bounds,
        weights,
        ksize,
    }
}

fn clip8(v: i64) -> u8 {
    (v >> PRECISION_BITS).clamp(0, 255) as u8
}

/// One separable pass over interleaved RGB pixels: for each of `lines` lines, output `o` sums
/// the taps `taps_at(line, i)` for `i` in its bounds and lands at `out_index(line, o)`.
fn pass(
    src: &[u8],
    c: &Coeffs,
    taps_at: impl Fn(usize, usize) -> usize,
    out: &mut [u8],
    out_index: impl Fn(usize, usize) -> usize,
    lines: usize,
) {
    let half = 1i64 << (PRECISION_BITS - 1);
    for line in 0..lines {
        for (o, &(start, n)) in c.bounds.iter().enumerate() {
            let w = &c.weights[o * c.ksize..o * c.ksize + n];
            for ch in 0..3 {
                let mut acc = half;
                for (i, &wi) in w.iter().enumerate() {
                    acc += src[taps_at(line, start + i) * 3 + ch] as i64 * wi as i64;
                }
                out[out_index(line, o) * 3 + ch] = clip8(acc);
            }
        }
    }
}

/// `PIL.Image.resize((w, h), BILINEAR)` on an RGB image.
pub fn resize_bilinear_pil(img: &RgbImage, out_w: u32, out_h: u32) -> RgbImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let (ow, oh) = (out_w as usize, out_h as usize);
    if ow == 0 || oh == 0 || w == 0 || h == 0 {
        return RgbImage::new(out_w, out_h);
    }
    let src = img.as_raw();
    let horizontal = if ow != w {
        let c = coeffs(w, ow);
        let mut tmp = vec![0u8; ow * h * 3];
        pass(src, &c, |y, x| y * w + x, &mut tmp, |y, x| y * ow + x, h);
        tmp
    } else {
        src.to_vec()
    };
    let out = if oh != h {
        let c = coeffs(h, oh);
        let mut out = vec![0u8; ow * oh * 3];
        pass(
            &horizontal,
            &c,
            |x, y| y * ow + x,
            &mut out,
            |x, y| y * ow + x,
            ow,
        );
        out
    } else {
        horizontal
    };
    // The buffer has exactly out_w * out_h * 3 bytes by construction.
    RgbImage::from_raw(out_w, out_h, out).unwrap_or_else(|| RgbImage::new(out_w, out_h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_side_and_crop_follow_torchvision() {
        // 300x260 with V2: short side 232, long int(232*300/260) = 267; crop offsets 22 and 4.
        assert_eq!(short_side_size(300, 260, 232), (267, 232));
        assert_eq!(crop_offset(267, 224), 22); // round(21.5) = 22 (even)
        assert_eq!(crop_offset(269, 224), 22); // round(22.5) = 22 (even)
        assert_eq!(crop_offset(232, 224), 4);
        assert_eq!(crop_offset(221, 224), -1);
    }

    #[test]
    fn resize_keeps_a_flat_image_flat_and_averages_when_halving() {
        let flat = RgbImage::from_pixel(37, 23, image::Rgb([200, 10, 99]));
        let out = resize_bilinear_pil(&flat, 16, 11);
        assert!(out.pixels().all(|p| p.0 == [200, 10, 99]));
        // Halving a 0/255 column pattern: each output pixel covers a 0,255 pair plus half-weight
        // neighbours; interior values are mid-grey.
        let stripes = RgbImage::from_fn(8, 2, |x, _| {
            if x % 2 == 0 {
                image::Rgb([0; 3])
            } else {
                image::Rgb([255; 3])
            }
        });
        let out = resize_bilinear_pil(&stripes, 4, 2);
        for x in 1..3 {
            let v = out.get_pixel(x, 0).0[0] as i32;
            assert!((v - 128).abs() <= 1, "pixel {x}: {v}");
        }
    }
}
