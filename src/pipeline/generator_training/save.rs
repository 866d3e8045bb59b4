//! Writing a run's checkpoint in `train.py`'s layout, so PyTorch loads it back
//! (`torch.load(path, weights_only=True)`) and Facecast reads it like any StyleGAN2 file:
//! `{"g", "d", "g_ema": state dicts, "g_optim", "d_optim": Adam state dicts, "args": plain dict,
//! "ada_aug_p": p}` (p: the augmentation probability, 0 without `--augment`).
//!
//! The state dicts are the ones the run started from with every parameter replaced by its
//! current value: buffers (the noise maps, the blur kernels) stay as they were, as in `train.py`,
//! where nothing updates them. `args` holds `train.py`'s argument names (a plain dict: an
//! `argparse.Namespace` would make `weights_only` loading refuse the file) plus Facecast's
//! `facecast_iteration` and `facecast_mean_path_length`, which `train.py` does not save.
//!
//! Files are written atomically ([`write_atomic`]): a run killed while saving leaves the previous
//! checkpoint whole.

use std::path::Path;

use burn::module::Module;

use super::TrainError;
use super::adam::Adam;
use super::named::{KeyOf, named_params};
use super::step::d_key_of;
use super::trainer::Trainer;
use crate::io::atomic::write_atomic;
use crate::nets::stylegan2::generator_key;
use crate::weights::torch_save::torch_save_bytes;
use crate::weights::{RawTensor, TensorMap, Value};

fn s(key: &str) -> Value {
    Value::Str(key.to_string())
}

fn host(t: burn::tensor::Tensor<1>, shape: Vec<usize>) -> Result<RawTensor, TrainError> {
    let data = t
        .into_data()
        .try_into_vec_as::<f32>()
        .map_err(|e| TrainError::Optimizer(format!("reading a tensor back from the device: {e:?}")))?;
    if data.len() != shape.iter().product::<usize>() {
        return Err(TrainError::Optimizer(format!(
            "{} values for a tensor of shape {shape:?}",
            data.len()
        )));
    }
    Ok(RawTensor::f32(shape, data))
}

/// `source` with the parameters of `module` written over it, as a state-dict value.
fn state_dict<M: Module>(module: &M, key_of: KeyOf, source: &TensorMap) -> Result<Value, TrainError> {
    let mut state = source.clone();
    for (key, value) in named_params(module, key_of) {
        let shape = source
            .get(&key)
            .map(|t| t.shape.clone())
            .ok_or_else(|| TrainError::Optimizer(format!("the source state dict has no {key}")))?;
        state.tensors.insert(key, host(value, shape)?);
    }
    Ok(Value::Dict(
        state
            .tensors
            .into_iter()
            .map(|(k, t)| (Value::Str(k), Value::Tensor(t)))
            .collect(),
    ))
}

/// torch's `Adam.state_dict()`: state by parameter position, one parameter group.
fn optimizer(adam: &Adam, shapes: &TensorMap) -> Result<Value, TrainError> {
    let mut states = Vec::new();
    for (i, key) in adam.order.iter().enumerate() {
        let Some(st) = adam.state.get(key) else { continue };
        let shape = shapes
            .get(key)
            .map(|t| t.shape.clone())
            .ok_or_else(|| TrainError::Optimizer(format!("no shape for the optimiser state of {key}")))?;
        states.push((
            Value::Int(i as i64),
            Value::Dict(vec![
                (
                    s("step"),
                    Value::Tensor(RawTensor::f32(vec![], vec![st.step as f32])),
                ),
                (
                    s("exp_avg"),
                    Value::Tensor(host(st.exp_avg.clone(), shape.clone())?),
                ),
                (
                    s("exp_avg_sq"),
                    Value::Tensor(host(st.exp_avg_sq.clone(), shape)?),
                ),
            ]),
        ));
    }
    let h = adam.hyper;
    let group = Value::Dict(vec![
        (s("lr"), Value::Float(h.lr)),
        (
            s("betas"),
            Value::Tuple(vec![Value::Float(h.beta1), Value::Float(h.beta2)]),
        ),
        (s("eps"), Value::Float(h.eps)),
        (s("weight_decay"), Value::Int(0)),
        (s("amsgrad"), Value::Bool(false)),
        (s("maximize"), Value::Bool(false)),
        (s("foreach"), Value::None),
        (s("capturable"), Value::Bool(false)),
        (s("differentiable"), Value::Bool(false)),
        (s("fused"), Value::None),
        (
            s("params"),
            Value::List((0..adam.order.len() as i64).map(Value::Int).collect()),
        ),
    ]);
    Ok(Value::Dict(vec![
        (s("state"), Value::Dict(states)),
        (s("param_groups"), Value::List(vec![group])),
    ]))
}

/// The whole checkpoint of `trainer` as a value tree.
pub fn checkpoint_value(trainer: &Trainer) -> Result<Value, TrainError> {
    let src = &trainer.sources;
    let d_key = d_key_of(&trainer.d);
    let set = &trainer.settings;
    let args = Value::Dict(vec![
        (s("arch"), s("stylegan2")),
        (s("iter"), Value::Int(trainer.iteration as i64)),
        (s("batch"), Value::Int(set.batch as i64)),
        (s("size"), Value::Int(trainer.size() as i64)),
        (s("r1"), Value::Float(set.r1)),
        (s("path_regularize"), Value::Float(set.path_regularize)),
        (s("path_batch_shrink"), Value::Int(set.path_batch_shrink as i64)),
        (s("d_reg_every"), Value::Int(set.d_reg_every as i64)),
        (s("g_reg_every"), Value::Int(set.g_reg_every as i64)),
        (s("mixing"), Value::Float(set.mixing)),
        (s("lr"), Value::Float(set.lr)),
        (s("channel_multiplier"), Value::Int(2)),
        (s("augment"), Value::Bool(set.augment.augment)),
        (s("augment_p"), Value::Float(set.augment.augment_p)),
        (s("ada_target"), Value::Float(set.augment.ada_target)),
        (s("ada_length"), Value::Int(set.augment.ada_length as i64)),
        (s("ada_every"), Value::Int(super::ada::ADA_UPDATE_EVERY as i64)),
        (s("distributed"), Value::Bool(false)),
        (s("start_iter"), Value::Int(trainer.iteration as i64)),
        (s("facecast_iteration"), Value::Int(trainer.iteration as i64)),
        (
            s("facecast_mean_path_length"),
            Value::Float(trainer.mean_path_length),
        ),
        (s("facecast_seed"), Value::Int(set.seed as i64)),
        // ADA's window in progress, so that a resumed run tunes p as the uninterrupted one.
        (s("facecast_ada_sign_sum"), Value::Float(trainer.ada.sign_sum)),
        (s("facecast_ada_count"), Value::Float(trainer.ada.count)),
        (s("facecast_ada_calls"), Value::Int(trainer.ada.calls as i64)),
    ]);
    Ok(Value::Dict(vec![
        (s("g"), state_dict(&trainer.g, &generator_key, &src.g)?),
        (s("d"), state_dict(&trainer.d, &d_key, &src.d)?),
        (
            s("g_ema"),
            state_dict(&trainer.g_ema, &generator_key, &src.g_ema)?,
        ),
        (s("g_optim"), optimizer(&trainer.g_optim, &src.g)?),
        (s("d_optim"), optimizer(&trainer.d_optim, &src.d)?),
        (s("args"), args),
        (s("ada_aug_p"), Value::Float(trainer.augment_p())),
    ]))
}

/// Writes the checkpoint of `trainer` to `file`, atomically.
pub fn save_checkpoint(trainer: &Trainer, file: &Path) -> Result<(), TrainError> {
    let bytes = torch_save_bytes(&checkpoint_value(trainer)?)
        .map_err(|e| TrainError::Input(format!("{}: {e}", file.display())))?;
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(|e| TrainError::Input(format!("{}: {e}", dir.display())))?;
    }
    write_atomic(file, &bytes).map_err(|e| TrainError::Input(format!("{}: {e}", file.display())))
}
