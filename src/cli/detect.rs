//! `facecast detect`: screens photos for faces, as a table or as JSON.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::Serialize;

use crate::compute::{BackendChoice, Compute};
use crate::io::collect::collect_photos;
use crate::io::{DecodeLimits, load_photo};
use crate::nets::mtcnn::MtcnnNets;
use crate::pipeline::detect::photo::{DetectSettings, detect_photo};
use crate::weights::store::WeightsStore;

#[derive(Debug, clap::Args)]
pub struct DetectArgs {
    /// Print a JSON report on stdout.
    #[arg(long)]
    pub json: bool,
    /// Report only faces scoring at least this (the screening rule uses 0.70).
    #[arg(long, value_name = "S")]
    pub min_score: Option<f32>,
    /// Detect on a copy whose long side is at most this many pixels (0: full size).
    #[arg(long, default_value_t = DetectSettings::default().max_side)]
    pub max_side: u32,
    /// When no face is found upright, also try the photo turned 90° and 270°.
    #[arg(long)]
    pub rotations: bool,
    /// Photos or folders (searched recursively).
    #[arg(required = true, value_name = "PATHS")]
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, Serialize)]
struct Report {
    images: Vec<ImageReport>,
}

#[derive(Debug, Serialize)]
struct ImageReport {
    path: String,
    width: Option<u32>,
    height: Option<u32>,
    faces: Vec<FaceReport>,
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct FaceReport {
    #[serde(rename = "box")]
    bbox: [f32; 4],
    score: f32,
    landmarks: [[f32; 2]; 5],
}

/// Loads MTCNN from the weights store, or says how to install it.
pub fn load_detector(data_dir: Option<PathBuf>, compute: &Compute) -> anyhow::Result<MtcnnNets> {
    let store = WeightsStore::open(data_dir)?;
    store.require("mtcnn")?;
    Ok(crate::weights::models::load_mtcnn(
        &store.model_dir("mtcnn"),
        &compute.device,
    )?)
}

pub fn run(args: DetectArgs, backend: BackendChoice, data_dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let compute = Compute::select(backend)?;
    let nets = load_detector(data_dir, &compute)?;
    let settings = DetectSettings {
        max_side: args.max_side,
        try_rotations: args.rotations,
        ..DetectSettings::default()
    };
    let min_score = args.min_score.unwrap_or(f32::NEG_INFINITY);
    let limits = DecodeLimits::default();
    let mut images = Vec::new();
    for path in collect_photos(&args.paths) {
        let report = detect_one(&nets, &path, &limits, &settings, min_score, &compute);
        if !args.json {
            print_line(&report, settings.min_score);
        }
        images.push(report);
    }
    let failed = images.iter().filter(|r| r.error.is_some()).count();
    let total = images.len();
    if args.json {
        println!("{}", serde_json::to_string(&Report { images })?);
    } else {
        eprintln!("{total} photos, {failed} unreadable ({})", compute.label());
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

fn detect_one(
    nets: &MtcnnNets,
    path: &Path,
    limits: &DecodeLimits,
    settings: &DetectSettings,
    min_score: f32,
    compute: &Compute,
) -> ImageReport {
    let name = path.to_string_lossy().into_owned();
    let photo = match load_photo(path, limits) {
        Ok(p) => p,
        Err(e) => {
            return ImageReport {
                path: name,
                width: None,
                height: None,
                faces: Vec::new(),
                error: Some(e.to_string()),
            };
        }
    };
    let (width, height) = (photo.rgb.width(), photo.rgb.height());
    match detect_photo(nets, &photo.rgb, settings, &compute.device) {
        Ok(found) => ImageReport {
            path: name,
            width: Some(width),
            height: Some(height),
            faces: found
                .faces
                .iter()
                .filter(|f| f.score >= min_score)
                .map(|f| FaceReport {
                    bbox: f.bbox,
                    score: f.score,
                    landmarks: f.landmarks,
                })
                .collect(),
            error: None,
        },
        Err(e) => ImageReport {
            path: name,
            width: Some(width),
            height: Some(height),
            faces: Vec::new(),
            error: Some(format!("{}: {e}", path.display())),
        },
    }
}

fn print_line(report: &ImageReport, screening: f32) {
    match &report.error {
        Some(e) => println!("{}: error: {e}", report.path),
        None if !report.faces.iter().any(|f| f.score >= screening) => println!("{}: no face", report.path),
        None => {
            let faces: Vec<String> = report
                .faces
                .iter()
                .map(|f| {
                    format!(
                        "[{:.0},{:.0} {:.0}x{:.0} score {:.3}]",
                        f.bbox[0],
                        f.bbox[1],
                        f.bbox[2] - f.bbox[0],
                        f.bbox[3] - f.bbox[1],
                        f.score
                    )
                })
                .collect();
            println!(
                "{}: {} face(s) {}",
                report.path,
                report.faces.len(),
                faces.join(" ")
            );
        }
    }
}
