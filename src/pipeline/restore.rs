//! Face restoration with GPEN, as yangxy/GPEN's `FaceEnhancement.process` does it: each face is
//! aligned onto GPEN's five-point template at the network's own crop size, optionally blurred
//! first (the original project's remedy for swaps with doubled features), restored, blended
//! with the face as it was, and pasted back through GPEN's feathered box mask. Only the pixels
//! that mask reaches change; everything else is copied from the input byte for byte.
//!
//! [`restore_faces`] is a plain function over an image and its detected faces, used alike by the
//! window's job, `facecast restore`, the batch recipe and the benchmarks; it reports how long
//! each stage took.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use burn::tensor::{Device, Tensor, TensorData};
use image::{Rgb, RgbImage};
use serde::{Deserialize, Serialize};

use super::detect::Face;
use super::paste::paste_crop;
use crate::face::align::{AlignError, Point, Similarity, align_to_template, gpen_template};
use crate::face::mask::{MaskError, Plane, gaussian_blur_plane, gaussian_blur_rgb};
use crate::face::warp::{crop_aligned, warp_plane};
use crate::nets::gpen::FullGenerator;
use crate::nets::stylegan2::StyleGanError;

/// Whether and how faces are restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestoreMode {
    /// Leave the faces as they are.
    #[default]
    None,
    /// GPEN on the aligned face.
    Gpen,
    /// A Gaussian blur of the aligned face, then GPEN: for swapped faces with doubled features,
    /// which GPEN would otherwise sharpen into two sets.
    BlurThenGpen,
}

impl RestoreMode {
    pub const ALL: [RestoreMode; 3] = [RestoreMode::None, RestoreMode::Gpen, RestoreMode::BlurThenGpen];

    pub fn label(self) -> &'static str {
        match self {
            RestoreMode::None => "None",
            RestoreMode::Gpen => "GPEN",
            RestoreMode::BlurThenGpen => "Blur then GPEN",
        }
    }
}

/// Which released GPEN network restores: 512 is the official default, 256 is about thirteen times
/// less work for a softer result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum GpenModel {
    #[default]
    #[serde(rename = "512")]
    Bfr512,
    #[serde(rename = "256")]
    Bfr256,
}

impl GpenModel {
    pub const ALL: [GpenModel; 2] = [GpenModel::Bfr512, GpenModel::Bfr256];

    /// The weights store's id of the checkpoint.
    pub fn id(self) -> &'static str {
        match self {
            GpenModel::Bfr512 => "gpen-bfr-512",
            GpenModel::Bfr256 => "gpen-bfr-256",
        }
    }

    /// The crop side the released network works at.
    pub fn side(self) -> u32 {
        match self {
            GpenModel::Bfr512 => 512,
            GpenModel::Bfr256 => 256,
        }
    }

    pub fn from_side(side: u32) -> Option<GpenModel> {
        GpenModel::ALL.into_iter().find(|m| m.side() == side)
    }

    pub fn label(self) -> &'static str {
        match self {
            GpenModel::Bfr512 => "GPEN-512",
            GpenModel::Bfr256 => "GPEN-256",
        }
    }
}

/// Every setting of the restore step; the batch recipe embeds it, so missing fields read as their
/// defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RestoreSettings {
    pub mode: RestoreMode,
    /// The Gaussian sigma of [`RestoreMode::BlurThenGpen`], in pixels of a 512-px aligned face
    /// (scaled with the crop for smaller models), so a setting blurs every face alike whatever the
    /// photo's resolution.
    pub blur_sigma: f32,
    /// How much of the restored face replaces the face as it was, in percent (GPEN's `--alpha`
    /// × 100; the official default is 100).
    pub blend: f32,
    pub model: GpenModel,
}

impl Default for RestoreSettings {
    fn default() -> Self {
        RestoreSettings {
            mode: RestoreMode::None,
            blur_sigma: DEFAULT_BLUR_SIGMA,
            blend: 100.0,
            model: GpenModel::Bfr512,
        }
    }
}

/// Sigma of the blur before GPEN, in pixels of a 512-px face: enough to merge features doubled by
/// a few pixels, little enough for GPEN to rebuild detail.
pub const DEFAULT_BLUR_SIGMA: f32 = 2.0;

/// The largest blur sigma accepted (pixels of a 512-px face); beyond it nothing of the face is left.
pub const MAX_BLUR_SIGMA: f32 = 20.0;

impl RestoreSettings {
    /// GPEN restoration at the given blend, blurring first when `blur_sigma` is given.
    pub fn gpen(blur_sigma: Option<f32>, blend: f32, model: GpenModel) -> RestoreSettings {
        RestoreSettings {
            mode: if blur_sigma.is_some() {
                RestoreMode::BlurThenGpen
            } else {
                RestoreMode::Gpen
            },
            blur_sigma: blur_sigma.unwrap_or(DEFAULT_BLUR_SIGMA),
            blend,
            model,
        }
    }

    /// Whether the step runs a network at all.
    pub fn is_enabled(&self) -> bool {
        self.mode != RestoreMode::None
    }

    /// Refuses values no control can produce (a hand-edited recipe, a command-line typo).
    pub fn validate(&self) -> Result<(), RestoreError> {
        if !(self.blend.is_finite() && (0.0..=100.0).contains(&self.blend)) {
            return Err(RestoreError::Settings(format!(
                "blend {} is not a percentage from 0 to 100",
                self.blend
            )));
        }
        if !(self.blur_sigma.is_finite() && (0.0..=MAX_BLUR_SIGMA).contains(&self.blur_sigma)) {
            return Err(RestoreError::Settings(format!(
                "blur sigma {} is outside 0 to {MAX_BLUR_SIGMA} pixels",
                self.blur_sigma
            )));
        }
        Ok(())
    }

    /// What the step does, for the undo menu and export metadata, e.g. "Restore (blur σ 2 then
    /// GPEN-512, blend 80%)".
    pub fn describe(&self) -> String {
        let blend = if self.blend >= 100.0 {
            String::new()
        } else {
            format!(", blend {}%", trim(self.blend))
        };
        match self.mode {
            RestoreMode::None => "No restoration".to_string(),
            RestoreMode::Gpen => format!("Restore ({}{blend})", self.model.label()),
            RestoreMode::BlurThenGpen => format!(
                "Restore (blur σ {} then {}{blend})",
                trim(self.blur_sigma),
                self.model.label()
            ),
        }
    }
}

fn trim(v: f32) -> String {
    let text = format!("{v:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("invalid restore settings: {0}")]
    Settings(String),
    #[error("face {face}: its landmarks cannot be aligned: {source}")]
    Align {
        face: usize,
        #[source]
        source: AlignError,
    },
    #[error("face {face}: {source}")]
    Network {
        face: usize,
        #[source]
        source: StyleGanError,
    },
    #[error("the compute device failed while running GPEN: {0}")]
    Device(String),
    #[error("pasting face {face} back failed: {source}")]
    Paste {
        face: usize,
        #[source]
        source: MaskError,
    },
    #[error("cancelled")]
    Cancelled,
}

/// Time spent in each stage, summed over the faces.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RestoreTimings {
    /// Similarity fit, crop, optional blur and conversion to the network's input.
    pub align: Duration,
    /// GPEN's forward pass, including reading the result back from the device.
    pub network: Duration,
    /// Small-face smoothing, blend, and the masked paste into the image.
    pub paste: Duration,
}

impl RestoreTimings {
    pub fn total(&self) -> Duration {
        self.align + self.network + self.paste
    }

    /// e.g. "align 12 ms, GPEN 3410 ms, paste 30 ms".
    pub fn describe(&self) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        format!(
            "align {:.0} ms, GPEN {:.0} ms, paste {:.0} ms",
            ms(self.align),
            ms(self.network),
            ms(self.paste)
        )
    }
}

/// One face as the step saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct RestoredFace {
    /// The photo → crop similarity (GPEN's `tfm`); its inverse pasted the face back.
    pub photo_to_crop: Similarity,
    /// The aligned crop as cut from the input, before any blur.
    pub crop: RgbImage,
    /// GPEN's output for it, after smoothing and blending: what was pasted.
    pub restored: RgbImage,
}

/// The restored image and what happened on the way.
#[derive(Debug, Clone)]
pub struct Restored {
    pub image: RgbImage,
    /// In the order the faces were given; empty when the mode is [`RestoreMode::None`].
    pub faces: Vec<RestoredFace>,
    /// The crop side used (the loaded network's).
    pub crop_size: u32,
    pub timings: RestoreTimings,
}

/// Faces narrower or shorter than this (photo pixels) get GPEN's 3×3 smoothing of the restored crop,
/// which would otherwise paste a 512-px face's detail into a few dozen pixels.
pub const SMALL_FACE_PX: f32 = 100.0;

/// The photo → crop transform putting five landmarks onto GPEN's template for a `size`-px crop.
pub fn align_face(landmarks: &[Point; 5], size: u32) -> Result<Similarity, AlignError> {
    align_to_template(landmarks, &gpen_template(size))
}

/// GPEN's fixed paste-back mask for a `size`-px crop (`FaceEnhancement.__init__`): at 512 px a box
/// from (26, 26) to (486, 486) inclusive, Gaussian-blurred twice with σ 4, then resized bilinearly
/// to the crop size. Its blur has finite support, so the outermost pixels of the 512 mask are
/// exactly 0 and the crop's black border never shows.
pub fn gpen_mask(size: u32) -> Plane {
    const BASE: usize = 512;
    let mut base = Plane::filled(BASE, BASE, 0.0);
    for y in 26..=486 {
        for x in 26..=486 {
            base.set(x, y, 1.0);
        }
    }
    let base = gaussian_blur_plane(&gaussian_blur_plane(&base, 4.0), 4.0);
    if size as usize == BASE {
        return base;
    }
    // cv2.resize's bilinear grid: output pixel o samples input (o + 0.5)/s − 0.5.
    let s = size as f64 / BASE as f64;
    let to_output = Similarity {
        a: s,
        b: 0.0,
        tx: 0.5 * (s - 1.0),
        ty: 0.5 * (s - 1.0),
    };
    // Edge taps outside the 512 grid read 0, as the mask is 0 there anyway.
    warp_plane(&base, &to_output, size, size, 0.0)
}

/// [`gpen_mask`], made once per size: a batch restores many photos at one size.
fn cached_mask(size: u32) -> Arc<Plane> {
    static MASKS: OnceLock<Mutex<HashMap<u32, Arc<Plane>>>> = OnceLock::new();
    let masks = MASKS.get_or_init(Mutex::default);
    // The map only ever gains complete entries, so a panic elsewhere cannot leave it inconsistent.
    let mut masks = masks.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    Arc::clone(masks.entry(size).or_insert_with(|| Arc::new(gpen_mask(size))))
}

/// Restores `faces` of `image` with `net` on `device`. `each(done, total)` is called before each face
/// and once at the end; returning false stops with [`RestoreError::Cancelled`].
///
/// Every crop is cut from `image` as given and the faces are pasted back one after the other, each
/// through its own mask, so overlapping faces blend in order.
pub fn restore_faces(
    net: &FullGenerator,
    device: &Device,
    image: &RgbImage,
    faces: &[Face],
    settings: &RestoreSettings,
    mut each: impl FnMut(usize, usize) -> bool,
) -> Result<Restored, RestoreError> {
    settings.validate()?;
    let size = net.size() as u32;
    let mut out = Restored {
        image: image.clone(),
        faces: Vec::new(),
        crop_size: size,
        timings: RestoreTimings::default(),
    };
    if !settings.is_enabled() {
        return Ok(out);
    }
    let mask = cached_mask(size);
    let total = faces.len();
    for (index, face) in faces.iter().enumerate() {
        if !each(index, total) {
            return Err(RestoreError::Cancelled);
        }
        let started = Instant::now();
        let photo_to_crop = align_face(&face.landmarks, size)
            .map_err(|source| RestoreError::Align { face: index, source })?;
        let crop = crop_aligned(image, &photo_to_crop, size);
        let input = match settings.mode {
            RestoreMode::BlurThenGpen if settings.blur_sigma > 0.0 => {
                gaussian_blur_rgb(&crop, settings.blur_sigma * size as f32 / 512.0)
            }
            _ => crop.clone(),
        };
        let tensor = to_network_input(&input, device);
        let aligned = Instant::now();
        out.timings.align += aligned - started;

        let result = net
            .forward(tensor)
            .map_err(|source| RestoreError::Network { face: index, source })?;
        let values = result
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| RestoreError::Device(format!("{e:?}")))?;
        let mut restored = from_network_output(&values, size);
        let ran = Instant::now();
        out.timings.network += ran - aligned;

        let [x1, y1, x2, y2] = face.bbox;
        if (x2 - x1).min(y2 - y1) < SMALL_FACE_PX {
            restored = smooth_3x3(&restored);
        }
        let alpha = settings.blend / 100.0;
        if alpha < 1.0 {
            restored = add_weighted(&restored, &crop, alpha);
        }
        out.image = paste_crop(&out.image, &restored, &photo_to_crop, &mask)
            .map_err(|source| RestoreError::Paste { face: index, source })?;
        out.timings.paste += ran.elapsed();
        out.faces.push(RestoredFace {
            photo_to_crop,
            crop,
            restored,
        });
    }
    if !each(total, total) {
        return Err(RestoreError::Cancelled);
    }
    Ok(out)
}

/// `[1, 3, S, S]`, RGB, `(v/255 − 0.5)/0.5` as `FaceGAN.process` prepares it.
pub fn to_network_input(crop: &RgbImage, device: &Device) -> Tensor<4> {
    let (w, h) = (crop.width() as usize, crop.height() as usize);
    let mut data = vec![0.0f32; 3 * w * h];
    for (i, px) in crop.pixels().enumerate() {
        for c in 0..3 {
            data[c * w * h + i] = px[c] as f32 / 127.5 - 1.0;
        }
    }
    Tensor::from_data(TensorData::new(data, [1, 3, h, w]), device)
}

/// The network's first output image back to 8 bits: `·0.5 + 0.5`, clipped to [0, 1], `·255`, and
/// truncated rather than rounded, as the reference's `astype(uint8)` does.
pub fn from_network_output(values: &[f32], size: u32) -> RgbImage {
    let plane = (size * size) as usize;
    RgbImage::from_fn(size, size, |x, y| {
        let i = (y * size + x) as usize;
        Rgb(std::array::from_fn(|c| {
            let v = values.get(c * plane + i).copied().unwrap_or(0.0);
            ((v * 0.5 + 0.5).clamp(0.0, 1.0) * 255.0) as u8
        }))
    })
}

/// `cv2.filter2D` with `[[1,2,1],[2,4,2],[1,2,1]]/16` (reflect-101 border, rounded).
pub fn smooth_3x3(img: &RgbImage) -> RgbImage {
    let (w, h) = (img.width() as i64, img.height() as i64);
    if w < 2 || h < 2 {
        return img.clone();
    }
    let reflect = |i: i64, n: i64| -> u32 {
        if i < 0 {
            (-i) as u32
        } else if i >= n {
            (2 * n - 2 - i) as u32
        } else {
            i as u32
        }
    };
    const K: [u32; 3] = [1, 2, 1];
    RgbImage::from_fn(img.width(), img.height(), |x, y| {
        let mut acc = [0u32; 3];
        for (dy, ky) in K.iter().enumerate() {
            let sy = reflect(y as i64 + dy as i64 - 1, h);
            for (dx, kx) in K.iter().enumerate() {
                let sx = reflect(x as i64 + dx as i64 - 1, w);
                let p = img.get_pixel(sx, sy);
                for c in 0..3 {
                    acc[c] += ky * kx * p[c] as u32;
                }
            }
        }
        // Integer round-half-up of acc/16.
        Rgb(acc.map(|v| ((v + 8) / 16) as u8))
    })
}

/// `cv2.addWeighted(a, alpha, b, 1 − alpha, 0)`, rounded.
fn add_weighted(a: &RgbImage, b: &RgbImage, alpha: f32) -> RgbImage {
    let alpha = alpha.clamp(0.0, 1.0);
    RgbImage::from_fn(a.width(), a.height(), |x, y| {
        let (p, q) = (a.get_pixel(x, y), b.get_pixel(x, y));
        Rgb(std::array::from_fn(|c| {
            (p[c] as f32 * alpha + q[c] as f32 * (1.0 - alpha))
                .round()
                .clamp(0.0, 255.0) as u8
        }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mask_is_gpens_feathered_box() {
        let m = gpen_mask(512);
        assert_eq!((m.width, m.height), (512, 512));
        // Fully inside, fully outside (two σ-4 blurs of radius 12 reach 24 px past the box).
        assert!((m.get(256, 256) - 1.0).abs() < 1e-6);
        assert!((m.get(60, 256) - 1.0).abs() < 1e-6);
        // The box is 26 px from the top-left edges and 25 px from the others.
        for i in 0..2 {
            assert_eq!(m.get(i, 256), 0.0);
            assert_eq!(m.get(256, i), 0.0);
        }
        assert_eq!(m.get(511, 256), 0.0);
        assert_eq!(m.get(256, 511), 0.0);
        assert!(m.get(2, 256) > 0.0, "the feather starts 24 px outside the box");
        // The box edge is half way up the feather, symmetric on both sides (26 and 486 inclusive).
        assert!((m.get(26, 256) - m.get(486, 256)).abs() < 1e-6);
        assert!((m.get(26, 256) - 0.5).abs() < 0.1, "{}", m.get(26, 256));
        // Monotone across the edge.
        for x in 0..60 {
            assert!(m.get(x, 256) <= m.get(x + 1, 256) + 1e-7);
        }
    }

    #[test]
    fn the_small_masks_are_the_512_mask_resized() {
        let big = gpen_mask(512);
        let small = gpen_mask(256);
        assert_eq!((small.width, small.height), (256, 256));
        // Halving bilinearly on cv2's grid averages each 2×2 block.
        for &(x, y) in &[(0usize, 0usize), (13, 128), (128, 128), (250, 3)] {
            let mean = (big.get(2 * x, 2 * y)
                + big.get(2 * x + 1, 2 * y)
                + big.get(2 * x, 2 * y + 1)
                + big.get(2 * x + 1, 2 * y + 1))
                / 4.0;
            assert!((small.get(x, y) - mean).abs() < 1e-6, "({x}, {y})");
        }
        let tiny = gpen_mask(64);
        assert!(tiny.get(0, 32) < 1e-4, "{}", tiny.get(0, 32));
        assert!((tiny.get(32, 32) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn settings_default_from_a_partial_recipe_and_round_trip() {
        let s: RestoreSettings = serde_json::from_str(r#"{"mode":"blur-then-gpen","model":"256"}"#).unwrap();
        assert_eq!(s.mode, RestoreMode::BlurThenGpen);
        assert_eq!(s.model, GpenModel::Bfr256);
        assert_eq!(s.blend, 100.0);
        assert_eq!(s.blur_sigma, DEFAULT_BLUR_SIGMA);
        let back: RestoreSettings = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
        assert_eq!(
            serde_json::from_str::<RestoreSettings>("{}").unwrap(),
            RestoreSettings::default()
        );
        assert!(!RestoreSettings::default().is_enabled());
    }

    #[test]
    fn settings_out_of_range_are_refused() {
        let mut s = RestoreSettings::gpen(None, 100.0, GpenModel::Bfr512);
        assert!(s.validate().is_ok());
        s.blend = 101.0;
        assert!(s.validate().is_err());
        s.blend = 50.0;
        s.blur_sigma = f32::NAN;
        assert!(s.validate().is_err());
        s.blur_sigma = -1.0;
        assert!(s.validate().is_err());
    }

    #[test]
    fn describes_what_it_does() {
        assert_eq!(
            RestoreSettings::gpen(None, 100.0, GpenModel::Bfr512).describe(),
            "Restore (GPEN-512)"
        );
        assert_eq!(
            RestoreSettings::gpen(Some(2.5), 80.0, GpenModel::Bfr256).describe(),
            "Restore (blur σ 2.5 then GPEN-256, blend 80%)"
        );
    }

    #[test]
    fn smoothing_keeps_flat_areas_and_spreads_a_spike() {
        let mut img = RgbImage::from_pixel(5, 5, Rgb([100, 100, 100]));
        img.put_pixel(2, 2, Rgb([116, 100, 100]));
        let out = smooth_3x3(&img);
        assert_eq!(out.get_pixel(2, 2)[0], 104, "centre weight 4/16 of +16");
        assert_eq!(out.get_pixel(1, 2)[0], 102, "edge neighbour 2/16");
        assert_eq!(out.get_pixel(1, 1)[0], 101, "corner neighbour 1/16");
        assert_eq!(out.get_pixel(0, 0)[0], 100);
        assert_eq!(out.get_pixel(2, 2)[1], 100);
    }

    #[test]
    fn network_io_follows_facegan() {
        let device = Device::flex();
        // Every byte value once, in the red plane; green and blue fixed.
        let crop = RgbImage::from_fn(16, 16, |x, y| Rgb([(y * 16 + x) as u8, 0, 255]));
        let t = to_network_input(&crop, &device);
        assert_eq!(t.dims(), [1, 3, 16, 16]);
        let v = t.into_data().try_to_vec::<f32>().unwrap();
        assert_eq!((v[0], v[255], v[256], v[512]), (-1.0, 1.0, -1.0, 1.0));
        // Back through ·0.5 + 0.5 and a truncating cast: each value returns, or one below it where
        // the float product lands a hair under the integer.
        let back = from_network_output(&v, 16);
        for (p, q) in crop.pixels().zip(back.pixels()) {
            assert!(q[0] <= p[0] && p[0] - q[0] <= 1, "{} came back as {}", p[0], q[0]);
        }
        let clipped = from_network_output(&[2.0; 3 * 16 * 16], 16);
        assert_eq!(clipped.get_pixel(0, 0).0, [255; 3]);
        let clipped = from_network_output(&[-3.0; 3 * 16 * 16], 16);
        assert_eq!(clipped.get_pixel(0, 0).0, [0; 3]);
    }
}
