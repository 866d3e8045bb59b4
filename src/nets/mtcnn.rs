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
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};

use super::common::PRelu;
use super::cpu_conv::conv2d_module;
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
        let [_, _, height, width] = x.dims();
        self.forward_padded(x, [height, width])
    }

    /// PNet on an input whose top-left `valid` (height, width) is the image and whose rest is
    /// padding, e.g. up to a [`pnet_bucket`] size so that every pyramid level of every photo runs
    /// the same few GPU kernels instead of compiling and tuning its own. The top-left
    /// [`pnet_grid`] of the result equals `forward` on the valid input alone: the unpadded
    /// convolutions read no padding there, and the ceil-mode pool, whose last window may overhang
    /// the valid border, sees the padded part of conv1's output as a huge negative number, so it
    /// takes the maximum over the valid part as the unpadded pool does. The rest of the grid is
    /// meaningless. `valid` is at least 12×12 (a pyramid level's least) and at most the input.
    pub fn forward_padded(&self, x: Tensor<4>, valid: [usize; 2]) -> PNetOutput {
        let [_, _, height, width] = x.dims();
        let x = self.prelu1.forward(self.conv1.forward(x));
        let x = if valid == [height, width] {
            x
        } else {
            let device = x.device();
            x + pool_border_mask([height - 2, width - 2], [valid[0] - 2, valid[1] - 2], &device)
        };
        let x = self.pool1.forward(x);
        let x = self.prelu2.forward(self.conv2.forward(x));
        let features = self.prelu3.forward(self.conv3.forward(x));
        let prob = softmax(self.conv4_1.forward(features.clone()), 1);
        let reg = self.conv4_2.forward(features.clone());
        PNetOutput { reg, prob, features }
    }
}

/// What the pool sees beyond conv1's valid output: far below any activation, yet finite, so the
/// meaningless part of the grid holds no NaN that a reader could trip over.
const PADDING_ACTIVATION: f32 = -1.0e30;

/// A (1, 1, h, w) map added to conv1's output: 0 over the valid top-left `valid` region,
/// [`PADDING_ACTIVATION`] elsewhere.
fn pool_border_mask(
    [height, width]: [usize; 2],
    [valid_h, valid_w]: [usize; 2],
    device: &Device,
) -> Tensor<4> {
    let mut mask = vec![PADDING_ACTIVATION; height * width];
    for row in mask.chunks_exact_mut(width).take(valid_h) {
        row[..valid_w].fill(0.0);
    }
    Tensor::from_data(TensorData::new(mask, [1, 1, height, width]), device)
}

/// PNet's output grid for an input of `height × width` (each at least 12): three unpadded 3×3
/// convolutions around a 2×2 ceil-mode pool, `ceil((n - 4) / 2) - 3`.
pub fn pnet_grid(height: usize, width: usize) -> (usize, usize) {
    let side = |n: usize| (n.max(12) - 3) / 2 - 3;
    (side(height), side(width))
}

/// The padded side that a pyramid level of side `n` runs at on a GPU: the smallest of 16, 24,
/// 32, 48, 64, 96, … (2^k and 1.5·2^k) that holds it. A GPU runtime compiles and tunes kernels
/// per shape; with these buckets a whole pyramid and every later photo share a few shapes, for
/// at most 50% more rows or columns of PNet's (cheap) work.
pub fn pnet_bucket(n: usize) -> usize {
    let mut side = 16;
    loop {
        if n <= side {
            return side;
        }
        if n <= side + side / 2 {
            return side + side / 2;
        }
        side *= 2;
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
        let x = self
            .pool1
            .forward(self.prelu1.forward(conv2d_module(&self.conv1, x)));
        let x = self
            .pool2
            .forward(self.prelu2.forward(conv2d_module(&self.conv2, x)));
        let x = self.prelu3.forward(conv2d_module(&self.conv3, x));
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
        let x = self
            .pool1
            .forward(self.prelu1.forward(conv2d_module(&self.conv1, x)));
        let x = self
            .pool2
            .forward(self.prelu2.forward(conv2d_module(&self.conv2, x)));
        let x = self
            .pool3
            .forward(self.prelu3.forward(conv2d_module(&self.conv3, x)));
        let x = self.prelu4.forward(conv2d_module(&self.conv4, x));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic values in [-1, 1), as a normalised crop.
    fn image(height: usize, width: usize, seed: u32) -> Vec<f32> {
        let mut state = seed;
        (0..3 * height * width)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state as f32 / u32::MAX as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn host(x: Tensor<4>) -> (Vec<usize>, Vec<f32>) {
        (
            x.dims().to_vec(),
            x.into_data().try_to_vec::<f32>().expect("f32 values"),
        )
    }

    /// The top-left `rows × cols` of every (N, C) plane of a (N, C, H, W) map.
    fn top_left((dims, values): &(Vec<usize>, Vec<f32>), rows: usize, cols: usize) -> Vec<f32> {
        let (h, w) = (dims[2], dims[3]);
        values
            .chunks_exact(h * w)
            .flat_map(|plane| {
                plane
                    .chunks_exact(w)
                    .take(rows)
                    .flat_map(|row| row[..cols].to_vec())
            })
            .collect()
    }

    fn worst(a: &[f32], b: &[f32]) -> f32 {
        crate::parity::max_abs_diff(a, b)
    }

    #[test]
    fn the_grid_formula_matches_the_network() {
        let device = Device::flex();
        let pnet = PNet::new(&device);
        for (h, w) in [(12, 12), (13, 17), (20, 31), (61, 83)] {
            let x = Tensor::from_data(TensorData::new(image(h, w, 7), [1, 3, h, w]), &device);
            let [_, _, gh, gw] = pnet.forward(x).prob.dims();
            assert_eq!(pnet_grid(h, w), (gh, gw), "{h}×{w}");
        }
    }

    #[test]
    fn buckets_are_powers_of_two_and_one_and_a_half_times_them() {
        let got: Vec<usize> = [1, 12, 16, 17, 24, 25, 33, 49, 97, 308, 1000]
            .iter()
            .map(|&n| pnet_bucket(n))
            .collect();
        assert_eq!(got, [16, 16, 16, 24, 24, 32, 48, 64, 128, 384, 1024]);
    }

    /// Padded to a bucket, PNet gives the unpadded output over the level's grid, odd sides (whose
    /// last ceil-mode pool window overhangs the border) included; without the border mask it would
    /// not, which is what the mask is for.
    #[test]
    fn a_padded_level_gives_the_unpadded_output_in_its_grid() {
        let device = Device::flex();
        let pnet = PNet::new(&device);
        for (h, w) in [(12, 12), (13, 17), (20, 31), (33, 16), (61, 83)] {
            let level = crate::face::resample::Planes {
                channels: 3,
                height: h,
                width: w,
                data: image(h, w, 11 + h as u32),
            };
            let (bh, bw) = (pnet_bucket(h), pnet_bucket(w));
            let padded = level.padded_to(bh, bw);
            let exact = pnet.forward(Tensor::from_data(
                TensorData::new(level.data, [1, 3, h, w]),
                &device,
            ));
            let input = Tensor::from_data(TensorData::new(padded.data, [1, 3, bh, bw]), &device);
            let masked = pnet.forward_padded(input.clone(), [h, w]);
            let (gh, gw) = pnet_grid(h, w);
            let pairs = [
                ("prob", exact.prob, masked.prob),
                ("reg", exact.reg, masked.reg),
                ("features", exact.features, masked.features),
            ];
            for (name, exact, masked) in pairs {
                let exact = host(exact);
                assert_eq!(exact.0[2..], [gh, gw], "{name} of {h}×{w}");
                let masked = top_left(&host(masked), gh, gw);
                let diff = worst(&exact.1, &masked);
                assert!(
                    diff <= 1e-5,
                    "{name} of {h}×{w} padded to {bh}×{bw}: differs by {diff}"
                );
            }
            // The same padding seen as image: an odd side's last pooled row or column now
            // includes conv1 outputs of the padding.
            if h % 2 == 1 || w % 2 == 1 {
                let exact = host(
                    pnet.forward(Tensor::from_data(
                        TensorData::new(image(h, w, 11 + h as u32), [1, 3, h, w]),
                        &device,
                    ))
                    .features,
                );
                let unmasked = top_left(&host(pnet.forward(input).features), gh, gw);
                assert!(
                    worst(&exact.1, &unmasked) > 1e-3,
                    "{h}×{w}: padding alone changed nothing"
                );
            }
        }
    }
}
