//! One burn module per network, named after its paper, with field names that follow the official
//! checkpoint so the key mapping stays short. Networks know nothing about files or the UI.

pub mod arcface;
pub mod arcface_cpu;
pub mod beautygan;
pub mod clip_text;
pub mod common;
pub mod cpu_conv;
pub mod cpu_conv_narrow;
pub mod cpu_conv_prepared;
mod cpu_conv_transpose;
pub mod cpu_depthwise;
pub mod cpu_pointwise;
pub mod cpu_resize;
pub mod cpu_winograd;
pub mod cpu_winograd_s2;
pub mod faceshifter;
pub mod fused;
pub mod fused_aad;
pub mod fused_norm;
pub mod gpen;
pub mod kernel_switch;
pub mod mobilenetv2;
pub mod mtcnn;
pub mod pnet_host;
pub mod profile;
pub mod styleclip;
pub mod stylegan2;
