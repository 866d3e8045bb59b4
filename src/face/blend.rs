//! Hiding the seam of a pasted face: Poisson (gradient-domain) cloning and multi-band (Laplacian
//! pyramid) blending, the classic face swap's two blends. Both work on same-sized images, usually
//! the aligned crops of the virtual model (`src`) and of the target (`dst`).

use image::RgbImage;

use super::mask::{MaskError, Plane};

/// Pixels whose region value is at least this are inside a Poisson region.
pub const REGION_THRESHOLD: f32 = 0.5;

/// Conjugate gradients stop once the residual is this small relative to the right-hand side.
const CG_TOLERANCE: f64 = 1e-6;
/// A hard cap on conjugate-gradient steps; a 256² region converges in a few hundred.
const CG_MAX_STEPS: usize = 5000;

fn same_size(src: &RgbImage, dst: &RgbImage, mask: &Plane) -> Result<(usize, usize), MaskError> {
    let (w, h) = (dst.width() as usize, dst.height() as usize);
    for (ow, oh) in [
        (src.width() as usize, src.height() as usize),
        (mask.width, mask.height),
    ] {
        if (ow, oh) != (w, h) {
            return Err(MaskError::SizeMismatch(w, h, ow, oh));
        }
    }
    Ok((w, h))
}

/// Poisson cloning (Pérez, Gangnet and Blake 2003): inside `region` (values ≥
/// [`REGION_THRESHOLD`]) the result has the gradients of `src` and meets `dst` along the region's
/// border, so the source's detail arrives in the destination's light and colour; everywhere else
/// the result is `dst`, byte for byte. Pixels on the image's edge always count as border.
///
/// The unknown is the correction `g = result − src`, which is harmonic inside the region and equals
/// `dst − src` on its border; it is solved per channel by conjugate gradients on the 5-point
/// Laplacian.
pub fn poisson_blend(src: &RgbImage, dst: &RgbImage, region: &Plane) -> Result<RgbImage, MaskError> {
    let (w, h) = same_size(src, dst, region)?;
    let mut index = vec![-1i64; w * h];
    let mut unknowns = Vec::new();
    for y in 1..h.saturating_sub(1) {
        for x in 1..w.saturating_sub(1) {
            let v = region.get(x, y);
            if v >= REGION_THRESHOLD {
                index[y * w + x] = unknowns.len() as i64;
                unknowns.push((x, y));
            }
        }
    }
    let mut out = dst.clone();
    if unknowns.is_empty() {
        return Ok(out);
    }
    // Each unknown's four neighbours: another unknown, or a border pixel whose value is known.
    let neighbours: Vec<[usize; 4]> = unknowns
        .iter()
        .map(|&(x, y)| [y * w + x - 1, y * w + x + 1, (y - 1) * w + x, (y + 1) * w + x])
        .collect();
    let links: Vec<[i64; 4]> = neighbours.iter().map(|n| n.map(|p| index[p])).collect();
    let (s, d) = (src.as_raw(), dst.as_raw());
    for c in 0..3 {
        let b: Vec<f64> = neighbours
            .iter()
            .zip(&links)
            .map(|(n, l)| {
                n.iter()
                    .zip(l)
                    .filter(|(_, link)| **link < 0)
                    .map(|(&p, _)| d[p * 3 + c] as f64 - s[p * 3 + c] as f64)
                    .sum()
            })
            .collect();
        let g = conjugate_gradients(&links, &b);
        for (&(x, y), gv) in unknowns.iter().zip(&g) {
            let p = y * w + x;
            let v = (s[p * 3 + c] as f64 + gv).round().clamp(0.0, 255.0) as u8;
            out.get_pixel_mut(x as u32, y as u32).0[c] = v;
        }
    }
    Ok(out)
}

/// Solves `A x = b` for the 5-point Laplacian system of the unknowns: `(A x)_i = 4 x_i − Σ x_j` over
/// the neighbours `j` that are unknowns (`links[i]`, −1 for a known border pixel). `A` is symmetric
/// positive definite, so conjugate gradients converge.
fn conjugate_gradients(links: &[[i64; 4]], b: &[f64]) -> Vec<f64> {
    let n = b.len();
    let apply = |p: &[f64], out: &mut [f64]| {
        for (i, l) in links.iter().enumerate() {
            let mut v = 4.0 * p[i];
            for &j in l {
                if j >= 0 {
                    v -= p[j as usize];
                }
            }
            out[i] = v;
        }
    };
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let mut x = vec![0.0; n];
    let mut r = b.to_vec();
    let mut p = r.clone();
    let mut ap = vec![0.0; n];
    let mut rs = dot(&r, &r);
    let limit = CG_TOLERANCE * CG_TOLERANCE * rs;
    for _ in 0..CG_MAX_STEPS {
        if rs <= limit || rs == 0.0 {
            break;
        }
        apply(&p, &mut ap);
        let alpha = rs / dot(&p, &ap);
        for i in 0..n {
            x[i] += alpha * p[i];
            r[i] -= alpha * ap[i];
        }
        let next = dot(&r, &r);
        let beta = next / rs;
        for i in 0..n {
            p[i] = r[i] + beta * p[i];
        }
        rs = next;
    }
    x
}

/// One f32 channel, row-major.
#[derive(Debug, Clone)]
struct Channel {
    w: usize,
    h: usize,
    data: Vec<f32>,
}

/// Reflect-101 index (`gfedcb|abcdefgh|gfedcba`), the border the Gaussian blur uses too.
fn reflect(i: i64, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let period = 2 * (n as i64 - 1);
    let m = i.rem_euclid(period);
    (if m < n as i64 { m } else { period - m }) as usize
}

/// Burt and Adelson's 5-tap binomial kernel.
const KERNEL: [f32; 5] = [1.0 / 16.0, 4.0 / 16.0, 6.0 / 16.0, 4.0 / 16.0, 1.0 / 16.0];

impl Channel {
    fn at(&self, x: usize, y: usize) -> f32 {
        self.data[y * self.w + x]
    }

    /// Blur and keep every second pixel: the next Gaussian pyramid level.
    fn reduce(&self) -> Channel {
        let (ow, oh) = (self.w.div_ceil(2), self.h.div_ceil(2));
        let mut rows = Channel {
            w: ow,
            h: self.h,
            data: vec![0.0; ow * self.h],
        };
        for y in 0..self.h {
            for x in 0..ow {
                let v = (0..5)
                    .map(|k| KERNEL[k] * self.at(reflect(2 * x as i64 + k as i64 - 2, self.w), y))
                    .sum();
                rows.data[y * ow + x] = v;
            }
        }
        let mut out = Channel {
            w: ow,
            h: oh,
            data: vec![0.0; ow * oh],
        };
        for y in 0..oh {
            for x in 0..ow {
                let v = (0..5)
                    .map(|k| KERNEL[k] * rows.at(x, reflect(2 * y as i64 + k as i64 - 2, self.h)))
                    .sum();
                out.data[y * ow + x] = v;
            }
        }
        out
    }

    /// Upsamples to `w`×`h` (at most twice this size, plus one) with the binomial interpolation that
    /// inverts [`Channel::reduce`]'s sampling: even outputs weigh (1, 6, 1)/8, odd ones (1, 1)/2.
    fn expand(&self, w: usize, h: usize) -> Channel {
        let tap = |v: &dyn Fn(usize) -> f32, n: usize, j: usize| -> f32 {
            let i = (j / 2) as i64;
            if j.is_multiple_of(2) {
                (v(reflect(i - 1, n)) + 6.0 * v(reflect(i, n)) + v(reflect(i + 1, n))) / 8.0
            } else {
                (v(reflect(i, n)) + v(reflect(i + 1, n))) / 2.0
            }
        };
        let mut rows = Channel {
            w,
            h: self.h,
            data: vec![0.0; w * self.h],
        };
        for y in 0..self.h {
            let line = |x: usize| self.at(x, y);
            for x in 0..w {
                rows.data[y * w + x] = tap(&line, self.w, x);
            }
        }
        let mut out = Channel {
            w,
            h,
            data: vec![0.0; w * h],
        };
        for x in 0..w {
            let column = |y: usize| rows.at(x, y);
            for y in 0..h {
                out.data[y * w + x] = tap(&column, self.h, y);
            }
        }
        out
    }

    fn zip(&self, other: &Channel, f: impl Fn(f32, f32) -> f32) -> Channel {
        Channel {
            w: self.w,
            h: self.h,
            data: self
                .data
                .iter()
                .zip(&other.data)
                .map(|(&a, &b)| f(a, b))
                .collect(),
        }
    }
}

fn gaussian_pyramid(base: Channel, levels: usize) -> Vec<Channel> {
    let mut out = vec![base];
    while out.len() < levels {
        let next = out[out.len() - 1].reduce();
        out.push(next);
    }
    out
}

/// Band-pass levels, finest first; the last level is the coarsest Gaussian level itself.
fn laplacian_pyramid(base: Channel, levels: usize) -> Vec<Channel> {
    let gauss = gaussian_pyramid(base, levels);
    let mut out = Vec::with_capacity(gauss.len());
    for k in 0..gauss.len() {
        match gauss.get(k + 1) {
            Some(coarser) => {
                let up = coarser.expand(gauss[k].w, gauss[k].h);
                out.push(gauss[k].zip(&up, |a, b| a - b));
            }
            None => out.push(gauss[k].clone()),
        }
    }
    out
}

fn collapse(pyramid: Vec<Channel>) -> Option<Channel> {
    let mut levels = pyramid.into_iter().rev();
    let mut out = levels.next()?;
    for band in levels {
        let up = out.expand(band.w, band.h);
        out = band.zip(&up, |a, b| a + b);
    }
    Some(out)
}

/// How many pyramid levels a `w`×`h` image supports while the coarsest stays at least 4 px a side.
pub fn max_levels(w: usize, h: usize) -> usize {
    let mut side = w.min(h);
    let mut levels = 1;
    while side > 8 {
        side = side.div_ceil(2);
        levels += 1;
    }
    levels
}

/// Multi-band blending (Burt and Adelson 1983): `mask·src + (1 − mask)·dst` done separately on each
/// band of a Laplacian pyramid, with the mask blurred to the band's scale, so coarse shading
/// crosses the seam smoothly while fine detail keeps a sharp transition. `levels` is capped by
/// [`max_levels`]; 1 is the plain per-pixel blend.
pub fn multiband_blend(
    src: &RgbImage,
    dst: &RgbImage,
    mask: &Plane,
    levels: usize,
) -> Result<RgbImage, MaskError> {
    let (w, h) = same_size(src, dst, mask)?;
    let mut out = dst.clone();
    if w == 0 || h == 0 {
        return Ok(out);
    }
    let levels = levels.clamp(1, max_levels(w, h));
    let clean: Vec<f32> = mask
        .data
        .iter()
        .map(|&m| if m.is_nan() { 0.0 } else { m.clamp(0.0, 1.0) })
        .collect();
    let weights = gaussian_pyramid(Channel { w, h, data: clean }, levels);
    let channel = |img: &RgbImage, c: usize| Channel {
        w,
        h,
        data: img.pixels().map(|p| p.0[c] as f32).collect(),
    };
    for c in 0..3 {
        let a = laplacian_pyramid(channel(src, c), levels);
        let b = laplacian_pyramid(channel(dst, c), levels);
        let bands: Vec<Channel> = a
            .iter()
            .zip(&b)
            .zip(&weights)
            .map(|((la, lb), m)| Channel {
                w: la.w,
                h: la.h,
                data: la
                    .data
                    .iter()
                    .zip(&lb.data)
                    .zip(&m.data)
                    .map(|((&x, &y), &k)| k * x + (1.0 - k) * y)
                    .collect(),
            })
            .collect();
        let Some(blended) = collapse(bands) else {
            continue;
        };
        for (px, v) in out.pixels_mut().zip(&blended.data) {
            px.0[c] = v.round().clamp(0.0, 255.0) as u8;
        }
    }
    Ok(out)
}

/// `poisson_blend` or `multiband_blend` chosen at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blend {
    Poisson,
    MultiBand { levels: usize },
}

/// Blends `src` into `dst` by `blend`; `mask` is the region (Poisson) or the weights (multi-band).
pub fn blend_into(src: &RgbImage, dst: &RgbImage, mask: &Plane, blend: Blend) -> Result<RgbImage, MaskError> {
    match blend {
        Blend::Poisson => poisson_blend(src, dst, mask),
        Blend::MultiBand { levels } => multiband_blend(src, dst, mask, levels),
    }
}

#[cfg(test)]
mod tests {
    use image::Rgb;

    use super::*;

    fn solid(width: u32, height: u32, rgb: [u8; 3]) -> RgbImage {
        RgbImage::from_pixel(width, height, Rgb(rgb))
    }

    fn region(w: usize, h: usize, inside: impl Fn(usize, usize) -> bool) -> Plane {
        let mut m = Plane::filled(w, h, 0.0);
        for y in 0..h {
            for x in 0..w {
                if inside(x, y) {
                    m.set(x, y, 1.0);
                }
            }
        }
        m
    }

    #[test]
    fn one_pixel_region_golden() {
        // Hand solution: f = S_c + mean over the 4 neighbours of (T − S) = 50 + (400 − 100)/4 = 125.
        let mut src = solid(3, 3, [0, 0, 0]);
        src.put_pixel(1, 1, Rgb([50, 50, 50]));
        for (x, y, v) in [(0, 1, 10u8), (2, 1, 20), (1, 0, 30), (1, 2, 40)] {
            src.put_pixel(x, y, Rgb([v, v, v]));
        }
        let dst = solid(3, 3, [100, 100, 100]);
        let out = poisson_blend(&src, &dst, &region(3, 3, |x, y| x == 1 && y == 1)).unwrap();
        assert_eq!(out.get_pixel(1, 1), &Rgb([125, 125, 125]));
        for (x, y, p) in out.enumerate_pixels() {
            if (x, y) != (1, 1) {
                assert_eq!(p, dst.get_pixel(x, y));
            }
        }
    }

    #[test]
    fn an_offset_source_takes_the_destination_exactly() {
        // Same gradients, different level: the correction is the constant offset.
        let dst = RgbImage::from_fn(40, 30, |x, y| {
            Rgb([(x * 5) as u8, (y * 7) as u8, ((x + y) * 3) as u8])
        });
        let src = RgbImage::from_fn(40, 30, |x, y| {
            let p = dst.get_pixel(x, y).0;
            Rgb([p[0] + 30, p[1] + 20, p[2] + 10])
        });
        let m = region(40, 30, |x, y| (8..32).contains(&x) && (6..24).contains(&y));
        assert_eq!(poisson_blend(&src, &dst, &m).unwrap(), dst);
    }

    #[test]
    fn a_linear_source_in_a_flat_destination_is_flattened() {
        // A linear ramp is harmonic, so the harmonic correction cancels it: f = T.
        let src = RgbImage::from_fn(32, 32, |x, _| Rgb([(x * 6) as u8, 90, 200]));
        let dst = solid(32, 32, [120, 40, 10]);
        let m = region(32, 32, |x, y| {
            (x as i32 - 16).pow(2) + (y as i32 - 16).pow(2) < 100
        });
        let out = poisson_blend(&src, &dst, &m).unwrap();
        for (a, b) in out.pixels().zip(dst.pixels()) {
            for c in 0..3 {
                assert!(a[c].abs_diff(b[c]) <= 1, "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn poisson_keeps_the_source_detail_and_the_destination_outside() {
        let dst = solid(48, 48, [200, 150, 120]);
        let src = RgbImage::from_fn(48, 48, |x, y| {
            let v = if (x / 4 + y / 4) % 2 == 0 { 60 } else { 100 };
            Rgb([v, v, v])
        });
        let m = region(48, 48, |x, y| (12..36).contains(&x) && (12..36).contains(&y));
        let out = poisson_blend(&src, &dst, &m).unwrap();
        for (x, y, p) in out.enumerate_pixels() {
            if m.get(x as usize, y as usize) < REGION_THRESHOLD {
                assert_eq!(p, dst.get_pixel(x, y), "({x}, {y}) outside changed");
            }
        }
        // Inside, the checkerboard's steps survive: neighbours across a square edge differ by ~40.
        let step = out.get_pixel(24, 24)[0] as i32 - out.get_pixel(23, 24)[0] as i32;
        assert!((35..=45).contains(&step.abs()), "step {step}");
        // And the level is pulled towards the destination, not left at the source's.
        assert!(out.get_pixel(24, 24)[1] > 120, "{:?}", out.get_pixel(24, 24));
    }

    #[test]
    fn multiband_with_a_full_or_empty_mask_returns_one_input() {
        let a = RgbImage::from_fn(37, 29, |x, y| Rgb([(x * 7) as u8, (y * 9) as u8, 77]));
        let b = RgbImage::from_fn(37, 29, |x, y| Rgb([(y * 3) as u8, 200, (x * 5) as u8]));
        let ones = Plane::filled(37, 29, 1.0);
        let zeros = Plane::filled(37, 29, 0.0);
        assert_eq!(multiband_blend(&a, &b, &ones, 4).unwrap(), a);
        assert_eq!(multiband_blend(&a, &b, &zeros, 4).unwrap(), b);
    }

    #[test]
    fn multiband_spreads_a_hard_seam_smoothly() {
        let black = solid(128, 128, [0, 0, 0]);
        let white = solid(128, 128, [255, 255, 255]);
        let left = region(128, 128, |x, _| x < 64);
        let spread = |levels: usize| {
            let out = multiband_blend(&black, &white, &left, levels).unwrap();
            let row: Vec<u8> = (0..128).map(|x| out.get_pixel(x, 64)[0]).collect();
            assert!(row.windows(2).all(|w| w[0] <= w[1]), "not monotone: {row:?}");
            assert!(row[0] <= 2 && row[127] >= 253, "{row:?}");
            row.iter().filter(|&&v| v > 10 && v < 245).count()
        };
        // Each level doubles the width of the transition; one level is the plain blend, a hard step.
        let (one, three, five) = (spread(1), spread(3), spread(5));
        assert_eq!(one, 0);
        assert!(
            three >= 4 && five >= 2 * three,
            "transition widths {one}, {three}, {five}"
        );
    }

    #[test]
    fn sizes_must_match() {
        let a = solid(4, 4, [0, 0, 0]);
        let b = solid(5, 4, [0, 0, 0]);
        let m = Plane::filled(4, 4, 1.0);
        assert!(poisson_blend(&a, &b, &m).is_err());
        assert!(multiband_blend(&a, &b, &m, 3).is_err());
        assert_eq!(max_levels(256, 256), 6);
    }
}
