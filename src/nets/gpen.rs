//! GPEN's `FullGenerator` (Yang et al. 2021, yangxy/GPEN): a downsampling encoder whose deepest
//! feature, flattened, is the z of a StyleGAN2 decoder, and whose per-resolution features are that
//! decoder's "noise", concatenated to the StyledConv outputs.
//!
//! The decoder is [`stylegan2::Generator`](super::stylegan2::Generator) with `isconcat`; only the
//! encoder (`ecd0…`) and `final_linear` are specific to GPEN.

use std::path::Path;

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use super::stylegan2::layers::{EqualConv2d, EqualLinear, FusedLeakyRelu};
use super::stylegan2::upfirdn::{downsample_blur_pad, upfirdn2d};
use super::stylegan2::{Generator, Noise, StyleGan2Config, StyleGanError, Trace, generator_tensors};
use crate::weights::load::{Tolerated, load_module};
use crate::weights::{TensorMap, read_checkpoint};

/// The constructor arguments of `FullGenerator`, expressed as its decoder's config (the encoder
/// uses the same widths per resolution).
#[derive(Debug, Clone, PartialEq)]
pub struct GpenConfig {
    pub decoder: StyleGan2Config,
}

impl GpenConfig {
    /// `FullGenerator(size, style_dim, n_mlp, channel_multiplier, narrow)`, noise concatenated.
    pub fn new(
        size: usize,
        style_dim: usize,
        n_mlp: usize,
        channel_multiplier: usize,
        narrow: f64,
    ) -> GpenConfig {
        GpenConfig {
            decoder: StyleGan2Config::gpen(size, style_dim, n_mlp, channel_multiplier, narrow),
        }
    }

    /// `GPEN-BFR-512.pth`.
    pub fn bfr_512() -> GpenConfig {
        GpenConfig::new(512, 512, 8, 2, 1.0)
    }

    /// `GPEN-BFR-256.pth`.
    pub fn bfr_256() -> GpenConfig {
        GpenConfig::new(256, 512, 8, 1, 0.5)
    }

    /// From JSON with the constructor's keys (`size`, `style_dim`, `n_mlp`, `channel_multiplier`,
    /// `narrow`, optional `isconcat` (default true), `blur_kernel`, `lr_mlp`), e.g. a fixture's config.
    pub fn from_json(v: &serde_json::Value) -> Result<GpenConfig, StyleGanError> {
        let mut decoder = StyleGan2Config::from_json(v)?;
        decoder.isconcat = v["isconcat"].as_bool().unwrap_or(true);
        Ok(GpenConfig { decoder })
    }

    pub fn size(&self) -> usize {
        self.decoder.size
    }

    /// The constructor arguments a checkpoint was built with, read back from its tensor shapes
    /// (a bare `FullGenerator` state dict, or a training checkpoint's `g_ema`): the encoder gives
    /// the resolution (one stage per halving down to 4 px) and the width at every resolution,
    /// `final_linear` the style width, the `generator.style.N` layers the mapping depth, and
    /// `conv1`'s activation bias whether the noise is concatenated. Only `lr_mlp`, a run-time
    /// multiplier that no shape records, is taken as GPEN's 0.01.
    pub fn from_state_dict(all: &TensorMap, file: &Path) -> Result<GpenConfig, StyleGanError> {
        let state = generator_state(all);
        let layout = |what: String| StyleGanError::Layout {
            file: file.to_path_buf(),
            what,
        };
        let shape = |key: &str| -> Result<&[usize], StyleGanError> {
            state
                .get(key)
                .map(|t| t.shape.as_slice())
                .ok_or_else(|| layout(format!("not a GPEN FullGenerator state dict: no {key}")))
        };
        let stages: std::collections::BTreeSet<usize> = state
            .tensors
            .keys()
            .filter_map(|k| k.strip_prefix("ecd")?.split('.').next()?.parse().ok())
            .collect();
        let count = stages.len();
        if count == 0 || stages.iter().copied().ne(0..count) {
            return Err(layout(format!(
                "not a GPEN FullGenerator state dict: encoder stages {stages:?} are not ecd0, ecd1, …"
            )));
        }
        if count > 14 {
            return Err(layout(format!("{count} encoder stages is not a plausible GPEN")));
        }
        // ecd0 works at full resolution and every later stage halves it, down to 4×4.
        let size = 1usize << (count + 1);
        let mut channels = std::collections::BTreeMap::new();
        let first = shape("ecd0.0.0.weight")?;
        if first.len() != 4 || first[1] != 3 {
            return Err(layout(format!(
                "ecd0.0.0.weight has shape {first:?}, expected [C, 3, 1, 1]"
            )));
        }
        channels.insert(size, first[0]);
        let mut previous = first[0];
        for n in 1..count {
            let key = format!("ecd{n}.0.1.weight");
            let w = shape(&key)?;
            if w.len() != 4 || w[1] != previous {
                return Err(layout(format!(
                    "{key} has shape {w:?}, expected [C, {previous}, 3, 3] after the previous stage"
                )));
            }
            channels.insert(size >> n, w[0]);
            previous = w[0];
        }
        let c4 = previous;
        let fl = shape("final_linear.0.weight")?;
        if fl.len() != 2 || fl[1] != c4 * 16 {
            return Err(layout(format!(
                "final_linear.0.weight has shape {fl:?}, expected [style_dim, {}] (the flattened 4×4 feature)",
                c4 * 16
            )));
        }
        let style_dim = fl[0];
        let n_mlp = (1..)
            .take_while(|i| state.get(&format!("generator.style.{i}.weight")).is_some())
            .count();
        if n_mlp == 0 {
            return Err(layout("no mapping layer generator.style.1.weight".into()));
        }
        let bias = shape("generator.conv1.activate.bias")?;
        let isconcat = match bias {
            [n] if *n == 2 * c4 => true,
            [n] if *n == c4 => false,
            other => {
                return Err(layout(format!(
                    "generator.conv1.activate.bias has shape {other:?}, expected [{}] (noise concatenated) or [{c4}]",
                    2 * c4
                )));
            }
        };
        let decoder = StyleGan2Config {
            size,
            style_dim,
            n_mlp,
            blur_kernel: blur_taps_of(state.get("ecd1.0.0.kernel")),
            lr_mlp: 0.01,
            channels,
            isconcat,
        };
        decoder.validate()?;
        Ok(GpenConfig { decoder })
    }

    /// One line for notes and logs, e.g. "GPEN 512 px (widths 512…64, style 512)".
    pub fn describe(&self) -> String {
        let d = &self.decoder;
        let widths: Vec<usize> = d.channels.values().copied().collect();
        format!(
            "GPEN {} px (widths {}…{}, style {})",
            d.size,
            widths.first().copied().unwrap_or(0),
            widths.last().copied().unwrap_or(0),
            d.style_dim
        )
    }
}

/// The standard taps `[1, 3, 3, 1]`, unless the file's stored 2-D blur kernel (`make_kernel`'s
/// normalised outer product, whose row sums are the normalised 1-D taps) says otherwise.
fn blur_taps_of(kernel: Option<&crate::weights::RawTensor>) -> Vec<f32> {
    let standard = vec![1.0, 3.0, 3.0, 1.0];
    let Some(kernel) = kernel else { return standard };
    let values = kernel.to_f32();
    let [k, k2] = kernel.shape.as_slice() else {
        return standard;
    };
    if k != k2 || *k == 0 || values.len() != k * k || values.iter().any(|v| !v.is_finite()) {
        return standard;
    }
    let rows: Vec<f32> = values.chunks(*k).map(|row| row.iter().sum()).collect();
    let normalised = [0.125f32, 0.375, 0.375, 0.125];
    let is_standard = rows.len() == 4 && rows.iter().zip(normalised).all(|(a, b)| (a - b).abs() < 1e-6);
    if is_standard || rows.iter().sum::<f32>() <= 0.0 {
        standard
    } else {
        rows
    }
}

/// The generator's own tensors: a training checkpoint's `g_ema`, else the file itself.
fn generator_state(all: &TensorMap) -> std::borrow::Cow<'_, TensorMap> {
    if all.tensors.keys().any(|k| k.starts_with("g_ema.")) {
        std::borrow::Cow::Owned(all.sub("g_ema"))
    } else {
        std::borrow::Cow::Borrowed(all)
    }
}

/// One encoder stage (`ecdN.0`, a `ConvLayer`): for N ≥ 1 a blur then a stride-2 3×3
/// EqualConv2d, for N = 0 a 1×1 one; the bias lives in the activation.
#[derive(Module, Debug)]
pub struct EncoderLayer {
    pub conv: EqualConv2d,
    pub activate: FusedLeakyRelu,
    pub downsample: bool,
    pub blur_taps: Vec<f32>,
}

impl EncoderLayer {
    fn new(input: usize, output: usize, downsample: bool, taps: &[f32], device: &Device) -> EncoderLayer {
        let (kernel, stride) = if downsample { (3, 2) } else { (1, 1) };
        // ConvLayer pads k/2 unless it downsamples (the blur pads instead).
        let padding = if downsample { 0 } else { kernel / 2 };
        EncoderLayer {
            conv: EqualConv2d::new(input, output, kernel, stride, padding, device),
            activate: FusedLeakyRelu::new(output, device),
            downsample,
            blur_taps: taps.to_vec(),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = if self.downsample {
            let kernel = self.conv.weight.dims()[2];
            upfirdn2d(
                x,
                &self.blur_taps,
                1,
                1,
                downsample_blur_pad(self.blur_taps.len(), kernel, 2),
            )
        } else {
            x
        };
        self.activate.forward(self.conv.forward(x))
    }
}

#[derive(Module, Debug)]
pub struct FullGenerator {
    /// `ecd0` (full resolution, 1×1) to `ecd{log2(size)−2}` (4×4).
    pub ecd: Vec<EncoderLayer>,
    /// Flattened 4×4 feature → z (EqualLinear, lr_mul 1, fused leaky ReLU).
    pub final_linear: EqualLinear,
    pub generator: Generator,
}

/// What one restoration computes, for callers that want more than the image.
#[derive(Debug, Clone)]
pub struct GpenOutput {
    /// `[B, 3, size, size]`, RGB, nominally [−1, 1] (not clamped).
    pub image: Tensor<4>,
    /// Encoder features, `ecd0` first.
    pub features: Vec<Tensor<4>>,
    /// `final_linear` output, the z fed to the mapping network.
    pub z: Tensor<2>,
    /// Mapping output; every W+ row equals it.
    pub w: Tensor<2>,
    pub latent: Tensor<3>,
}

impl FullGenerator {
    pub fn new(config: &GpenConfig, device: &Device) -> Result<FullGenerator, StyleGanError> {
        let d = &config.decoder;
        d.validate()?;
        let taps = d.blur_taps();
        let mut ecd = vec![EncoderLayer::new(3, d.channels_at(d.size), false, &taps, device)];
        let mut input = d.channels_at(d.size);
        for i in (3..=d.log_size()).rev() {
            let out = d.channels_at(1 << (i - 1));
            ecd.push(EncoderLayer::new(input, out, true, &taps, device));
            input = out;
        }
        Ok(FullGenerator {
            ecd,
            final_linear: EqualLinear::new(d.channels_at(4) * 16, d.style_dim, 1.0, true, device),
            generator: Generator::new(d, device)?,
        })
    }

    pub fn size(&self) -> usize {
        self.generator.size
    }

    /// Restores aligned faces `[B, 3, size, size]` (RGB in [−1, 1]).
    pub fn forward(&self, x: Tensor<4>) -> Result<Tensor<4>, StyleGanError> {
        Ok(self.forward_traced(x, None)?.image)
    }

    /// As [`forward`](Self::forward), keeping the intermediate results; `trace` receives the
    /// decoder's layer outputs (named like rosinality's modules).
    pub fn forward_traced(
        &self,
        x: Tensor<4>,
        trace: Option<&mut Trace>,
    ) -> Result<GpenOutput, StyleGanError> {
        let size = self.size();
        let [b, c, h, w] = x.dims();
        if c != 3 || h != size || w != size {
            return Err(StyleGanError::Input(format!(
                "GPEN-{size} takes [B, 3, {size}, {size}] crops, got {:?}",
                x.dims()
            )));
        }
        let mut features = Vec::with_capacity(self.ecd.len());
        let mut x = x;
        for layer in &self.ecd {
            x = layer.forward(x);
            features.push(x.clone());
        }
        let [_, c4, h4, w4] = x.dims();
        let z = self.final_linear.forward(x.reshape([b, c4 * h4 * w4]));
        let w = self.generator.mapping(z.clone());
        let latent = self.generator.broadcast(w.clone());
        let styles = self.generator.styles(latent.clone())?;
        let image = self
            .generator
            .synthesize(&styles, &Noise::Given(decoder_noise(&features)), trace)?;
        Ok(GpenOutput {
            image,
            features,
            z,
            w,
            latent,
        })
    }
}

/// GPEN's noise list: the encoder features each used twice, deepest first, minus the first
/// copy of the 4×4 one — so conv1 gets f4 and both convs at resolution r get f_r.
pub fn decoder_noise(features: &[Tensor<4>]) -> Vec<Tensor<4>> {
    features
        .iter()
        .rev()
        .flat_map(|f| [f.clone(), f.clone()])
        .skip(1)
        .collect()
}

/// The state dict as the burn module names it: `ecdN.0.*.weight` → `ecd.N.conv.weight`,
/// `ecdN.0.*.bias` → `ecd.N.activate.bias` (the `ecdN.0.0.kernel` blur buffers are dropped:
/// they are rebuilt from the config), `final_linear.0.*` → `final_linear.*`, and the decoder's
/// keys renamed as for rosinality's generator.
pub fn gpen_tensors(state: &TensorMap) -> TensorMap {
    let mut out = TensorMap::default();
    for (key, tensor) in &state.tensors {
        let renamed = if let Some(rest) = key.strip_prefix("ecd") {
            let mut parts = rest.split('.');
            let stage = parts.next().and_then(|n| n.parse::<usize>().ok());
            match (stage, parts.next_back()) {
                (Some(n), Some("weight")) => Some(format!("ecd.{n}.conv.weight")),
                (Some(n), Some("bias")) => Some(format!("ecd.{n}.activate.bias")),
                (Some(_), Some("kernel")) => None,
                _ => Some(key.clone()),
            }
        } else if let Some(rest) = key.strip_prefix("final_linear.0.") {
            Some(format!("final_linear.{rest}"))
        } else if key.starts_with("generator.") {
            None
        } else {
            Some(key.clone())
        };
        if let Some(name) = renamed {
            out.tensors.insert(name, tensor.clone());
        }
    }
    for (key, tensor) in generator_tensors(&state.sub("generator")).tensors {
        out.tensors.insert(format!("generator.{key}"), tensor);
    }
    out
}

/// Loads `GPEN-BFR-*.pth` (a bare state dict) or a training checkpoint's `g_ema`.
pub fn load_gpen(path: &Path, config: &GpenConfig, device: &Device) -> Result<FullGenerator, StyleGanError> {
    let all = read_checkpoint(path)?.flatten_tensors();
    from_tensors(&all, path, config, device)
}

/// As [`load_gpen`], from tensors already read (`file` names them in errors).
pub fn from_tensors(
    all: &TensorMap,
    file: &Path,
    config: &GpenConfig,
    device: &Device,
) -> Result<FullGenerator, StyleGanError> {
    let state = generator_state(all);
    if !state.tensors.keys().any(|k| k.starts_with("ecd0.")) {
        return Err(StyleGanError::Layout {
            file: file.to_path_buf(),
            what: "not a GPEN FullGenerator state dict (no ecd0 encoder layer)".into(),
        });
    }
    let net = load_module(
        FullGenerator::new(config, device)?,
        &gpen_tensors(&state),
        file,
        &Tolerated::suffixes(&[".kernel"]),
    )?;
    Ok(net)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weights::RawTensor;

    #[test]
    fn checkpoint_keys_map_onto_the_module() {
        let mut state = TensorMap::default();
        for key in [
            "ecd0.0.0.weight",
            "ecd0.0.1.bias",
            "ecd3.0.0.kernel",
            "ecd3.0.1.weight",
            "ecd3.0.2.bias",
            "final_linear.0.weight",
            "generator.style.1.weight",
            "generator.convs.0.conv.blur.kernel",
        ] {
            state
                .tensors
                .insert(key.into(), RawTensor::f32(vec![1], vec![0.0]));
        }
        let keys: Vec<String> = gpen_tensors(&state).tensors.into_keys().collect();
        assert_eq!(
            keys,
            vec![
                "ecd.0.activate.bias",
                "ecd.0.conv.weight",
                "ecd.3.activate.bias",
                "ecd.3.conv.weight",
                "final_linear.weight",
                "generator.convs.0.conv.blur.kernel",
                "generator.style.0.weight",
            ]
        );
    }

    #[test]
    fn noise_order_gives_conv1_the_deepest_feature() {
        let device = Device::flex();
        let feats: Vec<Tensor<4>> = (0..3)
            .map(|i| Tensor::zeros([1, 1, 16 >> i, 16 >> i], &device))
            .collect();
        let sides: Vec<usize> = decoder_noise(&feats).iter().map(|t| t.dims()[2]).collect();
        assert_eq!(sides, vec![4, 8, 8, 16, 16]);
    }
}
