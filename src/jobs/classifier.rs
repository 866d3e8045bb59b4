//! The face/no-face classifier's jobs: checking what is installed, asking it about library photos
//! (the second opinion), and training it from the photos the operator marked, on the compute lane
//! with progress and cancel.

use std::path::PathBuf;
use std::sync::Arc;

use image::RgbImage;

use super::photos::{PhotoId, photo_pixels};
use super::{Job, JobContext, JobError, JobOutput, Lane};
use crate::pipeline::classifier::train::{LabelledPhoto, TrainEvent, TrainSettings, train};
use crate::pipeline::classifier::{
    ClassifierError, ClassifierInfo, EpochStats, FaceClassifier, base_from_store, install, read_info,
};
use crate::weights::models::FACE_CLASSIFIER_ID;
use crate::weights::store::{StoreError, WeightsStore};

/// What the UI shows about an installed classifier.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassifierSummary {
    pub path: PathBuf,
    /// Validation accuracy of the kept epoch.
    pub val_accuracy: f32,
    pub best_epoch: usize,
    /// Photos it learned from (training and validation).
    pub photos: usize,
    /// Trained from reduced-width test weights rather than the ImageNet network.
    pub reduced_base: bool,
}

impl ClassifierSummary {
    fn from_info(path: PathBuf, info: &ClassifierInfo) -> ClassifierSummary {
        let t = &info.training;
        ClassifierSummary {
            path,
            val_accuracy: info.val_accuracy().unwrap_or(0.0),
            best_epoch: t.best_epoch,
            photos: t.train_counts.iter().chain(&t.val_counts).sum(),
            reduced_base: info.base.reduced,
        }
    }
}

/// What classifier jobs report.
#[derive(Debug, Clone)]
pub enum ClassifierOutput {
    /// The installed classifier (`None`: none installed yet), or why it cannot be used.
    Status(Result<Option<ClassifierSummary>, String>),
    /// The classifier's face probability for one photo, or why it could not be asked.
    Opinion {
        photo: PhotoId,
        result: Result<f32, String>,
    },
    /// One training epoch ended.
    Epoch(EpochStats),
    /// Training finished and the new classifier is installed.
    Trained(ClassifierSummary),
}

fn send(ctx: &JobContext, output: ClassifierOutput) {
    ctx.output(JobOutput::Classifier(output));
}

/// Whether a classifier is installed, without loading it.
#[derive(Debug, Clone)]
pub struct CheckClassifier {
    pub store: WeightsStore,
}

impl Job for CheckClassifier {
    fn label(&self) -> String {
        "Checking the face classifier".into()
    }

    fn lane(&self) -> Lane {
        Lane::Io
    }

    fn run(self: Box<Self>, ctx: &JobContext) -> Result<(), JobError> {
        send(ctx, ClassifierOutput::Status(installed(&self.store)));
        Ok(())
    }
}

fn installed(store: &WeightsStore) -> Result<Option<ClassifierSummary>, String> {
    match store.require(FACE_CLASSIFIER_ID) {
        Ok(files) => {
            let path = files.into_iter().next().ok_or("the classifier has no file")?;
            let info = read_info(&path).map_err(|e| e.to_string())?;
            Ok(Some(ClassifierSummary::from_info(path, &info)))
        }
        Err(StoreError::NotInstalled { reason, .. }) if reason.starts_with("missing") => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// One library photo to ask about.
#[derive(Debug, Clone)]
pub struct ScreenTarget {
    pub photo: PhotoId,
    pub path: PathBuf,
    pub rgb: Option<Arc<RgbImage>>,
}

/// The classifier's second opinion on a batch of photos.
#[derive(Debug, Clone)]
pub struct ScreenPhotos {
    pub store: WeightsStore,
    pub photos: Vec<ScreenTarget>,
}

impl Job for ScreenPhotos {
    fn label(&self) -> String {
        format!("Face classifier: {} photo(s)", self.photos.len())
    }

    fn lane(&self) -> Lane {
        Lane::Compute
    }

    fn run(self: Box<Self>, ctx: &JobContext) -> Result<(), JobError> {
        let total = self.photos.len();
        ctx.progress(0, total);
        let failed = |e: crate::pipeline::runtime::RuntimeError| JobError::Failed(e.to_string());
        let mut cache = ctx.model_cache();
        let key = cache
            .classifier(&self.store, &ctx.compute().device)
            .map_err(failed)?;
        let classifier = cache.get(&key).map_err(failed)?;
        for (done, target) in self.photos.iter().enumerate() {
            ctx.check_cancelled()?;
            let result = opinion(classifier, target, ctx);
            send(
                ctx,
                ClassifierOutput::Opinion {
                    photo: target.photo,
                    result,
                },
            );
            ctx.progress(done + 1, total);
        }
        Ok(())
    }
}

fn opinion(classifier: &FaceClassifier, target: &ScreenTarget, ctx: &JobContext) -> Result<f32, String> {
    let decoded;
    let rgb = match &target.rgb {
        Some(rgb) => rgb.as_ref(),
        None => {
            decoded = photo_pixels(&target.path).map_err(|e| e.to_string())?;
            &decoded
        }
    };
    let p = classifier
        .face_probability(&[rgb], &ctx.compute().device)
        .map_err(|e| format!("{}: {e}", target.path.display()))?;
    p.first()
        .copied()
        .ok_or_else(|| format!("{}: the classifier gave no answer", target.path.display()))
}

/// Fine-tunes a new classifier from marked photos and installs it.
#[derive(Debug, Clone)]
pub struct TrainClassifier {
    pub store: WeightsStore,
    pub photos: Vec<LabelledPhoto>,
    pub settings: TrainSettings,
}

impl Job for TrainClassifier {
    fn label(&self) -> String {
        format!("Training the face classifier on {} photos", self.photos.len())
    }

    fn lane(&self) -> Lane {
        Lane::Compute
    }

    fn run(self: Box<Self>, ctx: &JobContext) -> Result<(), JobError> {
        let failed = |e: ClassifierError| JobError::Failed(e.to_string());
        let base = base_from_store(&self.store).map_err(failed)?;
        let mut total = 0;
        let mut done = 0;
        let mut on_event = |event: TrainEvent| match event {
            TrainEvent::Loading {
                done: read,
                total: photos,
            } => ctx.progress(read, photos),
            TrainEvent::Started {
                batches_per_epoch,
                epochs,
                ..
            } => {
                total = batches_per_epoch * epochs;
                ctx.progress(0, total);
            }
            TrainEvent::Batch { .. } => {
                done += 1;
                ctx.progress(done, total);
            }
            TrainEvent::Epoch { stats, .. } => send(ctx, ClassifierOutput::Epoch(stats)),
            TrainEvent::Skipped { .. } | TrainEvent::EarlyStop { .. } => {}
        };
        let trained = train(
            &base.tensors,
            &base.path,
            base.info.clone(),
            &self.photos,
            &self.settings,
            &ctx.compute().device,
            &mut on_event,
            &|| ctx.is_cancelled(),
        )
        .map_err(|e| match e {
            crate::pipeline::classifier::train::TrainError::Cancelled => JobError::Cancelled,
            other => JobError::Failed(other.to_string()),
        })?;
        let path = install(&self.store, &trained).map_err(failed)?;
        send(
            ctx,
            ClassifierOutput::Trained(ClassifierSummary::from_info(path, &trained.info)),
        );
        Ok(())
    }
}
