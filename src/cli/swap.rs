//! `facecast swap`: puts the virtual model's face on the faces of one photo and writes the result
//! atomically, never over an original.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Serialize;

use crate::compute::{BackendChoice, Compute};
use crate::io::{DecodeLimits, ExportFormat, ExportOptions, export_atomic, load_photo};
use crate::jobs::ModelCache;
use crate::jobs::swap::{load_swap_models, remember_identity};
use crate::nets::mtcnn::MtcnnNets;
use crate::pipeline::detect::photo::{DetectSettings, detect_photo};
use crate::pipeline::swap::identity::source_from_arg;
use crate::pipeline::swap::{
    ClassicBlend, FaceReport, IdentitySource, SwapEngine, SwapJob, SwapSettings, choose_engine,
    resolve_identity, swap_faces,
};
use crate::weights::store::WeightsStore;

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

/// The export format an output name asks for.
pub fn format_for(out: &Path) -> anyhow::Result<ExportFormat> {
    let ext = out
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "png" => Ok(ExportFormat::Png),
        "jpg" | "jpeg" => Ok(ExportFormat::Jpeg { quality: 95 }),
        _ => bail!(
            "{}: cannot tell the format from the name; end it in .png or .jpg",
            out.display()
        ),
    }
}

pub fn run(args: SwapArgs, backend: BackendChoice, data_dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let format = format_for(&args.out)?;
    let settings = args.settings();
    let source = source_from_arg(&args.virtual_model, data_dir.as_deref())?;
    let compute = Compute::select(backend)?;
    let device = &compute.device;
    let store = WeightsStore::open(data_dir)?;
    let photo = load_photo(&args.photo, &DecodeLimits::default())?;

    let mut cache = ModelCache::default();
    // The detector always runs: the target photo's faces are found here too.
    let loaded = load_swap_models(&store, &settings, true, &mut cache, device).map_err(anyhow::Error::msg)?;
    let mtcnn = loaded
        .mtcnn
        .as_deref()
        .and_then(|k| cache.get::<MtcnnNets>(k))
        .context("the face detector did not load")?;
    let screening = DetectSettings::default();
    let found = detect_photo(mtcnn, &photo.rgb, &screening, device)
        .with_context(|| format!("{}: face detection failed", args.photo.display()))?;
    let faces = chosen_faces(&args, &found.faces, screening.min_score)?;

    let (engine, fallback) = choose_engine(&settings, loaded.faceshifter_missing.as_deref())?;
    if let Some(note) = &fallback {
        eprintln!("facecast: warning: {note}");
    }
    for note in &loaded.notes {
        eprintln!("facecast: note: {note}");
    }
    let identity = resolve_identity(&source, Some(mtcnn), device)?;
    let nets = loaded.nets(&cache, engine);
    let job = SwapJob {
        photo: &photo.rgb,
        faces: &faces,
        identity: &identity,
        settings: &settings,
        engine,
    };
    let outcome = swap_faces(&job, nets, device, &mut |_, _| true)?;
    if let Some(note) = remember_identity(&store, &source, outcome.identity_embedding.as_deref()) {
        eprintln!("facecast: warning: {note}");
    }

    let mut protected: Vec<&Path> = vec![&args.photo];
    if let IdentitySource::Photo(p) = &source {
        protected.push(p);
    }
    let text = vec![
        (
            "Software".to_string(),
            format!("Facecast {}", env!("CARGO_PKG_VERSION")),
        ),
        ("facecast.step".to_string(), outcome.label()),
        ("facecast.virtual-model".to_string(), identity.name.clone()),
        ("facecast.swap".to_string(), serde_json::to_string(&settings)?),
    ];
    let options = ExportOptions {
        format,
        icc_profile: photo.icc_profile.clone(),
        text,
        overwrite: args.overwrite,
    };
    let written = export_atomic(&outcome.image, &args.out, &options, &protected)?;

    let mut notes = outcome.notes.clone();
    notes.extend(fallback);
    notes.extend(loaded.notes.iter().cloned());
    if args.json {
        let report = Report {
            photo: &args.photo,
            out: written,
            engine: outcome.engine.label(),
            virtual_model: identity.name.clone(),
            identity_ms: ms(outcome.identity_time),
            faces: outcome.faces.iter().map(face_json).collect(),
            notes,
        };
        println!("{}", serde_json::to_string(&report)?);
    } else {
        for f in &outcome.faces {
            print_face(f, outcome.engine, args.timings);
        }
        if args.timings {
            println!(
                "identity of the virtual model (ArcFace): {:.1} ms",
                ms(outcome.identity_time)
            );
        }
        println!(
            "{}: {} → {} ({})",
            args.photo.display(),
            outcome.label(),
            written.display(),
            compute.label()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn chosen_faces(
    args: &SwapArgs,
    faces: &[crate::pipeline::detect::Face],
    min_score: f32,
) -> anyhow::Result<Vec<(usize, crate::pipeline::detect::Face)>> {
    if args.faces.is_empty() {
        let chosen: Vec<_> = faces
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, f)| f.score >= min_score)
            .collect();
        if chosen.is_empty() {
            bail!(
                "{}: no face scoring at least {min_score:.2} was found; nothing to swap",
                args.photo.display()
            );
        }
        return Ok(chosen);
    }
    args.faces
        .iter()
        .map(|&n| {
            n.checked_sub(1)
                .and_then(|i| faces.get(i).map(|f| (i, *f)))
                .with_context(|| {
                    format!(
                        "{}: there is no face {n}; {} were found (numbered from 1, largest first)",
                        args.photo.display(),
                        faces.len()
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
