//! Fine-tuning MobileNetV2 into a face/no-face classifier with burn's autodiff.
//!
//! The ImageNet backbone keeps its BatchNorm statistics (a few hundred photos in batches of 16
//! would only add noise to them); every weight, BatchNorm's scale and shift included, is trained
//! with Adam, and a fresh two-class head replaces the ImageNet one. Photos are split into training
//! and validation per class; training sees random crops, mirror images and colour jitter, and the
//! loss weighs each class by its inverse frequency so an unbalanced set of labels still works. The
//! weights of the epoch with the best validation accuracy (then loss) are kept, and training stops
//! once that has not improved for `patience` epochs.
//!
//! The seed decides the split, the head's initial weights, the batch order, the augmentation and
//! the dropout masks, all drawn from [`Rng`] and never from the device's generator, so the same
//! photos and seed give the same weights.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::nn::BatchNorm;
use burn::optim::{AdamConfig, GradientsParams};
use burn::store::{BurnToPyTorchAdapter, ModuleSnapshot};
use burn::tensor::activation::log_softmax;
use burn::tensor::{DType, Device, Tensor, TensorData};
use image::RgbImage;

use super::augment::{Rng, augmented, letterbox, shrink_for_training};
use super::{
    BaseCheckpoint, CLASSES, ClassifierInfo, EpochStats, FACE_THRESHOLD, INFO_VERSION, TrainingRecord,
    face_column,
};
use crate::io::collect::collect_photos;
use crate::io::{DecodeLimits, load_photo};
use crate::nets::mobilenetv2::{BlockPart, Feature, HeadPart, MobileNetV2, MobileNetV2Config, Op};
use crate::weights::models::shapes;
use crate::weights::{RawTensor, TensorMap};

/// The dropout before the classifier (torchvision's).
const DROPOUT: f64 = 0.2;
/// Mixed into the seed for the head's initial weights, so they do not repeat the split's draws.
const HEAD_SALT: u64 = 0x6865_6164;

/// How to train.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainSettings {
    /// At most this many passes over the training photos.
    pub epochs: usize,
    pub seed: u64,
    pub batch_size: usize,
    pub learning_rate: f64,
    /// Stop after this many epochs without a better validation result (0: never stop early).
    pub patience: usize,
    /// Share of each class held out for validation (at least one photo of each).
    pub val_fraction: f64,
    /// The side of the square input; 224 is MobileNetV2's ImageNet size.
    pub input_size: u32,
}

impl Default for TrainSettings {
    fn default() -> Self {
        TrainSettings {
            epochs: 10,
            seed: 0,
            batch_size: 16,
            learning_rate: 3e-4,
            patience: 3,
            val_fraction: 0.2,
            input_size: 224,
        }
    }
}

/// One photo and its label.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelledPhoto {
    pub path: PathBuf,
    pub face: bool,
}

/// What training is doing, for progress bars and logs.
#[derive(Debug, Clone, PartialEq)]
pub enum TrainEvent {
    /// Photos read so far.
    Loading { done: usize, total: usize },
    /// A photo that could not be read; training goes on without it.
    Skipped { path: PathBuf, reason: String },
    /// The split is made and the first epoch starts. Counts are [no face, face].
    Started {
        train: [usize; 2],
        val: [usize; 2],
        batches_per_epoch: usize,
        epochs: usize,
    },
    Batch {
        epoch: usize,
        batch: usize,
        batches: usize,
        loss: f32,
    },
    /// An epoch ended; `best` when its weights are the ones kept so far.
    Epoch { stats: EpochStats, best: bool },
    /// Validation did not improve for `patience` epochs.
    EarlyStop { epoch: usize, best_epoch: usize },
}

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("{}: {cause}", path.display())]
    Folder { path: PathBuf, cause: String },
    #[error(
        "training needs at least 2 readable photos of each kind; found {faces} with a face and {no_faces} without"
    )]
    NotEnough { faces: usize, no_faces: usize },
    #[error("bad training settings: {0}")]
    Settings(String),
    #[error("{}: the starting checkpoint is not usable: {cause}", path.display())]
    Base { path: PathBuf, cause: String },
    #[error("the compute device failed during training: {0}")]
    Device(String),
    #[error("training was cancelled")]
    Cancelled,
}

/// The result of training: the kept weights (torchvision keys) and their description.
#[derive(Debug, Clone)]
pub struct Trained {
    pub tensors: TensorMap,
    pub info: ClassifierInfo,
}

/// The photos of a "faces" folder and a "no faces" folder (searched recursively).
pub fn photos_from_folders(faces: &Path, no_faces: &Path) -> Result<Vec<LabelledPhoto>, TrainError> {
    let mut out = Vec::new();
    for (dir, face) in [(faces, true), (no_faces, false)] {
        if !dir.is_dir() {
            return Err(TrainError::Folder {
                path: dir.to_path_buf(),
                cause: "not a folder".into(),
            });
        }
        let photos = collect_photos(&[dir.to_path_buf()]);
        if photos.is_empty() {
            return Err(TrainError::Folder {
                path: dir.to_path_buf(),
                cause: "holds no photos".into(),
            });
        }
        out.extend(photos.into_iter().map(|path| LabelledPhoto { path, face }));
    }
    Ok(out)
}

/// Fine-tunes the MobileNetV2 state dict `base` (read from `base_path`, described by `base_info`)
/// on `photos`. Runs on `device` with autodiff; `cancel` is polled between batches.
#[allow(clippy::too_many_arguments)]
pub fn train(
    base: &TensorMap,
    base_path: &Path,
    mut base_info: BaseCheckpoint,
    photos: &[LabelledPhoto],
    settings: &TrainSettings,
    device: &Device,
    events: &mut dyn FnMut(TrainEvent),
    cancel: &dyn Fn() -> bool,
) -> Result<Trained, TrainError> {
    check_settings(settings)?;
    let size = settings.input_size;
    let base_err = |cause: String| TrainError::Base {
        path: base_path.to_path_buf(),
        cause,
    };
    let mut config = MobileNetV2Config::infer(&shapes(base)).map_err(|e| base_err(e.to_string()))?;
    base_info.width_mult = config.width_mult;
    config.num_classes = CLASSES.len();
    config.dropout = DROPOUT;

    // Photos, shrunk to what training needs, in the given order.
    let mut images: Vec<(RgbImage, bool)> = Vec::new();
    for (done, photo) in photos.iter().enumerate() {
        if cancel() {
            return Err(TrainError::Cancelled);
        }
        match load_photo(&photo.path, &DecodeLimits::default()) {
            Ok(p) => images.push((shrink_for_training(&p.rgb, size), photo.face)),
            Err(e) => events(TrainEvent::Skipped {
                path: photo.path.clone(),
                reason: e.to_string(),
            }),
        }
        events(TrainEvent::Loading {
            done: done + 1,
            total: photos.len(),
        });
    }
    let count = |face: bool| images.iter().filter(|(_, f)| *f == face).count();
    if count(true) < 2 || count(false) < 2 {
        return Err(TrainError::NotEnough {
            faces: count(true),
            no_faces: count(false),
        });
    }

    let mut rng = Rng::new(settings.seed);
    let (train_set, val_set) = split(&images, settings.val_fraction, &mut rng);
    let counts = |set: &[usize]| {
        let faces = set.iter().filter(|&&i| images[i].1).count();
        [set.len() - faces, faces]
    };
    let (train_counts, val_counts) = (counts(&train_set), counts(&val_set));
    // Each class weighs half of the loss, whatever its share of the photos.
    let class_weight = train_counts.map(|n| train_set.len() as f32 / (2.0 * n.max(1) as f32));

    let ad = device.clone().autodiff();
    let mut start = without_head(base);
    let last = config.last_channels();
    let mut head_rng = Rng::new(settings.seed ^ HEAD_SALT);
    let head: Vec<f32> = (0..CLASSES.len() * last)
        .map(|_| (head_rng.normal() * 0.01) as f32)
        .collect();
    start.tensors.insert(
        "classifier.1.weight".into(),
        RawTensor::f32(vec![CLASSES.len(), last], head),
    );
    start.tensors.insert(
        "classifier.1.bias".into(),
        RawTensor::f32(vec![CLASSES.len()], vec![0.0; CLASSES.len()]),
    );
    let mut net =
        MobileNetV2::from_state_dict(&config, &start, base_path, &ad).map_err(|e| base_err(e.to_string()))?;
    freeze_statistics(&mut net);
    let mut optim = AdamConfig::new().init();

    let batches = train_set.len().div_ceil(settings.batch_size);
    events(TrainEvent::Started {
        train: train_counts,
        val: val_counts,
        batches_per_epoch: batches,
        epochs: settings.epochs,
    });

    let mut history = Vec::new();
    let mut best: Option<(f32, f32, usize, TensorMap)> = None;
    let mut stopped_early = false;
    for epoch in 1..=settings.epochs {
        let mut order = train_set.clone();
        rng.shuffle(&mut order);
        let (mut loss_sum, mut correct) = (0.0f64, 0usize);
        for (b, chunk) in order.chunks(settings.batch_size).enumerate() {
            if cancel() {
                return Err(TrainError::Cancelled);
            }
            let n = chunk.len();
            let side = size as usize;
            let pixels: Vec<f32> = chunk
                .iter()
                .flat_map(|&i| augmented(&images[i].0, size, &mut rng))
                .collect();
            let x = Tensor::<4>::from_data(TensorData::new(pixels, [n, 3, side, side]), &ad);
            // One-hot targets scaled by the class weights, normalised over the batch.
            let mut targets = vec![0.0f32; n * CLASSES.len()];
            for (row, &i) in chunk.iter().enumerate() {
                let class = usize::from(images[i].1);
                targets[row * CLASSES.len() + class] = class_weight[class];
            }
            let total_weight: f32 = targets.iter().sum();
            let targets = Tensor::<2>::from_data(TensorData::new(targets, [n, CLASSES.len()]), &ad);
            let keep = 1.0 - DROPOUT;
            let mask: Vec<f32> = (0..n * last)
                .map(|_| {
                    if rng.unit() < keep {
                        (1.0 / keep) as f32
                    } else {
                        0.0
                    }
                })
                .collect();
            let mask = Tensor::<2>::from_data(TensorData::new(mask, [n, last]), &ad);

            let features = net.features_tapped(x, |_, _| {});
            let pooled = features.mean_dim(3).mean_dim(2).reshape([n, last]) * mask;
            let logits = linear_head(&net, pooled)?;
            let loss = (log_softmax(logits.clone(), 1) * targets)
                .sum()
                .neg()
                .div_scalar(total_weight);
            let grads = GradientsParams::from_grads(loss.backward(), &net);
            net = optim.step(settings.learning_rate, net, grads);

            let value = read(loss.detach())?[0];
            let predicted = face_column(logits.detach()).map_err(|e| TrainError::Device(e.to_string()))?;
            correct += chunk
                .iter()
                .zip(&predicted)
                .filter(|&(&i, &p)| (p >= FACE_THRESHOLD) == images[i].1)
                .count();
            loss_sum += value as f64 * n as f64;
            events(TrainEvent::Batch {
                epoch,
                batch: b + 1,
                batches,
                loss: value,
            });
        }

        let eval = net.valid();
        let (val_loss, val_accuracy) = evaluate(&eval, &images, &val_set, size, settings.batch_size, device)?;
        let stats = EpochStats {
            epoch,
            train_loss: (loss_sum / train_set.len() as f64) as f32,
            train_accuracy: correct as f32 / train_set.len() as f32,
            val_loss,
            val_accuracy,
        };
        let improved = best.as_ref().is_none_or(|(acc, loss, _, _)| {
            val_accuracy > *acc || (val_accuracy == *acc && val_loss < *loss)
        });
        if improved {
            best = Some((val_accuracy, val_loss, epoch, snapshot(&eval)?));
        }
        history.push(stats.clone());
        events(TrainEvent::Epoch {
            stats,
            best: improved,
        });
        let best_epoch = best.as_ref().map_or(epoch, |b| b.2);
        if settings.patience > 0 && epoch - best_epoch >= settings.patience && epoch < settings.epochs {
            stopped_early = true;
            events(TrainEvent::EarlyStop { epoch, best_epoch });
            break;
        }
    }

    let Some((_, _, best_epoch, tensors)) = best else {
        return Err(TrainError::Settings("no epoch ran".into()));
    };
    let info = ClassifierInfo {
        version: INFO_VERSION,
        classes: CLASSES.iter().map(|c| c.to_string()).collect(),
        input_size: size,
        preprocessing: "letterbox".into(),
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
        base: base_info,
        training: TrainingRecord {
            seed: settings.seed,
            epochs_asked: settings.epochs,
            batch_size: settings.batch_size,
            learning_rate: settings.learning_rate,
            patience: settings.patience,
            train_counts,
            val_counts,
            best_epoch,
            stopped_early,
            history,
        },
        created_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    };
    Ok(Trained { tensors, info })
}

fn check_settings(s: &TrainSettings) -> Result<(), TrainError> {
    let bad = |why: &str| Err(TrainError::Settings(why.into()));
    if s.epochs == 0 {
        return bad("epochs must be at least 1");
    }
    if s.batch_size == 0 {
        return bad("the batch size must be at least 1");
    }
    if !(s.learning_rate > 0.0 && s.learning_rate.is_finite()) {
        return bad("the learning rate must be a positive number");
    }
    if !(s.val_fraction > 0.0 && s.val_fraction < 1.0) {
        return bad("the validation share must be between 0 and 1");
    }
    if !(32..=1024).contains(&s.input_size) {
        return bad("the input size must be between 32 and 1024 pixels");
    }
    Ok(())
}

/// Per class: a shuffled share for validation (at least one photo, at most all but one).
fn split(images: &[(RgbImage, bool)], fraction: f64, rng: &mut Rng) -> (Vec<usize>, Vec<usize>) {
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for face in [false, true] {
        let mut idx: Vec<usize> = (0..images.len()).filter(|&i| images[i].1 == face).collect();
        rng.shuffle(&mut idx);
        let n_val = ((idx.len() as f64 * fraction).round() as usize).clamp(1, idx.len() - 1);
        val.extend_from_slice(&idx[..n_val]);
        train.extend_from_slice(&idx[n_val..]);
    }
    train.sort_unstable();
    val.sort_unstable();
    (train, val)
}

fn without_head(base: &TensorMap) -> TensorMap {
    let strip = base.tensors.keys().all(|k| k.starts_with("module."));
    TensorMap {
        tensors: base
            .tensors
            .iter()
            .map(|(k, v)| {
                let key = if strip {
                    k.trim_start_matches("module.").to_string()
                } else {
                    k.clone()
                };
                (key, v.clone())
            })
            .filter(|(k, _)| !k.starts_with("classifier."))
            .collect(),
    }
}

/// BatchNorm keeps its running statistics while training, and burn's own dropout stays off (the
/// masks are drawn from the seeded generator instead).
fn freeze_statistics(net: &mut MobileNetV2) {
    fn bn(op: &mut Op) {
        if let Op::Norm(norm) = op {
            freeze(norm);
        }
    }
    fn freeze(norm: &mut BatchNorm) {
        norm.training = norm.training.clone().with_value(false);
    }
    for feature in &mut net.features {
        match feature {
            Feature::ConvBnRelu6(ops) => ops.iter_mut().for_each(bn),
            Feature::Block(block) => {
                for part in &mut block.conv {
                    match part {
                        BlockPart::ConvBnRelu6(ops) => ops.iter_mut().for_each(bn),
                        BlockPart::Op(op) => bn(op),
                    }
                }
            }
        }
    }
    for part in &mut net.classifier {
        if let HeadPart::Dropout(d) = part {
            d.training = d.training.clone().with_value(false);
        }
    }
}

fn linear_head(net: &MobileNetV2, pooled: Tensor<2>) -> Result<Tensor<2>, TrainError> {
    net.classifier
        .iter()
        .find_map(|p| match p {
            HeadPart::Linear(l) => Some(l.forward(pooled.clone())),
            HeadPart::Dropout(_) => None,
        })
        .ok_or_else(|| TrainError::Settings("the network has no classifier".into()))
}

/// Mean cross-entropy and accuracy on `set`, unaugmented (the photo as screening sees it).
fn evaluate(
    net: &MobileNetV2,
    images: &[(RgbImage, bool)],
    set: &[usize],
    size: u32,
    batch: usize,
    device: &Device,
) -> Result<(f32, f32), TrainError> {
    let (mut loss, mut correct) = (0.0f64, 0usize);
    let side = size as usize;
    for chunk in set.chunks(batch) {
        let pixels: Vec<f32> = chunk
            .iter()
            .flat_map(|&i| letterbox(&images[i].0, size))
            .collect();
        let x = Tensor::<4>::from_data(TensorData::new(pixels, [chunk.len(), 3, side, side]), device);
        let faces = face_column(net.forward(x)).map_err(|e| TrainError::Device(e.to_string()))?;
        for (&i, &p) in chunk.iter().zip(&faces) {
            let is_face = images[i].1;
            let p_true = if is_face { p } else { 1.0 - p };
            loss -= (p_true.max(1e-7) as f64).ln();
            correct += usize::from((p >= FACE_THRESHOLD) == is_face);
        }
    }
    let n = set.len().max(1) as f64;
    Ok(((loss / n) as f32, (correct as f64 / n) as f32))
}

/// The network's weights under torchvision's keys, on the host.
fn snapshot(net: &MobileNetV2) -> Result<TensorMap, TrainError> {
    let mut out = TensorMap::default();
    for t in net.collect(None, Some(Box::new(BurnToPyTorchAdapter)), true) {
        if t.dtype != DType::F32 {
            continue;
        }
        let name = t.name.clone();
        let shape = t.shape.to_vec();
        let bytes = t
            .into_bytes()
            .map_err(|e| TrainError::Device(format!("reading {name}: {e:?}")))?;
        let values: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        out.tensors.insert(name, RawTensor::f32(shape, values));
    }
    Ok(out)
}

fn read(t: Tensor<1>) -> Result<Vec<f32>, TrainError> {
    t.into_data()
        .try_to_vec::<f32>()
        .map_err(|e| TrainError::Device(format!("{e:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_split_keeps_both_classes_on_both_sides() {
        let img = RgbImage::new(4, 4);
        let images: Vec<(RgbImage, bool)> = (0..7).map(|i| (img.clone(), i < 2)).collect();
        let (train, val) = split(&images, 0.2, &mut Rng::new(5));
        assert_eq!(train.len() + val.len(), 7);
        let faces_in = |set: &[usize]| set.iter().filter(|&&i| images[i].1).count();
        assert_eq!((faces_in(&train), faces_in(&val)), (1, 1));
        assert_eq!(
            val.len(),
            2,
            "one of each: 20% of 5 rounds to 1, of 2 is at least 1"
        );
        assert_eq!(
            split(&images, 0.2, &mut Rng::new(5)),
            (train, val),
            "the seed fixes the split"
        );
    }

    #[test]
    fn bad_settings_are_refused_with_the_reason() {
        let zero = TrainSettings {
            epochs: 0,
            ..TrainSettings::default()
        };
        assert!(matches!(check_settings(&zero), Err(TrainError::Settings(_))));
        let tiny = TrainSettings {
            input_size: 8,
            ..TrainSettings::default()
        };
        assert!(check_settings(&tiny).is_err());
        assert!(check_settings(&TrainSettings::default()).is_ok());
    }
}
