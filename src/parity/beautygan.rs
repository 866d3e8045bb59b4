//! BeautyGAN parity: both encoders, the merge, the bottleneck and both heads on two real crops.

use burn::tensor::Device;

use super::{CaseResult, Fixture, ParityError};
use crate::nets::beautygan::{BeautyGanConfig, Generator};
use crate::weights::read_checkpoint;

pub fn run(fx: &Fixture, device: &Device) -> Result<Vec<CaseResult>, ParityError> {
    let config = BeautyGanConfig::from_json(fx.config()).map_err(|e| ParityError::Meta {
        dir: fx.dir.clone(),
        field: format!("config ({e})"),
    })?;
    let path = fx.path("weights.pth");
    let tensors = read_checkpoint(&path)?.flatten_tensors();
    let generator = Generator::from_state_dict(&config, &tensors, &path, device)?;

    // `inter.main.K` names the output of main[K]; which K are stored depends on repeat_num.
    let taps: Vec<(usize, String)> = fx
        .names_with_prefix("inter.main.")
        .into_iter()
        .filter_map(|name| name["inter.main.".len()..].parse().ok().map(|k| (k, name)))
        .collect();
    let tap_indices: Vec<usize> = taps.iter().map(|(k, _)| *k).collect();

    let x = fx.tensor::<4>("input.x_nonmakeup", device)?;
    let y = fx.tensor::<4>("input.y_makeup_ref", device)?;
    let (out, trace) = generator
        .forward_traced(x, y, &tap_indices)
        .map_err(|e| ParityError::Network(format!("{}: {e}", fx.dir.display())))?;

    let mut results = Vec::new();
    if let Some((ex, ey)) = trace.encoded {
        results.push(fx.compare("inter.branch_0", ex));
        results.push(fx.compare("inter.branch_1", ey));
    }
    for (k, name) in &taps {
        match trace.main.iter().find(|(i, _)| i == k) {
            Some((_, t)) => results.push(fx.compare(name, t.clone())),
            None => results.push(CaseResult::fail(
                name,
                format!("main has {} elements", generator.main.len()),
            )),
        }
    }
    results.push(fx.compare("output.a_x_with_makeup", out.with_makeup));
    results.push(fx.compare("output.b_y_makeup_removed", out.makeup_removed));
    Ok(results)
}
