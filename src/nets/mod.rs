//! One burn module per network, named after its paper, with field names that follow the official
//! checkpoint so the key mapping stays short. Networks know nothing about files or the UI.

pub mod beautygan;
pub mod common;
pub mod mobilenetv2;
pub mod mtcnn;
