//! Small layers shared by several networks, named like their PyTorch counterparts.

use burn::module::{Module, Param};
use burn::tensor::Device;
use burn::tensor::Tensor;

/// PyTorch's `nn.PReLU(num_parameters)`: one learned negative slope per channel (checkpoint key
/// `weight`). burn's own PRelu names it `alpha`; keeping PyTorch's name keeps the mapping trivial.
#[derive(Module, Debug)]
pub struct PRelu {
    pub weight: Param<Tensor<1>>,
}

impl PRelu {
    pub fn new(channels: usize, device: &Device) -> PRelu {
        PRelu {
            weight: Param::from_tensor(Tensor::full([channels], 0.25, device)),
        }
    }

    /// Works on (N, C, ...) maps and on (N, C) features alike: the slope follows dimension 1.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        burn::tensor::activation::prelu(x, self.weight.val())
    }
}
