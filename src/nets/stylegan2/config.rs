//! The generator's shape: resolution, widths per resolution, mapping depth, blur kernel.

use std::collections::BTreeMap;

use super::StyleGanError;

/// Everything that fixes the parameter shapes of a StyleGAN2 generator (rosinality's `Generator`
/// constructor, plus GPEN's `narrow` and `isconcat`).
#[derive(Debug, Clone, PartialEq)]
pub struct StyleGan2Config {
    /// Output side in pixels, a power of two ≥ 4.
    pub size: usize,
    pub style_dim: usize,
    /// Number of EqualLinear layers of the mapping network.
    pub n_mlp: usize,
    /// The 1-D blur taps before normalisation (`[1, 3, 3, 1]`).
    pub blur_kernel: Vec<f32>,
    /// Learning-rate multiplier of the mapping layers (0.01), applied at run time.
    pub lr_mlp: f64,
    /// Feature channels of the synthesis layers at each resolution 4, 8, …, size.
    pub channels: BTreeMap<usize, usize>,
    /// GPEN: noise inputs are concatenated (as extra channels) rather than added.
    pub isconcat: bool,
}

/// The widths rosinality and GPEN hard-code: `int(base · narrow)`, where the base is 512 up to 32 px
/// and `16384 · channel_multiplier / r` from 64 px on.
pub fn standard_channels(size: usize, channel_multiplier: usize, narrow: f64) -> BTreeMap<usize, usize> {
    let mut map = BTreeMap::new();
    let mut r = 4;
    while r <= size.max(4) {
        let base = if r <= 32 {
            512.0
        } else {
            (16384 / r * channel_multiplier) as f64
        };
        map.insert(r, (base * narrow) as usize);
        r *= 2;
    }
    map
}

impl StyleGan2Config {
    /// The released FFHQ config-f generator (`stylegan2-ffhq-config-f.pt`).
    pub fn ffhq_1024() -> StyleGan2Config {
        StyleGan2Config::rosinality(1024, 512, 8, 2)
    }

    /// rosinality's `Generator(size, style_dim, n_mlp, channel_multiplier)`.
    pub fn rosinality(
        size: usize,
        style_dim: usize,
        n_mlp: usize,
        channel_multiplier: usize,
    ) -> StyleGan2Config {
        StyleGan2Config {
            size,
            style_dim,
            n_mlp,
            blur_kernel: vec![1.0, 3.0, 3.0, 1.0],
            lr_mlp: 0.01,
            channels: standard_channels(size, channel_multiplier, 1.0),
            isconcat: false,
        }
    }

    /// GPEN's decoder: widths scaled by `narrow`, noise concatenated.
    pub fn gpen(size: usize, style_dim: usize, n_mlp: usize, channel_multiplier: usize, narrow: f64) -> Self {
        StyleGan2Config {
            channels: standard_channels(size, channel_multiplier, narrow),
            isconcat: true,
            ..StyleGan2Config::rosinality(size, style_dim, n_mlp, channel_multiplier)
        }
    }

    /// A config from a fixture's `meta.json` `config` (or any JSON of the same keys): `size`,
    /// `style_dim`, `n_mlp`, `channel_multiplier`, optional `narrow`, `isconcat`, `lr_mlp`,
    /// `blur_kernel`, and `channels_override`/`channels` (`{"4": 32, …}`) replacing the standard widths.
    pub fn from_json(v: &serde_json::Value) -> Result<StyleGan2Config, StyleGanError> {
        let int = |key: &str| -> Result<usize, StyleGanError> {
            v[key]
                .as_u64()
                .map(|x| x as usize)
                .ok_or_else(|| StyleGanError::Config(format!("no integer {key}")))
        };
        let size = int("size")?;
        let cm = v["channel_multiplier"].as_u64().unwrap_or(2) as usize;
        let narrow = v["narrow"].as_f64().unwrap_or(1.0);
        let mut config = StyleGan2Config {
            size,
            style_dim: int("style_dim")?,
            n_mlp: int("n_mlp")?,
            blur_kernel: vec![1.0, 3.0, 3.0, 1.0],
            lr_mlp: v["lr_mlp"].as_f64().unwrap_or(0.01),
            channels: standard_channels(size, cm, narrow),
            isconcat: v["isconcat"].as_bool().unwrap_or(false),
        };
        if let Some(taps) = v["blur_kernel"].as_array() {
            config.blur_kernel = taps
                .iter()
                .map(|t| t.as_f64().map(|x| x as f32))
                .collect::<Option<Vec<f32>>>()
                .ok_or_else(|| StyleGanError::Config("blur_kernel is not a list of numbers".into()))?;
        }
        let explicit = v.get("channels_override").or_else(|| v.get("channels"));
        if let Some(map) = explicit.and_then(|m| m.as_object()) {
            for (key, value) in map {
                let r: usize = key
                    .parse()
                    .map_err(|_| StyleGanError::Config(format!("channel key {key}")))?;
                let c = value
                    .as_u64()
                    .ok_or_else(|| StyleGanError::Config(format!("channels[{key}]")))?;
                config.channels.insert(r, c as usize);
            }
        }
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), StyleGanError> {
        if self.size < 4 || !self.size.is_power_of_two() {
            return Err(StyleGanError::Config(format!(
                "size {} is not a power of two ≥ 4",
                self.size
            )));
        }
        if self.style_dim == 0 || self.blur_kernel.is_empty() {
            return Err(StyleGanError::Config(
                "style_dim and blur_kernel must not be empty".into(),
            ));
        }
        let sum: f32 = self.blur_kernel.iter().sum();
        if sum == 0.0 {
            return Err(StyleGanError::Config("blur_kernel sums to zero".into()));
        }
        let mut r = 4;
        while r <= self.size {
            match self.channels.get(&r) {
                Some(&c) if c > 0 => {}
                _ => {
                    return Err(StyleGanError::Config(format!(
                        "no channel count for resolution {r}"
                    )));
                }
            }
            r *= 2;
        }
        Ok(())
    }

    pub fn log_size(&self) -> usize {
        self.size.trailing_zeros() as usize
    }

    /// Rows of W+: `2·log2(size) − 2`.
    pub fn n_latent(&self) -> usize {
        2 * self.log_size() - 2
    }

    /// Noise inputs, one per StyledConv: `2·log2(size) − 3`.
    pub fn num_layers(&self) -> usize {
        2 * self.log_size() - 3
    }

    /// Width at resolution `r` (validated to exist).
    pub fn channels_at(&self, r: usize) -> usize {
        self.channels.get(&r).copied().unwrap_or(0)
    }

    /// The normalised 1-D blur taps (`make_kernel` is their outer product).
    pub fn blur_taps(&self) -> Vec<f32> {
        let sum: f32 = self.blur_kernel.iter().sum();
        self.blur_kernel.iter().map(|t| t / sum).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_widths_match_the_released_generators() {
        let ffhq = StyleGan2Config::ffhq_1024();
        let widths: Vec<usize> = ffhq.channels.values().copied().collect();
        assert_eq!(widths, vec![512, 512, 512, 512, 512, 256, 128, 64, 32]);
        assert_eq!((ffhq.n_latent(), ffhq.num_layers()), (18, 17));
        let bfr256 = StyleGan2Config::gpen(256, 512, 8, 1, 0.5);
        assert_eq!(
            bfr256.channels.values().copied().collect::<Vec<_>>(),
            vec![256, 256, 256, 256, 128, 64, 32]
        );
    }

    #[test]
    fn rejects_sizes_that_are_not_powers_of_two() {
        let mut c = StyleGan2Config::ffhq_1024();
        c.size = 1000;
        assert!(c.validate().is_err());
    }
}
