//! StyleCLIP (Patashnik et al. 2021) text edits of StyleGAN2 faces: global directions in the
//! style (S) space, and per-prompt latent mappers in W+. Both work on plain tensors (S as one
//! [N, C_l] tensor per layer, W+ as [N, rows, 512]) and know nothing of the generator.

pub mod global;
pub mod mapper;
pub mod templates;
