//! torch's `Adam` (single-tensor path, no weight decay, no amsgrad), as `train.py` builds it.
//!
//! Per parameter and step, in this order: `step += 1` (counted before use, so the first update of
//! a resumed state uses `step_before + 1`); `m = lerp(m, g, 1 − β1)`; `v = β2·v + (1 − β2)·g²`;
//! `p −= lr/(1 − β1^step) · m / (√v / √(1 − β2^step) + eps)`. The bias corrections are computed in
//! double precision, as torch does with Python floats. A zero gradient still steps: `v` decays
//! and `step` grows (trap 2 of the fixture), so every parameter must be given a gradient.

use std::collections::BTreeMap;

use burn::module::Module;
use burn::tensor::Tensor;

use super::TrainError;
use super::named::{KeyOf, Named, map_params};

/// Adam's hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamHyper {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

impl AdamHyper {
    /// `train.py`'s optimisers with lazy regularisation every `reg_every` steps: with
    /// `ratio = reg_every / (reg_every + 1)`, `lr·ratio` and betas `(0^ratio, 0.99^ratio)`, so that
    /// the regularised steps together move like plain steps.
    pub fn lazy_regularisation(lr: f64, reg_every: usize) -> AdamHyper {
        let ratio = reg_every as f64 / (reg_every as f64 + 1.0);
        AdamHyper {
            lr: lr * ratio,
            beta1: 0.0f64.powf(ratio),
            beta2: 0.99f64.powf(ratio),
            eps: 1e-8,
        }
    }
}

/// One parameter's state: the step count and both moments (flattened).
#[derive(Debug, Clone)]
pub struct ParamState {
    pub step: u64,
    pub exp_avg: Tensor<1>,
    pub exp_avg_sq: Tensor<1>,
}

/// Adam over named parameters; `order` is torch's parameter order (the index of its state dict).
#[derive(Debug, Clone)]
pub struct Adam {
    pub hyper: AdamHyper,
    pub order: Vec<String>,
    pub state: BTreeMap<String, ParamState>,
}

impl Adam {
    /// A fresh optimiser: state is created at the first step, as torch does.
    pub fn new(hyper: AdamHyper, order: Vec<String>) -> Adam {
        Adam {
            hyper,
            order,
            state: BTreeMap::new(),
        }
    }

    /// One update of the flat parameter `param` by `grad`.
    pub fn update(&mut self, key: &str, param: Tensor<1>, grad: Tensor<1>) -> Result<Tensor<1>, TrainError> {
        let n = param.dims()[0];
        if grad.dims()[0] != n {
            return Err(TrainError::Optimizer(format!(
                "{key}: gradient of {} elements for a parameter of {n}",
                grad.dims()[0]
            )));
        }
        let AdamHyper {
            lr,
            beta1,
            beta2,
            eps,
        } = self.hyper;
        let state = match self.state.remove(key) {
            Some(s) if s.exp_avg.dims()[0] == n && s.exp_avg_sq.dims()[0] == n => s,
            Some(_) => {
                return Err(TrainError::Optimizer(format!(
                    "{key}: the saved state does not have the parameter's {n} elements"
                )));
            }
            None => ParamState {
                step: 0,
                exp_avg: Tensor::zeros([n], &param.device()),
                exp_avg_sq: Tensor::zeros([n], &param.device()),
            },
        };
        let step = state.step + 1;
        // torch's lerp with a weight of 1 (β1 = 0) returns the gradient exactly.
        let exp_avg = if beta1 == 0.0 {
            grad.clone()
        } else {
            state.exp_avg.clone() + (grad.clone() - state.exp_avg).mul_scalar(1.0 - beta1)
        };
        let exp_avg_sq = state.exp_avg_sq.mul_scalar(beta2) + grad.clone().mul_scalar(1.0 - beta2) * grad;
        let bias_correction1 = 1.0 - beta1.powf(step as f64);
        let bias_correction2 = 1.0 - beta2.powf(step as f64);
        let step_size = lr / bias_correction1;
        let denom = exp_avg_sq
            .clone()
            .sqrt()
            .div_scalar(bias_correction2.sqrt())
            .add_scalar(eps);
        let new = param - exp_avg.clone().mul_scalar(step_size) / denom;
        self.state.insert(
            key.to_string(),
            ParamState {
                step,
                exp_avg,
                exp_avg_sq,
            },
        );
        Ok(new)
    }

    /// Steps every parameter of `params` with its gradient; every parameter needs one.
    pub fn step_named(&mut self, params: &Named, grads: &Named) -> Result<Named, TrainError> {
        self.check_grads(params.keys(), grads)?;
        let mut out = Named::new();
        for (key, p) in params {
            let g = grads[key].clone();
            out.insert(key.clone(), self.update(key, p.clone(), g)?);
        }
        Ok(out)
    }

    /// Steps every parameter of `module` (named by `key_of`) with its gradient in `grads`.
    pub fn step_module<M: Module>(
        &mut self,
        module: M,
        grads: &Named,
        key_of: KeyOf,
    ) -> Result<M, TrainError> {
        let keys = super::named::param_keys(&module, key_of);
        self.check_grads(keys.iter(), grads)?;
        let mut failure = None;
        let module = map_params(module, key_of, &mut |key, p| match grads.get(key) {
            Some(g) => match self.update(key, p.clone(), g.clone()) {
                Ok(new) => new,
                Err(e) => {
                    failure.get_or_insert(e);
                    p
                }
            },
            None => p,
        });
        match failure {
            Some(e) => Err(e),
            None => Ok(module),
        }
    }

    fn check_grads<'k>(
        &self,
        keys: impl Iterator<Item = &'k String>,
        grads: &Named,
    ) -> Result<(), TrainError> {
        let mut count = 0;
        for key in keys {
            if !grads.contains_key(key) {
                return Err(TrainError::Optimizer(format!("no gradient for {key}")));
            }
            count += 1;
        }
        if count != grads.len() {
            return Err(TrainError::Optimizer(format!(
                "{} gradients for {count} parameters",
                grads.len()
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn flat(values: &[f32]) -> Tensor<1> {
        Tensor::from_data(TensorData::new(values.to_vec(), [values.len()]), &Device::flex())
    }

    fn values(t: Tensor<1>) -> Vec<f32> {
        t.into_data().try_into_vec_as::<f32>().unwrap_or_default()
    }

    #[test]
    fn lazy_regularisation_matches_train_py() {
        let g = AdamHyper::lazy_regularisation(0.002, 4);
        assert!((g.lr - 0.0016).abs() < 1e-15 && g.beta1 == 0.0);
        assert!((g.beta2 - 0.9919919678228657).abs() < 1e-15);
        let d = AdamHyper::lazy_regularisation(0.002, 16);
        assert!((d.lr - 0.0018823529411764706).abs() < 1e-15);
        assert!((d.beta2 - 0.9905854573074332).abs() < 1e-15);
    }

    /// A zero gradient still counts a step and decays the second moment; the update then
    /// moves the parameter by nothing.
    #[test]
    fn a_zero_gradient_still_steps() {
        let hyper = AdamHyper::lazy_regularisation(0.002, 16);
        let mut adam = Adam::new(hyper, vec!["b".into()]);
        adam.state.insert(
            "b".into(),
            ParamState {
                step: 17,
                exp_avg: flat(&[0.5]),
                exp_avg_sq: flat(&[4.0]),
            },
        );
        let p = adam.update("b", flat(&[1.0]), flat(&[0.0])).expect("update");
        assert_eq!(values(p), vec![1.0]);
        let s = &adam.state["b"];
        assert_eq!(s.step, 18);
        assert_eq!(values(s.exp_avg.clone()), vec![0.0]);
        assert!((values(s.exp_avg_sq.clone())[0] as f64 - 4.0 * hyper.beta2).abs() < 1e-6);
    }

    /// The first step of a fresh state moves each element by lr·sign(g) (up to eps).
    #[test]
    fn a_fresh_state_moves_by_the_learning_rate() {
        let hyper = AdamHyper {
            lr: 0.1,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        };
        let mut adam = Adam::new(hyper, vec!["w".into()]);
        let p = adam
            .update("w", flat(&[1.0, 1.0]), flat(&[3.0, -0.5]))
            .expect("update");
        let p = values(p);
        assert!((p[0] - 0.9).abs() < 1e-6 && (p[1] - 1.1).abs() < 1e-6, "{p:?}");
        assert!(adam.update("w", flat(&[1.0]), flat(&[1.0])).is_err());
    }

    #[test]
    fn every_parameter_needs_a_gradient() {
        let mut adam = Adam::new(AdamHyper::lazy_regularisation(0.002, 4), vec![]);
        let params = Named::from([("a".to_string(), flat(&[1.0])), ("b".to_string(), flat(&[1.0]))]);
        let grads = Named::from([("a".to_string(), flat(&[1.0]))]);
        let err = adam.step_named(&params, &grads).expect_err("b has no gradient");
        assert!(err.to_string().contains("no gradient for b"), "{err}");
    }
}
