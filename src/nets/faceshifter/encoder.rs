//! `MLAttrEncoder`: a U-Net over the target face whose decoder levels are the attribute maps.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::tensor::Device;
use burn::tensor::Tensor;
use burn::tensor::activation::leaky_relu;

use super::config::{AeiConfig, DECODER_DECONVS, ENCODER_CONVS};
use crate::nets::cpu_resize;
use crate::nets::fused::{conv_bn, conv_transpose_bn};

/// The reference's LeakyReLU slope, in the encoder and the decoder alike.
const LEAKY_SLOPE: f64 = 0.1;

/// `conv4x4`: Conv4×4 s2 p1 (no bias) → BN → LeakyReLU; checkpoint children `.0` and `.1`.
#[derive(Module, Debug)]
pub struct DownBlock {
    pub conv: Conv2d,
    pub bn: BatchNorm,
}

impl DownBlock {
    fn new(cin: usize, cout: usize, device: &Device) -> DownBlock {
        DownBlock {
            conv: Conv2dConfig::new([cin, cout], [4, 4])
                .with_stride([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_bias(false)
                .init(device),
            bn: BatchNormConfig::new(cout).init(device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        leaky_relu(conv_bn(&self.conv, &self.bn, x), LEAKY_SLOPE)
    }
}

/// `deconv4x4`: ConvTranspose4×4 s2 p1 (no bias) → BN → LeakyReLU, then `cat((up, skip), 1)`.
#[derive(Module, Debug)]
pub struct UpBlock {
    pub deconv: ConvTranspose2d,
    pub bn: BatchNorm,
}

impl UpBlock {
    fn new(cin: usize, cout: usize, device: &Device) -> UpBlock {
        UpBlock {
            deconv: ConvTranspose2dConfig::new([cin, cout], [4, 4])
                .with_stride([2, 2])
                .with_padding([1, 1])
                .with_bias(false)
                .init(device),
            bn: BatchNormConfig::new(cout).init(device),
        }
    }

    fn forward(&self, x: Tensor<4>, skip: Tensor<4>) -> Tensor<4> {
        let up = leaky_relu(conv_transpose_bn(&self.deconv, &self.bn, x), LEAKY_SLOPE);
        // The upsampled tensor comes first: the generator's γ/β convs were trained on this order.
        Tensor::cat(vec![up, skip], 1)
    }
}

/// The attribute encoder; field names follow the checkpoint (`encoder.conv1.0.weight` is
/// `conv1.conv.weight` after the Sequential rename).
#[derive(Module, Debug)]
pub struct MlAttrEncoder {
    pub conv1: DownBlock,
    pub conv2: DownBlock,
    pub conv3: DownBlock,
    pub conv4: DownBlock,
    pub conv5: DownBlock,
    pub conv6: DownBlock,
    pub conv7: DownBlock,
    pub deconv1: UpBlock,
    pub deconv2: UpBlock,
    pub deconv3: UpBlock,
    pub deconv4: UpBlock,
    pub deconv5: UpBlock,
    pub deconv6: UpBlock,
}

/// Bilinear ×2 with `align_corners=True`, the only resize AEI-Net uses.
pub fn upsample2(x: Tensor<4>) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    cpu_resize::resize_bilinear_aligned(x, [2 * h, 2 * w])
}

impl MlAttrEncoder {
    pub fn new(config: &AeiConfig, device: &Device) -> MlAttrEncoder {
        let e = &config.encoder_widths;
        let d = &config.decoder_widths;
        let down = |k: usize| DownBlock::new(if k == 0 { 3 } else { e[k - 1] }, e[k], device);
        // deconv1 reads z_attr1; deconv{k+1} reads the previous level's concatenation.
        let attr = config.attr_channels();
        let up = |k: usize| UpBlock::new(attr[k], d[k], device);
        MlAttrEncoder {
            conv1: down(0),
            conv2: down(1),
            conv3: down(2),
            conv4: down(3),
            conv5: down(4),
            conv6: down(5),
            conv7: down(6),
            deconv1: up(0),
            deconv2: up(1),
            deconv3: up(2),
            deconv4: up(3),
            deconv5: up(4),
            deconv6: up(5),
        }
    }

    /// (N, 3, 256, 256) → z_attr1 (2 px) … z_attr8 (256 px).
    pub fn forward(&self, x: Tensor<4>) -> Vec<Tensor<4>> {
        let downs: [&DownBlock; ENCODER_CONVS] = [
            &self.conv1,
            &self.conv2,
            &self.conv3,
            &self.conv4,
            &self.conv5,
            &self.conv6,
            &self.conv7,
        ];
        let ups: [&UpBlock; DECODER_DECONVS] = [
            &self.deconv1,
            &self.deconv2,
            &self.deconv3,
            &self.deconv4,
            &self.deconv5,
            &self.deconv6,
        ];
        let mut skips = Vec::with_capacity(ENCODER_CONVS - 1);
        let mut x = x;
        for (k, block) in downs.into_iter().enumerate() {
            if k > 0 {
                skips.push(x.clone());
            }
            x = block.forward(x);
        }
        // x is z_attr1; the decoder meets the skips feat6..feat1 on its way up.
        let mut attrs = Vec::with_capacity(DECODER_DECONVS + 2);
        attrs.push(x.clone());
        for (block, skip) in ups.into_iter().zip(skips.into_iter().rev()) {
            x = block.forward(x, skip);
            attrs.push(x.clone());
        }
        attrs.push(upsample2(x));
        attrs
    }
}
