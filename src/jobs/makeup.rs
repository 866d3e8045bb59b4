//! Makeup jobs: reading and changing the reference library, and applying BeautyGAN to a photo's
//! chosen faces on the compute lane. BeautyGAN and MTCNN are loaded once into the worker's network
//! runtime (MTCNN shared with detection).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use image::RgbImage;
use image::imageops::crop_imm;

use super::photo_edit::{current_pixels, step_failed};
use super::photos::PhotoId;
use super::{Job, JobContext, JobError, JobOutput, Lane};
use crate::io::thumbnail;
use crate::nets::beautygan::Generator;
use crate::nets::mtcnn::MtcnnNets;
use crate::pipeline::detect::Face;
use crate::pipeline::faces_text;
use crate::pipeline::makeup::MakeupSettings;
use crate::pipeline::makeup::references::{Reference, ReferenceLibrary, import_reference};
use crate::pipeline::runtime::NetworkCache;
use crate::pipeline::steps::makeup_step;
use crate::pipeline::warmup::WarmNetwork;
use crate::weights::models::BEAUTYGAN_ID;
use crate::weights::store::WeightsStore;

/// What makeup jobs report to the UI.
#[derive(Debug, Clone)]
pub enum MakeupOutput {
    /// The library as now on disk: usable references and the entries that were skipped.
    References {
        references: Vec<Reference>,
        problems: Vec<String>,
    },
    /// A photo became a reference (it is also in the next `References`). Boxed: a reference is
    /// large and every job event carries the size of the largest output.
    Imported { reference: Box<Reference> },
    /// Whether BeautyGAN is installed and usable; the error says what is missing or wrong.
    Weights(Result<(), String>),
    /// The faces' region before and after a makeup edit, small, for the before/after view.
    Compare {
        photo: PhotoId,
        before: Arc<RgbImage>,
        after: Arc<RgbImage>,
    },
}

/// Checks BeautyGAN's install in the background (hashing a 35 MB file is not for the UI thread).
#[derive(Debug, Clone)]
pub struct CheckMakeupWeights {
    pub store: WeightsStore,
}

impl Job for CheckMakeupWeights {
    fn label(&self) -> String {
        "Checking BeautyGAN".into()
    }

    fn lane(&self) -> Lane {
        Lane::Io
    }

    fn run(self: Box<Self>, ctx: &JobContext) -> Result<(), JobError> {
        let result = match self.store.status(BEAUTYGAN_ID) {
            Ok(state) if state.status.is_usable() => Ok(()),
            Ok(state) => Err(state.status.describe()),
            Err(e) => Err(e.to_string()),
        };
        ctx.output(JobOutput::Makeup(MakeupOutput::Weights(result)));
        Ok(())
    }
}

/// Reads the reference library (at start, and after every change).
#[derive(Debug, Clone)]
pub struct LoadReferences {
    pub data_dir: PathBuf,
}

impl Job for LoadReferences {
    fn label(&self) -> String {
        "Reading the makeup references".into()
    }

    fn lane(&self) -> Lane {
        Lane::Io
    }

    fn run(self: Box<Self>, ctx: &JobContext) -> Result<(), JobError> {
        send_listing(ctx, &self.data_dir)
    }
}

fn send_listing(ctx: &JobContext, data_dir: &Path) -> Result<(), JobError> {
    let listing = ReferenceLibrary::new(data_dir)
        .list()
        .map_err(|e| JobError::Failed(e.to_string()))?;
    ctx.output(JobOutput::Makeup(MakeupOutput::References {
        references: listing.references,
        problems: listing.problems,
    }));
    Ok(())
}

/// Imports the most prominent face of each photo as a reference (MTCNN on the compute lane).
#[derive(Debug, Clone)]
pub struct ImportReferences {
    pub store: WeightsStore,
    pub photos: Vec<PathBuf>,
}

impl Job for ImportReferences {
    fn label(&self) -> String {
        match self.photos.len() {
            1 => "Importing a makeup reference".into(),
            n => format!("Importing {n} makeup references"),
        }
    }

    fn lane(&self) -> Lane {
        Lane::Compute
    }

    fn run(self: Box<Self>, ctx: &JobContext) -> Result<(), JobError> {
        let total = self.photos.len();
        ctx.progress(0, total);
        let library = ReferenceLibrary::new(self.store.data_dir());
        let mut cache = ctx.model_cache();
        let nets = cached_mtcnn(&mut cache, &self.store, ctx)?;
        let mut failures = Vec::new();
        for (done, photo) in self.photos.iter().enumerate() {
            ctx.check_cancelled()?;
            match import_reference(&library, nets, photo, None, &ctx.compute().device) {
                Ok(reference) => ctx.output(JobOutput::Makeup(MakeupOutput::Imported {
                    reference: Box::new(reference),
                })),
                Err(e) => failures.push(e.to_string()),
            }
            ctx.progress(done + 1, total);
        }
        drop(cache);
        send_listing(ctx, self.store.data_dir())?;
        if failures.is_empty() {
            Ok(())
        } else {
            Err(JobError::Failed(failures.join("; ")))
        }
    }
}

/// Deletes a reference from the library.
#[derive(Debug, Clone)]
pub struct RemoveReference {
    pub data_dir: PathBuf,
    pub id: String,
}

impl Job for RemoveReference {
    fn label(&self) -> String {
        "Removing a makeup reference".into()
    }

    fn lane(&self) -> Lane {
        Lane::Io
    }

    fn run(self: Box<Self>, ctx: &JobContext) -> Result<(), JobError> {
        ReferenceLibrary::new(&self.data_dir)
            .remove(&self.id)
            .map_err(|e| JobError::Failed(e.to_string()))?;
        send_listing(ctx, &self.data_dir)
    }
}

/// Puts a reference's makeup on faces of one photo, starting from its current edit when it has
/// one; the result becomes the photo's next (undoable) version.
#[derive(Debug, Clone)]
pub struct ApplyMakeup {
    pub store: WeightsStore,
    pub photo: PhotoId,
    pub path: PathBuf,
    /// The photo's current edit, if any; else the file is decoded.
    pub source: Option<Arc<RgbImage>>,
    /// The faces to make up, in the photo's pixels.
    pub faces: Vec<Face>,
    pub reference: Reference,
    pub settings: MakeupSettings,
}

impl Job for ApplyMakeup {
    fn label(&self) -> String {
        format!("Makeup \u{201c}{}\u{201d}", self.reference.name())
    }

    fn lane(&self) -> Lane {
        Lane::Compute
    }

    fn run(self: Box<Self>, ctx: &JobContext) -> Result<(), JobError> {
        let ApplyMakeup {
            store,
            photo,
            path,
            source,
            faces,
            reference,
            settings,
        } = *self;
        let total = faces.len() + 1;
        ctx.progress(0, total);
        let before = current_pixels(&source, &path)?;
        let mut cache = ctx.model_cache();
        super::warmup::note_first_use(ctx, &mut cache, &[WarmNetwork::BeautyGan]);
        let generator = cached_beautygan(&mut cache, &store, ctx)?;
        ctx.progress(1, total);
        let name = reference.name().to_string();
        let strength = (settings.strength.clamp(0.0, 1.0) * 100.0).round();
        // The export's own step, so the section's result is the pixels an export writes.
        let step = makeup_step(generator, reference, settings, &store, &ctx.compute().device);
        let made_up = step
            .make_up((*before).clone(), &faces, |done, _| {
                ctx.progress(1 + done, total);
                !ctx.is_cancelled()
            })
            .map_err(|e| step_failed(&path, e))?;
        let image = made_up.image;
        let (x0, y0, x1, y1) = faces_region(&faces, image.width(), image.height());
        let cut = |img: &RgbImage| {
            Arc::new(thumbnail(
                &crop_imm(img, x0, y0, x1 - x0, y1 - y0).to_image(),
                320,
            ))
        };
        ctx.output(JobOutput::Makeup(MakeupOutput::Compare {
            photo,
            before: cut(&before),
            after: cut(&image),
        }));
        let mut notes = vec![format!(
            "reference \u{201c}{name}\u{201d} at {strength}% strength"
        )];
        notes.extend(made_up.notes);
        ctx.output(JobOutput::Edited {
            photo,
            label: format!("Makeup (BeautyGAN), {}", faces_text(faces.len())),
            image: Arc::new(image),
            notes,
        });
        Ok(())
    }
}

/// The faces' boxes with half a face of margin, clipped to the photo and never empty.
fn faces_region(faces: &[Face], width: u32, height: u32) -> (u32, u32, u32, u32) {
    let mut r = [f32::MAX, f32::MAX, f32::MIN, f32::MIN];
    for f in faces {
        let m = 0.5 * (f.bbox[2] - f.bbox[0]).max(f.bbox[3] - f.bbox[1]);
        r = [
            r[0].min(f.bbox[0] - m),
            r[1].min(f.bbox[1] - m),
            r[2].max(f.bbox[2] + m),
            r[3].max(f.bbox[3] + m),
        ];
    }
    let clip = |v: f32, hi: u32| {
        if v.is_finite() {
            v.clamp(0.0, hi as f32) as u32
        } else {
            0
        }
    };
    let (x0, y0) = (
        clip(r[0], width.saturating_sub(1)),
        clip(r[1], height.saturating_sub(1)),
    );
    let (x1, y1) = (clip(r[2], width).max(x0 + 1), clip(r[3], height).max(y0 + 1));
    (x0, y0, x1.min(width.max(1)), y1.min(height.max(1)))
}

fn runtime_failed(e: crate::pipeline::runtime::RuntimeError) -> JobError {
    JobError::Failed(e.to_string())
}

/// The store's BeautyGAN, loaded once per installed file.
fn cached_beautygan<'c>(
    cache: &'c mut NetworkCache,
    store: &WeightsStore,
    ctx: &JobContext,
) -> Result<&'c Generator, JobError> {
    let key = cache
        .beautygan(store, &ctx.compute().device)
        .map_err(runtime_failed)?;
    cache.get(&key).map_err(runtime_failed)
}

/// The store's MTCNN, shared with detection.
fn cached_mtcnn<'c>(
    cache: &'c mut NetworkCache,
    store: &WeightsStore,
    ctx: &JobContext,
) -> Result<&'c MtcnnNets, JobError> {
    let key = cache
        .mtcnn(store, &ctx.compute().device)
        .map_err(runtime_failed)?;
    cache.get(&key).map_err(runtime_failed)
}
