//! Plain state behind the window: the photo library, the selection, running activities, toasts.
//!
//! Nothing here knows about egui textures or tensors, so the same state can be inspected by tests and
//! folded from worker events without a window.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::compute::Compute;
use crate::jobs::photos::display_name;
use crate::jobs::{JobEvent, JobEventKind, JobId, JobOutcome, JobOutput, PhotoId, PhotoImage};
use crate::pipeline::detect::photo::{DetectSettings, PhotoFaces};
use crate::pipeline::faces_text;
use crate::pipeline::recipe::Recipe;

use super::export_bar::ExportState;
use super::history::{EditHistory, Version};
use super::toasts::Toasts;

/// Where a library photo stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhotoStatus {
    /// Queued or decoding.
    Loading,
    /// Decoded: its size as displayed (after EXIF orientation).
    Loaded { width: u32, height: u32 },
    /// Could not be read; the reason names the file and the cause.
    Failed(String),
    /// Its loading was cancelled; adding it again retries.
    Cancelled,
}

/// Where face detection stands for a photo.
#[derive(Debug, Clone, PartialEq)]
pub enum Detection {
    /// Not asked yet (the detector may still be installing).
    NotRun,
    /// Queued or running.
    Pending,
    Done(PhotoFaces),
    /// The reason names the file and the cause.
    Failed(String),
    /// Stopped by the operator; detecting again happens after the next install or re-add.
    Cancelled,
}

/// The one-word verdict shown on a library row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaceBadge {
    /// Faces scoring at least the screening score.
    Faces(usize),
    NoFace,
    Error(String),
}

impl FaceBadge {
    pub fn text(&self) -> String {
        match self {
            FaceBadge::Faces(n) => faces_text(*n),
            FaceBadge::NoFace => "no face".to_string(),
            FaceBadge::Error(_) => "error".to_string(),
        }
    }
}

/// Which photos the library lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LibraryFilter {
    #[default]
    All,
    WithFaces,
    NoFace,
    Errors,
    /// The face classifier's second opinion disagrees with detection.
    OpinionsDiffer,
}

impl LibraryFilter {
    pub const ALL: [LibraryFilter; 5] = [
        LibraryFilter::All,
        LibraryFilter::WithFaces,
        LibraryFilter::NoFace,
        LibraryFilter::Errors,
        LibraryFilter::OpinionsDiffer,
    ];

    pub fn label(self) -> &'static str {
        match self {
            LibraryFilter::All => "All",
            LibraryFilter::WithFaces => "With faces",
            LibraryFilter::NoFace => "No face",
            LibraryFilter::Errors => "Errors",
            LibraryFilter::OpinionsDiffer => "Opinions differ",
        }
    }

    pub fn accepts(self, entry: &PhotoEntry, min_score: f32) -> bool {
        match self {
            LibraryFilter::All => true,
            LibraryFilter::WithFaces => matches!(entry.badge(min_score), Some(FaceBadge::Faces(_))),
            LibraryFilter::NoFace => matches!(entry.badge(min_score), Some(FaceBadge::NoFace)),
            LibraryFilter::Errors => matches!(entry.badge(min_score), Some(FaceBadge::Error(_))),
            LibraryFilter::OpinionsDiffer => entry.opinions_differ(min_score),
        }
    }
}

#[derive(Debug, Clone)]
pub struct PhotoEntry {
    pub id: PhotoId,
    pub path: PathBuf,
    /// The file name, for labels.
    pub name: String,
    pub status: PhotoStatus,
    pub thumbnail: Option<Arc<PhotoImage>>,
    pub detection: Detection,
    /// Indices into the detected faces that the operator chose as swap targets.
    pub targets: BTreeSet<usize>,
    /// The operator's own label, for training the face classifier.
    pub mark: Option<super::classifier_ui::FaceMark>,
    /// The face classifier's second opinion, once asked.
    pub opinion: Option<super::classifier_ui::Opinion>,
    /// The product feed row that named this photo, when it came from a feed.
    pub feed: Option<super::feed_ui::FeedCells>,
}

impl PhotoEntry {
    /// The detected faces, once detection has run.
    pub fn faces(&self) -> Option<&PhotoFaces> {
        match &self.detection {
            Detection::Done(faces) => Some(faces),
            _ => None,
        }
    }

    /// The library's verdict: faces scoring `min_score` or more (the screening rule), none, or an
    /// error (unreadable photo or failed detection). None while it is not known yet.
    pub fn badge(&self, min_score: f32) -> Option<FaceBadge> {
        if let PhotoStatus::Failed(reason) = &self.status {
            return Some(FaceBadge::Error(reason.clone()));
        }
        match &self.detection {
            Detection::Done(faces) => {
                let n = faces.faces.iter().filter(|f| f.score >= min_score).count();
                Some(if n == 0 {
                    FaceBadge::NoFace
                } else {
                    FaceBadge::Faces(n)
                })
            }
            Detection::Failed(reason) => Some(FaceBadge::Error(reason.clone())),
            _ => None,
        }
    }

    /// Chooses or un-chooses face `index` as a swap target.
    pub fn toggle_target(&mut self, index: usize) {
        if !self.targets.remove(&index) {
            self.targets.insert(index);
        }
    }

    /// Makes exactly the faces scoring `min_score` or more the swap targets.
    pub fn select_faces_from(&mut self, min_score: f32) {
        self.targets = self
            .faces()
            .map(|f| {
                f.faces
                    .iter()
                    .enumerate()
                    .filter(|(_, face)| face.score >= min_score)
                    .map(|(i, _)| i)
                    .collect()
            })
            .unwrap_or_default();
    }
}

/// The photos the operator has added, in the order they were added.
#[derive(Debug, Default)]
pub struct Library {
    entries: Vec<PhotoEntry>,
    /// Canonical path → id, so the same file is never listed twice.
    paths: HashMap<PathBuf, PhotoId>,
    /// id → position in `entries`; lookups happen every frame for every visible row.
    index: HashMap<PhotoId, usize>,
    next_id: u64,
}

impl Library {
    /// Adds the paths not already present (and retries those whose loading was cancelled); returns the
    /// ids and paths that need loading.
    pub fn add(&mut self, paths: impl IntoIterator<Item = PathBuf>) -> Vec<(PhotoId, PathBuf)> {
        let mut added = Vec::new();
        for path in paths {
            // The same file reached through a different spelling (./a.jpg, a folder drop) is one photo.
            let key = canonical(&path);
            if let Some(&id) = self.paths.get(&key) {
                if let Some(entry) = self.get_mut(id)
                    && entry.status == PhotoStatus::Cancelled
                {
                    entry.status = PhotoStatus::Loading;
                    added.push((id, entry.path.clone()));
                }
                continue;
            }
            self.next_id += 1;
            let id = PhotoId(self.next_id);
            self.paths.insert(key, id);
            self.index.insert(id, self.entries.len());
            let name = display_name(&path);
            self.entries.push(PhotoEntry {
                id,
                path: path.clone(),
                name,
                status: PhotoStatus::Loading,
                thumbnail: None,
                detection: Detection::NotRun,
                targets: BTreeSet::new(),
                mark: None,
                opinion: None,
                feed: None,
            });
            added.push((id, path));
        }
        added
    }

    pub fn remove(&mut self, id: PhotoId) -> Option<PhotoEntry> {
        let index = self.index_of(id)?;
        let entry = self.entries.remove(index);
        self.paths.retain(|_, v| *v != id);
        self.index = self.entries.iter().enumerate().map(|(i, e)| (e.id, i)).collect();
        Some(entry)
    }

    pub fn entries(&self) -> &[PhotoEntry] {
        &self.entries
    }

    pub fn get(&self, id: PhotoId) -> Option<&PhotoEntry> {
        self.index.get(&id).and_then(|&i| self.entries.get(i))
    }

    pub fn get_mut(&mut self, id: PhotoId) -> Option<&mut PhotoEntry> {
        self.index.get(&id).and_then(|&i| self.entries.get_mut(i))
    }

    pub fn index_of(&self, id: PhotoId) -> Option<usize> {
        self.index.get(&id).copied()
    }

    /// The photo at `path` (however it is spelled), if it is in the library.
    pub fn id_of_path(&self, path: &Path) -> Option<PhotoId> {
        self.paths.get(&canonical(path)).copied()
    }

    pub fn contains_path(&self, path: &Path) -> bool {
        self.paths.contains_key(&canonical(path))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn count(&self, pred: impl Fn(&PhotoStatus) -> bool) -> usize {
        self.entries.iter().filter(|entry| pred(&entry.status)).count()
    }

    pub fn count_entries(&self, pred: impl Fn(&PhotoEntry) -> bool) -> usize {
        self.entries.iter().filter(|entry| pred(entry)).count()
    }
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// At most this many decoded photos wait for detection in memory; beyond, detection decodes again
/// (a folder of 24-megapixel photos would otherwise hold gigabytes).
pub const MAX_KEPT_DECODED: usize = 16;

/// The canvas copy of the selected photo.
#[derive(Debug, Clone)]
pub struct Preview {
    pub photo: PhotoId,
    /// Full size of the photo; `image` may be smaller.
    pub width: u32,
    pub height: u32,
    pub image: Arc<PhotoImage>,
}

/// A running background job as the status bar shows it.
#[derive(Debug, Clone)]
pub struct Activity {
    pub job: JobId,
    pub label: String,
    pub done: usize,
    pub total: usize,
}

impl Activity {
    /// Fraction done, when the job knows its total.
    pub fn fraction(&self) -> Option<f32> {
        (self.total > 0).then(|| self.done as f32 / self.total as f32)
    }
}

/// The compute backend really in use, and how the window draws.
#[derive(Debug, Clone)]
pub struct BackendInfo {
    /// e.g. "llvmpipe (software Vulkan)" or "CPU (flex)".
    pub label: String,
    /// Why this device runs the networks (e.g. "no GPU found: …").
    pub reason: String,
    /// Why it is not what was asked for, when it fell back.
    pub fallback_reason: Option<String>,
    /// How the window renders: on burn's device, or on its own device and why.
    pub display: String,
}

impl BackendInfo {
    pub fn from_compute(compute: &Compute, display: impl Into<String>) -> BackendInfo {
        BackendInfo {
            label: compute.label(),
            reason: compute.reason.clone(),
            fallback_reason: compute.fallback_reason.clone(),
            display: display.into(),
        }
    }
}

/// What the UI must do after folding an event (the state itself cannot reach the worker).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowUp {
    /// New photos entered the library: make their thumbnails.
    LoadThumbnails(Vec<(PhotoId, PathBuf)>),
}

#[derive(Debug)]
pub struct AppState {
    pub backend: BackendInfo,
    pub library: Library,
    pub selected: Option<PhotoId>,
    pub preview: Option<Preview>,
    /// The preview job in flight, so a newer selection can cancel it.
    pub preview_job: Option<JobId>,
    pub activities: Vec<Activity>,
    /// GPU kernels being prepared, and jobs meeting a network for the first time (status bar).
    pub warmup: super::status::WarmupStatus,
    pub toasts: Toasts,
    /// How photos are screened; `min_score` is the "has a face" rule of the library badges.
    pub detect_settings: DetectSettings,
    /// The library filter.
    pub filter: LibraryFilter,
    /// The score "Select all faces ≥" uses on the canvas.
    pub select_score: f32,
    /// Decoded photos waiting for detection, so they are not decoded twice (capped: see
    /// [`MAX_KEPT_DECODED`]).
    pub decoded: HashMap<PhotoId, Arc<image::RgbImage>>,
    /// Edited versions of photos (swap, restore, makeup), with undo and redo.
    pub edits: HashMap<PhotoId, EditHistory>,
    /// The Restore section: its settings, GPEN's install state, its running job.
    pub restore: super::restore_section::RestorePanel,
    /// Results of the Edit window's text-edit previews.
    pub text_edit: super::text_edit::TextEditInbox,
    /// The Train window's run: progress, loss history, previews.
    pub train: super::train_window::TrainInbox,
    /// The Swap section's settings, virtual model and running job.
    pub swap: super::swap_panel::SwapUi,
    /// Every setting of a run; the pipeline sections and the export settings edit it, exports run it.
    pub recipe: Recipe,
    /// The export running or last run, with its per-photo results.
    pub export: ExportState,
    /// Faces chosen in the last session, by photo path, put back when the photo's detection arrives.
    pub restored_targets: HashMap<PathBuf, BTreeSet<usize>>,
    /// Virtual models: the library, the current one (swaps use it), candidates, imports.
    pub cast: super::cast_state::CastState,
    /// The makeup step: reference faces, settings, BeautyGAN's install.
    pub makeup: super::makeup_section::MakeupState,
    /// The face/no-face classifier: install, second opinions, training.
    pub classifier: super::classifier_ui::ClassifierState,
    /// What each feature's networks lack, as the Weights window last checked.
    pub missing_networks: super::weights_links::MissingNetworks,
    /// Product feeds: the one being set up or imported, the last import's result.
    pub feed: super::feed_ui::FeedState,
    /// Which photos each detection job screens, so a cancelled or failed job leaves none pending.
    detect_jobs: HashMap<JobId, Vec<PhotoId>>,
    /// Which photos each thumbnail job was asked to load, so a cancelled or failed job leaves none
    /// of them "loading" forever.
    thumbnail_jobs: HashMap<JobId, Vec<PhotoId>>,
}

impl AppState {
    pub fn new(backend: BackendInfo) -> AppState {
        AppState {
            backend,
            library: Library::default(),
            selected: None,
            preview: None,
            preview_job: None,
            activities: Vec::new(),
            warmup: Default::default(),
            toasts: Toasts::default(),
            detect_settings: DetectSettings::default(),
            filter: LibraryFilter::default(),
            select_score: DetectSettings::default().min_score,
            decoded: HashMap::new(),
            edits: HashMap::new(),
            restore: Default::default(),
            text_edit: Default::default(),
            train: Default::default(),
            swap: Default::default(),
            recipe: Recipe::default(),
            export: ExportState::default(),
            restored_targets: HashMap::new(),
            cast: Default::default(),
            makeup: Default::default(),
            classifier: Default::default(),
            missing_networks: Default::default(),
            feed: Default::default(),
            detect_jobs: HashMap::new(),
            thumbnail_jobs: HashMap::new(),
        }
    }

    /// Remembers that `job` screens `photos` and marks them pending.
    pub fn track_detection(&mut self, job: JobId, photos: Vec<PhotoId>) {
        for &photo in &photos {
            if let Some(entry) = self.library.get_mut(photo) {
                entry.detection = Detection::Pending;
            }
        }
        self.detect_jobs.insert(job, photos);
    }

    /// Loaded photos that were never screened (or whose screening failed or was stopped when
    /// `retry` is set), with their decoded pixels when still kept.
    pub fn take_undetected(&mut self, retry: bool) -> Vec<(PhotoId, PathBuf, Option<Arc<image::RgbImage>>)> {
        let mut out = Vec::new();
        for entry in self.library.entries() {
            let wanted = match entry.detection {
                Detection::NotRun => true,
                Detection::Failed(_) | Detection::Cancelled => retry,
                Detection::Pending | Detection::Done(_) => false,
            };
            if wanted && matches!(entry.status, PhotoStatus::Loaded { .. }) {
                out.push((entry.id, entry.path.clone(), self.decoded.remove(&entry.id)));
            }
        }
        out
    }

    /// Photos whose detection is queued or running.
    pub fn detecting(&self) -> usize {
        self.library.count_entries(|e| e.detection == Detection::Pending)
    }

    /// The photos the library filter lets through, in library order.
    pub fn visible_entries(&self) -> Vec<&PhotoEntry> {
        let min_score = self.detect_settings.min_score;
        self.library
            .entries()
            .iter()
            .filter(|e| self.filter.accepts(e, min_score))
            .collect()
    }

    /// The edit currently applied to `photo`, if any; the next step works on it instead of the file.
    pub fn current_edit(&self, photo: PhotoId) -> Option<&Version> {
        self.edits.get(&photo).and_then(EditHistory::current)
    }

    pub fn selected_entry(&self) -> Option<&PhotoEntry> {
        self.selected.and_then(|id| self.library.get(id))
    }

    /// Remembers that `job` loads `photos`' thumbnails.
    pub fn track_thumbnails(&mut self, job: JobId, photos: Vec<PhotoId>) {
        self.thumbnail_jobs.insert(job, photos);
    }

    /// Folds one worker event into the state.
    pub fn apply(&mut self, event: JobEvent) -> Option<FollowUp> {
        let job = event.job;
        self.text_edit.observe(&event);
        self.train.observe(&event);
        match event.kind {
            JobEventKind::Started { label } => {
                self.activities.push(Activity {
                    job,
                    label,
                    done: 0,
                    total: 0,
                });
                None
            }
            JobEventKind::Progress { done, total } => {
                if let Some(activity) = self.activities.iter_mut().find(|a| a.job == job) {
                    activity.done = done;
                    activity.total = total;
                }
                None
            }
            JobEventKind::Output(JobOutput::Warmup(event)) => {
                self.warmup.apply(job, event, &mut self.activities);
                None
            }
            JobEventKind::Output(output) => self.apply_output(output),
            JobEventKind::Finished(outcome) => {
                let label = self
                    .activities
                    .iter()
                    .find(|a| a.job == job)
                    .map(|a| a.label.clone());
                self.activities.retain(|a| a.job != job);
                self.warmup.job_finished(job);
                self.makeup.job_finished(job);
                self.classifier_job_finished(job, &outcome);
                if self.preview_job == Some(job) {
                    self.preview_job = None;
                }
                if self.swap.job == Some(job) {
                    self.swap.job = None;
                }
                self.cast.finished(job, &outcome);
                for photo in self.thumbnail_jobs.remove(&job).unwrap_or_default() {
                    if let Some(entry) = self.library.get_mut(photo)
                        && entry.status == PhotoStatus::Loading
                    {
                        entry.status = match &outcome {
                            JobOutcome::Failed(reason) => PhotoStatus::Failed(reason.clone()),
                            JobOutcome::Done | JobOutcome::Cancelled => PhotoStatus::Cancelled,
                        };
                    }
                }
                for photo in self.detect_jobs.remove(&job).unwrap_or_default() {
                    if let Some(entry) = self.library.get_mut(photo)
                        && entry.detection == Detection::Pending
                    {
                        entry.detection = match &outcome {
                            JobOutcome::Failed(reason) => Detection::Failed(reason.clone()),
                            JobOutcome::Done | JobOutcome::Cancelled => Detection::Cancelled,
                        };
                    }
                }
                self.restore_job_finished(job, &outcome);
                self.export.job_finished(job, &outcome);
                self.feed.job_finished(job);
                if let JobOutcome::Failed(reason) = outcome {
                    let text = match label {
                        Some(label) => format!("{label} failed: {reason}"),
                        None => reason,
                    };
                    self.toasts.error(text);
                }
                None
            }
        }
    }

    fn apply_output(&mut self, output: JobOutput) -> Option<FollowUp> {
        match output {
            JobOutput::FilesFound { files, problems } => {
                for (_, reason) in problems {
                    self.toasts.warning(reason);
                }
                let added = self.library.add(files);
                (!added.is_empty()).then_some(FollowUp::LoadThumbnails(added))
            }
            JobOutput::Thumbnail {
                photo,
                width,
                height,
                thumbnail,
                rgb,
            } => {
                if let Some(entry) = self.library.get_mut(photo) {
                    entry.status = PhotoStatus::Loaded { width, height };
                    entry.thumbnail = Some(thumbnail);
                    if let Some(rgb) = rgb
                        && entry.detection == Detection::NotRun
                        && self.decoded.len() < MAX_KEPT_DECODED
                    {
                        self.decoded.insert(photo, rgb);
                    }
                }
                None
            }
            JobOutput::Faces { photo, result } => {
                if let Some(entry) = self.library.get_mut(photo) {
                    entry.detection = match result {
                        Ok(faces) => Detection::Done(faces),
                        Err(reason) => Detection::Failed(reason),
                    };
                    entry.targets.clear();
                    if let Some(saved) = self.restored_targets.remove(&entry.path) {
                        let found = entry.faces().map_or(0, |f| f.faces.len());
                        entry.targets = saved.into_iter().filter(|&i| i < found).collect();
                    }
                }
                None
            }
            JobOutput::Preview {
                photo,
                width,
                height,
                image,
            } => {
                if self.selected == Some(photo) {
                    self.preview = Some(Preview {
                        photo,
                        width,
                        height,
                        image,
                    });
                }
                None
            }
            JobOutput::Edited {
                photo,
                label,
                image,
                notes,
            } => {
                if self.library.get(photo).is_some() {
                    self.edits
                        .entry(photo)
                        .or_default()
                        .push(Version { label, image, notes });
                }
                None
            }
            // Folded by `text_edit.observe` above.
            JobOutput::TextEdited(_) => None,
            // Folded by `train.observe` above.
            JobOutput::Train(_) => None,
            JobOutput::RestoredEdits {
                path,
                versions,
                applied,
                problem,
            } => {
                if let Some(problem) = problem {
                    self.toasts.warning(problem);
                }
                let id = self
                    .library
                    .entries()
                    .iter()
                    .find(|e| e.path == path)
                    .map(|e| e.id);
                if let Some(id) = id
                    && !versions.is_empty()
                {
                    let versions = versions
                        .into_iter()
                        .map(|(label, image, notes)| Version { label, image, notes })
                        .collect();
                    self.edits.insert(id, EditHistory::restore(versions, applied));
                }
                None
            }
            JobOutput::Export(event) => {
                self.export.apply(event);
                None
            }
            JobOutput::Cast(output) => {
                self.cast.apply(*output, &mut self.toasts);
                None
            }
            JobOutput::Makeup(output) => {
                self.apply_makeup_output(output);
                None
            }
            JobOutput::Classifier(output) => {
                self.apply_classifier_output(output);
                None
            }
            JobOutput::Feed(output) => self.apply_feed_output(output),
            // Folded with its job id in `apply`.
            JobOutput::Warmup(_) => None,
            JobOutput::PhotoFailed { photo, reason } => {
                if let Some(entry) = self.library.get_mut(photo) {
                    entry.status = PhotoStatus::Failed(reason);
                }
                None
            }
        }
    }
}
