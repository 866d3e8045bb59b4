//! Casting virtual models in the background: generating candidates and finding imported faces on
//! the compute lane (StyleGAN2 and MTCNN stay loaded in the worker's network runtime), library file
//! work on the io lane. Every job reports through [`JobOutput::Cast`].

use std::path::PathBuf;
use std::sync::Arc;

use super::{Job, JobContext, JobError, JobOutput, Lane, MTCNN_ID};
use crate::cast::{
    DamagedEntry, GeneratedOrigin, GeneratorInfo, Latent, NewVirtualModel, NoiseSpec, Origin, VirtualModel,
    VirtualModelLibrary,
};
use crate::jobs::photos::PhotoImage;
use crate::nets::mtcnn::MtcnnNets;
use crate::pipeline::faces_text;
use crate::pipeline::generate::{GenerateSettings, NoiseChoice, generate, generator_info};
use crate::pipeline::runtime::{NetKey, NetworkCache};
use crate::pipeline::virtual_face::{PhotoFaces, find_faces, imported_model, prepare_generated};
use crate::weights::models::LoadedStyleGan2;
use crate::weights::store::WeightsStore;

/// Side of the library and candidate thumbnails handed to the UI.
pub const CAST_THUMB_SIDE: u32 = 192;

/// A generated face not saved yet.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub seed: u32,
    pub truncation: f64,
    pub noise: NoiseSpec,
    pub image: Arc<image::RgbImage>,
    pub thumbnail: Arc<PhotoImage>,
    pub latent: Arc<Latent>,
    pub generator: GeneratorInfo,
}

/// One library entry as the UI lists it.
#[derive(Debug, Clone)]
pub struct LibraryItem {
    pub model: VirtualModel,
    /// The aligned crop, small; None when it could not be read (the reason is logged).
    pub thumbnail: Option<Arc<PhotoImage>>,
}

#[derive(Debug, Clone)]
pub enum CastOutput {
    /// A candidate of a generation run, `index` in the order of the seeds asked for.
    Candidate { index: usize, candidate: Candidate },
    /// The library as it is now.
    Library {
        items: Vec<LibraryItem>,
        damaged: Vec<DamagedEntry>,
    },
    /// A model was saved (created, duplicated, renamed or brought back); `note` says how.
    Saved { model: VirtualModel, note: String },
    /// A model was moved to the deleted-models folder.
    Deleted { model: VirtualModel },
    /// The faces found in photos being imported, or why a photo gave none (names the file).
    ImportFaces {
        photos: Vec<Result<ImportPhoto, String>>,
    },
}

/// A photo being imported: its faces, and a small aligned view of each to choose from.
#[derive(Debug, Clone)]
pub struct ImportPhoto {
    pub faces: Arc<PhotoFaces>,
    pub previews: Vec<Arc<PhotoImage>>,
}

fn failed(e: impl std::fmt::Display) -> JobError {
    JobError::Failed(e.to_string())
}

/// StyleGAN2 from the network runtime, loaded on first use (and again when its file was replaced),
/// with MTCNN when it is installed.
pub(crate) fn with_stylegan2<T>(
    ctx: &JobContext,
    store: &WeightsStore,
    f: impl FnOnce(&LoadedStyleGan2, Option<&MtcnnNets>) -> Result<T, JobError>,
) -> Result<T, JobError> {
    let mut cache = ctx.model_cache();
    let key = cache.stylegan2(store, &ctx.compute().device).map_err(failed)?;
    let mtcnn_key = mtcnn_into(&mut cache, store, ctx);
    let detector = mtcnn_key.as_ref().and_then(|k| cache.get(k).ok());
    let model = cache.get(&key).map_err(failed)?;
    f(model, detector)
}

/// The generator a candidate run asked for: a trained one by name, else the installed StyleGAN2.
fn with_generator<T>(
    ctx: &JobContext,
    store: &WeightsStore,
    trained: Option<&str>,
    f: impl FnOnce(&LoadedStyleGan2) -> Result<T, JobError>,
) -> Result<T, JobError> {
    let Some(name) = trained else {
        return with_stylegan2(ctx, store, |loaded, _| f(loaded));
    };
    let mut cache = ctx.model_cache();
    let key = cache
        .trained_stylegan2(store.data_dir(), name, &ctx.compute().device)
        .map_err(failed)?;
    f(cache.get(&key).map_err(failed)?)
}

/// Loads MTCNN into the runtime when it is installed; its key, or None without it.
fn mtcnn_into(cache: &mut NetworkCache, store: &WeightsStore, ctx: &JobContext) -> Option<NetKey<MtcnnNets>> {
    store.require(MTCNN_ID).ok()?;
    match cache.mtcnn(store, &ctx.compute().device) {
        Ok(key) => Some(key),
        Err(e) => {
            tracing::warn!("{e}");
            None
        }
    }
}

/// Generates one candidate per seed, reporting each as it is done.
#[derive(Debug, Clone)]
pub struct GenerateCandidates {
    pub store: WeightsStore,
    pub seeds: Vec<u32>,
    pub truncation: f64,
    pub noise: NoiseChoice,
    /// A generator trained in Facecast (`generators/<name>`); None: the installed StyleGAN2.
    pub trained: Option<String>,
}

impl Job for GenerateCandidates {
    fn label(&self) -> String {
        format!("Generating {}", faces_text(self.seeds.len()))
    }

    fn lane(&self) -> Lane {
        Lane::Compute
    }

    fn run(self: Box<Self>, ctx: &JobContext) -> Result<(), JobError> {
        let total = self.seeds.len();
        ctx.progress(0, total);
        with_generator(ctx, &self.store, self.trained.as_deref(), |loaded| {
            let mut info = generator_info(loaded);
            if let Some(name) = &self.trained {
                // As `virtual generate --generator`: a trained generator is found by its name.
                info.weights = format!("generators/{name}");
            }
            for (index, &seed) in self.seeds.iter().enumerate() {
                ctx.check_cancelled()?;
                let settings = GenerateSettings {
                    seed,
                    truncation: self.truncation,
                    noise: self.noise,
                };
                let generated = generate(&loaded.model, &settings).map_err(failed)?;
                let thumbnail = Arc::new(thumbnail(&generated.image));
                emit(
                    ctx,
                    CastOutput::Candidate {
                        index,
                        candidate: Candidate {
                            seed,
                            truncation: generated.truncation,
                            noise: generated.noise,
                            image: Arc::new(generated.image),
                            thumbnail,
                            latent: Arc::new(generated.latent),
                            generator: info.clone(),
                        },
                    },
                );
                ctx.progress(index + 1, total);
            }
            Ok(())
        })
    }
}

/// Saves a candidate under a name: MTCNN (when installed) places the landmarks, else the FFHQ
/// positions do.
#[derive(Debug, Clone)]
pub struct SaveCandidate {
    pub store: WeightsStore,
    pub library: VirtualModelLibrary,
    pub name: String,
    pub candidate: Candidate,
}

impl Job for SaveCandidate {
    fn label(&self) -> String {
        format!("Saving {}", self.name)
    }

    fn lane(&self) -> Lane {
        Lane::Compute
    }

    fn run(self: Box<Self>, ctx: &JobContext) -> Result<(), JobError> {
        let prepared = {
            let mut cache = ctx.model_cache();
            let key = mtcnn_into(&mut cache, &self.store, ctx);
            let detector = key.as_ref().and_then(|k| cache.get(k).ok());
            let device = &ctx.compute().device;
            prepare_generated(&self.candidate.image, detector.map(|d| (d, device))).map_err(failed)?
        };
        let c = &self.candidate;
        let model = self
            .library
            .create(NewVirtualModel {
                name: self.name.clone(),
                parent: None,
                origin: Origin::Generated(GeneratedOrigin {
                    seed: Some(c.seed),
                    truncation: c.truncation,
                    noise: c.noise,
                    z_rng: crate::cast::model::Z_RNG.to_string(),
                    generator: c.generator.clone(),
                    latent_file: String::new(),
                    edits: Vec::new(),
                }),
                face: (*c.image).clone(),
                face_landmarks: prepared.landmarks,
                landmarks_from: prepared.from,
                crops: vec![prepared.crop],
                latent: Some((*c.latent).clone()),
                identity: None,
            })
            .map_err(failed)?;
        let note = format!("Saved {} ({})", model.name, prepared.from.describe());
        emit(ctx, CastOutput::Saved { model, note });
        emit_listing(ctx, &self.library)
    }
}

/// Finds the faces of photos to import (MTCNN is required).
#[derive(Debug, Clone)]
pub struct FindImportFaces {
    pub store: WeightsStore,
    pub paths: Vec<PathBuf>,
}

impl Job for FindImportFaces {
    fn label(&self) -> String {
        match self.paths.len() {
            1 => "Finding the face in 1 photo".to_string(),
            n => format!("Finding the faces in {n} photos"),
        }
    }

    fn lane(&self) -> Lane {
        Lane::Compute
    }

    fn run(self: Box<Self>, ctx: &JobContext) -> Result<(), JobError> {
        self.store.require(MTCNN_ID).map_err(|e| {
            JobError::Failed(format!(
                "Importing a face photo needs MTCNN, the face detector: {e}"
            ))
        })?;
        let total = self.paths.len();
        ctx.progress(0, total);
        let mut cache = ctx.model_cache();
        let key = mtcnn_into(&mut cache, &self.store, ctx)
            .ok_or_else(|| JobError::Failed("MTCNN could not be loaded (see the log)".into()))?;
        let nets = cache.get(&key).map_err(failed)?;
        let mut photos = Vec::new();
        for (i, path) in self.paths.iter().enumerate() {
            ctx.check_cancelled()?;
            photos.push(
                find_faces(path, nets, &ctx.compute().device)
                    .map(|faces| ImportPhoto {
                        previews: (0..faces.faces.len())
                            // A face that cannot be aligned still needs its place in the row.
                            .map(|i| {
                                faces
                                    .face_preview(i)
                                    .unwrap_or_else(|| image::RgbImage::new(64, 64))
                            })
                            .map(|crop| Arc::new(thumbnail(&crop)))
                            .collect(),
                        faces: Arc::new(faces),
                    })
                    .map_err(|e| e.to_string()),
            );
            ctx.progress(i + 1, total);
        }
        emit(ctx, CastOutput::ImportFaces { photos });
        Ok(())
    }
}

/// Saves the chosen faces (0-based index per photo) as one virtual model.
#[derive(Debug, Clone)]
pub struct SaveImport {
    pub library: VirtualModelLibrary,
    pub name: String,
    pub picks: Vec<(Arc<PhotoFaces>, usize)>,
}

impl Job for SaveImport {
    fn label(&self) -> String {
        format!("Saving {}", self.name)
    }

    fn lane(&self) -> Lane {
        Lane::Io
    }

    fn run(self: Box<Self>, ctx: &JobContext) -> Result<(), JobError> {
        let picks: Vec<(&PhotoFaces, usize)> = self.picks.iter().map(|(p, i)| (p.as_ref(), *i)).collect();
        let new = imported_model(&self.name, &picks).map_err(failed)?;
        let model = self.library.create(new).map_err(failed)?;
        let note = format!("Saved {} ({})", model.name, model.origin.summary());
        emit(ctx, CastOutput::Saved { model, note });
        emit_listing(ctx, &self.library)
    }
}

/// A change to the library, followed by the fresh listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LibraryOp {
    List,
    Rename { id: String, name: String },
    Duplicate { id: String },
    Delete { id: String },
    Undelete { id: String },
}

#[derive(Debug, Clone)]
pub struct LibraryJob {
    pub library: VirtualModelLibrary,
    pub op: LibraryOp,
}

impl Job for LibraryJob {
    fn label(&self) -> String {
        match &self.op {
            LibraryOp::List => "Reading the virtual models".into(),
            LibraryOp::Rename { name, .. } => format!("Renaming to {name}"),
            LibraryOp::Duplicate { .. } => "Duplicating a virtual model".into(),
            LibraryOp::Delete { .. } => "Deleting a virtual model".into(),
            LibraryOp::Undelete { .. } => "Bringing a virtual model back".into(),
        }
    }

    fn lane(&self) -> Lane {
        Lane::Io
    }

    fn run(self: Box<Self>, ctx: &JobContext) -> Result<(), JobError> {
        let lib = &self.library;
        let result = match &self.op {
            LibraryOp::List => Ok(()),
            LibraryOp::Rename { id, name } => lib.rename(id, name).map(|model| {
                let note = format!("Renamed to {}", model.name);
                emit(ctx, CastOutput::Saved { model, note });
            }),
            LibraryOp::Duplicate { id } => lib.duplicate(id, None).map(|model| {
                let note = format!("Duplicated as {}", model.name);
                emit(ctx, CastOutput::Saved { model, note });
            }),
            LibraryOp::Delete { id } => lib
                .delete(id)
                .map(|model| emit(ctx, CastOutput::Deleted { model })),
            LibraryOp::Undelete { id } => lib.undelete(id).map(|model| {
                let note = format!("{} is back", model.name);
                emit(ctx, CastOutput::Saved { model, note });
            }),
        };
        // The listing goes out even after a failure, so the panel shows what really is on disk.
        let listed = emit_listing(ctx, lib);
        result.map_err(failed)?;
        listed
    }
}

pub(crate) fn emit_listing(ctx: &JobContext, library: &VirtualModelLibrary) -> Result<(), JobError> {
    let listing = library.list().map_err(failed)?;
    let items = listing
        .models
        .into_iter()
        .map(|model| {
            let thumbnail = model.crop_paths().first().and_then(|p| {
                match crate::io::load_photo(p, &crate::io::DecodeLimits::default()) {
                    Ok(photo) => Some(Arc::new(thumbnail(&photo.rgb))),
                    Err(e) => {
                        tracing::warn!("{e}");
                        None
                    }
                }
            });
            LibraryItem { model, thumbnail }
        })
        .collect();
    emit(
        ctx,
        CastOutput::Library {
            items,
            damaged: listing.damaged,
        },
    );
    Ok(())
}

fn thumbnail(rgb: &image::RgbImage) -> PhotoImage {
    let small = crate::io::thumbnail(rgb, CAST_THUMB_SIDE);
    image::DynamicImage::ImageRgb8(small).into_rgba8()
}

fn emit(ctx: &JobContext, output: CastOutput) {
    ctx.output(JobOutput::Cast(Box::new(output)));
}
