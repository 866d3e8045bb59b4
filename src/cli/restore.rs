//! `facecast restore`: detects the faces of one photo with MTCNN and restores them with GPEN,
//! writing the result atomically to a new file (never over the photo). It runs as a one-step
//! recipe through the batch engine, so its output has the same pixels and metadata as `facecast
//! batch` and the window's export with the same settings.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};

use super::one_step::{export_to_file, recipe_without_steps, run_recipe, same_file};
use crate::compute::BackendChoice;
use crate::pipeline::batch::{BatchInput, Measured, Skip, Unobserved};
use crate::pipeline::detect::photo::DetectSettings;
use crate::pipeline::recipe::{Recipe, StepSection};
use crate::pipeline::restore::{GpenModel, RestoreSettings};

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

/// The one-step recipe these options describe: the restore with the options' settings on the faces
/// scoring at least `--min-score`, written exactly to `--out` (format from the name). `facecast
/// batch` with the same recipe writes the same pixels and the same metadata.
pub fn one_step_recipe(args: &RestoreArgs) -> anyhow::Result<Recipe> {
    let mut recipe = recipe_without_steps();
    recipe.restore = StepSection {
        enabled: true,
        settings: RestoreSettings::gpen(args.blur, args.blend, args.model),
    };
    recipe.faces.min_score = args.min_score;
    export_to_file(&mut recipe, &args.out, args.quality)?;
    recipe.export.overwrite = args.overwrite;
    Ok(recipe)
}

/// Runs the restore as a one-step recipe through the batch engine (the same face choice, metadata
/// and atomic writer as `facecast batch` and the window's export).
pub fn run(args: RestoreArgs, backend: BackendChoice, data_dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let recipe = one_step_recipe(&args)?;
    let settings = recipe.restore_settings();
    settings.validate()?;
    // Checked before any work; the export checks again by inode when it writes.
    if same_file(&args.out, &args.photo) {
        bail!(
            "refusing to write to {}: it is the photo being restored, which is never overwritten",
            args.out.display()
        );
    }
    let run = run_recipe(
        recipe,
        backend,
        data_dir,
        |_, _| Ok(vec![BatchInput::new(args.photo.clone())]),
        &mut Unobserved,
    )?;
    let report = run
        .summary
        .reports
        .first()
        .context("the engine reported nothing for the photo")?;
    let written = match (&report.output, &report.reason, report.skip) {
        (Some(out), _, _) => out.clone(),
        (None, Some(reason), Some(Skip::NoFace)) => bail!("{reason}; nothing was written"),
        (None, Some(reason), _) => bail!("{reason}"),
        (None, None, _) => bail!("{}: not exported", args.photo.display()),
    };
    let restored = report.measured.iter().find_map(|m| {
        if let Measured::Restore {
            faces,
            crop_size,
            timings,
        } = m
        {
            Some((*faces, *crop_size, timings))
        } else {
            None
        }
    });
    let (faces, crop_size, timings) = restored.context("the restore step reported nothing")?;
    eprintln!(
        "facecast: {faces} face(s) restored with {} at {crop_size} px ({}); {}",
        settings.model.label(),
        run.device,
        timings.describe()
    );
    for note in report.notes.iter().filter(|n| !n.starts_with("Restored ")) {
        eprintln!("facecast: note: {note}");
    }
    println!("{}", written.display());
    Ok(ExitCode::SUCCESS)
}
