//! Adaptive Attentional Denormalization: `AADLayer` and `AAD_ResBlk` of taotaonice's AEI-Net.

// Field names are the checkpoint's (`AADBlk1.AAD1.conv1.weight`), and the Module derive turns
// them into local variables, so the lint is silenced for the whole file.
#![allow(non_snake_case)]

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::sigmoid;
use burn::tensor::{DType, Device, Tensor, TensorData};

use super::config::AadBlockConfig;
use crate::nets::cpu_conv::{conv2d_module, read_f32};
use crate::nets::fused::{self, host_values};
use crate::nets::fused_aad::{self, AadParams};

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
        if self.pointwise() && host_path(&h, &z_attr, &z_id) {
            let (dims, za_dims) = (h.dims(), z_attr.dims());
            let device = h.device();
            let (hv, za) = (host_values(h), host_values(z_attr));
            return self.forward_host(&hv, dims, &za, za_dims[1], z_id, false, &device);
        }
        self.forward_then(h, z_attr, z_id, false)
    }

    /// Whether the γ, β and mask convolutions are 1×1 without stride or padding (the released
    /// layer; an older 3×3 variant would go through burn's ops), as the host kernel assumes.
    fn pointwise(&self) -> bool {
        [&self.conv1, &self.conv2, &self.conv_h].iter().all(|conv| {
            let [_, _, kh, kw] = conv.weight.dims();
            let unpadded = matches!(
                conv.padding,
                PaddingConfig2d::Valid | PaddingConfig2d::Explicit(0, 0, 0, 0)
            );
            (kh, kw) == (1, 1) && conv.stride == [1, 1] && conv.groups == 1 && unpadded
        })
    }

    /// The whole layer as one host kernel (`fused_aad`), on host values of `h` (`dims`) and of
    /// the attribute map (`c_attr` channels), which the blocks share between their AAD layers.
    #[allow(clippy::too_many_arguments)]
    fn forward_host(
        &self,
        h: &[f32],
        dims: [usize; 4],
        z_attr: &[f32],
        c_attr: usize,
        z_id: Tensor<2>,
        then_relu: bool,
        device: &Device,
    ) -> (Tensor<4>, Tensor<4>) {
        let [n, c, hh, ww] = dims;
        let bias = |conv: &Conv2d, len: usize| match &conv.bias {
            Some(b) => host_values(b.val()),
            None => vec![0.0; len],
        };
        // The biases and the mask's weights are C values; the γ/β weights (C·Cₐ, up to 8 MiB
        // each) are read in place.
        let (b_gamma, b_beta) = (bias(&self.conv1, c), bias(&self.conv2, c));
        let gamma_id = host_values(self.fc1.forward(z_id.clone()));
        let beta_id = host_values(self.fc2.forward(z_id));
        let w_mask = host_values(self.conv_h.weight.val());
        let b_mask = bias(&self.conv_h, 1).first().copied().unwrap_or(0.0);
        let (out, mask) = read_f32(&self.conv1.weight.val(), |w_gamma| {
            read_f32(&self.conv2.weight.val(), |w_beta| {
                let params = AadParams {
                    w_gamma,
                    b_gamma: &b_gamma,
                    w_beta,
                    b_beta: &b_beta,
                    gamma_id: &gamma_id,
                    beta_id: &beta_id,
                    w_mask: &w_mask,
                    b_mask,
                };
                crate::nets::profile::scope(
                    "aad_layer",
                    move || format!("{c_attr}->{c} {}", crate::nets::profile::shape4(dims)),
                    || fused_aad::aad_f32(h, dims, z_attr, c_attr, &params, then_relu),
                )
            })
        });
        (
            Tensor::from_data(TensorData::new(out, dims), device),
            Tensor::from_data(TensorData::new(mask, [n, 1, hh, ww]), device),
        )
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
        let layers = [Some(&self.AAD1), Some(&self.AAD2), self.AAD3.as_ref()];
        if layers.iter().flatten().all(|aad| aad.pointwise()) && host_path(&h, &z_attr, &z_id) {
            return self.forward_host(h, z_attr, z_id, on_mask);
        }
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

    /// [`AadResBlk::forward`] with every AAD layer as one host kernel. The attribute map is read
    /// out once for all three layers, and `h` once for AAD1 and AAD3 (a map the caller no longer
    /// holds moves out without a copy, and back in for the identity shortcut).
    fn forward_host(
        &self,
        h: Tensor<4>,
        z_attr: Tensor<4>,
        z_id: Tensor<2>,
        on_mask: &mut dyn FnMut(Tensor<4>),
    ) -> Tensor<4> {
        let device = h.device();
        let (dims, c_attr) = (h.dims(), z_attr.dims()[1]);
        let (hv, za) = (host_values(h), host_values(z_attr));
        let (x, m) = self
            .AAD1
            .forward_host(&hv, dims, &za, c_attr, z_id.clone(), true, &device);
        on_mask(m);
        let x = conv2d_module(&self.conv1, x);
        let x_dims = x.dims();
        let xv = host_values(x);
        let (x, m) = self
            .AAD2
            .forward_host(&xv, x_dims, &za, c_attr, z_id.clone(), true, &device);
        drop(xv);
        on_mask(m);
        let x = conv2d_module(&self.conv2, x);
        let h = match (&self.AAD3, &self.conv3) {
            (Some(aad), Some(conv)) => {
                let (s, m) = aad.forward_host(&hv, dims, &za, c_attr, z_id, true, &device);
                on_mask(m);
                conv2d_module(conv, s)
            }
            _ => Tensor::from_data(TensorData::new(hv, dims), &device),
        };
        x + h
    }
}

/// Whether an AAD layer or block on `h`, `z_attr` and `z_id` takes the fused host kernel: f32 maps on
/// flex outside autodiff with the CPU kernels and `fused_aad` on, and the attribute map's batch
/// and size those of `h` (anything else goes through burn's ops, which report the mismatch).
fn host_path(h: &Tensor<4>, z_attr: &Tensor<4>, z_id: &Tensor<2>) -> bool {
    let ([n, _, hh, ww], [zn, _, zh, zw]) = (h.dims(), z_attr.dims());
    fused_aad::enabled()
        && z_id.dims()[0] == n
        && fused::fusable(h)
        && z_attr.dtype() == DType::F32
        && z_attr.device() == h.device()
        && (n, hh, ww) == (zn, zh, zw)
}
