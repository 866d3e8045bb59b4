//! `accumulate(g_ema, g, decay)`: `g_ema = g_ema·decay + g·(1 − decay)`, parameters only.
//!
//! Buffers are left alone (trap 10): `g_ema`'s noise maps are its own, drawn at construction.
//! The burn generator holds no buffers as parameters (noise maps live beside it, blur kernels are
//! rebuilt from the config), so walking the parameters walks exactly what torch averages.

use burn::module::Module;
use burn::tensor::Tensor;

use super::TrainError;
use super::named::{KeyOf, Named, map_params, named_params};

/// `train.py`'s decay: `0.5 ** (32 / (10 * 1000))`, a half-life of 10k images at the config-f
/// batch of 32, hard-coded whatever `--batch` is.
pub fn train_py_decay() -> f64 {
    0.5f64.powf(32.0 / (10.0 * 1000.0))
}

fn blend(ema: Tensor<1>, src: Tensor<1>, decay: f64) -> Tensor<1> {
    ema.mul_scalar(decay) + src.mul_scalar(1.0 - decay)
}

/// Accumulates named parameters (every key of `ema` needs one in `src`).
pub fn accumulate_named(ema: &Named, src: &Named, decay: f64) -> Result<Named, TrainError> {
    if ema.len() != src.len() {
        return Err(TrainError::Input(format!(
            "EMA over {} parameters from {} parameters",
            ema.len(),
            src.len()
        )));
    }
    ema.iter()
        .map(|(key, e)| {
            let s = src
                .get(key)
                .ok_or_else(|| TrainError::Input(format!("EMA: the source has no {key}")))?;
            if s.dims() != e.dims() {
                return Err(TrainError::Input(format!("EMA: {key} differs in size")));
            }
            Ok((key.clone(), blend(e.clone(), s.clone(), decay)))
        })
        .collect()
}

/// Accumulates the parameters of module `src` into `ema` (same architecture).
pub fn accumulate<M: Module>(ema: M, src: &M, decay: f64, key_of: KeyOf) -> Result<M, TrainError> {
    let source = named_params(src, key_of);
    let mut missing = None;
    let out = map_params(ema, key_of, &mut |key, e| match source.get(key) {
        Some(s) if s.dims() == e.dims() => blend(e, s.clone(), decay),
        _ => {
            missing.get_or_insert_with(|| key.to_string());
            e
        }
    });
    match missing {
        Some(key) => Err(TrainError::Input(format!(
            "EMA: the source has no {key} of that size"
        ))),
        None => Ok(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn the_decay_is_train_pys() {
        assert!((train_py_decay() - 0.9977843871238888).abs() < 1e-15);
    }

    #[test]
    fn named_accumulation_blends_and_refuses_strangers() {
        let device = Device::flex();
        let t = |v: f32| Tensor::<1>::from_data(TensorData::new(vec![v], [1]), &device);
        let ema = Named::from([("w".to_string(), t(1.0))]);
        let src = Named::from([("w".to_string(), t(3.0))]);
        let out = accumulate_named(&ema, &src, 0.75).expect("same keys");
        let v = out["w"]
            .clone()
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap_or_default();
        assert_eq!(v, vec![1.5]);
        let other = Named::from([("x".to_string(), t(3.0))]);
        assert!(accumulate_named(&ema, &other, 0.75).is_err());
    }
}
