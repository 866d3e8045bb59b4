//! StyleCLIP global directions parity: text direction from the 79 templates' features, relevance
//! through `fs3.npy`, threshold, boundary scaled by `S_mean_std`, edited S for several α, the
//! style statistics, the GUI's automatic β, and `GetFs`.

use burn::tensor::Device;
use burn::tensor::Tensor;

use super::{CaseResult, Fixture, ParityError, Tolerance};
use crate::nets::styleclip::global::{self, GlobalDirections, SLayout};
use crate::weights::read_checkpoint;

fn layout(fx: &Fixture) -> Result<SLayout, ParityError> {
    let config = fx.config();
    let usizes = |v: &serde_json::Value| -> Option<Vec<usize>> {
        v.as_array()?
            .iter()
            .map(|x| x.as_u64().map(|x| x as usize))
            .collect()
    };
    let dims = usizes(&config["s_dims"]).ok_or_else(|| ParityError::Meta {
        dir: fx.dir.clone(),
        field: "config.s_dims".into(),
    })?;
    let conv = config
        .as_object()
        .and_then(|o| o.iter().find(|(k, _)| k.starts_with("conv_layer_indices")))
        .and_then(|(_, v)| usizes(v));
    Ok(SLayout::new(dims, conv))
}

pub fn run(fx: &Fixture, device: &Device) -> Result<Vec<CaseResult>, ParityError> {
    let mut results = Vec::new();
    let exact = Tolerance { abs: 0.0, rel: 0.0 };
    let layout = layout(fx)?;

    let fs3_path = fx.path("fs3.npy");
    let fs3 = read_checkpoint(&fs3_path)?;
    let s_mean_std = read_checkpoint(&fx.path("S_mean_std"))?;
    if let crate::weights::Value::Tensor(raw) = &fs3 {
        results.push(fx.compare_values("input.fs3", &raw.to_f32(), &raw.shape, exact));
    }
    let directions = GlobalDirections::from_values(&fs3, &s_mean_std, layout.clone(), device)
        .map_err(|e| ParityError::Network(format!("{}: {e}", fs3_path.display())))?;

    let target = global::class_embedding(fx.tensor::<2>("input.text_features.target", device)?);
    let neutral = global::class_embedding(fx.tensor::<2>("input.text_features.neutral", device)?);
    results.push(fx.compare(
        "inter.class_embeddings",
        Tensor::stack::<2>(vec![target.clone(), neutral.clone()], 0),
    ));
    let dt = global::text_direction(target, neutral);
    results.push(fx.compare("output.dt", dt.clone()));

    let relevance = directions
        .relevance(dt)
        .map_err(|e| ParityError::Network(e.to_string()))?;
    results.push(fx.compare_values("inter.relevance", &relevance, &[relevance.len()], fx.tolerance));
    let beta = fx.raw("input.beta")?.to_f32().first().copied().unwrap_or(0.15);
    let direction = directions.direction(&relevance, beta, device);
    results.push(fx.compare_values(
        "inter.ds_imp",
        &direction.ds_imp,
        &[direction.ds_imp.len()],
        fx.tolerance,
    ));
    results.push(fx.compare_values("output.num_c", &[direction.num_c as f32], &[], exact));
    for (l, b) in direction.boundary.iter().enumerate() {
        results.push(fx.compare(&format!("output.boundary.{l}"), b.clone()));
    }

    let alphas = fx.raw("input.alpha")?.to_f32();
    let s = (0..layout.dims.len())
        .map(|l| fx.tensor::<2>(&format!("input.s.{l}"), device))
        .collect::<Result<Vec<_>, _>>()?;
    for (l, edited) in global::apply(&s, &direction.boundary, &alphas)
        .into_iter()
        .enumerate()
    {
        results.push(fx.compare(&format!("output.edited_s.{l}"), edited));
    }

    let samples = (0..layout.dims.len())
        .map(|l| fx.tensor::<2>(&format!("input.s_samples.{l}"), device))
        .collect::<Result<Vec<_>, _>>()?;
    let (means, stds) = global::s_statistics(&samples);
    for (l, (m, sd)) in means.into_iter().zip(stds).enumerate() {
        results.push(fx.compare(&format!("output.s_mean.{l}"), m));
        results.push(fx.compare(&format!("output.s_std.{l}"), sd));
    }

    let threshold = fx.config_usize("gui_c_threshold").unwrap_or(20);
    let (auto, sweep) = global::auto_beta(&relevance, threshold);
    let betas: Vec<f32> = sweep.iter().map(|(b, _)| *b as f32).collect();
    let counts: Vec<f32> = sweep.iter().map(|(_, n)| *n as f32).collect();
    results.push(fx.compare_values(
        "output.beta_sweep",
        &betas,
        &[betas.len()],
        Tolerance { abs: 1e-7, rel: 0.0 },
    ));
    results.push(fx.compare_values("output.num_c_sweep", &counts, &[counts.len()], exact));
    results.push(fx.compare_values(
        "output.auto_beta",
        &[auto as f32],
        &[],
        Tolerance { abs: 1e-7, rel: 0.0 },
    ));

    let fs = global::channel_relevance(fx.tensor::<4>("input.getfs.all_f", device)?);
    results.push(fx.compare("output.getfs.fs3", fs));
    Ok(results)
}
