//! FaceShifter's AEI-Net (Li et al. 2019) in the layout of taotaonice/FaceShifter, the port whose
//! `G_latest.pth` people run: a U-Net attribute encoder over the target face and an AAD generator
//! driven by the ArcFace identity of the source ([`crate::nets::arcface`]).
//!
//! Both networks take **BGR** images in [-1, 1] ([`CHANNEL_ORDER`]) and the generator returns BGR in
//! (-1, 1): the app converts on the way in and out. Every resize is bilinear with
//! `align_corners=True`. Encoder BatchNorms run on their running statistics.

pub mod aad;
pub mod config;
pub mod encoder;
pub mod generator;
mod load;

use std::ops::Range;
use std::path::PathBuf;

use burn::module::Module;
use burn::tensor::Device;
use burn::tensor::Tensor;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};

pub use config::{AadBlockConfig, AeiConfig, AeiConfigError, INPUT_SIZE};
use encoder::MlAttrEncoder;
use generator::{AadGenerator, GeneratorTrace};

use crate::weights::load::LoadError;

/// Channel order of the images both networks see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelOrder {
    Rgb,
    Bgr,
}

/// The training data of the released weights (generator and IR-SE50 alike) were decoded with
/// OpenCV and never swapped, so the networks expect BGR; feeding RGB silently hurts identity
/// and colour, and no shape check would notice.
pub const CHANNEL_ORDER: ChannelOrder = ChannelOrder::Bgr;

/// The window of the 256 crop that ArcFace sees: it undoes the template's 0.85 shrink, so the
/// 112 resize is the standard ArcFace alignment.
pub const ARCFACE_CROP: Range<usize> = 19..237;
/// ArcFace's input size.
pub const ARCFACE_INPUT: usize = 112;

/// AEI-Net: the attribute encoder and the generator.
#[derive(Module, Debug)]
pub struct AeiNet {
    pub encoder: MlAttrEncoder,
    pub generator: AadGenerator,
}

/// The swap and the attribute maps (the reference's forward returns both).
#[derive(Debug, Clone)]
pub struct AeiOutput {
    /// (N, 3, 256, 256) BGR in (-1, 1); the image is `y * 0.5 + 0.5`.
    pub y: Tensor<4>,
    /// z_attr1 (2 px) … z_attr8 (256 px).
    pub z_attr: Vec<Tensor<4>>,
}

#[derive(Debug, thiserror::Error)]
pub enum AeiError {
    #[error(transparent)]
    Config(#[from] AeiConfigError),
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The file is a generator, but not this one (e.g. the same-named 64×64 net of another repository).
    #[error("{}: {reason}", file.display())]
    WrongCheckpoint { file: PathBuf, reason: String },
    #[error("{what} must be {expected}, got {got:?}")]
    Input {
        what: &'static str,
        expected: String,
        got: Vec<usize>,
    },
}

impl AeiNet {
    /// A network with lazily initialised (not yet allocated) weights, to be loaded.
    pub fn new(config: &AeiConfig, device: &Device) -> Result<AeiNet, AeiConfigError> {
        config.validate()?;
        // validate() guarantees one config row per block.
        let blocks = std::array::from_fn(|k| aad::AadResBlk::new(config.blocks[k], config.c_id, device));
        Ok(AeiNet {
            encoder: MlAttrEncoder::new(config, device),
            generator: AadGenerator::from_parts(generator::up1(config, device), blocks),
        })
    }

    /// Builds the network from the bare state dict of `AEI_Net` (`G_latest.pth`), part by part
    /// so that the 0.74 GB of the official file is not held three times over. Checkpoints of other
    /// generators are refused with a message that says which one it looks like.
    pub fn from_state_dict(
        tensors: crate::weights::TensorMap,
        file: &std::path::Path,
        config: &AeiConfig,
        device: &Device,
    ) -> Result<AeiNet, AeiError> {
        load::load(tensors, file, config, device)
    }

    /// Builds the network at the widths the state dict's own shapes describe (the released file, or
    /// reduced test weights), refusing other generators by name before any tensor is copied.
    pub fn from_checkpoint(
        tensors: crate::weights::TensorMap,
        file: &std::path::Path,
        device: &Device,
    ) -> Result<(AeiNet, AeiConfig), AeiError> {
        let config = load::infer_config(&tensors, file)?;
        let net = load::load(tensors, file, &config, device)?;
        Ok((net, config))
    }

    /// The identity size the generator takes (`c_id`).
    pub fn identity_dim(&self) -> usize {
        self.generator.up1.weight.dims()[0]
    }

    /// Xt (N, 3, 256, 256) and z_id (N, c_id) → the swap and the attribute maps.
    pub fn forward(&self, xt: Tensor<4>, z_id: Tensor<2>) -> Result<AeiOutput, AeiError> {
        self.check_inputs(&xt, &z_id)?;
        let z_attr = self.encoder.forward(xt);
        let y = self.generator.forward(&z_attr, z_id, None);
        Ok(AeiOutput { y, z_attr })
    }

    /// [`AeiNet::forward`] keeping the generator's intermediate maps and masks.
    pub fn forward_traced(
        &self,
        xt: Tensor<4>,
        z_id: Tensor<2>,
    ) -> Result<(AeiOutput, GeneratorTrace), AeiError> {
        self.check_inputs(&xt, &z_id)?;
        let z_attr = self.encoder.forward(xt);
        let mut trace = GeneratorTrace::default();
        let y = self.generator.forward(&z_attr, z_id, Some(&mut trace));
        Ok((AeiOutput { y, z_attr }, trace))
    }

    fn check_inputs(&self, xt: &Tensor<4>, z_id: &Tensor<2>) -> Result<(), AeiError> {
        let [n, c, h, w] = xt.dims();
        if c != 3 || h != INPUT_SIZE || w != INPUT_SIZE {
            return Err(AeiError::Input {
                what: "the target crop",
                expected: format!("N×3×{INPUT_SIZE}×{INPUT_SIZE}"),
                got: vec![n, c, h, w],
            });
        }
        let c_id = self.generator.up1.weight.dims()[0];
        let [zn, zc] = z_id.dims();
        if zn != n || zc != c_id {
            return Err(AeiError::Input {
                what: "the identity",
                expected: format!("{n}×{c_id} (one row per target)"),
                got: vec![zn, zc],
            });
        }
        Ok(())
    }
}

/// ArcFace's input from aligned 256 crops (N, 3, 256, 256): the centre window resized to 112
/// with `align_corners=True`, as in the reference's inference scripts.
pub fn arcface_input(aligned: Tensor<4>) -> Result<Tensor<4>, AeiError> {
    let [n, c, h, w] = aligned.dims();
    if h != INPUT_SIZE || w != INPUT_SIZE {
        return Err(AeiError::Input {
            what: "the aligned crop",
            expected: format!("N×C×{INPUT_SIZE}×{INPUT_SIZE}"),
            got: vec![n, c, h, w],
        });
    }
    let window = aligned.slice([0..n, 0..c, ARCFACE_CROP, ARCFACE_CROP]);
    let options = InterpolateOptions {
        align_corners: true,
        ..InterpolateOptions::new(InterpolateMode::Bilinear)
    }
    .with_output_size([ARCFACE_INPUT, ARCFACE_INPUT]);
    Ok(interpolate(window, options))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_network_has_the_released_file_layout() {
        // Parameters stay lazy: the 0.74 GB of the official widths are never allocated here.
        let net = AeiNet::new(&AeiConfig::official(), &Device::flex()).unwrap();
        crate::nets::common::assert_official_layout(&net, load::ENCODER_SEQ, "faceshifter_aei");
    }

    #[test]
    fn inputs_of_the_wrong_size_are_refused() {
        let device = Device::flex();
        let net = AeiNet::new(&AeiConfig::divided(8, 32), &device).unwrap();
        let err = net
            .forward(
                Tensor::zeros([1, 3, 128, 128], &device),
                Tensor::zeros([1, 8], &device),
            )
            .unwrap_err();
        assert!(err.to_string().contains("256"), "{err}");
        assert!(arcface_input(Tensor::zeros([1, 3, 112, 112], &device)).is_err());
    }
}
