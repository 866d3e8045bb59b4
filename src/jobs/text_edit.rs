//! StyleCLIP text edits on the compute lane: the window's live preview and "save as new version".
//!
//! The networks load once and stay in the worker's model cache, with the prompt embeddings (one
//! text-encoder pass per prompt, ever) and the relevance of the last prompt pair, so a slider move
//! costs one threshold and one render. A job checks for cancellation between its steps: the window
//! cancels a preview as soon as a newer one is asked for.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use burn::tensor::{Device, Tensor, TensorData};
use image::RgbImage;

use super::{Job, JobContext, JobError, JobOutput, Lane};
use crate::nets::styleclip::global::GlobalDirections;
use crate::nets::styleclip::mapper::{LevelsMapper, MapperInfo};
use crate::nets::stylegan2::StyleGan2;
use crate::pipeline::text_edit::{
    self, EditedFace, GlobalEditor, PromptCache, PromptPair, TextEditRecord, prompt_pair,
};
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
    /// The generator's weights id in the store.
    pub generator: String,
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
    generators: HashMap<PathBuf, StyleGan2>,
    clip: Option<(PathBuf, ClipText)>,
    global: Option<(PathBuf, GlobalDirections)>,
    mappers: HashMap<PathBuf, (LevelsMapper, MapperInfo)>,
    prompts: PromptCache,
    /// The relevance of the last prompt pair (key: target and neutral text).
    relevance: Option<(String, Arc<Vec<f32>>)>,
}

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
    /// Loads the generator of `id` unless it is loaded; returns its cache key.
    fn load_generator(
        &mut self,
        store: &WeightsStore,
        id: &str,
        device: &Device,
    ) -> Result<PathBuf, JobError> {
        let path = installed(store, id)?;
        if !self.generators.contains_key(&path) {
            let model = load_generator(&path, device)?;
            self.generators.insert(path.clone(), model);
        }
        Ok(path)
    }

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

/// Loads a StyleGAN2 checkpoint with the sizes read from its tensors.
fn load_generator(path: &std::path::Path, device: &Device) -> Result<StyleGan2, JobError> {
    let tensors = crate::weights::read_checkpoint(path)
        .map_err(failed)?
        .flatten_tensors();
    let state = if tensors.tensors.keys().any(|k| k.starts_with("g_ema.")) {
        tensors.sub("g_ema")
    } else {
        tensors.clone()
    };
    let config = infer_stylegan2_config(&state).ok_or_else(|| {
        JobError::Failed(format!(
            "{}: not a StyleGAN2 generator checkpoint",
            path.display()
        ))
    })?;
    crate::nets::stylegan2::checkpoint::from_tensors(&tensors, path, &config, device).map_err(failed)
}

/// rosinality's constructor arguments from a generator state dict: one `to_rgbs` per resolution
/// above 4 px, widths from the conv weights, `style_dim` and the mapping depth from `style.*`.
fn infer_stylegan2_config(
    state: &crate::weights::TensorMap,
) -> Option<crate::nets::stylegan2::StyleGan2Config> {
    let count = |prefix: &str| {
        state
            .tensors
            .keys()
            .filter_map(|k| k.strip_prefix(prefix)?.split('.').next()?.parse::<usize>().ok())
            .max()
    };
    let blocks = count("to_rgbs.").map_or(0, |n| n + 1);
    let n_mlp = count("style.")?;
    let style_dim = state.get("style.1.weight")?.shape.first().copied()?;
    let size = 4usize << blocks;
    let mut config = crate::nets::stylegan2::StyleGan2Config::rosinality(size, style_dim, n_mlp, 2);
    config
        .channels
        .insert(4, *state.get("conv1.conv.weight")?.shape.get(1)?);
    for k in 0..blocks {
        let out = *state
            .get(&format!("convs.{}.conv.weight", 2 * k + 1))?
            .shape
            .get(1)?;
        config.channels.insert(8 << k, out);
    }
    config.validate().ok()?;
    Some(config)
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
        let shared = shared_cache(ctx)?;
        let mut cache = lock(&shared);
        let preview = run_edit(
            &mut cache,
            &self.store,
            &self.subject,
            &self.request,
            &device,
            &mut |done, total| {
                ctx.progress(done, total);
                ctx.check_cancelled()
            },
        )?;
        ctx.output(JobOutput::TextEdited(Box::new(TextEditPreview {
            tag: self.tag,
            ..preview
        })));
        Ok(())
    }
}

/// One edit, step by step: `step(done, total)` reports progress and may stop the edit (`Err`).
/// The plain function behind the job, for the CLI and the benchmarks.
pub fn run_edit(
    cache: &mut TextEditCache,
    store: &WeightsStore,
    subject: &EditSubject,
    request: &EditRequest,
    device: &Device,
    step: &mut dyn FnMut(usize, usize) -> Result<(), JobError>,
) -> Result<TextEditPreview, JobError> {
    let total = 4;
    step(0, total)?;
    let key = cache.load_generator(store, &subject.generator, device)?;
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
                generators,
                clip,
                global,
                prompts,
                relevance: last,
                ..
            } = cache;
            let (Some(model), Some((_, clip)), Some((_, directions))) =
                (generators.get(&key), clip.as_ref(), global.as_ref())
            else {
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
                .edit(&pair, &relevance, *alpha, beta, &model.fixed_noise())
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
            let (Some(model), Some((mapper, info))) =
                (cache.generators.get(&key), cache.mappers.get(&mapper_key))
            else {
                return Err(JobError::Failed(
                    "the text-edit networks did not stay loaded".into(),
                ));
            };
            let edited = text_edit::mapper_edit(
                &model.generator,
                &model.fixed_noise(),
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
