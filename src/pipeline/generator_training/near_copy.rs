//! Whether a fine-tuned generator copies its training photos: faces generated from fixed seeds
//! and the training faces are embedded with ArcFace (the swap's identity network), and each
//! generated face is matched with its nearest training photo by cosine similarity. A generator
//! that memorised its few dozen photos (the failure ADA is there to prevent) gives faces whose
//! identity is one of the photos'.
//!
//! Both kinds of faces are FFHQ-aligned `S×S` crops; they are cut to FaceShifter's 256 template
//! and its centre window resized to 112, the exact input the swap gives ArcFace. A training face
//! is compared as photographed and mirrored (the set trains on both), keeping the closer.
//!
//! Plain functions: the CLI prints the report and `model.json` keeps it.

use burn::tensor::{Device, Tensor};
use image::RgbImage;
use serde::{Deserialize, Serialize};

use super::TrainError;
use crate::face::align::{align_to_template, faceshifter_template_256};
use crate::face::ffhq::ffhq_template;
use crate::face::warp::crop_aligned;
use crate::nets::arcface::ArcFace;
use crate::nets::faceshifter::{ARCFACE_INPUT, arcface_input};
use crate::pipeline::generate::{GenerateSettings, NoiseChoice, generate};
use crate::pipeline::swap::faceshifter::crops_to_tensor;
use crate::weights::models::LoadedStyleGan2;

/// How many seeds the check generates (seeds `0..N`, so a flagged face is one
/// `facecast virtual generate --generator NAME --seed K` away).
pub const DEFAULT_SEEDS: u32 = 32;

/// Cosine similarity above which a generated face is reported as a near-copy. ArcFace IR-SE50
/// puts two photos of one person around 0.4–0.7 and different people below about 0.3; a
/// generated face above 0.7 shares more than an identity with a training photo.
pub const DEFAULT_THRESHOLD: f32 = 0.7;

/// ArcFace runs on this many faces at once (the memory of a batch stays small at any size).
const CHUNK: usize = 8;

/// One generated face and its nearest training photo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NearestPhoto {
    pub seed: u32,
    /// The training photo, as the lineage names it.
    pub photo: String,
    pub similarity: f32,
    /// `similarity > threshold`.
    pub near_copy: bool,
}

/// The check's result, as `model.json` records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NearCopyReport {
    /// The identity network (`arcface-ir-se50`).
    pub network: String,
    pub threshold: f32,
    /// The truncation the faces were generated with.
    pub truncation: f64,
    pub faces: Vec<NearestPhoto>,
    /// RFC 3339, UTC.
    pub checked: String,
}

impl NearCopyReport {
    /// The flagged faces, most similar first.
    pub fn near_copies(&self) -> Vec<&NearestPhoto> {
        let mut v: Vec<&NearestPhoto> = self.faces.iter().filter(|f| f.near_copy).collect();
        v.sort_by(|a, b| b.similarity.total_cmp(&a.similarity));
        v
    }

    /// The warning for one flagged face.
    pub fn warning(face: &NearestPhoto) -> String {
        format!(
            "seed {} looks like a near-copy of {} (similarity {:.2})",
            face.seed, face.photo, face.similarity
        )
    }
}

/// FFHQ-aligned faces (any one size) → ArcFace's input `[N, 3, 112, 112]`, BGR in [−1, 1].
pub fn arcface_batch(faces: &[RgbImage], device: &Device) -> Result<Tensor<4>, TrainError> {
    let Some(first) = faces.first() else {
        return Err(TrainError::Input("no face to embed".into()));
    };
    let size = first.width();
    if faces.iter().any(|f| f.width() != size || f.height() != size) {
        return Err(TrainError::Input(
            "faces to embed must be square and of one size (FFHQ-aligned crops)".into(),
        ));
    }
    let to_256 = align_to_template(&ffhq_template(size), &faceshifter_template_256())
        .map_err(|e| TrainError::Input(format!("FFHQ to FaceShifter alignment: {e}")))?;
    let crops: Vec<RgbImage> = faces.iter().map(|f| crop_aligned(f, &to_256, 256)).collect();
    arcface_input(crops_to_tensor(&crops, device)).map_err(|e| TrainError::Input(e.to_string()))
}

/// ArcFace embeddings (unit vectors) of FFHQ-aligned faces, one per face.
pub fn embed(arcface: &ArcFace, faces: &[RgbImage], device: &Device) -> Result<Vec<Vec<f32>>, TrainError> {
    if arcface.input_size() != ARCFACE_INPUT {
        return Err(TrainError::Input(format!(
            "this ArcFace reads {0}×{0} faces, the check feeds it {ARCFACE_INPUT}×{ARCFACE_INPUT}",
            arcface.input_size()
        )));
    }
    let mut out = Vec::with_capacity(faces.len());
    for chunk in faces.chunks(CHUNK) {
        let e = arcface.forward(arcface_batch(chunk, device)?);
        let [n, d] = e.dims();
        let values = e
            .into_data()
            .try_into_vec_as::<f32>()
            .map_err(|e| TrainError::Input(format!("ArcFace's embeddings could not be read back: {e:?}")))?;
        out.extend(values.chunks(d).take(n).map(<[f32]>::to_vec));
    }
    Ok(out)
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

/// For each generated embedding, the index of the most similar training embedding and that
/// similarity (`None` without training embeddings). A training photo may bring several
/// embeddings (`owner[k]` is embedding k's photo): the photo's similarity is its best one.
pub fn nearest(generated: &[Vec<f32>], training: &[Vec<f32>], owner: &[usize]) -> Vec<Option<(usize, f32)>> {
    generated
        .iter()
        .map(|g| {
            training
                .iter()
                .zip(owner)
                .map(|(t, &o)| (o, cosine(g, t)))
                .max_by(|a, b| a.1.total_cmp(&b.1))
        })
        .collect()
}

/// The check on faces already made: `generated` (seed, FFHQ-aligned face) against the training
/// faces `(name, FFHQ-aligned face)`, each also mirrored.
pub fn check_faces(
    arcface: &ArcFace,
    generated: &[(u32, RgbImage)],
    training: &[(String, RgbImage)],
    threshold: f32,
    truncation: f64,
    device: &Device,
) -> Result<NearCopyReport, TrainError> {
    if training.is_empty() {
        return Err(TrainError::Input("no training face to compare with".into()));
    }
    let gen_faces: Vec<RgbImage> = generated.iter().map(|(_, f)| f.clone()).collect();
    let mut train_faces = Vec::with_capacity(2 * training.len());
    let mut owner = Vec::with_capacity(2 * training.len());
    for (i, (_, face)) in training.iter().enumerate() {
        train_faces.push(face.clone());
        train_faces.push(image::imageops::flip_horizontal(face));
        owner.extend([i, i]);
    }
    let g = embed(arcface, &gen_faces, device)?;
    let t = embed(arcface, &train_faces, device)?;
    let faces = nearest(&g, &t, &owner)
        .into_iter()
        .zip(generated)
        .filter_map(|(best, (seed, _))| {
            best.map(|(i, similarity)| NearestPhoto {
                seed: *seed,
                photo: training[i].0.clone(),
                similarity,
                near_copy: similarity > threshold,
            })
        })
        .collect();
    Ok(NearCopyReport {
        network: crate::weights::models::ARCFACE_ID.to_string(),
        threshold,
        truncation,
        faces,
        checked: super::registry::now_rfc3339(),
    })
}

/// Faces of seeds `seeds` from a (trained) generator, exactly as `virtual generate --seed`
/// makes them with its default truncation and the checkpoint's noise.
pub fn generate_faces(
    generator: &LoadedStyleGan2,
    seeds: &[u32],
    truncation: f64,
) -> Result<Vec<(u32, RgbImage)>, TrainError> {
    seeds
        .iter()
        .map(|&seed| {
            let settings = GenerateSettings {
                seed,
                truncation,
                noise: NoiseChoice::Checkpoint,
            };
            generate(&generator.model, &settings)
                .map(|g| (seed, g.image))
                .map_err(|e| TrainError::Input(format!("generating seed {seed}: {e}")))
        })
        .collect()
}
