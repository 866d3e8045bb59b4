//! Per-parameter gradients read off a module by its parameter paths, as host tensors.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Gradients, Tensor};

use crate::weights::{RawTensor, TensorMap};

struct Collector<'a> {
    grads: &'a Gradients,
    path: Vec<String>,
    out: TensorMap,
    failure: Option<String>,
}

impl ModuleVisitor for Collector<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val();
        let shape = value.dims().to_vec();
        let name = self.path.join(".");
        // A parameter the loss does not reach has no gradient; the reference adds `0 * output`
        // to the loss so that every parameter gets an explicit zero (Adam still steps it).
        let data = match value.grad(self.grads) {
            Some(g) => match g.into_data().try_into_vec_as::<f32>() {
                Ok(v) => v,
                Err(e) => {
                    self.failure = Some(format!("{name}: gradient not readable: {e:?}"));
                    return;
                }
            },
            None => vec![0.0; shape.iter().product()],
        };
        self.out.tensors.insert(name, RawTensor::f32(shape, data));
    }
}

/// Every float parameter's gradient by its module path (`convs.0.conv.weight`), zeros for the
/// parameters outside the graph.
pub fn parameter_gradients<M: Module>(module: &M, grads: &Gradients) -> Result<TensorMap, String> {
    let mut collector = Collector {
        grads,
        path: Vec::new(),
        out: TensorMap::default(),
        failure: None,
    };
    module.visit(&mut collector);
    match collector.failure {
        Some(e) => Err(e),
        None => Ok(collector.out),
    }
}

/// `sqrt(Σ grad²)` over every tensor, accumulated in f64 like the reference's `grad_norm`.
pub fn gradient_norm(grads: &TensorMap) -> f64 {
    grads
        .tensors
        .values()
        .flat_map(|t| t.to_f32())
        .map(|v| (v as f64) * (v as f64))
        .sum::<f64>()
        .sqrt()
}

/// The generator's module paths in rosinality's names: the mapping layers are `style.1…`
/// there (`style.0` is the parameterless PixelNorm).
pub fn rosinality_generator_name(path: &str) -> String {
    path.strip_prefix("style.")
        .and_then(|rest| rest.split_once('.'))
        .and_then(|(i, field)| {
            i.parse::<usize>()
                .ok()
                .map(|i| format!("style.{}.{field}", i + 1))
        })
        .unwrap_or_else(|| path.to_string())
}
