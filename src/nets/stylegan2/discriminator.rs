//! rosinality's `Discriminator`: a fromRGB 1×1 conv, one residual block per halving of the
//! resolution (blur-downsampled conv and skip), the minibatch-stddev feature, a 3×3 conv at 4×4 and
//! two linear layers down to one logit per sample.
//!
//! The checkpoint nests `nn.Sequential`s (`convs.1.conv2.1.weight`); burn fields cannot be numbers,
//! so the module uses named fields and [`Discriminator::key_table`] says, from the module itself,
//! which checkpoint key each parameter path holds. Loading, gradients and optimiser state all go
//! through that one table.

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};

use super::StyleGanError;
use super::layers::{EqualConv2d, EqualLinear, FusedLeakyRelu};
use super::upfirdn::{downsample_blur_pad, upfirdn2d};
use crate::weights::TensorMap;
use crate::weights::load::{LoadError, Tolerated, load_module};

/// Everything that fixes the discriminator's parameter shapes, plus the minibatch-stddev grouping
/// (not stored in a checkpoint; rosinality hard-codes 4 and 1).
#[derive(Debug, Clone, PartialEq)]
pub struct DiscriminatorConfig {
    /// Input side in pixels, a power of two ≥ 8.
    pub size: usize,
    /// Feature channels at each resolution 4, 8, …, size (D's widths differ from G's).
    pub channels: BTreeMap<usize, usize>,
    /// The 1-D blur taps before normalisation (`[1, 3, 3, 1]`).
    pub blur_kernel: Vec<f32>,
    pub stddev_group: usize,
    pub stddev_feat: usize,
}

impl DiscriminatorConfig {
    /// The config read off a discriminator state dict (keys without the `d.` prefix): the size from
    /// the number of residual blocks, every width from a weight's shape, the blur taps from the
    /// stored blur kernel (its row sums are proportional to the taps).
    pub fn from_state(
        state: &TensorMap,
        stddev_group: usize,
        stddev_feat: usize,
    ) -> Result<Self, StyleGanError> {
        let shape = |key: &str| -> Result<Vec<usize>, StyleGanError> {
            state
                .get(key)
                .map(|t| t.shape.clone())
                .ok_or_else(|| StyleGanError::Config(format!("the discriminator has no {key}")))
        };
        let from_rgb = shape("convs.0.0.weight")?;
        let blocks = (1..)
            .take_while(|i| state.get(&format!("convs.{i}.conv1.0.weight")).is_some())
            .count();
        if blocks == 0 || from_rgb.len() != 4 {
            return Err(StyleGanError::Config(
                "no residual blocks (convs.1.conv1.0.weight): not a StyleGAN2 discriminator".into(),
            ));
        }
        let size = 4usize
            .checked_shl(blocks as u32)
            .filter(|s| *s <= 1 << 16)
            .ok_or_else(|| StyleGanError::Config(format!("{blocks} residual blocks is not plausible")))?;
        let mut channels = BTreeMap::from([(size, from_rgb[0])]);
        for i in 1..=blocks {
            let conv2 = shape(&format!("convs.{i}.conv2.1.weight"))?;
            channels.insert(size >> i, conv2[0]);
        }
        let mut blur_kernel = vec![1.0, 3.0, 3.0, 1.0];
        if let Some(kernel) = state.get("convs.1.conv2.0.kernel")
            && let [rows, cols] = kernel.shape[..]
            && rows == cols
            && rows > 0
        {
            let sums: Vec<f32> = kernel.to_f32().chunks(cols).map(|r| r.iter().sum()).collect();
            if let Some(&first) = sums.first()
                && first.abs() > f32::EPSILON
                && sums.iter().all(|s| s.is_finite())
            {
                blur_kernel = sums.iter().map(|s| s / first).collect();
            }
        }
        let config = DiscriminatorConfig {
            size,
            channels,
            blur_kernel,
            stddev_group,
            stddev_feat,
        };
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), StyleGanError> {
        if self.size < 8 || !self.size.is_power_of_two() {
            return Err(StyleGanError::Config(format!(
                "discriminator size {} is not a power of two ≥ 8",
                self.size
            )));
        }
        let mut r = 4;
        while r <= self.size {
            if self.channels.get(&r).is_none_or(|&c| c == 0) {
                return Err(StyleGanError::Config(format!(
                    "no discriminator channel count for resolution {r}"
                )));
            }
            r *= 2;
        }
        let c4 = self.channels[&4];
        if self.stddev_group == 0 || self.stddev_feat == 0 || !c4.is_multiple_of(self.stddev_feat) {
            return Err(StyleGanError::Config(format!(
                "stddev group {} / feature {} do not fit {c4} channels at 4×4",
                self.stddev_group, self.stddev_feat
            )));
        }
        let sum: f32 = self.blur_kernel.iter().sum();
        if self.blur_kernel.is_empty() || sum == 0.0 {
            return Err(StyleGanError::Config("blur_kernel sums to zero".into()));
        }
        Ok(())
    }

    fn blur_taps(&self) -> Vec<f32> {
        let sum: f32 = self.blur_kernel.iter().sum();
        self.blur_kernel.iter().map(|t| t / sum).collect()
    }
}

/// `ConvLayer`: [Blur, stride-2] EqualConv2d [+ FusedLeakyReLU]. In the checkpoint the conv is
/// child 1 when there is a blur (child 0, a buffer only) and child 0 otherwise.
#[derive(Module, Debug)]
pub struct ConvLayer {
    pub conv: EqualConv2d,
    pub act: Option<FusedLeakyRelu>,
    pub downsample: bool,
    /// Normalised 1-D blur taps (used when downsampling).
    pub blur_taps: Vec<f32>,
}

impl ConvLayer {
    fn new(
        input: usize,
        output: usize,
        kernel: usize,
        downsample: bool,
        activate: bool,
        taps: &[f32],
        device: &Device,
    ) -> Self {
        let (stride, padding) = if downsample { (2, 0) } else { (1, kernel / 2) };
        ConvLayer {
            conv: EqualConv2d::new(input, output, kernel, stride, padding, device),
            act: activate.then(|| FusedLeakyRelu::new(output, device)),
            downsample,
            blur_taps: taps.to_vec(),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = if self.downsample {
            let k = self.conv.weight.dims()[2];
            let pad = downsample_blur_pad(self.blur_taps.len(), k, 2);
            upfirdn2d(x, &self.blur_taps, 1, 1, pad)
        } else {
            x
        };
        let y = self.conv.forward(x);
        match &self.act {
            Some(act) => act.forward(y),
            None => y,
        }
    }

    /// (module path, checkpoint key) of each parameter, under `path` / `key`.
    fn keys(&self, path: &str, key: &str, out: &mut Vec<(String, String)>) {
        let conv = usize::from(self.downsample);
        out.push((format!("{path}.conv.weight"), format!("{key}.{conv}.weight")));
        if self.act.is_some() {
            out.push((format!("{path}.act.bias"), format!("{key}.{}.bias", conv + 1)));
        }
    }
}

/// `ResBlock`: `(conv2(conv1(x)) + skip(x)) / √2`, halving the resolution.
#[derive(Module, Debug)]
pub struct ResBlock {
    pub conv1: ConvLayer,
    pub conv2: ConvLayer,
    pub skip: ConvLayer,
}

impl ResBlock {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let out = self.conv2.forward(self.conv1.forward(x.clone()));
        (out + self.skip.forward(x)).mul_scalar(std::f64::consts::FRAC_1_SQRT_2)
    }
}

/// Activations recorded by [`Discriminator::forward_traced`], named like the fixture's
/// `inter.*` (`convs.J`, `stddev_cat`, `final_conv`, `final_linear.0`).
pub type DTrace = Vec<(String, Tensor<4>)>;

#[derive(Module, Debug)]
pub struct Discriminator {
    /// `convs.0`: the 1×1 fromRGB layer.
    pub from_rgb: ConvLayer,
    /// `convs.1…`: one residual block per halving, size → 4.
    pub blocks: Vec<ResBlock>,
    pub final_conv: ConvLayer,
    /// `final_linear.0` (activated) and `final_linear.1` (the logit).
    pub final_linear: EqualLinear,
    pub final_out: EqualLinear,
    pub stddev_group: usize,
    pub stddev_feat: usize,
}

impl Discriminator {
    /// A discriminator of the given shape with zero weights (load a checkpoint into it).
    pub fn new(config: &DiscriminatorConfig, device: &Device) -> Result<Discriminator, StyleGanError> {
        config.validate()?;
        let taps = config.blur_taps();
        let ch = |r: usize| config.channels[&r];
        let mut blocks = Vec::new();
        let mut r = config.size;
        while r > 4 {
            let (input, output) = (ch(r), ch(r / 2));
            blocks.push(ResBlock {
                conv1: ConvLayer::new(input, input, 3, false, true, &taps, device),
                conv2: ConvLayer::new(input, output, 3, true, true, &taps, device),
                skip: ConvLayer::new(input, output, 1, true, false, &taps, device),
            });
            r /= 2;
        }
        let c4 = ch(4);
        Ok(Discriminator {
            from_rgb: ConvLayer::new(3, ch(config.size), 1, false, true, &taps, device),
            blocks,
            final_conv: ConvLayer::new(c4 + config.stddev_feat, c4, 3, false, true, &taps, device),
            final_linear: EqualLinear::new(c4 * 16, c4, 1.0, true, device),
            final_out: EqualLinear::new(c4, 1, 1.0, false, device),
            stddev_group: config.stddev_group,
            stddev_feat: config.stddev_feat,
        })
    }

    /// Input side in pixels.
    pub fn size(&self) -> usize {
        4 << self.blocks.len()
    }

    /// Every parameter as (burn module path, checkpoint key), in `Discriminator.parameters()`
    /// order (the order of torch's optimiser state).
    pub fn key_table(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        self.from_rgb.keys("from_rgb", "convs.0", &mut out);
        for (i, block) in self.blocks.iter().enumerate() {
            let (path, key) = (format!("blocks.{i}"), format!("convs.{}", i + 1));
            block
                .conv1
                .keys(&format!("{path}.conv1"), &format!("{key}.conv1"), &mut out);
            block
                .conv2
                .keys(&format!("{path}.conv2"), &format!("{key}.conv2"), &mut out);
            block
                .skip
                .keys(&format!("{path}.skip"), &format!("{key}.skip"), &mut out);
        }
        self.final_conv.keys("final_conv", "final_conv", &mut out);
        for (path, key) in [
            ("final_linear", "final_linear.0"),
            ("final_out", "final_linear.1"),
        ] {
            for field in ["weight", "bias"] {
                out.push((format!("{path}.{field}"), format!("{key}.{field}")));
            }
        }
        out
    }

    /// Loads a discriminator state dict (keys without the `d.` prefix; `file` names it in errors,
    /// which list the file's own key names under `prefix`). The blur kernels are buffers rebuilt
    /// from the config, so they are not loaded.
    pub fn load(self, state: &TensorMap, file: &Path, prefix: &str) -> Result<Discriminator, LoadError> {
        let table = self.key_table();
        let to_path: BTreeMap<&str, &str> = table.iter().map(|(p, k)| (k.as_str(), p.as_str())).collect();
        let to_key: BTreeMap<&str, &str> = table.iter().map(|(p, k)| (p.as_str(), k.as_str())).collect();
        let mut renamed = TensorMap::default();
        for (key, tensor) in &state.tensors {
            // Unknown keys keep their name and come back as "unexpected".
            let path = to_path.get(key.as_str()).map_or(key.clone(), |p| p.to_string());
            renamed.tensors.insert(path, tensor.clone());
        }
        load_module(self, &renamed, file, &Tolerated::suffixes(&[".kernel"])).map_err(|e| {
            let key = |path: &str| format!("{prefix}{}", to_key.get(path).copied().unwrap_or(path));
            LoadError {
                file: e.file,
                missing: e.missing.iter().map(|p| key(p)).collect(),
                unexpected: e.unexpected.iter().map(|p| key(p)).collect(),
                mismatched: e
                    .mismatched
                    .into_iter()
                    .map(|m| match m.split_once(" (file ") {
                        Some((path, rest)) => format!("{} (file {rest}", key(path)),
                        None => m,
                    })
                    .collect(),
            }
        })
    }

    /// Images `[B, 3, size, size]` in [−1, 1] → logits `[B, 1]`.
    pub fn forward(&self, x: Tensor<4>) -> Result<Tensor<2>, StyleGanError> {
        self.forward_traced(x, None)
    }

    /// As [`forward`](Self::forward), recording the intermediate activations when `trace` is given.
    pub fn forward_traced(
        &self,
        x: Tensor<4>,
        mut trace: Option<&mut DTrace>,
    ) -> Result<Tensor<2>, StyleGanError> {
        let [batch, channels, h, w] = x.dims();
        if channels != 3 || h != self.size() || w != self.size() {
            return Err(StyleGanError::Input(format!(
                "the discriminator takes [B, 3, {s}, {s}] images, got {:?}",
                x.dims(),
                s = self.size()
            )));
        }
        let group = batch.min(self.stddev_group);
        if batch == 0 || !batch.is_multiple_of(group) {
            return Err(StyleGanError::Input(format!(
                "a batch of {batch} does not split into minibatch-stddev groups of {group}"
            )));
        }
        let mut record = |name: String, t: &Tensor<4>| {
            if let Some(trace) = trace.as_deref_mut() {
                trace.push((name, t.clone()));
            }
        };
        let mut out = self.from_rgb.forward(x);
        record("convs.0".into(), &out);
        for (i, block) in self.blocks.iter().enumerate() {
            out = block.forward(out);
            record(format!("convs.{}", i + 1), &out);
        }
        let out = Tensor::cat(vec![out.clone(), self.minibatch_stddev(out, group)], 1);
        record("stddev_cat".into(), &out);
        let out = self.final_conv.forward(out);
        record("final_conv".into(), &out);
        let [_, c, h, w] = out.dims();
        let features = self.final_linear.forward(out.reshape([batch, c * h * w]));
        let [_, f] = features.dims();
        record(
            "final_linear.0".into(),
            &features.clone().reshape([batch, f, 1, 1]),
        );
        Ok(self.final_out.forward(features))
    }

    /// rosinality's minibatch stddev: `out.view(group, -1, F, C/F, H, W)` puts sample
    /// `g·M + m` in row `g` of column `m`, so the samples sharing a statistic are those with the
    /// same `b mod M` (a stride, not contiguous runs). Per column and feature group: the
    /// population std over the group, averaged over channels and pixels, broadcast back.
    ///
    /// The group mean is written as a `[B, B]` averaging matrix (`1/G` where `b ≡ b' mod M`)
    /// applied to the flattened maps, which also hands each sample its group's statistic
    /// directly. Plain matmuls and last-axis means keep every backend on well-trodden kernels:
    /// the 6-D view-and-reduce form gave wrong statistics on wgpu (Mesa's lavapipe) whenever a
    /// batch held more than one group column, and matmuls differentiate to any order.
    fn minibatch_stddev(&self, out: Tensor<4>, group: usize) -> Tensor<4> {
        let [batch, c, h, w] = out.dims();
        let (m, f) = (batch / group, self.stddev_feat);
        let weights: Vec<f32> = (0..batch * batch)
            .map(|i| {
                let (row, col) = (i / batch, i % batch);
                if row % m == col % m {
                    1.0 / group as f32
                } else {
                    0.0
                }
            })
            .collect();
        let average = Tensor::<2>::from_data(TensorData::new(weights, [batch, batch]), &out.device());
        let x = out.reshape([batch, c * h * w]);
        let centered = x.clone() - average.clone().matmul(x);
        let std = average.matmul(centered.square()).add_scalar(1e-8).sqrt();
        let std = std
            .reshape([batch, f, (c / f) * h * w])
            .mean_dim(2)
            .reshape([batch, f, 1, 1]);
        std.repeat_dim(2, h).repeat_dim(3, w)
    }
}
