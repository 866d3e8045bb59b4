//! `facecast swap`: puts the virtual model's face on the faces of one photo and writes the result
//! atomically, never over an original. It runs as a one-step recipe through the batch engine, so
//! its output has the same pixels and metadata as `facecast batch` and the window's export.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Serialize;

use super::one_step::{export_to_file, recipe_without_steps, run_recipe, same_file};
use crate::compute::BackendChoice;
use crate::io::{DecodeLimits, load_photo};
use crate::nets::mtcnn::MtcnnNets;
use crate::pipeline::batch::{BatchInput, Measured, Unobserved};
use crate::pipeline::detect::Face;
use crate::pipeline::detect::photo::{DetectSettings, detect_photo};
use crate::pipeline::recipe::{FaceMode, Recipe, StepSection};
use crate::pipeline::swap::identity::source_from_arg;
use crate::pipeline::swap::{ClassicBlend, FaceReport, IdentitySource, SwapEngine, SwapSettings};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EngineArg {
    Faceshifter,
    Classic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BlendArg {
    Poisson,
    Multiband,
}

#[derive(Debug, clap::Args)]
pub struct SwapArgs {
    /// The virtual model: a face photo (its largest face is used) or a saved virtual model's name or id.
    #[arg(long = "virtual", value_name = "NAME_OR_PHOTO")]
    pub virtual_model: String,
    /// faceshifter, or classic (no swap network needed). Without this option FaceShifter is used, and
    /// the classic engine, with a warning, when FaceShifter's weights are not installed.
    #[arg(long, value_enum)]
    pub engine: Option<EngineArg>,
    /// How the classic engine hides the seam.
    #[arg(long, value_enum, default_value = "poisson")]
    pub blend: BlendArg,
    /// Do not match the new face's colour to the target's skin.
    #[arg(long)]
    pub no_color_match: bool,
    /// Margin of the paste mask on each side, as a fraction of the aligned face crop.
    #[arg(long, value_name = "FRACTION")]
    pub mask_padding: Option<f32>,
    /// Feathering of the paste mask, in aligned-crop pixels (0: a hard edge).
    #[arg(long, value_name = "PX")]
    pub mask_blur: Option<f32>,
    /// Swap only these faces, numbered from 1 by size (largest first), comma-separated; default:
    /// every face scoring at least the screening score (0.70).
    #[arg(long, value_delimiter = ',', value_name = "N,...")]
    pub faces: Vec<usize>,
    /// Print each face's time per stage: align, ArcFace, AEI-Net (or the classic blend), paste.
    #[arg(long)]
    pub timings: bool,
    /// Print a JSON report on stdout.
    #[arg(long)]
    pub json: bool,
    /// Replace OUT when it exists (otherwise a free numbered name beside it is used).
    #[arg(long)]
    pub overwrite: bool,
    /// Where to write the swapped photo (.png or .jpg); it may not be the photo itself.
    #[arg(long, short, value_name = "FILE")]
    pub out: PathBuf,
    /// The photo whose faces are swapped; it is never modified.
    #[arg(value_name = "PHOTO")]
    pub photo: PathBuf,
}

impl SwapArgs {
    /// The settings these options describe (the same struct the window and recipes use).
    pub fn settings(&self) -> SwapSettings {
        let mut s = SwapSettings::default();
        if let Some(engine) = self.engine {
            s.engine = match engine {
                EngineArg::Faceshifter => SwapEngine::FaceShifter,
                EngineArg::Classic => SwapEngine::Classic,
            };
            // An engine asked for by name is the one that runs, or the command fails.
            s.fallback_to_classic = false;
        }
        s.classic_blend = match self.blend {
            BlendArg::Poisson => ClassicBlend::Poisson,
            BlendArg::Multiband => ClassicBlend::MultiBand,
        };
        s.color_match = !self.no_color_match;
        if let Some(p) = self.mask_padding {
            s.mask.padding = p;
        }
        if let Some(b) = self.mask_blur {
            s.mask.blur_sigma = b;
        }
        s
    }
}

#[derive(Serialize)]
struct Report<'a> {
    photo: &'a Path,
    out: PathBuf,
    engine: &'static str,
    virtual_model: String,
    identity_ms: f64,
    faces: Vec<FaceJson>,
    notes: Vec<String>,
}

#[derive(Serialize)]
struct FaceJson {
    /// 1-based, largest first, like `--faces`.
    face: usize,
    similarity: Option<f32>,
    align_ms: f64,
    arcface_ms: f64,
    generate_ms: f64,
    paste_ms: f64,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The one-step recipe these options describe: the swap with the options' settings, the output
/// named exactly (`--out` as the recipe's folder and a name without placeholders), its format from
/// the name. `facecast batch` with the same settings writes the same pixels and the same metadata.
pub fn one_step_recipe(args: &SwapArgs) -> anyhow::Result<Recipe> {
    let mut recipe = recipe_without_steps();
    recipe.virtual_model = Some(args.virtual_model.clone());
    recipe.swap = StepSection {
        enabled: true,
        settings: args.settings(),
    };
    if !args.faces.is_empty() {
        recipe.faces.mode = FaceMode::Selected;
    }
    export_to_file(&mut recipe, &args.out, OUT_QUALITY)?;
    recipe.export.overwrite = args.overwrite;
    Ok(recipe)
}

/// JPEG quality of `facecast swap`'s output.
const OUT_QUALITY: u8 = 95;

/// Runs the swap as a one-step recipe through the batch engine (the same steps, face choice,
/// metadata and atomic writer as `facecast batch` and the window's export).
pub fn run(args: SwapArgs, backend: BackendChoice, data_dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let recipe = one_step_recipe(&args)?;
    if let IdentitySource::Photo(face) = source_from_arg(&args.virtual_model, data_dir.as_deref())?
        && same_file(&face, &args.out)
    {
        bail!(
            "refusing to export to {}: it is the virtual model's photo, which is never overwritten",
            args.out.display()
        );
    }
    let detect = recipe.detect_settings();
    let run = run_recipe(
        recipe,
        backend,
        data_dir,
        |detector, device| {
            let mut input = BatchInput::new(args.photo.clone());
            if !args.faces.is_empty() {
                input.chosen = Some(numbered_faces(&args, &detect, detector, device)?);
            }
            Ok(vec![input])
        },
        &mut Unobserved,
    )?;
    let report = run
        .summary
        .reports
        .first()
        .context("the engine reported nothing for the photo")?;
    let written = match (&report.output, &report.reason) {
        (Some(out), _) => out.clone(),
        (None, Some(reason)) => bail!("{reason}"),
        (None, None) => bail!("{}: not exported", args.photo.display()),
    };
    let swap = report.measured.iter().find_map(|m| {
        if let Measured::Swap {
            engine,
            identity_time,
            faces,
        } = m
        {
            Some((*engine, *identity_time, faces.as_slice()))
        } else {
            None
        }
    });
    let (engine_used, identity_time, faces) = swap.context("the swap step reported nothing")?;
    let virtual_model = run.model_name.clone().unwrap_or_default();

    if args.json {
        let out = Report {
            photo: &args.photo,
            out: written,
            engine: engine_used.label(),
            virtual_model,
            identity_ms: ms(identity_time),
            faces: faces.iter().map(face_json).collect(),
            notes: report.notes.clone(),
        };
        println!("{}", serde_json::to_string(&out)?);
    } else {
        for note in report.notes.iter().filter(|n| !n.starts_with("Face ")) {
            eprintln!("facecast: note: {note}");
        }
        for f in faces {
            print_face(f, engine_used, args.timings);
        }
        if args.timings {
            println!(
                "identity of the virtual model (ArcFace): {:.1} ms",
                ms(identity_time)
            );
        }
        println!(
            "{}: Swap ({}), {} → {} ({})",
            args.photo.display(),
            engine_used.label(),
            crate::pipeline::faces_text(faces.len()),
            written.display(),
            run.device
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The faces `--faces` names, numbered from 1 by size (largest first) as detection lists them.
fn numbered_faces(
    args: &SwapArgs,
    detect: &DetectSettings,
    detector: &MtcnnNets,
    device: &burn::tensor::Device,
) -> anyhow::Result<Vec<Face>> {
    let photo = load_photo(&args.photo, &DecodeLimits::default())?;
    let found = detect_photo(detector, &photo.rgb, detect, device)
        .with_context(|| format!("{}: face detection failed", args.photo.display()))?;
    args.faces
        .iter()
        .map(|&n| {
            n.checked_sub(1)
                .and_then(|i| found.faces.get(i).copied())
                .with_context(|| {
                    format!(
                        "{}: there is no face {n}; {} were found (numbered from 1, largest first)",
                        args.photo.display(),
                        found.faces.len()
                    )
                })
        })
        .collect()
}

fn face_json(f: &FaceReport) -> FaceJson {
    FaceJson {
        face: f.face + 1,
        similarity: f.similarity,
        align_ms: ms(f.timings.align),
        arcface_ms: ms(f.timings.arcface),
        generate_ms: ms(f.timings.generate),
        paste_ms: ms(f.timings.paste),
    }
}

fn print_face(f: &FaceReport, engine: SwapEngine, timings: bool) {
    let similarity = match f.similarity {
        Some(s) => format!("identity similarity {s:.3}"),
        None => "no identity check (ArcFace IR-SE50 is not installed)".to_string(),
    };
    println!("face {}: {similarity}", f.face + 1);
    if timings {
        let generate = match engine {
            SwapEngine::FaceShifter => "AEI-Net",
            SwapEngine::Classic => "blend",
        };
        let t = &f.timings;
        println!(
            "face {}: align {:.1} ms, ArcFace {:.1} ms, {generate} {:.1} ms, paste {:.1} ms, total {:.1} ms",
            f.face + 1,
            ms(t.align),
            ms(t.arcface),
            ms(t.generate),
            ms(t.paste),
            ms(t.total())
        );
    }
}
