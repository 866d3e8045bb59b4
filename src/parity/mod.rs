//! `check-fixture`: proves a port against the official PyTorch code.
//!
//! A fixture folder holds `meta.json` (model, constructor config, tolerance), the weights in the
//! official file layout, and `io.safetensors` with inputs, outputs and intermediate activations.
//! Each network builds itself from `meta.json`'s `config` (never from constants of one fixture),
//! loads the weights through the same reader as a real checkpoint, and runs every case.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use burn::tensor::{Tensor, TensorData};

use crate::weights::load::LoadError;
use crate::weights::{CheckpointError, RawTensor, TensorMap, read_checkpoint};

pub mod arcface;
pub mod clip_text;
pub mod faceshifter;
pub mod gpen;
pub mod mtcnn;
pub mod styleclip_global;
pub mod styleclip_mapper;
pub mod stylegan2;

/// Element-wise tolerance: `|port - ref| <= abs + rel * |ref|`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    pub abs: f64,
    pub rel: f64,
}

/// The outcome of one case of a fixture.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseResult {
    pub name: String,
    pub passed: bool,
    /// Largest absolute difference to the reference (NaN when shapes differ).
    pub max_abs_err: f64,
    pub note: Option<String>,
}

impl CaseResult {
    pub fn fail(name: impl Into<String>, note: impl Into<String>) -> CaseResult {
        CaseResult {
            name: name.into(),
            passed: false,
            max_abs_err: f64::NAN,
            note: Some(note.into()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ParityError {
    #[error("{}: {cause}", path.display())]
    Read { path: PathBuf, cause: String },
    #[error("{}: meta.json has no usable {field}", dir.display())]
    Meta { dir: PathBuf, field: String },
    #[error("{}: io.safetensors has no tensor {name}", dir.display())]
    MissingTensor { dir: PathBuf, name: String },
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Model(#[from] crate::weights::models::ModelLoadError),
    #[error("model \"{0}\" is not implemented yet")]
    NotImplemented(String),
    #[error("{0}")]
    Network(String),
}

/// An opened fixture folder.
#[derive(Debug)]
pub struct Fixture {
    pub dir: PathBuf,
    pub meta: serde_json::Value,
    pub model: String,
    pub io: TensorMap,
    pub tolerance: Tolerance,
}

impl Fixture {
    pub fn open(dir: &Path) -> Result<Fixture, ParityError> {
        let meta_path = dir.join("meta.json");
        let text = std::fs::read_to_string(&meta_path).map_err(|e| ParityError::Read {
            path: meta_path.clone(),
            cause: e.to_string(),
        })?;
        let meta: serde_json::Value = serde_json::from_str(&text).map_err(|e| ParityError::Read {
            path: meta_path.clone(),
            cause: format!("not valid JSON: {e}"),
        })?;
        let model = meta["model"]
            .as_str()
            .ok_or_else(|| ParityError::Meta {
                dir: dir.to_path_buf(),
                field: "model".into(),
            })?
            .to_string();
        let tol = &meta["tolerance"];
        let tolerance = Tolerance {
            abs: tol["abs"].as_f64().unwrap_or(1e-4),
            rel: tol["rel"].as_f64().unwrap_or(1e-4),
        };
        let io = read_checkpoint(&dir.join("io.safetensors"))?.flatten_tensors();
        Ok(Fixture {
            dir: dir.to_path_buf(),
            meta,
            model,
            io,
            tolerance,
        })
    }

    pub fn config(&self) -> &serde_json::Value {
        &self.meta["config"]
    }

    /// A required integer of `config`.
    pub fn config_usize(&self, key: &str) -> Result<usize, ParityError> {
        self.config()[key]
            .as_u64()
            .map(|v| v as usize)
            .ok_or_else(|| ParityError::Meta {
                dir: self.dir.clone(),
                field: format!("config.{key}"),
            })
    }

    pub fn config_f64(&self, key: &str) -> Result<f64, ParityError> {
        self.config()[key].as_f64().ok_or_else(|| ParityError::Meta {
            dir: self.dir.clone(),
            field: format!("config.{key}"),
        })
    }

    pub fn raw(&self, name: &str) -> Result<&RawTensor, ParityError> {
        self.io.get(name).ok_or_else(|| ParityError::MissingTensor {
            dir: self.dir.clone(),
            name: name.to_string(),
        })
    }

    /// Names in `io.safetensors` starting with `prefix`.
    pub fn names_with_prefix(&self, prefix: &str) -> Vec<String> {
        self.io
            .tensors
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// An `io.safetensors` tensor on the device.
    pub fn tensor<const D: usize>(&self, name: &str, device: &Device) -> Result<Tensor<D>, ParityError> {
        let raw = self.raw(name)?;
        if raw.shape.len() != D {
            return Err(ParityError::Network(format!(
                "{name} has rank {}, expected {D}",
                raw.shape.len()
            )));
        }
        Ok(to_tensor(raw, device))
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// Compares a result with the reference tensor `name` within the fixture's tolerance.
    pub fn compare<const D: usize>(&self, name: &str, got: Tensor<D>) -> CaseResult {
        self.compare_with(name, got, self.tolerance)
    }

    pub fn compare_with<const D: usize>(&self, name: &str, got: Tensor<D>, tol: Tolerance) -> CaseResult {
        let shape = got.dims().to_vec();
        match got.into_data().try_to_vec::<f32>() {
            Ok(values) => self.compare_values(name, &values, &shape, tol),
            Err(e) => CaseResult::fail(name, format!("cannot read the result: {e:?}")),
        }
    }

    pub fn compare_values(&self, name: &str, got: &[f32], shape: &[usize], tol: Tolerance) -> CaseResult {
        match self.raw(name) {
            Ok(reference) => compare(name, got, shape, reference, tol),
            Err(e) => CaseResult::fail(name, e.to_string()),
        }
    }
}

/// A host tensor on a device.
pub fn to_tensor<const D: usize>(raw: &RawTensor, device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(raw.to_f32(), raw.shape.clone()), device)
}

/// Element-wise comparison with the reference.
pub fn compare(
    name: &str,
    got: &[f32],
    shape: &[usize],
    reference: &RawTensor,
    tol: Tolerance,
) -> CaseResult {
    // A leading batch of 1 or a trailing singleton may be squeezed on either side.
    let squeeze = |s: &[usize]| s.iter().copied().filter(|&d| d != 1).collect::<Vec<_>>();
    if squeeze(shape) != squeeze(&reference.shape) || got.len() != reference.numel() {
        return CaseResult::fail(
            name,
            format!("shape {:?}, reference {:?}", shape, reference.shape),
        );
    }
    let want = reference.to_f32();
    let mut max_abs = 0.0f64;
    let mut worst_excess = 0.0f64;
    let mut bad = 0usize;
    for (&g, &w) in got.iter().zip(&want) {
        let (g, w) = (g as f64, w as f64);
        let diff = (g - w).abs();
        if diff.is_nan() {
            bad += 1;
            max_abs = f64::NAN;
            continue;
        }
        max_abs = max_abs.max(diff);
        let allowed = tol.abs + tol.rel * w.abs();
        if diff > allowed {
            bad += 1;
            worst_excess = worst_excess.max(diff - allowed);
        }
    }
    CaseResult {
        name: name.to_string(),
        passed: bad == 0,
        max_abs_err: max_abs,
        note: (bad > 0).then(|| format!("{bad} of {} elements outside tolerance", got.len())),
    }
}

/// A network's fixture runner.
pub type Runner = fn(&Fixture, &Device) -> Result<Vec<CaseResult>, ParityError>;

/// The runner for a `meta.json` model name; networks join as they are ported.
pub fn runner(model: &str) -> Option<Runner> {
    match model {
        "mtcnn" => Some(mtcnn::run),
        "clip_text" => Some(clip_text::run),
        "styleclip_global" => Some(styleclip_global::run),
        "styleclip_mapper" => Some(styleclip_mapper::run),
        "arcface_ir_se50" => Some(arcface::run),
        "faceshifter_aei" => Some(faceshifter::run),
        "stylegan2" => Some(stylegan2::run),
        "gpen" => Some(gpen::run),
        _ => None,
    }
}

/// Opens and runs one fixture folder.
pub fn run_fixture(dir: &Path, device: &Device) -> Result<Vec<CaseResult>, ParityError> {
    let fixture = Fixture::open(dir)?;
    let run = runner(&fixture.model).ok_or_else(|| ParityError::NotImplemented(fixture.model.clone()))?;
    run(&fixture, device)
}
