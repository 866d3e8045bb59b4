//! StyleCLIP latent mapper parity: the checkpoint (`{"state_dict","opts"}` with the generator
//! beside the mapper) through the reader, every level's activations, the delta and `w_hat`.
//! The decoder images (`output.image_w*`) belong to the StyleGAN2 port and are not checked here.

use burn::tensor::Device;

use super::{CaseResult, Fixture, ParityError};
use crate::nets::styleclip::mapper::{LevelsMapper, STEP};
use crate::weights::read_checkpoint;

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
    results.push(fx.compare("output.delta", delta.clone()));
    results.push(fx.compare("output.w_hat", w + delta * step));
    Ok(results)
}
