//! Reading `train.py`'s checkpoints (`checkpoint/NNNNNN.pt`): `{"g", "d", "g_ema": state dicts,
//! "g_optim", "d_optim": Adam state dicts, "args", "ada_aug_p"}`.
//!
//! Only the networks and the optimisers are read. `args` is an `argparse.Namespace` in real files;
//! the pickle reader turns it into plain data (it names no code), and nothing here looks at it.
//! torch 2.x saves each parameter's `step` as a 0-dim float tensor, torch 1.x as a Python int;
//! both are accepted. The optimiser state is indexed by position in `module.parameters()`, which
//! the caller supplies as the order of checkpoint keys.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};

use super::TrainError;
use super::adam::{Adam, AdamHyper, ParamState};
use crate::nets::stylegan2::infer::config_from_state;
use crate::nets::stylegan2::{
    Discriminator, DiscriminatorConfig, Generator, generator_param_order, generator_tensors,
};
use crate::weights::load::{Tolerated, load_module};
use crate::weights::{RawTensor, TensorMap, Value, read_checkpoint};

/// One parameter's saved Adam state.
#[derive(Debug, Clone)]
pub struct SavedParamState {
    pub step: u64,
    pub exp_avg: RawTensor,
    pub exp_avg_sq: RawTensor,
}

/// A saved `torch.optim.Adam` state dict.
#[derive(Debug, Clone)]
pub struct SavedOptimizer {
    /// From `param_groups[0]`.
    pub hyper: AdamHyper,
    /// By position in the module's parameter order.
    pub states: BTreeMap<usize, SavedParamState>,
    /// How many parameters the group lists.
    pub params: usize,
}

impl SavedOptimizer {
    /// The optimiser on `device`, with state `i` given to `order[i]`.
    pub fn to_adam(&self, order: &[String], device: &Device, file: &Path) -> Result<Adam, TrainError> {
        let layout = |what: String| TrainError::Layout {
            file: file.to_path_buf(),
            what,
        };
        if self.params != order.len() {
            return Err(layout(format!(
                "the optimiser holds {} parameters, the network has {}",
                self.params,
                order.len()
            )));
        }
        let mut adam = Adam::new(self.hyper, order.to_vec());
        for (&i, saved) in &self.states {
            let key = order
                .get(i)
                .ok_or_else(|| layout(format!("optimiser state {i} is beyond the network's parameters")))?;
            let flat =
                |t: &RawTensor| Tensor::<1>::from_data(TensorData::new(t.to_f32(), [t.numel()]), device);
            adam.state.insert(
                key.clone(),
                ParamState {
                    step: saved.step,
                    exp_avg: flat(&saved.exp_avg),
                    exp_avg_sq: flat(&saved.exp_avg_sq),
                },
            );
        }
        Ok(adam)
    }
}

/// What `train.py` resumes from: the trained networks on an autodiff device, `g_ema` without
/// autodiff (it is only ever averaged into), and both optimisers with their state.
#[derive(Debug, Clone)]
pub struct TrainState {
    pub g: Generator,
    pub d: Discriminator,
    pub g_ema: Generator,
    pub g_optim: Adam,
    pub d_optim: Adam,
}

/// A training checkpoint's networks and optimisers.
#[derive(Debug, Clone)]
pub struct TrainingCheckpoint {
    pub file: PathBuf,
    /// State dicts with their checkpoint keys (no `g.` / `d.` prefix), buffers included.
    pub g: TensorMap,
    pub d: TensorMap,
    pub g_ema: TensorMap,
    pub g_optim: SavedOptimizer,
    pub d_optim: SavedOptimizer,
    /// ADA's augmentation probability (0 when absent).
    pub ada_aug_p: f64,
}

impl TrainingCheckpoint {
    pub fn read(file: &Path) -> Result<TrainingCheckpoint, TrainError> {
        let root = read_checkpoint(file)?;
        Self::from_value(&root, file)
    }

    /// From an already parsed file (`file` names it in errors).
    pub fn from_value(root: &Value, file: &Path) -> Result<TrainingCheckpoint, TrainError> {
        let layout = |what: String| TrainError::Layout {
            file: file.to_path_buf(),
            what,
        };
        let net = |name: &str| -> Result<TensorMap, TrainError> {
            let state = root
                .get(name)
                .ok_or_else(|| layout(format!("no \"{name}\" state dict (not a train.py checkpoint)")))?
                .flatten_tensors();
            if state.is_empty() {
                return Err(layout(format!("\"{name}\" holds no tensors")));
            }
            Ok(state)
        };
        let optim = |name: &str| -> Result<SavedOptimizer, TrainError> {
            let value = root.get(name).ok_or_else(|| {
                layout(format!(
                    "no \"{name}\" optimiser state (a released generator file has none; start a fresh run from it instead)"
                ))
            })?;
            read_optimizer(value).map_err(|what| layout(format!("{name}: {what}")))
        };
        Ok(TrainingCheckpoint {
            file: file.to_path_buf(),
            g: net("g")?,
            d: net("d")?,
            g_ema: net("g_ema")?,
            g_optim: optim("g_optim")?,
            d_optim: optim("d_optim")?,
            ada_aug_p: root.get("ada_aug_p").and_then(Value::as_f64).unwrap_or(0.0),
        })
    }

    /// The generator `g` or `g_ema`, built from its own shapes, on `device`.
    pub fn generator(&self, state: &TensorMap, device: &Device) -> Result<Generator, TrainError> {
        let config = config_from_state(state)?;
        let g = load_module(
            Generator::new(&config, device)?,
            &generator_tensors(state),
            &self.file,
            &Tolerated::suffixes(&[".kernel"]),
        )?;
        Ok(g)
    }

    /// The discriminator `d`, built from its own shapes, on `device`.
    pub fn discriminator(
        &self,
        stddev_group: usize,
        stddev_feat: usize,
        device: &Device,
    ) -> Result<Discriminator, TrainError> {
        let config = DiscriminatorConfig::from_state(&self.d, stddev_group, stddev_feat)?;
        Ok(Discriminator::new(&config, device)?.load(&self.d, &self.file, "d.")?)
    }
}

impl TrainingCheckpoint {
    /// The whole training state on `device` (its autodiff twin for `g` and `d`; the optimiser
    /// state stays beside the gradients, on the plain device). The minibatch-stddev grouping is
    /// not stored in checkpoints: `train.py` uses 4 and 1.
    pub fn state(
        &self,
        stddev_group: usize,
        stddev_feat: usize,
        device: &Device,
    ) -> Result<TrainState, TrainError> {
        let plain = device.clone().inner();
        let ad = plain.clone().autodiff();
        let g = self.generator(&self.g, &ad)?;
        let d = self.discriminator(stddev_group, stddev_feat, &ad)?;
        let g_order = generator_param_order(&g);
        let d_order: Vec<String> = d.key_table().into_iter().map(|(_, key)| key).collect();
        Ok(TrainState {
            g_ema: self.generator(&self.g_ema, &plain)?,
            g_optim: self.g_optim.to_adam(&g_order, &plain, &self.file)?,
            d_optim: self.d_optim.to_adam(&d_order, &plain, &self.file)?,
            g,
            d,
        })
    }
}

fn read_optimizer(value: &Value) -> Result<SavedOptimizer, String> {
    let groups = match value.get("param_groups") {
        Some(Value::List(groups)) | Some(Value::Tuple(groups)) => groups,
        _ => return Err("no param_groups".into()),
    };
    if groups.len() != 1 {
        return Err(format!("{} parameter groups (train.py makes one)", groups.len()));
    }
    let group = &groups[0];
    let number = |key: &str| {
        group
            .get(key)
            .and_then(Value::as_f64)
            .ok_or_else(|| format!("param_groups[0] has no {key}"))
    };
    let betas = match group.get("betas") {
        Some(Value::Tuple(b)) | Some(Value::List(b)) if b.len() == 2 => (b[0].as_f64(), b[1].as_f64()),
        _ => (None, None),
    };
    let (Some(beta1), Some(beta2)) = betas else {
        return Err("param_groups[0] has no pair of betas".into());
    };
    if group.get("amsgrad") == Some(&Value::Bool(true)) || number("weight_decay").is_ok_and(|w| w != 0.0) {
        return Err("amsgrad or weight decay is set (train.py uses neither)".into());
    }
    let params = match group.get("params") {
        Some(Value::List(p)) | Some(Value::Tuple(p)) => p.len(),
        _ => return Err("param_groups[0] lists no params".into()),
    };
    let hyper = AdamHyper {
        lr: number("lr")?,
        beta1,
        beta2,
        eps: number("eps")?,
    };
    let mut states = BTreeMap::new();
    if let Some(Value::Dict(entries)) = value.get("state") {
        for (index, state) in entries {
            let i = match index {
                Value::Int(i) => usize::try_from(*i).map_err(|_| format!("state index {i}"))?,
                other => return Err(format!("state index {other:?} is not an integer")),
            };
            let tensor = |key: &str| match state.get(key) {
                Some(Value::Tensor(t)) => Ok(t.clone()),
                _ => Err(format!("state {i} has no tensor {key}")),
            };
            let step = match state.get("step") {
                Some(Value::Tensor(t)) if t.numel() == 1 => t.to_f32()[0] as f64,
                Some(v) => v
                    .as_f64()
                    .ok_or_else(|| format!("state {i}: step is not a number"))?,
                None => return Err(format!("state {i} has no step")),
            };
            if !step.is_finite() || step < 0.0 || step.fract() != 0.0 {
                return Err(format!("state {i}: step {step} is not a count"));
            }
            let (exp_avg, exp_avg_sq) = (tensor("exp_avg")?, tensor("exp_avg_sq")?);
            if exp_avg.shape != exp_avg_sq.shape {
                return Err(format!("state {i}: the moments differ in shape"));
            }
            states.insert(
                i,
                SavedParamState {
                    step: step as u64,
                    exp_avg,
                    exp_avg_sq,
                },
            );
        }
    }
    Ok(SavedOptimizer {
        hyper,
        states,
        params,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Value {
        Value::Str(text.into())
    }

    fn optimizer(step: Value, weight_decay: f64) -> Value {
        let moment = Value::Tensor(RawTensor::f32(vec![2], vec![0.5, 0.25]));
        Value::Dict(vec![
            (
                s("state"),
                Value::Dict(vec![(
                    Value::Int(0),
                    Value::Dict(vec![
                        (s("step"), step),
                        (s("exp_avg"), moment.clone()),
                        (s("exp_avg_sq"), moment),
                    ]),
                )]),
            ),
            (
                s("param_groups"),
                Value::List(vec![Value::Dict(vec![
                    (s("lr"), Value::Float(0.0016)),
                    (
                        s("betas"),
                        Value::Tuple(vec![Value::Float(0.0), Value::Float(0.99)]),
                    ),
                    (s("eps"), Value::Float(1e-8)),
                    (s("weight_decay"), Value::Float(weight_decay)),
                    (s("amsgrad"), Value::Bool(false)),
                    (s("params"), Value::List(vec![Value::Int(0), Value::Int(1)])),
                ])]),
            ),
        ])
    }

    /// torch 1.x saved `step` as a Python int, torch 2.x as a 0-dim tensor: both read the same.
    #[test]
    fn step_is_read_from_an_int_or_a_tensor() {
        let int = read_optimizer(&optimizer(Value::Int(20), 0.0)).expect("int step");
        let tensor = Value::Tensor(RawTensor::f32(vec![], vec![20.0]));
        let tensor = read_optimizer(&optimizer(tensor, 0.0)).expect("tensor step");
        for saved in [int, tensor] {
            assert_eq!(saved.states[&0].step, 20);
            assert_eq!(saved.params, 2);
            assert_eq!((saved.hyper.lr, saved.hyper.beta2), (0.0016, 0.99));
        }
        let err = read_optimizer(&optimizer(Value::Float(2.5), 0.0)).expect_err("not a count");
        assert!(err.contains("not a count"), "{err}");
        let err = read_optimizer(&optimizer(Value::Int(1), 0.1)).expect_err("weight decay");
        assert!(err.contains("weight decay"), "{err}");
    }
}
