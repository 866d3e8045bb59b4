//! The classic engine, FaceShifter's fallback when its networks are not installed: the virtual
//! model's own aligned face is put on the target's landmarks (both crops sit on the same template,
//! so pasting back through the target's transform is the landmark warp), its colour is matched to
//! the target's skin, and the seam is hidden by Poisson or multi-band blending.

use image::RgbImage;

use super::{ClassicBlend, SwapError, SwapSettings};
use crate::face::blend::{max_levels, multiband_blend, poisson_blend};
use crate::face::color::transfer_lab;
use crate::face::mask::{MaskSettings, Plane, face_mask};

/// Pyramid levels of the multi-band blend on a 256 crop: the coarsest band is 16 px, about the size
/// of an eye, so shading blends over the whole cheek while the eyes and mouth keep their edges.
const MULTIBAND_LEVELS: usize = 5;

/// The blended crop and the mask to paste it with.
///
/// `source` is the virtual model's aligned crop, `target` the target face's, `landmarks` the target's
/// five points in crop coordinates. The blend works inside the hard (unfeathered) mask; the paste
/// uses the feathered one, so everything beyond the feathering is the photo, unchanged.
pub fn generate(
    source: &RgbImage,
    target: &RgbImage,
    settings: &SwapSettings,
    landmarks: &[[f32; 2]; 5],
) -> Result<(RgbImage, Plane), SwapError> {
    let size = target.width() as usize;
    let hard = face_mask(
        size,
        &MaskSettings {
            blur_sigma: 0.0,
            ..settings.mask
        },
        landmarks,
    );
    let source = if settings.color_match {
        transfer_lab(source, &hard, target, &hard)?
    } else {
        source.clone()
    };
    let blended = match settings.classic_blend {
        ClassicBlend::Poisson => poisson_blend(&source, target, &hard)?,
        ClassicBlend::MultiBand => {
            let levels = MULTIBAND_LEVELS.min(max_levels(size, size));
            multiband_blend(&source, target, &hard, levels)?
        }
    };
    Ok((blended, face_mask(size, &settings.mask, landmarks)))
}
