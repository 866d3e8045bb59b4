//! Where the virtual model's face comes from: the one function that turns a source (a virtual model
//! of the library, or a plain face photo) into aligned 256×256 crops on the FaceShifter template,
//! which both engines consume.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use image::RgbImage;

use super::{CROP_SIZE, SwapError};
use crate::cast::{VirtualModel, VirtualModelLibrary};
use crate::io::{DecodeLimits, load_photo};
use crate::nets::mtcnn::MtcnnNets;
use crate::pipeline::detect::Face;
use crate::pipeline::detect::photo::{DetectSettings, detect_photo};
use crate::pipeline::virtual_face::aligned_crop;

/// Where the virtual model's identity is taken from.
#[derive(Debug, Clone, PartialEq)]
pub enum IdentitySource {
    /// A virtual model of the library: its aligned crops, one per source photo.
    Model(Box<VirtualModel>),
    /// A face photo: its largest face scoring at least the screening score is used.
    Photo(PathBuf),
    /// Crops already aligned on the FaceShifter template (e.g. a virtual model's stored photos).
    Crops { name: String, crops: Vec<RgbImage> },
}

impl IdentitySource {
    /// What the UI and the CLI call it.
    pub fn name(&self) -> String {
        match self {
            IdentitySource::Model(model) => model.name.clone(),
            IdentitySource::Photo(path) => file_name(path),
            IdentitySource::Crops { name, .. } => name.clone(),
        }
    }

    /// Whether resolving it needs the face detector.
    pub fn needs_detector(&self) -> bool {
        matches!(self, IdentitySource::Photo(_))
    }
}

/// The virtual model as the swap sees it: one or more aligned 256×256 face crops.
#[derive(Debug, Clone, PartialEq)]
pub struct VirtualIdentity {
    pub name: String,
    /// On the FaceShifter template; the first is the one the classic engine pastes.
    pub crops: Vec<RgbImage>,
}

/// Turns a source into aligned crops. `mtcnn` is needed for [`IdentitySource::Photo`].
pub fn resolve_identity(
    source: &IdentitySource,
    mtcnn: Option<&MtcnnNets>,
    device: &Device,
) -> Result<VirtualIdentity, SwapError> {
    let identity = match source {
        IdentitySource::Model(model) => VirtualIdentity {
            name: model.name.clone(),
            crops: model.aligned_crops().map_err(|e| SwapError::Unavailable {
                what: format!("the virtual model {}", model.name),
                reason: e.to_string(),
            })?,
        },
        IdentitySource::Photo(path) => {
            let nets = mtcnn.ok_or_else(|| SwapError::Unavailable {
                what: "the face detector (MTCNN)".into(),
                reason: format!("it is needed to find the face in {}", path.display()),
            })?;
            identity_from_photo(path, nets, device)?
        }
        IdentitySource::Crops { name, crops } => VirtualIdentity {
            name: name.clone(),
            crops: crops.clone(),
        },
    };
    if identity.crops.is_empty() {
        return Err(SwapError::EmptyIdentity(identity.name));
    }
    if let Some(bad) = identity
        .crops
        .iter()
        .find(|c| c.dimensions() != (CROP_SIZE, CROP_SIZE))
    {
        return Err(SwapError::Network(format!(
            "the virtual model {}: a face crop is {}×{}, not the aligned {CROP_SIZE}×{CROP_SIZE}",
            identity.name,
            bad.width(),
            bad.height()
        )));
    }
    Ok(identity)
}

/// The largest face of a photo scoring at least the screening score, aligned to 256.
pub fn identity_from_photo(
    path: &Path,
    mtcnn: &MtcnnNets,
    device: &Device,
) -> Result<VirtualIdentity, SwapError> {
    let photo = load_photo(path, &DecodeLimits::default())?;
    let settings = DetectSettings::default();
    let found = detect_photo(mtcnn, &photo.rgb, &settings, device).map_err(|e| SwapError::Detect {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let face = largest_face(&found.faces, settings.min_score).ok_or_else(|| SwapError::NoFace {
        path: path.to_path_buf(),
        min_score: settings.min_score,
    })?;
    Ok(VirtualIdentity {
        name: file_name(path),
        crops: vec![align_face(&photo.rgb, face)?],
    })
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Faces come largest first from the detector; the first that passes the screening rule wins.
pub fn largest_face(faces: &[Face], min_score: f32) -> Option<&Face> {
    faces.iter().find(|f| f.score >= min_score)
}

/// A face's aligned crop on the FaceShifter template (the same cut the library stores).
pub fn align_face(photo: &RgbImage, face: &Face) -> Result<RgbImage, SwapError> {
    aligned_crop(photo, &face.landmarks).map_err(|e| SwapError::Network(format!("aligning the face: {e}")))
}

/// The source a command-line `--virtual NAME_OR_PHOTO` names: an existing file is a face photo;
/// anything else is a virtual model of the library under `data_dir` (by id, or by name without
/// regard to case).
pub fn source_from_arg(arg: &str, data_dir: Option<&Path>) -> Result<IdentitySource, SwapError> {
    let path = Path::new(arg);
    if path.is_file() {
        return Ok(IdentitySource::Photo(path.to_path_buf()));
    }
    let unavailable = |reason: String| SwapError::Unavailable {
        what: format!("the virtual model {arg:?}"),
        reason,
    };
    if path.exists() {
        return Err(unavailable(format!(
            "{} is a folder; pass a face photo or a virtual model's name",
            path.display()
        )));
    }
    let library = VirtualModelLibrary::open_default(data_dir.map(Path::to_path_buf))
        .map_err(|e| unavailable(e.to_string()))?;
    let model = library
        .find(arg)
        .map_err(|e| unavailable(format!("{e}; nor is there such a photo")))?;
    Ok(IdentitySource::Model(Box::new(model)))
}
