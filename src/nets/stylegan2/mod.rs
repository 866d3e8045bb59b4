//! The StyleGAN2 generator (Karras et al. 2020) in rosinality's layout and checkpoint names,
//! with the S space that StyleCLIP edits. GPEN's decoder reuses these blocks.
//!
//! - [`config`]: widths per resolution and the other constructor arguments.
//! - [`layers`]: equalised-lr linear/conv, fused leaky ReLU, PixelNorm.
//! - [`host_act`]: bias, noise and fused leaky ReLU as one pass on the flex CPU backend.
//! - [`upfirdn`]: the blur/upsample filter as one depthwise convolution.
//! - [`blocks`]: modulated conv, noise injection, StyledConv, ToRGB, constant input.
//! - [`generator`]: mapping, truncation, W+, mixing, synthesis from W+ or from S.
//! - [`style_space`]: the per-layer styles, StyleCLIP's conv-channel indexing.
//! - [`checkpoint`]: reading `stylegan2-ffhq-config-f.pt` (`g_ema` + `latent_avg`).
//! - [`discriminator`]: the training-time `Discriminator`, built from a checkpoint's `d` shapes.
//! - [`infer`]: the config read off a state dict's shapes.

pub mod blocks;
pub mod checkpoint;
pub mod config;
pub mod discriminator;
pub mod generator;
pub mod host_act;
pub mod infer;
pub mod layers;
pub mod style_space;
pub mod upfirdn;

use std::path::PathBuf;

use burn::tensor::Tensor;

pub use checkpoint::{generator_key, generator_param_order, generator_tensors, load_stylegan2};
pub use config::StyleGan2Config;
pub use discriminator::{Discriminator, DiscriminatorConfig};
pub use generator::{Generator, Noise, Trace, truncate};
pub use style_space::{StyleKind, StyleLayer, StyleSpace};

use crate::weights::CheckpointError;
use crate::weights::load::LoadError;

#[derive(Debug, thiserror::Error)]
pub enum StyleGanError {
    #[error("invalid generator config: {0}")]
    Config(String),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("{}: {what}", file.display())]
    Layout { file: PathBuf, what: String },
    #[error("{0}")]
    Input(String),
}

/// A loaded generator with what the checkpoint stores beside it.
#[derive(Debug)]
pub struct StyleGan2 {
    pub generator: Generator,
    /// NVIDIA's `dlatent_avg`, the truncation centre (`None` when the file has none).
    pub latent_avg: Option<Tensor<1>>,
    /// The checkpoint's fixed noise buffers (`noises.noise_i`), for `randomize_noise=False` output.
    pub noise_buffers: Option<Vec<Tensor<4>>>,
}

impl StyleGan2 {
    /// The truncation centre: the file's `latent_avg`, else an estimate from 4096 random z.
    pub fn truncation_latent(&self) -> Tensor<1> {
        match &self.latent_avg {
            Some(avg) => avg.clone(),
            None => self
                .generator
                .mean_latent(4096, &self.generator.input.input.device()),
        }
    }

    /// z `[B, style_dim]` → W+ with truncation ψ (1 leaves w unchanged).
    pub fn latent(&self, z: Tensor<2>, truncation: f64) -> Tensor<3> {
        self.generator.broadcast(self.truncated_w(z, truncation))
    }

    /// Style mixing of two z batches; truncation is applied to each before mixing, as rosinality does.
    pub fn mixed_latent(
        &self,
        z1: Tensor<2>,
        z2: Tensor<2>,
        inject_index: usize,
        truncation: f64,
    ) -> Result<Tensor<3>, StyleGanError> {
        let (w1, w2) = (self.truncated_w(z1, truncation), self.truncated_w(z2, truncation));
        self.generator.mix(w1, w2, inject_index)
    }

    fn truncated_w(&self, z: Tensor<2>, truncation: f64) -> Tensor<2> {
        let w = self.generator.mapping(z);
        if truncation < 1.0 {
            truncate(w, truncation, self.truncation_latent())
        } else {
            w
        }
    }

    /// The checkpoint's noise buffers when present (deterministic output), else random noise.
    pub fn fixed_noise(&self) -> Noise {
        match &self.noise_buffers {
            Some(maps) => Noise::Given(maps.clone()),
            None => Noise::Random,
        }
    }
}
