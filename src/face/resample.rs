//! Resampling of planar f32 images.

/// A planar (C, H, W) f32 image, values as stored (0..255 for photos).
#[derive(Debug, Clone, PartialEq)]
pub struct Planes {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub data: Vec<f32>,
}

impl Planes {
    /// An 8-bit RGB image as three f32 planes with values 0..255.
    pub fn from_rgb(img: &image::RgbImage) -> Planes {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let mut data = vec![0.0f32; 3 * w * h];
        for (i, px) in img.pixels().enumerate() {
            for c in 0..3 {
                data[c * w * h + i] = px.0[c] as f32;
            }
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

/// PyTorch's `interpolate(mode="area")`, i.e. adaptive average pooling: each output pixel is the
/// mean of its (possibly overlapping, varying) input window. MTCNN's weights were tuned on this
/// resampling, so the detector must use it rather than bilinear or PIL filters.
pub fn resize_area(src: &Planes, out_h: usize, out_w: usize) -> Planes {
    let (h, w) = (src.height, src.width);
    let rows: Vec<(usize, usize)> = (0..out_h).map(|i| window(i, h, out_h)).collect();
    let cols: Vec<(usize, usize)> = (0..out_w).map(|j| window(j, w, out_w)).collect();
    let mut data = vec![0.0f32; src.channels * out_h * out_w];
    for c in 0..src.channels {
        let plane = &src.data[c * h * w..(c + 1) * h * w];
        let out = &mut data[c * out_h * out_w..(c + 1) * out_h * out_w];
        for (i, &(y0, y1)) in rows.iter().enumerate() {
            for (j, &(x0, x1)) in cols.iter().enumerate() {
                let mut sum = 0.0f32;
                for y in y0..y1 {
                    for v in &plane[y * w + x0..y * w + x1] {
                        sum += v;
                    }
                }
                out[i * out_w + j] = sum / ((y1 - y0) * (x1 - x0)) as f32;
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
}
