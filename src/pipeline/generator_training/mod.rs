//! Fine-tuning StyleGAN2 the way rosinality's `train.py` does.

pub mod regularizers;
