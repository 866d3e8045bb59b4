//! StyleGAN2's equalised-learning-rate layers, shared with GPEN.
//!
//! The checkpoint stores the raw (unscaled) weights; the He-style scale `lr_mul / sqrt(fan_in)` is
//! applied at run time, exactly as in the reference, so the stored tensors load unchanged.

use std::f64::consts::SQRT_2;

use burn::module::{Module, Param};
use burn::tensor::Device;
use burn::tensor::Tensor;
use burn::tensor::activation::leaky_relu;
use burn::tensor::ops::ConvOptions;

use crate::nets::cpu_conv::conv2d;
use crate::nets::profile;

use super::host_act;

/// `x / sqrt(mean(x², dim 1) + 1e-8)`: the mapping network's input normalisation.
pub fn pixel_norm(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().square().mean_dim(1).add_scalar(1e-8).sqrt();
    x / norm
}

/// `√2 · leaky_relu(x + bias, 0.2)`, the bias following dimension 1 (checkpoint key `bias`).
#[derive(Module, Debug)]
pub struct FusedLeakyRelu {
    pub bias: Param<Tensor<1>>,
}

impl FusedLeakyRelu {
    pub fn new(channels: usize, device: &Device) -> FusedLeakyRelu {
        FusedLeakyRelu {
            bias: Param::from_tensor(Tensor::zeros([channels], device)),
        }
    }

    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        fused_leaky_relu(x, self.bias.val())
    }
}

/// The maths of `FusedLeakyReLU` with an explicit bias (EqualLinear passes `lr_mul · b`).
pub fn fused_leaky_relu<const D: usize>(x: Tensor<D>, bias: Tensor<1>) -> Tensor<D> {
    let mut shape = [1usize; D];
    shape[1] = bias.dims()[0];
    let dims = x.dims();
    profile::scope(
        "fused_leaky_relu",
        move || format!("{dims:?}"),
        || match host_act::bias_leaky_relu(x, &bias) {
            Ok(y) => y,
            Err(x) => leaky_relu(x + bias.reshape(shape), 0.2).mul_scalar(SQRT_2),
        },
    )
}

/// `EqualLinear`: `y = x·(c·W)ᵀ + lr_mul·b` with `c = lr_mul/√in`, optionally followed by the
/// fused leaky ReLU. The weight keeps PyTorch's `[out, in]` layout (the struct is deliberately
/// not called `Linear`, so the loader does not transpose it).
#[derive(Module, Debug)]
pub struct EqualLinear {
    pub weight: Param<Tensor<2>>,
    pub bias: Param<Tensor<1>>,
    pub lr_mul: f64,
    pub activate: bool,
}

impl EqualLinear {
    pub fn new(input: usize, output: usize, lr_mul: f64, activate: bool, device: &Device) -> EqualLinear {
        EqualLinear {
            weight: Param::from_tensor(Tensor::zeros([output, input], device)),
            bias: Param::from_tensor(Tensor::zeros([output], device)),
            lr_mul,
            activate,
        }
    }

    pub fn input_dim(&self) -> usize {
        self.weight.dims()[1]
    }

    pub fn output_dim(&self) -> usize {
        self.weight.dims()[0]
    }

    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let scale = self.lr_mul / (self.input_dim() as f64).sqrt();
        let y = x.matmul(self.weight.val().transpose()).mul_scalar(scale);
        let bias = self.bias.val().mul_scalar(self.lr_mul);
        if self.activate {
            fused_leaky_relu(y, bias)
        } else {
            y + bias.unsqueeze_dim(0)
        }
    }
}

/// `EqualConv2d` without bias (every use in StyleGAN2 and GPEN puts the bias in the activation):
/// `conv2d(x, W/√(in·k²), stride, padding)`.
#[derive(Module, Debug)]
pub struct EqualConv2d {
    pub weight: Param<Tensor<4>>,
    pub stride: usize,
    pub padding: usize,
}

impl EqualConv2d {
    pub fn new(
        input: usize,
        output: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        device: &Device,
    ) -> Self {
        EqualConv2d {
            weight: Param::from_tensor(Tensor::zeros([output, input, kernel, kernel], device)),
            stride,
            padding,
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [_, input, kh, kw] = self.weight.dims();
        let scale = 1.0 / ((input * kh * kw) as f64).sqrt();
        let options = ConvOptions::new([self.stride; 2], [self.padding; 2], [1, 1], 1);
        conv2d(x, self.weight.val().mul_scalar(scale), None, options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_into_vec_as::<f32>().unwrap_or_default()
    }

    #[test]
    fn equal_linear_applies_lr_mul_to_weight_and_bias() {
        let device = Device::flex();
        let mut layer = EqualLinear::new(4, 1, 0.5, false, &device);
        layer.weight = Param::from_tensor(Tensor::from_data(
            TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0], [1, 4]),
            &device,
        ));
        layer.bias = Param::from_tensor(Tensor::from_data(TensorData::new(vec![2.0f32], [1]), &device));
        let x = Tensor::from_data(TensorData::new(vec![1.0f32, 1.0, 1.0, 1.0], [1, 4]), &device);
        // (0.5/2)·(1+2+3+4) + 0.5·2
        assert_eq!(values(layer.forward(x)), vec![3.5]);
    }

    #[test]
    fn fused_leaky_relu_adds_bias_before_the_slope_and_gains_sqrt2() {
        let device = Device::flex();
        let x = Tensor::<2>::from_data(TensorData::new(vec![-1.0f32, 1.0], [1, 2]), &device);
        let b = Tensor::from_data(TensorData::new(vec![-1.0f32, 1.0], [2]), &device);
        let got = values(fused_leaky_relu(x, b));
        let want = [-2.0 * 0.2 * SQRT_2 as f32, 2.0 * SQRT_2 as f32];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{got:?}");
        }
    }
}
