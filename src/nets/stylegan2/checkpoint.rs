//! Reading rosinality's checkpoints: `{"g_ema": state_dict, "latent_avg": [style_dim]}`, possibly
//! with `g`, `d` and optimiser state beside them (ignored), or a bare generator state dict.

use std::path::Path;

use burn::tensor::Device;
use burn::tensor::{Tensor, TensorData};

use super::config::StyleGan2Config;
use super::generator::Generator;
use super::{StyleGan2, StyleGanError};
use crate::weights::load::{Tolerated, load_module};
use crate::weights::{RawTensor, TensorMap, read_checkpoint};

/// Keys of the generator state dict as the burn module names them: the mapping layers
/// `style.N` (N ≥ 1, `style.0` being the parameterless PixelNorm) become `style.(N−1)`, and the
/// `noises.*` buffers, which are inputs rather than parameters, are left out. Everything else
/// (including the `*.kernel` blur buffers, tolerated by the loader) passes unchanged.
pub fn generator_tensors(state: &TensorMap) -> TensorMap {
    let mut out = TensorMap::default();
    for (key, tensor) in &state.tensors {
        if key.starts_with("noises.") {
            continue;
        }
        let renamed = key
            .strip_prefix("style.")
            .and_then(|rest| rest.split_once('.'))
            .and_then(|(index, field)| {
                index
                    .parse::<usize>()
                    .ok()
                    .filter(|&i| i >= 1)
                    .map(|i| (i, field))
            })
            .map(|(i, field)| format!("style.{}.{field}", i - 1))
            .unwrap_or_else(|| key.clone());
        out.tensors.insert(renamed, tensor.clone());
    }
    out
}

/// The checkpoint key of a generator parameter's module path: the inverse of
/// [`generator_tensors`]' renaming (`style.0.weight` → `style.1.weight`).
pub fn generator_key(path: &str) -> String {
    path.strip_prefix("style.")
        .and_then(|rest| rest.split_once('.'))
        .and_then(|(index, field)| {
            index
                .parse::<usize>()
                .ok()
                .map(|i| format!("style.{}.{field}", i + 1))
        })
        .unwrap_or_else(|| path.to_string())
}

/// Every parameter's checkpoint key in `Generator.parameters()` order, the index of torch's
/// optimiser state. torch yields a module's own parameters before its children's, so a ToRGB's
/// `bias` comes before its `conv.*`, and a ModulatedConv2d's `weight` before its modulation.
pub fn generator_param_order(g: &Generator) -> Vec<String> {
    let mut keys = Vec::new();
    for i in 1..=g.style.len() {
        keys.push(format!("style.{i}.weight"));
        keys.push(format!("style.{i}.bias"));
    }
    keys.push("input.input".into());
    let styled = |name: String, keys: &mut Vec<String>| {
        for field in [
            "conv.weight",
            "conv.modulation.weight",
            "conv.modulation.bias",
            "noise.weight",
            "activate.bias",
        ] {
            keys.push(format!("{name}.{field}"));
        }
    };
    let rgb = |name: String, keys: &mut Vec<String>| {
        for field in [
            "bias",
            "conv.weight",
            "conv.modulation.weight",
            "conv.modulation.bias",
        ] {
            keys.push(format!("{name}.{field}"));
        }
    };
    styled("conv1".into(), &mut keys);
    rgb("to_rgb1".into(), &mut keys);
    for i in 0..g.convs.len() {
        styled(format!("convs.{i}"), &mut keys);
    }
    for i in 0..g.to_rgbs.len() {
        rgb(format!("to_rgbs.{i}"), &mut keys);
    }
    keys
}

/// Loads `g_ema` (or a bare generator state dict) and `latent_avg` from a checkpoint file.
pub fn load_stylegan2(
    path: &Path,
    config: &StyleGan2Config,
    device: &Device,
) -> Result<StyleGan2, StyleGanError> {
    let all = read_checkpoint(path)?.flatten_tensors();
    from_tensors(&all, path, config, device)
}

/// As [`load_stylegan2`], from tensors already read (`file` names them in errors).
pub fn from_tensors(
    all: &TensorMap,
    file: &Path,
    config: &StyleGan2Config,
    device: &Device,
) -> Result<StyleGan2, StyleGanError> {
    let state = if all.tensors.keys().any(|k| k.starts_with("g_ema.")) {
        all.sub("g_ema")
    } else if all.get("input.input").is_some() {
        all.clone()
    } else {
        return Err(StyleGanError::Layout {
            file: file.to_path_buf(),
            what: "no StyleGAN2 generator in the file (expected a \"g_ema\" state dict)".into(),
        });
    };
    let generator = load_module(
        Generator::new(config, device)?,
        &generator_tensors(&state),
        file,
        &Tolerated::suffixes(&[".kernel"]),
    )?;
    let latent_avg = match all.get("latent_avg") {
        Some(raw) if raw.numel() == config.style_dim => Some(Tensor::from_data(
            TensorData::new(raw.to_f32(), [config.style_dim]),
            device,
        )),
        Some(raw) => {
            return Err(StyleGanError::Layout {
                file: file.to_path_buf(),
                what: format!(
                    "latent_avg has shape {:?}, expected [{}]",
                    raw.shape, config.style_dim
                ),
            });
        }
        None => None,
    };
    let noise_buffers = (0..generator.num_layers())
        .map(|i| {
            state
                .get(&format!("noises.noise_{i}"))
                .filter(|t| t.shape.len() == 4)
                .map(|t| host_tensor::<4>(t, device))
        })
        .collect::<Option<Vec<_>>>();
    Ok(StyleGan2 {
        generator,
        latent_avg,
        noise_buffers,
    })
}

/// A checkpoint tensor on the device (the caller checked the rank).
pub(crate) fn host_tensor<const D: usize>(raw: &RawTensor, device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(raw.to_f32(), raw.shape.clone()), device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_keys_shift_down_and_noises_leave() {
        let mut state = TensorMap::default();
        for key in [
            "style.1.weight",
            "style.8.bias",
            "convs.0.conv.weight",
            "noises.noise_0",
            "style.10.bias",
        ] {
            state
                .tensors
                .insert(key.into(), RawTensor::f32(vec![1], vec![0.0]));
        }
        let keys: Vec<String> = generator_tensors(&state).tensors.into_keys().collect();
        assert_eq!(
            keys,
            vec![
                "convs.0.conv.weight",
                "style.0.weight",
                "style.7.bias",
                "style.9.bias"
            ]
        );
    }
}
