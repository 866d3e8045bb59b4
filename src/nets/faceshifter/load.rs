//! Loading `G_latest.pth` part by part, and telling it apart from same-named generators.

use std::path::Path;

use burn::module::Module;
use burn::tensor::Device;

use super::aad::AadResBlk;
use super::config::{AeiConfig, GENERATOR_BLOCKS};
use super::encoder::MlAttrEncoder;
use super::generator::{self, AadGenerator};
use super::{AeiError, AeiNet};
use crate::nets::common::{SeqChild, load_error_in_file_keys, rename_seq_keys, shapes_of};
use crate::weights::TensorMap;
use crate::weights::load::{LoadError, Tolerated, load_module};

/// `encoder.conv{k}` is `Sequential(Conv2d, BatchNorm2d, LeakyReLU)`.
pub(super) const ENCODER_SEQ: &[SeqChild] = &[
    SeqChild {
        parent: "conv*",
        index: "0",
        field: "conv",
    },
    SeqChild {
        parent: "conv*",
        index: "1",
        field: "bn",
    },
];

const UP1_WEIGHT: &str = "generator.up1.weight";

/// Refuses files that are not taotaonice's `AEI_Net` before any tensor is copied.
fn check_layout(tensors: &TensorMap, file: &Path, config: &AeiConfig) -> Result<(), AeiError> {
    let wrong = |reason: String| AeiError::WrongCheckpoint {
        file: file.to_path_buf(),
        reason,
    };
    let expected = [config.c_id, config.up1_out, 2, 2];
    match tensors.get(UP1_WEIGHT) {
        Some(t) if t.shape == expected => Ok(()),
        Some(t) => Err(wrong(format!(
            "{UP1_WEIGHT} is {:?} where taotaonice/FaceShifter's AEI_Net(c_id={}) has {expected:?}: \
             this is a generator of another size or repository",
            t.shape, config.c_id
        ))),
        None => Err(not_aei(tensors, file)),
    }
}

/// Why a file without `generator.up1.weight` is not taotaonice's AEI-Net, naming the same-named
/// generator of another repository when that is what it is.
pub(super) fn not_aei(tensors: &TensorMap, file: &Path) -> AeiError {
    let reason = if tensors.tensors.keys().any(|k| k.starts_with("generator.add")) {
        "this is the 64×64 generator of Heonozis/FaceShifter-pytorch (keys generator.add1…, encoder.conv1…conv5), \
         which shares the name G_latest.pth; the face swap needs the 256×256 AEI_Net(c_id=512) checkpoint of \
         taotaonice/FaceShifter"
            .to_string()
    } else {
        let first: Vec<&str> = tensors.tensors.keys().take(4).map(String::as_str).collect();
        format!(
            "not a bare AEI_Net state dict (no {UP1_WEIGHT}; the file starts with {})",
            if first.is_empty() {
                "no tensors".to_string()
            } else {
                first.join(", ")
            }
        )
    };
    AeiError::WrongCheckpoint {
        file: file.to_path_buf(),
        reason,
    }
}

/// The config a state dict describes; files that are not this generator are refused first, by name.
pub(super) fn infer_config(tensors: &TensorMap, file: &Path) -> Result<AeiConfig, AeiError> {
    if tensors.get(UP1_WEIGHT).is_none() {
        return Err(not_aei(tensors, file));
    }
    AeiConfig::from_shapes(&shapes_of(tensors)).map_err(|e| AeiError::WrongCheckpoint {
        file: file.to_path_buf(),
        reason: format!("its tensor shapes do not describe an AEI-Net: {}", e.0),
    })
}

/// Moves the entries under `prefix` (dot included) out of `tensors`, with the prefix removed.
fn take_prefix(tensors: &mut TensorMap, prefix: &str) -> TensorMap {
    let keys: Vec<String> = tensors
        .tensors
        .keys()
        .filter(|k| k.starts_with(prefix))
        .cloned()
        .collect();
    let mut part = TensorMap::default();
    for key in keys {
        if let Some(t) = tensors.tensors.remove(&key) {
            part.tensors.insert(key[prefix.len()..].to_string(), t);
        }
    }
    part
}

/// Collects the errors of every part, so one message lists everything that did not fit.
struct Report {
    all: LoadError,
}

impl Report {
    fn part<M: Module>(
        &mut self,
        module: M,
        tensors: TensorMap,
        file: &Path,
        prefix: &str,
        table: &[SeqChild],
    ) -> Option<M> {
        let tensors = rename_seq_keys(tensors, table);
        match load_module(
            module,
            &tensors,
            file,
            &Tolerated::suffixes(&["num_batches_tracked"]),
        ) {
            Ok(m) => Some(m),
            Err(e) => {
                let e = load_error_in_file_keys(e, table, prefix);
                self.all.missing.extend(e.missing);
                self.all.unexpected.extend(e.unexpected);
                self.all.mismatched.extend(e.mismatched);
                None
            }
        }
    }
}

pub(super) fn load(
    mut tensors: TensorMap,
    file: &Path,
    config: &AeiConfig,
    device: &Device,
) -> Result<AeiNet, AeiError> {
    config.validate()?;
    check_layout(&tensors, file, config)?;
    let mut report = Report {
        all: LoadError {
            file: file.to_path_buf(),
            missing: Vec::new(),
            unexpected: Vec::new(),
            mismatched: Vec::new(),
        },
    };

    let part = take_prefix(&mut tensors, "encoder.");
    let encoder = report.part(
        MlAttrEncoder::new(config, device),
        part,
        file,
        "encoder.",
        ENCODER_SEQ,
    );
    let part = take_prefix(&mut tensors, "generator.up1.");
    let up1 = report.part(generator::up1(config, device), part, file, "generator.up1.", &[]);
    let mut blocks: Vec<Option<AadResBlk>> = Vec::with_capacity(GENERATOR_BLOCKS);
    for (k, &block) in config.blocks.iter().enumerate() {
        let prefix = format!("generator.AADBlk{}.", k + 1);
        let part = take_prefix(&mut tensors, &prefix);
        blocks.push(report.part(
            AadResBlk::new(block, config.c_id, device),
            part,
            file,
            &prefix,
            &[],
        ));
    }
    report.all.unexpected.extend(
        tensors
            .tensors
            .into_keys()
            .filter(|k| !k.ends_with("num_batches_tracked")),
    );

    let blocks: Option<Vec<AadResBlk>> = blocks.into_iter().collect();
    match (
        encoder,
        up1,
        blocks.and_then(|b| <[AadResBlk; GENERATOR_BLOCKS]>::try_from(b).ok()),
    ) {
        (Some(encoder), Some(up1), Some(blocks)) if report.all.unexpected.is_empty() => Ok(AeiNet {
            encoder,
            generator: AadGenerator::from_parts(up1, blocks),
        }),
        _ => Err(AeiError::Load(report.all)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weights::RawTensor;

    fn map(entries: &[(&str, Vec<usize>)]) -> TensorMap {
        let mut m = TensorMap::default();
        for (k, shape) in entries {
            let n = shape.iter().product();
            m.tensors
                .insert(k.to_string(), RawTensor::f32(shape.clone(), vec![0.0; n]));
        }
        m
    }

    #[test]
    fn the_same_named_64px_generator_is_refused_by_name() {
        let other = map(&[
            ("encoder.conv1.weight", vec![32, 3, 4, 4]),
            ("generator.add1.conv1.weight", vec![64, 64, 3, 3]),
        ]);
        let err = load(
            other,
            Path::new("G_latest.pth"),
            &AeiConfig::official(),
            &Device::flex(),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("G_latest.pth: "), "{text}");
        assert!(text.contains("Heonozis") && text.contains("taotaonice"), "{text}");
    }

    #[test]
    fn a_generator_of_another_width_is_refused_on_up1() {
        let other = map(&[(UP1_WEIGHT, vec![512, 512, 2, 2])]);
        let err = load(other, Path::new("G.pth"), &AeiConfig::official(), &Device::flex()).unwrap_err();
        assert!(err.to_string().contains("[512, 512, 2, 2]"), "{err}");
    }

    #[test]
    fn a_missing_block_is_named_with_its_file_key() {
        let config = AeiConfig::divided(8, 32);
        let mut m = map(&[(UP1_WEIGHT, vec![8, 32, 2, 2]), ("generator.up1.bias", vec![32])]);
        m.tensors.insert(
            "encoder.conv1.0.weight".into(),
            RawTensor::f32(vec![2, 3, 4, 4], vec![0.0; 96]),
        );
        let Err(AeiError::Load(err)) = load(m, Path::new("G.pth"), &config, &Device::flex()) else {
            panic!("an incomplete file must not load");
        };
        assert!(
            err.missing.iter().any(|k| k == "encoder.conv1.1.running_var"),
            "{err}"
        );
        assert!(
            err.missing
                .iter()
                .any(|k| k == "generator.AADBlk8.AAD3.fc1.weight"),
            "{err}"
        );
        assert!(
            err.mismatched
                .iter()
                .any(|k| k.starts_with("encoder.conv1.0.weight")),
            "{err}"
        );
    }
}
