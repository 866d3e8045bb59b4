//! `facecast makeup ...`: the library of reference makeup faces, and makeup transfer onto photos.
//! `makeup apply` runs as a one-step recipe through the batch engine, so its files have the same
//! pixels and metadata as `facecast batch` and the window's export with the same settings.

use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;

use super::one_step::{recipe_without_steps, run_recipe};
use crate::compute::{BackendChoice, Compute};
use crate::nets::mtcnn::MtcnnNets;
use crate::pipeline::batch::{BatchInput, BatchObserver, FileReport, FileStatus, Skip};
use crate::pipeline::makeup::MakeupSettings;
use crate::pipeline::makeup::references::{ReferenceLibrary, import_reference};
use crate::pipeline::recipe::{FaceMode, OutputFormat, Recipe, StepSection};
use crate::weights::models::load_mtcnn;
use crate::weights::store::WeightsStore;

#[derive(Debug, clap::Args)]
pub struct MakeupArgs {
    #[command(subcommand)]
    pub command: MakeupCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum MakeupCommand {
    /// The reference faces in the library.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Adds the most prominent face of a photo to the library (needs MTCNN).
    Import {
        photo: PathBuf,
        /// What to call it (default: the file's name).
        #[arg(long)]
        name: Option<String>,
    },
    /// Deletes a reference face from the library.
    Remove { id: String },
    /// Puts a reference's makeup on every face of the photos scoring at least 0.70 and writes the
    /// results into a folder (the originals are never touched).
    Apply {
        /// The reference's id (see `facecast makeup list`).
        #[arg(long)]
        reference: String,
        /// 0 leaves the faces unchanged, 1 is the network's result as it is.
        #[arg(long, default_value_t = MakeupSettings::default().strength)]
        strength: f32,
        /// Only the largest face of each photo.
        #[arg(long)]
        largest_only: bool,
        /// Folder for the results (`<name>-makeup.<ext>`).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Photos or folders (searched recursively).
        #[arg(required = true, value_name = "PHOTOS")]
        photos: Vec<PathBuf>,
    },
}

#[derive(Debug, Serialize)]
struct ReferenceJson<'a> {
    id: &'a str,
    name: &'a str,
    source: &'a str,
    crop: PathBuf,
}

pub fn run(args: MakeupArgs, backend: BackendChoice, data_dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let store = WeightsStore::open(data_dir)?;
    let library = ReferenceLibrary::new(store.data_dir());
    match args.command {
        MakeupCommand::List { json } => {
            let listing = library.list()?;
            for problem in &listing.problems {
                eprintln!("warning: {problem}");
            }
            if json {
                let refs: Vec<ReferenceJson> = listing
                    .references
                    .iter()
                    .map(|r| ReferenceJson {
                        id: r.id(),
                        name: r.name(),
                        source: &r.record.source,
                        crop: r.dir.join(&r.record.crop),
                    })
                    .collect();
                println!(
                    "{}",
                    serde_json::json!({ "references": refs, "problems": listing.problems })
                );
            } else if listing.references.is_empty() {
                println!(
                    "no makeup references in {}; add one with `facecast makeup import PHOTO`",
                    library.root().display()
                );
            } else {
                for r in &listing.references {
                    println!("{}  {}  (from {})", r.id(), r.name(), r.record.source);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        MakeupCommand::Import { photo, name } => {
            let compute = Compute::select(backend)?;
            let nets = detector(&store, &compute)?;
            let reference = import_reference(&library, &nets, &photo, name.as_deref(), &compute.device)?;
            println!("{}  {}", reference.id(), reference.name());
            Ok(ExitCode::SUCCESS)
        }
        MakeupCommand::Remove { id } => {
            if library.remove(&id)? {
                println!("{id}: removed");
                Ok(ExitCode::SUCCESS)
            } else {
                anyhow::bail!("no makeup reference {id:?} in {}", library.root().display())
            }
        }
        MakeupCommand::Apply {
            reference,
            strength,
            largest_only,
            out,
            photos,
        } => {
            // Looked up first, so a wrong id is said before any network loads.
            let reference = library.get(&reference)?;
            let settings = MakeupSettings {
                reference: Some(reference.id().to_string()),
                strength,
                ..MakeupSettings::default()
            };
            let recipe = one_step_recipe(settings, largest_only, out);
            let run = run_recipe(
                recipe,
                backend,
                Some(store.data_dir().to_path_buf()),
                |_, _| Ok(BatchInput::walk(&photos)),
                &mut Lines,
            )?;
            let summary = &run.summary;
            eprintln!(
                "{} made up, {} skipped, {} failed ({})",
                summary.count(FileStatus::Done),
                summary.count(FileStatus::Skipped),
                summary.count(FileStatus::Failed),
                run.device
            );
            if let Some(stop) = &summary.stopped {
                eprintln!("facecast: {stop}");
            }
            // A photo without a face is not a failure: there is nothing to make up.
            Ok(
                if summary.count(FileStatus::Failed) == 0 && summary.stopped.is_none() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(2)
                },
            )
        }
    }
}

/// The one-step recipe `makeup apply` runs: makeup with `settings` on every face scoring at least
/// 0.70 (or the largest), each photo written as `<name>-makeup.<ext>` into `out` (JPEG stays JPEG,
/// the rest PNG), never replacing a file.
pub fn one_step_recipe(settings: MakeupSettings, largest_only: bool, out: PathBuf) -> Recipe {
    let mut recipe = recipe_without_steps();
    recipe.makeup = StepSection {
        enabled: true,
        settings,
    };
    if largest_only {
        recipe.faces.mode = FaceMode::Largest;
    }
    recipe.export.format = OutputFormat::Same;
    recipe.export.quality = OUT_QUALITY;
    recipe.export.naming = "{stem}-makeup.{ext}".to_string();
    recipe.export.folder = Some(out);
    recipe
}

/// JPEG quality of `makeup apply`'s JPEG results.
const OUT_QUALITY: u8 = 95;

/// One line per photo on stdout as the run goes.
struct Lines;

impl BatchObserver for Lines {
    fn file_finished(&mut self, _index: usize, _total: usize, report: &FileReport) {
        let input = report.input.display();
        // The reasons start with the file's name; the lines say it once.
        let reason = report.reason.as_deref().unwrap_or_default();
        let reason = reason.strip_prefix(&format!("{input}: ")).unwrap_or(reason);
        match (report.status, &report.output, report.skip) {
            (FileStatus::Done, Some(out), _) => {
                println!("{input}: {} face(s) → {}", report.faces, out.display())
            }
            (FileStatus::Skipped, _, Some(Skip::NoFace)) => println!("{input}: no face, skipped"),
            (FileStatus::Skipped, _, _) => println!("{input}: skipped: {reason}"),
            _ => println!("{input}: error: {reason}"),
        }
    }
}

fn detector(store: &WeightsStore, compute: &Compute) -> anyhow::Result<MtcnnNets> {
    store.require("mtcnn")?;
    Ok(load_mtcnn(&store.model_dir("mtcnn"), &compute.device)?)
}
