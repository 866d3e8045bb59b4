//! Where runs and trained generators live in the data folder, and the lineage kept with each.
//!
//! - `training/<run>/run.json`: the run's settings and lineage so far (rewritten atomically at
//!   every checkpoint), and `training/<run>/checkpoint/NNNNNN.pt`, the latest checkpoint
//!   (`train.py`'s file name; older ones are removed once a newer one is safely on disk).
//! - `generators/<name>/generator.pt` (the final checkpoint, which every StyleGAN2 loader reads
//!   through its `g_ema`) and `generators/<name>/model.json` (the lineage).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::TrainError;
use super::ada::AugmentSettings;
use super::near_copy::NearCopyReport;
use crate::io::TEMP_PREFIX;
use crate::io::atomic::write_atomic;

/// A photo of the training set, by content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhotoRecord {
    pub file: String,
    pub sha256: String,
}

/// A photo left out of the training set, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkippedPhoto {
    pub file: String,
    pub reason: String,
}

/// Where a trained generator came from (`model.json`, and `run.json` while training).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lineage {
    pub name: String,
    /// The file the run started from and its sha256.
    pub base_file: String,
    pub base_sha256: String,
    pub photos_dir: String,
    pub photos: Vec<PhotoRecord>,
    pub skipped: Vec<SkippedPhoto>,
    /// Iterations done (`train.py`'s `i` of the next iteration).
    pub steps: u64,
    pub size: usize,
    pub batch: usize,
    pub seed: u64,
    pub r1: f64,
    pub d_reg_every: usize,
    pub path_regularize: f64,
    pub g_reg_every: usize,
    /// How the faces were mirrored (see `data`).
    pub mirroring: String,
    /// RFC 3339, UTC.
    pub started: String,
    pub updated: String,
    /// `--augment` and its settings (absent in records written before ADA: no augmentation).
    #[serde(default)]
    pub augment: AugmentSettings,
    /// The augmentation probability at the last checkpoint (`train.py`'s `ada_aug_p`).
    #[serde(default)]
    pub ada_aug_p: f64,
    /// The near-copy check of the trained generator, when it could run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub near_copies: Option<NearCopyReport>,
}

/// `training/<run>` in the data folder.
pub fn run_dir(data: &Path, run: &str) -> PathBuf {
    data.join("training").join(run)
}

/// `generators/<name>` in the data folder.
pub fn generator_dir(data: &Path, name: &str) -> PathBuf {
    data.join("generators").join(name)
}

/// The checkpoint file of a trained generator named `name`.
pub fn generator_file(data: &Path, name: &str) -> PathBuf {
    generator_dir(data, name).join("generator.pt")
}

/// Names become folder names: letters, digits, `-`, `_` and `.` only, not starting with a dot.
pub fn check_name(name: &str) -> Result<(), TrainError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(TrainError::Input(format!(
            "{name:?}: a run or generator name uses letters, digits, '-', '_' and '.' (up to 64), not starting with '.'"
        )))
    }
}

pub fn write_json<T: Serialize>(file: &Path, value: &T) -> Result<(), TrainError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| TrainError::Input(format!("{}: {e}", file.display())))?;
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(|e| TrainError::Input(format!("{}: {e}", dir.display())))?;
    }
    write_atomic(file, text.as_bytes()).map_err(|e| TrainError::Input(format!("{}: {e}", file.display())))
}

pub fn read_lineage(file: &Path) -> Result<Lineage, TrainError> {
    let text =
        std::fs::read_to_string(file).map_err(|e| TrainError::Input(format!("{}: {e}", file.display())))?;
    serde_json::from_str(&text).map_err(|e| TrainError::Input(format!("{}: {e}", file.display())))
}

/// The newest `NNNNNN.pt` of a run's checkpoint folder.
pub fn latest_checkpoint(run_dir: &Path) -> Option<PathBuf> {
    let dir = run_dir.join("checkpoint");
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let path = e.path();
            let n: u64 = path.file_name()?.to_str()?.strip_suffix(".pt")?.parse().ok()?;
            Some((n, path))
        })
        .max_by_key(|(n, _)| *n)
        .map(|(_, p)| p)
}

/// Removes the checkpoints of `run_dir` other than `keep` (only `NNNNNN.pt` names), and the
/// temporary files of saves a killed run left half-written (as large as a checkpoint each).
pub fn prune_checkpoints(run_dir: &Path, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(run_dir.join("checkpoint")) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        let numbered = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".pt"))
            .is_some_and(|stem| !stem.is_empty() && stem.bytes().all(|b| b.is_ascii_digit()));
        let half_written = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(TEMP_PREFIX) && n.ends_with(".part"));
        if (numbered && path != keep) || half_written {
            // A stale checkpoint left behind only costs disk space; the newer one is complete.
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// Publishes a trained generator: `checkpoint` copied to `generators/<name>/generator.pt`
/// (atomically) beside its `model.json`.
pub fn register(data: &Path, lineage: &Lineage, checkpoint: &Path) -> Result<PathBuf, TrainError> {
    let file = generator_file(data, &lineage.name);
    let bytes =
        std::fs::read(checkpoint).map_err(|e| TrainError::Input(format!("{}: {e}", checkpoint.display())))?;
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(|e| TrainError::Input(format!("{}: {e}", dir.display())))?;
    }
    write_atomic(&file, &bytes).map_err(|e| TrainError::Input(format!("{}: {e}", file.display())))?;
    write_json(&generator_dir(data, &lineage.name).join("model.json"), lineage)?;
    Ok(file)
}

/// The names of the trained generators in the data folder, sorted.
pub fn list_generators(data: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(data.join("generators"))
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| e.path().join("generator.pt").is_file())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    names.sort();
    names
}

/// sha256 of a file, hex.
pub fn file_sha256(file: &Path) -> Result<String, TrainError> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut f =
        std::fs::File::open(file).map_err(|e| TrainError::Input(format!("{}: {e}", file.display())))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| TrainError::Input(format!("{}: {e}", file.display())))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Now as RFC 3339 in UTC (`2026-12-07T16:56:09Z`).
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    rfc3339(secs)
}

/// Seconds since the Unix epoch as RFC 3339 in UTC (Howard Hinnant's days-to-civil).
fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rest = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_names() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_796_662_569), "2026-12-07T16:56:09Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert!(check_name("house-face_2").is_ok());
        assert!(check_name("../x").is_err() && check_name("").is_err() && check_name(".h").is_err());
    }
}
