//! Detection on whole product photos: a size cap for speed, mapping back to full resolution,
//! an optional retry on rotated copies, and the screening rule.

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::{DetectError, Face, MtcnnParams, detect};
use crate::face::resample::{Planes, resize_area};
use crate::nets::mtcnn::MtcnnNets;
use crate::nets::profile;

/// How photos are screened for faces.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DetectSettings {
    /// Photos whose long side exceeds this are detected on a reduced copy (0 = never reduce).
    /// 1600 px keeps a face of 3% of a 6000×4000 photo's height above MTCNN's 20 px minimum
    /// (about 32 px on the copy) while cutting the work on such a photo about fourteen-fold.
    pub max_side: u32,
    /// A photo "has a face" when one face scores at least this (the original project's 0.70).
    pub min_score: f32,
    /// When nothing is found upright, also look at the photo turned 90° and 270°.
    pub try_rotations: bool,
}

impl Default for DetectSettings {
    fn default() -> Self {
        DetectSettings {
            max_side: 1600,
            min_score: 0.70,
            try_rotations: false,
        }
    }
}

/// The faces of one photo, in its displayed orientation and full-resolution pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct PhotoFaces {
    pub width: u32,
    pub height: u32,
    /// Largest first.
    pub faces: Vec<Face>,
    /// Quarter turns clockwise of the copy the faces were found on (0 upright).
    pub found_at_quarter_turns: u8,
}

impl PhotoFaces {
    /// The screening rule: at least one face scoring `min_score` or more.
    pub fn has_face(&self, min_score: f32) -> bool {
        self.faces.iter().any(|f| f.score >= min_score)
    }
}

/// Detects faces on an RGB photo (values 0..255), reduced to `max_side` first when larger.
pub fn detect_photo(
    nets: &MtcnnNets,
    rgb: &image::RgbImage,
    settings: &DetectSettings,
    device: &Device,
) -> Result<PhotoFaces, DetectError> {
    let full = profile::scope("mtcnn", || "RGB to planes".into(), || Planes::from_rgb(rgb));
    let (width, height) = (rgb.width(), rgb.height());
    let params = MtcnnParams::default();
    let upright = detect_capped(nets, &full, settings.max_side, &params, device)?;
    if !upright.is_empty() || !settings.try_rotations {
        return Ok(PhotoFaces {
            width,
            height,
            faces: upright,
            found_at_quarter_turns: 0,
        });
    }
    for quarter_turns in [1u8, 3] {
        let turned = rotate_quarter(&full, quarter_turns);
        let faces = detect_capped(nets, &turned, settings.max_side, &params, device)?;
        if !faces.is_empty() {
            let faces = faces
                .into_iter()
                .map(|f| unrotate_face(f, quarter_turns, width, height))
                .collect();
            return Ok(PhotoFaces {
                width,
                height,
                faces,
                found_at_quarter_turns: quarter_turns,
            });
        }
    }
    Ok(PhotoFaces {
        width,
        height,
        faces: Vec::new(),
        found_at_quarter_turns: 0,
    })
}

fn detect_capped(
    nets: &MtcnnNets,
    image: &Planes,
    max_side: u32,
    params: &MtcnnParams,
    device: &Device,
) -> Result<Vec<Face>, DetectError> {
    let long = image.width.max(image.height);
    if max_side == 0 || long <= max_side as usize {
        return Ok(detect(nets, image, params, device)?.0);
    }
    let f = max_side as f64 / long as f64;
    let (h, w) = (
        ((image.height as f64 * f).round() as usize).max(1),
        ((image.width as f64 * f).round() as usize).max(1),
    );
    let small = profile::scope("mtcnn", || "max_side resize".into(), || resize_area(image, h, w));
    let (sx, sy) = (image.width as f32 / w as f32, image.height as f32 / h as f32);
    let (faces, _) = detect(nets, &small, params, device)?;
    Ok(faces
        .into_iter()
        .map(|f| Face {
            bbox: [f.bbox[0] * sx, f.bbox[1] * sy, f.bbox[2] * sx, f.bbox[3] * sy],
            score: f.score,
            landmarks: f.landmarks.map(|[x, y]| [x * sx, y * sy]),
        })
        .collect())
}

/// The image turned clockwise by `quarter_turns` × 90°.
fn rotate_quarter(src: &Planes, quarter_turns: u8) -> Planes {
    let (h, w) = (src.height, src.width);
    let (oh, ow) = if quarter_turns % 2 == 1 { (w, h) } else { (h, w) };
    let mut data = vec![0.0f32; src.channels * oh * ow];
    for c in 0..src.channels {
        let plane = &src.data[c * h * w..(c + 1) * h * w];
        let out = &mut data[c * oh * ow..(c + 1) * oh * ow];
        for y in 0..oh {
            for x in 0..ow {
                let (sx, sy) = match quarter_turns % 4 {
                    1 => (y, h - 1 - x),
                    2 => (w - 1 - x, h - 1 - y),
                    3 => (w - 1 - y, x),
                    _ => (x, y),
                };
                out[y * ow + x] = plane[sy * w + sx];
            }
        }
    }
    Planes {
        channels: src.channels,
        height: oh,
        width: ow,
        data,
    }
}

/// A point of the turned image back in the upright photo of size `width` × `height`.
fn unrotate_point([x, y]: [f32; 2], quarter_turns: u8, width: u32, height: u32) -> [f32; 2] {
    let (w, h) = (width as f32, height as f32);
    match quarter_turns % 4 {
        1 => [y, h - 1.0 - x],
        2 => [w - 1.0 - x, h - 1.0 - y],
        3 => [w - 1.0 - y, x],
        _ => [x, y],
    }
}

fn unrotate_face(f: Face, quarter_turns: u8, width: u32, height: u32) -> Face {
    let a = unrotate_point([f.bbox[0], f.bbox[1]], quarter_turns, width, height);
    let b = unrotate_point([f.bbox[2], f.bbox[3]], quarter_turns, width, height);
    Face {
        bbox: [a[0].min(b[0]), a[1].min(b[1]), a[0].max(b[0]), a[1].max(b[1])],
        score: f.score,
        landmarks: f
            .landmarks
            .map(|p| unrotate_point(p, quarter_turns, width, height)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_and_its_inverse_agree_on_every_pixel() {
        let src = Planes {
            channels: 1,
            height: 2,
            width: 3,
            data: (0..6).map(|v| v as f32).collect(),
        };
        for q in [1u8, 3] {
            let turned = rotate_quarter(&src, q);
            for y in 0..turned.height {
                for x in 0..turned.width {
                    let [ux, uy] = unrotate_point([x as f32, y as f32], q, 3, 2);
                    assert_eq!(
                        turned.data[y * turned.width + x],
                        src.data[uy as usize * 3 + ux as usize]
                    );
                }
            }
        }
    }
}
