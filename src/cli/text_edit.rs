//! `facecast virtual edit NAME --prompt TEXT [--neutral TEXT] [--alpha A] [--beta B] [--mapper ID]`:
//! a StyleCLIP text edit of a generated virtual model, saved as a new version whose parent is the
//! edited model (the original stays as it is).
//!
//! Exit status: 0 when the new version was saved (or, with `--no-save`, the image written); 2 when
//! the edit would not change the face (no style channel reaches the disentanglement threshold, or
//! strength 0), in which case nothing is saved and the message says what to change.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use serde::Serialize;

use crate::cast::{VirtualModel, VirtualModelLibrary};
use crate::compute::{BackendChoice, Compute};
use crate::pipeline::text_edit::run::{
    EditRequest, EditRunError, TextEditCache, TextEditPreview, run_edit, save_edited_version, subject_of,
    version_name,
};
use crate::pipeline::text_edit::{DEFAULT_ALPHA, DEFAULT_BETA};
use crate::weights::models::{STYLECLIP_MAPPER_PREFIX, load_stylegan2_installed};
use crate::weights::store::WeightsStore;

#[derive(Debug, clap::Args)]
pub struct EditArgs {
    /// The generated virtual model to edit (name or id).
    pub model: String,
    /// What should change, e.g. "smiling", "short blond hair", "freckles" (StyleCLIP global
    /// directions). A prompt that names the face is used as it is ("a face with a beard").
    #[arg(long, required_unless_present = "mapper", conflicts_with = "mapper")]
    pub prompt: Option<String>,
    /// The face without the change (default: derived from the prompt, e.g. "face with hair").
    #[arg(long, requires = "prompt")]
    pub neutral: Option<String>,
    /// Strength α: how far the face moves; negative moves away from the prompt.
    #[arg(long, default_value_t = DEFAULT_ALPHA, allow_hyphen_values = true, requires = "prompt")]
    pub alpha: f32,
    /// Disentanglement β: only style channels at least this relevant to the prompt change
    /// (higher: fewer, more targeted). Default 0.15; `--auto-beta` picks it as StyleCLIP's GUI does.
    #[arg(long, requires = "prompt", conflicts_with = "auto_beta")]
    pub beta: Option<f32>,
    /// Choose β automatically: the largest of 0.10…0.29 that still changes more than 20 channels.
    #[arg(long, requires = "prompt")]
    pub auto_beta: bool,
    /// A trained StyleCLIP mapper instead of a prompt: its weights id or name
    /// (`styleclip-mapper-purple-hair` or `purple-hair`); see `facecast weights list`.
    #[arg(long)]
    pub mapper: Option<String>,
    /// Mapper strength: 1 is the edit as trained (w + 0.1·mapper(w)); other values scale it (a
    /// Facecast extension).
    #[arg(long, default_value_t = 1.0, requires = "mapper", allow_hyphen_values = true)]
    pub strength: f32,
    /// Name of the new version (default: "NAME (change)").
    #[arg(long = "save-as", value_name = "NAME")]
    pub save_as: Option<String>,
    /// Also write the edited face here (PNG, or JPEG by the extension).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Do not add a version to the library (only write --out).
    #[arg(long, requires = "out")]
    pub no_save: bool,
    /// Print a JSON report on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct EditReport<'a> {
    parent: &'a str,
    changed: bool,
    note: Option<&'a str>,
    edit: &'a crate::pipeline::text_edit::TextEditRecord,
    target: Option<&'a str>,
    neutral: Option<&'a str>,
    beta: Option<f32>,
    channels: Option<usize>,
    image: Option<&'a std::path::Path>,
    model: Option<super::virtual_model::ModelJson>,
}

/// `model` by name or id, as the mapper's store id.
fn mapper_id(store: &WeightsStore, name: &str) -> anyhow::Result<String> {
    let id = if name.starts_with(STYLECLIP_MAPPER_PREFIX) {
        name.to_string()
    } else {
        format!("{STYLECLIP_MAPPER_PREFIX}{}", name.replace(['_', ' '], "-"))
    };
    if store.model(&id).is_err() {
        let known: Vec<String> = crate::weights::models::mapper_models(store.manifest())
            .iter()
            .map(|m| m.id.trim_start_matches(STYLECLIP_MAPPER_PREFIX).to_string())
            .collect();
        bail!(
            "there is no StyleCLIP mapper {name:?}; the known ones are {}",
            known.join(", ")
        );
    }
    Ok(id)
}

pub fn run(
    args: EditArgs,
    store: &WeightsStore,
    library: &VirtualModelLibrary,
    backend: BackendChoice,
) -> anyhow::Result<ExitCode> {
    let parent: VirtualModel = library.find(&args.model)?;
    let Some(subject) = subject_of(&parent)? else {
        bail!(
            "{} was imported from photos: text edits need a generated virtual model (its StyleGAN2 latent is \
             what changes). Generate one with `facecast virtual generate`.",
            parent.name
        );
    };
    let request = match (&args.prompt, &args.mapper) {
        (Some(prompt), _) => EditRequest::Global {
            prompt: prompt.clone(),
            neutral: args.neutral.clone(),
            alpha: args.alpha,
            beta: if args.auto_beta {
                None
            } else {
                Some(args.beta.unwrap_or(DEFAULT_BETA))
            },
        },
        (None, Some(mapper)) => EditRequest::Mapper {
            id: mapper_id(store, mapper)?,
            strength: args.strength,
        },
        (None, None) => bail!("give --prompt TEXT or --mapper ID"),
    };
    if let Some(name) = &args.save_as {
        crate::cast::library::check_name(name)?;
    }
    let compute = Compute::select(backend)?;
    let loaded = load_stylegan2_installed(store, &compute.device)?;
    let mut cache = TextEditCache::default();
    let preview: TextEditPreview = run_edit::<EditRunError>(
        &mut cache,
        store,
        &loaded.model,
        &subject,
        &request,
        &compute.device,
        &mut |_, _| Ok(()),
    )
    .map_err(|e| anyhow::anyhow!("editing {}: {e}", parent.name))?;

    let written = match &args.out {
        Some(path) => Some(super::virtual_model::write_image(&preview.image, path)?),
        None => None,
    };
    let saved = if preview.changed && !args.no_save {
        let name = match &args.save_as {
            Some(name) => name.clone(),
            None => library.free_name(&version_name(&parent.name, &preview.record))?,
        };
        let detector = super::virtual_model::optional_detector(store, &compute);
        let model = save_edited_version(
            library,
            &parent,
            &name,
            &preview,
            detector.as_ref().map(|d| (d, &compute.device)),
        )
        .with_context(|| format!("saving the edited version of {}", parent.name))?;
        Some(model)
    } else {
        None
    };

    if args.json {
        let report = EditReport {
            parent: &parent.id,
            changed: preview.changed,
            note: preview.note.as_deref(),
            edit: &preview.record,
            target: preview.pair.as_ref().map(|p| p.target.as_str()),
            neutral: preview.pair.as_ref().map(|p| p.neutral.as_str()),
            beta: preview.beta,
            channels: preview.channels,
            image: written.as_deref(),
            model: saved.as_ref().map(super::virtual_model::ModelJson::from),
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        if let Some(note) = &preview.note {
            eprintln!("{note}");
        }
        if let Some(path) = &written {
            println!("wrote {}", path.display());
        }
        if let Some(model) = &saved {
            println!(
                "saved {} ({}), edited from {}: {}",
                model.name,
                model.id,
                parent.name,
                preview.record.describe()
            );
        }
    }
    Ok(if preview.changed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}
