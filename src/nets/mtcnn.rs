//! MTCNN's three networks (Zhang et al. 2016) in facenet-pytorch's layout and weights.
//!
//! Inputs are RGB crops normalised as `(v - 127.5) / 128`. Convolutions are unpadded, pools use
//! ceil mode, and every PReLU has one slope per channel. Before the dense layers, RNet and ONet
//! flatten their maps as (N, W, H, C): the weights were converted from a TF/Caffe model whose
//! images were transposed, and a plain NCHW flatten gives wrong answers.

use std::path::Path;

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::Device;
use burn::tensor::Tensor;
use burn::tensor::activation::softmax;

use super::common::PRelu;
use crate::weights::TensorMap;
use crate::weights::load::{LoadError, Tolerated, load_module};

fn conv(i: usize, o: usize, k: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([i, o], [k, k]).init(device)
}

fn pool(k: usize, s: usize) -> MaxPool2d {
    MaxPool2dConfig::new([k, k])
        .with_strides([s, s])
        .with_ceil_mode(true)
        .init()
}

/// (N, C, H, W) → (N, W·H·C) in the (N, W, H, C) order the dense weights expect.
fn flatten_whc(x: Tensor<4>) -> Tensor<2> {
    let [n, c, h, w] = x.dims();
    x.permute([0, 3, 2, 1]).reshape([n, w * h * c])
}

/// The proposal network: fully convolutional, 12×12 receptive field, output stride 2.
#[derive(Module, Debug)]
pub struct PNet {
    pub conv1: Conv2d,
    pub prelu1: PRelu,
    pub pool1: MaxPool2d,
    pub conv2: Conv2d,
    pub prelu2: PRelu,
    pub conv3: Conv2d,
    pub prelu3: PRelu,
    pub conv4_1: Conv2d,
    pub conv4_2: Conv2d,
}

/// PNet's outputs over a whole pyramid level.
pub struct PNetOutput {
    /// (N, 4, h, w) box offsets.
    pub reg: Tensor<4>,
    /// (N, 2, h, w) softmax; channel 1 is the face probability.
    pub prob: Tensor<4>,
    /// (N, 32, h, w) activation after conv3, kept for parity checks.
    pub features: Tensor<4>,
}

impl PNet {
    pub fn new(device: &Device) -> PNet {
        PNet {
            conv1: conv(3, 10, 3, device),
            prelu1: PRelu::new(10, device),
            pool1: pool(2, 2),
            conv2: conv(10, 16, 3, device),
            prelu2: PRelu::new(16, device),
            conv3: conv(16, 32, 3, device),
            prelu3: PRelu::new(32, device),
            conv4_1: conv(32, 2, 1, device),
            conv4_2: conv(32, 4, 1, device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> PNetOutput {
        let x = self.pool1.forward(self.prelu1.forward(self.conv1.forward(x)));
        let x = self.prelu2.forward(self.conv2.forward(x));
        let features = self.prelu3.forward(self.conv3.forward(x));
        let prob = softmax(self.conv4_1.forward(features.clone()), 1);
        let reg = self.conv4_2.forward(features.clone());
        PNetOutput { reg, prob, features }
    }
}

/// The refinement network, on 24×24 crops.
#[derive(Module, Debug)]
pub struct RNet {
    pub conv1: Conv2d,
    pub prelu1: PRelu,
    pub pool1: MaxPool2d,
    pub conv2: Conv2d,
    pub prelu2: PRelu,
    pub pool2: MaxPool2d,
    pub conv3: Conv2d,
    pub prelu3: PRelu,
    pub dense4: Linear,
    pub prelu4: PRelu,
    pub dense5_1: Linear,
    pub dense5_2: Linear,
}

/// RNet's outputs for a batch of crops.
pub struct RNetOutput {
    /// (N, 4) box offsets.
    pub reg: Tensor<2>,
    /// (N, 2) softmax; column 1 is the face probability.
    pub prob: Tensor<2>,
    /// (N, 576) input of dense4, kept for parity checks.
    pub flat: Tensor<2>,
}

impl RNet {
    pub fn new(device: &Device) -> RNet {
        RNet {
            conv1: conv(3, 28, 3, device),
            prelu1: PRelu::new(28, device),
            pool1: pool(3, 2),
            conv2: conv(28, 48, 3, device),
            prelu2: PRelu::new(48, device),
            pool2: pool(3, 2),
            conv3: conv(48, 64, 2, device),
            prelu3: PRelu::new(64, device),
            dense4: LinearConfig::new(576, 128).init(device),
            prelu4: PRelu::new(128, device),
            dense5_1: LinearConfig::new(128, 2).init(device),
            dense5_2: LinearConfig::new(128, 4).init(device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> RNetOutput {
        let x = self.pool1.forward(self.prelu1.forward(self.conv1.forward(x)));
        let x = self.pool2.forward(self.prelu2.forward(self.conv2.forward(x)));
        let x = self.prelu3.forward(self.conv3.forward(x));
        let flat = flatten_whc(x);
        let x = self.prelu4.forward(self.dense4.forward(flat.clone()));
        let prob = softmax(self.dense5_1.forward(x.clone()), 1);
        let reg = self.dense5_2.forward(x);
        RNetOutput { reg, prob, flat }
    }
}

/// The output network, on 48×48 crops, with five landmarks.
#[derive(Module, Debug)]
pub struct ONet {
    pub conv1: Conv2d,
    pub prelu1: PRelu,
    pub pool1: MaxPool2d,
    pub conv2: Conv2d,
    pub prelu2: PRelu,
    pub pool2: MaxPool2d,
    pub conv3: Conv2d,
    pub prelu3: PRelu,
    pub pool3: MaxPool2d,
    pub conv4: Conv2d,
    pub prelu4: PRelu,
    pub dense5: Linear,
    pub prelu5: PRelu,
    pub dense6_1: Linear,
    pub dense6_2: Linear,
    pub dense6_3: Linear,
}

/// ONet's outputs for a batch of crops.
pub struct ONetOutput {
    /// (N, 4) box offsets.
    pub reg: Tensor<2>,
    /// (N, 10) landmarks relative to the box: five x then five y.
    pub landmarks: Tensor<2>,
    /// (N, 2) softmax; column 1 is the face probability.
    pub prob: Tensor<2>,
    /// (N, 1152) input of dense5, kept for parity checks.
    pub flat: Tensor<2>,
}

impl ONet {
    pub fn new(device: &Device) -> ONet {
        ONet {
            conv1: conv(3, 32, 3, device),
            prelu1: PRelu::new(32, device),
            pool1: pool(3, 2),
            conv2: conv(32, 64, 3, device),
            prelu2: PRelu::new(64, device),
            pool2: pool(3, 2),
            conv3: conv(64, 64, 3, device),
            prelu3: PRelu::new(64, device),
            pool3: pool(2, 2),
            conv4: conv(64, 128, 2, device),
            prelu4: PRelu::new(128, device),
            dense5: LinearConfig::new(1152, 256).init(device),
            prelu5: PRelu::new(256, device),
            dense6_1: LinearConfig::new(256, 2).init(device),
            dense6_2: LinearConfig::new(256, 4).init(device),
            dense6_3: LinearConfig::new(256, 10).init(device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> ONetOutput {
        let x = self.pool1.forward(self.prelu1.forward(self.conv1.forward(x)));
        let x = self.pool2.forward(self.prelu2.forward(self.conv2.forward(x)));
        let x = self.pool3.forward(self.prelu3.forward(self.conv3.forward(x)));
        let x = self.prelu4.forward(self.conv4.forward(x));
        let flat = flatten_whc(x);
        let x = self.prelu5.forward(self.dense5.forward(flat.clone()));
        let prob = softmax(self.dense6_1.forward(x.clone()), 1);
        let reg = self.dense6_2.forward(x.clone());
        let landmarks = self.dense6_3.forward(x);
        ONetOutput {
            reg,
            landmarks,
            prob,
            flat,
        }
    }
}

/// The three networks together.
#[derive(Debug)]
pub struct MtcnnNets {
    pub pnet: PNet,
    pub rnet: RNet,
    pub onet: ONet,
}

impl MtcnnNets {
    /// Builds the networks from the state dicts of `pnet.pt`, `rnet.pt` and `onet.pt`
    /// (the paths only name the files in errors).
    pub fn from_state_dicts(
        [pnet, rnet, onet]: [(&TensorMap, &Path); 3],
        device: &Device,
    ) -> Result<MtcnnNets, LoadError> {
        let none = Tolerated::none();
        Ok(MtcnnNets {
            pnet: load_module(PNet::new(device), pnet.0, pnet.1, &none)?,
            rnet: load_module(RNet::new(device), rnet.0, rnet.1, &none)?,
            onet: load_module(ONet::new(device), onet.0, onet.1, &none)?,
        })
    }
}
