//! The pipeline as plain functions over images: detect, align, swap, restore, edit, paste.
//! The window, the CLI and the tests all call these same functions.

pub mod batch;
pub mod classifier;
pub mod detect;
pub mod feed;
pub mod generate;
pub mod generator_training;
pub mod journal;
pub mod makeup;
pub mod paste;
pub mod recipe;
pub mod report;
pub mod restore;
pub mod runtime;
pub mod screen;
pub mod shard;
pub mod steps;
pub mod swap;
pub mod text_edit;
pub mod virtual_face;
pub mod warmup;

/// "1 face", "3 faces": how the window, the jobs' labels and the CLI count faces.
pub fn faces_text(n: usize) -> String {
    match n {
        1 => "1 face".to_string(),
        n => format!("{n} faces"),
    }
}
