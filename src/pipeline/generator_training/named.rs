//! Module parameters and gradients by checkpoint key, flattened to one dimension.
//!
//! Adam, the EMA and the parity checks speak in checkpoint keys (`convs.1.conv2.1.weight`), the
//! modules in burn paths (`blocks.0.conv2.conv.weight`); each network gives the translation
//! (`key_of`). Flat tensors let one map hold parameters of every rank.

use std::collections::BTreeMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Gradients, Tensor};

/// Checkpoint key → flattened tensor (without autodiff).
pub type Named = BTreeMap<String, Tensor<1>>;

/// Translates a burn module path into the checkpoint key.
pub type KeyOf<'a> = &'a dyn Fn(&str) -> String;

struct Collect<'a, F: FnMut(String, Tensor<1>)> {
    path: Vec<String>,
    key_of: KeyOf<'a>,
    sink: F,
}

impl<F: FnMut(String, Tensor<1>)> ModuleVisitor for Collect<'_, F> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let key = (self.key_of)(&self.path.join("."));
        let value = param.val();
        let n = value.shape().num_elements();
        (self.sink)(key, value.reshape([n]));
    }
}

/// Every float parameter of `module`, keyed and flattened, detached from any autodiff graph.
pub fn named_params<M: Module>(module: &M, key_of: KeyOf) -> Named {
    let mut out = Named::new();
    module.visit(&mut Collect {
        path: Vec::new(),
        key_of,
        sink: |key, t: Tensor<1>| {
            out.insert(key, t.inner());
        },
    });
    out
}

/// The gradient of every float parameter of `module` in `grads`, keyed and flattened.
///
/// A parameter the loss did not reach gets a zero gradient rather than none: train.py always
/// puts every parameter into the graph (the `+ 0 * pred[0]` terms of the regularisers), so torch
/// hands Adam a gradient for each of them, and Adam then still counts the step (trap 2).
pub fn named_grads<M: Module>(module: &M, grads: &Gradients, key_of: KeyOf) -> Named {
    let mut out = Named::new();
    struct Grads<'a, 'g> {
        path: Vec<String>,
        key_of: KeyOf<'a>,
        grads: &'g Gradients,
        out: &'g mut Named,
    }
    impl ModuleVisitor for Grads<'_, '_> {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }

        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }

        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let key = (self.key_of)(&self.path.join("."));
            let value = param.val();
            let n = value.shape().num_elements();
            let grad = match value.grad(self.grads) {
                Some(g) => g.reshape([n]),
                None => Tensor::zeros([n], &value.device().inner()),
            };
            self.out.insert(key, grad);
        }
    }
    module.visit(&mut Grads {
        path: Vec::new(),
        key_of,
        grads,
        out: &mut out,
    });
    out
}

/// Replaces every float parameter of `module` by `update(key, flat value)` (reshaped back),
/// keeping its id, its autodiff association and whether it requires a gradient. The new values
/// are fresh leaves: an updated parameter carries no graph of the update.
pub fn map_params<M: Module>(
    module: M,
    key_of: KeyOf,
    update: &mut dyn FnMut(&str, Tensor<1>) -> Tensor<1>,
) -> M {
    struct Update<'a, 'u> {
        path: Vec<String>,
        key_of: KeyOf<'a>,
        update: &'u mut dyn FnMut(&str, Tensor<1>) -> Tensor<1>,
    }
    impl ModuleMapper for Update<'_, '_> {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }

        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }

        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let key = (self.key_of)(&self.path.join("."));
            param.map(|t| {
                let dims = t.dims();
                let (autodiff, require) = (t.is_autodiff(), t.is_require_grad());
                let n = t.shape().num_elements();
                let new = (self.update)(&key, t.inner().reshape([n])).reshape(dims);
                match (autodiff, require) {
                    (true, true) => new.autodiff().require_grad(),
                    (true, false) => new.autodiff(),
                    _ => new,
                }
            })
        }
    }
    module.map(&mut Update {
        path: Vec::new(),
        key_of,
        update,
    })
}

/// The keys of a module's parameters, in burn's visiting order.
pub fn param_keys<M: Module>(module: &M, key_of: KeyOf) -> Vec<String> {
    let mut keys = Vec::new();
    module.visit(&mut Collect {
        path: Vec::new(),
        key_of,
        sink: |key, _| keys.push(key),
    });
    keys
}
