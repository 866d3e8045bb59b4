//! Plain state behind the window: the photo library, the selection, running activities, toasts.
//!
//! Nothing here knows about egui textures or tensors, so the same state can be inspected by tests and
//! folded from worker events without a window.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::compute::Compute;
use crate::jobs::photos::display_name;
use crate::jobs::{JobEvent, JobEventKind, JobId, JobOutcome, JobOutput, PhotoId, PhotoImage};

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

#[derive(Debug, Clone)]
pub struct PhotoEntry {
    pub id: PhotoId,
    pub path: PathBuf,
    /// The file name, for labels.
    pub name: String,
    pub status: PhotoStatus,
    pub thumbnail: Option<Arc<PhotoImage>>,
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
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

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
    /// Why it is not what was asked for, when it fell back.
    pub fallback_reason: Option<String>,
    /// How the window renders: on burn's device, or on its own device and why.
    pub display: String,
}

impl BackendInfo {
    pub fn from_compute(compute: &Compute, display: impl Into<String>) -> BackendInfo {
        BackendInfo {
            label: compute.label(),
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
    pub toasts: Toasts,
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
            toasts: Toasts::default(),
            thumbnail_jobs: HashMap::new(),
        }
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
            JobEventKind::Output(output) => self.apply_output(output),
            JobEventKind::Finished(outcome) => {
                let label = self
                    .activities
                    .iter()
                    .find(|a| a.job == job)
                    .map(|a| a.label.clone());
                self.activities.retain(|a| a.job != job);
                if self.preview_job == Some(job) {
                    self.preview_job = None;
                }
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
            } => {
                if let Some(entry) = self.library.get_mut(photo) {
                    entry.status = PhotoStatus::Loaded { width, height };
                    entry.thumbnail = Some(thumbnail);
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
            JobOutput::PhotoFailed { photo, reason } => {
                if let Some(entry) = self.library.get_mut(photo) {
                    entry.status = PhotoStatus::Failed(reason);
                }
                None
            }
        }
    }
}
