//! `AADGenerator`: from the identity vector at 1×1 up to the 256×256 face, one AAD block per
//! attribute map.

// Field names are the checkpoint's (`AADBlk1.AAD1.conv1.weight`), and the Module derive turns
// them into local variables, so the lint is silenced for the whole file.
#![allow(non_snake_case)]

use burn::module::Module;
use burn::nn::conv::{ConvTranspose2d, ConvTranspose2dConfig};
use burn::tensor::Device;
use burn::tensor::Tensor;

use super::aad::AadResBlk;
use super::config::{AeiConfig, GENERATOR_BLOCKS};
use super::encoder::upsample2;

/// Field names follow the checkpoint (`generator.AADBlk3.AAD1.fc1.weight`).
#[derive(Module, Debug)]
pub struct AadGenerator {
    /// ConvTranspose2d(c_id → up1_out, k2, s1, p0, with bias) on z_id as N×c_id×1×1.
    pub up1: ConvTranspose2d,
    pub AADBlk1: AadResBlk,
    pub AADBlk2: AadResBlk,
    pub AADBlk3: AadResBlk,
    pub AADBlk4: AadResBlk,
    pub AADBlk5: AadResBlk,
    pub AADBlk6: AadResBlk,
    pub AADBlk7: AadResBlk,
    pub AADBlk8: AadResBlk,
}

/// What the generator computed on the way, for parity checks.
#[derive(Debug, Clone, Default)]
pub struct GeneratorTrace {
    pub up1: Option<Tensor<4>>,
    /// Output of AADBlk1..AADBlk8, before the ×2 upsample (and before the final tanh).
    pub blocks: Vec<Tensor<4>>,
    /// `masks[k][j]`: the attention mask of AADBlk{k+1}.AAD{j+1}.
    pub masks: Vec<Vec<Tensor<4>>>,
}

pub fn up1(config: &AeiConfig, device: &Device) -> ConvTranspose2d {
    ConvTranspose2dConfig::new([config.c_id, config.up1_out], [2, 2])
        .with_bias(true)
        .init(device)
}

impl AadGenerator {
    /// Assembles the generator from blocks built (or loaded) one by one.
    pub fn from_parts(up1: ConvTranspose2d, blocks: [AadResBlk; GENERATOR_BLOCKS]) -> AadGenerator {
        let [b1, b2, b3, b4, b5, b6, b7, b8] = blocks;
        AadGenerator {
            up1,
            AADBlk1: b1,
            AADBlk2: b2,
            AADBlk3: b3,
            AADBlk4: b4,
            AADBlk5: b5,
            AADBlk6: b6,
            AADBlk7: b7,
            AADBlk8: b8,
        }
    }

    pub fn blocks(&self) -> [&AadResBlk; GENERATOR_BLOCKS] {
        [
            &self.AADBlk1,
            &self.AADBlk2,
            &self.AADBlk3,
            &self.AADBlk4,
            &self.AADBlk5,
            &self.AADBlk6,
            &self.AADBlk7,
            &self.AADBlk8,
        ]
    }

    /// z_attr1..z_attr8 and z_id (N, c_id) → Y in (-1, 1), BGR.
    pub fn forward(
        &self,
        z_attr: &[Tensor<4>],
        z_id: Tensor<2>,
        mut trace: Option<&mut GeneratorTrace>,
    ) -> Tensor<4> {
        let [n, c_id] = z_id.dims();
        let mut m =
            crate::nets::cpu_conv::conv_transpose2d_module(&self.up1, z_id.clone().reshape([n, c_id, 1, 1]));
        if let Some(t) = trace.as_deref_mut() {
            t.up1 = Some(m.clone());
        }
        let blocks = self.blocks();
        let last = blocks.len() - 1;
        let tracing = trace.is_some();
        for (k, (block, attr)) in blocks.into_iter().zip(z_attr).enumerate() {
            let mut masks = Vec::new();
            let mut keep = |mask: Tensor<4>| {
                if tracing {
                    masks.push(mask);
                }
            };
            m = block.forward(m, attr.clone(), z_id.clone(), &mut keep);
            if let Some(t) = trace.as_deref_mut() {
                t.blocks.push(m.clone());
                t.masks.push(masks);
            }
            if k < last {
                m = upsample2(m);
            }
        }
        m.tanh()
    }
}
