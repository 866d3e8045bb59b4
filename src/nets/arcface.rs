//! ArcFace IR-SE50 (`Backbone(50, 0.6, 'ir_se')` of TreB1eN/InsightFace_Pytorch, as vendored by
//! taotaonice/FaceShifter): a 112×112 face crop to a unit-length 512-d identity embedding.
//!
//! Inputs are **BGR** in [-1, 1] (the weights were trained on OpenCV-decoded images; see
//! [`crate::nets::faceshifter::CHANNEL_ORDER`]). Every BatchNorm runs on its running statistics.
//! Units are numbered flat over the stages (`body.0 …`), and only a unit whose width changes owns
//! `shortcut_layer` parameters, so the unit list is always built from the stage table.

use std::path::Path;

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::Device;
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::{Slice, Tensor};

use super::arcface_cpu::{Prepared, PreparedCache, PreparedUnit};
use super::common::{PRelu, SeqChild, Shapes, load_error_in_file_keys, rename_seq_keys, shape_of};
use super::cpu_conv::conv2d_module;
use super::fused::{batch_norm, conv_bn, fusable};
use super::profile;
use crate::weights::TensorMap;
use crate::weights::load::{LoadError, Tolerated, load_module};

/// The squeeze-excitation bottleneck divides the width by this (`SEModule(depth, 16)`).
const SE_REDUCTION: usize = 16;

/// The PyTorch Sequential children of the checkpoint and the fields that hold them here.
const SEQ_NAMES: &[SeqChild] = &[
    SeqChild {
        parent: "input_layer",
        index: "0",
        field: "conv",
    },
    SeqChild {
        parent: "input_layer",
        index: "1",
        field: "bn",
    },
    SeqChild {
        parent: "input_layer",
        index: "2",
        field: "prelu",
    },
    SeqChild {
        parent: "res_layer",
        index: "0",
        field: "bn1",
    },
    SeqChild {
        parent: "res_layer",
        index: "1",
        field: "conv1",
    },
    SeqChild {
        parent: "res_layer",
        index: "2",
        field: "prelu",
    },
    SeqChild {
        parent: "res_layer",
        index: "3",
        field: "conv2",
    },
    SeqChild {
        parent: "res_layer",
        index: "4",
        field: "bn2",
    },
    SeqChild {
        parent: "res_layer",
        index: "5",
        field: "se",
    },
    SeqChild {
        parent: "shortcut_layer",
        index: "0",
        field: "conv",
    },
    SeqChild {
        parent: "shortcut_layer",
        index: "1",
        field: "bn",
    },
    SeqChild {
        parent: "output_layer",
        index: "0",
        field: "bn2d",
    },
    SeqChild {
        parent: "output_layer",
        index: "3",
        field: "linear",
    },
    SeqChild {
        parent: "output_layer",
        index: "4",
        field: "bn1d",
    },
];

/// The architecture: stage widths and unit counts, the stem width and the embedding size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArcFaceConfig {
    pub stem_width: usize,
    pub stage_depths: Vec<usize>,
    pub stage_units: Vec<usize>,
    pub embedding_dim: usize,
    /// `ir_se` units carry a squeeze-excitation gate, plain `ir` units do not.
    pub with_se: bool,
    pub input_hw: [usize; 2],
}

/// A config that cannot describe a Backbone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ArcFace config: {0}")]
pub struct ArcFaceConfigError(pub String);

impl ArcFaceConfig {
    /// `Backbone(50, 0.6, 'ir_se')`, the shape of `model_ir_se50.pth`.
    pub fn official() -> ArcFaceConfig {
        ArcFaceConfig {
            stem_width: 64,
            stage_depths: vec![64, 128, 256, 512],
            stage_units: units_for_layers(50).unwrap_or_default(),
            embedding_dim: 512,
            with_se: true,
            input_hw: [112, 112],
        }
    }

    /// Reads a fixture's or a manifest's config. Keys may carry a `PATCHED_` prefix (reduced
    /// fixtures); anything absent keeps the official value, and `num_layers` picks the unit
    /// counts when `stage_units` is not given.
    pub fn from_json(config: &serde_json::Value) -> Result<ArcFaceConfig, ArcFaceConfigError> {
        let mut out = ArcFaceConfig::official();
        if let Some(n) = config.get("num_layers").and_then(|v| v.as_u64()) {
            out.stage_units = units_for_layers(n as usize)
                .ok_or_else(|| ArcFaceConfigError(format!("num_layers {n} is not 50, 100 or 152")))?;
        }
        if let Some(mode) = config.get("mode").and_then(|v| v.as_str()) {
            out.with_se = match mode {
                "ir_se" => true,
                "ir" => false,
                other => {
                    return Err(ArcFaceConfigError(format!(
                        "mode \"{other}\" is not \"ir\" or \"ir_se\""
                    )));
                }
            };
        }
        if let Some(v) = usize_of(config, "stem_width")? {
            out.stem_width = v;
        }
        if let Some(v) = list_of(config, "stage_depths")? {
            out.stage_depths = v;
        }
        if let Some(v) = list_of(config, "stage_units")? {
            out.stage_units = v;
        }
        if let Some(v) = usize_of(config, "embedding_dim")? {
            out.embedding_dim = v;
        }
        if let Some(v) = list_of(config, "input_hw")? {
            out.input_hw = v.try_into().map_err(|v: Vec<usize>| {
                ArcFaceConfigError(format!("input_hw has {} entries, not 2", v.len()))
            })?;
        }
        out.validate()?;
        Ok(out)
    }

    fn validate(&self) -> Result<(), ArcFaceConfigError> {
        if self.stage_depths.is_empty() || self.stage_depths.len() != self.stage_units.len() {
            return Err(ArcFaceConfigError(format!(
                "{} stage widths for {} unit counts",
                self.stage_depths.len(),
                self.stage_units.len()
            )));
        }
        if self.stage_units.contains(&0) {
            return Err(ArcFaceConfigError("a stage has no units".into()));
        }
        if self.with_se && self.stage_depths.iter().any(|&d| d < SE_REDUCTION) {
            return Err(ArcFaceConfigError(format!(
                "an SE stage narrower than {SE_REDUCTION} channels"
            )));
        }
        let [h, w] = self.output_hw();
        if h == 0
            || w == 0
            || h << self.stage_depths.len() != self.input_hw[0]
            || w << self.stage_depths.len() != self.input_hw[1]
        {
            return Err(ArcFaceConfigError(format!(
                "input {:?} does not halve evenly through {} stages",
                self.input_hw,
                self.stage_depths.len()
            )));
        }
        Ok(())
    }

    /// The final map size: every stage halves the input.
    pub fn output_hw(&self) -> [usize; 2] {
        let s = self.stage_depths.len() as u32;
        [self.input_hw[0] >> s, self.input_hw[1] >> s]
    }

    /// (in, out, stride) of every unit, numbered flat over the stages like `body.i`.
    pub fn units(&self) -> Vec<(usize, usize, usize)> {
        let mut units = Vec::new();
        let mut width = self.stem_width;
        for (&depth, &count) in self.stage_depths.iter().zip(&self.stage_units) {
            for k in 0..count {
                units.push((width, depth, if k == 0 { 2 } else { 1 }));
                width = depth;
            }
        }
        units
    }
}

impl ArcFaceConfig {
    /// The architecture of a bare `Backbone` state dict, read from its tensor shapes, so the released
    /// file and reduced test weights load alike. Units are counted as `body.0 …`; a stage starts
    /// where the width changes (the first unit, whose width may equal the stem's, starts one too).
    /// The input size follows from the linear layer: the final map times 2 per stage.
    pub fn from_shapes(shapes: &Shapes) -> Result<ArcFaceConfig, ArcFaceConfigError> {
        let err = ArcFaceConfigError;
        let stem = shape_of(shapes, "input_layer.0.weight", 4).map_err(err)?;
        if stem[1] != 3 {
            return Err(err(format!(
                "input_layer.0.weight reads {} channels, not an image's 3",
                stem[1]
            )));
        }
        let stem_width = stem[0];
        let mut stage_depths: Vec<usize> = Vec::new();
        let mut stage_units: Vec<usize> = Vec::new();
        let mut with_se = None;
        let mut width = stem_width;
        for i in 0.. {
            let conv2 = format!("body.{i}.res_layer.3.weight");
            if !shapes.contains_key(&conv2) {
                break;
            }
            let depth = shape_of(shapes, &conv2, 4).map_err(err)?[0];
            let cin = shape_of(shapes, &format!("body.{i}.res_layer.0.weight"), 1).map_err(err)?[0];
            if cin != width {
                return Err(err(format!(
                    "body.{i} reads {cin} channels but the layer before gives {width}"
                )));
            }
            let se = shapes.contains_key(&format!("body.{i}.res_layer.5.fc1.weight"));
            if *with_se.get_or_insert(se) != se {
                return Err(err(format!(
                    "body.{i} differs from body.0 in having a squeeze-excitation gate"
                )));
            }
            let projected = shapes.contains_key(&format!("body.{i}.shortcut_layer.0.weight"));
            if projected != (cin != depth) {
                return Err(err(format!(
                    "body.{i} goes from {cin} to {depth} channels {} a shortcut projection",
                    if projected { "but has" } else { "without" }
                )));
            }
            if i == 0 || depth != width {
                stage_depths.push(depth);
                stage_units.push(0);
            }
            if let Some(n) = stage_units.last_mut() {
                *n += 1;
            }
            width = depth;
        }
        if stage_depths.is_empty() {
            return Err(err("the checkpoint has no body.0 unit".into()));
        }
        let linear = shape_of(shapes, "output_layer.3.weight", 2).map_err(err)?;
        let (embedding_dim, features) = (linear[0], linear[1]);
        let cells = features / width.max(1);
        let side = (cells as f64).sqrt().round() as usize;
        if cells * width != features || side * side != cells {
            return Err(err(format!(
                "output_layer.3 reads {features} features, not {width} channels of a square map"
            )));
        }
        let input = side << stage_depths.len();
        let config = ArcFaceConfig {
            stem_width,
            stage_depths,
            stage_units,
            embedding_dim,
            with_se: with_se.unwrap_or(false),
            input_hw: [input, input],
        };
        config.validate()?;
        Ok(config)
    }
}

/// `get_blocks(num_layers)` of the reference.
fn units_for_layers(num_layers: usize) -> Option<Vec<usize>> {
    match num_layers {
        50 => Some(vec![3, 4, 14, 3]),
        100 => Some(vec![3, 13, 30, 3]),
        152 => Some(vec![3, 8, 36, 3]),
        _ => None,
    }
}

fn lookup<'a>(config: &'a serde_json::Value, key: &str) -> Option<&'a serde_json::Value> {
    config.get(key).or_else(|| config.get(format!("PATCHED_{key}")))
}

fn usize_of(config: &serde_json::Value, key: &str) -> Result<Option<usize>, ArcFaceConfigError> {
    match lookup(config, key) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .map(|n| Some(n as usize))
            .ok_or_else(|| ArcFaceConfigError(format!("{key} is not an integer"))),
    }
}

fn list_of(config: &serde_json::Value, key: &str) -> Result<Option<Vec<usize>>, ArcFaceConfigError> {
    let Some(v) = lookup(config, key) else {
        return Ok(None);
    };
    let items = v
        .as_array()
        .ok_or_else(|| ArcFaceConfigError(format!("{key} is not a list")))?;
    items
        .iter()
        .map(|x| {
            x.as_u64()
                .map(|n| n as usize)
                .ok_or_else(|| ArcFaceConfigError(format!("{key} holds a non-integer")))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn conv(i: usize, o: usize, k: usize, stride: usize, device: &Device) -> Conv2d {
    let pad = k / 2;
    Conv2dConfig::new([i, o], [k, k])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .with_bias(false)
        .init(device)
}

fn bn(c: usize, device: &Device) -> BatchNorm {
    BatchNormConfig::new(c).init(device)
}

/// Conv3×3 → BN → PReLU.
#[derive(Module, Debug)]
pub struct InputLayer {
    pub conv: Conv2d,
    pub bn: BatchNorm,
    pub prelu: PRelu,
}

/// Squeeze-excitation gate: global mean → 1×1 → ReLU → 1×1 → sigmoid, times the input.
#[derive(Module, Debug)]
pub struct SqueezeExcite {
    pub fc1: Conv2d,
    pub fc2: Conv2d,
}

impl SqueezeExcite {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let dims = x.dims();
        profile::scope(
            "squeeze_excite",
            move || profile::shape4(dims),
            || {
                let pooled = x.clone().mean_dim(3).mean_dim(2);
                let gate = sigmoid(self.fc2.forward(relu(self.fc1.forward(pooled))));
                x * gate
            },
        )
    }
}

/// BN → Conv3×3 → PReLU → Conv3×3 (stride) → BN → SE.
#[derive(Module, Debug)]
pub struct ResLayer {
    pub bn1: BatchNorm,
    pub conv1: Conv2d,
    pub prelu: PRelu,
    pub conv2: Conv2d,
    pub bn2: BatchNorm,
    pub se: Option<SqueezeExcite>,
}

/// Conv1×1 (stride) → BN, for units whose width changes.
#[derive(Module, Debug)]
pub struct Shortcut {
    pub conv: Conv2d,
    pub bn: BatchNorm,
}

/// `bottleneck_IR_SE`: residual branch plus shortcut, no activation after the sum.
#[derive(Module, Debug)]
pub struct Unit {
    pub res_layer: ResLayer,
    /// None where the width is kept: the reference's `MaxPool2d(1, stride)` is `x[:, :, ::s, ::s]`.
    pub shortcut_layer: Option<Shortcut>,
    pub stride: usize,
}

impl Unit {
    fn new(cin: usize, depth: usize, stride: usize, with_se: bool, device: &Device) -> Unit {
        let res_layer = ResLayer {
            bn1: bn(cin, device),
            conv1: conv(cin, depth, 3, 1, device),
            prelu: PRelu::new(depth, device),
            conv2: conv(depth, depth, 3, stride, device),
            bn2: bn(depth, device),
            se: with_se.then(|| SqueezeExcite {
                fc1: conv(depth, depth / SE_REDUCTION, 1, 1, device),
                fc2: conv(depth / SE_REDUCTION, depth, 1, 1, device),
            }),
        };
        let shortcut_layer = (cin != depth).then(|| Shortcut {
            conv: conv(cin, depth, 1, stride, device),
            bn: bn(depth, device),
        });
        Unit {
            res_layer,
            shortcut_layer,
            stride,
        }
    }

    /// The unit, with its convolutions `prepared` for the CPU when given.
    fn forward(&self, x: Tensor<4>, prepared: Option<&PreparedUnit>) -> Tensor<4> {
        // Each BN that follows a conv is folded into it; bn1 precedes its conv (whose zero padding
        // would see the shift), so it runs on its own.
        let shortcut = match (&self.shortcut_layer, prepared.and_then(|p| p.shortcut.as_ref())) {
            (Some(_), Some(conv)) => conv.forward(x.clone()),
            (Some(s), None) => conv_bn(&s.conv, &s.bn, x.clone()),
            (None, _) if self.stride == 1 => x.clone(),
            (None, _) => {
                let (all, step) = (Slice::new(0, None, 1), Slice::new(0, None, self.stride as isize));
                x.clone().slice([all, all, step, step])
            }
        };
        let r = &self.res_layer;
        let y = batch_norm(&r.bn1, x);
        let y = match prepared {
            Some(p) => p.conv1.forward(y),
            None => conv2d_module(&r.conv1, y),
        };
        let y = prelu(&r.prelu, y);
        let y = match prepared {
            Some(p) => p.conv2.forward(y),
            None => conv_bn(&r.conv2, &r.bn2, y),
        };
        let y = match &r.se {
            Some(se) => se.forward(y),
            None => y,
        };
        y + shortcut
    }
}

/// BN2d → Dropout (identity in eval) → flatten (C, H, W) → Linear → BN1d.
#[derive(Module, Debug)]
pub struct OutputLayer {
    pub bn2d: BatchNorm,
    pub linear: Linear,
    pub bn1d: BatchNorm,
}

/// The IR-SE backbone.
#[derive(Module, Debug)]
pub struct ArcFace {
    pub input_layer: InputLayer,
    pub body: Vec<Unit>,
    pub output_layer: OutputLayer,
    /// The convolutions prepared for the CPU on the first call there (`arcface_cpu`).
    #[module(skip)]
    pub cpu: PreparedCache,
}

/// Every stage of one forward pass, for parity checks.
#[derive(Debug, Clone)]
pub struct ArcFaceTrace {
    pub input_layer: Tensor<4>,
    /// Output of each unit, `body.0 …` (the reference's `feats`).
    pub body: Vec<Tensor<4>>,
    /// The output layer before the L2 normalisation.
    pub features: Tensor<2>,
    /// The unit-length embedding.
    pub embedding: Tensor<2>,
}

/// Loading failed: the checkpoint does not fit the config.
#[derive(Debug, thiserror::Error)]
pub enum ArcFaceError {
    #[error(transparent)]
    Config(#[from] ArcFaceConfigError),
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The file's tensor shapes do not describe a Backbone.
    #[error("{}: not an ArcFace IR-SE backbone: {reason}", file.display())]
    WrongCheckpoint {
        file: std::path::PathBuf,
        reason: String,
    },
}

impl ArcFace {
    /// A network with lazily initialised (not yet allocated) weights, to be loaded.
    pub fn new(config: &ArcFaceConfig, device: &Device) -> ArcFace {
        let stem = config.stem_width;
        let input_layer = InputLayer {
            conv: conv(3, stem, 3, 1, device),
            bn: bn(stem, device),
            prelu: PRelu::new(stem, device),
        };
        let body = config
            .units()
            .into_iter()
            .map(|(i, o, s)| Unit::new(i, o, s, config.with_se, device))
            .collect::<Vec<_>>();
        let last = config.stage_depths.last().copied().unwrap_or(stem);
        let [h, w] = config.output_hw();
        let output_layer = OutputLayer {
            bn2d: bn(last, device),
            linear: LinearConfig::new(last * h * w, config.embedding_dim).init(device),
            bn1d: bn(config.embedding_dim, device),
        };
        ArcFace {
            input_layer,
            body,
            output_layer,
            cpu: PreparedCache::default(),
        }
    }

    /// Builds the network from a bare `Backbone` state dict (`model_ir_se50.pth`). Keys keep the
    /// checkpoint's names in errors; `num_batches_tracked` may be present or not.
    pub fn from_state_dict(
        tensors: TensorMap,
        file: &Path,
        config: &ArcFaceConfig,
        device: &Device,
    ) -> Result<ArcFace, ArcFaceError> {
        config.validate()?;
        let tensors = rename_seq_keys(tensors, SEQ_NAMES);
        let tolerated = Tolerated::suffixes(&["num_batches_tracked"]);
        load_module(ArcFace::new(config, device), &tensors, file, &tolerated)
            .map_err(|e| ArcFaceError::Load(load_error_in_file_keys(e, SEQ_NAMES, "")))
    }

    /// Builds the network at the architecture the state dict's own shapes describe (the released
    /// `model_ir_se50.pth`, or reduced test weights).
    pub fn from_checkpoint(
        tensors: TensorMap,
        file: &Path,
        device: &Device,
    ) -> Result<(ArcFace, ArcFaceConfig), ArcFaceError> {
        let config = ArcFaceConfig::from_shapes(&super::common::shapes_of(&tensors)).map_err(|e| {
            ArcFaceError::WrongCheckpoint {
                file: file.to_path_buf(),
                reason: e.0,
            }
        })?;
        let net = ArcFace::from_state_dict(tensors, file, &config, device)?;
        Ok((net, config))
    }

    /// The length of the embedding.
    pub fn embedding_dim(&self) -> usize {
        self.output_layer.bn1d.gamma.dims()[0]
    }

    /// The square input size the network was built for (112 for the released file).
    pub fn input_size(&self) -> usize {
        // The linear layer reads channels × side², and every stage halves the side.
        let [features, _] = self.output_layer.linear.weight.dims();
        let channels = self.output_layer.bn2d.gamma.dims()[0].max(1);
        let side = ((features / channels) as f64).sqrt().round() as usize;
        side << self.stages()
    }

    fn stages(&self) -> usize {
        self.body.iter().filter(|u| u.stride == 2).count()
    }

    /// (N, 3, H, W) BGR crops in [-1, 1] → (N, embedding_dim) unit vectors.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let prepared = self.prepared(&x);
        let prepared = prepared.as_deref();
        l2_normalize(self.head(self.units(self.stem(x, prepared), prepared, |_| {})))
    }

    /// The forward pass keeping every intermediate stage.
    pub fn forward_traced(&self, x: Tensor<4>) -> ArcFaceTrace {
        let prepared = self.prepared(&x);
        let prepared = prepared.as_deref();
        let input_layer = self.stem(x, prepared);
        let mut body = Vec::with_capacity(self.body.len());
        let features = self.head(self.units(input_layer.clone(), prepared, |m| body.push(m)));
        let embedding = l2_normalize(features.clone());
        ArcFaceTrace {
            input_layer,
            body,
            features,
            embedding,
        }
    }

    /// The convolutions prepared for the CPU, where `x` runs on the host kernels as a square crop
    /// (see `arcface_cpu`).
    fn prepared(&self, x: &Tensor<4>) -> Option<std::sync::Arc<Prepared>> {
        let [_, _, h, w] = x.dims();
        if h != w || !fusable(x) {
            return None;
        }
        self.cpu.get(self, h)
    }

    fn stem(&self, x: Tensor<4>, prepared: Option<&Prepared>) -> Tensor<4> {
        let stem = &self.input_layer;
        let y = match prepared {
            Some(p) => p.stem.forward(x),
            None => conv_bn(&stem.conv, &stem.bn, x),
        };
        prelu(&stem.prelu, y)
    }

    fn units(
        &self,
        mut x: Tensor<4>,
        prepared: Option<&Prepared>,
        mut on_unit: impl FnMut(Tensor<4>),
    ) -> Tensor<4> {
        for (i, unit) in self.body.iter().enumerate() {
            x = unit.forward(x, prepared.and_then(|p| p.units.get(i)));
            on_unit(x.clone());
        }
        x
    }

    /// The output layer, before the L2 normalisation.
    fn head(&self, x: Tensor<4>) -> Tensor<2> {
        let out = &self.output_layer;
        let x = batch_norm(&out.bn2d, x);
        let [n, c, h, w] = x.dims();
        out.bn1d.forward(out.linear.forward(x.reshape([n, c * h * w])))
    }
}

/// The PReLU of a map, timed by the profiler.
fn prelu(m: &PRelu, x: Tensor<4>) -> Tensor<4> {
    let dims = x.dims();
    profile::scope("prelu", move || profile::shape4(dims), || m.forward(x))
}

/// `x / ‖x‖₂` per row, with no epsilon, exactly like the reference's `l2_norm`.
pub fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().powi_scalar(2).sum_dim(1).sqrt();
    x / norm
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_network_has_the_released_file_layout() {
        let net = ArcFace::new(&ArcFaceConfig::official(), &Device::flex());
        crate::nets::common::assert_official_layout(&net, SEQ_NAMES, "arcface_ir_se50");
    }

    #[test]
    fn units_are_numbered_flat_over_the_stages() {
        let units = ArcFaceConfig::official().units();
        assert_eq!(units.len(), 24);
        let strided: Vec<usize> = (0..24).filter(|&i| units[i].2 == 2).collect();
        assert_eq!(strided, vec![0, 3, 7, 21]);
        let projected: Vec<usize> = (0..24).filter(|&i| units[i].0 != units[i].1).collect();
        assert_eq!(projected, vec![3, 7, 21]);
    }

    fn key_list_shapes(name: &str) -> Shapes {
        crate::weights::manifest::key_list(name)
            .unwrap()
            .into_iter()
            .map(|k| (k.key, k.shape))
            .collect()
    }

    #[test]
    fn the_released_file_gives_the_official_config() {
        let shapes = key_list_shapes("arcface-ir-se50");
        assert_eq!(ArcFaceConfig::from_shapes(&shapes), Ok(ArcFaceConfig::official()));
    }

    #[test]
    fn inconsistent_shapes_are_refused_with_the_key() {
        let mut shapes = key_list_shapes("arcface-ir-se50");
        shapes.remove("body.7.shortcut_layer.0.weight");
        let e = ArcFaceConfig::from_shapes(&shapes).unwrap_err();
        assert!(e.0.contains("body.7"), "{e}");
        let mut shapes = key_list_shapes("arcface-ir-se50");
        shapes.insert("output_layer.3.weight".into(), vec![512, 512 * 6 * 7]);
        let e = ArcFaceConfig::from_shapes(&shapes).unwrap_err();
        assert!(e.0.contains("output_layer.3"), "{e}");
        assert!(ArcFaceConfig::from_shapes(&Shapes::new()).is_err());
    }

    #[test]
    fn patched_fixture_config_is_read() {
        let json = serde_json::json!({
            "num_layers": 50, "mode": "ir_se", "PATCHED_stem_width": 16,
            "PATCHED_stage_depths": [16, 32, 48, 64], "PATCHED_stage_units": [1, 2, 1, 1],
            "PATCHED_embedding_dim": 512, "input_hw": [112, 112]
        });
        let c = ArcFaceConfig::from_json(&json).unwrap();
        assert_eq!(
            c.units(),
            vec![(16, 16, 2), (16, 32, 2), (32, 32, 1), (32, 48, 2), (48, 64, 2)]
        );
        assert_eq!(c.output_hw(), [7, 7]);
        let bad = serde_json::json!({ "stage_depths": [64, 128], "stage_units": [3, 4, 14] });
        assert!(ArcFaceConfig::from_json(&bad).is_err());
    }
}
