//! Resampling of planar f32 images.

use rayon::prelude::*;

/// A planar (C, H, W) f32 image, values as stored (0..255 for photos).
#[derive(Debug, Clone, PartialEq)]
pub struct Planes {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub data: Vec<f32>,
}

impl Planes {
    /// An 8-bit RGB image as three f32 planes with values 0..255 (rows in parallel: a 24-megapixel
    /// photo is 72 M values).
    pub fn from_rgb(img: &image::RgbImage) -> Planes {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let mut data = vec![0.0f32; 3 * w * h];
        let raw: &[u8] = img.as_raw();
        if w > 0 {
            data.par_chunks_mut(w).enumerate().for_each(|(r, out)| {
                let (c, y) = (r / h, r % h);
                let pixels = raw[y * w * 3..(y + 1) * w * 3].chunks_exact(3);
                for (v, px) in out.iter_mut().zip(pixels) {
                    *v = px[c] as f32;
                }
            });
        }
        Planes {
            channels: 3,
            height: h,
            width: w,
            data,
        }
    }

    /// The window `[y0, y1) × [x0, x1)` of every channel.
    pub fn crop(&self, y0: usize, y1: usize, x0: usize, x1: usize) -> Planes {
        let (h, w) = (y1 - y0, x1 - x0);
        let mut data = Vec::with_capacity(self.channels * h * w);
        for c in 0..self.channels {
            let plane = &self.data[c * self.height * self.width..(c + 1) * self.height * self.width];
            for y in y0..y1 {
                data.extend_from_slice(&plane[y * self.width + x0..y * self.width + x1]);
            }
        }
        Planes {
            channels: self.channels,
            height: h,
            width: w,
            data,
        }
    }
}

impl Planes {
    /// The image in the top-left corner of a `height × width` canvas of zeros (at least as large).
    pub fn padded_to(&self, height: usize, width: usize) -> Planes {
        let (height, width) = (height.max(self.height), width.max(self.width));
        let mut data = vec![0.0f32; self.channels * height * width];
        let source = self.data.chunks_exact(self.width.max(1));
        let target = data
            .chunks_exact_mut(height * width)
            .flat_map(|plane| plane.chunks_exact_mut(width).take(self.height));
        for (from, to) in source.zip(target) {
            to[..self.width].copy_from_slice(from);
        }
        Planes {
            channels: self.channels,
            height,
            width,
            data,
        }
    }
}

/// The input window of output index `i` under adaptive average pooling: `[floor(i·n/m), ceil((i+1)·n/m))`.
fn window(i: usize, n: usize, m: usize) -> (usize, usize) {
    let start = (i * n) / m;
    let end = ((i + 1) * n).div_ceil(m);
    (start, end)
}

/// Below this many source values an area resize runs on the calling thread: a face crop for
/// RNet or ONet is not worth rayon's hand-offs, a pyramid level of a photo is.
const PARALLEL_MIN_VALUES: usize = 1 << 16;

/// PyTorch's `interpolate(mode="area")`, i.e. adaptive average pooling: each output pixel is the
/// mean of its (possibly overlapping, varying) input window. MTCNN's weights were tuned on this
/// resampling, so the detector must use it rather than bilinear or PIL filters.
///
/// Each output row first adds its window's input rows into one row of column sums (contiguous,
/// vectorised), then sums each output pixel's columns there; rows run in parallel. On photos (whole
/// numbers below 2^24 / window area) every sum is exact, so the result is the same to the bit
/// as adding the window pixel by pixel in any order.
pub fn resize_area(src: &Planes, out_h: usize, out_w: usize) -> Planes {
    let (h, w) = (src.height, src.width);
    let rows: Vec<(usize, usize)> = (0..out_h).map(|i| window(i, h, out_h)).collect();
    let cols: Vec<(usize, usize)> = (0..out_w).map(|j| window(j, w, out_w)).collect();
    let mut data = vec![0.0f32; src.channels * out_h * out_w];
    let row = |sums: &mut Vec<f32>, (r, out): (usize, &mut [f32])| {
        let (c, (y0, y1)) = (r / out_h, rows[r % out_h]);
        let plane = &src.data[c * h * w..(c + 1) * h * w];
        sums.clear();
        sums.extend_from_slice(&plane[y0 * w..(y0 + 1) * w]);
        for y in y0 + 1..y1 {
            for (s, &v) in sums.iter_mut().zip(&plane[y * w..(y + 1) * w]) {
                *s += v;
            }
        }
        for (o, &(x0, x1)) in out.iter_mut().zip(&cols) {
            let mut sum = 0.0f32;
            for &v in &sums[x0..x1] {
                sum += v;
            }
            *o = sum / ((y1 - y0) * (x1 - x0)) as f32;
        }
    };
    if out_w > 0 && src.data.len() >= PARALLEL_MIN_VALUES {
        data.par_chunks_mut(out_w)
            .enumerate()
            .for_each_init(|| Vec::with_capacity(w), row);
    } else if out_w > 0 {
        let mut sums = Vec::with_capacity(w);
        for item in data.chunks_mut(out_w).enumerate() {
            row(&mut sums, item);
        }
    }
    Planes {
        channels: src.channels,
        height: out_h,
        width: out_w,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_keeps_every_channel_in_the_top_left_corner() {
        let src = Planes {
            channels: 2,
            height: 2,
            width: 3,
            data: (1..=12).map(|v| v as f32).collect(),
        };
        let padded = src.padded_to(3, 4);
        assert_eq!((padded.channels, padded.height, padded.width), (2, 3, 4));
        #[rustfmt::skip]
        let want = [
            1.0, 2.0, 3.0, 0.0,   4.0, 5.0, 6.0, 0.0,     0.0, 0.0, 0.0, 0.0,
            7.0, 8.0, 9.0, 0.0,   10.0, 11.0, 12.0, 0.0,  0.0, 0.0, 0.0, 0.0,
        ];
        assert_eq!(padded.data, want);
        assert_eq!(src.padded_to(1, 1), src, "a canvas never crops");
    }

    #[test]
    fn area_windows_overlap_when_the_ratio_is_not_whole() {
        // 5 → 3: windows [0,2), [1,4), [3,5)
        assert_eq!(window(0, 5, 3), (0, 2));
        assert_eq!(window(1, 5, 3), (1, 4));
        assert_eq!(window(2, 5, 3), (3, 5));
    }

    #[test]
    fn area_resize_averages_each_window() {
        let src = Planes {
            channels: 1,
            height: 1,
            width: 5,
            data: vec![0.0, 3.0, 6.0, 9.0, 12.0],
        };
        let out = resize_area(&src, 1, 3);
        assert_eq!(out.data, vec![1.5, 6.0, 10.5]);
    }

    #[test]
    fn upsampling_copies_or_averages_neighbours() {
        let src = Planes {
            channels: 1,
            height: 1,
            width: 2,
            data: vec![0.0, 10.0],
        };
        let out = resize_area(&src, 1, 3);
        // windows [0,1), [0,2), [1,2)
        assert_eq!(out.data, vec![0.0, 5.0, 10.0]);
    }

    /// The window of every output pixel summed pixel by pixel, as the detector first did.
    fn resize_area_by_pixels(src: &Planes, out_h: usize, out_w: usize) -> Planes {
        let (h, w) = (src.height, src.width);
        let mut data = vec![0.0f32; src.channels * out_h * out_w];
        for c in 0..src.channels {
            let plane = &src.data[c * h * w..(c + 1) * h * w];
            for i in 0..out_h {
                let (y0, y1) = window(i, h, out_h);
                for j in 0..out_w {
                    let (x0, x1) = window(j, w, out_w);
                    let mut sum = 0.0f32;
                    for y in y0..y1 {
                        for v in &plane[y * w + x0..y * w + x1] {
                            sum += v;
                        }
                    }
                    data[(c * out_h + i) * out_w + j] = sum / ((y1 - y0) * (x1 - x0)) as f32;
                }
            }
        }
        Planes {
            channels: src.channels,
            height: out_h,
            width: out_w,
            data,
        }
    }

    fn photo(channels: usize, height: usize, width: usize, whole: bool) -> Planes {
        let mut state = 0x2545_f491u32;
        let data = (0..channels * height * width)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                let v = (state % 25_600) as f32 / 100.0;
                if whole { v.floor() } else { v }
            })
            .collect();
        Planes {
            channels,
            height,
            width,
            data,
        }
    }

    /// On whole-number pixels (photos) the row-sum resize equals the pixel-by-pixel one to the bit,
    /// on both the serial (crop) and the parallel (pyramid) path, down- and upsampling.
    #[test]
    fn row_sums_give_the_pixel_by_pixel_result_on_photos() {
        for (src, out) in [
            (
                photo(3, 30, 47, true),
                [(24, 24), (13, 29), (30, 47), (45, 60), (1, 1)],
            ),
            (
                photo(3, 301, 257, true),
                [(180, 154), (12, 17), (97, 250), (301, 300), (400, 9)],
            ),
        ] {
            for (oh, ow) in out {
                let got = resize_area(&src, oh, ow);
                let want = resize_area_by_pixels(&src, oh, ow);
                assert_eq!((got.channels, got.height, got.width), (3, oh, ow));
                assert_eq!(got.data, want.data, "{}×{} → {oh}×{ow}", src.height, src.width);
            }
        }
        // Fractional values only change the order of the rounding.
        let src = photo(2, 260, 140, false);
        let got = resize_area(&src, 77, 51);
        let want = resize_area_by_pixels(&src, 77, 51);
        let worst = got
            .data
            .iter()
            .zip(&want.data)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst <= 1e-4, "fractional pixels differ by {worst}");
    }

    #[test]
    fn an_empty_output_is_empty() {
        let src = photo(3, 20, 20, true);
        assert!(resize_area(&src, 0, 5).data.is_empty());
        assert!(resize_area(&src, 5, 0).data.is_empty());
    }

    #[test]
    fn rgb_pixels_become_three_planes() {
        let img = image::RgbImage::from_fn(3, 2, |x, y| {
            image::Rgb([x as u8, 10 + y as u8, 100 + (x + y) as u8])
        });
        let planes = Planes::from_rgb(&img);
        assert_eq!((planes.channels, planes.height, planes.width), (3, 2, 3));
        #[rustfmt::skip]
        let want = [
            0.0, 1.0, 2.0,   0.0, 1.0, 2.0,
            10.0, 10.0, 10.0,   11.0, 11.0, 11.0,
            100.0, 101.0, 102.0,   101.0, 102.0, 103.0,
        ];
        assert_eq!(planes.data, want);
    }
}
