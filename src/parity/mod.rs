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
pub mod beautygan;
pub mod check;
pub mod clip_text;
pub mod faceshifter;
pub mod gpen;
pub mod lookup;
pub mod mobilenetv2;
pub mod mtcnn;
pub mod styleclip_global;
pub mod styleclip_mapper;
pub mod stylegan2;
pub mod stylegan2_regularizers;
pub mod stylegan2_train;

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
    #[error("fixture folder {} is missing or has no meta.json (set {})", dir.display(), lookup::FIXTURES_ENV)]
    MissingFixture { dir: PathBuf },
    #[error("{}: the fixture ran no case", dir.display())]
    NoCases { dir: PathBuf },
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
    let mut bad = 0usize;
    let mut nan = 0usize;
    for (&g, &w) in got.iter().zip(&want) {
        let (g, w) = (g as f64, w as f64);
        let diff = (g - w).abs();
        // A NaN difference (a NaN on either side) compares false with everything: count it
        // outright, or it would slip under every tolerance.
        if diff.is_nan() {
            nan += 1;
            bad += 1;
        } else if diff > tol.abs + tol.rel * w.abs() {
            bad += 1;
        }
    }
    let note = match (bad, nan) {
        (0, _) => None,
        (_, 0) => Some(format!("{bad} of {} elements outside tolerance", got.len())),
        _ => Some(format!(
            "{bad} of {} elements outside tolerance, {nan} of them NaN",
            got.len()
        )),
    };
    CaseResult {
        name: name.to_string(),
        passed: bad == 0,
        max_abs_err: max_abs_diff(got, &want) as f64,
        note,
    }
}

/// The largest `|a - b|`, NaN when any difference is NaN or the lengths differ: `f32::max`
/// drops NaN, so a folded maximum would report a NaN output as a small error.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return f32::NAN;
    }
    let mut worst = 0.0f32;
    for (x, y) in a.iter().zip(b) {
        let d = (x - y).abs();
        if d.is_nan() {
            return f32::NAN;
        }
        worst = worst.max(d);
    }
    worst
}

/// A network's fixture runner.
pub type Runner = fn(&Fixture, &Device) -> Result<Vec<CaseResult>, ParityError>;

/// The runner for a `meta.json` model name; networks join as they are ported.
pub fn runner(model: &str) -> Option<Runner> {
    match model {
        "beautygan" => Some(beautygan::run),
        "mobilenetv2" => Some(mobilenetv2::run),
        "mtcnn" => Some(mtcnn::run),
        "clip_text" => Some(clip_text::run),
        "styleclip_global" => Some(styleclip_global::run),
        "styleclip_mapper" => Some(styleclip_mapper::run),
        "arcface_ir_se50" => Some(arcface::run),
        "faceshifter_aei" => Some(faceshifter::run),
        "stylegan2" => Some(stylegan2::run),
        "gpen" => Some(gpen::run),
        "stylegan2_train" => Some(stylegan2_train::run),
        _ => None,
    }
}

/// Opens and runs one fixture folder.
pub fn run_fixture(dir: &Path, device: &Device) -> Result<Vec<CaseResult>, ParityError> {
    let fixture = Fixture::open(dir)?;
    let run = runner(&fixture.model).ok_or_else(|| ParityError::NotImplemented(fixture.model.clone()))?;
    some_cases(dir, run(&fixture, device)?)
}

/// The cases, or an error when there are none: a runner that found nothing to compare (a renamed
/// tensor prefix, an empty photo list) must not read as a pass.
fn some_cases(dir: &Path, cases: Vec<CaseResult>) -> Result<Vec<CaseResult>, ParityError> {
    if cases.is_empty() {
        return Err(ParityError::NoCases {
            dir: dir.to_path_buf(),
        });
    }
    Ok(cases)
}

/// Test support for the networks' layout checks: the text of a fixture's `official_keys.txt`. A
/// missing fixture is an error naming the folder, as everywhere else.
#[cfg(test)]
pub(crate) fn official_keys(fixture: &str) -> Result<String, String> {
    let root = lookup::fixtures_root(
        std::env::var_os(lookup::FIXTURES_ENV),
        Path::new(env!("CARGO_MANIFEST_DIR")),
    );
    let path = lookup::fixture_folder(&root, fixture)
        .map_err(|e| e.to_string())?
        .join("official_keys.txt");
    std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(values: &[f32]) -> RawTensor {
        RawTensor::f32(vec![values.len()], values.to_vec())
    }

    #[test]
    fn a_nan_in_the_output_fails_whatever_the_tolerance() {
        let want = reference(&[1.0, 2.0, 3.0]);
        let loose = Tolerance { abs: 1e9, rel: 1e9 };
        let case = compare("out", &[1.0, f32::NAN, 3.0], &[3], &want, loose);
        assert!(!case.passed);
        assert!(case.max_abs_err.is_nan(), "{case:?}");
        assert!(
            case.note.as_deref().unwrap_or_default().contains("NaN"),
            "{case:?}"
        );
        // A NaN before a finite difference must not be forgotten by the maximum.
        let case = compare("out", &[f32::NAN, 2.5, 3.0], &[3], &want, loose);
        assert!(!case.passed && case.max_abs_err.is_nan(), "{case:?}");
    }

    #[test]
    fn a_nan_in_the_reference_fails_too() {
        let want = reference(&[1.0, f32::NAN]);
        let case = compare("out", &[1.0, 0.0], &[2], &want, Tolerance { abs: 1.0, rel: 0.0 });
        assert!(!case.passed, "{case:?}");
    }

    #[test]
    fn an_infinite_output_fails() {
        let want = reference(&[1.0, 2.0]);
        let case = compare(
            "out",
            &[1.0, f32::INFINITY],
            &[2],
            &want,
            Tolerance { abs: 1.0, rel: 1.0 },
        );
        assert!(!case.passed, "{case:?}");
    }

    #[test]
    fn outputs_within_tolerance_pass_with_their_largest_error() {
        let want = reference(&[1.0, 2.0]);
        let case = compare("out", &[1.05, 2.0], &[2], &want, Tolerance { abs: 0.1, rel: 0.0 });
        assert!(case.passed, "{case:?}");
        assert!((case.max_abs_err - 0.05).abs() < 1e-6, "{case:?}");
    }

    #[test]
    fn a_fixture_that_ran_no_case_is_an_error() {
        let err = some_cases(Path::new("fx/empty"), Vec::new()).expect_err("no case is no pass");
        assert!(
            err.to_string().contains("fx/empty") && err.to_string().contains("no case"),
            "{err}"
        );
        let one = vec![CaseResult {
            name: "a".into(),
            passed: true,
            max_abs_err: 0.0,
            note: None,
        }];
        assert_eq!(some_cases(Path::new("fx"), one.clone()).expect("cases"), one);
    }

    #[test]
    fn the_largest_difference_is_nan_when_any_is() {
        assert_eq!(max_abs_diff(&[1.0, 2.0], &[1.5, 2.0]), 0.5);
        assert!(max_abs_diff(&[f32::NAN, 2.0], &[1.0, 9.0]).is_nan());
        assert!(max_abs_diff(&[1.0, 2.0], &[1.0, f32::NAN]).is_nan());
        assert!(max_abs_diff(&[1.0], &[1.0, 2.0]).is_nan());
    }
}
