//! `facecast virtual check-copies`, and the same check at the end of `virtual train`: does a
//! trained generator make near-copies of its training photos? The computation is
//! `pipeline::generator_training::near_copy`; this prints it and records it in `model.json`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use burn::tensor::Device;
use image::RgbImage;

use crate::compute::{BackendChoice, Compute};
use crate::pipeline::generate::DEFAULT_TRUNCATION;
use crate::pipeline::generator_training::data::TrainingSet;
use crate::pipeline::generator_training::near_copy::{
    DEFAULT_SEEDS, DEFAULT_THRESHOLD, NearCopyReport, check_faces, generate_faces,
};
use crate::pipeline::generator_training::registry::{
    Lineage, generator_dir, generator_file, read_lineage, write_json,
};
use crate::weights::models::{ARCFACE_ID, MTCNN_ID, load_arcface, load_mtcnn, load_stylegan2_file};
use crate::weights::store::WeightsStore;

#[derive(Debug, clap::Args)]
pub struct CheckCopiesArgs {
    /// The trained generator (its `virtual train --name`).
    #[arg(long, value_name = "NAME")]
    generator: String,
    /// The training photos; by default the folder its lineage names.
    #[arg(long, value_name = "DIR")]
    photos: Option<PathBuf>,
    /// Generate faces from seeds 0 to N − 1.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_SEEDS)]
    seeds: u32,
    /// ArcFace cosine similarity above which a face is reported as a near-copy.
    #[arg(long, default_value_t = DEFAULT_THRESHOLD)]
    threshold: f32,
    #[arg(long, default_value_t = DEFAULT_TRUNCATION)]
    truncation: f64,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// The sentence for a missing ArcFace.
fn arcface_missing(store: &WeightsStore) -> Option<String> {
    store.require(ARCFACE_ID).err().map(|e| {
        format!(
            "the near-copy check needs ArcFace ({ARCFACE_ID}), which is not usable: {e}. Install it with \
             `facecast weights install {ARCFACE_ID} --accept-noncommercial` (or from the Weights window), \
             then run `facecast virtual check-copies --generator NAME`"
        )
    })
}

/// Generates `seeds` faces from the generator in `generator_file`, compares them with `faces`,
/// prints the warnings, and returns the report.
fn check(
    store: &WeightsStore,
    file: &Path,
    faces: &[(String, RgbImage)],
    seeds: u32,
    threshold: f32,
    truncation: f64,
    device: &Device,
) -> anyhow::Result<NearCopyReport> {
    let arcface_file = store
        .require(ARCFACE_ID)?
        .into_iter()
        .next()
        .with_context(|| format!("{ARCFACE_ID} lists no file"))?;
    let (arcface, _) = load_arcface(&arcface_file, device)?;
    let generator = load_stylegan2_file(file, device)?;
    let seeds: Vec<u32> = (0..seeds).collect();
    let generated = generate_faces(&generator, &seeds, truncation)?;
    Ok(check_faces(
        &arcface, &generated, faces, threshold, truncation, device,
    )?)
}

fn print_report(report: &NearCopyReport) {
    let copies = report.near_copies();
    for face in &copies {
        eprintln!("warning: {}", NearCopyReport::warning(face));
    }
    let best = report
        .faces
        .iter()
        .map(|f| f.similarity)
        .fold(f32::NEG_INFINITY, f32::max);
    println!(
        "near-copy check: {} of {} generated faces above similarity {:.2} (highest {:.2})",
        copies.len(),
        report.faces.len(),
        report.threshold,
        best
    );
}

fn training_faces(set: &TrainingSet) -> Vec<(String, RgbImage)> {
    set.photos
        .iter()
        .map(|p| (p.path.display().to_string(), p.face.clone()))
        .collect()
}

/// The check at the end of `virtual train`: never fails the training; without ArcFace it says
/// how to install it and leaves the lineage without a report.
pub fn after_training(
    store: &WeightsStore,
    data: &Path,
    lineage: &mut Lineage,
    set: &TrainingSet,
    device: &Device,
) {
    if let Some(why) = arcface_missing(store) {
        eprintln!("note: {why}");
        return;
    }
    let file = generator_file(data, &lineage.name);
    let faces = training_faces(set);
    match check(
        store,
        &file,
        &faces,
        DEFAULT_SEEDS,
        DEFAULT_THRESHOLD,
        DEFAULT_TRUNCATION,
        device,
    ) {
        Ok(report) => {
            print_report(&report);
            lineage.near_copies = Some(report);
            let json = generator_dir(data, &lineage.name).join("model.json");
            if let Err(e) = write_json(&json, lineage) {
                eprintln!("warning: the near-copy report could not be written to model.json: {e}");
            }
        }
        Err(e) => eprintln!("warning: the near-copy check failed (the generator is registered): {e:#}"),
    }
}

pub fn run(args: CheckCopiesArgs, store: &WeightsStore, backend: BackendChoice) -> anyhow::Result<ExitCode> {
    let data = store.data_dir().to_path_buf();
    let file = generator_file(&data, &args.generator);
    let json_file = generator_dir(&data, &args.generator).join("model.json");
    let mut lineage = read_lineage(&json_file).with_context(|| {
        format!(
            "{:?} is not a generator trained with `facecast virtual train`",
            args.generator
        )
    })?;
    if !file.is_file() {
        bail!("{} is missing", file.display());
    }
    if let Some(why) = arcface_missing(store) {
        bail!("{why}");
    }
    let compute = Compute::select(backend)?;
    let device = compute.device.clone();
    let photos = args.photos.unwrap_or_else(|| PathBuf::from(&lineage.photos_dir));
    store.require(MTCNN_ID)?;
    let nets = load_mtcnn(&store.model_dir(MTCNN_ID), &device)?;
    let set = TrainingSet::from_folder(&photos, lineage.size as u32, &nets, &device, &mut |_| {})?;
    let report = check(
        store,
        &file,
        &training_faces(&set),
        args.seeds,
        args.threshold,
        args.truncation,
        &device,
    )?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
        for f in &report.faces {
            println!("seed {:>4}: nearest {} ({:.3})", f.seed, f.photo, f.similarity);
        }
    }
    lineage.near_copies = Some(report);
    write_json(&json_file, &lineage)?;
    Ok(ExitCode::SUCCESS)
}
