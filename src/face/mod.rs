//! Geometry and pixels: landmarks, similarity transforms, warps, masks, blending, resampling.

pub mod align;
pub mod blend;
pub mod color;
pub mod ffhq;
pub mod mask;
pub mod resample;
pub mod warp;
