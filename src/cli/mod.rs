//! The command line: one subcommand per job, each in its own file, all over the same library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::compute::BackendChoice;

pub mod batch;
pub mod batch_progress;
pub mod check_copies;
pub mod check_fixture;
pub mod detect;
pub mod devices;
pub mod makeup;
pub mod one_step;
pub mod restore;
pub mod screen;
pub mod swap;
pub mod text_edit;
pub mod train_classifier;
pub mod train_generator;
pub mod virtual_model;
pub mod weights;

#[derive(Debug, Parser)]
#[command(
    name = "facecast",
    version,
    about = "Swap the faces in product photos for one consistent virtual model."
)]
pub struct Cli {
    /// Compute backend for the networks (overrides FACECAST_BACKEND); default: the best GPU, else
    /// the CPU (never software Vulkan: `facecast devices` says why).
    #[arg(long, global = true, value_enum)]
    pub backend: Option<BackendChoice>,
    /// Where installed weights live (overrides FACECAST_DATA_DIR; default: the per-user data directory).
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// More log output (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Open the window with the sample photos loaded.
    #[arg(long)]
    pub samples: bool,
    /// Photos or folders to open in the window.
    #[arg(value_name = "PHOTOS")]
    pub open: Vec<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the GPUs wgpu sees and which device runs the networks, and why; --bench times each.
    Devices(devices::DevicesArgs),
    /// List, install, verify, import or remove network weights.
    Weights(weights::WeightsArgs),
    /// Check a port against parity fixture folders made with the official PyTorch code.
    CheckFixture(check_fixture::CheckFixtureArgs),
    /// Find the faces in photos (files or folders); --json for a machine-readable report.
    Detect(detect::DetectArgs),
    /// Restore the faces of a photo with GPEN (optionally blurring them first) into a new file.
    Restore(restore::RestoreArgs),
    /// Put the virtual model's face on the faces of a photo (FaceShifter, or the classic engine).
    Swap(swap::SwapArgs),
    /// Sort photos or a product feed's rows into faces / no faces (faces.csv, no_faces.csv, failed.csv).
    Screen(screen::ScreenArgs),
    /// Run a recipe over photos and folders: swap in the virtual model, export every result.
    Batch(batch::BatchArgs),
    /// Generate, import, list, rename, duplicate or delete virtual models.
    Virtual(virtual_model::VirtualArgs),
    /// Makeup transfer with BeautyGAN: manage reference faces and put their makeup on photos.
    Makeup(makeup::MakeupArgs),
    /// Fine-tune the face/no-face screening classifier on your own labelled photos.
    TrainClassifier(train_classifier::TrainClassifierArgs),
    /// Ask the face/no-face classifier about photos (a second opinion beside detection).
    Classify(train_classifier::ClassifyArgs),
}

pub fn init_logging(verbose: u8) {
    let default = match verbose {
        // Probing OpenGL adapters on a machine without a display logs EGL errors that mean only
        // "no GL adapter here"; `facecast devices` reports what was found.
        0 => "warn,wgpu_hal::gles=off",
        1 => "info,wgpu_core=warn,wgpu_hal=warn,naga=warn",
        _ => "debug,wgpu_core=warn,wgpu_hal=warn,naga=warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("FACECAST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Runs a subcommand. Without one the binary opens the window instead (see `main.rs`): the command
/// line sits beside the window, not above it.
pub fn run(command: Command, backend: BackendChoice, data_dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    match command {
        Command::Devices(args) => devices::run(args, backend),
        Command::Weights(args) => weights::run(args, data_dir),
        Command::CheckFixture(args) => check_fixture::run(args, backend),
        Command::Detect(args) => detect::run(args, backend, data_dir),
        Command::Restore(args) => restore::run(args, backend, data_dir),
        Command::Swap(args) => swap::run(args, backend, data_dir),
        Command::Screen(args) => screen::run(args, backend, data_dir),
        Command::Batch(args) => batch::run(args, backend, data_dir),
        Command::Virtual(args) => virtual_model::run(args, backend, data_dir),
        Command::Makeup(args) => makeup::run(args, backend, data_dir),
        Command::TrainClassifier(args) => train_classifier::run(args, backend, data_dir),
        Command::Classify(args) => train_classifier::classify(args, backend, data_dir),
    }
}

/// Installs the sample photos (checked by sha256) and returns their paths, saying when it fetches.
pub fn install_samples(data_dir: Option<PathBuf>) -> anyhow::Result<Vec<PathBuf>> {
    Ok(crate::weights::samples::install_samples(data_dir, || {
        eprintln!("facecast: fetching the sample photos…");
    })?)
}
