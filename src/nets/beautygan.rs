//! BeautyGAN's makeup-transfer generator (Li et al., ACM MM 2018): `Generator_branch` of
//! wtjiang98/BeautyGAN_pytorch, whose layout the public PyTorch checkpoints
//! (thaoshibe/BeautyGAN-PyTorch-reimplementation) share.
//!
//! Two encoders (`Branch_0` for the face without makeup, `Branch_1` for the makeup reference)
//! are concatenated, go through a down-sampling conv, residual blocks and two transposed convs,
//! and two heads decode the shared map: `branch_1` gives the first face wearing the makeup,
//! `branch_2` the reference with its makeup removed. The checkpoint spells the encoders
//! `Branch_*` and the heads `branch_*`; the fields keep that spelling so the file loads without a
//! key mapping. Every `nn.Sequential` is a `Vec` that holds its ReLUs and Tanh too, so the
//! indices (`main.9`, `branch_1.6`) are the checkpoint's.
//!
//! Inputs and outputs are RGB in [-1, 1] (`(v/255 - 0.5)/0.5`), H and W multiples of 4
//! (the trained size is 256).

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{Initializer, PaddingConfig2d, Relu, Tanh};
use burn::tensor::Device;
use burn::tensor::Tensor;
use serde::Deserialize;

use crate::nets::fused_norm::{self, After};
use crate::nets::{cpu_winograd_s2, profile};
use crate::weights::TensorMap;
use crate::weights::load::{LoadError, Tolerated, load_module};

/// The constructor arguments of `Generator_branch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct BeautyGanConfig {
    /// Channels of the first encoder conv; the bottleneck has 4x as many.
    pub conv_dim: usize,
    /// Residual blocks in the bottleneck.
    pub repeat_num: usize,
    /// Channels of each input image.
    pub input_nc: usize,
}

impl Default for BeautyGanConfig {
    /// The released generator: `Generator_branch(64, 6)`.
    fn default() -> BeautyGanConfig {
        BeautyGanConfig {
            conv_dim: 64,
            repeat_num: 6,
            input_nc: 3,
        }
    }
}

impl BeautyGanConfig {
    /// Reads a `meta.json`-style config; absent keys take the released values.
    pub fn from_json(value: &serde_json::Value) -> Result<BeautyGanConfig, serde_json::Error> {
        BeautyGanConfig::deserialize(value)
    }

    /// The config a `Generator_branch` state dict was saved from, read off its tensor shapes
    /// (key → shape; a `module.` prefix is ignored): `conv_dim` and `input_nc` from the first
    /// encoder conv, `repeat_num` from the residual blocks in `main`. Every other shape follows
    /// from these three, and loading checks them all.
    pub fn infer(shapes: &BTreeMap<String, Vec<usize>>) -> Result<BeautyGanConfig, InferConfigError> {
        let get = |key: &str| {
            shapes
                .get(key)
                .or_else(|| shapes.get(&format!("module.{key}")))
                .map(Vec::as_slice)
        };
        let first = match get("Branch_0.0.weight") {
            Some(&[c, i, 7, 7]) if c > 0 && i > 0 => (c, i),
            Some(other) => {
                return Err(InferConfigError(format!(
                    "Branch_0.0.weight is {other:?}, expected [conv_dim, input_nc, 7, 7]"
                )));
            }
            None => {
                return Err(InferConfigError(
                    "no Branch_0.0.weight: not a BeautyGAN Generator_branch state dict".into(),
                ));
            }
        };
        let (conv_dim, input_nc) = first;
        // Residual blocks are main.3 … main.(2+R), each with an inner main.0 conv; stop at the
        // first index without one, so a gap cannot hide a block.
        let repeat_num = (3..)
            .take_while(|k| get(&format!("main.{k}.main.0.weight")).is_some())
            .count();
        let bottleneck = 4 * conv_dim;
        match get("main.3.main.0.weight") {
            Some(&[o, i, 3, 3]) if o == bottleneck && i == bottleneck => {}
            Some(other) => {
                return Err(InferConfigError(format!(
                    "main.3.main.0.weight is {other:?}, expected [{bottleneck}, {bottleneck}, 3, 3] for conv_dim {conv_dim}"
                )));
            }
            None => {
                return Err(InferConfigError(
                    "main holds no residual block (main.3.main.0.weight is missing)".into(),
                ));
            }
        }
        let up = format!("main.{}.weight", 3 + repeat_num);
        match get(&up) {
            Some(&[i, o, 4, 4]) if i == bottleneck && o == 2 * conv_dim => {}
            other => {
                return Err(InferConfigError(format!(
                    "{up} is {other:?}, expected the first transposed conv [{bottleneck}, {}, 4, 4] after {repeat_num} residual blocks",
                    2 * conv_dim
                )));
            }
        }
        Ok(BeautyGanConfig {
            conv_dim,
            repeat_num,
            input_nc,
        })
    }
}

/// A state dict whose shapes fit no config of the network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InferConfigError(pub String);

/// PyTorch's `InstanceNorm2d(affine=True, track_running_stats=False)`, named like PyTorch
/// (`weight`, `bias`). It always normalises with the statistics of the current sample (per
/// channel, biased variance over H×W), in eval as in training.
#[derive(Module, Debug)]
pub struct InstanceNorm2d {
    pub weight: Param<Tensor<1>>,
    pub bias: Param<Tensor<1>>,
}

impl InstanceNorm2d {
    pub fn new(channels: usize, device: &Device) -> InstanceNorm2d {
        InstanceNorm2d {
            weight: Param::from_tensor(Tensor::ones([channels], device)),
            bias: Param::from_tensor(Tensor::zeros([channels], device)),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_then(x, false, None)
    }

    /// The norm, then a ReLU when `relu`, then `+ residual`: one pass on the CPU backend.
    fn forward_then(&self, x: Tensor<4>, relu: bool, residual: Option<Tensor<4>>) -> Tensor<4> {
        fused_norm::instance_norm_affine(x, self.weight.val(), self.bias.val(), After { relu, residual })
    }
}

/// One element of an `nn.Sequential` of the generator.
#[derive(Module, Debug)]
pub enum Layer {
    Conv(Conv2d),
    /// `ConvTranspose2d`; burn keeps PyTorch's [in, out, kh, kw] weight layout, so it loads as is.
    Up(ConvTranspose2d),
    Norm(InstanceNorm2d),
    Relu(Relu),
    Tanh(Tanh),
}

impl Layer {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let dims = x.dims();
        match self {
            Layer::Conv(m) => cpu_winograd_s2::conv2d_module(m, x),
            Layer::Up(m) => cpu_winograd_s2::conv_transpose2d_module(m, x),
            Layer::Norm(m) => m.forward(x),
            Layer::Relu(m) => profile::scope("relu", move || profile::shape4(dims), || m.forward(x)),
            Layer::Tanh(m) => profile::scope("tanh", move || profile::shape4(dims), || m.forward(x)),
        }
    }
}

/// The layers in order, each norm followed by a ReLU run as one step.
fn run(layers: &[Layer], mut x: Tensor<4>) -> Tensor<4> {
    let mut i = 0;
    while i < layers.len() {
        if let (Layer::Norm(norm), Some(Layer::Relu(_))) = (&layers[i], layers.get(i + 1)) {
            x = norm.forward_then(x, true, None);
            i += 2;
        } else {
            x = layers[i].forward(x);
            i += 1;
        }
    }
    x
}

/// `x + IN(conv3x3(ReLU(IN(conv3x3(x)))))`, no activation after the add.
#[derive(Module, Debug)]
pub struct ResidualBlock {
    pub main: Vec<Layer>,
}

impl ResidualBlock {
    fn new(dim: usize, device: &Device) -> ResidualBlock {
        ResidualBlock {
            main: vec![
                conv(dim, dim, 3, 1, 1, device),
                norm(dim, device),
                Layer::Relu(Relu::new()),
                conv(dim, dim, 3, 1, 1, device),
                norm(dim, device),
            ],
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        // The skip add rides on the last norm's output pass.
        match self.main.split_last() {
            Some((Layer::Norm(norm), rest)) => {
                let h = run(rest, x.clone());
                norm.forward_then(h, false, Some(x))
            }
            _ => x.clone() + run(&self.main, x),
        }
    }
}

/// An element of the generator's `main` sequence.
// burn has no Module impl for Box, and a few dozen of these are built once per model.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum MainLayer {
    Layer(Layer),
    Residual(ResidualBlock),
}

impl MainLayer {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            MainLayer::Layer(m) => m.forward(x),
            MainLayer::Residual(m) => m.forward(x),
        }
    }
}

fn conv(i: usize, o: usize, k: usize, stride: usize, pad: usize, device: &Device) -> Layer {
    Layer::Conv(
        Conv2dConfig::new([i, o], [k, k])
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
            .with_bias(false)
            .with_initializer(Initializer::XavierNormal { gain: 1.0 })
            .init(device),
    )
}

/// ConvTranspose2d(k4, s2, p1): doubles H and W.
fn up(i: usize, o: usize, device: &Device) -> Layer {
    Layer::Up(
        ConvTranspose2dConfig::new([i, o], [4, 4])
            .with_stride([2, 2])
            .with_padding([1, 1])
            .with_bias(false)
            // burn gives transposed convs no fan-out, so xavier-normal is spelled out:
            // PyTorch's fans for an [in, out, k, k] weight are out·k² and in·k².
            .with_initializer(Initializer::Normal {
                mean: 0.0,
                std: (2.0 / ((i + o) * 16) as f64).sqrt(),
            })
            .init(device),
    )
}

fn norm(c: usize, device: &Device) -> Layer {
    Layer::Norm(InstanceNorm2d::new(c, device))
}

fn relu() -> Layer {
    Layer::Relu(Relu::new())
}

/// Input shapes the generator cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BeautyGanError {
    #[error(
        "BeautyGAN needs two {channels}-channel images of one size with H and W multiples of 4; got {x:?} and {y:?}"
    )]
    BadInput {
        channels: usize,
        x: [usize; 4],
        y: [usize; 4],
    },
}

/// The generator's outputs.
#[derive(Debug, Clone)]
pub struct GeneratorOutput {
    /// `branch_1`: the face without makeup wearing the reference's makeup, tanh in [-1, 1].
    pub with_makeup: Tensor<4>,
    /// `branch_2`: the reference with its makeup removed, tanh in [-1, 1].
    pub makeup_removed: Tensor<4>,
}

/// Intermediate maps, kept only when asked for (they hold memory and block in-place ops).
#[derive(Debug, Clone, Default)]
pub struct GeneratorTrace {
    /// `Branch_0(x)` and `Branch_1(y)`, each (2C, H/2, W/2).
    pub encoded: Option<(Tensor<4>, Tensor<4>)>,
    /// Outputs of the requested elements of `main`, by index (`main.2` follows the merge conv).
    pub main: Vec<(usize, Tensor<4>)>,
}

pub use fields::Generator;

/// The derive names locals after the fields, so the lint exemption has to cover the whole
/// expansion, not just the struct.
#[allow(non_snake_case)]
mod fields {
    use burn::module::Module;

    use super::{Layer, MainLayer};

    /// `Generator_branch`. Field names follow the checkpoint, case included.
    #[derive(Module, Debug)]
    pub struct Generator {
        /// Encoder of the face without makeup.
        pub Branch_0: Vec<Layer>,
        /// Encoder of the makeup reference.
        pub Branch_1: Vec<Layer>,
        pub main: Vec<MainLayer>,
        /// Head giving the face with makeup.
        pub branch_1: Vec<Layer>,
        /// Head giving the reference without makeup.
        pub branch_2: Vec<Layer>,
        pub input_nc: usize,
    }
}

impl Generator {
    /// A generator with xavier-normal convs (the training init) and identity instance norms.
    pub fn new(config: &BeautyGanConfig, device: &Device) -> Generator {
        let c = config.conv_dim;
        let encoder = || {
            vec![
                conv(config.input_nc, c, 7, 1, 3, device),
                norm(c, device),
                relu(),
                conv(c, 2 * c, 4, 2, 1, device),
                norm(2 * c, device),
                relu(),
            ]
        };
        let mut main = vec![
            MainLayer::Layer(conv(4 * c, 4 * c, 4, 2, 1, device)),
            MainLayer::Layer(norm(4 * c, device)),
            MainLayer::Layer(relu()),
        ];
        main.extend((0..config.repeat_num).map(|_| MainLayer::Residual(ResidualBlock::new(4 * c, device))));
        for (i, o) in [(4 * c, 2 * c), (2 * c, c)] {
            main.extend([up(i, o, device), norm(o, device), relu()].map(MainLayer::Layer));
        }
        let head = || {
            vec![
                conv(c, c, 3, 1, 1, device),
                norm(c, device),
                relu(),
                conv(c, c, 3, 1, 1, device),
                norm(c, device),
                relu(),
                conv(c, 3, 7, 1, 3, device),
                Layer::Tanh(Tanh::new()),
            ]
        };
        Generator {
            Branch_0: encoder(),
            Branch_1: encoder(),
            main,
            branch_1: head(),
            branch_2: head(),
            input_nc: config.input_nc,
        }
    }

    /// Builds the generator and loads a `Generator_branch` state dict (`file` only names it in
    /// errors). A `module.` prefix left by `DataParallel` is stripped.
    pub fn from_state_dict(
        config: &BeautyGanConfig,
        tensors: &TensorMap,
        file: &Path,
        device: &Device,
    ) -> Result<Generator, LoadError> {
        let wrapped = !tensors.is_empty() && tensors.tensors.keys().all(|k| k.starts_with("module."));
        let stripped;
        let tensors = if wrapped {
            stripped = tensors.sub("module");
            &stripped
        } else {
            tensors
        };
        load_module(Generator::new(config, device), tensors, file, &Tolerated::none())
    }

    /// `x`: the face without makeup, `y`: the makeup reference, both (N, 3, H, W) in [-1, 1].
    pub fn forward(&self, x: Tensor<4>, y: Tensor<4>) -> Result<GeneratorOutput, BeautyGanError> {
        self.run(x, y, None)
    }

    /// [`forward`](Self::forward), also keeping both encodings and the outputs of the `main`
    /// elements listed in `main_taps`.
    pub fn forward_traced(
        &self,
        x: Tensor<4>,
        y: Tensor<4>,
        main_taps: &[usize],
    ) -> Result<(GeneratorOutput, GeneratorTrace), BeautyGanError> {
        let mut trace = GeneratorTrace::default();
        let out = self.run(x, y, Some((&mut trace, main_taps)))?;
        Ok((out, trace))
    }

    /// Number of residual blocks, which shifts the indices of `main` after them.
    pub fn repeat_num(&self) -> usize {
        self.main
            .iter()
            .filter(|m| matches!(m, MainLayer::Residual(_)))
            .count()
    }

    fn run(
        &self,
        x: Tensor<4>,
        y: Tensor<4>,
        mut trace: Option<(&mut GeneratorTrace, &[usize])>,
    ) -> Result<GeneratorOutput, BeautyGanError> {
        let (xd, yd) = (x.dims(), y.dims());
        let size_ok = |d: usize| d > 0 && d.is_multiple_of(4);
        if xd != yd || xd[1] != self.input_nc || !size_ok(xd[2]) || !size_ok(xd[3]) {
            return Err(BeautyGanError::BadInput {
                channels: self.input_nc,
                x: xd,
                y: yd,
            });
        }
        let encoded_x = run(&self.Branch_0, x);
        let encoded_y = run(&self.Branch_1, y);
        if let Some((trace, _)) = trace.as_mut() {
            trace.encoded = Some((encoded_x.clone(), encoded_y.clone()));
        }
        // Concatenation order matters: the weights of main.0 expect x's features first.
        let mut h = Tensor::cat(vec![encoded_x, encoded_y], 1);
        let taps: &[usize] = trace.as_ref().map_or(&[][..], |(_, taps)| *taps);
        let mut i = 0;
        while i < self.main.len() {
            // A norm and the ReLU after it run as one step, unless the norm's own output is
            // asked for.
            let fused = match (&self.main[i], self.main.get(i + 1)) {
                (MainLayer::Layer(Layer::Norm(norm)), Some(MainLayer::Layer(Layer::Relu(_))))
                    if !taps.contains(&i) =>
                {
                    h = norm.forward_then(h, true, None);
                    i += 1;
                    true
                }
                _ => false,
            };
            if !fused {
                h = self.main[i].forward(h);
            }
            if let Some((trace, _)) = trace.as_mut()
                && taps.contains(&i)
            {
                trace.main.push((i, h.clone()));
            }
            i += 1;
        }
        let with_makeup = run(&self.branch_1, h.clone());
        let makeup_removed = run(&self.branch_2, h);
        Ok(GeneratorOutput {
            with_makeup,
            makeup_removed,
        })
    }
}

/// Tanh output in [-1, 1] to pixel values in [0, 255] (not rounded).
pub fn to_pixels(t: Tensor<4>) -> Tensor<4> {
    t.add_scalar(1.0).mul_scalar(127.5).clamp(0.0, 255.0)
}

/// Pixel values in [0, 255] to the network's [-1, 1].
pub fn from_pixels(t: Tensor<4>) -> Tensor<4> {
    t.div_scalar(127.5).sub_scalar(1.0)
}

#[cfg(test)]
mod tests {
    use burn::tensor::Distribution;

    use super::*;

    #[test]
    fn reduced_configs_shift_the_main_indices_and_keep_the_size() {
        let device = Device::flex();
        let config = BeautyGanConfig {
            conv_dim: 12,
            repeat_num: 3,
            input_nc: 3,
        };
        let g = Generator::new(&config, &device);
        assert_eq!(g.main.len(), 3 + 3 + 6);
        assert_eq!(g.repeat_num(), 3);
        assert!(matches!(g.main[6], MainLayer::Layer(Layer::Up(_))));
        let x = Tensor::<4>::random([1, 3, 16, 16], Distribution::Uniform(-1.0, 1.0), &device);
        let y = Tensor::<4>::random([1, 3, 16, 16], Distribution::Uniform(-1.0, 1.0), &device);
        let (out, trace) = g.forward_traced(x.clone(), y, &[2, 5]).expect("a valid input");
        assert_eq!(out.with_makeup.dims(), [1, 3, 16, 16]);
        assert_eq!(out.makeup_removed.dims(), [1, 3, 16, 16]);
        let dims: Vec<_> = trace.main.iter().map(|(i, t)| (*i, t.dims())).collect();
        assert_eq!(dims, vec![(2, [1, 48, 4, 4]), (5, [1, 48, 4, 4])]);
        let bad = Tensor::<4>::zeros([1, 3, 18, 16], &device);
        assert!(g.forward(x, bad).is_err());
    }

    #[test]
    fn the_config_is_read_back_from_any_generators_shapes() {
        use burn::store::{BurnToPyTorchAdapter, ModuleSnapshot};
        let device = Device::flex();
        for (conv_dim, repeat_num) in [(12, 3), (8, 1), (20, 9)] {
            let config = BeautyGanConfig {
                conv_dim,
                repeat_num,
                input_nc: 3,
            };
            let shapes: BTreeMap<String, Vec<usize>> = Generator::new(&config, &device)
                .collect(None, Some(Box::new(BurnToPyTorchAdapter)), true)
                .into_iter()
                .map(|t| (t.name.clone(), t.shape.to_vec()))
                .collect();
            assert_eq!(BeautyGanConfig::infer(&shapes), Ok(config));
            let wrapped = shapes
                .iter()
                .map(|(k, v)| (format!("module.{k}"), v.clone()))
                .collect();
            assert_eq!(BeautyGanConfig::infer(&wrapped), Ok(config));
        }
        assert!(BeautyGanConfig::infer(&BTreeMap::new()).is_err());
    }

    #[test]
    fn instance_norm_uses_each_samples_own_statistics() {
        let device = Device::flex();
        let norm = InstanceNorm2d::new(2, &device);
        let a = Tensor::<4>::random([1, 2, 8, 8], Distribution::Normal(3.0, 2.0), &device);
        let b = a.clone().mul_scalar(10.0).add_scalar(-5.0);
        // An affine change of one sample's input leaves its normalised output unchanged,
        // whatever the other sample in the batch holds.
        let both = norm.forward(Tensor::cat(vec![a.clone(), b], 0));
        let alone = norm.forward(a);
        let v = both.into_data().try_to_vec::<f32>().expect("f32");
        let w = alone.into_data().try_to_vec::<f32>().expect("f32");
        let (first, second) = v.split_at(w.len());
        for ((p, q), r) in first.iter().zip(second).zip(&w) {
            assert!((p - r).abs() < 1e-4 && (q - r).abs() < 1e-3, "{p} {q} {r}");
        }
    }
}
