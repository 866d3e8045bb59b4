//! Makeup transfer with BeautyGAN: each chosen face of a photo is aligned onto the makeup
//! template at the network's size, BeautyGAN puts the reference's makeup on it, and the result is
//! pasted back through a soft face mask scaled by the strength. Only the face region changes;
//! every pixel outside the mask is the photo's own, byte for byte.
//!
//! The same step runs on a virtual model's face image ([`makeup_face_image`]): its face is found
//! with MTCNN like any photo's.

pub mod references;

use burn::tensor::Device;
use burn::tensor::{Tensor, TensorData};
use image::RgbImage;
use serde::{Deserialize, Serialize};

use self::references::{CROP_SIZE, makeup_template};
use crate::face::align::align_to_template;
use crate::face::mask::{MaskSettings, face_mask};
use crate::face::warp::crop_aligned;
use crate::nets::beautygan::{Generator, from_pixels, to_pixels};
use crate::nets::mtcnn::MtcnnNets;
use crate::pipeline::detect::Face;
use crate::pipeline::detect::photo::{DetectSettings, detect_photo};
use crate::pipeline::paste::paste_crop;

/// How makeup is applied. Part of a batch recipe, so every field has a default and old recipes
/// keep loading as fields are added.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MakeupSettings {
    /// The id of the reference face in the makeup library; `None` applies no makeup.
    pub reference: Option<String>,
    /// 0: the face unchanged; 1: BeautyGAN's result as it is. In between, the two are mixed.
    pub strength: f32,
    /// Softness of the blend at the edge of the face, as the feathering radius over the crop side.
    pub feather: f32,
}

impl Default for MakeupSettings {
    fn default() -> Self {
        MakeupSettings {
            reference: None,
            strength: 0.8,
            feather: 8.0 / 256.0,
        }
    }
}

impl MakeupSettings {
    /// The paste-back mask of a makeup crop: the face hull (eyebrows to chin) with a padded box,
    /// feathered.
    pub fn mask_settings(&self) -> MaskSettings {
        MaskSettings {
            padding: 26.0 / 512.0,
            blur_sigma: self.feather.clamp(0.0, 0.25) * CROP_SIZE as f32,
            hull_dilate: Some(0.2),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MakeupError {
    #[error("the makeup reference is {0}×{1}, expected {CROP_SIZE}×{CROP_SIZE}")]
    BadReference(u32, u32),
    #[error("face {index} cannot be aligned: {cause}")]
    Align { index: usize, cause: String },
    #[error("BeautyGAN: {0}")]
    Network(String),
    #[error("the compute device failed while running BeautyGAN: {0}")]
    Device(String),
    #[error("pasting the face back: {0}")]
    Paste(String),
    #[error("no face scoring at least {0:.2} was found")]
    NoFace(f32),
    #[error("face detection failed: {0}")]
    Detect(String),
}

/// What [`apply_makeup`] did.
#[derive(Debug, Clone)]
pub struct MakeupResult {
    pub image: RgbImage,
    /// How many faces were made up.
    pub faces: usize,
}

/// BeautyGAN on two aligned crops of the same size: `face` wearing `reference`'s makeup.
pub fn transfer(
    generator: &Generator,
    face: &RgbImage,
    reference: &RgbImage,
    device: &Device,
) -> Result<RgbImage, MakeupError> {
    let x = from_pixels(to_tensor(face, device));
    let y = from_pixels(to_tensor(reference, device));
    let out = generator
        .forward(x, y)
        .map_err(|e| MakeupError::Network(e.to_string()))?;
    from_tensor(to_pixels(out.with_makeup))
}

/// `photo` with `reference`'s makeup on each of `faces` (photo coordinates), at `settings`'
/// strength. Strength 0 (or no faces) returns the photo unchanged without running the network.
pub fn apply_makeup(
    generator: &Generator,
    photo: &RgbImage,
    faces: &[Face],
    reference: &RgbImage,
    settings: &MakeupSettings,
    device: &Device,
) -> Result<MakeupResult, MakeupError> {
    if reference.dimensions() != (CROP_SIZE, CROP_SIZE) {
        return Err(MakeupError::BadReference(reference.width(), reference.height()));
    }
    let strength = settings.strength.clamp(0.0, 1.0);
    let mut image = photo.clone();
    if strength <= 0.0 || !strength.is_finite() {
        return Ok(MakeupResult { image, faces: 0 });
    }
    let template = makeup_template(CROP_SIZE);
    for (index, face) in faces.iter().enumerate() {
        let to_crop = align_to_template(&face.landmarks, &template).map_err(|e| MakeupError::Align {
            index,
            cause: e.to_string(),
        })?;
        // Each face is cut from the image as edited so far, so overlapping faces compose.
        let crop = crop_aligned(&image, &to_crop, CROP_SIZE);
        let made_up = transfer(generator, &crop, reference, device)?;
        let crop_landmarks: Vec<_> = face.landmarks.iter().map(|&p| to_crop.apply(p)).collect();
        let mut mask = face_mask(CROP_SIZE as usize, &settings.mask_settings(), &crop_landmarks);
        for m in &mut mask.data {
            *m *= strength;
        }
        image =
            paste_crop(&image, &made_up, &to_crop, &mask).map_err(|e| MakeupError::Paste(e.to_string()))?;
    }
    Ok(MakeupResult {
        image,
        faces: faces.len(),
    })
}

/// Makeup on a face image that has not been screened yet (a virtual model's portrait): MTCNN
/// finds its most prominent face, which gets the makeup.
pub fn makeup_face_image(
    generator: &Generator,
    detector: &MtcnnNets,
    image: &RgbImage,
    reference: &RgbImage,
    settings: &MakeupSettings,
    device: &Device,
) -> Result<MakeupResult, MakeupError> {
    let screening = DetectSettings::default();
    let found =
        detect_photo(detector, image, &screening, device).map_err(|e| MakeupError::Detect(e.to_string()))?;
    let face = found
        .faces
        .into_iter()
        .find(|f| f.score >= screening.min_score)
        .ok_or(MakeupError::NoFace(screening.min_score))?;
    apply_makeup(generator, image, &[face], reference, settings, device)
}

fn to_tensor(img: &RgbImage, device: &Device) -> Tensor<4> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut data = vec![0.0f32; 3 * w * h];
    for (i, px) in img.pixels().enumerate() {
        for c in 0..3 {
            data[c * w * h + i] = px.0[c] as f32;
        }
    }
    Tensor::from_data(TensorData::new(data, [1, 3, h, w]), device)
}

/// A (1, 3, H, W) tensor of pixel values in [0, 255] as an image, rounded.
fn from_tensor(t: Tensor<4>) -> Result<RgbImage, MakeupError> {
    let [_, _, h, w] = t.dims();
    let values = t
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| MakeupError::Device(format!("{e:?}")))?;
    let plane = w * h;
    let bytes: Vec<u8> = (0..plane)
        .flat_map(|i| (0..3).map(move |c| (c, i)))
        .map(|(c, i)| values[c * plane + i].round().clamp(0.0, 255.0) as u8)
        .collect();
    RgbImage::from_raw(w as u32, h as u32, bytes)
        .ok_or_else(|| MakeupError::Device(format!("BeautyGAN returned {} values for {w}×{h}", values.len())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nets::beautygan::BeautyGanConfig;

    #[test]
    fn settings_have_defaults_for_every_field() {
        let s: MakeupSettings =
            serde_json::from_str(r#"{"reference": "red-lips-0123456789"}"#).expect("parse");
        assert_eq!(s.reference.as_deref(), Some("red-lips-0123456789"));
        assert_eq!(s.strength, MakeupSettings::default().strength);
        let back: MakeupSettings =
            serde_json::from_str(&serde_json::to_string(&s).expect("json")).expect("parse");
        assert_eq!(back, s);
    }

    #[test]
    fn zero_strength_and_bad_references_leave_the_photo_alone() {
        let device = Device::flex();
        let config = BeautyGanConfig {
            conv_dim: 4,
            repeat_num: 1,
            input_nc: 3,
        };
        let generator = Generator::new(&config, &device);
        let photo = RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let face = Face {
            bbox: [10.0, 5.0, 40.0, 40.0],
            score: 0.99,
            landmarks: [
                [20.0, 18.0],
                [32.0, 18.0],
                [26.0, 25.0],
                [21.0, 32.0],
                [31.0, 32.0],
            ],
        };
        let reference = RgbImage::new(CROP_SIZE, CROP_SIZE);
        let none = MakeupSettings {
            strength: 0.0,
            ..MakeupSettings::default()
        };
        let out = apply_makeup(&generator, &photo, &[face], &reference, &none, &device).expect("no-op");
        assert_eq!(out.image, photo);
        assert_eq!(out.faces, 0);
        let small = RgbImage::new(64, 64);
        let err = apply_makeup(
            &generator,
            &photo,
            &[face],
            &small,
            &MakeupSettings::default(),
            &device,
        );
        assert!(matches!(err, Err(MakeupError::BadReference(64, 64))));
    }
}
