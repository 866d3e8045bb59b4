//! The screening classifier: MobileNetV2 saying "face" or "no face" about a whole product photo,
//! a second opinion beside MTCNN's score (the screening rule stays MTCNN's ≥ 0.70).
//!
//! No public face/no-face checkpoint exists, so the classifier is fine-tuned from the ImageNet
//! MobileNetV2 on the operator's own labelled photos ([`train`]).
//!
//! # Checkpoint format
//!
//! One safetensors file (`face-classifier.safetensors` in the weights store, id
//! [`FACE_CLASSIFIER_ID`](crate::weights::models::FACE_CLASSIFIER_ID)):
//! - tensors: a torchvision `MobileNetV2(num_classes=2)` state dict, float32, under torchvision's
//!   own keys (`features.0.0.weight`, `features.0.1.running_mean`, …, `classifier.1.bias`), so any
//!   MobileNetV2 loader reads it and its width is inferred from its shapes like the ImageNet file's;
//! - header metadata: `"format": "facecast-face-classifier"` and `"info"`, the JSON of
//!   [`ClassifierInfo`]: version, which output is "face", the input size and pre-processing, the
//!   checkpoint it was fine-tuned from, and the whole training history.

pub mod augment;
pub mod train;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::tensor::Device;
use burn::tensor::activation::softmax;
use burn::tensor::{Tensor, TensorData};
use image::RgbImage;
use serde::{Deserialize, Serialize};

use self::train::Trained;
use crate::nets::mobilenetv2::{MobileNetV2, MobileNetV2Config};
use crate::weights::models::{
    FACE_CLASSIFIER_ID, MOBILENETV2_IMAGENET_ID, ModelLoadError, mobilenetv2_from_tensors, shapes,
};
use crate::weights::store::{FileStatus, REDUCED_NOTE, StoreError, WeightsStore};
use crate::weights::{TensorMap, read_checkpoint};

/// The `format` entry of the checkpoint's header metadata.
pub const CHECKPOINT_FORMAT: &str = "facecast-face-classifier";
/// The version of [`ClassifierInfo`] this build writes and reads.
pub const INFO_VERSION: u32 = 1;
/// The class names in output order: index 1 is "face".
pub const CLASSES: [&str; 2] = ["no face", "face"];
/// Index of "face" in the logits.
pub const FACE_CLASS: usize = 1;
/// The classifier says "face" at this probability or more.
pub const FACE_THRESHOLD: f32 = 0.5;

/// The checkpoint a classifier was fine-tuned from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaseCheckpoint {
    /// The weights store id (`mobilenetv2-imagenet-v2`), or empty for a file given directly.
    pub id: String,
    pub file: String,
    pub sha256: String,
    /// The width multiplier read off its shapes.
    pub width_mult: f64,
    /// Set when the base was reduced-width test weights, not the released ImageNet network.
    #[serde(default)]
    pub reduced: bool,
}

/// One epoch of training, as reported and as stored in the checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    /// Counting from 1.
    pub epoch: usize,
    pub train_loss: f32,
    pub train_accuracy: f32,
    pub val_loss: f32,
    pub val_accuracy: f32,
}

/// How a classifier was trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingRecord {
    pub seed: u64,
    pub epochs_asked: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub patience: usize,
    /// Photos used, [no face, face], for training and for validation.
    pub train_counts: [usize; 2],
    pub val_counts: [usize; 2],
    /// The epoch whose weights were kept (best validation accuracy, then loss).
    pub best_epoch: usize,
    pub stopped_early: bool,
    pub history: Vec<EpochStats>,
}

/// What the checkpoint says about itself (its `info` metadata).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassifierInfo {
    pub version: u32,
    /// Output order; `classes[FACE_CLASS]` is "face".
    pub classes: Vec<String>,
    /// The side of the square input.
    pub input_size: u32,
    /// `letterbox`: the whole photo fitted into the square (long side = input_size, antialiased
    /// bilinear), centred on the ImageNet mean, then normalised with `mean`/`std`.
    pub preprocessing: String,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub base: BaseCheckpoint,
    pub training: TrainingRecord,
    /// Seconds since the Unix epoch.
    pub created_unix: u64,
}

impl ClassifierInfo {
    /// The validation accuracy of the kept epoch.
    pub fn val_accuracy(&self) -> Option<f32> {
        self.training
            .history
            .iter()
            .find(|e| e.epoch == self.training.best_epoch)
            .map(|e| e.val_accuracy)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClassifierError {
    #[error(transparent)]
    Load(#[from] ModelLoadError),
    #[error("{}: {cause}", path.display())]
    Io { path: PathBuf, cause: std::io::Error },
    #[error("{}: not a Facecast face classifier: {cause}", path.display())]
    NotClassifier { path: PathBuf, cause: String },
    #[error("the compute device failed while running the classifier: {0}")]
    Device(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A loaded face/no-face classifier.
#[derive(Debug)]
pub struct FaceClassifier {
    pub net: MobileNetV2,
    pub info: ClassifierInfo,
    pub path: PathBuf,
}

impl FaceClassifier {
    /// Loads a checkpoint written by [`save_checkpoint`].
    pub fn load(path: &Path, device: &Device) -> Result<FaceClassifier, ClassifierError> {
        let info = read_info(path)?;
        let tensors = read_checkpoint(path)
            .map_err(ModelLoadError::from)?
            .flatten_tensors();
        let (net, config) = mobilenetv2_from_tensors(&tensors, path, device)?;
        if config.num_classes != CLASSES.len() {
            return Err(ClassifierError::NotClassifier {
                path: path.to_path_buf(),
                cause: format!("its head has {} classes, expected 2", config.num_classes),
            });
        }
        Ok(FaceClassifier {
            net,
            info,
            path: path.to_path_buf(),
        })
    }

    /// The probability that each image shows a face, in order.
    pub fn face_probability(
        &self,
        images: &[&RgbImage],
        device: &Device,
    ) -> Result<Vec<f32>, ClassifierError> {
        let size = self.info.input_size;
        let mut out = Vec::with_capacity(images.len());
        for chunk in images.chunks(16) {
            let data: Vec<f32> = chunk
                .iter()
                .flat_map(|img| augment::letterbox(img, size))
                .collect();
            let side = size as usize;
            let x = Tensor::<4>::from_data(TensorData::new(data, [chunk.len(), 3, side, side]), device);
            out.extend(face_column(self.net.forward(x))?);
        }
        Ok(out)
    }
}

/// softmax(logits)[:, FACE_CLASS] on the host.
pub(crate) fn face_column(logits: Tensor<2>) -> Result<Vec<f32>, ClassifierError> {
    let probs = softmax(logits, 1)
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| ClassifierError::Device(format!("{e:?}")))?;
    Ok(probs.chunks(CLASSES.len()).map(|p| p[FACE_CLASS]).collect())
}

/// Reads only the header metadata of a classifier checkpoint.
pub fn read_info(path: &Path) -> Result<ClassifierInfo, ClassifierError> {
    let not = |cause: String| ClassifierError::NotClassifier {
        path: path.to_path_buf(),
        cause,
    };
    let bytes = std::fs::read(path).map_err(|cause| ClassifierError::Io {
        path: path.to_path_buf(),
        cause,
    })?;
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| not(format!("not a safetensors file ({e})")))?;
    let meta = header.metadata().clone().unwrap_or_default();
    if meta.get("format").map(String::as_str) != Some(CHECKPOINT_FORMAT) {
        return Err(not(format!(
            "its metadata has no \"format\": \"{CHECKPOINT_FORMAT}\" (a plain MobileNetV2 is not a face classifier)"
        )));
    }
    let text = meta
        .get("info")
        .ok_or_else(|| not("its metadata has no \"info\"".into()))?;
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| not(format!("its \"info\" is not JSON: {e}")))?;
    match value.get("version").and_then(|v| v.as_u64()) {
        Some(v) if v == INFO_VERSION as u64 => {}
        other => {
            return Err(not(format!(
                "info version {other:?}; this Facecast reads version {INFO_VERSION}"
            )));
        }
    }
    serde_json::from_value(value).map_err(|e| not(format!("its \"info\": {e}")))
}

/// The checkpoint's bytes: `tensors` (torchvision keys, f32) with `info` in the header.
pub fn checkpoint_bytes(tensors: &TensorMap, info: &ClassifierInfo) -> Result<Vec<u8>, String> {
    let raw: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .tensors
        .iter()
        .filter_map(|(k, t)| {
            let values = t.as_f32()?;
            let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            Some((k.clone(), t.shape.clone(), bytes))
        })
        .collect();
    let views = raw
        .iter()
        .map(|(k, shape, bytes)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)
                .map(|v| (k.clone(), v))
                .map_err(|e| format!("{k}: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let info_json = serde_json::to_string(info).map_err(|e| e.to_string())?;
    let meta = HashMap::from([
        ("format".to_string(), CHECKPOINT_FORMAT.to_string()),
        ("info".to_string(), info_json),
    ]);
    safetensors::serialize(views, Some(meta)).map_err(|e| e.to_string())
}

/// Writes the checkpoint atomically.
pub fn save_checkpoint(
    path: &Path,
    tensors: &TensorMap,
    info: &ClassifierInfo,
) -> Result<(), ClassifierError> {
    let bytes = checkpoint_bytes(tensors, info).map_err(|cause| ClassifierError::Io {
        path: path.to_path_buf(),
        cause: std::io::Error::other(cause),
    })?;
    crate::io::atomic::write_atomic(path, &bytes).map_err(|cause| ClassifierError::Io {
        path: path.to_path_buf(),
        cause,
    })
}

/// The checkpoint to fine-tune from, read: the tensors, the file, and its description.
#[derive(Debug, Clone)]
pub struct Base {
    pub tensors: TensorMap,
    pub path: PathBuf,
    pub info: BaseCheckpoint,
}

/// The ImageNet MobileNetV2 of the weights store (`mobilenetv2-imagenet-v2`), or the reduced test
/// weights imported in its place (then marked as such).
pub fn base_from_store(store: &WeightsStore) -> Result<Base, ClassifierError> {
    let state = store.status(MOBILENETV2_IMAGENET_ID)?;
    let path = store
        .require(MOBILENETV2_IMAGENET_ID)?
        .into_iter()
        .next()
        .ok_or_else(|| ClassifierError::NotClassifier {
            path: store.model_dir(MOBILENETV2_IMAGENET_ID),
            cause: "the model has no files".into(),
        })?;
    let reduced = state
        .files
        .iter()
        .any(|f| f.status == FileStatus::Unverified(REDUCED_NOTE.to_string()));
    let mut base = base_from_file(&path)?;
    base.info.id = MOBILENETV2_IMAGENET_ID.to_string();
    base.info.reduced = reduced;
    Ok(base)
}

/// Any torchvision MobileNetV2 checkpoint as the starting point.
pub fn base_from_file(path: &Path) -> Result<Base, ClassifierError> {
    let tensors = read_checkpoint(path)
        .map_err(ModelLoadError::from)?
        .flatten_tensors();
    let config = MobileNetV2Config::infer(&shapes(&tensors)).map_err(|e| ModelLoadError::Config {
        file: path.to_path_buf(),
        reason: format!("not a MobileNetV2: {e}"),
    })?;
    let (_, sha256) = crate::weights::download::hash_file(path).map_err(|cause| ClassifierError::Io {
        path: path.to_path_buf(),
        cause,
    })?;
    Ok(Base {
        tensors,
        path: path.to_path_buf(),
        info: BaseCheckpoint {
            id: String::new(),
            file: path.display().to_string(),
            sha256,
            width_mult: config.width_mult,
            reduced: false,
        },
    })
}

/// Installs a trained classifier into the weights store (checked like any import) and returns
/// where it now lives; the app and `facecast classify` load it from there.
pub fn install(store: &WeightsStore, trained: &Trained) -> Result<PathBuf, ClassifierError> {
    let weights = store.weights_dir();
    std::fs::create_dir_all(&weights).map_err(|cause| ClassifierError::Io {
        path: weights.clone(),
        cause,
    })?;
    let staged = tempfile::Builder::new()
        .prefix(".facecast-classifier-")
        .suffix(".safetensors")
        .tempfile_in(&weights)
        .map_err(|cause| ClassifierError::Io {
            path: weights.clone(),
            cause,
        })?;
    save_checkpoint(staged.path(), &trained.tensors, &trained.info)?;
    store.import(FACE_CLASSIFIER_ID, &[staged.path().to_path_buf()])?;
    Ok(store
        .require(FACE_CLASSIFIER_ID)?
        .into_iter()
        .next()
        .unwrap_or_else(|| store.model_dir(FACE_CLASSIFIER_ID)))
}

/// The installed classifier, or why there is none ("not installed: train one…").
pub fn load_installed(store: &WeightsStore, device: &Device) -> Result<FaceClassifier, ClassifierError> {
    let path = store
        .require(FACE_CLASSIFIER_ID)?
        .into_iter()
        .next()
        .unwrap_or_else(|| store.model_dir(FACE_CLASSIFIER_ID));
    FaceClassifier::load(&path, device)
}
