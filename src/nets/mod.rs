//! One burn module per network, named after its paper, with field names that follow the official
//! checkpoint so the key mapping stays short. Networks know nothing about files or the UI.

pub mod common;
pub mod gpen;
pub mod mtcnn;
pub mod stylegan2;
