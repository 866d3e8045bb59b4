//! `facecast restore`: detects the faces of one photo with MTCNN and restores them with GPEN,
//! writing the result atomically to a new file (never over the photo).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};

use crate::compute::{BackendChoice, Compute};
use crate::io::{DecodeLimits, ExportFormat, ExportOptions, export_atomic, load_photo};
use crate::pipeline::detect::photo::{DetectSettings, detect_photo};
use crate::pipeline::restore::{GpenModel, RestoreSettings, restore_faces};
use crate::weights::models::load_gpen;
use crate::weights::store::{REDUCED_NOTE, WeightsStore};

#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// Blur each aligned face first with this Gaussian sigma (pixels of a 512-px face): for swapped
    /// faces with doubled features.
    #[arg(long, value_name = "SIGMA")]
    pub blur: Option<f32>,
    /// How much of the restored face replaces the face, in percent.
    #[arg(long, value_name = "PERCENT", default_value_t = 100.0)]
    pub blend: f32,
    /// Which GPEN network: 512 (the official default) or 256 (faster, softer).
    #[arg(long, value_name = "512|256", default_value = "512", value_parser = parse_model)]
    pub model: GpenModel,
    /// Restore the faces scoring at least this (the screening rule uses 0.70).
    #[arg(long, value_name = "S", default_value_t = DetectSettings::default().min_score)]
    pub min_score: f32,
    /// Replace FILE when it exists; otherwise a free numbered name beside it is used.
    #[arg(long)]
    pub overwrite: bool,
    /// JPEG quality (1 to 100) when FILE ends in .jpg or .jpeg.
    #[arg(long, default_value_t = 95)]
    pub quality: u8,
    /// The photo to restore; it is never modified.
    #[arg(value_name = "PHOTO")]
    pub photo: PathBuf,
    /// Where to write the result (.jpg, .jpeg or .png).
    #[arg(long, short, value_name = "FILE")]
    pub out: PathBuf,
}

fn parse_model(text: &str) -> Result<GpenModel, String> {
    let side = text
        .trim()
        .trim_start_matches("gpen-bfr-")
        .parse::<u32>()
        .map_err(|_| format!("\"{text}\" is not 512 or 256"))?;
    GpenModel::from_side(side).ok_or_else(|| format!("there is no GPEN-{side}; use 512 or 256"))
}

/// Whether `a` and `b` name the same existing file (through links or other spellings).
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

pub fn run(args: RestoreArgs, backend: BackendChoice, data_dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let settings = RestoreSettings::gpen(args.blur, args.blend, args.model);
    settings.validate()?;
    let format = ExportFormat::from_name(&args.out, args.quality)?;
    // Checked before any work; the export checks again by inode when it writes.
    if same_file(&args.out, &args.photo) {
        bail!(
            "refusing to write to {}: it is the photo being restored, which is never overwritten",
            args.out.display()
        );
    }
    let photo = load_photo(&args.photo, &DecodeLimits::default())?;

    let compute = Compute::select(backend)?;
    let detector = super::detect::load_detector(data_dir.clone(), &compute)?;
    let store = WeightsStore::open(data_dir)?;
    let id = settings.model.id();
    let state = store.status(id)?;
    let weights = store.require(id)?;
    let file = weights.first().with_context(|| format!("{id} lists no file"))?;
    let net = load_gpen(file, &compute.device).with_context(|| format!("loading {}", file.display()))?;

    let found = detect_photo(&detector, &photo.rgb, &DetectSettings::default(), &compute.device)
        .with_context(|| format!("{}: face detection failed", args.photo.display()))?;
    let faces: Vec<_> = found
        .faces
        .into_iter()
        .filter(|f| f.score >= args.min_score)
        .collect();
    if faces.is_empty() {
        bail!(
            "{}: no face scores {} or more; nothing was written",
            args.photo.display(),
            args.min_score
        );
    }

    let restored = restore_faces(
        &net,
        &compute.device,
        &photo.rgb,
        &faces,
        &settings,
        |done, total| {
            if done < total {
                eprintln!("facecast: restoring face {} of {total}…", done + 1);
            }
            true
        },
    )
    .with_context(|| format!("restoring {}", args.photo.display()))?;

    let reduced = state.status.is_reduced();
    let mut model = format!("{id} ({} px)", restored.crop_size);
    if reduced {
        model.push_str(&format!(", {REDUCED_NOTE}"));
    }
    let options = ExportOptions {
        format,
        icc_profile: photo.icc_profile.clone(),
        text: vec![
            (
                "Software".into(),
                format!("Facecast {}", env!("CARGO_PKG_VERSION")),
            ),
            ("facecast.restore".into(), serde_json::to_string(&settings)?),
            ("facecast.restore.model".into(), model),
        ],
        overwrite: args.overwrite,
    };
    let written = export_atomic(&restored.image, &args.out, &options, &[args.photo.as_path()])?;
    eprintln!(
        "facecast: {} face(s) restored with {} ({}); {}",
        restored.faces.len(),
        settings.model.label(),
        compute.label(),
        restored.timings.describe()
    );
    if reduced {
        eprintln!("facecast: note: {id} holds {REDUCED_NOTE}");
    }
    println!("{}", written.display());
    Ok(ExitCode::SUCCESS)
}
