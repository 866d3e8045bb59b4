//! What a virtual model is, as `model.json` stores it (see the format in [`crate::cast`]).

use std::path::{Path, PathBuf};

use image::RgbImage;
use serde::{Deserialize, Serialize};

use super::library::{CastError, read_image, read_latent};

/// Five landmarks: left eye, right eye, nose tip, left and right mouth corner (as seen).
pub type Landmarks = [[f32; 2]; 5];

/// Where the landmarks of a face image came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LandmarkSource {
    /// MTCNN found the face (a confident detection).
    Mtcnn,
    /// The fixed positions of an FFHQ-aligned image (StyleGAN2 output when MTCNN found nothing or
    /// is not installed).
    FfhqTemplate,
}

impl LandmarkSource {
    pub fn describe(self) -> &'static str {
        match self {
            LandmarkSource::Mtcnn => "landmarks found by MTCNN",
            LandmarkSource::FfhqTemplate => "landmarks at the FFHQ alignment positions",
        }
    }
}

/// The face image as stored (`face.png`) and where its landmarks are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaceImage {
    pub file: String,
    pub width: u32,
    pub height: u32,
    pub landmarks: Landmarks,
    pub landmarks_from: LandmarkSource,
}

/// One aligned 256×256 crop on FaceShifter's template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CropEntry {
    pub file: String,
    /// Index into the imported origin's sources; None for a generated face.
    pub source: Option<usize>,
}

/// How the synthesis noise was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum NoiseSpec {
    /// The checkpoint's fixed noise buffers (rosinality's `randomize_noise=False`).
    Checkpoint,
    /// Drawn from the seed's stream right after z (NVIDIA's `run_generator.py` convention).
    Seeded { seed: u32 },
}

/// Which generator made a latent: enough to refuse a latent from a different network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeneratorInfo {
    /// The weights store id (`stylegan2-ffhq`).
    pub weights: String,
    pub size: usize,
    pub style_dim: usize,
    pub n_latent: usize,
    /// Made with reduced-width test weights, not the released network.
    #[serde(default)]
    pub reduced: bool,
}

/// One edit applied to a generated model (StyleCLIP text edits, mappers, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EditRecord {
    /// What made it, e.g. `styleclip-global` or `styleclip-mapper`.
    pub kind: String,
    /// One line for the operator, e.g. `"smiling" strength 4.0, disentanglement 0.15`.
    pub summary: String,
    /// The step's own settings, kept verbatim so the edit can be reproduced.
    #[serde(default)]
    pub params: serde_json::Value,
    #[serde(default)]
    pub created_unix: u64,
}

impl EditRecord {
    pub fn new(kind: impl Into<String>, summary: impl Into<String>, params: serde_json::Value) -> EditRecord {
        EditRecord {
            kind: kind.into(),
            summary: summary.into(),
            params,
            created_unix: super::library::now_unix(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeneratedOrigin {
    /// None when the latent did not come from a seed.
    pub seed: Option<u32>,
    pub truncation: f64,
    pub noise: NoiseSpec,
    /// The z generator of the seed (`mt19937-polar`).
    #[serde(default = "default_z_rng")]
    pub z_rng: String,
    pub generator: GeneratorInfo,
    #[serde(default = "default_latent_file")]
    pub latent_file: String,
    /// Every edit applied since generation, oldest first.
    #[serde(default)]
    pub edits: Vec<EditRecord>,
}

/// The RNG named in `z_rng`.
pub const Z_RNG: &str = "mt19937-polar";

fn default_z_rng() -> String {
    Z_RNG.to_string()
}

pub(crate) const LATENT_FILE: &str = "latent.safetensors";

fn default_latent_file() -> String {
    LATENT_FILE.to_string()
}

/// One photo an imported model was made from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourcePhoto {
    pub path: PathBuf,
    pub file_name: String,
    pub sha256: String,
    pub width: u32,
    pub height: u32,
    /// 0-based among the faces found (largest first).
    pub face_index: usize,
    pub faces_found: usize,
    pub bbox: [f32; 4],
    pub score: f32,
    pub landmarks: Landmarks,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportedOrigin {
    pub sources: Vec<SourcePhoto>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Origin {
    Generated(GeneratedOrigin),
    Imported(ImportedOrigin),
}

impl Origin {
    /// One line for lists: "generated, seed 3, ψ 0.70" or "imported from 2 photos".
    pub fn summary(&self) -> String {
        match self {
            Origin::Generated(g) => {
                let mut text = match g.seed {
                    Some(seed) => format!("generated, seed {seed}, ψ {:.2}", g.truncation),
                    None => format!("generated, ψ {:.2}", g.truncation),
                };
                match g.edits.len() {
                    0 => {}
                    1 => text.push_str(", 1 edit"),
                    n => text.push_str(&format!(", {n} edits")),
                }
                if g.generator.reduced {
                    text.push_str(" (test weights)");
                }
                text
            }
            Origin::Imported(i) => match i.sources.as_slice() {
                [one] => format!("imported from {}", one.file_name),
                many => format!("imported from {} photos", many.len()),
            },
        }
    }
}

/// An ArcFace identity embedding of the model's face (filled in by the swap step).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    /// The weights id of the network that made it.
    pub network: String,
    /// Made with reduced-width test weights.
    #[serde(default)]
    pub reduced: bool,
    pub embedding: Vec<f32>,
}

/// A W+ latent (and an optional S-space edit), as plain numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct Latent {
    /// `[n_latent, style_dim]`, row-major.
    pub wplus: Vec<f32>,
    pub n_latent: usize,
    pub style_dim: usize,
    /// Offset on the conv layers' styles (StyleCLIP's `fs3` indexing), when edited in S space.
    pub s_conv_delta: Option<Vec<f32>>,
}

impl Latent {
    /// Checks that the numbers fit the shape.
    pub fn new(wplus: Vec<f32>, n_latent: usize, style_dim: usize) -> Result<Latent, CastError> {
        let latent = Latent {
            wplus,
            n_latent,
            style_dim,
            s_conv_delta: None,
        };
        latent.check()?;
        Ok(latent)
    }

    pub(crate) fn check(&self) -> Result<(), CastError> {
        if self.n_latent == 0 || self.style_dim == 0 || self.wplus.len() != self.n_latent * self.style_dim {
            return Err(CastError::Invalid(format!(
                "a W+ latent of {} numbers is not [{}, {}]",
                self.wplus.len(),
                self.n_latent,
                self.style_dim
            )));
        }
        if self.wplus.iter().any(|v| !v.is_finite())
            || self
                .s_conv_delta
                .as_ref()
                .is_some_and(|d| d.iter().any(|v| !v.is_finite()))
        {
            return Err(CastError::Invalid("the latent holds non-finite numbers".into()));
        }
        Ok(())
    }
}

/// A virtual model of the library, as read from its folder.
#[derive(Debug, Clone, PartialEq)]
pub struct VirtualModel {
    pub id: String,
    pub name: String,
    pub created_unix: u64,
    pub modified_unix: u64,
    /// The model this one was edited from.
    pub parent: Option<String>,
    pub origin: Origin,
    pub face: FaceImage,
    pub crops: Vec<CropEntry>,
    pub identity: Option<Identity>,
    pub(crate) dir: PathBuf,
}

impl VirtualModel {
    /// Its folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn face_path(&self) -> PathBuf {
        self.dir.join(&self.face.file)
    }

    pub fn crop_paths(&self) -> Vec<PathBuf> {
        self.crops.iter().map(|c| self.dir.join(&c.file)).collect()
    }

    pub fn is_generated(&self) -> bool {
        matches!(self.origin, Origin::Generated(_))
    }

    pub fn generated(&self) -> Option<&GeneratedOrigin> {
        match &self.origin {
            Origin::Generated(g) => Some(g),
            Origin::Imported(_) => None,
        }
    }

    /// The edits applied since generation (none for imported models).
    pub fn edits(&self) -> &[EditRecord] {
        self.generated().map(|g| g.edits.as_slice()).unwrap_or(&[])
    }

    /// The face image (`face.png`).
    pub fn face_image(&self) -> Result<RgbImage, CastError> {
        read_image(&self.face_path())
    }

    /// The 256×256 crops aligned to [`crate::face::align::faceshifter_template_256`], one per source
    /// photo (one for a generated model). FaceShifter takes ArcFace's identity from them; the
    /// classic engine warps them onto the target.
    pub fn aligned_crops(&self) -> Result<Vec<RgbImage>, CastError> {
        self.crop_paths()
            .iter()
            .map(|path| {
                let img = read_image(path)?;
                if img.dimensions() != (super::CROP_SIDE, super::CROP_SIDE) {
                    return Err(CastError::Damaged {
                        path: path.clone(),
                        reason: format!(
                            "the aligned crop is {}×{}, not {side}×{side}",
                            img.width(),
                            img.height(),
                            side = super::CROP_SIDE
                        ),
                    });
                }
                Ok(img)
            })
            .collect()
    }

    /// The W+ latent of a generated model (None for an imported one).
    pub fn latent(&self) -> Result<Option<Latent>, CastError> {
        match self.generated() {
            Some(g) => read_latent(&self.dir.join(&g.latent_file)).map(Some),
            None => Ok(None),
        }
    }

    /// The identity embedding when it was made by `network` (a weights id).
    pub fn identity_for(&self, network: &str) -> Option<&[f32]> {
        self.identity
            .as_ref()
            .filter(|i| i.network == network)
            .map(|i| i.embedding.as_slice())
    }
}

/// Everything needed to add a model to the library (the library chooses the id and the files).
#[derive(Debug, Clone)]
pub struct NewVirtualModel {
    pub name: String,
    pub parent: Option<String>,
    pub origin: Origin,
    /// The face as shown, with its landmarks.
    pub face: RgbImage,
    pub face_landmarks: Landmarks,
    pub landmarks_from: LandmarkSource,
    /// 256×256 crops on FaceShifter's template: one for a generated face, one per source photo
    /// (same order as the imported origin's sources).
    pub crops: Vec<RgbImage>,
    /// Required for a generated origin, refused for an imported one.
    pub latent: Option<Latent>,
    pub identity: Option<Identity>,
}

impl NewVirtualModel {
    /// A new version of the generated model `parent`, edited by `edit`: same seed, truncation and
    /// generator, the edit appended to the parent's edits, `parent` recorded as its lineage.
    #[allow(clippy::too_many_arguments)]
    pub fn edited(
        parent: &VirtualModel,
        name: impl Into<String>,
        face: RgbImage,
        face_landmarks: Landmarks,
        landmarks_from: LandmarkSource,
        crop: RgbImage,
        latent: Latent,
        edit: EditRecord,
    ) -> Result<NewVirtualModel, CastError> {
        let Some(generated) = parent.generated() else {
            return Err(CastError::Invalid(format!(
                "{} was imported from photos; only generated virtual models can be edited",
                parent.name
            )));
        };
        let mut origin = generated.clone();
        origin.edits.push(edit);
        origin.latent_file = LATENT_FILE.to_string();
        Ok(NewVirtualModel {
            name: name.into(),
            parent: Some(parent.id.clone()),
            origin: Origin::Generated(origin),
            face,
            face_landmarks,
            landmarks_from,
            crops: vec![crop],
            latent: Some(latent),
            // The identity belongs to the old face; the swap step makes a new one when needed.
            identity: None,
        })
    }
}
