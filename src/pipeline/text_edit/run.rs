//! A text edit run from start to end: the networks it needs (kept between edits in a
//! [`TextEditCache`], which the network runtime holds), the prompt embeddings and relevance, and the
//! rendered face; then saving it as a new version of the virtual model. The window's edit jobs and
//! `facecast virtual edit` both run [`run_edit`].

use std::collections::HashMap;
use std::sync::Arc;

use burn::tensor::{Device, Tensor, TensorData};
use image::RgbImage;

use super::{EditedFace, GlobalEditor, PromptCache, PromptPair, TextEditRecord, prompt_pair};
use crate::cast::{
    CastError, EditRecord, Latent, NewVirtualModel, NoiseSpec, VirtualModel, VirtualModelLibrary,
};
use crate::nets::mtcnn::MtcnnNets;
use crate::nets::styleclip::global::GlobalDirections;
use crate::nets::styleclip::mapper::{LevelsMapper, MapperInfo};
use crate::nets::stylegan2::StyleGan2;
use crate::pipeline::generate;
use crate::pipeline::runtime::FileStamp;
use crate::pipeline::virtual_face::prepare_generated;
use crate::weights::models::{self, ClipText};
use crate::weights::store::WeightsStore;

/// Why an edit did not finish. The caller's own error type wraps it (`From`), so its step callback
/// can stop the edit with that type's "cancelled".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EditRunError(pub String);

fn failed<E: From<EditRunError>, D: std::fmt::Display>(e: D) -> E {
    E::from(EditRunError(e.to_string()))
}

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
/// file: a reinstalled file has another stamp and loads again, as in the network runtime).
#[derive(Default)]
pub struct TextEditCache {
    clip: Option<(FileStamp, ClipText)>,
    global: Option<(FileStamp, GlobalDirections)>,
    mappers: HashMap<String, (FileStamp, LevelsMapper, MapperInfo)>,
    prompts: PromptCache,
    /// The relevance of the last prompt pair (key: target and neutral text).
    relevance: Option<(String, Arc<Vec<f32>>)>,
}

/// Progress steps of an edit: networks, prompts, relevance, render.
pub const STEPS: usize = 4;

impl TextEditCache {
    fn load_clip<E: From<EditRunError>>(&mut self, store: &WeightsStore, device: &Device) -> Result<(), E> {
        let mut files = installed::<E>(store, models::CLIP_TEXT_ID)?;
        files.push(models::clip_vocab_path(store).map_err(failed::<E, _>)?);
        let stamp = FileStamp::of(&files);
        if self.clip.as_ref().is_some_and(|(s, _)| *s == stamp) {
            return Ok(());
        }
        self.clip = None;
        let clip = models::load_clip_installed(store, device).map_err(failed::<E, _>)?;
        // Embeddings of another CLIP are meaningless with this one.
        self.prompts = PromptCache::default();
        self.relevance = None;
        self.clip = Some((stamp, clip));
        Ok(())
    }

    fn load_global<E: From<EditRunError>>(&mut self, store: &WeightsStore, device: &Device) -> Result<(), E> {
        let stamp = FileStamp::of(&installed::<E>(store, models::STYLECLIP_GLOBAL_ID)?);
        if self.global.as_ref().is_some_and(|(s, _)| *s == stamp) {
            return Ok(());
        }
        self.global = None;
        let global = models::load_global_installed(store, device).map_err(failed::<E, _>)?;
        self.relevance = None;
        self.global = Some((stamp, global));
        Ok(())
    }

    fn load_mapper<E: From<EditRunError>>(
        &mut self,
        store: &WeightsStore,
        id: &str,
        device: &Device,
    ) -> Result<(), E> {
        let stamp = FileStamp::of(&installed::<E>(store, id)?);
        if self.mappers.get(id).is_some_and(|(s, _, _)| *s == stamp) {
            return Ok(());
        }
        self.mappers.remove(id);
        let (mapper, info) = models::load_mapper_installed(store, id, device).map_err(failed::<E, _>)?;
        self.mappers.insert(id.to_string(), (stamp, mapper, info));
        Ok(())
    }

    /// Prompts whose embeddings are kept.
    pub fn prompts(&self) -> &PromptCache {
        &self.prompts
    }
}

/// An installed model's files (the store's error names what is missing).
fn installed<E: From<EditRunError>>(store: &WeightsStore, id: &str) -> Result<Vec<std::path::PathBuf>, E> {
    let files = store.require(id).map_err(failed::<E, _>)?;
    if files.is_empty() {
        return Err(failed(format!("{id}: the model lists no file")));
    }
    Ok(files)
}

/// One edit, step by step: `step(done, total)` reports progress and may stop the edit (`Err`).
/// The window's job, the CLI and the benchmarks all run this.
#[allow(clippy::too_many_arguments)]
pub fn run_edit<E: From<EditRunError>>(
    cache: &mut TextEditCache,
    store: &WeightsStore,
    model: &StyleGan2,
    subject: &EditSubject,
    request: &EditRequest,
    device: &Device,
    step: &mut dyn FnMut(usize, usize) -> Result<(), E>,
) -> Result<TextEditPreview, E> {
    let total = STEPS;
    let noise = generate::noise(model, subject.noise).map_err(failed::<E, _>)?;
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
            let pair = prompt_pair(prompt, neutral.as_deref()).map_err(failed::<E, _>)?;
            cache.load_clip::<E>(store, device)?;
            cache.load_global::<E>(store, device)?;
            step(1, total)?;
            let TextEditCache {
                clip,
                global,
                prompts,
                relevance: last,
                ..
            } = cache;
            let (Some((_, clip)), Some((_, directions))) = (clip.as_ref(), global.as_ref()) else {
                return Err(failed("the text-edit networks did not stay loaded"));
            };
            let editor =
                GlobalEditor::new(&model.generator, directions, wplus, delta).map_err(failed::<E, _>)?;
            let pair_key = format!("{}\u{0}{}", pair.target, pair.neutral);
            let cached = last
                .as_ref()
                .filter(|(k, _)| *k == pair_key)
                .map(|(_, r)| Arc::clone(r));
            let relevance = match cached {
                Some(r) => r,
                None => {
                    let target = prompts
                        .embedding(clip, &pair.target, device)
                        .map_err(failed::<E, _>)?;
                    step(2, total)?;
                    let neutral = prompts
                        .embedding(clip, &pair.neutral, device)
                        .map_err(failed::<E, _>)?;
                    let r = Arc::new(editor.relevance(target, neutral).map_err(failed::<E, _>)?);
                    *last = Some((pair_key, Arc::clone(&r)));
                    r
                }
            };
            step(3, total)?;
            let beta = beta.unwrap_or_else(|| super::auto_beta(&relevance));
            let edited = editor
                .edit(&pair, &relevance, *alpha, beta, &noise)
                .map_err(failed::<E, _>)?;
            step(total, total)?;
            preview(
                edited,
                Some(pair),
                Some(beta),
                Some(super::max_relevance(&relevance)),
            )
        }
        EditRequest::Mapper { id, strength } => {
            cache.load_mapper::<E>(store, id, device)?;
            step(2, total)?;
            let Some((_, mapper, info)) = cache.mappers.get(id.as_str()) else {
                return Err(failed("the text-edit networks did not stay loaded"));
            };
            let edited = super::mapper_edit(
                &model.generator,
                &noise,
                mapper,
                info,
                id,
                wplus,
                delta,
                *strength,
            )
            .map_err(failed::<E, _>)?;
            step(total, total)?;
            preview(edited, None, None, None)
        }
    }
}

fn preview<E: From<EditRunError>>(
    edited: EditedFace,
    pair: Option<PromptPair>,
    beta: Option<f32>,
    max_relevance: Option<f32>,
) -> Result<TextEditPreview, E> {
    let wplus = edited
        .wplus
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| failed::<E, _>(format!("cannot read the latent back from the device: {e:?}")))?;
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
