//! The batch engine: one recipe over many photos, for the window and the command line alike.
//!
//! Per photo: decode (limits, EXIF orientation, 8-bit RGB) → detect → choose faces → the recipe's
//! steps → atomic export. Each photo ends in a [`FileReport`] (done, skipped: no face, failed: the
//! reason), and nothing else of it is kept, so memory stays flat over any number of photos.
//!
//! What the engine guarantees:
//! - sources are only read; no output replaces a photo of the run (its own source is refused, the
//!   others are numbered around, or refused when overwriting);
//! - outputs are written by [`export_atomic`] (temporary file in the output folder, flushed, renamed):
//!   a cancelled, failed or killed run leaves no partial file under a real name, and the temporary
//!   files of a killed run are removed when the next run starts;
//! - a full disk or a folder that turns read-only stops the run at that photo with a clear reason; the
//!   photos not reached are reported as skipped, with the same reason;
//! - a step that panics fails its photo, not the run.

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::time::Duration;

use burn::tensor::Device;
use image::{ImageFormat, RgbImage};

use super::detect::Face;
use super::detect::photo::detect_photo;
use super::recipe::{
    FaceMode, MetadataLevel, NamingError, OutputFormat, Recipe, TemplatePiece, parse_template,
};
use super::restore::RestoreTimings;
use super::swap::{FaceReport, SwapEngine};
use crate::io::{
    DecodeLimits, ExportError, ExportFormat, ExportOptions, Photo, TEMP_PREFIX, clean_stale_temp_files,
    export_atomic, load_photo, temp_prefix, unique_path,
};
use crate::nets::mtcnn::MtcnnNets;

mod lookahead;

/// One edit step of a recipe (swap, restore, makeup), ready to run: its networks are loaded.
pub trait PhotoStep {
    /// Short name for reports ("swap").
    fn name(&self) -> &str;
    /// What it does to a photo, for the "AI-edited" note ("face replaced by virtual model Ava").
    fn description(&self) -> String;
    /// The networks it runs, as weights ids (with "(reduced-width test weights)" where so).
    fn networks(&self) -> Vec<String>;
    /// Edits `faces` of `image` (upright RGB). `cancelled` is worth polling between faces.
    fn apply(
        &mut self,
        image: RgbImage,
        faces: &[Face],
        cancelled: &dyn Fn() -> bool,
    ) -> Result<StepOutput, StepError>;
}

/// The image after a step, and what the step wants the operator to know about it.
#[derive(Debug, Clone)]
pub struct StepOutput {
    pub image: RgbImage,
    pub notes: Vec<String>,
    /// What it measured, for reports that show more than the notes.
    pub measured: Option<Measured>,
}

/// What a step measured on one photo, beyond its notes: what `facecast swap` reports face by face.
#[derive(Debug, Clone, PartialEq)]
pub enum Measured {
    /// The swap: the engine that ran, the time of the virtual model's identity, and per face its
    /// identity similarity and the time of each stage.
    Swap {
        engine: SwapEngine,
        identity_time: Duration,
        faces: Vec<FaceReport>,
    },
    /// The restore: how many faces, at which crop size, and the time of each stage.
    Restore {
        faces: usize,
        crop_size: u32,
        timings: RestoreTimings,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    #[error("cancelled")]
    Cancelled,
    #[error("{0}")]
    Failed(String),
}

/// One photo of a run.
#[derive(Debug, Clone)]
pub struct BatchInput {
    pub path: PathBuf,
    /// The faces chosen on the canvas (window only), used when the recipe's face mode is
    /// [`FaceMode::Selected`]; `None` or empty falls back to all faces above the score.
    pub chosen: Option<Vec<Face>>,
    /// Why this file is not a photo (a file of an input folder that is listed, not loaded): it is
    /// reported as skipped with this reason.
    pub not_a_photo: Option<String>,
    /// Why the photo cannot be had at all (a feed's URL that failed to download): it is reported
    /// as failed with this reason.
    pub unavailable: Option<String>,
    /// A stable name for the input, the same on every machine that sees the same files: its path
    /// inside the folder given (with `/`), or the path given for a file. Shards split by it and
    /// the journal and reports record it.
    pub id: String,
    /// Its place in the whole run when this run is a share of it (a shard): `{index}` names and
    /// reports use it, so a sharded run names its files as the whole run would. None: its place
    /// in this run.
    pub position: Option<usize>,
    /// Exported by an earlier run with the same recipe from the same bytes (see the journal): it
    /// is reported as done, and not worked on again.
    pub resumed: Option<Resumed>,
}

/// What an earlier run exported for an input that is not exported again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resumed {
    pub output: PathBuf,
    pub faces: usize,
}

impl BatchInput {
    pub fn new(path: impl Into<PathBuf>) -> BatchInput {
        let path = path.into();
        BatchInput {
            id: path.to_string_lossy().into_owned(),
            path,
            chosen: None,
            not_a_photo: None,
            unavailable: None,
            position: None,
            resumed: None,
        }
    }

    /// A file the folder walk found that is not a photo: the report lists it as skipped.
    pub fn not_a_photo(path: impl Into<PathBuf>, reason: String) -> BatchInput {
        BatchInput {
            not_a_photo: Some(reason),
            ..BatchInput::new(path)
        }
    }

    /// The inputs of the paths a user gave: every file of every folder, photos to run and the rest
    /// to list as skipped.
    pub fn walk(paths: &[PathBuf]) -> Vec<BatchInput> {
        crate::io::collect::walk(paths)
            .map(|found| {
                let mut input = match found {
                    crate::io::collect::Found::Photo(path) => BatchInput::new(path),
                    crate::io::collect::Found::NotPhoto { path, reason } => {
                        BatchInput::not_a_photo(path, reason)
                    }
                    // The loader reports what cannot be read, like any photo it cannot open.
                    crate::io::collect::Found::Unreadable { path, .. } => BatchInput::new(path),
                };
                input.id = input_id(&input.path, paths);
                input
            })
            .collect()
    }
}

/// An input's id: its path inside the deepest folder given that holds it (`sub/a.jpg`), else the
/// path as given. Where the photos are mounted does not change it, so every machine of a sharded
/// run agrees on it.
pub fn input_id(path: &Path, roots: &[PathBuf]) -> String {
    let inside = roots
        .iter()
        .filter_map(|root| path.strip_prefix(root).ok())
        .filter(|rest| !rest.as_os_str().is_empty())
        .min_by_key(|rest| rest.components().count());
    match inside {
        Some(rest) => rest
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/"),
        None => path.to_string_lossy().into_owned(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileStatus {
    Done,
    Skipped,
    Failed,
}

impl FileStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            FileStatus::Done => "done",
            FileStatus::Skipped => "skipped",
            FileStatus::Failed => "failed",
        }
    }
}

/// Why a photo was skipped, for callers that word it their own way (the report's reason says it
/// in full).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// No face scored the recipe's minimum.
    NoFace,
    /// A file of an input folder that is not a photo.
    NotAPhoto,
    /// The run stopped (cancelled, or the output folder failed) before this photo was written.
    NotReached,
}

/// How one photo of a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct FileReport {
    pub input: PathBuf,
    pub status: FileStatus,
    /// Why it was skipped (skipped only).
    pub skip: Option<Skip>,
    /// The file written (done only).
    pub output: Option<PathBuf>,
    /// Why it was skipped or failed; names the file and the cause.
    pub reason: Option<String>,
    /// Faces edited (done only).
    pub faces: usize,
    /// Conversions and measurements worth knowing (a CMYK photo converted, identity similarity...).
    pub notes: Vec<String>,
    /// What the steps measured, in step order (done only).
    pub measured: Vec<Measured>,
    /// Done by an earlier run (the journal says so), not worked on in this one.
    pub resumed: bool,
}

impl FileReport {
    fn done(
        input: &Path,
        output: PathBuf,
        faces: usize,
        notes: Vec<String>,
        measured: Vec<Measured>,
    ) -> FileReport {
        FileReport {
            input: input.to_path_buf(),
            status: FileStatus::Done,
            skip: None,
            output: Some(output),
            reason: None,
            faces,
            notes,
            measured,
            resumed: false,
        }
    }

    fn failed(input: &Path, reason: String, notes: Vec<String>) -> FileReport {
        FileReport {
            input: input.to_path_buf(),
            status: FileStatus::Failed,
            skip: None,
            output: None,
            reason: Some(reason),
            faces: 0,
            notes,
            measured: Vec::new(),
            resumed: false,
        }
    }

    fn skipped(input: &Path, skip: Skip, reason: String, notes: Vec<String>) -> FileReport {
        FileReport {
            input: input.to_path_buf(),
            status: FileStatus::Skipped,
            skip: Some(skip),
            output: None,
            reason: Some(reason),
            faces: 0,
            notes,
            measured: Vec::new(),
            resumed: false,
        }
    }
}

/// Why a run ended before its last photo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    Cancelled,
    /// The output folder cannot take more files (disk full, read-only, gone).
    Output(String),
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopReason::Cancelled => f.write_str("the export was cancelled"),
            StopReason::Output(reason) => write!(f, "the export stopped: {reason}"),
        }
    }
}

/// The whole run: one report per input, in input order.
#[derive(Debug, Clone, Default)]
pub struct BatchSummary {
    pub reports: Vec<FileReport>,
    pub stopped: Option<StopReason>,
    /// Temporary files of earlier, interrupted runs removed from the output folder at the start.
    pub stale_removed: usize,
}

impl BatchSummary {
    pub fn count(&self, status: FileStatus) -> usize {
        self.reports.iter().filter(|r| r.status == status).count()
    }

    pub fn all_done(&self) -> bool {
        self.count(FileStatus::Done) == self.reports.len()
    }

    /// How many of the done photos an earlier run exported.
    pub fn resumed(&self) -> usize {
        self.reports.iter().filter(|r| r.resumed).count()
    }
}

/// What a run tells its caller as it goes; the window turns it into progress events, the CLI into a
/// progress bar.
pub trait BatchObserver {
    /// Polled between photos and between steps; once true, the run stops without writing the photo
    /// it was working on.
    fn is_cancelled(&self) -> bool {
        false
    }
    fn file_started(&mut self, _index: usize, _total: usize, _input: &Path) {}
    fn file_finished(&mut self, _index: usize, _total: usize, _report: &FileReport) {}
}

/// An observer that watches nothing.
pub struct Unobserved;

impl BatchObserver for Unobserved {}

/// Why a run could not start at all (nothing was written).
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("there are no photos to export")]
    NoInputs,
    #[error("no output folder is set: choose one (or pass --out DIR)")]
    NoOutputFolder,
    #[error("cannot use the output folder {dir}: {detail}")]
    OutputFolder { dir: PathBuf, detail: String },
    #[error("{0}")]
    Prepare(String),
}

/// A recipe ready to run: detector and steps loaded.
pub struct BatchEngine<'a> {
    recipe: Recipe,
    out_dir: PathBuf,
    detector: &'a MtcnnNets,
    device: &'a Device,
    steps: Vec<Box<dyn PhotoStep + 'a>>,
    /// The detector's weights, as named in the metadata ("mtcnn").
    detector_name: String,
    /// The virtual model's name for `{model}` and the AI note.
    model_name: Option<String>,
    limits: DecodeLimits,
    /// Decode and detect the next photo while the current one is in the steps (on by default).
    lookahead: bool,
}

impl<'a> BatchEngine<'a> {
    /// `recipe` is the effective recipe (the virtual model resolved, command-line overrides applied);
    /// its hash goes into every export. The output folder is `recipe.export.folder`.
    pub fn new(
        recipe: Recipe,
        detector: &'a MtcnnNets,
        device: &'a Device,
        steps: Vec<Box<dyn PhotoStep + 'a>>,
    ) -> Result<BatchEngine<'a>, BatchError> {
        let out_dir = recipe.export.folder.clone().ok_or(BatchError::NoOutputFolder)?;
        recipe
            .validate("the recipe")
            .map_err(|e| BatchError::Prepare(e.to_string()))?;
        let model_name = recipe.virtual_model.clone();
        Ok(BatchEngine {
            recipe,
            out_dir,
            detector,
            device,
            steps,
            detector_name: "mtcnn".to_string(),
            model_name,
            limits: DecodeLimits::default(),
            lookahead: true,
        })
    }

    /// How the detector's weights are named in the metadata (e.g. with "(reduced-width test weights)").
    pub fn with_detector_name(mut self, name: impl Into<String>) -> Self {
        self.detector_name = name.into();
        self
    }

    /// The virtual model's display name, when it differs from the recipe's reference (an id).
    /// The virtual model's name, as `{model}` and the metadata name it.
    pub fn model_name(&self) -> Option<&str> {
        self.model_name.as_deref()
    }

    pub fn with_model_name(mut self, name: Option<String>) -> Self {
        self.model_name = name;
        self
    }

    pub fn with_limits(mut self, limits: DecodeLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Turns the one-photo look-ahead (decode and detect of the next photo on a second thread)
    /// on or off; on by default. Off, every photo is decoded and detected in turn on this thread.
    pub fn with_lookahead(mut self, on: bool) -> Self {
        self.lookahead = on;
        self
    }

    pub fn recipe(&self) -> &Recipe {
        &self.recipe
    }

    pub fn out_dir(&self) -> &Path {
        &self.out_dir
    }

    /// How many edit steps each photo goes through.
    pub fn step_count(&self) -> usize {
        self.steps.len()
    }

    /// The networks a photo of this run goes through, detector first.
    pub fn networks(&self) -> Vec<String> {
        let mut all = vec![self.detector_name.clone()];
        for step in &self.steps {
            for net in step.networks() {
                if !all.contains(&net) {
                    all.push(net);
                }
            }
        }
        all
    }

    /// The text every export of this run carries.
    pub fn metadata(&self) -> Vec<(String, String)> {
        let ai_note = if self.steps.is_empty() {
            "no: the recipe ran no edit step (faces were only detected)".to_string()
        } else {
            let what: Vec<String> = self.steps.iter().map(|s| s.description()).collect();
            format!("yes: {}", what.join("; "))
        };
        let mut text = vec![
            (
                "Software".to_string(),
                format!("Facecast {}", env!("CARGO_PKG_VERSION")),
            ),
            ("AI-edited".to_string(), ai_note),
            ("facecast:recipe-sha256".to_string(), self.recipe.hash()),
            ("facecast:networks".to_string(), self.networks().join(", ")),
        ];
        if self.recipe.export.metadata == MetadataLevel::Full {
            text.push(("facecast:recipe".to_string(), self.recipe.canonical_json()));
        }
        text
    }

    /// Runs every input, in order. Errs only when nothing could start (no inputs, the output folder
    /// unusable); everything after that is in the summary.
    ///
    /// With the look-ahead on (the default), the next photo is decoded and its faces detected on a
    /// second thread while the current one is in the edit steps (`batch/lookahead.rs`); the steps,
    /// their networks and the export stay on this thread, and reports come in input order.
    pub fn run(
        &mut self,
        inputs: &[BatchInput],
        observer: &mut dyn BatchObserver,
    ) -> Result<BatchSummary, BatchError> {
        if inputs.is_empty() {
            return Err(BatchError::NoInputs);
        }
        let stale_removed = prepare_folder(&self.out_dir)?;
        let protected = ProtectedFiles::of(inputs.iter().map(|i| i.path.as_path()));
        let metadata = self.metadata();
        let BatchEngine {
            recipe,
            out_dir,
            detector,
            device,
            steps,
            model_name,
            limits,
            lookahead,
            ..
        } = self;
        let prepare = Preparer {
            recipe: &*recipe,
            detector,
            device,
            limits: &*limits,
        };
        let finish = Finisher {
            recipe: &*recipe,
            out_dir: out_dir.as_path(),
            model_name: model_name.as_deref(),
            metadata: &metadata,
            protected: &protected,
        };
        std::thread::scope(|scope| {
            let mut photos = if *lookahead {
                lookahead::Photos::ahead(scope, &prepare, inputs)
            } else {
                lookahead::Photos::inline(&prepare)
            };
            let summary = run_inputs(inputs, &mut photos, &finish, steps, observer, stale_removed);
            // Dropping the source ends the look-ahead thread (it may finish the photo in hand).
            drop(photos);
            Ok(summary)
        })
    }
}

/// Whether an input is decoded and detected at all (the others are reported without reading).
fn needs_photo(input: &BatchInput) -> bool {
    input.resumed.is_none() && input.unavailable.is_none() && input.not_a_photo.is_none()
}

/// The loop of [`BatchEngine::run`] over the inputs, their photos coming from `photos`.
fn run_inputs(
    inputs: &[BatchInput],
    photos: &mut lookahead::Photos<'_>,
    finish: &Finisher<'_>,
    steps: &mut [Box<dyn PhotoStep + '_>],
    observer: &mut dyn BatchObserver,
    stale_removed: usize,
) -> BatchSummary {
    let total = inputs.len();
    let mut summary = BatchSummary {
        stale_removed,
        ..BatchSummary::default()
    };
    let mut written: HashSet<PathBuf> = HashSet::new();
    for (index, input) in inputs.iter().enumerate() {
        // Done already, whatever happens to this run.
        if let Some(done) = &input.resumed {
            let mut report = FileReport::done(
                &input.path,
                done.output.clone(),
                done.faces,
                Vec::new(),
                Vec::new(),
            );
            report.resumed = true;
            written.insert(done.output.clone());
            observer.file_finished(index, total, &report);
            summary.reports.push(report);
            continue;
        }
        if summary.stopped.is_none() && observer.is_cancelled() {
            summary.stopped = Some(StopReason::Cancelled);
        }
        if let Some(stop) = &summary.stopped {
            photos.stop();
            let report = FileReport::skipped(
                &input.path,
                Skip::NotReached,
                format!("{}: not exported, {stop}", input.path.display()),
                Vec::new(),
            );
            observer.file_finished(index, total, &report);
            summary.reports.push(report);
            continue;
        }
        if let Some(reason) = &input.unavailable {
            let report = FileReport::failed(&input.path, reason.clone(), Vec::new());
            observer.file_finished(index, total, &report);
            summary.reports.push(report);
            continue;
        }
        if let Some(reason) = &input.not_a_photo {
            let report = FileReport::skipped(&input.path, Skip::NotAPhoto, reason.clone(), Vec::new());
            observer.file_finished(index, total, &report);
            summary.reports.push(report);
            continue;
        }
        observer.file_started(index, total, &input.path);
        let prepared = {
            let observer = &*observer;
            photos.next(index, input, &|| observer.is_cancelled())
        };
        let outcome = {
            let job = PhotoJob {
                finish,
                steps: &mut *steps,
                input,
                index,
                written: &written,
                observer: &*observer,
            };
            std::panic::catch_unwind(AssertUnwindSafe(move || job.run(prepared)))
        };
        let (report, stop) = match outcome {
            Ok(result) => result,
            Err(panic) => (
                FileReport::failed(
                    &input.path,
                    format!("{}: internal error: {}", input.path.display(), panic_text(&panic)),
                    Vec::new(),
                ),
                None,
            ),
        };
        if let Some(out) = &report.output {
            written.insert(out.clone());
        }
        if stop.is_some() {
            summary.stopped = stop;
        }
        observer.file_finished(index, total, &report);
        summary.reports.push(report);
    }
    summary
}

/// What decoding and detecting one photo needs: only shared, read-only parts of the engine, so
/// it may run on the look-ahead thread.
struct Preparer<'p> {
    recipe: &'p Recipe,
    detector: &'p MtcnnNets,
    device: &'p Device,
    limits: &'p DecodeLimits,
}

/// A photo decoded with its faces chosen, or the report that ends it before any step.
enum Prepared {
    Ready {
        photo: Photo,
        chosen: Vec<Face>,
    },
    /// Decoded, then the run was cancelled before detection (the photo's notes).
    Cancelled(Vec<String>),
    Ended(FileReport),
}

impl Preparer<'_> {
    /// Decode → (cancelled?) → detect → choose faces; a panic fails the photo, not the run.
    fn prepare(&self, input: &BatchInput, cancelled: &dyn Fn() -> bool) -> Prepared {
        let path = &input.path;
        std::panic::catch_unwind(AssertUnwindSafe(|| self.prepare_unguarded(input, cancelled)))
            .unwrap_or_else(|panic| {
                Prepared::Ended(FileReport::failed(
                    path,
                    format!("{}: internal error: {}", path.display(), panic_text(&panic)),
                    Vec::new(),
                ))
            })
    }

    fn prepare_unguarded(&self, input: &BatchInput, cancelled: &dyn Fn() -> bool) -> Prepared {
        let path = &input.path;
        let photo = match load_photo(path, self.limits) {
            Ok(photo) => photo,
            Err(e) => return Prepared::Ended(FileReport::failed(path, e.to_string(), Vec::new())),
        };
        if cancelled() {
            return Prepared::Cancelled(photo.notes);
        }
        let recipe = self.recipe;
        let min_score = recipe.faces.min_score;
        let chosen = match (&input.chosen, recipe.faces.mode) {
            (Some(faces), FaceMode::Selected) if !faces.is_empty() => faces.clone(),
            _ => {
                let found =
                    match detect_photo(self.detector, &photo.rgb, &recipe.detect_settings(), self.device) {
                        Ok(found) => found,
                        Err(e) => {
                            return Prepared::Ended(FileReport::failed(
                                path,
                                format!("{}: {e}", path.display()),
                                photo.notes,
                            ));
                        }
                    };
                choose_faces(found.faces, recipe.faces.mode, min_score)
            }
        };
        if chosen.is_empty() {
            return Prepared::Ended(FileReport::skipped(
                path,
                Skip::NoFace,
                format!("{}: no face scoring at least {min_score:.2}", path.display()),
                photo.notes,
            ));
        }
        Prepared::Ready { photo, chosen }
    }
}

/// What the steps and the export of every photo share.
struct Finisher<'f> {
    recipe: &'f Recipe,
    out_dir: &'f Path,
    model_name: Option<&'f str>,
    metadata: &'f [(String, String)],
    protected: &'f ProtectedFiles,
}

struct PhotoJob<'e, 's> {
    finish: &'e Finisher<'e>,
    steps: &'e mut [Box<dyn PhotoStep + 's>],
    input: &'e BatchInput,
    index: usize,
    written: &'e HashSet<PathBuf>,
    observer: &'e dyn BatchObserver,
}

impl PhotoJob<'_, '_> {
    /// The photo's report, and a reason to stop the whole run when the output folder failed.
    fn run(self, prepared: Prepared) -> (FileReport, Option<StopReason>) {
        let path = &self.input.path;
        let finish = self.finish;
        let observer = self.observer;
        let failed = |reason: String, notes: Vec<String>| FileReport::failed(path, reason, notes);
        let cancelled = |notes: Vec<String>| {
            (
                FileReport::skipped(
                    path,
                    Skip::NotReached,
                    format!("{}: not exported, the export was cancelled", path.display()),
                    notes,
                ),
                Some(StopReason::Cancelled),
            )
        };

        let (photo, chosen) = match prepared {
            Prepared::Ready { photo, chosen } => (photo, chosen),
            Prepared::Cancelled(notes) => return cancelled(notes),
            Prepared::Ended(report) => return (report, None),
        };
        let mut notes = photo.notes.clone();
        if observer.is_cancelled() {
            return cancelled(notes);
        }

        let recipe = finish.recipe;
        let format = output_format(recipe.export.format, photo.format, recipe.export.quality);
        let icc_profile = if recipe.export.keep_icc {
            photo.icc_profile.clone()
        } else {
            None
        };
        let mut image = photo.rgb;
        let mut measured = Vec::new();
        let is_cancelled = || observer.is_cancelled();
        for step in self.steps.iter_mut() {
            if observer.is_cancelled() {
                return cancelled(notes);
            }
            match step.apply(image, &chosen, &is_cancelled) {
                Ok(out) => {
                    image = out.image;
                    notes.extend(out.notes);
                    measured.extend(out.measured);
                }
                Err(StepError::Cancelled) => return cancelled(notes),
                Err(StepError::Failed(reason)) => {
                    return (
                        failed(format!("{}: {}: {reason}", path.display(), step.name()), notes),
                        None,
                    );
                }
            }
        }
        if observer.is_cancelled() {
            return cancelled(notes);
        }

        let name = match output_name(
            &recipe.export.naming,
            path,
            output_extension(format, path),
            self.input.position.unwrap_or(self.index),
            finish.model_name,
        ) {
            Ok(name) => name,
            Err(e) => return (failed(format!("{}: {e}", path.display()), notes), None),
        };
        let mut dest = finish.out_dir.join(&name);
        let mut overwrite = recipe.export.overwrite;
        if finish.protected.contains(&dest) && !finish.protected.is_same(&dest, path) {
            if overwrite {
                return (
                    failed(
                        format!(
                            "{}: refusing to write {}: it is another photo of this export, and originals are never replaced",
                            path.display(),
                            dest.display()
                        ),
                        notes,
                    ),
                    None,
                );
            }
        } else if overwrite && self.written.contains(&dest) {
            // Two photos with the same name: the second must not replace what this run just wrote.
            dest = unique_path(&dest);
            overwrite = false;
            notes.push(format!(
                "another photo of this export has the same name; written as {}",
                dest.display()
            ));
        }
        let options = ExportOptions {
            format,
            icc_profile,
            text: finish.metadata.to_vec(),
            overwrite,
        };
        match export_atomic(&image, &dest, &options, &[path.as_path()]) {
            Ok(written) => (
                FileReport::done(path, written, chosen.len(), notes, measured),
                None,
            ),
            Err(e) => {
                let stop = match &e {
                    ExportError::DiskFull { .. }
                    | ExportError::ReadOnly { .. }
                    | ExportError::MissingFolder { .. }
                    | ExportError::NotAFolder { .. } => Some(StopReason::Output(e.to_string())),
                    _ => None,
                };
                (failed(format!("{}: {e}", path.display()), notes), stop)
            }
        }
    }
}

/// The faces a recipe edits, largest first, from a photo's detections.
pub fn choose_faces(mut faces: Vec<Face>, mode: FaceMode, min_score: f32) -> Vec<Face> {
    faces.retain(|f| f.score >= min_score);
    faces.sort_by(|a, b| b.area().total_cmp(&a.area()));
    if mode == FaceMode::Largest {
        faces.truncate(1);
    }
    faces
}

fn output_format(choice: OutputFormat, source: ImageFormat, quality: u8) -> ExportFormat {
    let jpeg = ExportFormat::Jpeg { quality };
    match choice {
        OutputFormat::Jpeg => jpeg,
        OutputFormat::Png => ExportFormat::Png,
        OutputFormat::Same if source == ImageFormat::Jpeg => jpeg,
        OutputFormat::Same => ExportFormat::Png,
    }
}

/// The extension for `{ext}`: the photo's own spelling when it already names the output format
/// (`.JPG` stays `.JPG`), else the format's usual one.
fn output_extension(format: ExportFormat, path: &Path) -> String {
    let own = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let (usual, spellings): (&str, &[&str]) = match format {
        ExportFormat::Jpeg { .. } => ("jpg", &["jpg", "jpeg", "jpe"]),
        ExportFormat::Png => ("png", &["png"]),
    };
    if spellings.iter().any(|s| s.eq_ignore_ascii_case(own)) {
        own.to_string()
    } else {
        usual.to_string()
    }
}

/// The output file name for a photo from the naming template (see
/// [`super::recipe::ExportSettings::naming`]). Works on the raw name, so a name that is not valid
/// UTF-8 keeps its bytes.
pub fn output_name(
    template: &str,
    source: &Path,
    ext: String,
    index: usize,
    model: Option<&str>,
) -> Result<std::ffi::OsString, NamingError> {
    let mut name = std::ffi::OsString::new();
    let stem = source
        .file_stem()
        .map(|s| s.to_os_string())
        .unwrap_or_else(|| "photo".into());
    for piece in parse_template(template)? {
        match piece {
            TemplatePiece::Text(text) => name.push(text),
            TemplatePiece::Placeholder("stem") => name.push(&stem),
            TemplatePiece::Placeholder("ext") => name.push(&ext),
            TemplatePiece::Placeholder("index") => name.push(format!("{:04}", index + 1)),
            TemplatePiece::Placeholder("model") => {
                let model: String = model
                    .unwrap_or("")
                    .chars()
                    .map(|c| {
                        if c == '/' || c == '\\' || c.is_control() {
                            '_'
                        } else {
                            c
                        }
                    })
                    .collect();
                name.push(model);
            }
            TemplatePiece::Placeholder(other) => {
                return Err(NamingError::UnknownPlaceholder {
                    name: other.to_string(),
                    template: template.to_string(),
                });
            }
        }
    }
    let bytes = name.as_encoded_bytes();
    if bytes.is_empty() || name == "." || name == ".." {
        return Err(NamingError::EmptyName(template.to_string()));
    }
    if bytes.starts_with(TEMP_PREFIX.as_bytes()) {
        return Err(NamingError::ReservedName(template.to_string()));
    }
    Ok(name)
}

/// Creates the output folder if needed, checks it takes files, and removes the temporary files of
/// interrupted runs. Returns how many were removed.
pub fn prepare_folder(dir: &Path) -> Result<usize, BatchError> {
    let folder_error = |detail: String| BatchError::OutputFolder {
        dir: dir.to_path_buf(),
        detail,
    };
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Err(folder_error("it is a file, not a folder".into())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(|e| folder_error(format!("it cannot be created: {e}")))?;
        }
        Err(e) => return Err(folder_error(e.to_string())),
    }
    // A probe file, so a read-only folder is reported before any photo is worked on.
    tempfile::Builder::new()
        .prefix(&temp_prefix())
        .suffix(".probe")
        .tempfile_in(dir)
        .map_err(|e| folder_error(format!("files cannot be written there: {e}")))?;
    clean_stale_temp_files(dir).map_err(|e| folder_error(format!("cleaning old temporary files failed: {e}")))
}

/// The photos of a run, by identity (device and inode on Unix), so that no spelling or link lets an
/// output replace one.
struct ProtectedFiles {
    ids: HashSet<FileId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum FileId {
    #[cfg(unix)]
    Inode(u64, u64),
    #[cfg(not(unix))]
    Path(PathBuf),
}

impl FileId {
    fn of(path: &Path) -> Option<FileId> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let meta = std::fs::metadata(path).ok()?;
            Some(FileId::Inode(meta.dev(), meta.ino()))
        }
        #[cfg(not(unix))]
        {
            std::fs::canonicalize(path).ok().map(FileId::Path)
        }
    }
}

impl ProtectedFiles {
    fn of<'p>(paths: impl Iterator<Item = &'p Path>) -> ProtectedFiles {
        ProtectedFiles {
            ids: paths.filter_map(FileId::of).collect(),
        }
    }

    fn contains(&self, path: &Path) -> bool {
        FileId::of(path).is_some_and(|id| self.ids.contains(&id))
    }

    fn is_same(&self, a: &Path, b: &Path) -> bool {
        matches!((FileId::of(a), FileId::of(b)), (Some(x), Some(y)) if x == y)
    }
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "a step panicked".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(x: f32, side: f32, score: f32) -> Face {
        Face {
            bbox: [x, 0.0, x + side, side],
            score,
            landmarks: [[0.0; 2]; 5],
        }
    }

    #[test]
    fn ids_are_paths_inside_the_folder_given() {
        let roots = [
            PathBuf::from("/mnt/photos"),
            PathBuf::from("/mnt/photos/sub"),
            PathBuf::from("b.jpg"),
        ];
        assert_eq!(input_id(Path::new("/mnt/photos/a/x.jpg"), &roots), "a/x.jpg");
        assert_eq!(input_id(Path::new("/mnt/photos/sub/y.jpg"), &roots), "y.jpg");
        assert_eq!(input_id(Path::new("b.jpg"), &roots), "b.jpg");
        assert_eq!(
            input_id(Path::new("/elsewhere/c.jpg"), &roots),
            "/elsewhere/c.jpg"
        );
    }

    #[test]
    fn faces_are_chosen_by_score_and_size() {
        let faces = vec![
            face(0.0, 10.0, 0.9),
            face(50.0, 30.0, 0.95),
            face(90.0, 40.0, 0.5),
        ];
        let all = choose_faces(faces.clone(), FaceMode::AllAbove, 0.7);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].bbox[0], 50.0, "largest first");
        let largest = choose_faces(faces.clone(), FaceMode::Largest, 0.7);
        assert_eq!(largest.len(), 1);
        assert_eq!(
            largest[0].bbox[0], 50.0,
            "the largest above the score, not the largest"
        );
        assert!(choose_faces(faces, FaceMode::AllAbove, 0.99).is_empty());
    }

    #[test]
    fn names_follow_the_template_and_keep_odd_bytes() {
        let name = output_name(
            "{stem}_vm.{ext}",
            Path::new("/a/Shot 1.JPG"),
            "JPG".into(),
            0,
            None,
        )
        .unwrap();
        assert_eq!(name, "Shot 1_vm.JPG");
        let name = output_name(
            "{index}-{model}.{ext}",
            Path::new("x.png"),
            "png".into(),
            41,
            Some("Ava/B"),
        )
        .unwrap();
        assert_eq!(name, "0042-Ava_B.png");
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            let source = Path::new(std::ffi::OsStr::from_bytes(b"caf\xe9.jpg"));
            let name = output_name("{stem}_vm.{ext}", source, "jpg".into(), 0, None).unwrap();
            assert_eq!(name.as_encoded_bytes(), b"caf\xe9_vm.jpg");
        }
        assert!(output_name("{model}", Path::new("x.png"), "png".into(), 0, None).is_err());
        assert!(output_name(".facecast-tmp-{stem}", Path::new("x.png"), "png".into(), 0, None).is_err());
    }

    #[test]
    fn the_format_follows_the_recipe() {
        assert_eq!(
            output_format(OutputFormat::Same, ImageFormat::Jpeg, 80),
            ExportFormat::Jpeg { quality: 80 }
        );
        assert_eq!(
            output_format(OutputFormat::Same, ImageFormat::WebP, 80),
            ExportFormat::Png
        );
        assert_eq!(
            output_format(OutputFormat::Jpeg, ImageFormat::Png, 70),
            ExportFormat::Jpeg { quality: 70 }
        );
        let jpeg = ExportFormat::Jpeg { quality: 90 };
        assert_eq!(output_extension(jpeg, Path::new("a.JPEG")), "JPEG");
        assert_eq!(output_extension(jpeg, Path::new("a.png")), "jpg");
        assert_eq!(output_extension(ExportFormat::Png, Path::new("a.gif")), "png");
    }

    #[test]
    fn a_read_only_or_file_output_folder_is_refused_before_anything_runs() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        assert!(matches!(
            prepare_folder(&file),
            Err(BatchError::OutputFolder { .. })
        ));
        let made = dir.path().join("new/out");
        assert_eq!(prepare_folder(&made).unwrap(), 0);
        assert!(made.is_dir());
        let leftover = made.join(format!("{TEMP_PREFIX}999999999-abc.part"));
        std::fs::write(&leftover, b"half").unwrap();
        assert_eq!(
            prepare_folder(&made).unwrap(),
            1,
            "a dead writer's file goes at once"
        );
        assert!(!leftover.exists());
    }
}
