//! The library of reference makeup faces: `<data_dir>/makeup-references/<id>/`, one folder per face,
//! holding `reference.json` (versioned; see [`ReferenceRecord`]) and `face.png`, the face aligned
//! and cropped at BeautyGAN's input size.
//!
//! A reference is imported from any photo: MTCNN finds the face, the five landmarks align it onto
//! [`makeup_template`], and the crop is stored, so applying makeup later needs no detection of the
//! reference again. Entries are written into a hidden `.incoming-*` folder and renamed into place,
//! so a crash never leaves half an entry; an entry that is damaged anyway (edited by hand, a disk
//! error) is reported by [`ReferenceLibrary::list`] and skipped, never fatal.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::tensor::Device;
use image::RgbImage;
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::face::align::{AlignError, Point, align_to_template};
use crate::face::warp::crop_aligned;
use crate::io::atomic::write_atomic;
use crate::io::{DecodeLimits, ExportFormat, ExportOptions, export_atomic, load_photo};
use crate::nets::mtcnn::MtcnnNets;
use crate::pipeline::detect::Face;
use crate::pipeline::detect::photo::{DetectSettings, detect_photo};

/// The folder under the data directory that holds the references.
pub const REFERENCES_DIR: &str = "makeup-references";
/// The version of `reference.json` this build writes and reads.
pub const REFERENCE_FORMAT: u32 = 1;
/// BeautyGAN's trained input size, the side of every stored crop.
pub const CROP_SIZE: u32 = 256;

const RECORD_FILE: &str = "reference.json";
const CROP_FILE: &str = "face.png";
const INCOMING_PREFIX: &str = ".incoming-";

/// Where the five landmarks land in an S×S makeup crop, as fractions of S.
///
/// BeautyGAN was trained on the Makeup Transfer data set's tightly cropped frontal faces (forehead
/// to chin, a little hair); no alignment template was published with it. These points are the
/// ArcFace template shrunk by 0.8 about (0.5, 0.6), which frames the same forehead-to-chin view:
/// eyes at 49% of the height, mouth corners at 78%.
const TEMPLATE: [Point; 5] = [
    [0.3735, 0.4893],
    [0.6252, 0.4879],
    [0.5002, 0.6324],
    [0.3968, 0.7798],
    [0.6052, 0.7786],
];

/// The makeup crop's five-point template for an S×S crop (left eye, right eye, nose, mouth
/// corners, as seen in the image).
pub fn makeup_template(size: u32) -> [Point; 5] {
    TEMPLATE.map(|[x, y]| [x * size as f32, y * size as f32])
}

#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    #[error("{}: {cause}", path.display())]
    Io { path: PathBuf, cause: io::Error },
    #[error("{}: {cause}", path.display())]
    Photo { path: PathBuf, cause: String },
    #[error("{}: no face scoring at least {min_score:.2} was found; choose a photo with a clear frontal face", path.display())]
    NoFace { path: PathBuf, min_score: f32 },
    #[error("{}: face detection failed: {cause}", path.display())]
    Detect { path: PathBuf, cause: String },
    #[error("{}: the face cannot be aligned: {cause}", path.display())]
    Align {
        path: PathBuf,
        #[source]
        cause: AlignError,
    },
    #[error("no makeup reference {id:?} in {}", dir.display())]
    Unknown { id: String, dir: PathBuf },
    #[error("{}: damaged makeup reference: {cause}", path.display())]
    Damaged { path: PathBuf, cause: String },
}

/// The detected face a reference was cut from, in the source photo's pixels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceFace {
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
    pub score: f32,
    pub landmarks: [[f32; 2]; 5],
}

/// `reference.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferenceRecord {
    /// [`REFERENCE_FORMAT`]; a newer number is refused with a message rather than misread.
    pub format: u32,
    /// The folder name: a slug of the name and the first hex digits of the crop's sha256.
    pub id: String,
    /// What the operator calls it ("Red lips, smoky eyes").
    pub name: String,
    /// The photo it was imported from, as it was named then.
    pub source: String,
    pub source_face: SourceFace,
    /// The crop's file name inside the entry's folder.
    pub crop: String,
    /// The crop's side in pixels.
    pub crop_size: u32,
    /// sha256 of the crop file, so a replaced or damaged crop is noticed.
    pub crop_sha256: String,
    /// Seconds since the Unix epoch.
    pub imported_unix: u64,
}

/// One usable reference: its record and its aligned crop.
#[derive(Debug, Clone)]
pub struct Reference {
    pub record: ReferenceRecord,
    pub dir: PathBuf,
    pub crop: Arc<RgbImage>,
}

impl Reference {
    pub fn id(&self) -> &str {
        &self.record.id
    }

    pub fn name(&self) -> &str {
        &self.record.name
    }
}

/// Every readable reference (sorted by name) and one line per entry that was skipped.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub references: Vec<Reference>,
    /// "`<folder>`: `<cause>`" for each damaged entry.
    pub problems: Vec<String>,
}

/// The references under one data directory.
#[derive(Debug, Clone)]
pub struct ReferenceLibrary {
    root: PathBuf,
}

impl ReferenceLibrary {
    /// The library of `data_dir` (nothing is created until a reference is added).
    pub fn new(data_dir: &Path) -> ReferenceLibrary {
        ReferenceLibrary {
            root: data_dir.join(REFERENCES_DIR),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Reads every entry; damaged ones are reported in `problems` and skipped. A library folder
    /// that does not exist yet is an empty library.
    pub fn list(&self) -> Result<Listing, ReferenceError> {
        let mut listing = Listing::default();
        let entries = match fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(listing),
            Err(cause) => {
                return Err(ReferenceError::Io {
                    path: self.root.clone(),
                    cause,
                });
            }
        };
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| !n.starts_with('.'))
            })
            .collect();
        dirs.sort();
        for dir in dirs {
            if !dir.is_dir() {
                listing
                    .problems
                    .push(format!("{}: not a reference folder, skipped", dir.display()));
                continue;
            }
            match read_entry(&dir) {
                Ok(reference) => listing.references.push(reference),
                Err(e) => listing.problems.push(format!("{e}; skipped")),
            }
        }
        listing.references.sort_by_key(|r| r.record.name.to_lowercase());
        Ok(listing)
    }

    /// One reference by id.
    pub fn get(&self, id: &str) -> Result<Reference, ReferenceError> {
        let unknown = || ReferenceError::Unknown {
            id: id.to_string(),
            dir: self.root.clone(),
        };
        if !is_plain_id(id) {
            return Err(unknown());
        }
        let dir = self.root.join(id);
        if !dir.join(RECORD_FILE).exists() {
            return Err(unknown());
        }
        read_entry(&dir)
    }

    /// Stores an aligned crop as a new reference. The same crop stored twice is one entry: the
    /// existing one is returned.
    pub fn add(
        &self,
        name: &str,
        source: &Path,
        face: &Face,
        crop: &RgbImage,
    ) -> Result<Reference, ReferenceError> {
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |cause| ReferenceError::Io { path, cause }
        };
        fs::create_dir_all(&self.root).map_err(io_err(&self.root))?;
        let incoming = tempfile::Builder::new()
            .prefix(INCOMING_PREFIX)
            .tempdir_in(&self.root)
            .map_err(io_err(&self.root))?;
        let crop_path = incoming.path().join(CROP_FILE);
        let png = ExportOptions {
            format: ExportFormat::Png,
            icc_profile: None,
            text: Vec::new(),
            overwrite: true,
        };
        export_atomic(crop, &crop_path, &png, &[]).map_err(|e| ReferenceError::Io {
            path: crop_path.clone(),
            cause: io::Error::other(e.to_string()),
        })?;
        let crop_sha256 = sha256_file(&crop_path)?;
        let id = format!("{}-{}", slug(name), &crop_sha256[..10]);
        let dest = self.root.join(&id);
        if dest.join(RECORD_FILE).exists() {
            return read_entry(&dest);
        }
        let record = ReferenceRecord {
            format: REFERENCE_FORMAT,
            id: id.clone(),
            name: name.trim().to_string(),
            source: source.display().to_string(),
            source_face: SourceFace {
                bbox: face.bbox,
                score: face.score,
                landmarks: face.landmarks,
            },
            crop: CROP_FILE.to_string(),
            crop_size: crop.width(),
            crop_sha256,
            imported_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        };
        let record_path = incoming.path().join(RECORD_FILE);
        let json = serde_json::to_vec_pretty(&record).map_err(|e| ReferenceError::Io {
            path: record_path.clone(),
            cause: io::Error::other(e),
        })?;
        write_atomic(&record_path, &json).map_err(io_err(&record_path))?;
        // The folder appears under its real name complete, or not at all.
        let staged = incoming.keep();
        if let Err(cause) = fs::rename(&staged, &dest) {
            let _ = fs::remove_dir_all(&staged);
            return Err(ReferenceError::Io { path: dest, cause });
        }
        read_entry(&dest)
    }

    /// Deletes a reference; false when there was none by that id.
    pub fn remove(&self, id: &str) -> Result<bool, ReferenceError> {
        if !is_plain_id(id) {
            return Ok(false);
        }
        let dir = self.root.join(id);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(cause) => Err(ReferenceError::Io { path: dir, cause }),
        }
    }
}

/// Imports the most prominent face of a photo (the largest scoring at least the screening score)
/// as a makeup reference named `name` (default: the file's name).
pub fn import_reference(
    library: &ReferenceLibrary,
    nets: &MtcnnNets,
    photo_path: &Path,
    name: Option<&str>,
    device: &Device,
) -> Result<Reference, ReferenceError> {
    let photo = load_photo(photo_path, &DecodeLimits::default()).map_err(|e| ReferenceError::Photo {
        path: photo_path.to_path_buf(),
        cause: e.to_string(),
    })?;
    let settings = DetectSettings::default();
    let found = detect_photo(nets, &photo.rgb, &settings, device).map_err(|e| ReferenceError::Detect {
        path: photo_path.to_path_buf(),
        cause: e.to_string(),
    })?;
    // Faces come largest first.
    let face = found
        .faces
        .iter()
        .find(|f| f.score >= settings.min_score)
        .ok_or_else(|| ReferenceError::NoFace {
            path: photo_path.to_path_buf(),
            min_score: settings.min_score,
        })?;
    let crop = align_reference(&photo.rgb, face).map_err(|cause| ReferenceError::Align {
        path: photo_path.to_path_buf(),
        cause,
    })?;
    let default_name = photo_path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "reference".into());
    let name = name
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or(&default_name);
    library.add(name, photo_path, face, &crop)
}

/// The aligned [`CROP_SIZE`] crop of `face` in `photo`.
pub fn align_reference(photo: &RgbImage, face: &Face) -> Result<RgbImage, AlignError> {
    let to_crop = align_to_template(&face.landmarks, &makeup_template(CROP_SIZE))?;
    Ok(crop_aligned(photo, &to_crop, CROP_SIZE))
}

fn read_entry(dir: &Path) -> Result<Reference, ReferenceError> {
    let record_path = dir.join(RECORD_FILE);
    let damaged = |cause: String| ReferenceError::Damaged {
        path: dir.to_path_buf(),
        cause,
    };
    let bytes = fs::read(&record_path).map_err(|e| damaged(format!("{RECORD_FILE}: {e}")))?;
    // The version is read on its own first, so a newer file is named as such instead of as garbage.
    let version: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| damaged(format!("{RECORD_FILE} is not JSON: {e}")))?;
    match version.get("format").and_then(|v| v.as_u64()) {
        Some(v) if v == REFERENCE_FORMAT as u64 => {}
        Some(v) => {
            return Err(damaged(format!(
                "{RECORD_FILE} has format {v}; this Facecast reads format {REFERENCE_FORMAT} (a newer version wrote it?)"
            )));
        }
        None => return Err(damaged(format!("{RECORD_FILE} has no format number"))),
    }
    let record: ReferenceRecord =
        serde_json::from_value(version).map_err(|e| damaged(format!("{RECORD_FILE}: {e}")))?;
    let folder = dir.file_name().map(|n| n.to_string_lossy().into_owned());
    if folder.as_deref() != Some(record.id.as_str()) {
        return Err(damaged(format!(
            "{RECORD_FILE} names id {:?}, but the folder is {:?}",
            record.id,
            folder.unwrap_or_default()
        )));
    }
    if !is_plain_name(&record.crop) {
        return Err(damaged(format!("crop {:?} is not a file name", record.crop)));
    }
    let crop_path = dir.join(&record.crop);
    let sha = sha256_file(&crop_path).map_err(|e| damaged(e.to_string()))?;
    if sha != record.crop_sha256 {
        return Err(damaged(format!(
            "{} changed since it was imported (sha256 {sha}, recorded {})",
            record.crop, record.crop_sha256
        )));
    }
    let crop = image::open(&crop_path)
        .map_err(|e| damaged(format!("{}: {e}", record.crop)))?
        .into_rgb8();
    if crop.dimensions() != (record.crop_size, record.crop_size) || record.crop_size != CROP_SIZE {
        return Err(damaged(format!(
            "{} is {}×{}, expected {CROP_SIZE}×{CROP_SIZE}",
            record.crop,
            crop.width(),
            crop.height()
        )));
    }
    Ok(Reference {
        record,
        dir: dir.to_path_buf(),
        crop: Arc::new(crop),
    })
}

fn sha256_file(path: &Path) -> Result<String, ReferenceError> {
    let bytes = fs::read(path).map_err(|cause| ReferenceError::Io {
        path: path.to_path_buf(),
        cause,
    })?;
    Ok(hex::encode(sha2::Sha256::digest(&bytes)))
}

/// Lower-case ASCII letters and digits, runs of anything else as one '-', at most 40 characters.
fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
        if out.len() >= 40 {
            break;
        }
    }
    let out = out.trim_end_matches('-').to_string();
    if out.is_empty() { "reference".into() } else { out }
}

/// An id names a folder directly under the library: no separators, no dot-files.
fn is_plain_id(id: &str) -> bool {
    !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\\'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face() -> Face {
        Face {
            bbox: [10.0, 10.0, 50.0, 60.0],
            score: 0.99,
            landmarks: [
                [20.0, 30.0],
                [40.0, 30.0],
                [30.0, 40.0],
                [22.0, 50.0],
                [38.0, 50.0],
            ],
        }
    }

    fn crop(shade: u8) -> RgbImage {
        RgbImage::from_fn(CROP_SIZE, CROP_SIZE, |x, y| {
            image::Rgb([shade, (x % 256) as u8, (y % 256) as u8])
        })
    }

    #[test]
    fn entries_round_trip_and_damaged_ones_are_reported_and_skipped() {
        let data = tempfile::tempdir().expect("tempdir");
        let library = ReferenceLibrary::new(data.path());
        assert!(library.list().expect("empty list").references.is_empty());
        let a = library
            .add("Red lips", Path::new("/photos/a.jpg"), &face(), &crop(10))
            .expect("add a");
        let b = library
            .add("Smoky eyes!", Path::new("/photos/b.jpg"), &face(), &crop(20))
            .expect("add b");
        assert!(a.id().starts_with("red-lips-"), "{}", a.id());
        assert!(b.id().starts_with("smoky-eyes-"), "{}", b.id());
        let again = library
            .add("Red lips", Path::new("/photos/a.jpg"), &face(), &crop(10))
            .expect("same crop again");
        assert_eq!(again.id(), a.id(), "the same crop is one entry");
        assert_eq!(library.get(a.id()).expect("get").crop.as_ref(), &crop(10));

        // Damage b's crop, and leave a stray folder and an entry of a newer format.
        fs::write(b.dir.join(CROP_FILE), b"not a png").expect("damage");
        fs::create_dir_all(library.root().join("stray")).expect("stray");
        let newer = library.root().join("newer");
        fs::create_dir_all(&newer).expect("newer");
        fs::write(newer.join(RECORD_FILE), br#"{"format": 99}"#).expect("newer record");
        let listing = library.list().expect("list");
        let ids: Vec<&str> = listing.references.iter().map(|r| r.id()).collect();
        assert_eq!(ids, vec![a.id()]);
        assert_eq!(listing.problems.len(), 3, "{:?}", listing.problems);
        assert!(
            listing
                .problems
                .iter()
                .any(|p| p.contains("changed since it was imported"))
        );
        assert!(listing.problems.iter().any(|p| p.contains("format 99")));
        assert!(listing.problems.iter().any(|p| p.contains("reference.json")));

        assert!(library.remove(a.id()).expect("remove"));
        assert!(!library.remove(a.id()).expect("remove twice"));
        assert!(matches!(
            library.get("../etc"),
            Err(ReferenceError::Unknown { .. })
        ));
        let leftovers: Vec<_> = fs::read_dir(library.root())
            .expect("list root")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "no staging folder is left behind");
    }

    #[test]
    fn slugs_are_plain_and_never_empty() {
        assert_eq!(slug("  Été / Soirée 2024 "), "t-soir-e-2024");
        assert_eq!(slug("***"), "reference");
        assert!(is_plain_id(&slug("a/b\\c..d")));
    }
}
