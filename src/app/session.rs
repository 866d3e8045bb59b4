//! Sessions: the library (photo paths), the faces chosen on each photo, the recipe, the window
//! layout and each photo's edit history come back after a restart.
//!
//! Stored in the data directory, not with eframe's key-value storage, because edited versions are
//! whole images:
//! - `<data_dir>/session/session.json`: the versioned session file below, written atomically;
//! - `<data_dir>/session/edits/<sha256 of the pixels, 16 hex digits>.png`: each edited version, written
//!   once (atomically) and removed when no version refers to it any more.
//!
//! Saving happens on eframe's save hook (on exit and every 30 s) on a thread of its own, so encoding
//! a 24-megapixel edit never stalls the window. A damaged or newer session file is reported and the
//! window starts empty; nothing of it is overwritten until the next save.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use image::RgbImage;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::history::Version;
use super::state::{AppState, LibraryFilter, PhotoStatus};
use super::{FacecastApp, Layout};
use crate::io::atomic::write_atomic;
use crate::jobs::{Job, JobContext, JobError, JobOutput, Lane};
use crate::pipeline::recipe::Recipe;

/// The version of the session format this build writes and reads.
pub const SESSION_VERSION: u32 = 1;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionFile {
    pub facecast_session: u32,
    pub photos: Vec<SessionPhoto>,
    /// The photo on the canvas.
    pub selected: Option<PathBuf>,
    /// The recipe, as a recipe file holds it (read back with the recipe's own checks).
    pub recipe: Option<serde_json::Value>,
    /// Where the recipe was last saved or loaded.
    pub recipe_path: Option<PathBuf>,
    pub layout: SessionLayout,
    /// The library filter's label ("All", "With faces", ...).
    pub filter: Option<String>,
    pub select_score: Option<f32>,
    /// The current virtual model's id (the Cast panel's choice).
    pub virtual_model: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionLayout {
    pub library: bool,
    pub side: bool,
}

impl Default for SessionLayout {
    fn default() -> Self {
        let layout = Layout::default();
        SessionLayout {
            library: layout.library,
            side: layout.side,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionPhoto {
    pub path: PathBuf,
    /// Indices of the faces chosen on the canvas (detection is deterministic, so they are the same
    /// faces after a restart).
    pub targets: Vec<usize>,
    pub edits: Option<SessionEdits>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionEdits {
    /// How many versions are applied (the rest were undone and can be redone).
    pub applied: usize,
    pub versions: Vec<SessionVersion>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionVersion {
    pub label: String,
    pub notes: Vec<String>,
    /// File name in `session/edits/`.
    pub file: String,
}

/// Where sessions live and what the last save already wrote.
pub struct SessionStore {
    dir: PathBuf,
    /// Edited images already on disk, by the address of their shared buffer, so a save does not
    /// hash or write them again.
    written: HashMap<usize, String>,
    saving: Option<JoinHandle<Result<(), String>>>,
    /// The selection to restore once its photo is loaded.
    pending_selection: Option<PathBuf>,
}

/// Errors of reading a session, shown as a warning when the window opens.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("the saved session {path} could not be read: {detail}")]
    Read { path: PathBuf, detail: String },
    #[error(
        "the saved session {path} was written by a newer Facecast (session version {found}, this build reads {SESSION_VERSION}); starting empty"
    )]
    Newer { path: PathBuf, found: u32 },
}

impl SessionStore {
    pub fn new(data_dir: &Path) -> SessionStore {
        SessionStore {
            dir: data_dir.join("session"),
            written: HashMap::new(),
            saving: None,
            pending_selection: None,
        }
    }

    pub fn file(&self) -> PathBuf {
        self.dir.join("session.json")
    }

    fn edits_dir(&self) -> PathBuf {
        self.dir.join("edits")
    }

    /// The saved session, or `None` when there is none yet.
    pub fn read(&self) -> Result<Option<SessionFile>, SessionError> {
        let path = self.file();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(SessionError::Read {
                    path,
                    detail: e.to_string(),
                });
            }
        };
        let session: SessionFile = serde_json::from_str(&text).map_err(|e| SessionError::Read {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        if session.facecast_session > SESSION_VERSION {
            return Err(SessionError::Newer {
                path,
                found: session.facecast_session,
            });
        }
        Ok(Some(session))
    }

    /// Waits for a save in progress; returns its error, if it had one.
    pub fn wait(&mut self) -> Result<(), String> {
        match self.saving.take() {
            Some(handle) => handle
                .join()
                .unwrap_or_else(|_| Err("the session save thread panicked".into())),
            None => Ok(()),
        }
    }
}

/// An edited image to write, and the name it gets.
struct PendingImage {
    name: String,
    image: Arc<RgbImage>,
}

/// The session file name of an edited image: a digest of its size and pixels.
fn image_name(image: &RgbImage) -> String {
    let mut hasher = Sha256::new();
    hasher.update(image.width().to_le_bytes());
    hasher.update(image.height().to_le_bytes());
    hasher.update(image.as_raw());
    format!("{}.png", &hex::encode(hasher.finalize())[..16])
}

/// The session of `state` and `layout`, and the edited images it needs on disk.
fn snapshot(state: &AppState, layout: &Layout, store: &mut SessionStore) -> (SessionFile, Vec<PendingImage>) {
    let mut images = Vec::new();
    let mut photos = Vec::new();
    for entry in state.library.entries() {
        // serde cannot write a path that is not UTF-8 into JSON; such photos are not remembered.
        if entry.path.to_str().is_none() {
            tracing::warn!(
                "not saving {} in the session: its name is not UTF-8",
                entry.path.display()
            );
            continue;
        }
        let edits = state.edits.get(&entry.id).map(|history| {
            let (versions, applied) = history.versions();
            SessionEdits {
                applied,
                versions: versions
                    .iter()
                    .map(|v| {
                        let key = Arc::as_ptr(&v.image) as usize;
                        let name = store
                            .written
                            .entry(key)
                            .or_insert_with(|| image_name(&v.image))
                            .clone();
                        images.push(PendingImage {
                            name: name.clone(),
                            image: Arc::clone(&v.image),
                        });
                        SessionVersion {
                            label: v.label.clone(),
                            notes: v.notes.clone(),
                            file: name,
                        }
                    })
                    .collect(),
            }
        });
        photos.push(SessionPhoto {
            path: entry.path.clone(),
            targets: entry.targets.iter().copied().collect(),
            edits,
        });
    }
    let recipe = serde_json::to_value(state.recipe_with_sections()).ok();
    let session = SessionFile {
        facecast_session: SESSION_VERSION,
        photos,
        selected: state
            .selected_entry()
            .map(|e| e.path.clone())
            .filter(|p| p.to_str().is_some()),
        recipe,
        recipe_path: state.export.recipe_path.clone().filter(|p| p.to_str().is_some()),
        layout: SessionLayout {
            library: layout.library,
            side: layout.side,
        },
        filter: Some(state.filter.label().to_string()),
        select_score: Some(state.select_score),
        virtual_model: state.cast.current.clone(),
    };
    (session, images)
}

/// Writes the edited images that are missing, then the session file, then removes edit files no
/// version refers to any more.
fn write_session(dir: &Path, session: &SessionFile, images: &[PendingImage]) -> Result<(), String> {
    let edits = dir.join("edits");
    std::fs::create_dir_all(&edits).map_err(|e| format!("creating {}: {e}", edits.display()))?;
    let mut keep = HashSet::new();
    for pending in images {
        keep.insert(pending.name.clone());
        let path = edits.join(&pending.name);
        if path.exists() {
            continue;
        }
        let mut bytes = Vec::new();
        image::codecs::png::PngEncoder::new(&mut bytes)
            .write_image(
                pending.image.as_raw(),
                pending.image.width(),
                pending.image.height(),
                image::ExtendedColorType::Rgb8,
            )
            .map_err(|e| format!("encoding {}: {e}", path.display()))?;
        write_atomic(&path, &bytes).map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    let text = serde_json::to_string_pretty(session).map_err(|e| e.to_string())?;
    let file = dir.join("session.json");
    write_atomic(&file, text.as_bytes()).map_err(|e| format!("writing {}: {e}", file.display()))?;
    if let Ok(entries) = std::fs::read_dir(&edits) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".png") && !keep.contains(&name) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    let _ = crate::io::clean_stale_temp_files(&edits);
    Ok(())
}

use image::ImageEncoder as _;

impl FacecastApp {
    /// Starts saving the session in the background (skipped while the previous save still runs).
    pub fn save_session(&mut self) {
        let Some(mut store) = self.session.take() else {
            return;
        };
        if store.saving.as_ref().is_some_and(|h| !h.is_finished()) {
            self.session = Some(store);
            return;
        }
        if let Err(e) = store.wait() {
            tracing::warn!("saving the session failed: {e}");
        }
        let (session, images) = snapshot(&self.state, &self.layout, &mut store);
        let dir = store.dir.clone();
        let spawned = std::thread::Builder::new()
            .name("facecast-session".into())
            .spawn(move || write_session(&dir, &session, &images));
        match spawned {
            Ok(handle) => store.saving = Some(handle),
            Err(e) => tracing::warn!("could not start saving the session: {e}"),
        }
        self.session = Some(store);
    }

    /// Saves the session and waits until it is on disk (closing the window, tests).
    pub fn save_session_now(&mut self) -> Result<(), String> {
        let Some(store) = self.session.as_mut() else {
            return Err("sessions are off".into());
        };
        store.wait()?;
        self.save_session();
        match self.session.as_mut() {
            Some(store) => store.wait(),
            None => Ok(()),
        }
    }

    /// Brings back the saved session, if there is one: photos, chosen faces, recipe, layout, edits.
    pub(super) fn restore_session(&mut self, data_dir: &Path) {
        let mut store = SessionStore::new(data_dir);
        let session = match store.read() {
            Ok(Some(session)) => session,
            Ok(None) => {
                self.session = Some(store);
                return;
            }
            Err(e) => {
                self.state.toasts.warning(e.to_string());
                self.session = Some(store);
                return;
            }
        };
        if let Some(value) = &session.recipe {
            match Recipe::parse(&value.to_string(), "of the saved session") {
                Ok(recipe) => self.state.set_recipe(recipe),
                Err(e) => self
                    .state
                    .toasts
                    .warning(format!("{e}; using the default recipe")),
            }
        }
        self.state.export.recipe_path = session.recipe_path.clone();
        if session.virtual_model.is_some() {
            self.state.cast.current = session.virtual_model.clone();
        }
        self.layout.library = session.layout.library;
        self.layout.side = session.layout.side;
        if let Some(filter) = session
            .filter
            .as_deref()
            .and_then(|label| LibraryFilter::ALL.into_iter().find(|f| f.label() == label))
        {
            self.state.filter = filter;
        }
        if let Some(score) = session.select_score.filter(|s| (0.0..=1.0).contains(s)) {
            self.state.select_score = score;
        }
        let mut paths = Vec::new();
        let mut edits = Vec::new();
        for photo in session.photos {
            if !photo.targets.is_empty() {
                self.state.restored_targets.insert(
                    photo.path.clone(),
                    photo.targets.iter().copied().collect::<BTreeSet<_>>(),
                );
            }
            if let Some(e) = photo.edits.filter(|e| !e.versions.is_empty()) {
                edits.push((photo.path.clone(), e));
            }
            paths.push(photo.path);
        }
        store.pending_selection = session.selected;
        let edits_dir = store.edits_dir();
        self.session = Some(store);
        if !paths.is_empty() {
            // Explicit files, in their saved order: the scan adds them to the library as they were.
            self.open_paths(paths);
        }
        if !edits.is_empty() {
            // Queued after the scan on the same lane, so the photos are in the library when these arrive.
            self.worker.enqueue(RestoreEdits {
                dir: edits_dir,
                photos: edits,
            });
        }
    }

    /// Puts the saved selection back on the canvas once its photo has loaded.
    pub(super) fn session_tick(&mut self) {
        let Some(path) = self.session.as_ref().and_then(|s| s.pending_selection.clone()) else {
            return;
        };
        let entry = self.state.library.entries().iter().find(|e| e.path == path);
        match entry.map(|e| (e.id, e.status.clone())) {
            Some((id, PhotoStatus::Loaded { .. })) => {
                if let Some(store) = self.session.as_mut() {
                    store.pending_selection = None;
                }
                self.select_photo(id);
            }
            Some((_, PhotoStatus::Loading)) => {}
            // Unreadable now, or gone from the library: nothing to restore.
            _ if entry.is_some() || self.worker.is_idle() => {
                if let Some(store) = self.session.as_mut() {
                    store.pending_selection = None;
                }
            }
            _ => {}
        }
    }
}

/// Reads the saved edited versions of photos back (on the I/O lane).
struct RestoreEdits {
    dir: PathBuf,
    photos: Vec<(PathBuf, SessionEdits)>,
}

impl Job for RestoreEdits {
    fn label(&self) -> String {
        "Restoring edits of the last session".into()
    }

    fn lane(&self) -> Lane {
        Lane::Io
    }

    fn run(self: Box<Self>, ctx: &JobContext) -> Result<(), JobError> {
        let total = self.photos.len();
        for (done, (path, edits)) in self.photos.into_iter().enumerate() {
            ctx.check_cancelled()?;
            let mut versions = Vec::new();
            let mut problem = None;
            for v in &edits.versions {
                let file = self.dir.join(&v.file);
                match image::open(&file) {
                    Ok(img) => versions.push(Version {
                        label: v.label.clone(),
                        image: Arc::new(img.into_rgb8()),
                        notes: v.notes.clone(),
                    }),
                    Err(e) => {
                        problem = Some(format!(
                            "the saved edit \"{}\" of {} could not be read ({}: {e}); later edits are dropped",
                            v.label,
                            path.display(),
                            file.display()
                        ));
                        break;
                    }
                }
            }
            let applied = edits.applied.min(versions.len());
            ctx.output(JobOutput::RestoredEdits {
                path,
                versions: versions
                    .into_iter()
                    .map(|v| (v.label, v.image, v.notes))
                    .collect(),
                applied,
                problem,
            });
            ctx.progress(done + 1, total);
        }
        Ok(())
    }
}
