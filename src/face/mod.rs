//! Geometry and pixels: landmarks, similarity transforms, warps, masks, resampling.

pub mod align;
pub mod color;
pub mod ffhq;
pub mod mask;
pub mod resample;
pub mod warp;
