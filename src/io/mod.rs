//! Image input and output: decoding with limits into upright 8-bit RGB, atomic export that never
//! touches an original, and thumbnails for the UI.

pub mod atomic;
pub mod collect;
pub mod csv;
mod decode;
mod error;
mod export;
pub mod fetch;
mod sniff;
mod thumb;

pub use decode::{DecodeLimits, Photo, load_photo, probe_dimensions};
pub use error::{ExportError, ImageError};
pub use export::{
    ExportFormat, ExportOptions, TEMP_PREFIX, clean_stale_temp_files, export_atomic, temp_prefix, unique_path,
};
pub use thumb::thumbnail;

/// The file name for labels, or the whole path when it has none.
pub fn display_name(path: &std::path::Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    )
}
