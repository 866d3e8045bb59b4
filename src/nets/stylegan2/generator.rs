//! rosinality's `Generator`: mapping network, W+ latents, and the synthesis network driven by
//! per-layer styles (S space), so that W+ → image and S → image share one code path.

use burn::module::Module;
use burn::tensor::Device;
use burn::tensor::{Distribution, Tensor};

use super::StyleGanError;
use super::blocks::{ConstantInput, StyledConv, ToRgb};
use super::config::StyleGan2Config;
use super::layers::{EqualLinear, pixel_norm};
use super::style_space::{StyleKind, StyleLayer, StyleSpace};

/// The noise maps fed to the StyledConvs.
#[derive(Debug, Clone)]
pub enum Noise {
    /// Fresh N(0, 1) maps for every layer and sample (rosinality's `randomize_noise=True`).
    Random,
    /// One map per StyledConv in forward order (`num_layers` of them), `[1 or B, 1, r, r]`; for a
    /// concatenating generator (GPEN) `[B, C_r, r, r]`.
    Given(Vec<Tensor<4>>),
}

/// Activations recorded during synthesis, by rosinality module name (`conv1`, `to_rgbs.0`, …).
/// StyledConv entries are the activated outputs; ToRGB entries the RGB skip accumulated so far.
pub type Trace = Vec<(String, Tensor<4>)>;

#[derive(Module, Debug)]
pub struct Generator {
    /// The mapping layers; the checkpoint numbers them `style.1…` (`style.0` is PixelNorm).
    pub style: Vec<EqualLinear>,
    pub input: ConstantInput,
    pub conv1: StyledConv,
    pub to_rgb1: ToRgb,
    pub convs: Vec<StyledConv>,
    pub to_rgbs: Vec<ToRgb>,
    pub size: usize,
    pub style_dim: usize,
    pub n_latent: usize,
}

impl Generator {
    /// A generator of the given shape with zero weights (load a checkpoint into it).
    pub fn new(config: &StyleGan2Config, device: &Device) -> Result<Generator, StyleGanError> {
        config.validate()?;
        let taps = config.blur_taps();
        let sd = config.style_dim;
        let concat = config.isconcat;
        let fm = if concat { 2 } else { 1 };
        let c4 = config.channels_at(4);
        let mut convs = Vec::new();
        let mut to_rgbs = Vec::new();
        let mut input = c4;
        for i in 3..=config.log_size() {
            let out = config.channels_at(1 << i);
            convs.push(StyledConv::new(input * fm, out, sd, true, concat, &taps, device));
            convs.push(StyledConv::new(out * fm, out, sd, false, concat, &taps, device));
            to_rgbs.push(ToRgb::new(out * fm, sd, true, &taps, device));
            input = out;
        }
        Ok(Generator {
            style: (0..config.n_mlp)
                .map(|_| EqualLinear::new(sd, sd, config.lr_mlp, true, device))
                .collect(),
            input: ConstantInput::new(c4, device),
            conv1: StyledConv::new(c4, c4, sd, false, concat, &taps, device),
            to_rgb1: ToRgb::new(c4 * fm, sd, false, &taps, device),
            convs,
            to_rgbs,
            size: config.size,
            style_dim: sd,
            n_latent: config.n_latent(),
        })
    }

    /// Number of noise inputs (one per StyledConv).
    pub fn num_layers(&self) -> usize {
        1 + self.convs.len()
    }

    /// z → w: PixelNorm, then the mapping layers. `[B, style_dim]` both.
    pub fn mapping(&self, z: Tensor<2>) -> Tensor<2> {
        self.style.iter().fold(pixel_norm(z), |x, layer| layer.forward(x))
    }

    /// `g.mean_latent(n)`: the mean w of `n` random z, for checkpoints without `latent_avg`.
    pub fn mean_latent(&self, n: usize, device: &Device) -> Tensor<1> {
        let z = Tensor::random([n.max(1), self.style_dim], Distribution::Normal(0.0, 1.0), device);
        self.mapping(z).mean_dim(0).reshape([self.style_dim])
    }

    /// One w per sample repeated over all `n_latent` rows of W+.
    pub fn broadcast(&self, w: Tensor<2>) -> Tensor<3> {
        let [b, d] = w.dims();
        w.unsqueeze_dim::<3>(1).expand([b, self.n_latent, d])
    }

    /// Style mixing: rows `[0, inject_index)` from `w1`, the rest from `w2`.
    pub fn mix(&self, w1: Tensor<2>, w2: Tensor<2>, inject_index: usize) -> Result<Tensor<3>, StyleGanError> {
        if inject_index > self.n_latent {
            return Err(StyleGanError::Input(format!(
                "inject index {inject_index} is beyond the {} W+ rows",
                self.n_latent
            )));
        }
        let [b, d] = w1.dims();
        if w2.dims() != [b, d] {
            return Err(StyleGanError::Input(format!(
                "mixing latents {:?} and {:?}",
                w1.dims(),
                w2.dims()
            )));
        }
        let first = w1.unsqueeze_dim::<3>(1).expand([b, inject_index, d]);
        let second = w2
            .unsqueeze_dim::<3>(1)
            .expand([b, self.n_latent - inject_index, d]);
        Ok(Tensor::cat(vec![first, second], 1))
    }

    /// The S-space layers in forward order, with their W+ rows:
    /// conv1←0, to_rgb1←1, convs[2k]←2k+1, convs[2k+1]←2k+2, to_rgbs[k]←2k+3.
    pub fn style_layers(&self) -> Vec<StyleLayer> {
        let layer = |name: String, wplus_index, kind, channels| StyleLayer {
            name,
            wplus_index,
            kind,
            channels,
        };
        let mut layers = vec![
            layer("conv1".into(), 0, StyleKind::Conv, self.conv1.conv.in_channels()),
            layer(
                "to_rgb1".into(),
                1,
                StyleKind::ToRgb,
                self.to_rgb1.conv.in_channels(),
            ),
        ];
        for (k, rgb) in self.to_rgbs.iter().enumerate() {
            let (up, conv) = (&self.convs[2 * k], &self.convs[2 * k + 1]);
            layers.push(layer(
                format!("convs.{}", 2 * k),
                2 * k + 1,
                StyleKind::Conv,
                up.conv.in_channels(),
            ));
            layers.push(layer(
                format!("convs.{}", 2 * k + 1),
                2 * k + 2,
                StyleKind::Conv,
                conv.conv.in_channels(),
            ));
            layers.push(layer(
                format!("to_rgbs.{k}"),
                2 * k + 3,
                StyleKind::ToRgb,
                rgb.conv.in_channels(),
            ));
        }
        layers
    }

    /// The modulated convs in S order.
    fn modulated(&self) -> Vec<&super::blocks::ModulatedConv2d> {
        let mut out = vec![&self.conv1.conv, &self.to_rgb1.conv];
        for (k, rgb) in self.to_rgbs.iter().enumerate() {
            out.extend([&self.convs[2 * k].conv, &self.convs[2 * k + 1].conv, &rgb.conv]);
        }
        out
    }

    /// W+ `[B, n_latent, style_dim]` → S (every layer's modulation output).
    pub fn styles(&self, wplus: Tensor<3>) -> Result<StyleSpace, StyleGanError> {
        let [b, rows, d] = wplus.dims();
        if rows != self.n_latent || d != self.style_dim {
            return Err(StyleGanError::Input(format!(
                "W+ is {:?}, expected [B, {}, {}]",
                wplus.dims(),
                self.n_latent,
                self.style_dim
            )));
        }
        let layers = self.style_layers();
        let styles = layers
            .iter()
            .zip(self.modulated())
            .map(|(layer, conv)| conv.style(wplus.clone().narrow(1, layer.wplus_index, 1).reshape([b, d])))
            .collect();
        Ok(StyleSpace { layers, styles })
    }

    /// W+ → image `[B, 3, size, size]`, RGB, nominally [−1, 1].
    pub fn synthesize_wplus(&self, wplus: Tensor<3>, noise: &Noise) -> Result<Tensor<4>, StyleGanError> {
        self.synthesize(&self.styles(wplus)?, noise, None)
    }

    /// S → image. `trace`, when given, receives every layer's output (costly at full size).
    pub fn synthesize(
        &self,
        styles: &StyleSpace,
        noise: &Noise,
        mut trace: Option<&mut Trace>,
    ) -> Result<Tensor<4>, StyleGanError> {
        let expected = self.style_layers();
        if styles.styles.len() != expected.len() {
            return Err(StyleGanError::Input(format!(
                "{} style vectors given, the generator has {} modulated layers",
                styles.styles.len(),
                expected.len()
            )));
        }
        let batch = styles.batch();
        for (s, layer) in styles.styles.iter().zip(&expected) {
            let [rows, width] = s.dims();
            if width != layer.channels || (rows != batch && rows != 1) {
                return Err(StyleGanError::Input(format!(
                    "style of {} is {:?}, expected [{batch}, {}]",
                    layer.name,
                    s.dims(),
                    layer.channels
                )));
            }
        }
        if let Noise::Given(maps) = noise
            && maps.len() != self.num_layers()
        {
            return Err(StyleGanError::Input(format!(
                "{} noise maps given, the generator has {} noise inputs",
                maps.len(),
                self.num_layers()
            )));
        }
        let device = self.input.input.device();
        let noise_for = |index: usize, layer: &StyledConv, res: usize| -> Tensor<4> {
            match noise {
                Noise::Given(maps) => maps[index].clone(),
                Noise::Random => {
                    let shape = [batch, layer.noise_channels(), res, res];
                    Tensor::random(shape, Distribution::Normal(0.0, 1.0), &device)
                }
            }
        };
        let mut record = |name: String, t: &Tensor<4>| {
            if let Some(trace) = trace.as_deref_mut() {
                trace.push((name, t.clone()));
            }
        };
        let s = &styles.styles;
        let mut out = self.input.forward(batch);
        out = self
            .conv1
            .forward(out, s[0].clone(), noise_for(0, &self.conv1, 4));
        record("conv1".into(), &out);
        let mut skip = self.to_rgb1.forward(out.clone(), s[1].clone(), None);
        record("to_rgb1".into(), &skip);
        for (k, rgb) in self.to_rgbs.iter().enumerate() {
            let res = 8 << k;
            let (up, conv) = (&self.convs[2 * k], &self.convs[2 * k + 1]);
            out = up.forward(out, s[2 + 3 * k].clone(), noise_for(2 * k + 1, up, res));
            record(format!("convs.{}", 2 * k), &out);
            out = conv.forward(out, s[3 + 3 * k].clone(), noise_for(2 * k + 2, conv, res));
            record(format!("convs.{}", 2 * k + 1), &out);
            skip = rgb.forward(out.clone(), s[4 + 3 * k].clone(), Some(skip));
            record(format!("to_rgbs.{k}"), &skip);
        }
        Ok(skip)
    }
}

/// Truncation toward the mean latent: `avg + ψ·(w − avg)` (`avg` is `[style_dim]`).
pub fn truncate(w: Tensor<2>, psi: f64, avg: Tensor<1>) -> Tensor<2> {
    let avg = avg.unsqueeze_dim::<2>(0);
    avg.clone() + (w - avg).mul_scalar(psi)
}
