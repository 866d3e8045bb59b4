//! Puts checkpoint tensors into a burn module, and says exactly what did not fit.
//!
//! Modules name their parameters after the official checkpoint, so the mapping is the identity
//! up to a few documented renames done by the caller. burn-store's applier does the placement;
//! this module turns its report into an error that names every missing, unexpected and
//! misshapen key, except the extras a caller declares harmless (`num_batches_tracked`, fixed
//! blur kernels and other buffers recomputed from the config).

use std::fmt;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::burn_pack::Tensor as PackTensor;
use burn::store::{ApplyError, ModuleSnapshot, PyTorchToBurnAdapter};
use burn::tensor::{Bytes, DType};

use super::tensors::TensorMap;

/// Keys of the file that the module does not hold, on purpose.
#[derive(Debug, Clone, Default)]
pub struct Tolerated {
    /// Keys ending with one of these (e.g. `num_batches_tracked`, `.kernel`) are ignored.
    pub suffixes: Vec<String>,
    /// Keys starting with one of these (e.g. a discriminator stored beside a generator) are ignored.
    pub prefixes: Vec<String>,
}

impl Tolerated {
    pub fn none() -> Tolerated {
        Tolerated::default()
    }

    pub fn suffixes(list: &[&str]) -> Tolerated {
        Tolerated {
            suffixes: list.iter().map(|s| s.to_string()).collect(),
            prefixes: Vec::new(),
        }
    }

    pub fn with_prefixes(mut self, list: &[&str]) -> Tolerated {
        self.prefixes.extend(list.iter().map(|s| s.to_string()));
        self
    }

    fn covers(&self, key: &str) -> bool {
        self.suffixes.iter().any(|s| key.ends_with(s.as_str()))
            || self.prefixes.iter().any(|p| key.starts_with(p.as_str()))
    }
}

/// The checkpoint does not fit the architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub file: PathBuf,
    pub missing: Vec<String>,
    pub unexpected: Vec<String>,
    pub mismatched: Vec<String>,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: the checkpoint does not match the network",
            self.file.display()
        )?;
        let list = |f: &mut fmt::Formatter<'_>, what: &str, keys: &[String]| -> fmt::Result {
            if keys.is_empty() {
                return Ok(());
            }
            let shown: Vec<&str> = keys.iter().take(8).map(String::as_str).collect();
            let more = if keys.len() > 8 {
                format!(" and {} more", keys.len() - 8)
            } else {
                String::new()
            };
            write!(f, "; {} {what}: {}{more}", keys.len(), shown.join(", "))
        };
        list(f, "missing", &self.missing)?;
        list(f, "unexpected", &self.unexpected)?;
        list(f, "with the wrong shape", &self.mismatched)
    }
}

impl std::error::Error for LoadError {}

/// Loads `tensors` into `module` (keys are module paths). Float tensors only; integer entries
/// that the module does not hold must be tolerated explicitly.
pub fn load_module<M: Module>(
    mut module: M,
    tensors: &TensorMap,
    file: &Path,
    tolerated: &Tolerated,
) -> Result<M, LoadError> {
    let snapshots: Vec<PackTensor> = tensors
        .tensors
        .iter()
        .filter(|(key, _)| !tolerated.covers(key))
        .map(|(key, t)| {
            PackTensor::new(
                key.clone(),
                DType::F32,
                t.shape.clone(),
                None,
                Bytes::from_elems(t.to_f32()),
            )
        })
        .collect();
    let result = module.apply(snapshots, None, Some(Box::new(PyTorchToBurnAdapter)), true);
    let mut mismatched = Vec::new();
    for error in &result.errors {
        match error {
            ApplyError::ShapeMismatch {
                path,
                expected,
                found,
            } => mismatched.push(format!(
                "{path} (file {:?}, network {:?})",
                found.as_slice(),
                expected.as_slice()
            )),
            other => mismatched.push(other.to_string()),
        }
    }
    let missing: Vec<String> = result.missing.iter().map(|(path, _)| path.clone()).collect();
    let unexpected: Vec<String> = result.unused.clone();
    if missing.is_empty() && unexpected.is_empty() && mismatched.is_empty() {
        Ok(module)
    } else {
        Err(LoadError {
            file: file.to_path_buf(),
            missing,
            unexpected,
            mismatched,
        })
    }
}
