//! Adaptive Attentional Denormalization: `AADLayer` and `AAD_ResBlk` of taotaonice's AEI-Net.

// Field names are the checkpoint's (`AADBlk1.AAD1.conv1.weight`), and the Module derive turns
// them into local variables, so the lint is silenced for the whole file.
#![allow(non_snake_case)]

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::Device;
use burn::tensor::Tensor;
use burn::tensor::activation::sigmoid;

use super::config::AadBlockConfig;
use crate::nets::cpu_conv::conv2d_module;
use crate::nets::fused;

pub use crate::nets::common::instance_norm;

fn conv(cin: usize, cout: usize, k: usize, bias: bool, device: &Device) -> Conv2d {
    let p = k / 2;
    Conv2dConfig::new([cin, cout], [k, k])
        .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
        .with_bias(bias)
        .init(device)
}

/// Blends an attribute-driven and an identity-driven denormalisation of `h` with a learned mask.
#[derive(Module, Debug)]
pub struct AadLayer {
    /// γ of the attributes (1×1 conv on z_attr).
    pub conv1: Conv2d,
    /// β of the attributes.
    pub conv2: Conv2d,
    /// γ of the identity (Linear on z_id, broadcast over H, W).
    pub fc1: Linear,
    /// β of the identity.
    pub fc2: Linear,
    /// The one-channel attention mask, from the normalised `h`.
    pub conv_h: Conv2d,
}

impl AadLayer {
    pub fn new(c_x: usize, c_attr: usize, c_id: usize, device: &Device) -> AadLayer {
        AadLayer {
            conv1: conv(c_attr, c_x, 1, true, device),
            conv2: conv(c_attr, c_x, 1, true, device),
            fc1: LinearConfig::new(c_id, c_x).init(device),
            fc2: LinearConfig::new(c_id, c_x).init(device),
            conv_h: conv(c_x, 1, 1, true, device),
        }
    }

    /// Returns the blended map and the mask M (N, 1, H, W).
    pub fn forward(&self, h: Tensor<4>, z_attr: Tensor<4>, z_id: Tensor<2>) -> (Tensor<4>, Tensor<4>) {
        self.forward_then(h, z_attr, z_id, false)
    }

    /// [`AadLayer::forward`], with the ReLU that follows every AAD in a block fused into the
    /// blend when `then_relu`. The blend is one pass on the CPU backend (`fused::aad_blend`).
    fn forward_then(
        &self,
        h: Tensor<4>,
        z_attr: Tensor<4>,
        z_id: Tensor<2>,
        then_relu: bool,
    ) -> (Tensor<4>, Tensor<4>) {
        let hn = fused::instance_norm(h);
        let gamma_attr = conv2d_module(&self.conv1, z_attr.clone());
        let beta_attr = conv2d_module(&self.conv2, z_attr);
        let gamma_id = self.fc1.forward(z_id.clone());
        let beta_id = self.fc2.forward(z_id);
        let m = sigmoid(conv2d_module(&self.conv_h, hn.clone()));
        let out = fused::aad_blend(hn, gamma_attr, beta_attr, gamma_id, beta_id, m.clone(), then_relu);
        (out, m)
    }
}

/// `AAD_ResBlk`: two AAD → ReLU → Conv3×3 steps, plus a third on the shortcut when the width changes.
#[derive(Module, Debug)]
pub struct AadResBlk {
    pub AAD1: AadLayer,
    pub conv1: Conv2d,
    pub AAD2: AadLayer,
    pub conv2: Conv2d,
    pub AAD3: Option<AadLayer>,
    pub conv3: Option<Conv2d>,
}

impl AadResBlk {
    pub fn new(block: AadBlockConfig, c_id: usize, device: &Device) -> AadResBlk {
        let AadBlockConfig { cin, cout, c_attr } = block;
        let reshape = cin != cout;
        AadResBlk {
            AAD1: AadLayer::new(cin, c_attr, c_id, device),
            conv1: conv(cin, cin, 3, false, device),
            AAD2: AadLayer::new(cin, c_attr, c_id, device),
            conv2: conv(cin, cout, 3, false, device),
            AAD3: reshape.then(|| AadLayer::new(cin, c_attr, c_id, device)),
            conv3: reshape.then(|| conv(cin, cout, 3, false, device)),
        }
    }

    /// The block's output; `on_mask` sees the masks of AAD1, AAD2 (and AAD3) in that order.
    pub fn forward(
        &self,
        h: Tensor<4>,
        z_attr: Tensor<4>,
        z_id: Tensor<2>,
        on_mask: &mut dyn FnMut(Tensor<4>),
    ) -> Tensor<4> {
        let (x, m) = self
            .AAD1
            .forward_then(h.clone(), z_attr.clone(), z_id.clone(), true);
        on_mask(m);
        let x = conv2d_module(&self.conv1, x);
        let (x, m) = self.AAD2.forward_then(x, z_attr.clone(), z_id.clone(), true);
        on_mask(m);
        let x = conv2d_module(&self.conv2, x);
        let h = match (&self.AAD3, &self.conv3) {
            (Some(aad), Some(conv)) => {
                let (s, m) = aad.forward_then(h, z_attr, z_id, true);
                on_mask(m);
                conv2d_module(conv, s)
            }
            _ => h,
        };
        x + h
    }
}
