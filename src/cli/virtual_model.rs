//! `facecast virtual ...`: generate, import, list, rename, duplicate and delete virtual models.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use serde::Serialize;

use crate::cast::{GeneratedOrigin, NewVirtualModel, Origin, VirtualModel, VirtualModelLibrary};
use crate::compute::{BackendChoice, Compute};
use crate::io::{ExportFormat, ExportOptions, export_atomic};
use crate::nets::mtcnn::MtcnnNets;
use crate::pipeline::generate::{
    DEFAULT_TRUNCATION, GenerateSettings, NoiseChoice, generate, generator_info,
};
use crate::pipeline::virtual_face::{find_faces, imported_model, prepare_generated};
use crate::weights::models::{MTCNN_ID, load_mtcnn, load_stylegan2_installed};
use crate::weights::store::WeightsStore;

#[derive(Debug, clap::Args)]
pub struct VirtualArgs {
    #[command(subcommand)]
    pub command: VirtualCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum VirtualCommand {
    /// Generate a face with StyleGAN2 from a seed; save it as a virtual model (--name) and/or write
    /// the image (--out).
    #[command(group = clap::ArgGroup::new("keep").required(true).multiple(true).args(["name", "out"]))]
    Generate {
        /// The seed (0 to 4294967295); the same seed and truncation always give the same face.
        #[arg(long)]
        seed: u32,
        /// Truncation ψ: lower is more average and more reliable, 1 is no truncation.
        #[arg(long, default_value_t = DEFAULT_TRUNCATION)]
        truncation: f64,
        /// Noise maps: the checkpoint's fixed ones, or drawn from the seed.
        #[arg(long, value_enum, default_value = "checkpoint")]
        noise: NoiseArg,
        /// Save it in the virtual-model library under this name.
        #[arg(long)]
        name: Option<String>,
        /// Write the generated image here (PNG, or JPEG by the extension).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// A generator trained with `facecast virtual train` (its --name) instead of the
        /// installed StyleGAN2.
        #[arg(long, value_name = "NAME")]
        generator: Option<String>,
        /// Print a JSON report on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Fine-tune StyleGAN2 on your own face photos and register the result as a generator.
    Train(super::train_generator::TrainArgs),
    /// Whether a trained generator makes near-copies of its training photos (ArcFace identity of
    /// faces from fixed seeds against the photos); the result goes into its model.json.
    CheckCopies(super::check_copies::CheckCopiesArgs),
    /// Make a virtual model from face photos (MTCNN finds the face in each).
    Import {
        name: String,
        #[arg(required = true, value_name = "PHOTO")]
        photos: Vec<PathBuf>,
        /// Which face to use when a photo has several, numbered from 1, largest first (as
        /// `facecast detect` lists them). Once for every photo, or once per photo in order.
        #[arg(long, value_name = "N")]
        face: Vec<usize>,
        #[arg(long)]
        json: bool,
    },
    /// Every virtual model, and any damaged library entry.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Give a virtual model a new name.
    Rename { model: String, new_name: String },
    /// Copy a virtual model (to edit the copy, say).
    Duplicate {
        model: String,
        #[arg(long)]
        name: Option<String>,
    },
    /// Move a virtual model to the deleted-models folder (kept 30 days).
    Delete { model: String },
    /// Change a generated virtual model with a text prompt (StyleCLIP) and save it as a new version.
    Edit(super::text_edit::EditArgs),
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum NoiseArg {
    Checkpoint,
    Seeded,
}

pub fn run(args: VirtualArgs, backend: BackendChoice, data_dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let store = WeightsStore::open(data_dir)?;
    let library = VirtualModelLibrary::open(store.data_dir());
    match args.command {
        VirtualCommand::Generate {
            seed,
            truncation,
            noise,
            name,
            out,
            generator,
            json,
        } => {
            let noise = match noise {
                NoiseArg::Checkpoint => NoiseChoice::Checkpoint,
                NoiseArg::Seeded => NoiseChoice::Seeded,
            };
            let settings = GenerateSettings {
                seed,
                truncation,
                noise,
            };
            generate_cmd(
                &store,
                &library,
                backend,
                settings,
                GenerateTarget { name, out, generator },
                json,
            )
        }
        VirtualCommand::Import {
            name,
            photos,
            face,
            json,
        } => import_cmd(&store, &library, backend, &name, &photos, &face, json),
        VirtualCommand::Train(args) => super::train_generator::run(args, &store, backend),
        VirtualCommand::CheckCopies(args) => super::check_copies::run(args, &store, backend),
        VirtualCommand::List { json } => list_cmd(&library, json),
        VirtualCommand::Rename { model, new_name } => {
            let before = library.find(&model)?.name;
            let m = library.rename(&model, &new_name)?;
            println!("renamed {before} to {} ({})", m.name, m.id);
            Ok(ExitCode::SUCCESS)
        }
        VirtualCommand::Duplicate { model, name } => {
            let m = library.duplicate(&model, name.as_deref())?;
            println!("duplicated as {} ({})", m.name, m.id);
            Ok(ExitCode::SUCCESS)
        }
        VirtualCommand::Edit(args) => super::text_edit::run(args, &store, &library, backend),
        VirtualCommand::Delete { model } => {
            let m = library.delete(&model)?;
            println!(
                "deleted {} ({}); it is kept for 30 days in {}",
                m.name,
                m.id,
                library.root().join(".deleted").display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// MTCNN when it is installed (a generated face is aligned without it).
pub(super) fn optional_detector(store: &WeightsStore, compute: &Compute) -> Option<MtcnnNets> {
    store.require(MTCNN_ID).ok()?;
    match load_mtcnn(&store.model_dir(MTCNN_ID), &compute.device) {
        Ok(nets) => Some(nets),
        Err(e) => {
            eprintln!("note: MTCNN could not be loaded ({e}); using the FFHQ landmark positions");
            None
        }
    }
}

#[derive(Serialize)]
struct GenerateReport<'a> {
    seed: u32,
    truncation: f64,
    noise: crate::cast::NoiseSpec,
    width: u32,
    height: u32,
    reduced_weights: bool,
    image: Option<&'a Path>,
    model: Option<ModelJson>,
}

/// Where a generated face goes, and which generator makes it.
struct GenerateTarget {
    name: Option<String>,
    out: Option<PathBuf>,
    /// A trained generator's name; the installed StyleGAN2 when absent.
    generator: Option<String>,
}

fn generate_cmd(
    store: &WeightsStore,
    library: &VirtualModelLibrary,
    backend: BackendChoice,
    settings: GenerateSettings,
    target: GenerateTarget,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let GenerateTarget { name, out, generator } = target;
    // Check the name before minutes of work are spent.
    if let Some(name) = &name
        && let Ok(existing) = library.find(name)
        && crate::cast::library::name_key(&existing.name) == crate::cast::library::name_key(name)
    {
        bail!(
            "a virtual model called {:?} already exists (id {}); choose another name",
            existing.name,
            existing.id
        );
    }
    let compute = Compute::select(backend)?;
    let loaded = match &generator {
        Some(trained) => super::train_generator::load_trained(store.data_dir(), trained, &compute.device)?,
        None => load_stylegan2_installed(store, &compute.device)?,
    };
    if loaded.reduced && !json {
        eprintln!(
            "note: {} holds reduced-width test weights; the faces will not look real",
            loaded.path.display()
        );
    }
    let generated = generate(&loaded.model, &settings)?;
    let written = match &out {
        Some(path) => Some(write_image(&generated.image, path)?),
        None => None,
    };
    let model = match name {
        Some(name) => {
            let detector = optional_detector(store, &compute);
            let prepared =
                prepare_generated(&generated.image, detector.as_ref().map(|d| (d, &compute.device)))?;
            let model = library.create(NewVirtualModel {
                name,
                parent: None,
                origin: Origin::Generated(GeneratedOrigin {
                    seed: Some(generated.seed),
                    truncation: generated.truncation,
                    noise: generated.noise,
                    z_rng: crate::cast::model::Z_RNG.to_string(),
                    generator: match &generator {
                        // A trained generator is found by its name in the generators folder.
                        Some(trained) => crate::cast::GeneratorInfo {
                            weights: format!("generators/{trained}"),
                            ..generator_info(&loaded)
                        },
                        None => generator_info(&loaded),
                    },
                    latent_file: String::new(),
                    edits: Vec::new(),
                }),
                face: generated.image.clone(),
                face_landmarks: prepared.landmarks,
                landmarks_from: prepared.from,
                crops: vec![prepared.crop],
                latent: Some(generated.latent.clone()),
                identity: None,
            })?;
            if !json {
                println!(
                    "saved virtual model {} ({}): {}; {}",
                    model.name,
                    model.id,
                    model.origin.summary(),
                    prepared.from.describe()
                );
            }
            Some(model)
        }
        None => None,
    };
    if let Some(path) = &written
        && !json
    {
        println!("wrote {}", path.display());
    }
    if json {
        let report = GenerateReport {
            seed: generated.seed,
            truncation: generated.truncation,
            noise: generated.noise,
            width: generated.image.width(),
            height: generated.image.height(),
            reduced_weights: loaded.reduced,
            image: written.as_deref(),
            model: model.as_ref().map(ModelJson::from),
        };
        print_json(&report)?;
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn write_image(image: &image::RgbImage, path: &Path) -> anyhow::Result<PathBuf> {
    let format = ExportFormat::from_name(path, 95)?;
    let options = ExportOptions {
        format,
        icc_profile: None,
        text: vec![("Software".into(), "Facecast".into())],
        // The file was named on the command line: replacing it is what was asked.
        overwrite: true,
    };
    Ok(export_atomic(image, path, &options, &[])?)
}

fn import_cmd(
    store: &WeightsStore,
    library: &VirtualModelLibrary,
    backend: BackendChoice,
    name: &str,
    photos: &[PathBuf],
    faces: &[usize],
    json: bool,
) -> anyhow::Result<ExitCode> {
    if faces.len() > 1 && faces.len() != photos.len() {
        bail!(
            "--face was given {} times for {} photos: give it once (for every photo) or once per photo",
            faces.len(),
            photos.len()
        );
    }
    if faces.contains(&0) {
        bail!("faces are numbered from 1 (largest first); --face 0 does not exist");
    }
    let name = crate::cast::library::check_name(name)?;
    if let Ok(existing) = library.find(&name)
        && crate::cast::library::name_key(&existing.name) == crate::cast::library::name_key(&name)
    {
        bail!(
            "a virtual model called {:?} already exists (id {}); choose another name",
            existing.name,
            existing.id
        );
    }
    store
        .require(MTCNN_ID)
        .context("importing a face photo needs MTCNN, the face detector")?;
    let compute = Compute::select(backend)?;
    let nets = load_mtcnn(&store.model_dir(MTCNN_ID), &compute.device)?;
    let mut found = Vec::new();
    for (i, path) in photos.iter().enumerate() {
        let photo = find_faces(path, &nets, &compute.device)?;
        let chosen = faces.get(i).or(faces.first()).copied();
        let index = match chosen {
            Some(number) => {
                photo.face(number)?;
                number - 1
            }
            None => {
                if photo.faces.len() > 1 {
                    eprintln!(
                        "note: {} has {} faces; using the largest (face 1). Choose another with --face N \
                         (`facecast detect {}` lists them).",
                        path.display(),
                        photo.faces.len(),
                        path.display()
                    );
                }
                0
            }
        };
        found.push((photo, index));
    }
    let picks: Vec<_> = found.iter().map(|(p, i)| (p, *i)).collect();
    let model = library.create(imported_model(&name, &picks)?)?;
    if json {
        print_json(&ModelJson::from(&model))?;
    } else {
        println!(
            "saved virtual model {} ({}): {}",
            model.name,
            model.id,
            model.origin.summary()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A model as `list --json` and the reports print it.
#[derive(Serialize)]
pub struct ModelJson {
    id: String,
    name: String,
    summary: String,
    parent: Option<String>,
    created_unix: u64,
    dir: PathBuf,
    face: PathBuf,
    crops: Vec<PathBuf>,
    has_identity: bool,
    origin: Origin,
}

impl From<&VirtualModel> for ModelJson {
    fn from(m: &VirtualModel) -> ModelJson {
        ModelJson {
            id: m.id.clone(),
            name: m.name.clone(),
            summary: m.origin.summary(),
            parent: m.parent.clone(),
            created_unix: m.created_unix,
            dir: m.dir().to_path_buf(),
            face: m.face_path(),
            crops: m.crop_paths(),
            has_identity: m.identity.is_some(),
            origin: m.origin.clone(),
        }
    }
}

#[derive(Serialize)]
struct ListJson {
    library: PathBuf,
    models: Vec<ModelJson>,
    damaged: Vec<crate::cast::DamagedEntry>,
}

fn list_cmd(library: &VirtualModelLibrary, json: bool) -> anyhow::Result<ExitCode> {
    let listing = library.list()?;
    if json {
        print_json(&ListJson {
            library: library.root().to_path_buf(),
            models: listing.models.iter().map(ModelJson::from).collect(),
            damaged: listing.damaged.clone(),
        })?;
    } else {
        let mut text = format!("Virtual models in {}\n", library.root().display());
        if listing.models.is_empty() {
            text += "none yet: `facecast virtual generate --seed N --name NAME` or `facecast virtual import NAME PHOTO`\n";
        }
        let width = listing
            .models
            .iter()
            .map(|m| m.name.chars().count())
            .max()
            .unwrap_or(0);
        for m in &listing.models {
            let pad = width - m.name.chars().count();
            text += &format!(
                "{}{}  {}  {}\n",
                m.name,
                " ".repeat(pad),
                m.id,
                m.origin.summary()
            );
        }
        for d in &listing.damaged {
            text += &format!("damaged: {}: {}\n", d.dir.display(), d.reason);
        }
        write_stdout(&text)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(value).context("writing JSON")?;
    text.push('\n');
    write_stdout(&text)
}

fn write_stdout(text: &str) -> anyhow::Result<()> {
    // A closed pipe (`| head`) is the reader's choice, not a failure.
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e).context("writing to stdout"),
        _ => Ok(()),
    }
}
