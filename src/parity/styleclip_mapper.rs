//! StyleCLIP latent mapper parity: the checkpoint (`{"state_dict","opts"}` with the generator
//! beside the mapper) through the reader, every level's activations, the delta and `w_hat`, and
//! the end-to-end images: the frozen decoder stored in the same file, rendered from `w` and `w_hat`
//! with its own noise buffers (`randomize_noise=False`).

use burn::tensor::Device;

use super::{CaseResult, Fixture, ParityError};
use crate::nets::styleclip::mapper::{LevelsMapper, STEP};
use crate::nets::stylegan2::{StyleGan2Config, checkpoint};
use crate::weights::read_checkpoint;

/// The decoder's constructor arguments from `meta.json` (`stylegan_size`, `decoder_style_dim`,
/// `decoder_n_mlp`, `decoder_channels`), in the names [`StyleGan2Config::from_json`] reads.
fn decoder_config(fx: &Fixture) -> Result<StyleGan2Config, ParityError> {
    let c = fx.config();
    let json = serde_json::json!({
        "size": c["stylegan_size"],
        "style_dim": c["decoder_style_dim"],
        "n_mlp": c["decoder_n_mlp"],
        "channels": c["decoder_channels"],
    });
    Ok(StyleGan2Config::from_json(&json)?)
}

pub fn run(fx: &Fixture, device: &Device) -> Result<Vec<CaseResult>, ParityError> {
    let path = fx.path("weights.pth");
    let checkpoint = read_checkpoint(&path)?;
    let (mapper, info) = LevelsMapper::from_checkpoint(&checkpoint, &path, device).map_err(|e| match e {
        crate::nets::styleclip::mapper::MapperError::Load(l) => ParityError::Load(l),
        other => ParityError::Network(other.to_string()),
    })?;
    let mut results = Vec::new();
    if let Ok(dim) = fx.config_usize("latent_dim")
        && dim != info.latent_dim
    {
        results.push(CaseResult::fail(
            "latent_dim",
            format!("checkpoint {}, meta.json {dim}", info.latent_dim),
        ));
    }
    let w = fx.tensor::<3>("input.w_plus", device)?;
    let mut trace = Vec::new();
    let delta = mapper.delta_traced(w.clone(), Some(&mut trace));
    for (level, acts) in trace {
        for (i, act) in acts.into_iter().enumerate() {
            results.push(fx.compare(&format!("inter.{level}.mapping.{i}"), act));
        }
    }
    let step = fx.config_f64("step").map(|s| s as f32).unwrap_or(STEP);
    let w_hat = w.clone() + delta.clone() * step;
    results.push(fx.compare("output.delta", delta));
    results.push(fx.compare("output.w_hat", w_hat.clone()));

    let decoder = checkpoint
        .get("state_dict")
        .unwrap_or(&checkpoint)
        .flatten_tensors()
        .sub("decoder");
    let decoder = checkpoint::from_tensors(&decoder, &path, &decoder_config(fx)?, device)?;
    let noise = decoder.fixed_noise();
    let g = &decoder.generator;
    results.push(fx.compare("output.image_w", g.synthesize_wplus(w, &noise)?));
    results.push(fx.compare("output.image_w_hat", g.synthesize_wplus(w_hat, &noise)?));
    Ok(results)
}
