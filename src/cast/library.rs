//! The library folder: list (damaged entries reported, never fatal), find, create, rename,
//! duplicate, delete (recoverable), and the atomic writes behind them.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use icu_normalizer::ComposingNormalizerBorrowed;
use image::RgbImage;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::model::{
    CropEntry, FaceImage, Identity, LATENT_FILE, Latent, NewVirtualModel, Origin, VirtualModel,
};
use super::{CROP_SIDE, FORMAT_VERSION, LIBRARY_DIR};
use crate::io::{DecodeLimits, load_photo};
use crate::io::{ExportFormat, ExportOptions, export_atomic};

/// The `format` value of `model.json`.
pub const FORMAT_NAME: &str = "facecast-virtual-model";
const MODEL_FILE: &str = "model.json";
const FACE_FILE: &str = "face.png";
const STAGING_PREFIX: &str = ".staging-";
const DELETED_DIR: &str = ".deleted";
/// Deleted models are kept this long before a later open removes them.
const KEEP_DELETED: Duration = Duration::from_secs(30 * 24 * 3600);
/// A staging folder older than this belongs to a write that was interrupted.
const STALE_STAGING: Duration = Duration::from_secs(3600);
/// Longest accepted name, in characters.
const MAX_NAME_CHARS: usize = 120;
/// Largest `model.json` read (a real one is a few kilobytes).
const MAX_MODEL_JSON_BYTES: u64 = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum CastError {
    #[error("no per-user data directory could be found; set FACECAST_DATA_DIR or pass --data-dir")]
    NoDataDir,
    #[error("{}: {what}: {source}", path.display())]
    Io {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("{}: {reason}", path.display())]
    Damaged { path: PathBuf, reason: String },
    #[error("no virtual model is called {query:?}{}", known_hint(known))]
    NotFound { query: String, known: Vec<String> },
    #[error("a virtual model called {name:?} already exists (id {id}); choose another name")]
    NameTaken { name: String, id: String },
    #[error("{name:?} cannot be a virtual model's name: {reason}")]
    InvalidName { name: String, reason: String },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Image(#[from] crate::io::ImageError),
    #[error(transparent)]
    Export(#[from] crate::io::ExportError),
}

fn known_hint(known: &[String]) -> String {
    if known.is_empty() {
        "; the library is empty".to_string()
    } else {
        format!("; the library has: {}", known.join(", "))
    }
}

fn io_err<'a>(path: &'a Path, what: &'static str) -> impl FnOnce(io::Error) -> CastError + 'a {
    move |source| CastError::Io {
        path: path.to_path_buf(),
        what,
        source,
    }
}

/// A folder of the library that could not be read as a virtual model. It is left untouched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DamagedEntry {
    pub dir: PathBuf,
    /// The folder name.
    pub id: String,
    /// The name, when `model.json` was readable enough to tell.
    pub name: Option<String>,
    pub reason: String,
}

/// What [`VirtualModelLibrary::list`] found.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// Readable models, by name (without regard to case).
    pub models: Vec<VirtualModel>,
    pub damaged: Vec<DamagedEntry>,
}

/// `model.json` as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ModelFile {
    format: String,
    version: u32,
    id: String,
    name: String,
    created_unix: u64,
    modified_unix: u64,
    #[serde(default)]
    parent: Option<String>,
    face: FaceImage,
    crops: Vec<CropEntry>,
    origin: Origin,
    #[serde(default)]
    identity: Option<Identity>,
}

impl ModelFile {
    fn from_model(m: &VirtualModel) -> ModelFile {
        ModelFile {
            format: FORMAT_NAME.to_string(),
            version: FORMAT_VERSION,
            id: m.id.clone(),
            name: m.name.clone(),
            created_unix: m.created_unix,
            modified_unix: m.modified_unix,
            parent: m.parent.clone(),
            face: m.face.clone(),
            crops: m.crops.clone(),
            origin: m.origin.clone(),
            identity: m.identity.clone(),
        }
    }

    fn into_model(self, dir: PathBuf) -> VirtualModel {
        VirtualModel {
            id: self.id,
            name: self.name,
            created_unix: self.created_unix,
            modified_unix: self.modified_unix,
            parent: self.parent,
            origin: self.origin,
            face: self.face,
            crops: self.crops,
            identity: self.identity,
            dir,
        }
    }
}

/// The virtual models of one data directory.
#[derive(Debug, Clone)]
pub struct VirtualModelLibrary {
    root: PathBuf,
}

impl VirtualModelLibrary {
    /// The library of `data_dir` (`<data_dir>/virtual-models`). Nothing is created until a model
    /// is saved; leftovers of interrupted writes and deletions older than 30 days are tidied away.
    pub fn open(data_dir: impl AsRef<Path>) -> VirtualModelLibrary {
        let library = VirtualModelLibrary {
            root: data_dir.as_ref().join(LIBRARY_DIR),
        };
        library.tidy();
        library
    }

    /// The library of `dir`, else of `FACECAST_DATA_DIR`, else of the per-user data directory
    /// (the same one the weights store uses).
    pub fn open_default(dir: Option<PathBuf>) -> Result<VirtualModelLibrary, CastError> {
        let store = crate::weights::store::WeightsStore::open(dir).map_err(|e| match e {
            crate::weights::store::StoreError::NoDataDir => CastError::NoDataDir,
            other => CastError::Invalid(other.to_string()),
        })?;
        Ok(VirtualModelLibrary::open(store.data_dir()))
    }

    /// `<data_dir>/virtual-models`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Every model, and every folder that could not be read as one (with the reason).
    pub fn list(&self) -> Result<Listing, CastError> {
        let mut listing = Listing::default();
        let entries = match fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(listing),
            Err(e) => return Err(io_err(&self.root, "reading the virtual-model library")(e)),
        };
        for entry in entries {
            let entry = entry.map_err(io_err(&self.root, "reading the virtual-model library"))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let dir = entry.path();
            if name.starts_with('.') || !dir.is_dir() {
                continue;
            }
            match read_model(&dir, &name) {
                Ok(model) => listing.models.push(model),
                Err((model_name, reason)) => listing.damaged.push(DamagedEntry {
                    dir,
                    id: name,
                    name: model_name,
                    reason,
                }),
            }
        }
        listing
            .models
            .sort_by(|a, b| name_key(&a.name).cmp(&name_key(&b.name)).then(a.id.cmp(&b.id)));
        listing.damaged.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(listing)
    }

    /// The model whose id is `query`, else whose name is `query` without regard to case.
    pub fn find(&self, query: &str) -> Result<VirtualModel, CastError> {
        let listing = self.list()?;
        let query = query.trim();
        if let Some(m) = listing.models.iter().find(|m| m.id == query) {
            return Ok(m.clone());
        }
        let key = name_key(query);
        if let Some(m) = listing.models.iter().find(|m| name_key(&m.name) == key) {
            return Ok(m.clone());
        }
        if let Some(d) = listing
            .damaged
            .iter()
            .find(|d| d.id == query || d.name.as_deref().map(name_key).as_deref() == Some(key.as_str()))
        {
            return Err(CastError::Damaged {
                path: d.dir.clone(),
                reason: d.reason.clone(),
            });
        }
        Err(CastError::NotFound {
            query: query.to_string(),
            known: listing.models.iter().map(|m| m.name.clone()).collect(),
        })
    }

    /// Adds a model: everything is written into a staging folder first and renamed into place.
    pub fn create(&self, new: NewVirtualModel) -> Result<VirtualModel, CastError> {
        let name = check_name(&new.name)?;
        self.check_free(&name, None)?;
        validate_new(&new)?;
        if let Some(parent) = &new.parent
            && !self.root.join(parent).is_dir()
        {
            return Err(CastError::Invalid(format!(
                "the parent virtual model {parent} is not in the library"
            )));
        }
        let id = new_id(&name);
        let staging = self.staging_dir(&id)?;
        let result = (|| {
            let face_file = FACE_FILE.to_string();
            write_png(&new.face, &staging.join(&face_file))?;
            let mut crops = Vec::new();
            for (i, crop) in new.crops.iter().enumerate() {
                let file = crop_file_name(i);
                write_png(crop, &staging.join(&file))?;
                let source = matches!(new.origin, Origin::Imported(_)).then_some(i);
                crops.push(CropEntry { file, source });
            }
            let mut origin = new.origin.clone();
            if let (Origin::Generated(g), Some(latent)) = (&mut origin, &new.latent) {
                g.latent_file = LATENT_FILE.to_string();
                write_latent(latent, &staging.join(LATENT_FILE))?;
            }
            let now = now_unix();
            let model = VirtualModel {
                id: id.clone(),
                name: name.clone(),
                created_unix: now,
                modified_unix: now,
                parent: new.parent.clone(),
                origin,
                face: FaceImage {
                    file: face_file,
                    width: new.face.width(),
                    height: new.face.height(),
                    landmarks: new.face_landmarks,
                    landmarks_from: new.landmarks_from,
                },
                crops,
                identity: new.identity.clone(),
                dir: self.root.join(&id),
            };
            write_model_json(&staging, &model)?;
            Ok(model)
        })();
        self.finish_staging(staging, &id, result)
    }

    /// Gives a model a new name (unique without regard to case).
    pub fn rename(&self, query: &str, new_name: &str) -> Result<VirtualModel, CastError> {
        let mut model = self.find(query)?;
        let name = check_name(new_name)?;
        self.check_free(&name, Some(&model.id))?;
        model.name = name;
        model.modified_unix = now_unix();
        write_model_json(&model.dir, &model)?;
        Ok(model)
    }

    /// Copies a model under a new id; the name defaults to "NAME (copy)" (then "(copy 2)", …).
    pub fn duplicate(&self, query: &str, new_name: Option<&str>) -> Result<VirtualModel, CastError> {
        let source = self.find(query)?;
        let name = match new_name {
            Some(n) => {
                let n = check_name(n)?;
                self.check_free(&n, None)?;
                n
            }
            None => self.free_copy_name(&source.name)?,
        };
        let id = new_id(&name);
        let staging = self.staging_dir(&id)?;
        let result = (|| {
            let mut files: Vec<String> = vec![source.face.file.clone()];
            files.extend(source.crops.iter().map(|c| c.file.clone()));
            if let Some(g) = source.generated() {
                files.push(g.latent_file.clone());
            }
            for file in files {
                let from = source.dir.join(&file);
                let to = staging.join(&file);
                fs::copy(&from, &to).map_err(io_err(&from, "copying"))?;
            }
            let now = now_unix();
            let model = VirtualModel {
                id: id.clone(),
                name,
                created_unix: now,
                modified_unix: now,
                dir: self.root.join(&id),
                ..source.clone()
            };
            write_model_json(&staging, &model)?;
            Ok(model)
        })();
        self.finish_staging(staging, &id, result)
    }

    /// Moves a model out of the library into `.deleted/` (kept 30 days; [`Self::undelete`]
    /// brings it back). Returns the model as it was.
    pub fn delete(&self, query: &str) -> Result<VirtualModel, CastError> {
        let model = self.find(query)?;
        let bin = self.root.join(DELETED_DIR);
        fs::create_dir_all(&bin).map_err(io_err(&bin, "creating the deleted-models folder"))?;
        let target = bin.join(format!("{}-{}", model.id, now_nanos()));
        fs::rename(&model.dir, &target).map_err(io_err(&model.dir, "moving to the deleted-models folder"))?;
        Ok(model)
    }

    /// Brings back the most recently deleted model of id `id`.
    pub fn undelete(&self, id: &str) -> Result<VirtualModel, CastError> {
        let bin = self.root.join(DELETED_DIR);
        let prefix = format!("{id}-");
        let newest = fs::read_dir(&bin)
            .map_err(io_err(&bin, "reading the deleted-models folder"))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let stamp: u128 = name.strip_prefix(&prefix)?.parse().ok()?;
                Some((stamp, e.path()))
            })
            .max_by_key(|(stamp, _)| *stamp)
            .map(|(_, path)| path)
            .ok_or_else(|| CastError::NotFound {
                query: id.to_string(),
                known: Vec::new(),
            })?;
        let model = read_model(&newest, id).map_err(|(_, reason)| CastError::Damaged {
            path: newest.clone(),
            reason,
        })?;
        self.check_free(&model.name, Some(id))?;
        let target = self.root.join(id);
        if target.exists() {
            return Err(CastError::Invalid(format!(
                "{} exists again; cannot bring the deleted copy back over it",
                target.display()
            )));
        }
        fs::rename(&newest, &target).map_err(io_err(&newest, "moving back into the library"))?;
        Ok(VirtualModel { dir: target, ..model })
    }

    /// Records the identity embedding of a model's face (the swap step computes it).
    pub fn set_identity(&self, query: &str, identity: Identity) -> Result<VirtualModel, CastError> {
        if identity.embedding.is_empty() || identity.embedding.iter().any(|v| !v.is_finite()) {
            return Err(CastError::Invalid(
                "an identity embedding must be a non-empty list of finite numbers".into(),
            ));
        }
        let mut model = self.find(query)?;
        model.identity = Some(identity);
        model.modified_unix = now_unix();
        write_model_json(&model.dir, &model)?;
        Ok(model)
    }

    /// The versions edited from `id`, directly or through other versions: children first, then theirs.
    pub fn descendants(&self, id: &str) -> Result<Vec<VirtualModel>, CastError> {
        let models = self.list()?.models;
        let mut children: HashMap<&str, Vec<&VirtualModel>> = HashMap::new();
        for m in &models {
            if let Some(p) = &m.parent {
                children.entry(p.as_str()).or_default().push(m);
            }
        }
        for list in children.values_mut() {
            list.sort_by_key(|m| (m.created_unix, name_key(&m.name)));
        }
        // Breadth first: children before grandchildren.
        let mut out: Vec<VirtualModel> = Vec::new();
        let mut queue = std::collections::VecDeque::from([id]);
        while let Some(next) = queue.pop_front() {
            for child in children.get(next).into_iter().flatten() {
                // A lineage loop (hand-edited files) must not spin forever.
                if child.id == id || out.iter().any(|m| m.id == child.id) {
                    continue;
                }
                out.push((*child).clone());
                queue.push_back(child.id.as_str());
            }
        }
        Ok(out)
    }

    /// A name not used yet: `base`, else "base (copy)", "base (copy 2)", ….
    pub fn free_copy_name(&self, base: &str) -> Result<String, CastError> {
        let taken: Vec<String> = self.list()?.models.iter().map(|m| name_key(&m.name)).collect();
        let mut n = 1u64;
        loop {
            let candidate = if n == 1 {
                format!("{base} (copy)")
            } else {
                format!("{base} (copy {n})")
            };
            if !taken.contains(&name_key(&candidate)) {
                return check_name(&candidate);
            }
            n += 1;
        }
    }

    /// A name not used yet, starting from `base` itself ("Ava", then "Ava 2", "Ava 3", …).
    pub fn free_name(&self, base: &str) -> Result<String, CastError> {
        let base = check_name(base)?;
        let taken: Vec<String> = self.list()?.models.iter().map(|m| name_key(&m.name)).collect();
        if !taken.contains(&name_key(&base)) {
            return Ok(base);
        }
        let mut n = 2u64;
        loop {
            let candidate = format!("{base} {n}");
            if !taken.contains(&name_key(&candidate)) {
                return check_name(&candidate);
            }
            n += 1;
        }
    }

    fn check_free(&self, name: &str, except: Option<&str>) -> Result<(), CastError> {
        let key = name_key(name);
        let listing = self.list()?;
        if let Some(m) = listing
            .models
            .iter()
            .find(|m| name_key(&m.name) == key && Some(m.id.as_str()) != except)
        {
            return Err(CastError::NameTaken {
                name: name.to_string(),
                id: m.id.clone(),
            });
        }
        Ok(())
    }

    fn staging_dir(&self, id: &str) -> Result<PathBuf, CastError> {
        fs::create_dir_all(&self.root).map_err(io_err(&self.root, "creating the virtual-model library"))?;
        let dir = self.root.join(format!("{STAGING_PREFIX}{id}"));
        fs::create_dir(&dir).map_err(io_err(&dir, "creating a staging folder"))?;
        Ok(dir)
    }

    fn finish_staging(
        &self,
        staging: PathBuf,
        id: &str,
        result: Result<VirtualModel, CastError>,
    ) -> Result<VirtualModel, CastError> {
        let placed = result.and_then(|model| {
            let target = self.root.join(id);
            fs::rename(&staging, &target).map_err(io_err(&target, "moving the new model into place"))?;
            if let Ok(dir) = fs::File::open(&self.root) {
                let _ = dir.sync_all();
            }
            Ok(model)
        });
        if placed.is_err() {
            let _ = fs::remove_dir_all(&staging);
        }
        placed
    }

    /// Removes interrupted staging folders and deletions past their keeping time. Best effort:
    /// a folder that cannot be removed now is tried again next time.
    fn tidy(&self) {
        let Ok(entries) = fs::read_dir(&self.root) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(STAGING_PREFIX) && older_than(&entry.path(), STALE_STAGING) {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
        let Ok(deleted) = fs::read_dir(self.root.join(DELETED_DIR)) else {
            return;
        };
        for entry in deleted.flatten() {
            if older_than(&entry.path(), KEEP_DELETED) {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
}

fn older_than(path: &Path, age: Duration) -> bool {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|elapsed| elapsed > age)
}

/// Reads one model folder; on failure, the name when known and the reason.
fn read_model(dir: &Path, folder: &str) -> Result<VirtualModel, (Option<String>, String)> {
    let path = dir.join(MODEL_FILE);
    let size = fs::metadata(&path)
        .map_err(|e| (None, format!("{MODEL_FILE} cannot be read: {e}")))?
        .len();
    if size > MAX_MODEL_JSON_BYTES {
        return Err((None, format!("{MODEL_FILE} is {size} bytes, too large to be one")));
    }
    let text = fs::read_to_string(&path).map_err(|e| (None, format!("{MODEL_FILE} cannot be read: {e}")))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| (None, format!("{MODEL_FILE} is not valid JSON: {e}")))?;
    let name = value.get("name").and_then(|n| n.as_str()).map(str::to_string);
    let fail = |reason: String| (name.clone(), reason);
    if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT_NAME) {
        return Err(fail(format!("{MODEL_FILE} is not a Facecast virtual model file")));
    }
    match value.get("version").and_then(|v| v.as_u64()) {
        Some(v) if v <= FORMAT_VERSION as u64 && v >= 1 => {}
        Some(v) => {
            return Err(fail(format!(
                "{MODEL_FILE} has format version {v}; this Facecast reads version {FORMAT_VERSION}: \
                 it was saved by a newer Facecast, update to open it"
            )));
        }
        None => return Err(fail(format!("{MODEL_FILE} has no format version"))),
    }
    let file: ModelFile = serde_json::from_value(value)
        .map_err(|e| fail(format!("{MODEL_FILE} is incomplete or malformed: {e}")))?;
    if file.id != folder {
        return Err(fail(format!(
            "{MODEL_FILE} says its id is {:?}, but its folder is {folder:?}",
            file.id
        )));
    }
    if check_name(&file.name).is_err() {
        return Err(fail(format!("{MODEL_FILE} has an unusable name {:?}", file.name)));
    }
    let mut needed: Vec<&str> = vec![&file.face.file];
    needed.extend(file.crops.iter().map(|c| c.file.as_str()));
    if let Origin::Generated(g) = &file.origin {
        needed.push(&g.latent_file);
    }
    if file.crops.is_empty() {
        return Err(fail("it has no aligned face crop".into()));
    }
    for f in needed {
        // The files named in model.json must stay inside the folder.
        if f.is_empty() || f.contains(['/', '\\']) || f.starts_with('.') {
            return Err(fail(format!("{MODEL_FILE} names an unusable file {f:?}")));
        }
        match fs::metadata(dir.join(f)) {
            Ok(m) if m.is_file() && m.len() > 0 => {}
            Ok(_) => return Err(fail(format!("{f} is empty or not a file"))),
            Err(_) => return Err(fail(format!("{f} is missing"))),
        }
    }
    Ok(file.into_model(dir.to_path_buf()))
}

/// Checks a new model's parts against each other before anything is written.
fn validate_new(new: &NewVirtualModel) -> Result<(), CastError> {
    if new.crops.is_empty() {
        return Err(CastError::Invalid(
            "a virtual model needs at least one aligned face crop".into(),
        ));
    }
    if let Some(c) = new
        .crops
        .iter()
        .find(|c| c.dimensions() != (CROP_SIDE, CROP_SIDE))
    {
        return Err(CastError::Invalid(format!(
            "an aligned crop is {}×{}, not {CROP_SIDE}×{CROP_SIDE}",
            c.width(),
            c.height()
        )));
    }
    if new.face.width() == 0 || new.face.height() == 0 {
        return Err(CastError::Invalid("the face image is empty".into()));
    }
    match (&new.origin, &new.latent) {
        (Origin::Generated(g), Some(latent)) => {
            latent.check()?;
            if latent.n_latent != g.generator.n_latent || latent.style_dim != g.generator.style_dim {
                return Err(CastError::Invalid(format!(
                    "the latent is [{}, {}] but the generator's W+ is [{}, {}]",
                    latent.n_latent, latent.style_dim, g.generator.n_latent, g.generator.style_dim
                )));
            }
            if new.crops.len() != 1 {
                return Err(CastError::Invalid(
                    "a generated model has exactly one aligned crop".into(),
                ));
            }
        }
        (Origin::Generated(_), None) => {
            return Err(CastError::Invalid(
                "a generated virtual model needs its W+ latent".into(),
            ));
        }
        (Origin::Imported(_), Some(_)) => {
            return Err(CastError::Invalid(
                "an imported virtual model has no latent".into(),
            ));
        }
        (Origin::Imported(i), None) => {
            if i.sources.len() != new.crops.len() {
                return Err(CastError::Invalid(format!(
                    "{} source photos but {} aligned crops",
                    i.sources.len(),
                    new.crops.len()
                )));
            }
        }
    }
    if let Some(identity) = &new.identity
        && (identity.embedding.is_empty() || identity.embedding.iter().any(|v| !v.is_finite()))
    {
        return Err(CastError::Invalid(
            "an identity embedding must be a non-empty list of finite numbers".into(),
        ));
    }
    Ok(())
}

fn crop_file_name(i: usize) -> String {
    if i == 0 {
        "crop.png".to_string()
    } else {
        format!("crop-{i}.png")
    }
}

/// The name as stored: trimmed and NFC-normalised; refused when empty, too long or holding
/// control characters.
pub fn check_name(name: &str) -> Result<String, CastError> {
    let clean = ComposingNormalizerBorrowed::new_nfc()
        .normalize(name.trim())
        .into_owned();
    let invalid = |reason: &str| CastError::InvalidName {
        name: name.to_string(),
        reason: reason.to_string(),
    };
    if clean.is_empty() {
        return Err(invalid("it is empty"));
    }
    if clean.chars().count() > MAX_NAME_CHARS {
        return Err(invalid(&format!("it is longer than {MAX_NAME_CHARS} characters")));
    }
    if clean.chars().any(char::is_control) {
        return Err(invalid("it holds control characters (tabs, line breaks, …)"));
    }
    Ok(clean)
}

/// Names compare without regard to case or Unicode composition.
pub fn name_key(name: &str) -> String {
    ComposingNormalizerBorrowed::new_nfc()
        .normalize(&name.trim().to_lowercase())
        .into_owned()
}

/// 12 hex digits, unique in practice: a hash of the time, the process, a counter and the name.
fn new_id(name: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = Sha256::new();
    hasher.update(now_nanos().to_le_bytes());
    hasher.update(std::process::id().to_le_bytes());
    hasher.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    hasher.update(name.as_bytes());
    hex::encode(&hasher.finalize()[..6])
}

pub(crate) fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn write_png(img: &RgbImage, dest: &Path) -> Result<(), CastError> {
    let options = ExportOptions {
        format: ExportFormat::Png,
        icc_profile: None,
        text: vec![("Software".into(), "Facecast".into())],
        overwrite: true,
    };
    export_atomic(img, dest, &options, &[])?;
    Ok(())
}

/// Writes `bytes` to `dest` atomically ([`crate::io::atomic::write_atomic`]).
fn write_atomic(dest: &Path, bytes: &[u8]) -> Result<(), CastError> {
    crate::io::atomic::write_atomic(dest, bytes).map_err(io_err(dest, "writing"))
}

fn write_model_json(dir: &Path, model: &VirtualModel) -> Result<(), CastError> {
    let mut text = serde_json::to_string_pretty(&ModelFile::from_model(model))
        .map_err(|e| CastError::Invalid(format!("writing {MODEL_FILE}: {e}")))?;
    text.push('\n');
    write_atomic(&dir.join(MODEL_FILE), text.as_bytes())
}

pub(crate) fn read_image(path: &Path) -> Result<RgbImage, CastError> {
    Ok(load_photo(path, &DecodeLimits::default())?.rgb)
}

const LATENT_FORMAT: &str = "facecast-latent";

/// A tensor's shape and values.
type ShapedFloats = (Vec<usize>, Vec<f32>);

/// Writes a latent as safetensors (see the format in [`crate::cast`]).
pub fn write_latent(latent: &Latent, dest: &Path) -> Result<(), CastError> {
    use safetensors::tensor::{Dtype, TensorView};
    latent.check()?;
    let bytes_of = |v: &[f32]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
    let wplus = bytes_of(&latent.wplus);
    let delta = latent.s_conv_delta.as_deref().map(bytes_of);
    let bad = |e: safetensors::SafeTensorError| CastError::Invalid(format!("encoding the latent: {e}"));
    let mut views = vec![(
        "wplus".to_string(),
        TensorView::new(Dtype::F32, vec![latent.n_latent, latent.style_dim], &wplus).map_err(bad)?,
    )];
    if let (Some(bytes), Some(d)) = (&delta, &latent.s_conv_delta) {
        views.push((
            "s_conv_delta".to_string(),
            TensorView::new(Dtype::F32, vec![d.len()], bytes).map_err(bad)?,
        ));
    }
    let meta = HashMap::from([
        ("format".to_string(), LATENT_FORMAT.to_string()),
        ("version".to_string(), "1".to_string()),
    ]);
    let bytes = safetensors::serialize(views, Some(meta)).map_err(bad)?;
    write_atomic(dest, &bytes)
}

/// Reads a latent written by [`write_latent`]; the error names the file and the cause.
pub fn read_latent(path: &Path) -> Result<Latent, CastError> {
    use safetensors::tensor::Dtype;
    let damaged = |reason: String| CastError::Damaged {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = fs::read(path).map_err(io_err(path, "reading the latent"))?;
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| damaged(format!("not a safetensors file: {e}")))?;
    let info = meta.metadata().clone().unwrap_or_default();
    if info.get("format").map(String::as_str) != Some(LATENT_FORMAT) {
        return Err(damaged("not a Facecast latent file".into()));
    }
    if info
        .get("version")
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(u32::MAX)
        > 1
    {
        return Err(damaged(
            "the latent was saved by a newer Facecast; update to open it".into(),
        ));
    }
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| damaged(format!("not a safetensors file: {e}")))?;
    let floats = |name: &str| -> Result<Option<ShapedFloats>, CastError> {
        let view = match st.tensor(name) {
            Ok(v) => v,
            Err(_) => return Ok(None),
        };
        if view.dtype() != Dtype::F32 {
            return Err(damaged(format!("{name} is {:?}, not F32", view.dtype())));
        }
        let values = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok(Some((view.shape().to_vec(), values)))
    };
    let (shape, wplus) = floats("wplus")?.ok_or_else(|| damaged("it holds no wplus tensor".into()))?;
    let [n_latent, style_dim] = shape[..] else {
        return Err(damaged(format!(
            "wplus has shape {shape:?}, not [n_latent, style_dim]"
        )));
    };
    let s_conv_delta = match floats("s_conv_delta")? {
        Some((shape, values)) if shape.len() == 1 => Some(values),
        Some((shape, _)) => {
            return Err(damaged(format!(
                "s_conv_delta has shape {shape:?}, not [channels]"
            )));
        }
        None => None,
    };
    let latent = Latent {
        wplus,
        n_latent,
        style_dim,
        s_conv_delta,
    };
    latent.check().map_err(|e| damaged(e.to_string()))?;
    Ok(latent)
}
