//! The `stylegan2_train` fixture's regulariser phases, replayed phase-locally (each from the
//! reference state, `meta.json`'s `phase_local` mode): the path-length step from
//! `g_step.params_after.*`. Results come back under the fixture's own key names, and
//! [`compare_grouped`] applies `meta.json`'s tolerance groups (first matching glob).

use burn::tensor::Device;

use super::{CaseResult, Fixture, ParityError, Tolerance};
use crate::nets::stylegan2::{StyleGan2Config, checkpoint};
use crate::pipeline::generator_training::regularizers::{
    PathInputs, PathSettings, RegularizerError, path_length_penalty,
};
use crate::weights::{RawTensor, TensorMap};

impl From<RegularizerError> for ParityError {
    fn from(e: RegularizerError) -> ParityError {
        ParityError::Network(e.to_string())
    }
}

fn scalar(fx: &Fixture, name: &str) -> Result<f64, ParityError> {
    fx.raw(name)?
        .to_f32()
        .first()
        .map(|&v| v as f64)
        .ok_or_else(|| ParityError::Network(format!("{name} is empty")))
}

/// `config` with one network's widths (`channels_override.g` / `.d`) as the channel map.
pub fn network_config(fx: &Fixture, network: &str) -> Result<serde_json::Value, ParityError> {
    let mut config = fx.config().clone();
    let widths = config["channels_override"][network].clone();
    if !widths.is_object() {
        return Err(ParityError::Meta {
            dir: fx.dir.clone(),
            field: format!("config.channels_override.{network}"),
        });
    }
    config["channels_override"] = widths;
    Ok(config)
}

/// `path_step` of the iteration from `g := g_step.params_after.*`: every key the phase writes
/// (`path_step.fake_img`, `.latents`, `.grad_latents`, `.path_lengths`, `.mean_path_length`,
/// `.path_loss`, `.weighted_path_loss`, `.dpenalty_dpath_lengths`, `.grad.*`, `.grad_norm`).
pub fn path_step(fx: &Fixture, device: &Device) -> Result<TensorMap, ParityError> {
    let ad = device.clone().autodiff();
    let config = StyleGan2Config::from_json(&network_config(fx, "g")?)?;
    let state = fx.io.sub("g_step.params_after");
    let file = fx.path("io.safetensors");
    let g = checkpoint::from_tensors(&state, &file, &config, &ad)?.generator;
    let mut noise_names = fx.names_with_prefix("in.path_step.noise.");
    noise_names.sort();
    let noise = noise_names
        .iter()
        .map(|n| fx.tensor::<4>(n, &ad))
        .collect::<Result<Vec<_>, _>>()?;
    let inputs = PathInputs {
        z: fx.tensor::<3>("in.path_step.z", &ad)?,
        inject_index: scalar(fx, "in.path_step.inject_index")?.round() as usize,
        noise,
        path_noise: fx.tensor::<4>("in.path_step.path_noise", &ad)?,
        mean_path_length: scalar(fx, "in.mean_path_length")?,
    };
    let settings = PathSettings {
        path_regularize: fx.config_f64("path_regularize")?,
        g_reg_every: fx.config_usize("g_reg_every")?,
        decay: fx.config_f64("path_length_decay")?,
    };
    let out = path_length_penalty(&g, &inputs, &settings)?;
    let one = |v: f64| RawTensor::f32(vec![1], vec![v as f32]);
    let mut map = TensorMap::default();
    let mut put = |key: &str, t: RawTensor| {
        map.tensors.insert(format!("path_step.{key}"), t);
    };
    put("fake_img", out.fake_img);
    put("latents", out.latents);
    put("grad_latents", out.grad_latents);
    put("path_lengths", out.path_lengths);
    put("mean_path_length", one(out.mean_path_length));
    put("path_loss", one(out.path_loss));
    put("weighted_path_loss", one(out.weighted_path_loss));
    put("dpenalty_dpath_lengths", out.dpenalty_dpath_lengths);
    put("grad_norm", one(out.grad_norm));
    for (name, grad) in out.grads.tensors {
        put(&format!("grad.{name}"), grad);
    }
    Ok(map)
}

/// fnmatch with `*` only (the globs `meta.json` uses).
fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            let Some(tail) = text.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len()).any(|i| tail.is_char_boundary(i) && glob(rest, &tail[i..]))
        }
    }
}

/// The `(abs, abs_of_tensor_max, rel)` of the first group of `tolerance.groups` whose globs
/// match `key`.
pub fn group_tolerance(fx: &Fixture, key: &str) -> Result<(String, f64, f64, f64), ParityError> {
    let groups = fx.meta["tolerance"]["groups"]
        .as_array()
        .ok_or_else(|| ParityError::Meta {
            dir: fx.dir.clone(),
            field: "tolerance.groups".into(),
        })?;
    for group in groups {
        let matches = group["match"]
            .as_array()
            .is_some_and(|globs| globs.iter().any(|g| g.as_str().is_some_and(|g| glob(g, key))));
        if matches {
            let num = |f: &str| group[f].as_f64().unwrap_or(0.0);
            let name = group["name"].as_str().unwrap_or("?").to_string();
            return Ok((name, num("abs"), num("abs_of_tensor_max"), num("rel")));
        }
    }
    Err(ParityError::Meta {
        dir: fx.dir.clone(),
        field: format!("tolerance group for {key}"),
    })
}

/// One case per output: `|port − ref| ≤ abs + abs_of_tensor_max·max|ref| + rel·|ref|`. The note
/// names the group.
pub fn compare_grouped(fx: &Fixture, outputs: &TensorMap) -> Result<Vec<CaseResult>, ParityError> {
    let mut cases = Vec::new();
    for (key, got) in &outputs.tensors {
        let (group, abs, of_max, rel) = group_tolerance(fx, key)?;
        let reference = fx.raw(key)?;
        let peak = reference
            .to_f32()
            .iter()
            .fold(0.0f64, |m, v| m.max(v.abs() as f64));
        let tol = Tolerance {
            abs: abs + of_max * peak,
            rel,
        };
        let mut case = fx.compare_values(key, &got.to_f32(), &got.shape, tol);
        let note = case.note.take().map(|n| format!("; {n}")).unwrap_or_default();
        case.note = Some(format!("group {group}{note}"));
        cases.push(case);
    }
    Ok(cases)
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn globs_match_like_fnmatch() {
        assert!(glob(
            "*.grad.*noise.weight",
            "path_step.grad.convs.0.noise.weight"
        ));
        assert!(!glob("*.grad.*noise.weight", "path_step.grad.convs.0.noise.bias"));
        assert!(glob("r1_step.r1_loss", "r1_step.r1_loss"));
        assert!(glob("*", "anything"));
        assert!(!glob("final.d.*", "final.d_optim.step"));
    }
}
