//! AEI-Net's widths. The official network hard-codes them; reduced fixtures patch them, so every
//! layer is built from this table and the table is checked for consistency before anything else.

use crate::nets::common::{Shapes, shape_of};

/// Convs of the attribute encoder (256 → 2 px) and deconvs back up to 128 px.
pub const ENCODER_CONVS: usize = 7;
pub const DECODER_DECONVS: usize = 6;
/// AAD residual blocks of the generator, one per attribute map.
pub const GENERATOR_BLOCKS: usize = 8;
/// Seven stride-2 convs must meet `up1`'s 2×2 output, so the input size is fixed.
pub const INPUT_SIZE: usize = 256;

/// One `AAD_ResBlk(cin, cout, c_attr, c_id)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AadBlockConfig {
    pub cin: usize,
    pub cout: usize,
    pub c_attr: usize,
}

/// The widths of `AEI_Net(c_id)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AeiConfig {
    pub c_id: usize,
    /// Outputs of `conv1..conv7`.
    pub encoder_widths: Vec<usize>,
    /// Outputs of `deconv1..deconv6` (before the skip concatenation).
    pub decoder_widths: Vec<usize>,
    pub blocks: Vec<AadBlockConfig>,
    pub up1_out: usize,
}

/// A config that cannot describe an AEI-Net.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("AEI-Net config: {0}")]
pub struct AeiConfigError(pub String);

const OFFICIAL_ENCODER: [usize; ENCODER_CONVS] = [32, 64, 128, 256, 512, 1024, 1024];
const OFFICIAL_DECODER: [usize; DECODER_DECONVS] = [1024, 512, 256, 128, 64, 32];
const OFFICIAL_BLOCKS: [(usize, usize, usize); GENERATOR_BLOCKS] = [
    (1024, 1024, 1024),
    (1024, 1024, 2048),
    (1024, 1024, 1024),
    (1024, 512, 512),
    (512, 256, 256),
    (256, 128, 128),
    (128, 64, 64),
    (64, 3, 64),
];
const OFFICIAL_UP1: usize = 1024;

impl AeiConfig {
    /// `AEI_Net(c_id=512)`, the shape of `G_latest.pth`.
    pub fn official() -> AeiConfig {
        AeiConfig::divided(512, 1)
    }

    /// The official widths divided by `divisor` (image channels stay 3), as the reduced fixtures do.
    pub fn divided(c_id: usize, divisor: usize) -> AeiConfig {
        let d = |c: usize| if c == 3 { 3 } else { c / divisor.max(1) };
        AeiConfig {
            c_id,
            encoder_widths: OFFICIAL_ENCODER.iter().map(|&c| d(c)).collect(),
            decoder_widths: OFFICIAL_DECODER.iter().map(|&c| d(c)).collect(),
            blocks: OFFICIAL_BLOCKS
                .iter()
                .map(|&(cin, cout, c_attr)| AadBlockConfig {
                    cin: d(cin),
                    cout: d(cout),
                    c_attr: d(c_attr),
                })
                .collect(),
            up1_out: d(OFFICIAL_UP1),
        }
    }

    /// Reads a fixture's or a manifest's config. Keys may carry a `PATCHED_` prefix; explicit
    /// width lists win over a `channel_divisor`, and anything absent keeps the official value.
    pub fn from_json(config: &serde_json::Value) -> Result<AeiConfig, AeiConfigError> {
        let c_id = usize_of(config, "c_id")?.unwrap_or(512);
        let divisor = usize_of(config, "channel_divisor")?.unwrap_or(1);
        let mut out = AeiConfig::divided(c_id, divisor);
        if let Some(v) = list_of(config, "encoder_widths")? {
            out.encoder_widths = v;
        }
        if let Some(v) = list_of(config, "decoder_widths")? {
            out.decoder_widths = v;
        }
        if let Some(v) = usize_of(config, "up1_out")? {
            out.up1_out = v;
        }
        // The key is spelled `generator_blocks(cin,cout,c_attr)` in meta.json.
        let blocks_key = config.as_object().and_then(|map| {
            map.keys()
                .find(|k| k.trim_start_matches("PATCHED_").starts_with("generator_blocks"))
                .cloned()
        });
        if let Some(key) = blocks_key {
            let rows = config[&key]
                .as_array()
                .ok_or_else(|| AeiConfigError(format!("{key} is not a list")))?;
            out.blocks = rows
                .iter()
                .map(|row| {
                    let v = integers(row, &key)?;
                    match v.as_slice() {
                        &[cin, cout, c_attr] => Ok(AadBlockConfig { cin, cout, c_attr }),
                        _ => Err(AeiConfigError(format!(
                            "{key} has a row of {} values, not 3",
                            v.len()
                        ))),
                    }
                })
                .collect::<Result<_, _>>()?;
        }
        if let Some(hw) = list_of(config, "input_hw")?
            && hw != [INPUT_SIZE, INPUT_SIZE]
        {
            return Err(AeiConfigError(format!(
                "input_hw {hw:?}: AEI-Net only runs at {INPUT_SIZE}×{INPUT_SIZE}"
            )));
        }
        out.validate()?;
        Ok(out)
    }

    /// Channels of the attribute maps z_attr1..z_attr8, which the blocks consume in order.
    pub fn attr_channels(&self) -> Vec<usize> {
        let e = &self.encoder_widths;
        let mut out = vec![e[ENCODER_CONVS - 1]];
        for (k, &d) in self.decoder_widths.iter().enumerate() {
            // deconv{k+1} is concatenated with feat{6-k}, the output of conv{6-k}.
            out.push(d + e[ENCODER_CONVS - 2 - k]);
        }
        out.push(out[out.len() - 1]);
        out
    }

    /// Checks that every layer's input matches the previous layer's output.
    pub fn validate(&self) -> Result<(), AeiConfigError> {
        let counts = [
            ("encoder_widths", self.encoder_widths.len(), ENCODER_CONVS),
            ("decoder_widths", self.decoder_widths.len(), DECODER_DECONVS),
            ("generator_blocks", self.blocks.len(), GENERATOR_BLOCKS),
        ];
        for (name, got, want) in counts {
            if got != want {
                return Err(AeiConfigError(format!(
                    "{name} has {got} entries, the architecture has {want}"
                )));
            }
        }
        let widths = self
            .encoder_widths
            .iter()
            .chain(&self.decoder_widths)
            .chain([&self.up1_out, &self.c_id]);
        if widths.into_iter().any(|&w| w == 0) || self.blocks.iter().any(|b| b.cin == 0 || b.cout == 0) {
            return Err(AeiConfigError("a layer has zero channels".into()));
        }
        let mut cin = self.up1_out;
        for ((k, block), attr) in self.blocks.iter().enumerate().zip(self.attr_channels()) {
            if block.cin != cin {
                return Err(AeiConfigError(format!(
                    "AADBlk{} takes {} channels but receives {cin}",
                    k + 1,
                    block.cin
                )));
            }
            if block.c_attr != attr {
                return Err(AeiConfigError(format!(
                    "AADBlk{} takes {} attribute channels but z_attr{} has {attr}",
                    k + 1,
                    block.c_attr,
                    k + 1
                )));
            }
            cin = block.cout;
        }
        if cin != 3 {
            return Err(AeiConfigError(format!(
                "the last block gives {cin} channels, not an image's 3"
            )));
        }
        Ok(())
    }
}

impl AeiConfig {
    /// The widths of a bare `AEI_Net` state dict, read from its tensor shapes, so the released
    /// file and reduced test weights load alike; the result is checked like any config.
    pub fn from_shapes(shapes: &Shapes) -> Result<AeiConfig, AeiConfigError> {
        let get = |key: &str, rank: usize| shape_of(shapes, key, rank).map_err(AeiConfigError);
        // ConvTranspose2d weights are (in, out, kh, kw).
        let up1 = get("generator.up1.weight", 4)?;
        let (c_id, up1_out) = (up1[0], up1[1]);
        let encoder_widths = (1..=ENCODER_CONVS)
            .map(|k| get(&format!("encoder.conv{k}.0.weight"), 4).map(|s| s[0]))
            .collect::<Result<Vec<_>, _>>()?;
        let decoder_widths = (1..=DECODER_DECONVS)
            .map(|k| get(&format!("encoder.deconv{k}.deconv.weight"), 4).map(|s| s[1]))
            .collect::<Result<Vec<_>, _>>()?;
        let blocks = (1..=GENERATOR_BLOCKS)
            .map(|k| {
                let conv2 = get(&format!("generator.AADBlk{k}.conv2.weight"), 4)?;
                let gamma = get(&format!("generator.AADBlk{k}.AAD1.conv1.weight"), 4)?;
                Ok(AadBlockConfig {
                    cin: conv2[1],
                    cout: conv2[0],
                    c_attr: gamma[1],
                })
            })
            .collect::<Result<Vec<_>, AeiConfigError>>()?;
        let config = AeiConfig {
            c_id,
            encoder_widths,
            decoder_widths,
            blocks,
            up1_out,
        };
        config.validate()?;
        Ok(config)
    }
}

fn lookup<'a>(config: &'a serde_json::Value, key: &str) -> Option<&'a serde_json::Value> {
    config.get(key).or_else(|| config.get(format!("PATCHED_{key}")))
}

fn usize_of(config: &serde_json::Value, key: &str) -> Result<Option<usize>, AeiConfigError> {
    match lookup(config, key) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .map(|n| Some(n as usize))
            .ok_or_else(|| AeiConfigError(format!("{key} is not an integer"))),
    }
}

fn list_of(config: &serde_json::Value, key: &str) -> Result<Option<Vec<usize>>, AeiConfigError> {
    lookup(config, key).map(|v| integers(v, key)).transpose()
}

fn integers(v: &serde_json::Value, key: &str) -> Result<Vec<usize>, AeiConfigError> {
    let items = v
        .as_array()
        .ok_or_else(|| AeiConfigError(format!("{key} is not a list")))?;
    items
        .iter()
        .map(|x| {
            x.as_u64()
                .map(|n| n as usize)
                .ok_or_else(|| AeiConfigError(format!("{key} holds a non-integer")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_widths_chain_and_match_the_released_file() {
        let c = AeiConfig::official();
        assert_eq!(c.validate(), Ok(()));
        // From official_keys.txt: AADBlk2 convs read 2048 attribute channels, AADBlk8 reads 64.
        assert_eq!(c.attr_channels(), vec![1024, 2048, 1024, 512, 256, 128, 64, 64]);
    }

    #[test]
    fn inconsistent_widths_are_refused() {
        let mut c = AeiConfig::official();
        c.blocks[3].c_attr = 256;
        assert!(c.validate().unwrap_err().0.contains("AADBlk4"));
        let json = serde_json::json!({ "c_id": 512, "PATCHED_up1_out": 512 });
        assert!(AeiConfig::from_json(&json).is_err());
    }

    #[test]
    fn the_released_file_gives_the_official_config() {
        let shapes: Shapes = crate::weights::manifest::key_list("faceshifter-aei")
            .unwrap()
            .into_iter()
            .map(|k| (k.key, k.shape))
            .collect();
        assert_eq!(AeiConfig::from_shapes(&shapes), Ok(AeiConfig::official()));
        let mut narrow = shapes.clone();
        narrow.insert("generator.AADBlk5.conv2.weight".into(), vec![128, 512, 3, 3]);
        let e = AeiConfig::from_shapes(&narrow).unwrap_err();
        assert!(e.0.contains("AADBlk6"), "{e}");
        let mut short = shapes;
        short.remove("encoder.deconv3.deconv.weight");
        let e = AeiConfig::from_shapes(&short).unwrap_err();
        assert!(e.0.contains("encoder.deconv3.deconv.weight"), "{e}");
    }

    #[test]
    fn divisor_alone_gives_the_fixture_widths() {
        let json = serde_json::json!({ "c_id": 512, "PATCHED_channel_divisor": 16 });
        let c = AeiConfig::from_json(&json).unwrap();
        assert_eq!(c.encoder_widths, vec![2, 4, 8, 16, 32, 64, 64]);
        assert_eq!(
            c.blocks[1],
            AadBlockConfig {
                cin: 64,
                cout: 64,
                c_attr: 128
            }
        );
        assert_eq!(
            c.blocks[7],
            AadBlockConfig {
                cin: 4,
                cout: 3,
                c_attr: 4
            }
        );
    }
}
