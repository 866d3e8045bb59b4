//! Generating virtual-model faces with StyleGAN2: seed → z → w → truncated W+ → image.
//!
//! A seed means the same z everywhere (numpy's `RandomState(seed).randn`, see [`rng`] and the
//! format notes in [`crate::cast`]). Noise is either the checkpoint's fixed buffers or drawn from
//! the seed's stream after z, so a seed and a truncation give the same pixels on every run. The
//! W+ latent comes back with the image: it is what the library keeps, and what edits start from.
//!
//! Everything here is a plain function over a loaded [`StyleGan2`], callable from the worker, the
//! CLI, the tests and the benchmarks alike.

pub mod rng;

use burn::tensor::{Device, Tensor, TensorData};
use image::RgbImage;

use crate::cast::{GeneratorInfo, Latent, NoiseSpec};
use crate::nets::stylegan2::{Noise, StyleGan2, StyleGanError};
use crate::weights::models::{LoadedStyleGan2, STYLEGAN2_ID};
pub use rng::SeedStream;

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error(transparent)]
    Network(#[from] StyleGanError),
    #[error("the compute device failed while generating: {0}")]
    Device(String),
    #[error("{0}")]
    Input(String),
}

/// Whether the noise maps come from the checkpoint or from the seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoiseChoice {
    /// The checkpoint's fixed noise buffers (seeded noise when the file has none).
    #[default]
    Checkpoint,
    /// Fresh maps drawn from the seed's stream after z (NVIDIA's `run_generator.py` way).
    Seeded,
}

/// One generation: the seed, the truncation ψ (1 = none; FFHQ faces look best around 0.5–0.8)
/// and the noise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GenerateSettings {
    pub seed: u32,
    pub truncation: f64,
    pub noise: NoiseChoice,
}

impl Default for GenerateSettings {
    fn default() -> Self {
        GenerateSettings {
            seed: 0,
            truncation: DEFAULT_TRUNCATION,
            noise: NoiseChoice::Checkpoint,
        }
    }
}

/// The truncation the Cast panel and the CLI start from (StyleCLIP's statistics used 0.7 too).
pub const DEFAULT_TRUNCATION: f64 = 0.7;

/// A generated face with what made it.
#[derive(Debug, Clone)]
pub struct Generated {
    pub image: RgbImage,
    /// Truncation applied, one row per synthesis input.
    pub latent: Latent,
    pub seed: u32,
    pub truncation: f64,
    /// The noise really used (a checkpoint without buffers falls back to seeded noise).
    pub noise: NoiseSpec,
}

/// What a loaded generator is, as the library records it beside a generated face.
pub fn generator_info(loaded: &LoadedStyleGan2) -> GeneratorInfo {
    GeneratorInfo {
        weights: STYLEGAN2_ID.to_string(),
        size: loaded.config.size,
        style_dim: loaded.config.style_dim,
        n_latent: loaded.config.n_latent(),
        reduced: loaded.reduced,
    }
}

/// z for a seed: `style_dim` normal draws of the seed's stream, and the stream after them.
pub fn z_from_seed(seed: u32, style_dim: usize) -> (Vec<f32>, SeedStream) {
    let mut stream = SeedStream::new(seed);
    let z = stream.gauss_f32(style_dim);
    (z, stream)
}

fn device_of(model: &StyleGan2) -> Device {
    model.generator.input.input.device()
}

/// Noise maps drawn from `stream`, one per StyledConv in forward order, `[1, 1, r, r]`.
fn seeded_noise(model: &StyleGan2, stream: &mut SeedStream, device: &Device) -> Vec<Tensor<4>> {
    let g = &model.generator;
    let mut sides = vec![4usize];
    for k in 0..g.to_rgbs.len() {
        sides.extend([8 << k, 8 << k]);
    }
    sides
        .into_iter()
        .map(|r| Tensor::from_data(TensorData::new(stream.gauss_f32(r * r), [1, 1, r, r]), device))
        .collect()
}

fn noise_for(
    model: &StyleGan2,
    spec: NoiseSpec,
    stream: Option<SeedStream>,
    device: &Device,
) -> Result<Noise, GenerateError> {
    match spec {
        NoiseSpec::Checkpoint => match &model.noise_buffers {
            Some(maps) => Ok(Noise::Given(maps.clone())),
            None => Err(GenerateError::Input(
                "the StyleGAN2 checkpoint has no fixed noise buffers; use seeded noise".into(),
            )),
        },
        NoiseSpec::Seeded { seed } => {
            let mut stream = match stream {
                Some(s) => s,
                None => z_from_seed(seed, model.generator.style_dim).1,
            };
            Ok(Noise::Given(seeded_noise(model, &mut stream, device)))
        }
    }
}

/// The noise maps of a saved model's noise choice (for rendering it again, e.g. edited).
pub fn noise(model: &StyleGan2, spec: NoiseSpec) -> Result<Noise, GenerateError> {
    noise_for(model, spec, None, &device_of(model))
}

/// Seed → image and W+ latent.
pub fn generate(model: &StyleGan2, settings: &GenerateSettings) -> Result<Generated, GenerateError> {
    if !(settings.truncation.is_finite() && (0.0..=2.0).contains(&settings.truncation)) {
        return Err(GenerateError::Input(format!(
            "truncation {} is outside 0…2",
            settings.truncation
        )));
    }
    let device = device_of(model);
    let style_dim = model.generator.style_dim;
    let (z, stream) = z_from_seed(settings.seed, style_dim);
    let z: Tensor<2> = Tensor::from_data(TensorData::new(z, [1, style_dim]), &device);
    let spec = match settings.noise {
        NoiseChoice::Checkpoint if model.noise_buffers.is_some() => NoiseSpec::Checkpoint,
        _ => NoiseSpec::Seeded { seed: settings.seed },
    };
    let noise = noise_for(model, spec, Some(stream), &device)?;
    let wplus = model.latent(z, settings.truncation);
    let image = model.generator.synthesize_wplus(wplus.clone(), &noise)?;
    let n_latent = model.generator.n_latent;
    let latent =
        Latent::new(read(wplus)?, n_latent, style_dim).map_err(|e| GenerateError::Input(e.to_string()))?;
    let image = to_images(image)?
        .pop()
        .ok_or_else(|| GenerateError::Device("the generator returned no image".into()))?;
    Ok(Generated {
        image,
        latent,
        seed: settings.seed,
        truncation: settings.truncation,
        noise: spec,
    })
}

/// A saved latent (W+ and any S-space edit) → image, with the given noise.
pub fn render(model: &StyleGan2, latent: &Latent, noise: NoiseSpec) -> Result<RgbImage, GenerateError> {
    let device = device_of(model);
    let g = &model.generator;
    if latent.n_latent != g.n_latent || latent.style_dim != g.style_dim {
        return Err(GenerateError::Input(format!(
            "the latent is [{}, {}] but this generator takes [{}, {}]: it was made by another StyleGAN2",
            latent.n_latent, latent.style_dim, g.n_latent, g.style_dim
        )));
    }
    let wplus: Tensor<3> = Tensor::from_data(
        TensorData::new(latent.wplus.clone(), [1, latent.n_latent, latent.style_dim]),
        &device,
    );
    let mut styles = g.styles(wplus)?;
    if let Some(delta) = &latent.s_conv_delta {
        let width = delta.len();
        let delta: Tensor<2> = Tensor::from_data(TensorData::new(delta.clone(), [1, width]), &device);
        styles = styles.add_conv_delta(delta)?;
    }
    let noise = noise_for(model, noise, None, &device)?;
    let image = g.synthesize(&styles, &noise, None)?;
    to_images(image)?
        .pop()
        .ok_or_else(|| GenerateError::Device("the generator returned no image".into()))
}

fn read<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>, GenerateError> {
    t.into_data()
        .try_to_vec::<f32>()
        .map_err(|e| GenerateError::Device(format!("{e:?}")))
}

/// `[B, 3, H, W]` in [−1, 1] → 8-bit RGB images: `clamp((x + 1)/2, 0, 1)·255`, rounded.
pub fn to_images(images: Tensor<4>) -> Result<Vec<RgbImage>, GenerateError> {
    let [b, c, h, w] = images.dims();
    if c != 3 {
        return Err(GenerateError::Input(format!("an image has {c} channels, not 3")));
    }
    let data = read(images)?;
    let plane = h * w;
    Ok((0..b)
        .map(|i| {
            let base = i * 3 * plane;
            RgbImage::from_fn(w as u32, h as u32, |x, y| {
                let at = y as usize * w + x as usize;
                let px = |ch: usize| {
                    let v = data[base + ch * plane + at];
                    (((v + 1.0) * 0.5).clamp(0.0, 1.0) * 255.0 + 0.5) as u8
                };
                image::Rgb([px(0), px(1), px(2)])
            })
        })
        .collect())
}
