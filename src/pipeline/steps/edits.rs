//! The recipe's edit steps as [`PhotoStep`]s over the same functions the window's Swap, Restore and
//! Makeup sections run, so an export looks exactly like the edit previewed in the window.

use burn::tensor::Device;
use image::RgbImage;

use crate::nets::beautygan::Generator;
use crate::nets::gpen::FullGenerator;
use crate::pipeline::batch::{Measured, PhotoStep, StepError, StepOutput};
use crate::pipeline::detect::Face;
use crate::pipeline::makeup::references::Reference;
use crate::pipeline::makeup::{MakeupSettings, apply_makeup};
use crate::pipeline::restore::{RestoreError, RestoreSettings, restore_faces};
use crate::pipeline::swap::{
    IdentitySource, SwapEngine, SwapError, SwapJob, SwapNets, SwapSettings, VirtualIdentity,
    remember_identity, swap_faces,
};
use crate::weights::store::WeightsStore;

/// Replaces the chosen faces with the virtual model's (FaceShifter, or the classic engine).
pub struct SwapStep<'a> {
    pub identity: VirtualIdentity,
    pub settings: SwapSettings,
    /// The engine that really runs (the classic one when FaceShifter fell back).
    pub engine: SwapEngine,
    pub nets: SwapNets<'a>,
    pub device: &'a Device,
    /// Said once per photo: a fallback, reduced test weights.
    pub notes: Vec<String>,
    pub networks: Vec<String>,
    /// Where to keep the identity ArcFace computes, after the first photo: a library model's entry.
    pub remember: Option<(&'a WeightsStore, IdentitySource)>,
}

impl PhotoStep for SwapStep<'_> {
    fn name(&self) -> &str {
        "swap"
    }

    fn description(&self) -> String {
        format!(
            "faces replaced by virtual model {} ({})",
            self.identity.name,
            self.engine.label()
        )
    }

    fn networks(&self) -> Vec<String> {
        self.networks.clone()
    }

    fn apply(
        &mut self,
        image: RgbImage,
        faces: &[Face],
        cancelled: &dyn Fn() -> bool,
    ) -> Result<StepOutput, StepError> {
        let numbered: Vec<(usize, Face)> = faces.iter().copied().enumerate().collect();
        let job = SwapJob {
            photo: &image,
            faces: &numbered,
            identity: &self.identity,
            settings: &self.settings,
            engine: self.engine,
        };
        let outcome =
            swap_faces(&job, self.nets, self.device, &mut |_, _| !cancelled()).map_err(|e| match e {
                SwapError::Cancelled => StepError::Cancelled,
                other => StepError::Failed(other.to_string()),
            })?;
        let mut notes = outcome.note_lines();
        notes.extend(self.notes.iter().cloned());
        if let Some((store, source)) = self.remember.take() {
            notes.extend(remember_identity(
                store,
                &source,
                outcome.identity_embedding.as_deref(),
            ));
        }
        Ok(StepOutput {
            image: outcome.image,
            notes,
            measured: Some(Measured::Swap {
                engine: outcome.engine,
                identity_time: outcome.identity_time,
                faces: outcome.faces,
            }),
        })
    }
}

/// GPEN (optionally after a blur) on the chosen faces.
pub struct RestoreStep<'a> {
    pub net: &'a FullGenerator,
    pub settings: RestoreSettings,
    pub device: &'a Device,
    pub notes: Vec<String>,
    pub network: String,
}

impl PhotoStep for RestoreStep<'_> {
    fn name(&self) -> &str {
        "restore"
    }

    fn description(&self) -> String {
        format!("faces restored ({})", self.settings.describe())
    }

    fn networks(&self) -> Vec<String> {
        vec![self.network.clone()]
    }

    fn apply(
        &mut self,
        image: RgbImage,
        faces: &[Face],
        cancelled: &dyn Fn() -> bool,
    ) -> Result<StepOutput, StepError> {
        self.restore(&image, faces, |_, _| !cancelled())
    }
}

impl RestoreStep<'_> {
    /// The step on `image`, telling `each` how many faces are done of how many (it returns false to
    /// stop): what the window's Restore section runs, so its result is the export's pixels.
    pub fn restore(
        &self,
        image: &RgbImage,
        faces: &[Face],
        each: impl FnMut(usize, usize) -> bool,
    ) -> Result<StepOutput, StepError> {
        let restored = restore_faces(self.net, self.device, image, faces, &self.settings, each).map_err(
            |e| match e {
                RestoreError::Cancelled => StepError::Cancelled,
                other => StepError::Failed(other.to_string()),
            },
        )?;
        let mut notes = vec![format!(
            "Restored {} face(s) at {} px: {}",
            restored.faces.len(),
            restored.crop_size,
            restored.timings.describe()
        )];
        notes.extend(self.notes.iter().cloned());
        Ok(StepOutput {
            measured: Some(Measured::Restore {
                faces: restored.faces.len(),
                crop_size: restored.crop_size,
                timings: restored.timings,
            }),
            image: restored.image,
            notes,
        })
    }
}

/// BeautyGAN makeup from a reference face on the chosen faces.
pub struct MakeupStep<'a> {
    pub generator: &'a Generator,
    pub reference: Reference,
    pub settings: MakeupSettings,
    pub device: &'a Device,
    pub notes: Vec<String>,
    pub network: String,
}

impl PhotoStep for MakeupStep<'_> {
    fn name(&self) -> &str {
        "makeup"
    }

    fn description(&self) -> String {
        format!(
            "makeup from reference \u{201c}{}\u{201d} at {:.0}% strength",
            self.reference.name(),
            self.settings.strength.clamp(0.0, 1.0) * 100.0
        )
    }

    fn networks(&self) -> Vec<String> {
        vec![self.network.clone()]
    }

    fn apply(
        &mut self,
        image: RgbImage,
        faces: &[Face],
        cancelled: &dyn Fn() -> bool,
    ) -> Result<StepOutput, StepError> {
        self.make_up(image, faces, |_, _| !cancelled())
    }
}

impl MakeupStep<'_> {
    /// The step on `image`, one face at a time: `each` hears how many faces are done of how many
    /// before each face and once at the end, and stops the step by returning false. What the
    /// window's Makeup section runs, so its result is the pixels an export writes.
    pub fn make_up(
        &self,
        mut image: RgbImage,
        faces: &[Face],
        mut each: impl FnMut(usize, usize) -> bool,
    ) -> Result<StepOutput, StepError> {
        for (done, face) in faces.iter().enumerate() {
            if !each(done, faces.len()) {
                return Err(StepError::Cancelled);
            }
            image = apply_makeup(
                self.generator,
                &image,
                std::slice::from_ref(face),
                &self.reference.crop,
                &self.settings,
                self.device,
            )
            .map_err(|e| StepError::Failed(e.to_string()))?
            .image;
        }
        // Nothing is left to stop: the answer only matters before a face.
        let _ = each(faces.len(), faces.len());
        Ok(StepOutput {
            image,
            notes: self.notes.clone(),
            measured: None,
        })
    }
}
