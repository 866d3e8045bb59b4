//! StyleCLIP's latent mapper (`mapper/latent_mappers.py`, `LevelsMapper`): one small MLP per
//! prompt that predicts a W+ residual, applied as `w + 0.1 · mapper(w)`. Coarse (rows 0–3),
//! medium (4–7) and fine (8–) rows each have their own `Mapper`; a level trained without one has
//! no keys and leaves its rows unchanged.

use std::path::Path;

use burn::module::{Module, Param};
use burn::tensor::Device;
use burn::tensor::Tensor;
use burn::tensor::activation::leaky_relu;

use crate::weights::load::{LoadError, Tolerated, load_module};
use crate::weights::{RawTensor, TensorMap, Value};

/// The residual step of training and inference (there is no official strength parameter).
pub const STEP: f32 = 0.1;
/// EqualLinear's learning-rate multiplier in the mapper: stored weights and biases are 100× the
/// effective ones.
const LR_MUL: f64 = 0.01;
/// Rows of W+ per level: coarse and medium take four each, fine the rest.
const LEVEL_ROWS: [usize; 2] = [4, 4];
/// The checkpoint's level names (the coarse one is spelled "course" in every release).
pub const LEVELS: [&str; 3] = ["course_mapping", "medium_mapping", "fine_mapping"];

#[derive(Debug, thiserror::Error)]
pub enum MapperError {
    #[error("{}: {cause}", file.display())]
    Layout { file: std::path::PathBuf, cause: String },
    #[error(transparent)]
    Load(#[from] LoadError),
}

/// rosinality's `EqualLinear(dim, dim, lr_mul=0.01, activation="fused_lrelu")`.
#[derive(Module, Debug)]
pub struct EqualLinear {
    /// [out, in] as stored (PyTorch layout), scaled by `lr_mul / sqrt(in)` at run time.
    pub weight: Param<Tensor<2>>,
    pub bias: Param<Tensor<1>>,
}

impl EqualLinear {
    fn new(dim: usize, device: &Device) -> EqualLinear {
        EqualLinear {
            weight: Param::from_tensor(Tensor::zeros([dim, dim], device)),
            bias: Param::from_tensor(Tensor::zeros([dim], device)),
        }
    }

    /// `x`: [rows, in] → `leaky_relu(x·(W·s)ᵀ + b·lr_mul, 0.2) · √2`.
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let [_, inputs] = self.weight.dims();
        let scale = LR_MUL / (inputs as f64).sqrt();
        let y = x.matmul(self.weight.val().transpose() * scale) + (self.bias.val() * LR_MUL).unsqueeze();
        leaky_relu(y, 0.2) * std::f64::consts::SQRT_2
    }
}

/// `Mapper`: PixelNorm over the rows of its level, then four EqualLinear layers (each with the
/// activation). The checkpoint numbers the layers 1–4 (0 is the parameterless PixelNorm).
#[derive(Module, Debug)]
pub struct Mapper {
    pub mapping: Vec<EqualLinear>,
}

impl Mapper {
    fn new(dim: usize, device: &Device) -> Mapper {
        Mapper {
            mapping: (0..4).map(|_| EqualLinear::new(dim, device)).collect(),
        }
    }

    /// `x`: [B, rows, D]; `trace` receives the output of `mapping.0` (PixelNorm) to `mapping.4`.
    fn forward(&self, x: Tensor<3>, mut trace: Option<&mut Vec<Tensor<3>>>) -> Tensor<3> {
        let [b, rows, dim] = x.dims();
        // The level's input is [B, rows, D]: PixelNorm's dim 1 is the row axis here, so each
        // channel is normalised across the rows of its level (a quirk of the official code).
        let norm = (x.clone().powi_scalar(2).mean_dim(1) + 1e-8).sqrt();
        let x = x / norm;
        if let Some(t) = trace.as_deref_mut() {
            t.push(x.clone());
        }
        let mut h = x.reshape([b * rows, dim]);
        for layer in &self.mapping {
            h = layer.forward(h);
            if let Some(t) = trace.as_deref_mut() {
                t.push(h.clone().reshape([b, rows, dim]));
            }
        }
        h.reshape([b, rows, dim])
    }
}

/// `LevelsMapper` with the checkpoint's field names; an absent level is `None`.
#[derive(Module, Debug)]
pub struct LevelsMapper {
    pub course_mapping: Option<Mapper>,
    pub medium_mapping: Option<Mapper>,
    pub fine_mapping: Option<Mapper>,
}

/// What a mapper checkpoint says about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct MapperInfo {
    /// The prompt it was trained for (`opts.description`).
    pub description: Option<String>,
    /// Which of coarse, medium, fine have a mapper.
    pub levels: [bool; 3],
    pub latent_dim: usize,
}

impl LevelsMapper {
    /// A mapper of width `dim` with the given levels, zero weights (to be loaded).
    pub fn new(dim: usize, levels: [bool; 3], device: &Device) -> LevelsMapper {
        let level = |present: bool| present.then(|| Mapper::new(dim, device));
        LevelsMapper {
            course_mapping: level(levels[0]),
            medium_mapping: level(levels[1]),
            fine_mapping: level(levels[2]),
        }
    }

    fn levels(&self) -> [Option<&Mapper>; 3] {
        [
            self.course_mapping.as_ref(),
            self.medium_mapping.as_ref(),
            self.fine_mapping.as_ref(),
        ]
    }

    /// `mapper(w)` for W+ `w` [B, rows, D]: zeros on the rows of absent levels.
    pub fn delta(&self, w: Tensor<3>) -> Tensor<3> {
        self.delta_traced(w, None)
    }

    /// Like [`delta`](Self::delta); `trace` gets `(level name, activations of mapping.0..=4)`.
    pub fn delta_traced(
        &self,
        w: Tensor<3>,
        mut trace: Option<&mut Vec<(String, Vec<Tensor<3>>)>>,
    ) -> Tensor<3> {
        let [_, rows, _] = w.dims();
        let mut parts = Vec::with_capacity(3);
        let mut start = 0;
        for (i, mapper) in self.levels().into_iter().enumerate() {
            let len = if i < LEVEL_ROWS.len() {
                LEVEL_ROWS[i].min(rows - start)
            } else {
                rows - start
            };
            if len == 0 {
                continue;
            }
            let x = w.clone().narrow(1, start, len);
            start += len;
            parts.push(match mapper {
                Some(m) => {
                    let mut acts = Vec::new();
                    let out = m.forward(x, trace.is_some().then_some(&mut acts));
                    if let Some(t) = trace.as_deref_mut() {
                        t.push((LEVELS[i].to_string(), acts));
                    }
                    out
                }
                None => x.zeros_like(),
            });
        }
        Tensor::cat(parts, 1)
    }

    /// `w + step · mapper(w)`; the official step is [`STEP`].
    pub fn apply(&self, w: Tensor<3>, step: f32) -> Tensor<3> {
        w.clone() + self.delta(w) * step
    }

    /// Loads a released mapper checkpoint (`{"state_dict", "opts"}`) or a bare state dict. The
    /// frozen generator stored beside it (`decoder.*`) is ignored.
    pub fn from_checkpoint(
        checkpoint: &Value,
        file: &Path,
        device: &Device,
    ) -> Result<(LevelsMapper, MapperInfo), MapperError> {
        let layout = |cause: String| MapperError::Layout {
            file: file.to_path_buf(),
            cause,
        };
        let state = checkpoint
            .get("state_dict")
            .unwrap_or(checkpoint)
            .flatten_tensors();
        let mapper = state.sub("mapper");
        if mapper
            .tensors
            .keys()
            .any(|k| k.starts_with("mapping.") || k.starts_with("mapper_"))
        {
            return Err(layout(
                "a SingleMapper or StyleSpace mapper; only the released LevelsMapper layout is supported"
                    .into(),
            ));
        }
        let levels = LEVELS.map(|name| mapper.tensors.keys().any(|k| k.starts_with(&format!("{name}."))));
        let first = LEVELS
            .iter()
            .zip(levels)
            .find(|(_, present)| *present)
            .and_then(|(name, _)| mapper.get(&format!("{name}.mapping.1.weight")))
            .ok_or_else(|| {
                layout("no mapper.{course,medium,fine}_mapping.mapping.1.weight in the checkpoint".into())
            })?;
        let latent_dim = first.shape.first().copied().unwrap_or(0);
        let module = load_module(
            LevelsMapper::new(latent_dim, levels, device),
            &shift_layer_indices(&mapper),
            file,
            &Tolerated::none(),
        )?;
        let opts = checkpoint.get("opts");
        let description = opts
            .and_then(|o| o.get("description"))
            .and_then(Value::as_str)
            .map(str::to_string);
        Ok((
            module,
            MapperInfo {
                description,
                levels,
                latent_dim,
            },
        ))
    }
}

/// The one rename: `<level>.mapping.{1..4}` (after the PixelNorm at index 0) → `mapping.{0..3}`.
fn shift_layer_indices(mapper: &TensorMap) -> TensorMap {
    let rename = |key: &str| -> Option<String> {
        let (level, rest) = key.split_once(".mapping.")?;
        let (index, param) = rest.split_once('.')?;
        let index: usize = index.parse().ok()?;
        Some(format!("{level}.mapping.{}.{param}", index.checked_sub(1)?))
    };
    TensorMap {
        tensors: mapper
            .tensors
            .iter()
            .map(|(k, v): (&String, &RawTensor)| (rename(k).unwrap_or_else(|| k.clone()), v.clone()))
            .collect(),
    }
}
