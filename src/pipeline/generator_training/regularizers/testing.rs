//! Test helpers: modules with random weights, closeness of gradients.

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Distribution, Tensor};

struct Randomise;

impl ModuleMapper for Randomise {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        param.map(|t| {
            let fresh = Tensor::random(t.dims(), Distribution::Normal(0.0, 1.0), &t.device());
            if t.is_require_grad() {
                fresh.require_grad()
            } else {
                fresh
            }
        })
    }
}

/// Every float parameter replaced by N(0, 1) draws.
pub fn randomised<M: Module>(module: M) -> M {
    module.map(&mut Randomise)
}

pub fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec_as::<f32>().unwrap_or_default()
}

/// Element-wise within `1e-4` of the reference's largest magnitude (which must not be zero).
pub fn assert_close<const D: usize>(what: &str, got: Tensor<D>, want: Tensor<D>) {
    assert_eq!(got.dims(), want.dims(), "{what}");
    let (got, want) = (host(got), host(want));
    let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(scale > 0.0, "{what}: the reference is zero");
    for (g, w) in got.iter().zip(&want) {
        assert!(
            (g - w).abs() <= 1e-4 * scale,
            "{what}: {g} vs {w} (scale {scale})"
        );
    }
}
