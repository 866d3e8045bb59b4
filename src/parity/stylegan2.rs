//! StyleGAN2 parity: mapping, truncation, W+, S space, per-layer activations and images for the
//! plain, style-mixing, W+-input and S-edit cases of the fixture.

use burn::tensor::Device;
use burn::tensor::Tensor;

use super::{CaseResult, Fixture, ParityError};
use crate::nets::stylegan2::{Noise, StyleGan2, StyleGan2Config, StyleGanError, Trace, checkpoint, truncate};

impl From<StyleGanError> for ParityError {
    fn from(e: StyleGanError) -> ParityError {
        ParityError::Network(e.to_string())
    }
}

/// A scalar stored as a one-element tensor.
fn scalar(fx: &Fixture, name: &str) -> Result<f64, ParityError> {
    fx.raw(name)?
        .to_f32()
        .first()
        .map(|&v| v as f64)
        .ok_or_else(|| ParityError::Network(format!("{name} is empty")))
}

/// `noise.00`, `noise.01`, … in layer order.
fn fixture_noise(fx: &Fixture, device: &Device) -> Result<Vec<Tensor<4>>, ParityError> {
    let mut names = fx.names_with_prefix("noise.");
    names.sort_by_key(|n| {
        n.trim_start_matches("noise.")
            .parse::<usize>()
            .unwrap_or(usize::MAX)
    });
    names.iter().map(|n| fx.tensor::<4>(n, device)).collect()
}

/// A case compared against a reference stored under another name.
fn renamed(mut case: CaseResult, name: &str) -> CaseResult {
    case.name = name.to_string();
    case
}

pub fn run(fx: &Fixture, device: &Device) -> Result<Vec<CaseResult>, ParityError> {
    let config = StyleGan2Config::from_json(fx.config())?;
    let path = fx.path("weights.pth");
    let tensors = crate::weights::read_checkpoint(&path)?.flatten_tensors();
    let model: StyleGan2 = checkpoint::from_tensors(&tensors, &path, &config, device)?;
    let g = &model.generator;
    let noise = Noise::Given(fixture_noise(fx, device)?);
    let mut results = Vec::new();

    // Case A: z → w → truncated w → W+ → S → image, with every layer's activation.
    let avg = model.truncation_latent();
    results.push(fx.compare("truncation_latent", avg.clone()));
    let w = g.mapping(fx.tensor::<2>("z", device)?);
    results.push(fx.compare("w", w.clone()));
    let w_trunc = truncate(w, scalar(fx, "truncation")?, avg.clone());
    results.push(fx.compare("w_truncated", w_trunc.clone()));
    let latent = g.broadcast(w_trunc);
    results.push(fx.compare("latent", latent.clone()));
    let styles = g.styles(latent)?;
    for (i, (layer, s)) in styles.layers.iter().zip(&styles.styles).enumerate() {
        results.push(fx.compare(&format!("s.{i:02}.{}", layer.name), s.clone()));
    }
    results.push(fx.compare("s_conv_concat", styles.conv_concat()));
    let mut trace = Trace::new();
    let image = g.synthesize(&styles, &noise, Some(&mut trace))?;
    for (name, t) in trace {
        results.push(fx.compare(&format!("inter.{name}"), t));
    }
    results.push(fx.compare("output", image));
    // The checkpoint's own noise buffers must give the same image (randomize_noise=False).
    if model.noise_buffers.is_some() {
        let image = g.synthesize(&styles, &model.fixed_noise(), None)?;
        results.push(renamed(
            fx.compare("output", image),
            "output (checkpoint noise buffers)",
        ));
    }

    // S edit: the delta goes to the conv layers only.
    let delta = fx.tensor::<1>("sedit.delta_s_conv", device)?;
    let width = delta.dims()[0];
    let edited = styles.add_conv_delta(delta.reshape([1, width]))?;
    results.push(fx.compare("sedit.output", g.synthesize(&edited, &noise, None)?));

    // Style mixing with truncation applied to each style first.
    let inject = scalar(fx, "mix.inject_index")?.round() as usize;
    let mixed = model.mixed_latent(
        fx.tensor::<2>("mix.z1", device)?,
        fx.tensor::<2>("mix.z2", device)?,
        inject,
        scalar(fx, "mix.truncation")?,
    )?;
    results.push(fx.compare("mix.latent", mixed.clone()));
    results.push(fx.compare("mix.output", g.synthesize_wplus(mixed, &noise)?));

    // W+ given directly.
    let wplus = fx.tensor::<3>("wplus.latent", device)?;
    results.push(fx.compare("wplus.output", g.synthesize_wplus(wplus, &noise)?));
    Ok(results)
}
