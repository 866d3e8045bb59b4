//! `facecast makeup ...`: the library of reference makeup faces, and makeup transfer onto photos.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;

use crate::compute::{BackendChoice, Compute};
use crate::io::collect::collect_photos;
use crate::io::{DecodeLimits, ExportFormat, ExportOptions, export_atomic, load_photo};
use crate::nets::beautygan::Generator;
use crate::nets::mtcnn::MtcnnNets;
use crate::pipeline::detect::photo::{DetectSettings, detect_photo};
use crate::pipeline::makeup::references::{Reference, ReferenceLibrary, import_reference};
use crate::pipeline::makeup::{MakeupSettings, apply_makeup};
use crate::weights::models::{BEAUTYGAN_ID, load_beautygan, load_mtcnn};
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
            let reference = library.get(&reference)?;
            let compute = Compute::select(backend)?;
            let nets = detector(&store, &compute)?;
            let files = store.require(BEAUTYGAN_ID)?;
            let file = files.first().context("BeautyGAN has no files")?;
            let (generator, config) = load_beautygan(file, &compute.device)?;
            eprintln!(
                "BeautyGAN conv_dim {} with {} residual blocks ({})",
                config.conv_dim,
                config.repeat_num,
                compute.label()
            );
            std::fs::create_dir_all(&out)
                .with_context(|| format!("{}: cannot create the folder", out.display()))?;
            let settings = MakeupSettings {
                reference: Some(reference.id().to_string()),
                strength,
                ..MakeupSettings::default()
            };
            let job = Apply {
                generator: &generator,
                nets: &nets,
                reference: &reference,
                settings: &settings,
                largest_only,
                compute: &compute,
            };
            let mut failed = 0;
            for photo in collect_photos(&photos) {
                match job.one(&photo, &out) {
                    Ok(line) => println!("{line}"),
                    Err(e) => {
                        failed += 1;
                        println!("{}: error: {e:#}", photo.display());
                    }
                }
            }
            Ok(if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            })
        }
    }
}

fn detector(store: &WeightsStore, compute: &Compute) -> anyhow::Result<MtcnnNets> {
    store.require("mtcnn")?;
    Ok(load_mtcnn(&store.model_dir("mtcnn"), &compute.device)?)
}

struct Apply<'a> {
    generator: &'a Generator,
    nets: &'a MtcnnNets,
    reference: &'a Reference,
    settings: &'a MakeupSettings,
    largest_only: bool,
    compute: &'a Compute,
}

impl Apply<'_> {
    fn one(&self, path: &Path, out: &Path) -> anyhow::Result<String> {
        let photo = load_photo(path, &DecodeLimits::default())?;
        let screening = DetectSettings::default();
        let found = detect_photo(self.nets, &photo.rgb, &screening, &self.compute.device)
            .with_context(|| format!("{}: face detection failed", path.display()))?;
        let mut faces: Vec<_> = found
            .faces
            .into_iter()
            .filter(|f| f.score >= screening.min_score)
            .collect();
        if self.largest_only {
            faces.truncate(1);
        }
        if faces.is_empty() {
            return Ok(format!("{}: no face, skipped", path.display()));
        }
        let result = apply_makeup(
            self.generator,
            &photo.rgb,
            &faces,
            &self.reference.crop,
            self.settings,
            &self.compute.device,
        )
        .with_context(|| format!("{}", path.display()))?;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "photo".into());
        let (format, ext) = match photo.format {
            image::ImageFormat::Jpeg => (ExportFormat::Jpeg { quality: 95 }, "jpg"),
            _ => (ExportFormat::Png, "png"),
        };
        let options = ExportOptions {
            format,
            icc_profile: photo.icc_profile.clone(),
            text: vec![
                ("facecast:step".into(), "makeup".into()),
                ("facecast:model".into(), BEAUTYGAN_ID.into()),
                ("facecast:reference".into(), self.reference.id().into()),
                ("facecast:strength".into(), format!("{}", self.settings.strength)),
            ],
            overwrite: false,
        };
        let dest = out.join(format!("{stem}-makeup.{ext}"));
        let written = export_atomic(&result.image, &dest, &options, &[path])?;
        Ok(format!(
            "{}: {} face(s) → {}",
            path.display(),
            result.faces,
            written.display()
        ))
    }
}
