//! Faces for the virtual-model library: the landmarks of a generated face, its aligned crop, and
//! the faces of photos being imported as a virtual model.
//!
//! StyleGAN2 FFHQ output is FFHQ-aligned, so its five landmarks sit at [`ffhq_template`]. When
//! MTCNN is installed it is run as well and a confident face near that place wins, since a
//! generated face may turn or tilt a little. With no detector, or no confident face (the reduced
//! test weights make no faces at all), the template positions still give a crop.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use image::RgbImage;
use sha2::{Digest, Sha256};

use crate::cast::model::Landmarks;
use crate::cast::{ImportedOrigin, LandmarkSource, NewVirtualModel, Origin, SourcePhoto};
use crate::face::align::{AlignError, align_to_template, faceshifter_template_256};
use crate::face::ffhq::{ffhq_alignment, ffhq_template};
use crate::face::warp::{Border, crop_aligned, warp_affine};
use crate::io::{DecodeLimits, load_photo};
use crate::nets::mtcnn::MtcnnNets;
use crate::pipeline::detect::photo::{DetectSettings, detect_photo};
use crate::pipeline::detect::{DetectError, Face};

/// MTCNN must be at least this sure of a generated face before its landmarks replace the template.
pub const GENERATED_MIN_SCORE: f32 = 0.95;

/// Side of the portrait (`face.png`) cut from an imported photo.
pub const PORTRAIT_SIDE: u32 = 512;

#[derive(Debug, thiserror::Error)]
pub enum VirtualFaceError {
    #[error(transparent)]
    Photo(#[from] crate::io::ImageError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: face detection failed: {source}", path.display())]
    Detect {
        path: PathBuf,
        #[source]
        source: DetectError,
    },
    #[error(
        "{}: no face found (none scoring {min_score:.2} or more); use a photo where one face is clearly visible",
        path.display()
    )]
    NoFace { path: PathBuf, min_score: f32 },
    #[error("{}: there is no face {number}; {found} face(s) were found (numbered 1 to {found}, largest first)", path.display())]
    NoSuchFace {
        path: PathBuf,
        number: usize,
        found: usize,
    },
    #[error("the face cannot be aligned: {0}")]
    Align(#[from] AlignError),
    #[error("{0}")]
    Invalid(String),
}

/// A face ready for the library: its landmarks in the image, where they came from, its crop.
#[derive(Debug, Clone)]
pub struct PreparedFace {
    pub landmarks: Landmarks,
    pub from: LandmarkSource,
    /// 256×256 on FaceShifter's template.
    pub crop: RgbImage,
}

/// The FFHQ template positions for an image of this size.
pub fn template_landmarks(width: u32, height: u32) -> Landmarks {
    let side = width.max(height).max(1);
    ffhq_template(side).map(|[x, y]| {
        [
            (x + 0.5) * width as f32 / side as f32 - 0.5,
            (y + 0.5) * height as f32 / side as f32 - 0.5,
        ]
    })
}

/// The landmarks of a generated face: a confident MTCNN face near the FFHQ position when a
/// detector is given and finds one, else the FFHQ template.
pub fn generated_landmarks(
    image: &RgbImage,
    detector: Option<(&MtcnnNets, &Device)>,
) -> (Landmarks, LandmarkSource) {
    let template = template_landmarks(image.width(), image.height());
    let Some((nets, device)) = detector else {
        return (template, LandmarkSource::FfhqTemplate);
    };
    let settings = DetectSettings::default();
    let faces = match detect_photo(nets, image, &settings, device) {
        Ok(found) => found.faces,
        Err(e) => {
            tracing::warn!("MTCNN on a generated face failed ({e}); using the FFHQ positions");
            return (template, LandmarkSource::FfhqTemplate);
        }
    };
    let eyes = |l: &Landmarks| [(l[0][0] + l[1][0]) / 2.0, (l[0][1] + l[1][1]) / 2.0];
    let want = eyes(&template);
    let reach = 0.15 * image.width().max(image.height()) as f32;
    faces
        .iter()
        .filter(|f| f.score >= GENERATED_MIN_SCORE)
        .map(|f| {
            let e = eyes(&f.landmarks);
            ((e[0] - want[0]).hypot(e[1] - want[1]), f)
        })
        .filter(|(d, _)| *d <= reach)
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, f)| (f.landmarks, LandmarkSource::Mtcnn))
        .unwrap_or((template, LandmarkSource::FfhqTemplate))
}

/// The 256×256 crop on FaceShifter's template.
pub fn aligned_crop(image: &RgbImage, landmarks: &Landmarks) -> Result<RgbImage, AlignError> {
    let to_crop = align_to_template(landmarks, &faceshifter_template_256())?;
    Ok(crop_aligned(image, &to_crop, crate::cast::CROP_SIDE))
}

/// An FFHQ-aligned `size`×`size` portrait (edges continued outwards where the photo ends).
pub fn portrait(image: &RgbImage, landmarks: &Landmarks, size: u32) -> RgbImage {
    warp_affine(
        image,
        &ffhq_alignment(landmarks, size),
        size,
        size,
        Border::Replicate,
    )
}

/// Landmarks and crop of a generated face.
pub fn prepare_generated(
    image: &RgbImage,
    detector: Option<(&MtcnnNets, &Device)>,
) -> Result<PreparedFace, VirtualFaceError> {
    let (landmarks, from) = generated_landmarks(image, detector);
    let crop = aligned_crop(image, &landmarks)?;
    Ok(PreparedFace {
        landmarks,
        from,
        crop,
    })
}

/// A photo being imported and the faces found in it.
#[derive(Debug, Clone)]
pub struct PhotoFaces {
    pub path: PathBuf,
    pub image: RgbImage,
    pub sha256: String,
    /// Faces scoring at least the screening score, largest first.
    pub faces: Vec<Face>,
}

impl PhotoFaces {
    /// The face numbered `number` (1-based, largest first).
    pub fn face(&self, number: usize) -> Result<&Face, VirtualFaceError> {
        number
            .checked_sub(1)
            .and_then(|i| self.faces.get(i))
            .ok_or_else(|| VirtualFaceError::NoSuchFace {
                path: self.path.clone(),
                number,
                found: self.faces.len(),
            })
    }

    /// A small aligned view of face `index` (0-based), for choosing between several.
    pub fn face_preview(&self, index: usize) -> Option<RgbImage> {
        let face = self.faces.get(index)?;
        aligned_crop(&self.image, &face.landmarks).ok()
    }
}

/// Reads a photo and finds its faces; none is an error naming the file.
pub fn find_faces(path: &Path, nets: &MtcnnNets, device: &Device) -> Result<PhotoFaces, VirtualFaceError> {
    let photo = load_photo(path, &DecodeLimits::default())?;
    let bytes = std::fs::read(path).map_err(|source| VirtualFaceError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let settings = DetectSettings::default();
    let found =
        detect_photo(nets, &photo.rgb, &settings, device).map_err(|source| VirtualFaceError::Detect {
            path: path.to_path_buf(),
            source,
        })?;
    let faces: Vec<Face> = found
        .faces
        .into_iter()
        .filter(|f| f.score >= settings.min_score)
        .collect();
    if faces.is_empty() {
        return Err(VirtualFaceError::NoFace {
            path: path.to_path_buf(),
            min_score: settings.min_score,
        });
    }
    Ok(PhotoFaces {
        path: path.to_path_buf(),
        image: photo.rgb,
        sha256,
        faces,
    })
}

/// A virtual model made of the chosen face (0-based index) of each photo. The first photo gives
/// the portrait shown in the library; every photo gives an aligned crop.
pub fn imported_model(
    name: &str,
    picks: &[(&PhotoFaces, usize)],
) -> Result<NewVirtualModel, VirtualFaceError> {
    let Some((first, first_index)) = picks.first() else {
        return Err(VirtualFaceError::Invalid(
            "importing needs at least one photo".into(),
        ));
    };
    let mut crops = Vec::new();
    let mut sources = Vec::new();
    for (photo, index) in picks {
        let face = photo.face(index + 1)?;
        crops.push(aligned_crop(&photo.image, &face.landmarks)?);
        let path = std::path::absolute(&photo.path).unwrap_or_else(|_| photo.path.clone());
        sources.push(SourcePhoto {
            file_name: crate::io::display_name(&photo.path),
            path,
            sha256: photo.sha256.clone(),
            width: photo.image.width(),
            height: photo.image.height(),
            face_index: *index,
            faces_found: photo.faces.len(),
            bbox: face.bbox,
            score: face.score,
            landmarks: face.landmarks,
        });
    }
    let face = first.face(first_index + 1)?;
    let portrait_image = portrait(&first.image, &face.landmarks, PORTRAIT_SIDE);
    let portrait_landmarks = {
        let t = ffhq_alignment(&face.landmarks, PORTRAIT_SIDE);
        face.landmarks.map(|p| t.apply(p))
    };
    Ok(NewVirtualModel {
        name: name.to_string(),
        parent: None,
        origin: Origin::Imported(ImportedOrigin { sources }),
        face: portrait_image,
        face_landmarks: portrait_landmarks,
        landmarks_from: LandmarkSource::Mtcnn,
        crops,
        latent: None,
        identity: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_face_without_a_detector_is_cut_at_the_ffhq_positions() {
        let image = RgbImage::from_fn(64, 64, |x, y| image::Rgb([(x * 4) as u8, (y * 4) as u8, 100]));
        let (landmarks, from) = generated_landmarks(&image, None);
        assert_eq!(from, LandmarkSource::FfhqTemplate);
        assert_eq!(landmarks, template_landmarks(64, 64));
        let crop = aligned_crop(&image, &landmarks).unwrap();
        assert_eq!(crop.dimensions(), (256, 256));
        // The crop's eye line maps onto FaceShifter's eye line: the colour gradient there matches
        // the source's at the template eye positions.
        let t = faceshifter_template_256();
        let px = crop.get_pixel(t[0][0].round() as u32, t[0][1].round() as u32);
        let want = [(landmarks[0][0] * 4.0), (landmarks[0][1] * 4.0)];
        assert!(
            (px[0] as f32 - want[0]).abs() < 6.0 && (px[1] as f32 - want[1]).abs() < 6.0,
            "{px:?} vs {want:?}"
        );
    }
}
