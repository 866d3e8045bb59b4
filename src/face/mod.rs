//! Geometry and pixels: landmarks, similarity transforms, warps, masks, resampling.

pub mod resample;
