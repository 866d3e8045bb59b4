//! StyleCLIP text edits on the compute lane: the window's live preview and "save as new version".
//!
//! The networks load once and stay in the worker's model cache (StyleGAN2 shared with casting),
//! with the prompt embeddings (one text-encoder pass per prompt) and the relevance of the last
//! prompt pair, so a slider move costs one threshold and one render. A job checks for cancellation
//! between its steps: the window cancels a preview as soon as a newer one is asked for.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use burn::tensor::{Device, Tensor, TensorData};
use image::RgbImage;

use super::{Job, JobContext, JobError, JobOutput, Lane};
use crate::cast::{CastError, EditRecord, Latent, NewVirtualModel, NoiseSpec, VirtualModel, VirtualModelLibrary};
use crate::jobs::cast::{CastOutput, emit_listing, with_stylegan2};
use crate::nets::mtcnn::MtcnnNets;
use crate::nets::styleclip::global::GlobalDirections;
use crate::nets::styleclip::mapper::{LevelsMapper, MapperInfo};
use crate::nets::stylegan2::StyleGan2;
use crate::pipeline::generate;
use crate::pipeline::text_edit::{
    self, EditedFace, GlobalEditor, PromptCache, PromptPair, TextEditRecord, prompt_pair,
};
use crate::pipeline::virtual_face::prepare_generated;
use crate::weights::models::{self, ClipText};
use crate::weights::store::WeightsStore;

/// The face to edit: a generated virtual model's latent, as plain numbers.
#[derive(Debug, Clone)]
pub struct EditSubject {
    /// For labels ("Editing Ava").
    pub name: String,
    /// `[n_latent, style_dim]`, row-major.
    pub wplus: Arc<Vec<f32>>,
    pub n_latent: usize,
    pub style_dim: usize,
    /// The S offset of earlier global edits (StyleCLIP's `fs3` indexing).
    pub s_conv_delta: Option<Arc<Vec<f32>>>,
    /// The noise the face was generated with (an edit keeps it, so only the edit changes).
    pub noise: NoiseSpec,
}

/// The edit subject of a library model; None for a model imported from photos.
pub fn subject_of(model: &VirtualModel) -> Result<Option<EditSubject>, CastError> {
    let Some(generated) = model.generated() else {
        return Ok(None);
    };
    let latent = model.latent()?.ok_or_else(|| CastError::Damaged {
        path: model.dir().join(&generated.latent_file),
        reason: "a generated virtual model without its latent".into(),
    })?;
    Ok(Some(EditSubject {
        name: model.name.clone(),
        wplus: Arc::new(latent.wplus),
        n_latent: latent.n_latent,
        style_dim: latent.style_dim,
        s_conv_delta: latent.s_conv_delta.map(Arc::new),
        noise: generated.noise,
    }))
}

/// What to do to the face.
#[derive(Debug, Clone, PartialEq)]
pub enum EditRequest {
    /// A global-direction edit. `neutral` None: derived from the prompt ([`prompt_pair`]). `beta`
    /// None: StyleCLIP's automatic threshold for the pair.
    Global {
        prompt: String,
        neutral: Option<String>,
        alpha: f32,
        beta: Option<f32>,
    },
    /// A latent mapper of the store, with a strength (1 = the official step).
    Mapper { id: String, strength: f32 },
}

/// The result of one edit job, as the window receives it.
#[derive(Debug, Clone)]
pub struct TextEditPreview {
    /// The window's number for the request, so late results of older requests are ignored.
    pub tag: u64,
    pub image: Arc<RgbImage>,
    /// The text pair used (global edits).
    pub pair: Option<PromptPair>,
    /// The threshold used (the automatic one when none was given).
    pub beta: Option<f32>,
    /// The highest threshold that still keeps a channel for this pair.
    pub max_relevance: Option<f32>,
    pub channels: Option<usize>,
    pub changed: bool,
    pub note: Option<String>,
    pub record: TextEditRecord,
    /// The edited latent and S offset, to save as a new version.
    pub wplus: Arc<Vec<f32>>,
    pub s_conv_delta: Option<Arc<Vec<f32>>>,
}

/// The text-edit networks and caches the worker keeps between jobs (each network loads once per
/// file; a reinstalled file loads again).
#[derive(Default)]
pub struct TextEditCache {
    clip: Option<(PathBuf, ClipText)>,
    global: Option<(PathBuf, GlobalDirections)>,
    mappers: HashMap<PathBuf, (LevelsMapper, MapperInfo)>,
    prompts: PromptCache,
    /// The relevance of the last prompt pair (key: target and neutral text).
    relevance: Option<(String, Arc<Vec<f32>>)>,
}

/// Progress steps of an edit: networks, prompts, relevance, render.
const STEPS: usize = 4;

/// The model-cache key of [`TextEditCache`].
const CACHE_KEY: &str = "text-edit";

/// The worker's [`TextEditCache`], created on first use.
pub fn shared_cache(ctx: &JobContext) -> Result<Arc<Mutex<TextEditCache>>, JobError> {
    let mut cache = ctx.model_cache();
    if !cache.contains(CACHE_KEY) {
        cache.insert(
            CACHE_KEY.to_string(),
            Arc::new(Mutex::new(TextEditCache::default())),
        );
    }
    cache
        .get::<Arc<Mutex<TextEditCache>>>(CACHE_KEY)
        .cloned()
        .ok_or_else(|| JobError::Failed("the text-edit cache entry has the wrong type".into()))
}

fn lock(cache: &Mutex<TextEditCache>) -> std::sync::MutexGuard<'_, TextEditCache> {
    // A panic in an earlier job leaves loaded networks that are still whole.
    cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn failed(e: impl std::fmt::Display) -> JobError {
    JobError::Failed(e.to_string())
}

impl TextEditCache {
    fn load_clip(&mut self, store: &WeightsStore, device: &Device) -> Result<(), JobError> {
        let path = installed(store, models::CLIP_TEXT_ID)?;
        if self.clip.as_ref().is_some_and(|(p, _)| *p == path) {
            return Ok(());
        }
        let clip = models::load_clip_installed(store, device).map_err(failed)?;
        // Embeddings of another CLIP are meaningless with this one.
        self.prompts = PromptCache::default();
        self.relevance = None;
        self.clip = Some((path, clip));
        Ok(())
    }

    fn load_global(&mut self, store: &WeightsStore, device: &Device) -> Result<(), JobError> {
        let path = installed(store, models::STYLECLIP_GLOBAL_ID)?;
        if self.global.as_ref().is_some_and(|(p, _)| *p == path) {
            return Ok(());
        }
        let global = models::load_global_installed(store, device).map_err(failed)?;
        self.relevance = None;
        self.global = Some((path, global));
        Ok(())
    }

    fn load_mapper(&mut self, store: &WeightsStore, id: &str, device: &Device) -> Result<PathBuf, JobError> {
        let path = installed(store, id)?;
        if !self.mappers.contains_key(&path) {
            let mapper = models::load_mapper_installed(store, id, device).map_err(failed)?;
            self.mappers.insert(path.clone(), mapper);
        }
        Ok(path)
    }

    /// Prompts whose embeddings are kept.
    pub fn prompts(&self) -> &PromptCache {
        &self.prompts
    }
}

/// The first file of an installed model (the store's error names what is missing).
fn installed(store: &WeightsStore, id: &str) -> Result<PathBuf, JobError> {
    store
        .require(id)
        .map_err(failed)?
        .into_iter()
        .next()
        .ok_or_else(|| JobError::Failed(format!("{id}: the model lists no file")))
}

/// Renders a text edit of a virtual model: a preview, or the version to save.
#[derive(Debug, Clone)]
pub struct TextEditJob {
    pub store: WeightsStore,
    pub subject: EditSubject,
    pub request: EditRequest,
    pub tag: u64,
}

impl Job for TextEditJob {
    fn label(&self) -> String {
        match &self.request {
            EditRequest::Global { prompt, .. } => {
                format!("Editing {}: \"{}\"", self.subject.name, prompt.trim())
            }
            EditRequest::Mapper { id, .. } => format!(
                "Editing {}: {}",
                self.subject.name,
                id.trim_start_matches(models::STYLECLIP_MAPPER_PREFIX)
            ),
        }
    }

    fn lane(&self) -> Lane {
        Lane::Compute
    }

    fn run(self: Box<Self>, ctx: &JobContext) -> Result<(), JobError> {
        let device = ctx.compute().device.clone();
        // Taken before StyleGAN2, whose loader holds the model cache while it runs.
        let shared = shared_cache(ctx)?;
        let mut step = |done, total| {
            ctx.progress(done, total);
            ctx.check_cancelled()
        };
        step(0, STEPS)?;
        let preview = with_stylegan2(ctx, &self.store, |loaded, _| {
            let mut cache = lock(&shared);
            run_edit(
                &mut cache,
                &self.store,
                &loaded.model,
                &self.subject,
                &self.request,
                &device,
                &mut step,
            )
        })?;
        ctx.output(JobOutput::TextEdited(Box::new(TextEditPreview {
            tag: self.tag,
            ..preview
        })));
        Ok(())
    }
}

/// One edit, step by step: `step(done, total)` reports progress and may stop the edit (`Err`).
/// The plain function behind the job, for the CLI and the benchmarks.
#[allow(clippy::too_many_arguments)]
pub fn run_edit(
    cache: &mut TextEditCache,
    store: &WeightsStore,
    model: &StyleGan2,
    subject: &EditSubject,
    request: &EditRequest,
    device: &Device,
    step: &mut dyn FnMut(usize, usize) -> Result<(), JobError>,
) -> Result<TextEditPreview, JobError> {
    let total = STEPS;
    let noise = generate::noise(model, subject.noise).map_err(failed)?;
    let wplus = Tensor::<3>::from_data(
        TensorData::new(subject.wplus.to_vec(), [1, subject.n_latent, subject.style_dim]),
        device,
    );
    let delta = subject.s_conv_delta.as_deref().map(Vec::as_slice);
    match request {
        EditRequest::Global {
            prompt,
            neutral,
            alpha,
            beta,
        } => {
            let pair = prompt_pair(prompt, neutral.as_deref()).map_err(failed)?;
            cache.load_clip(store, device)?;
            cache.load_global(store, device)?;
            step(1, total)?;
            let TextEditCache {
                clip,
                global,
                prompts,
                relevance: last,
                ..
            } = cache;
            let (Some((_, clip)), Some((_, directions))) = (clip.as_ref(), global.as_ref()) else {
                return Err(JobError::Failed(
                    "the text-edit networks did not stay loaded".into(),
                ));
            };
            let editor = GlobalEditor::new(&model.generator, directions, wplus, delta).map_err(failed)?;
            let pair_key = format!("{}\u{0}{}", pair.target, pair.neutral);
            let cached = last
                .as_ref()
                .filter(|(k, _)| *k == pair_key)
                .map(|(_, r)| Arc::clone(r));
            let relevance = match cached {
                Some(r) => r,
                None => {
                    let target = prompts.embedding(clip, &pair.target, device).map_err(failed)?;
                    step(2, total)?;
                    let neutral = prompts.embedding(clip, &pair.neutral, device).map_err(failed)?;
                    let r = Arc::new(editor.relevance(target, neutral).map_err(failed)?);
                    *last = Some((pair_key, Arc::clone(&r)));
                    r
                }
            };
            step(3, total)?;
            let beta = beta.unwrap_or_else(|| text_edit::auto_beta(&relevance));
            let edited = editor
                .edit(&pair, &relevance, *alpha, beta, &noise)
                .map_err(failed)?;
            step(total, total)?;
            preview(
                edited,
                Some(pair),
                Some(beta),
                Some(text_edit::max_relevance(&relevance)),
            )
        }
        EditRequest::Mapper { id, strength } => {
            let mapper_key = cache.load_mapper(store, id, device)?;
            step(2, total)?;
            let Some((mapper, info)) = cache.mappers.get(&mapper_key) else {
                return Err(JobError::Failed(
                    "the text-edit networks did not stay loaded".into(),
                ));
            };
            let edited = text_edit::mapper_edit(
                &model.generator,
                &noise,
                mapper,
                info,
                id,
                wplus,
                delta,
                *strength,
            )
            .map_err(failed)?;
            step(total, total)?;
            preview(edited, None, None, None)
        }
    }
}

fn preview(
    edited: EditedFace,
    pair: Option<PromptPair>,
    beta: Option<f32>,
    max_relevance: Option<f32>,
) -> Result<TextEditPreview, JobError> {
    let wplus = edited
        .wplus
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| JobError::Failed(format!("cannot read the latent back from the device: {e:?}")))?;
    Ok(TextEditPreview {
        tag: 0,
        image: Arc::new(edited.image),
        pair,
        beta,
        max_relevance,
        channels: edited.channels,
        changed: edited.changed,
        note: edited.note,
        record: edited.record,
        wplus: Arc::new(wplus),
        s_conv_delta: edited.s_conv_delta.map(Arc::new),
    })
}

/// The default name of an edited version: "Ava (smiling)", "Ava (purple hair)".
pub fn version_name(parent: &str, record: &TextEditRecord) -> String {
    let change = match record {
        TextEditRecord::StyleclipGlobal { target, .. } => target
            .trim_start_matches("face with ")
            .trim_end_matches(" face")
            .to_string(),
        TextEditRecord::StyleclipMapper { mapper, .. } => mapper
            .trim_start_matches(models::STYLECLIP_MAPPER_PREFIX)
            .replace('-', " "),
    };
    format!("{parent} ({change})")
}

/// Adds an edited face to the library as a new version of `parent`: its landmarks (MTCNN when
/// given and confident, else the FFHQ positions) and aligned crop, the edited latent and S offset,
/// the parent's edits plus this one. The parent is left as it is.
pub fn save_edited_version(
    library: &VirtualModelLibrary,
    parent: &VirtualModel,
    name: &str,
    preview: &TextEditPreview,
    detector: Option<(&MtcnnNets, &Device)>,
) -> Result<VirtualModel, CastError> {
    let generated = parent.generated().ok_or_else(|| {
        CastError::Invalid(format!(
            "{} was imported from photos; only generated virtual models can be edited",
            parent.name
        ))
    })?;
    let prepared =
        prepare_generated(&preview.image, detector).map_err(|e| CastError::Invalid(e.to_string()))?;
    let mut latent = Latent::new(
        preview.wplus.to_vec(),
        generated.generator.n_latent,
        generated.generator.style_dim,
    )?;
    latent.s_conv_delta = preview.s_conv_delta.as_ref().map(|d| d.to_vec());
    let kind = match preview.record {
        TextEditRecord::StyleclipGlobal { .. } => "styleclip-global",
        TextEditRecord::StyleclipMapper { .. } => "styleclip-mapper",
    };
    let params = serde_json::to_value(&preview.record).unwrap_or(serde_json::Value::Null);
    let edit = EditRecord::new(kind, preview.record.describe(), params);
    let new = NewVirtualModel::edited(
        parent,
        name,
        (*preview.image).clone(),
        prepared.landmarks,
        prepared.from,
        prepared.crop,
        latent,
        edit,
    )?;
    library.create(new)
}

/// "Save as new version" from the Edit window; reports like saving a candidate does
/// ([`CastOutput::Saved`], then the new listing).
#[derive(Debug, Clone)]
pub struct SaveTextEdit {
    pub store: WeightsStore,
    pub library: VirtualModelLibrary,
    pub parent: VirtualModel,
    pub name: String,
    pub preview: Box<TextEditPreview>,
}

impl Job for SaveTextEdit {
    fn label(&self) -> String {
        format!("Saving {}", self.name)
    }

    fn lane(&self) -> Lane {
        Lane::Compute
    }

    fn run(self: Box<Self>, ctx: &JobContext) -> Result<(), JobError> {
        let model = with_stylegan2(ctx, &self.store, |_, detector| {
            let device = &ctx.compute().device;
            save_edited_version(
                &self.library,
                &self.parent,
                &self.name,
                &self.preview,
                detector.map(|d| (d, device)),
            )
            .map_err(failed)
        })?;
        let note = format!(
            "Saved {}, edited from {}: {}",
            model.name,
            self.parent.name,
            self.preview.record.describe()
        );
        ctx.output(JobOutput::Cast(Box::new(CastOutput::Saved { model, note })));
        emit_listing(ctx, &self.library)
    }
}
