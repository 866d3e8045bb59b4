//! StyleCLIP text edits of a generated virtual model: "smiling", "short blond hair", "freckles".
//!
//! Two kinds, both over the generator that made the face:
//! - **Global directions** (any prompt): the target and neutral prompts go through CLIP's 79 prompt
//!   templates and the text encoder; their difference, through the relevance matrix `fs3`, picks the
//!   style channels that move the face towards the target. β (disentanglement) drops the channels
//!   whose relevance is below it; α (strength) is how far the kept ones move, in units of each
//!   channel's spread over FFHQ. The edit is applied in the S space and rendered from it.
//! - **Latent mappers** (one trained network per prompt): `w + 0.1 · mapper(w)` on W+, then rendered.
//!
//! Everything here is a plain function over the generator, the W+ latent and the loaded networks, so
//! the window, the CLI, the tests and the benchmarks share it. What is slow is kept apart from what
//! is cheap: [`PromptCache::embedding`] (tokenizer + text encoder, once per prompt) and
//! [`GlobalEditor::relevance`] (once per prompt pair) against [`GlobalEditor::edit`] (threshold,
//! scale and render; what a slider move costs).

pub mod run;

use std::collections::{HashMap, VecDeque};

use burn::tensor::{Device, Tensor, TensorData};
use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::nets::clip_text::{TokenizerError, Truncate, strip_special_tokens};
use crate::nets::styleclip::global::{self, GlobalDirections, GlobalError, SLayout};
use crate::nets::styleclip::mapper::{LevelsMapper, MapperInfo, STEP};
use crate::nets::styleclip::templates;
use crate::nets::stylegan2::{Generator, Noise, StyleGanError, StyleKind, StyleSpace};
use crate::weights::models::ClipText;

/// The official demos' strength (α) and disentanglement threshold (β).
pub const DEFAULT_ALPHA: f32 = 4.1;
pub const DEFAULT_BETA: f32 = 0.15;
/// The strength slider's range (the official GUI's −15…25 is wider than faces stay faces).
pub const ALPHA_RANGE: std::ops::RangeInclusive<f32> = -10.0..=10.0;
/// The disentanglement slider's range (the official GUI's).
pub const BETA_RANGE: std::ops::RangeInclusive<f32> = 0.08..=0.40;
/// The automatic β keeps more than this many channels (StyleCLIP's GUI, FFHQ).
pub const AUTO_BETA_MIN_CHANNELS: usize = 20;
/// Prompt embeddings kept per worker; older ones are encoded again when asked for.
const PROMPT_CACHE_SIZE: usize = 64;

/// Ready-made prompts for the preset chips: label, neutral text, target text. The pairs follow
/// StyleCLIP's advice: the neutral text describes the face without the attribute.
pub const PROMPT_PRESETS: &[(&str, &str, &str)] = &[
    ("smiling", "face", "smiling face"),
    ("short blond hair", "face with hair", "face with short blond hair"),
    ("freckles", "face", "face with freckles"),
    ("curly hair", "face with hair", "face with curly hair"),
    ("grey hair", "face with hair", "face with grey hair"),
    ("blue eyes", "face with eyes", "face with blue eyes"),
    ("surprised", "face", "surprised face"),
];

#[derive(Debug, thiserror::Error)]
pub enum TextEditError {
    #[error("the prompt is empty: type what should change, e.g. \"smiling\" or \"short blond hair\"")]
    EmptyPrompt,
    #[error(
        "the prompt \"{prompt}\" is too long: inside CLIP's templates it takes {tokens} tokens and CLIP reads {context}; shorten it"
    )]
    PromptTooLong {
        prompt: String,
        tokens: usize,
        context: usize,
    },
    #[error(
        "the prompt and the neutral prompt are both \"{0}\": there is no difference to edit along; describe the face without the change as the neutral prompt"
    )]
    SamePrompts(String),
    #[error(
        "the text encoder gives {got}-value features but the global directions (fs3.npy) have {want} columns: they were made with another CLIP model"
    )]
    ClipDim { got: usize, want: usize },
    #[error(
        "the global directions were made for a generator with {want_layers} style layers ({want_channels} channels) but this virtual model's generator has {got_layers} ({got_channels}): install the global directions of the same generator"
    )]
    Layout {
        want_layers: usize,
        want_channels: usize,
        got_layers: usize,
        got_channels: usize,
    },
    #[error(
        "the mapper{} works on {want}-value latents but this generator's are {got}-value: it was trained for another generator",
        mapper_name(description)
    )]
    MapperWidth {
        description: Option<String>,
        want: usize,
        got: usize,
    },
    #[error("the latent is {got:?}; the generator takes [1, {rows}, {dim}]")]
    Latent {
        got: Vec<usize>,
        rows: usize,
        dim: usize,
    },
    #[error("the generator failed: {0}")]
    Generator(#[from] StyleGanError),
    #[error("the global directions failed: {0}")]
    Global(#[from] GlobalError),
    #[error("cannot read the result back from the compute device: {0}")]
    Device(String),
}

fn mapper_name(description: &Option<String>) -> String {
    description
        .as_deref()
        .map(|d| format!(" \"{d}\""))
        .unwrap_or_default()
}

/// The target and neutral texts of a global edit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptPair {
    pub target: String,
    pub neutral: String,
}

/// Words describing the whole face ("smiling face"); anything else is something the face has
/// ("face with freckles").
const FACE_ADJECTIVES: &[&str] = &[
    "smiling",
    "angry",
    "surprised",
    "sad",
    "happy",
    "old",
    "young",
    "male",
    "female",
    "bald",
    "tanned",
    "pale",
    "chubby",
    "thin",
    "serious",
    "calm",
    "laughing",
    "crying",
    "sleepy",
];

/// Cleans a user's prompt: CLIP's control tokens removed, whitespace collapsed.
pub fn clean_prompt(text: &str) -> String {
    strip_special_tokens(text)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The text pair for a prompt as a merchandiser types it. An explicit neutral prompt keeps both
/// verbatim. Otherwise a prompt naming the face is used as is ("a face with a beard"), a word
/// describing the face becomes "<word> face" ("smiling face"), anything else "face with <prompt>"
/// ("face with short blond hair"); the neutral prompt is the face without it ("face with hair" for
/// hair, "face with eyes" for eyes, else "face"), as StyleCLIP's examples pair them.
pub fn prompt_pair(prompt: &str, neutral: Option<&str>) -> Result<PromptPair, TextEditError> {
    let prompt = clean_prompt(prompt);
    if prompt.is_empty() {
        return Err(TextEditError::EmptyPrompt);
    }
    let words: Vec<String> = prompt
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect();
    let has = |w: &str| words.iter().any(|x| x == w);
    let explicit = neutral.map(clean_prompt).filter(|n| !n.is_empty());
    let target = if explicit.is_some() || has("face") || has("faces") {
        prompt.clone()
    } else if words.len() == 1 && FACE_ADJECTIVES.contains(&words[0].as_str()) {
        format!("{prompt} face")
    } else {
        format!("face with {prompt}")
    };
    let neutral = explicit.unwrap_or_else(|| {
        if has("hair") || has("haircut") || has("hairstyle") {
            "face with hair".into()
        } else if has("eyes") {
            "face with eyes".into()
        } else {
            "face".into()
        }
    });
    if target.eq_ignore_ascii_case(&neutral) {
        return Err(TextEditError::SamePrompts(target));
    }
    Ok(PromptPair { target, neutral })
}

/// CLIP's class embedding of a text (StyleCLIP's `zeroshot_classifier` for one class): the text in
/// every one of the 79 templates, tokenised without truncation, encoded in one batch, each feature
/// L2-normalised, averaged and normalised again. This is the per-prompt cost of a text edit.
pub fn encode_prompt(clip: &ClipText, text: &str, device: &Device) -> Result<Tensor<1>, TextEditError> {
    let text = clean_prompt(text);
    if text.is_empty() {
        return Err(TextEditError::EmptyPrompt);
    }
    let context = clip.encoder.context_length();
    let tokens = templates::fill(&text)
        .iter()
        .map(|prompt| clip.tokenizer.tokenize(prompt, context, Truncate::No))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| match e {
            TokenizerError::TooLong { tokens, context } => TextEditError::PromptTooLong {
                prompt: text.clone(),
                tokens,
                context,
            },
            other => TextEditError::Device(other.to_string()),
        })?;
    Ok(global::class_embedding(clip.encoder.encode(&tokens, device)))
}

/// Prompt embeddings already computed, so moving a slider or going back to an earlier prompt does
/// not run the text encoder again. Keyed by the cleaned text; the oldest entries leave first.
#[derive(Debug, Default)]
pub struct PromptCache {
    entries: HashMap<String, Tensor<1>>,
    order: VecDeque<String>,
}

impl PromptCache {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn contains(&self, text: &str) -> bool {
        self.entries.contains_key(&clean_prompt(text))
    }

    /// The embedding of `text`, encoded on first use.
    pub fn embedding(
        &mut self,
        clip: &ClipText,
        text: &str,
        device: &Device,
    ) -> Result<Tensor<1>, TextEditError> {
        let key = clean_prompt(text);
        if let Some(found) = self.entries.get(&key) {
            return Ok(found.clone());
        }
        let embedding = encode_prompt(clip, &key, device)?;
        if self.order.len() >= PROMPT_CACHE_SIZE
            && let Some(old) = self.order.pop_front()
        {
            self.entries.remove(&old);
        }
        self.order.push_back(key.clone());
        self.entries.insert(key, embedding.clone());
        Ok(embedding)
    }
}

/// What an edit produced: the image, and the latent or styles it was rendered from.
#[derive(Debug, Clone)]
pub struct EditedFace {
    /// RGB, the generator's size.
    pub image: RgbImage,
    /// The W+ latent: the edited one for a mapper, the unchanged input for a global edit (whose
    /// change lives in `styles`).
    pub wplus: Tensor<3>,
    /// The styles the image was rendered from (edited for a global edit).
    pub styles: StyleSpace,
    /// The offset on the conv layers' styles (StyleCLIP's `fs3` indexing) that, added to the styles
    /// of `wplus`, gives `styles`: the earlier edits' offset plus this global edit's. None when
    /// there is none.
    pub s_conv_delta: Option<Vec<f32>>,
    /// Global edits: how many style channels the threshold kept.
    pub channels: Option<usize>,
    /// False when the edit left the face as it was (no channel kept, or zero strength).
    pub changed: bool,
    /// Something to tell the operator (why nothing changed).
    pub note: Option<String>,
    /// What was done, for the library's lineage.
    pub record: TextEditRecord,
}

/// A text edit as the virtual-model library records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum TextEditRecord {
    /// StyleCLIP global directions.
    StyleclipGlobal {
        target: String,
        neutral: String,
        alpha: f32,
        beta: f32,
        channels: usize,
    },
    /// A StyleCLIP latent mapper (`strength` 1 is the official `w + 0.1 · mapper(w)`).
    StyleclipMapper {
        mapper: String,
        description: Option<String>,
        strength: f32,
    },
}

impl TextEditRecord {
    /// One line for the operator, e.g. `"smiling face" vs "face", strength 4.1, disentanglement 0.15`.
    pub fn describe(&self) -> String {
        match self {
            TextEditRecord::StyleclipGlobal {
                target,
                neutral,
                alpha,
                beta,
                channels,
            } => format!(
                "text edit \"{target}\" (neutral \"{neutral}\"), strength {alpha:.1}, disentanglement {beta:.2}, {channels} channels"
            ),
            TextEditRecord::StyleclipMapper {
                mapper,
                description,
                strength,
            } => format!(
                "mapper {}{}, strength {strength:.2}",
                mapper,
                mapper_name(description)
            ),
        }
    }
}

/// Checks that a latent fits the generator: `[1, n_latent, style_dim]`.
fn check_latent(generator: &Generator, wplus: &Tensor<3>) -> Result<(), TextEditError> {
    let dims = wplus.dims();
    if dims != [1, generator.n_latent, generator.style_dim] {
        return Err(TextEditError::Latent {
            got: dims.to_vec(),
            rows: generator.n_latent,
            dim: generator.style_dim,
        });
    }
    Ok(())
}

/// Checks that global directions were made for this generator's style layout.
pub fn check_layout(layout: &SLayout, generator: &Generator) -> Result<(), TextEditError> {
    let layers = generator.style_layers();
    let dims: Vec<usize> = layers.iter().map(|l| l.channels).collect();
    let conv: Vec<usize> = layers
        .iter()
        .enumerate()
        .filter(|(_, l)| l.kind == StyleKind::Conv)
        .map(|(i, _)| i)
        .collect();
    if dims != layout.dims || conv != layout.conv_layers {
        return Err(TextEditError::Layout {
            want_layers: layout.dims.len(),
            want_channels: layout.dims.iter().sum(),
            got_layers: dims.len(),
            got_channels: dims.iter().sum(),
        });
    }
    Ok(())
}

/// The generator's output `[1, 3, H, W]` (nominally −1…1) as 8-bit RGB: `(x + 1) / 2`, clamped,
/// times 255, rounded.
pub fn image_from_tensor(image: Tensor<4>) -> Result<RgbImage, TextEditError> {
    let [_, channels, height, width] = image.dims();
    if channels != 3 {
        return Err(TextEditError::Device(format!(
            "the generator made {channels} channels, not RGB"
        )));
    }
    let values = image
        .narrow(0, 0, 1)
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| TextEditError::Device(format!("{e:?}")))?;
    let plane = height * width;
    let mut pixels = Vec::with_capacity(plane * 3);
    for i in 0..plane {
        for c in 0..3 {
            let v = ((values[c * plane + i] + 1.0) * 0.5).clamp(0.0, 1.0);
            pixels.push((v * 255.0 + 0.5) as u8);
        }
    }
    RgbImage::from_raw(width as u32, height as u32, pixels)
        .ok_or_else(|| TextEditError::Device("the image has the wrong number of pixels".into()))
}

/// Renders styles with the generator.
pub fn render(generator: &Generator, styles: &StyleSpace, noise: &Noise) -> Result<RgbImage, TextEditError> {
    image_from_tensor(generator.synthesize(styles, noise, None)?)
}

/// A global edit in progress on one face: the base styles are computed once; the relevance once
/// per prompt pair; a slider move costs a threshold, a scale and one render.
pub struct GlobalEditor<'a> {
    generator: &'a Generator,
    directions: &'a GlobalDirections,
    wplus: Tensor<3>,
    base: StyleSpace,
    conv_delta: Option<Vec<f32>>,
}

/// The styles of `wplus` plus an S offset on the conv layers.
fn base_styles(
    generator: &Generator,
    wplus: Tensor<3>,
    conv_delta: Option<&[f32]>,
) -> Result<StyleSpace, TextEditError> {
    let styles = generator.styles(wplus.clone())?;
    match conv_delta {
        None => Ok(styles),
        Some(delta) => {
            let delta =
                Tensor::<2>::from_data(TensorData::new(delta.to_vec(), [1, delta.len()]), &wplus.device());
            Ok(styles.add_conv_delta(delta)?)
        }
    }
}

impl<'a> GlobalEditor<'a> {
    /// `conv_delta` is the S offset of earlier global edits (a model edited before), added to the
    /// styles of `wplus`. Fails when the latent, the offset or the directions do not fit the generator.
    pub fn new(
        generator: &'a Generator,
        directions: &'a GlobalDirections,
        wplus: Tensor<3>,
        conv_delta: Option<&[f32]>,
    ) -> Result<GlobalEditor<'a>, TextEditError> {
        check_latent(generator, &wplus)?;
        check_layout(directions.layout(), generator)?;
        let base = base_styles(generator, wplus.clone(), conv_delta)?;
        Ok(GlobalEditor {
            generator,
            directions,
            wplus,
            base,
            conv_delta: conv_delta.map(<[f32]>::to_vec),
        })
    }

    /// The unedited styles.
    pub fn base(&self) -> &StyleSpace {
        &self.base
    }

    /// How strongly each conv channel moves the face from `neutral` towards `target` (embeddings
    /// from [`encode_prompt`] or the [`PromptCache`]).
    pub fn relevance(&self, target: Tensor<1>, neutral: Tensor<1>) -> Result<Vec<f32>, TextEditError> {
        let dt = global::text_direction(target, neutral);
        self.directions.relevance(dt).map_err(|e| match e {
            GlobalError::DirectionDim { rows, dim } => TextEditError::ClipDim { got: dim, want: rows },
            other => TextEditError::Global(other),
        })
    }

    /// The styles edited by α at threshold β, the whole conv offset from the styles of the latent
    /// (earlier edits' plus this one), and how many channels the threshold kept.
    pub fn edited_styles(
        &self,
        relevance: &[f32],
        alpha: f32,
        beta: f32,
    ) -> Result<(StyleSpace, Option<Vec<f32>>, usize), TextEditError> {
        let device = self.wplus.device();
        let direction = self.directions.direction(relevance, beta, &device);
        if direction.num_c == 0 {
            return Ok((self.base.clone(), self.conv_delta.clone(), 0));
        }
        let styles = global::apply_one(&self.base.styles, &direction.boundary, alpha);
        let conv: Vec<Tensor<1>> = self
            .base
            .layers
            .iter()
            .zip(&direction.boundary)
            .filter(|(l, _)| l.kind == StyleKind::Conv)
            .map(|(_, b)| b.clone())
            .collect();
        let step = (Tensor::cat(conv, 0) * alpha)
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| TextEditError::Device(format!("{e:?}")))?;
        let delta = match &self.conv_delta {
            Some(old) => old.iter().zip(&step).map(|(a, b)| a + b).collect(),
            None => step,
        };
        Ok((
            StyleSpace {
                layers: self.base.layers.clone(),
                styles,
            },
            Some(delta),
            direction.num_c,
        ))
    }

    /// The edit and its image. When no channel reaches β the face is left unchanged and the note
    /// says how low β must go.
    pub fn edit(
        &self,
        pair: &PromptPair,
        relevance: &[f32],
        alpha: f32,
        beta: f32,
        noise: &Noise,
    ) -> Result<EditedFace, TextEditError> {
        let (styles, s_conv_delta, channels) = self.edited_styles(relevance, alpha, beta)?;
        let note = if channels == 0 {
            Some(no_channel_note(pair, relevance, beta))
        } else if alpha == 0.0 {
            Some("Strength 0 leaves the face unchanged.".to_string())
        } else {
            None
        };
        let image = render(self.generator, &styles, noise)?;
        Ok(EditedFace {
            image,
            wplus: self.wplus.clone(),
            styles,
            s_conv_delta,
            channels: Some(channels),
            changed: channels > 0 && alpha != 0.0,
            note,
            record: TextEditRecord::StyleclipGlobal {
                target: pair.target.clone(),
                neutral: pair.neutral.clone(),
                alpha,
                beta,
                channels,
            },
        })
    }
}

/// The largest |relevance|: the highest β that still keeps a channel.
pub fn max_relevance(relevance: &[f32]) -> f32 {
    relevance.iter().fold(0.0f32, |m, r| m.max(r.abs()))
}

/// StyleCLIP's automatic β for a relevance: the largest of 0.10…0.29 keeping more than 20 channels.
pub fn auto_beta(relevance: &[f32]) -> f32 {
    global::auto_beta(relevance, AUTO_BETA_MIN_CHANNELS).0 as f32
}

fn no_channel_note(pair: &PromptPair, relevance: &[f32], beta: f32) -> String {
    let max = max_relevance(relevance);
    format!(
        "No style channel is relevant enough to \"{}\" (vs \"{}\") at disentanglement {beta:.2}: the most relevant reaches {:.3}. Lower the disentanglement below that, or try other words. The face is unchanged.",
        pair.target,
        pair.neutral,
        (max * 1000.0).floor() / 1000.0
    )
}

/// One global edit from scratch: both prompts encoded (through `cache`), the relevance, the edit.
#[allow(clippy::too_many_arguments)]
pub fn global_edit(
    generator: &Generator,
    noise: &Noise,
    directions: &GlobalDirections,
    clip: &ClipText,
    cache: &mut PromptCache,
    wplus: Tensor<3>,
    conv_delta: Option<&[f32]>,
    pair: &PromptPair,
    alpha: f32,
    beta: f32,
) -> Result<EditedFace, TextEditError> {
    let device = wplus.device();
    let editor = GlobalEditor::new(generator, directions, wplus, conv_delta)?;
    let target = cache.embedding(clip, &pair.target, &device)?;
    let neutral = cache.embedding(clip, &pair.neutral, &device)?;
    let relevance = editor.relevance(target, neutral)?;
    editor.edit(pair, &relevance, alpha, beta, noise)
}

/// A mapper edit: `w + strength · 0.1 · mapper(w)` on W+, rendered. Strength 1 is the official step;
/// other values scale it (an extension of the app, labelled so in the UI).
#[allow(clippy::too_many_arguments)]
pub fn mapper_edit(
    generator: &Generator,
    noise: &Noise,
    mapper: &LevelsMapper,
    info: &MapperInfo,
    mapper_id: &str,
    wplus: Tensor<3>,
    conv_delta: Option<&[f32]>,
    strength: f32,
) -> Result<EditedFace, TextEditError> {
    check_latent(generator, &wplus)?;
    if info.latent_dim != generator.style_dim {
        return Err(TextEditError::MapperWidth {
            description: info.description.clone(),
            want: info.latent_dim,
            got: generator.style_dim,
        });
    }
    let edited = mapper.apply(wplus, STEP * strength);
    // Earlier global edits stay: their S offset applies to the new latent's styles too.
    let styles = base_styles(generator, edited.clone(), conv_delta)?;
    let image = render(generator, &styles, noise)?;
    Ok(EditedFace {
        image,
        wplus: edited,
        styles,
        s_conv_delta: conv_delta.map(<[f32]>::to_vec),
        channels: None,
        changed: strength != 0.0,
        note: (strength == 0.0).then(|| "Strength 0 leaves the face unchanged.".to_string()),
        record: TextEditRecord::StyleclipMapper {
            mapper: mapper_id.to_string(),
            description: info.description.clone(),
            strength,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_become_styleclip_pairs() {
        let pair = |p: &str, n: Option<&str>| prompt_pair(p, n).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            pair("smiling", None),
            PromptPair {
                target: "smiling face".into(),
                neutral: "face".into()
            }
        );
        assert_eq!(
            pair("  short   blond hair ", None),
            PromptPair {
                target: "face with short blond hair".into(),
                neutral: "face with hair".into()
            }
        );
        assert_eq!(pair("freckles", None).target, "face with freckles");
        assert_eq!(pair("blue eyes", None).neutral, "face with eyes");
        assert_eq!(pair("a face with a beard", None).target, "a face with a beard");
        let explicit = pair("male face", Some("female face"));
        assert_eq!(
            (explicit.target.as_str(), explicit.neutral.as_str()),
            ("male face", "female face")
        );
        assert_eq!(pair("smiling <|endoftext|>", None).target, "smiling face");
        assert!(matches!(prompt_pair("  ", None), Err(TextEditError::EmptyPrompt)));
        assert!(matches!(
            prompt_pair("face", None),
            Err(TextEditError::SamePrompts(_))
        ));
    }

    #[test]
    fn presets_are_valid_pairs() {
        for (label, neutral, target) in PROMPT_PRESETS {
            assert_ne!(neutral, target, "{label}");
            assert!(target.contains("face"), "{label}");
        }
    }

    #[test]
    fn records_describe_themselves_and_round_trip() {
        let record = TextEditRecord::StyleclipGlobal {
            target: "smiling face".into(),
            neutral: "face".into(),
            alpha: 4.1,
            beta: 0.15,
            channels: 42,
        };
        let json = serde_json::to_string(&record).unwrap_or_default();
        assert!(json.contains("\"kind\":\"styleclip-global\""), "{json}");
        assert_eq!(
            serde_json::from_str::<TextEditRecord>(&json).ok(),
            Some(record.clone())
        );
        assert!(record.describe().contains("42 channels"));
    }
}
