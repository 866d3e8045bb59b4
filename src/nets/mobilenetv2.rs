//! MobileNetV2 (Sandler et al. 2018) in torchvision's layout, loading its ImageNet checkpoints
//! (IMAGENET1K_V1 and V2 share one layout) and 2-class face/no-face fine-tunes of them.
//!
//! torchvision builds everything from `nn.Sequential`s; here each one is a `Vec` of enum
//! elements (burn skips enum variant names in paths), parameter-free ReLU6 and Dropout included,
//! so every key (`features.2.conv.1.0.weight`, `classifier.1.bias`) is the checkpoint's own.
//! Inputs are ImageNet-normalised RGB, NCHW; see [`preprocess`] for the presets.

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::{Module, Param};
use burn::nn::activation::Relu6;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{
    BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Initializer, Linear, LinearConfig, PaddingConfig2d,
};
use burn::tensor::Device;
use burn::tensor::Tensor;
use serde::Deserialize;

use crate::weights::TensorMap;
use crate::weights::load::{LoadError, Tolerated, load_module};

pub mod host;
pub mod preprocess;

/// One row of torchvision's `inverted_residual_setting`: expansion t, output channels c,
/// repeats n, stride s of the first block of the group.
pub type BlockSetting = [usize; 4];

/// torchvision's ImageNet setting.
pub const IMAGENET_SETTING: [BlockSetting; 7] = [
    [1, 16, 1, 1],
    [6, 24, 2, 2],
    [6, 32, 3, 2],
    [6, 64, 4, 2],
    [6, 96, 3, 1],
    [6, 160, 3, 2],
    [6, 320, 1, 1],
];

/// The constructor arguments of `torchvision.models.MobileNetV2` that change the network.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct MobileNetV2Config {
    pub num_classes: usize,
    pub width_mult: f64,
    pub round_nearest: usize,
    /// Dropout before the classifier; only active while training.
    pub dropout: f64,
    /// `None` means [`IMAGENET_SETTING`].
    pub inverted_residual_setting: Option<Vec<BlockSetting>>,
}

impl Default for MobileNetV2Config {
    /// The released ImageNet network.
    fn default() -> MobileNetV2Config {
        MobileNetV2Config {
            num_classes: 1000,
            width_mult: 1.0,
            round_nearest: 8,
            dropout: 0.2,
            inverted_residual_setting: None,
        }
    }
}

impl MobileNetV2Config {
    /// The face/no-face screening head on the full-width network.
    pub fn face_classifier() -> MobileNetV2Config {
        MobileNetV2Config {
            num_classes: 2,
            ..MobileNetV2Config::default()
        }
    }

    /// Reads a `meta.json`-style config (torchvision's keyword arguments; `block` and `norm_layer`
    /// must be null). Absent keys take the released values.
    pub fn from_json(value: &serde_json::Value) -> Result<MobileNetV2Config, serde_json::Error> {
        for key in ["block", "norm_layer"] {
            if !value[key].is_null() {
                return Err(serde::de::Error::custom(format!(
                    "a custom {key} is not supported"
                )));
            }
        }
        let config = MobileNetV2Config::deserialize(value)?;
        if config.setting().is_empty() || config.round_nearest == 0 || config.width_mult <= 0.0 {
            return Err(serde::de::Error::custom(
                "inverted_residual_setting must be non-empty, round_nearest and width_mult positive",
            ));
        }
        Ok(config)
    }

    fn setting(&self) -> Vec<BlockSetting> {
        self.inverted_residual_setting
            .clone()
            .unwrap_or_else(|| IMAGENET_SETTING.to_vec())
    }

    /// Channels of the stem conv.
    pub fn stem_channels(&self) -> usize {
        make_divisible(32.0 * self.width_mult, self.round_nearest)
    }

    /// Channels of the last conv, which the classifier reads; only widths above 1 change it.
    pub fn last_channels(&self) -> usize {
        make_divisible(1280.0 * self.width_mult.max(1.0), self.round_nearest)
    }
}

impl MobileNetV2Config {
    /// The shape of every conv and linear weight this config builds, by checkpoint key (BatchNorm
    /// shapes follow from the convs before them).
    pub fn weight_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let mut out = Vec::new();
        let mut input = self.stem_channels();
        out.push(("features.0.0.weight".to_string(), vec![input, 3, 3, 3]));
        let mut index = 1;
        for [t, c, n, _] in self.setting() {
            let output = make_divisible(c as f64 * self.width_mult, self.round_nearest);
            for _ in 0..n {
                let hidden = input * t;
                let prefix = format!("features.{index}.conv");
                if t == 1 {
                    out.push((format!("{prefix}.0.0.weight"), vec![hidden, 1, 3, 3]));
                    out.push((format!("{prefix}.1.weight"), vec![output, hidden, 1, 1]));
                } else {
                    out.push((format!("{prefix}.0.0.weight"), vec![hidden, input, 1, 1]));
                    out.push((format!("{prefix}.1.0.weight"), vec![hidden, 1, 3, 3]));
                    out.push((format!("{prefix}.2.weight"), vec![output, hidden, 1, 1]));
                }
                input = output;
                index += 1;
            }
        }
        let last = self.last_channels();
        out.push((format!("features.{index}.0.weight"), vec![last, input, 1, 1]));
        out.push(("classifier.1.weight".to_string(), vec![self.num_classes, last]));
        out
    }

    /// The config a torchvision MobileNetV2 state dict was saved from, read off its shapes (key →
    /// shape; a `module.` prefix is ignored): the class count from the classifier, the width
    /// multiplier as the first one whose channel counts match every conv of the file. Widths that
    /// round to the same channels build the same network, so the first match is as good as any;
    /// common multipliers are tried first so the reported one is the one used in training.
    ///
    /// The block setting is torchvision's: strides leave no trace in the weights, so a custom
    /// `inverted_residual_setting` cannot be recovered and is refused by the shape check.
    pub fn infer(shapes: &BTreeMap<String, Vec<usize>>) -> Result<MobileNetV2Config, InferConfigError> {
        let get = |key: &str| {
            shapes
                .get(key)
                .or_else(|| shapes.get(&format!("module.{key}")))
                .map(Vec::as_slice)
        };
        let num_classes = match get("classifier.1.weight") {
            Some(&[classes, _]) if classes > 0 => classes,
            Some(other) => {
                return Err(InferConfigError(format!(
                    "classifier.1.weight is {other:?}, expected [num_classes, channels]"
                )));
            }
            None => {
                return Err(InferConfigError(
                    "no classifier.1.weight: not a torchvision MobileNetV2 state dict".into(),
                ));
            }
        };
        if get("features.0.0.weight").is_none() {
            return Err(InferConfigError(
                "no features.0.0.weight: not a torchvision MobileNetV2 state dict".into(),
            ));
        }
        let common = [1.0, 0.75, 0.5, 0.35, 1.4, 1.3, 0.25, 0.1, 2.0];
        let grid = (4..=1600).map(|i| i as f64 / 400.0);
        for width_mult in common.into_iter().chain(grid) {
            let config = MobileNetV2Config {
                num_classes,
                width_mult,
                ..MobileNetV2Config::default()
            };
            if config
                .weight_shapes()
                .iter()
                .all(|(key, shape)| get(key) == Some(shape.as_slice()))
            {
                return Ok(config);
            }
        }
        let stem = get("features.0.0.weight").map(|s| s.to_vec());
        Err(InferConfigError(format!(
            "no width multiplier between 0.01 and 4 gives this file's channel counts (stem {stem:?}); \
             it is not torchvision's MobileNetV2 with the ImageNet block setting"
        )))
    }
}

/// A state dict whose shapes fit no config of the network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InferConfigError(pub String);

/// torchvision's `_make_divisible`: the nearest multiple of `divisor` (at least `divisor`),
/// one step up when rounding lost more than 10%.
pub fn make_divisible(v: f64, divisor: usize) -> usize {
    let d = divisor as f64;
    let mut new_v = (((v + d / 2.0) as usize) / divisor * divisor).max(divisor);
    if (new_v as f64) < 0.9 * v {
        new_v += divisor;
    }
    new_v
}

/// An element of a conv/norm/activation `nn.Sequential`.
#[derive(Module, Debug)]
pub enum Op {
    Conv(Conv2d),
    Norm(BatchNorm),
    Relu6(Relu6),
}

fn run(ops: &[Op], x: Tensor<4>) -> Tensor<4> {
    run_fused(ops.iter(), x)
}

/// Runs `ops` in order, a BatchNorm right after a conv folded into it (`fused::conv_bn`; exact
/// up to float rounding, on the CPU backend only), dense convs on Facecast's CPU kernel.
fn run_fused<'a>(ops: impl Iterator<Item = &'a Op>, x: Tensor<4>) -> Tensor<4> {
    let mut ops = ops.peekable();
    let mut x = x;
    while let Some(op) = ops.next() {
        x = match (op, ops.peek().copied()) {
            (Op::Conv(conv), Some(Op::Norm(bn))) => {
                ops.next();
                crate::nets::fused::conv_bn(conv, bn, x)
            }
            (Op::Conv(conv), _) => crate::nets::cpu_conv::conv2d_module(conv, x),
            (Op::Norm(bn), _) => crate::nets::fused::batch_norm(bn, x),
            (Op::Relu6(m), _) => m.forward(x),
        };
    }
    x
}

fn conv(i: usize, o: usize, k: usize, stride: usize, groups: usize, device: &Device) -> Op {
    let pad = (k - 1) / 2;
    Op::Conv(
        Conv2dConfig::new([i, o], [k, k])
            .with_stride([stride, stride])
            .with_groups(groups)
            .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
            .with_bias(false)
            // torchvision's kaiming_normal_(mode="fan_out") for ReLU-family activations.
            .with_initializer(Initializer::KaimingNormal {
                gain: std::f64::consts::SQRT_2,
                fan_out_only: true,
            })
            .init(device),
    )
}

fn norm(c: usize, device: &Device) -> Op {
    Op::Norm(BatchNormConfig::new(c).with_epsilon(1e-5).init(device))
}

/// torchvision's `Conv2dNormActivation`: conv (padding (k-1)/2), BatchNorm, ReLU6.
fn conv_bn_relu6(i: usize, o: usize, k: usize, stride: usize, groups: usize, device: &Device) -> Vec<Op> {
    vec![
        conv(i, o, k, stride, groups, device),
        norm(o, device),
        Op::Relu6(Relu6::new()),
    ]
}

/// An element of an inverted residual block's `conv` sequence.
// burn has no Module impl for Box, and a few dozen of these are built once per model.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum BlockPart {
    ConvBnRelu6(Vec<Op>),
    Op(Op),
}

/// Expand (1x1, absent when t = 1), depthwise 3x3 carrying the stride, linear 1x1 projection;
/// the input is added back when the stride is 1 and the widths agree.
#[derive(Module, Debug)]
pub struct InvertedResidual {
    pub conv: Vec<BlockPart>,
    pub use_res_connect: bool,
}

impl InvertedResidual {
    fn new(inp: usize, oup: usize, stride: usize, expand_ratio: usize, device: &Device) -> InvertedResidual {
        let hidden = inp * expand_ratio;
        let mut conv = Vec::new();
        if expand_ratio != 1 {
            conv.push(BlockPart::ConvBnRelu6(conv_bn_relu6(
                inp, hidden, 1, 1, 1, device,
            )));
        }
        conv.push(BlockPart::ConvBnRelu6(conv_bn_relu6(
            hidden, hidden, 3, stride, hidden, device,
        )));
        conv.push(BlockPart::Op(self::conv(hidden, oup, 1, 1, 1, device)));
        conv.push(BlockPart::Op(norm(oup, device)));
        InvertedResidual {
            conv,
            use_res_connect: stride == 1 && inp == oup,
        }
    }

    /// The parts' ops in order: the projection conv and its norm are separate parts, flattened
    /// they fold like the rest.
    fn ops(&self) -> impl Iterator<Item = &Op> {
        self.conv.iter().flat_map(|part| match part {
            BlockPart::ConvBnRelu6(ops) => ops.as_slice(),
            BlockPart::Op(op) => std::slice::from_ref(op),
        })
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = match host::run(self.ops(), self.use_res_connect, x) {
            Ok(y) => return y,
            Err(x) => x,
        };
        let skip = self.use_res_connect.then(|| x.clone());
        let y = run_fused(self.ops(), x);
        match skip {
            Some(x) => x + y,
            None => y,
        }
    }
}

/// An element of `features`.
#[derive(Module, Debug)]
pub enum Feature {
    ConvBnRelu6(Vec<Op>),
    Block(InvertedResidual),
}

impl Feature {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Feature::ConvBnRelu6(ops) => host::run(ops.iter(), false, x).unwrap_or_else(|x| run(ops, x)),
            Feature::Block(block) => block.forward(x),
        }
    }
}

/// An element of `classifier`: Dropout then Linear.
#[derive(Module, Debug)]
pub enum HeadPart {
    Dropout(Dropout),
    Linear(Linear),
}

/// The classifier's outputs.
#[derive(Debug, Clone)]
pub struct Classification {
    /// (N, C, h, w) output of `features`, the map before pooling.
    pub features: Tensor<4>,
    /// (N, C) global average of `features`.
    pub pooled: Tensor<2>,
    /// (N, num_classes); softmax gives probabilities.
    pub logits: Tensor<2>,
}

/// `torchvision.models.MobileNetV2`.
#[derive(Module, Debug)]
pub struct MobileNetV2 {
    pub features: Vec<Feature>,
    pub classifier: Vec<HeadPart>,
}

impl MobileNetV2 {
    /// A network with torchvision's initialisation: kaiming-normal convs, unit BatchNorm,
    /// a N(0, 0.01) classifier with zero bias (what a fresh fine-tuning head starts from).
    pub fn new(config: &MobileNetV2Config, device: &Device) -> MobileNetV2 {
        let mut input = config.stem_channels();
        let mut features = vec![Feature::ConvBnRelu6(conv_bn_relu6(3, input, 3, 2, 1, device))];
        for [t, c, n, s] in config.setting() {
            let output = make_divisible(c as f64 * config.width_mult, config.round_nearest);
            for i in 0..n {
                let stride = if i == 0 { s } else { 1 };
                features.push(Feature::Block(InvertedResidual::new(
                    input, output, stride, t, device,
                )));
                input = output;
            }
        }
        let last = config.last_channels();
        features.push(Feature::ConvBnRelu6(conv_bn_relu6(input, last, 1, 1, 1, device)));
        let mut linear = LinearConfig::new(last, config.num_classes)
            .with_initializer(Initializer::Normal { mean: 0.0, std: 0.01 })
            .init(device);
        linear.bias = Some(Param::from_tensor(Tensor::zeros([config.num_classes], device)));
        let classifier = vec![
            HeadPart::Dropout(DropoutConfig::new(config.dropout).init()),
            HeadPart::Linear(linear),
        ];
        MobileNetV2 { features, classifier }
    }

    /// Builds the network and loads a torchvision state dict (`file` only names it in errors).
    /// `num_batches_tracked` counters are ignored and a `module.` prefix left by `DataParallel`
    /// is stripped.
    pub fn from_state_dict(
        config: &MobileNetV2Config,
        tensors: &TensorMap,
        file: &Path,
        device: &Device,
    ) -> Result<MobileNetV2, LoadError> {
        let wrapped = !tensors.is_empty() && tensors.tensors.keys().all(|k| k.starts_with("module."));
        let stripped;
        let tensors = if wrapped {
            stripped = tensors.sub("module");
            &stripped
        } else {
            tensors
        };
        let tolerated = Tolerated::suffixes(&["num_batches_tracked"]);
        load_module(MobileNetV2::new(config, device), tensors, file, &tolerated)
    }

    /// Classes of the head.
    pub fn num_classes(&self) -> usize {
        self.classifier
            .iter()
            .find_map(|p| match p {
                HeadPart::Linear(l) => Some(l.weight.dims()[1]),
                HeadPart::Dropout(_) => None,
            })
            .unwrap_or(0)
    }

    /// `features` on (N, 3, H, W); `tap` sees the output of every element by index.
    pub fn features_tapped(&self, x: Tensor<4>, mut tap: impl FnMut(usize, &Tensor<4>)) -> Tensor<4> {
        self.features.iter().enumerate().fold(x, |x, (i, f)| {
            let y = f.forward(x);
            tap(i, &y);
            y
        })
    }

    /// Global average pooling and the classifier on a `features` map.
    pub fn head(&self, features: Tensor<4>) -> (Tensor<2>, Tensor<2>) {
        let [n, c, _, _] = features.dims();
        let pooled = features.mean_dim(3).mean_dim(2).reshape([n, c]);
        let logits = self.classifier.iter().fold(pooled.clone(), |x, part| match part {
            HeadPart::Dropout(d) => d.forward(x),
            HeadPart::Linear(l) => l.forward(x),
        });
        (pooled, logits)
    }

    /// The whole network on (N, 3, H, W) ImageNet-normalised images.
    pub fn classify(&self, x: Tensor<4>) -> Classification {
        let features = self.features_tapped(x, |_, _| {});
        let (pooled, logits) = self.head(features.clone());
        Classification {
            features,
            pooled,
            logits,
        }
    }

    /// Logits only, the path for training.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.head(self.features_tapped(x, |_, _| {})).1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn make_divisible_matches_torchvision_widths() {
        // width 0.35 gives stem 16 and these block widths (torchvision's own numbers).
        let widths: Vec<usize> = [32, 16, 24, 32, 64, 96, 160, 320]
            .iter()
            .map(|&c| make_divisible(c as f64 * 0.35, 8))
            .collect();
        assert_eq!(widths, vec![16, 8, 8, 16, 24, 32, 56, 112]);
        // The 10% rule: 0.5 * 24 = 12 rounds to 16 (nearest multiple, ties up), 0.5 * 16 = 8.
        assert_eq!(make_divisible(12.0, 8), 16);
        assert_eq!(make_divisible(8.0, 8), 8);
        // Dropping below 90% adds a step: 0.75 * 24 = 18 -> 16 < 16.2 -> 24.
        assert_eq!(make_divisible(18.0, 8), 24);
        assert_eq!(make_divisible(1280.0, 8), 1280);
    }

    #[test]
    fn width_and_classes_are_read_back_from_the_shapes() {
        for (width_mult, num_classes) in [(0.5, 2), (0.75, 10), (1.3, 1000), (0.6, 3)] {
            let config = MobileNetV2Config {
                num_classes,
                width_mult,
                ..MobileNetV2Config::default()
            };
            let shapes: BTreeMap<String, Vec<usize>> = config.weight_shapes().into_iter().collect();
            let inferred = MobileNetV2Config::infer(&shapes).expect("a torchvision width");
            assert_eq!(inferred.num_classes, num_classes);
            assert_eq!(
                inferred.weight_shapes(),
                config.weight_shapes(),
                "width {width_mult}"
            );
        }
        // The network built from a config has exactly the shapes the config lists.
        let device = Device::flex();
        let config = MobileNetV2Config {
            num_classes: 2,
            width_mult: 0.35,
            ..MobileNetV2Config::default()
        };
        use burn::store::{BurnToPyTorchAdapter, ModuleSnapshot};
        let built: BTreeMap<String, Vec<usize>> = MobileNetV2::new(&config, &device)
            .collect(None, Some(Box::new(BurnToPyTorchAdapter)), true)
            .into_iter()
            .map(|t| (t.name.clone(), t.shape.to_vec()))
            .collect();
        for (key, shape) in config.weight_shapes() {
            assert_eq!(built.get(&key), Some(&shape), "{key}");
        }
        let mut odd: BTreeMap<String, Vec<usize>> = config.weight_shapes().into_iter().collect();
        odd.insert("features.0.0.weight".into(), vec![13, 3, 3, 3]);
        assert!(
            MobileNetV2Config::infer(&odd).is_err(),
            "13 stem channels is no torchvision width"
        );
    }

    #[test]
    fn half_width_classifies_any_size_into_its_classes() {
        let device = Device::flex();
        let config = MobileNetV2Config::from_json(&serde_json::json!({
            "num_classes": 2, "width_mult": 0.5, "block": null, "norm_layer": null
        }))
        .expect("a valid config");
        assert_eq!(config.stem_channels(), 16);
        let net = MobileNetV2::new(&config, &device);
        let x = Tensor::<4>::random([2, 3, 64, 48], burn::tensor::Distribution::Default, &device);
        let out = net.classify(x);
        assert_eq!(out.features.dims(), [2, 1280, 2, 2]);
        assert_eq!(out.logits.dims(), [2, 2]);
        assert!(MobileNetV2Config::from_json(&serde_json::json!({"block": "x"})).is_err());
    }

    #[test]
    fn full_width_has_torchvision_layout() {
        let device = Device::flex();
        let net = MobileNetV2::new(&MobileNetV2Config::default(), &device);
        assert_eq!(net.features.len(), 19);
        // torchvision's 3,504,872 parameters plus the BatchNorm running means and variances
        // (17,056 channels each), which burn counts too.
        assert_eq!(net.num_params(), 3_504_872 + 2 * 17_056);
        assert_eq!(net.num_classes(), 1000);
    }
}
