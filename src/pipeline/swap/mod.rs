//! The face swap: the virtual model's face on each chosen face of a photo, pasted back so the seam
//! does not show.
//!
//! For every face: align it to the FaceShifter template (256×256), make the new face (FaceShifter:
//! AEI-Net driven by the virtual model's ArcFace identity; classic: the virtual model's own aligned
//! face, blended in with Poisson or multi-band blending), optionally match its colour to the
//! target's skin in LAB, and paste it back through a feathered mask (padded box ∩ landmark hull)
//! touching only the face's region. The identity check is the ArcFace cosine between the virtual
//! model and the swapped face, per face.
//!
//! The window, the CLI and the tests all call [`swap_faces`].

pub mod classic;
pub mod faceshifter;
pub mod identity;
pub mod networks;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use burn::tensor::Device;
use image::RgbImage;
use serde::{Deserialize, Serialize};

pub use identity::{IdentitySource, VirtualIdentity, resolve_identity};
pub use networks::{LoadedSwapModels, load_swap_models, remember_identity};

use crate::face::align::{Similarity, align_to_template, faceshifter_template_256};
use crate::face::mask::{MaskError, MaskSettings, Plane, face_mask};
use crate::nets::arcface::ArcFace;
use crate::nets::faceshifter::AeiNet;
use crate::pipeline::detect::Face;

/// The aligned crop both engines work on (AEI-Net's only input size).
pub const CROP_SIZE: u32 = crate::nets::faceshifter::INPUT_SIZE as u32;

/// Which method makes the new face.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SwapEngine {
    /// FaceShifter: the virtual model's identity on the target's pose, expression and light.
    #[default]
    FaceShifter,
    /// The virtual model's own face warped onto the target and blended in; needs no swap network.
    Classic,
}

impl SwapEngine {
    pub fn label(self) -> &'static str {
        match self {
            SwapEngine::FaceShifter => "FaceShifter",
            SwapEngine::Classic => "Classic",
        }
    }
}

/// How the classic engine hides the seam.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClassicBlend {
    /// Gradient-domain (seamless) cloning: the face's detail in the target's light.
    #[default]
    Poisson,
    /// Laplacian-pyramid blending: each band crosses the seam at its own scale.
    MultiBand,
}

impl ClassicBlend {
    pub fn label(self) -> &'static str {
        match self {
            ClassicBlend::Poisson => "Poisson (seamless)",
            ClassicBlend::MultiBand => "Multi-band",
        }
    }
}

/// Every setting of the swap step; embedded in batch recipes, so fields a file lacks keep their
/// defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SwapSettings {
    pub engine: SwapEngine,
    /// When FaceShifter's networks are not installed, swap with the classic engine instead of
    /// failing (and say so).
    pub fallback_to_classic: bool,
    /// The paste-back mask: padding, feathering and the landmark hull.
    pub mask: MaskSettings,
    /// Move the new face's LAB colour statistics to the target's skin under the mask.
    pub color_match: bool,
    pub classic_blend: ClassicBlend,
}

impl Default for SwapSettings {
    fn default() -> Self {
        SwapSettings {
            engine: SwapEngine::FaceShifter,
            fallback_to_classic: true,
            mask: MaskSettings::default(),
            color_match: true,
            classic_blend: ClassicBlend::Poisson,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SwapError {
    #[error(transparent)]
    Image(#[from] crate::io::ImageError),
    #[error("{}: no face scoring at least {min_score:.2} was found for the virtual model", path.display())]
    NoFace { path: PathBuf, min_score: f32 },
    #[error("{}: face detection failed: {reason}", path.display())]
    Detect { path: PathBuf, reason: String },
    #[error("the virtual model {0} has no face photo")]
    EmptyIdentity(String),
    /// A network or file the step needs is not there; `reason` says what to do.
    #[error("{what} is not available: {reason}")]
    Unavailable { what: String, reason: String },
    #[error("the compute device failed while running {net}: {reason}")]
    Device { net: &'static str, reason: String },
    #[error("{0}")]
    Network(String),
    #[error(transparent)]
    Mask(#[from] MaskError),
    #[error("cancelled")]
    Cancelled,
}

/// The networks a swap may use. FaceShifter needs both; the classic engine uses ArcFace, when it is
/// there, only for the identity check.
#[derive(Clone, Copy, Default)]
pub struct SwapNets<'a> {
    pub arcface: Option<&'a ArcFace>,
    pub aei: Option<&'a AeiNet>,
}

/// The engine a run really uses and, when it is not the one asked for, why.
///
/// `faceshifter_missing` says why FaceShifter cannot run here (its weights are not installed, say),
/// or is `None` when it can.
pub fn choose_engine(
    settings: &SwapSettings,
    faceshifter_missing: Option<&str>,
) -> Result<(SwapEngine, Option<String>), SwapError> {
    match (settings.engine, faceshifter_missing) {
        (SwapEngine::Classic, _) | (SwapEngine::FaceShifter, None) => Ok((settings.engine, None)),
        (SwapEngine::FaceShifter, Some(reason)) if settings.fallback_to_classic => Ok((
            SwapEngine::Classic,
            Some(format!(
                "FaceShifter is not available ({reason}); the classic engine, its fallback, was used"
            )),
        )),
        (SwapEngine::FaceShifter, Some(reason)) => Err(SwapError::Unavailable {
            what: "FaceShifter".into(),
            reason: reason.to_string(),
        }),
    }
}

/// Time spent on one face, by stage. Every stage reads its result back to the host, so the device
/// work is inside the stage that asked for it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct FaceTimings {
    /// The similarity fit, the 256 crop and its tensor.
    pub align: Duration,
    /// ArcFace on the swapped face (the identity check).
    pub arcface: Duration,
    /// AEI-Net (FaceShifter), or the Poisson / multi-band blend (classic).
    pub generate: Duration,
    /// Colour matching, the mask and the paste into the photo.
    pub paste: Duration,
}

impl FaceTimings {
    pub fn total(&self) -> Duration {
        self.align + self.arcface + self.generate + self.paste
    }
}

/// What happened to one face.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaceReport {
    /// The face's index in the photo's detections (largest first).
    pub face: usize,
    /// ArcFace cosine similarity between the virtual model and the swapped face, when ArcFace is
    /// installed.
    pub similarity: Option<f32>,
    pub timings: FaceTimings,
}

/// The swapped photo and what was measured.
#[derive(Debug, Clone)]
pub struct SwapOutcome {
    pub image: RgbImage,
    /// The engine that really ran.
    pub engine: SwapEngine,
    pub faces: Vec<FaceReport>,
    /// ArcFace on the virtual model's crops (once per run).
    pub identity_time: Duration,
    /// What the operator should know beyond the numbers (a fallback, a missing identity check).
    pub notes: Vec<String>,
    /// The virtual model's ArcFace identity (unit length), when ArcFace ran: the library keeps it.
    pub identity_embedding: Option<Vec<f32>>,
}

impl SwapOutcome {
    /// "Swap (FaceShifter), 2 faces", for the undo menu.
    pub fn label(&self) -> String {
        format!(
            "Swap ({}), {}",
            self.engine.label(),
            super::faces_text(self.faces.len())
        )
    }

    /// One line per face with its identity similarity, then the notes.
    pub fn note_lines(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .faces
            .iter()
            .map(|f| match f.similarity {
                Some(s) => format!("Face {}: identity similarity {s:.2}", f.face + 1),
                None => format!("Face {}: swapped (no identity check)", f.face + 1),
            })
            .collect();
        out.extend(self.notes.iter().cloned());
        out
    }
}

/// What a run is asked to do.
pub struct SwapJob<'a> {
    /// The photo (or its current edit), as displayed.
    pub photo: &'a RgbImage,
    /// The faces to swap, each with its index in the photo's detections.
    pub faces: &'a [(usize, Face)],
    pub identity: &'a VirtualIdentity,
    pub settings: &'a SwapSettings,
    /// The engine chosen by [`choose_engine`].
    pub engine: SwapEngine,
}

/// Swaps every face of `job`, in order. `progress(done, total)` is called before each face and at
/// the end; returning false stops the run with [`SwapError::Cancelled`].
pub fn swap_faces(
    job: &SwapJob<'_>,
    nets: SwapNets<'_>,
    device: &Device,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<SwapOutcome, SwapError> {
    let total = job.faces.len();
    let mut notes = Vec::new();
    let started = Instant::now();
    // The identity the check compares against (and FaceShifter injects).
    let identity = match nets.arcface {
        Some(arcface) => Some(faceshifter::identity_embedding(
            arcface,
            &job.identity.crops,
            device,
        )?),
        None => {
            notes.push("The identity check needs ArcFace IR-SE50, which is not installed".to_string());
            None
        }
    };
    let identity_time = started.elapsed();
    let generator = match job.engine {
        SwapEngine::FaceShifter => {
            let (Some(aei), Some(z)) = (nets.aei, identity.as_deref()) else {
                return Err(SwapError::Unavailable {
                    what: "FaceShifter".into(),
                    reason: "it needs both AEI-Net and ArcFace IR-SE50 loaded".into(),
                });
            };
            if aei.identity_dim() != z.len() {
                return Err(SwapError::Network(format!(
                    "AEI-Net takes a {}-d identity but ArcFace gives {}-d embeddings: the two weight files \
                     do not belong together",
                    aei.identity_dim(),
                    z.len()
                )));
            }
            Some(aei)
        }
        SwapEngine::Classic => None,
    };

    let mut image = job.photo.clone();
    let mut faces = Vec::with_capacity(total);
    for (done, (index, face)) in job.faces.iter().enumerate() {
        if !progress(done, total) {
            return Err(SwapError::Cancelled);
        }
        let mut timings = FaceTimings::default();
        let t = Instant::now();
        let placed = place(face)?;
        let target = crate::face::warp::crop_aligned(&image, &placed.to_crop, CROP_SIZE);
        timings.align = t.elapsed();
        let (new_face, paste_mask) = match (generator, identity.as_deref()) {
            (Some(aei), Some(z)) => {
                let t = Instant::now();
                let swapped = faceshifter::generate(aei, &target, z, device)?;
                timings.generate = t.elapsed();
                let t = Instant::now();
                let mask = face_mask(CROP_SIZE as usize, &job.settings.mask, &placed.landmarks);
                // The generator keeps the target's light only roughly; the skin tone is matched here.
                let swapped = if job.settings.color_match {
                    crate::face::color::transfer_lab(&swapped, &mask, &target, &mask)?
                } else {
                    swapped
                };
                timings.paste = t.elapsed();
                (swapped, mask)
            }
            _ => {
                // Colour matching comes before the blend here (see classic::generate).
                let t = Instant::now();
                let out =
                    classic::generate(&job.identity.crops[0], &target, job.settings, &placed.landmarks)?;
                timings.generate = t.elapsed();
                out
            }
        };
        let t = Instant::now();
        image = crate::pipeline::paste::paste_crop(&image, &new_face, &placed.to_crop, &paste_mask)?;
        timings.paste += t.elapsed();
        let similarity = match (nets.arcface, identity.as_deref()) {
            (Some(arcface), Some(z)) => {
                let t = Instant::now();
                let result = crate::face::warp::crop_aligned(&image, &placed.to_crop, CROP_SIZE);
                let e = faceshifter::identity_embedding(arcface, std::slice::from_ref(&result), device)?;
                timings.arcface = t.elapsed();
                Some(cosine(&e, z))
            }
            _ => None,
        };
        faces.push(FaceReport {
            face: *index,
            similarity,
            timings,
        });
    }
    progress(total, total);
    Ok(SwapOutcome {
        image,
        engine: job.engine,
        faces,
        identity_time,
        notes,
        identity_embedding: identity,
    })
}

/// A target face on the template: the photo → crop transform and its landmarks in the crop.
pub struct Placed {
    pub to_crop: Similarity,
    pub landmarks: [[f32; 2]; 5],
}

/// Where `face` lands on the FaceShifter template.
pub fn place(face: &Face) -> Result<Placed, SwapError> {
    let to_crop = align_to_template(&face.landmarks, &faceshifter_template_256())
        .map_err(|e| SwapError::Network(format!("aligning the face: {e}")))?;
    let landmarks = face.landmarks.map(|p| to_crop.apply(p));
    Ok(Placed { to_crop, landmarks })
}

/// The paste-back mask of a face in crop space, as the swap uses it (for previews).
pub fn crop_mask(face: &Face, settings: &MaskSettings) -> Result<(Similarity, Plane), SwapError> {
    let placed = place(face)?;
    Ok((
        placed.to_crop,
        face_mask(CROP_SIZE as usize, settings, &placed.landmarks),
    ))
}

/// Cosine of two vectors (1 for the same direction).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_and_missing_fields_keep_defaults() {
        let s = SwapSettings {
            engine: SwapEngine::Classic,
            classic_blend: ClassicBlend::MultiBand,
            ..SwapSettings::default()
        };
        let text = serde_json::to_string(&s).unwrap();
        assert!(
            text.contains("\"classic\"") && text.contains("\"multi-band\""),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<SwapSettings>(&text).unwrap(), s);
        let partial: SwapSettings =
            serde_json::from_str(r#"{"engine":"classic","mask":{"padding":0.1}}"#).unwrap();
        assert_eq!(partial.engine, SwapEngine::Classic);
        assert_eq!(partial.mask.padding, 0.1);
        assert_eq!(partial.mask.blur_sigma, MaskSettings::default().blur_sigma);
        assert!(partial.color_match && partial.fallback_to_classic);
    }

    #[test]
    fn faceshifter_falls_back_only_when_allowed() {
        let s = SwapSettings::default();
        assert_eq!(choose_engine(&s, None).unwrap(), (SwapEngine::FaceShifter, None));
        let (engine, note) = choose_engine(&s, Some("G_latest.pth is missing")).unwrap();
        assert_eq!(engine, SwapEngine::Classic);
        assert!(note.unwrap().contains("G_latest.pth is missing"));
        let strict = SwapSettings {
            fallback_to_classic: false,
            ..s
        };
        let err = choose_engine(&strict, Some("G_latest.pth is missing")).unwrap_err();
        assert!(err.to_string().contains("G_latest.pth"), "{err}");
        let classic = SwapSettings {
            engine: SwapEngine::Classic,
            ..strict
        };
        assert_eq!(
            choose_engine(&classic, Some("x")).unwrap(),
            (SwapEngine::Classic, None)
        );
    }

    #[test]
    fn cosine_is_one_for_parallel_vectors() {
        assert!((cosine(&[1.0, 2.0], &[2.0, 4.0]) - 1.0).abs() < 1e-6);
        assert!(cosine(&[1.0, 0.0], &[0.0, 3.0]).abs() < 1e-6);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 0.0]), 0.0);
    }
}
