//! Errors of image input and output. Every variant names the file (shown lossily, so a name that is
//! not valid UTF-8 still prints) and the cause, because these messages reach the user unchanged.

use std::io;
use std::path::PathBuf;

/// Why a photo could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// Opening or reading the file failed (missing, no permission, I/O error).
    #[error("cannot read {path}: {source}")]
    Unreadable {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The path names a folder or a device rather than a regular file.
    #[error("cannot load {path}: it is not a regular file")]
    NotAFile { path: PathBuf },
    /// The file has no bytes at all.
    #[error("cannot load {path}: the file is empty (0 bytes)")]
    Empty { path: PathBuf },
    /// The file is bigger than [`super::DecodeLimits::max_file_bytes`].
    #[error("cannot load {path}: the file is {size} bytes, more than the limit of {max} bytes")]
    FileTooLarge { path: PathBuf, size: u64, max: u64 },
    /// The content is not recognised as any image format (the file name's extension is ignored).
    #[error("cannot load {path}: not an image in a supported format ({detail})")]
    NotAnImage { path: PathBuf, detail: String },
    /// The content is a recognised image format, or a variant of one, that cannot be decoded.
    #[error("cannot load {path}: {format} is not supported ({detail})")]
    UnsupportedFormat {
        path: PathBuf,
        format: String,
        detail: String,
    },
    /// The header declares more pixels than [`super::DecodeLimits::max_pixels`]; refused before any
    /// pixel buffer is allocated.
    #[error("cannot load {path}: the image is {width}x{height} pixels, more than the limit of {max} pixels")]
    TooManyPixels {
        path: PathBuf,
        width: u32,
        height: u32,
        max: u64,
    },
    /// Decoding would need more memory than the limits allow.
    #[error("cannot load {path}: decoding needs more memory than allowed ({detail})")]
    MemoryLimit { path: PathBuf, detail: String },
    /// The file ends before the image data is complete.
    #[error("cannot load {path}: the {format} file is truncated (it ends before the image data is complete)")]
    Truncated { path: PathBuf, format: String },
    /// The data is damaged or does not follow the format.
    #[error("cannot load {path}: the {format} data is corrupt: {detail}")]
    Corrupt {
        path: PathBuf,
        format: String,
        detail: String,
    },
}

impl ImageError {
    /// The file the error is about.
    pub fn path(&self) -> &std::path::Path {
        match self {
            ImageError::Unreadable { path, .. }
            | ImageError::NotAFile { path }
            | ImageError::Empty { path }
            | ImageError::FileTooLarge { path, .. }
            | ImageError::NotAnImage { path, .. }
            | ImageError::UnsupportedFormat { path, .. }
            | ImageError::TooManyPixels { path, .. }
            | ImageError::MemoryLimit { path, .. }
            | ImageError::Truncated { path, .. }
            | ImageError::Corrupt { path, .. } => path,
        }
    }
}

/// Why an export could not be written. Whatever the cause, no temporary file is left behind and no
/// existing file was changed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The destination is one of the originals (same path, a link to it, or the same inode).
    #[error(
        "refusing to export to {dest}: it is the original photo {source_path}, which is never overwritten"
    )]
    SameAsSource { dest: PathBuf, source_path: PathBuf },
    /// The destination path has no file name (for example it ends in `..`).
    #[error("cannot export to {dest}: the path does not name a file")]
    NoFileName { dest: PathBuf },
    /// The destination is an existing folder.
    #[error("cannot export to {dest}: a folder with that name exists")]
    DestinationIsFolder { dest: PathBuf },
    /// The destination's name ends in no extension an export can write.
    #[error("cannot export to {dest}: cannot tell the format from the name; end it in .png, .jpg or .jpeg")]
    UnknownFormat { dest: PathBuf },
    /// The destination's folder does not exist.
    #[error("cannot export to {dest}: the folder {dir} does not exist")]
    MissingFolder { dest: PathBuf, dir: PathBuf },
    /// Something that is not a folder stands where the destination's folder should be.
    #[error("cannot export to {dest}: {dir} is not a folder")]
    NotAFolder { dest: PathBuf, dir: PathBuf },
    /// The folder may not be written (permissions or a read-only file system).
    #[error("cannot export to {dest}: the folder {dir} is not writable: {source}")]
    ReadOnly {
        dest: PathBuf,
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The disk or quota filled up while writing.
    #[error("cannot export to {dest}: the disk is full: {source}")]
    DiskFull {
        dest: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Any other file-system failure; `action` says what was being done.
    #[error("cannot export to {dest}: {action} failed: {source}")]
    Io {
        dest: PathBuf,
        action: &'static str,
        #[source]
        source: io::Error,
    },
    /// The options cannot be honoured (quality out of range, text key not allowed, profile not RGB).
    #[error("cannot export to {dest}: {detail}")]
    InvalidOptions { dest: PathBuf, detail: String },
    /// The encoder refused the image (for example JPEG's 65535-pixel side limit).
    #[error("cannot export to {dest}: encoding as {format} failed: {detail}")]
    Encode {
        dest: PathBuf,
        format: &'static str,
        detail: String,
    },
}
