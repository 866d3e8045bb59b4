//! What `facecast swap`, `facecast restore` and `facecast makeup apply` share: each runs as a
//! one-step recipe through the batch engine, so its file has the same face choice, the same
//! metadata schema, the same format-from-name and the same atomic writer as `facecast batch` and
//! the window's export with the same settings.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use burn::tensor::Device;

use crate::compute::{BackendChoice, Compute};
use crate::io::ExportFormat;
use crate::nets::mtcnn::MtcnnNets;
use crate::pipeline::batch::{BatchInput, BatchObserver, BatchSummary};
use crate::pipeline::recipe::{OutputFormat, Recipe, StepSection};
use crate::pipeline::runtime::NetworkCache;
use crate::pipeline::steps::{StepEnv, build_engine, load_networks};
use crate::weights::store::WeightsStore;

/// A recipe with every edit step off and no virtual model: the caller turns on the one step it runs.
pub fn recipe_without_steps() -> Recipe {
    // The default recipe swaps; restore and makeup are off by default.
    Recipe {
        swap: StepSection::default(),
        ..Recipe::default()
    }
}

/// Makes the recipe write exactly `out`: its folder, a name without placeholders, the format from
/// the name (`.png`, `.jpg`, `.jpeg`) at `quality`.
pub fn export_to_file(recipe: &mut Recipe, out: &Path, quality: u8) -> anyhow::Result<()> {
    recipe.export.format = match ExportFormat::from_name(out, quality)? {
        ExportFormat::Png => OutputFormat::Png,
        ExportFormat::Jpeg { .. } => OutputFormat::Jpeg,
    };
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .with_context(|| format!("{}: the output names no file", out.display()))?;
    // A literal name: braces would be read as placeholders of the naming template.
    if name.contains(['{', '}']) {
        bail!("{}: an output name may not contain '{{' or '}}'", out.display());
    }
    recipe.export.quality = quality;
    recipe.export.naming = name;
    recipe.export.folder = Some(match out.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    });
    Ok(())
}

/// What a one-step run did.
pub struct OneStepRun {
    pub summary: BatchSummary,
    /// The virtual model's name, when the recipe swaps.
    pub model_name: Option<String>,
    /// The device that ran the networks, in words.
    pub device: String,
}

/// Runs `recipe` on the inputs `inputs` gives (it may use the loaded detector, as `swap --faces`
/// does to number the faces), exactly as `facecast batch` would.
pub fn run_recipe(
    recipe: Recipe,
    backend: BackendChoice,
    data_dir: Option<PathBuf>,
    inputs: impl FnOnce(&MtcnnNets, &Device) -> anyhow::Result<Vec<BatchInput>>,
    observer: &mut dyn BatchObserver,
) -> anyhow::Result<OneStepRun> {
    let compute = Compute::select(backend)?;
    let store = WeightsStore::open(data_dir)?;
    let env = StepEnv {
        store: &store,
        device: &compute.device,
    };
    let mut cache = NetworkCache::default();
    let loaded = load_networks(&recipe, &env, &mut cache)?;
    let inputs = inputs(loaded.detector(&cache)?, &compute.device)?;
    if inputs.is_empty() {
        bail!("no photos found");
    }
    let mut engine = build_engine(recipe, &env, &cache, &loaded)?;
    let summary = engine.run(&inputs, observer)?;
    Ok(OneStepRun {
        summary,
        model_name: engine.model_name().map(str::to_string),
        device: compute.label(),
    })
}

/// Whether `a` and `b` name the same existing file (through links or other spellings).
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}
