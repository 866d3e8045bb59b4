//! The generator's config read off a state dict: resolution from the number of ToRGB layers,
//! widths from the conv weights, `style_dim` and `n_mlp` from the mapping layers. The released
//! FFHQ file gives [`StyleGan2Config::ffhq_1024`]; reduced test weights give their own shape.

use std::collections::BTreeMap;

use super::StyleGanError;
use super::config::StyleGan2Config;
use crate::weights::TensorMap;

/// Generator-local key → shape (no `g_ema.` prefix).
pub type Shapes = BTreeMap<String, Vec<usize>>;

/// The shapes of a generator state dict, taken from `g_ema` when the map holds a whole
/// checkpoint (`{"g_ema", "latent_avg", …}`), else from the map itself.
pub fn generator_shapes(all: &TensorMap) -> Shapes {
    let prefixed = all.tensors.keys().any(|k| k.starts_with("g_ema."));
    all.tensors
        .iter()
        .filter_map(|(k, t)| {
            let key = if prefixed {
                k.strip_prefix("g_ema.")?
            } else {
                k.as_str()
            };
            Some((key.to_string(), t.shape.clone()))
        })
        .collect()
}

fn count_indexed(shapes: &Shapes, prefix: &str, suffix: &str, first: usize) -> usize {
    (first..)
        .take_while(|i| shapes.contains_key(&format!("{prefix}{i}{suffix}")))
        .count()
}

fn dim(shapes: &Shapes, key: &str, axis: usize) -> Result<usize, StyleGanError> {
    shapes.get(key).and_then(|s| s.get(axis).copied()).ok_or_else(|| {
        StyleGanError::Config(format!(
            "the state dict has no {key} (or it has too few dimensions)"
        ))
    })
}

/// The config from the shapes alone. The blur kernel is rosinality's `[1, 3, 3, 1]` and the
/// mapping learning-rate multiplier 0.01 (neither is stored as a shape; see
/// [`config_from_state`] for the kernel's values).
pub fn config_from_shapes(shapes: &Shapes) -> Result<StyleGan2Config, StyleGanError> {
    let n_mlp = count_indexed(shapes, "style.", ".weight", 1);
    if n_mlp == 0 {
        return Err(StyleGanError::Config(
            "no mapping layers (style.1.weight …): not a StyleGAN2 generator".into(),
        ));
    }
    let style_dim = dim(shapes, "style.1.weight", 1)?;
    let rgbs = count_indexed(shapes, "to_rgbs.", ".conv.weight", 0);
    let convs = count_indexed(shapes, "convs.", ".conv.weight", 0);
    if convs != 2 * rgbs {
        return Err(StyleGanError::Config(format!(
            "{convs} synthesis convs for {rgbs} ToRGB layers (expected two per resolution)"
        )));
    }
    let size = 4usize
        .checked_shl(rgbs as u32)
        .filter(|s| *s <= 1 << 16)
        .ok_or_else(|| StyleGanError::Config(format!("{rgbs} ToRGB layers is not a plausible generator")))?;
    let c4 = dim(shapes, "input.input", 1)?;
    let mut channels = BTreeMap::from([(4, c4)]);
    for k in 0..rgbs {
        channels.insert(8 << k, dim(shapes, &format!("convs.{}.conv.weight", 2 * k), 1)?);
    }
    // GPEN's decoder concatenates its noise as extra channels, doubling what the activation sees.
    let isconcat = dim(shapes, "conv1.activate.bias", 0)? == 2 * c4;
    let config = StyleGan2Config {
        size,
        style_dim,
        n_mlp,
        channels,
        isconcat,
        ..StyleGan2Config::rosinality(size, style_dim, n_mlp, 2)
    };
    config.validate()?;
    Ok(config)
}

/// The config from a state dict's tensors: the shapes, plus the blur taps recovered from the
/// stored blur kernel when there is one (its row sums are proportional to the 1-D taps).
pub fn config_from_state(all: &TensorMap) -> Result<StyleGan2Config, StyleGanError> {
    let mut config = config_from_shapes(&generator_shapes(all))?;
    let prefix = if all.tensors.keys().any(|k| k.starts_with("g_ema.")) {
        "g_ema."
    } else {
        ""
    };
    if let Some(kernel) = all.get(&format!("{prefix}convs.0.conv.blur.kernel"))
        && let [rows, cols] = kernel.shape[..]
        && rows == cols
        && rows > 0
    {
        let values = kernel.to_f32();
        let sums: Vec<f32> = values.chunks(cols).map(|r| r.iter().sum()).collect();
        if let Some(&first) = sums.first()
            && first.abs() > f32::EPSILON
            && sums.iter().all(|s| s.is_finite())
        {
            // Scaled so the first tap is 1: [1, 3, 3, 1] comes back exactly for the released kernel.
            config.blur_kernel = sums.iter().map(|s| s / first).collect();
        }
    }
    config.validate()?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weights::RawTensor;

    fn shapes(entries: &[(&str, &[usize])]) -> TensorMap {
        let mut map = TensorMap::default();
        for (k, s) in entries {
            let n = s.iter().product();
            map.tensors
                .insert(k.to_string(), RawTensor::f32(s.to_vec(), vec![0.0; n]));
        }
        map
    }

    #[test]
    fn a_tiny_generator_is_read_off_its_shapes() {
        let map = shapes(&[
            ("g_ema.style.1.weight", &[8, 8]),
            ("g_ema.style.2.weight", &[8, 8]),
            ("g_ema.input.input", &[1, 6, 4, 4]),
            ("g_ema.conv1.activate.bias", &[6]),
            ("g_ema.convs.0.conv.weight", &[1, 5, 6, 3, 3]),
            ("g_ema.convs.1.conv.weight", &[1, 5, 5, 3, 3]),
            ("g_ema.to_rgbs.0.conv.weight", &[1, 3, 5, 1, 1]),
            ("latent_avg", &[8]),
        ]);
        let c = config_from_state(&map).unwrap();
        assert_eq!((c.size, c.style_dim, c.n_mlp, c.isconcat), (8, 8, 2, false));
        assert_eq!(c.channels, BTreeMap::from([(4, 6), (8, 5)]));
        assert_eq!(c.blur_kernel, vec![1.0, 3.0, 3.0, 1.0]);
    }

    #[test]
    fn a_state_dict_without_a_mapping_is_refused() {
        let map = shapes(&[("input.input", &[1, 6, 4, 4])]);
        let err = config_from_state(&map).unwrap_err().to_string();
        assert!(err.contains("not a StyleGAN2 generator"), "{err}");
    }
}
