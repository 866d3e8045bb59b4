//! Writing results without ever damaging an original or leaving half a file behind.
//!
//! The image is encoded in memory, written to a hidden temporary file in the destination folder
//! (same file system, so the final rename is atomic), flushed to disk, then renamed into place. A
//! crash leaves at most a temporary file with [`TEMP_PREFIX`], which [`clean_stale_temp_files`]
//! removes later; it never leaves a truncated file under the real name.

use std::ffi::OsString;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder, RgbImage};

use super::error::ExportError;
use super::sniff;

/// Name prefix of the temporary files written during an export.
pub const TEMP_PREFIX: &str = ".facecast-tmp-";

/// Temporary files younger than this are left alone by [`clean_stale_temp_files`]: they may belong
/// to an export still running in another thread or process. Files whose writer is known to be gone
/// (see [`temp_prefix`]) are removed at any age.
pub const STALE_TEMP_AGE: Duration = Duration::from_secs(10 * 60);

/// The prefix of this process's temporary files: [`TEMP_PREFIX`], the process id, a dash. The id lets
/// [`clean_stale_temp_files`] remove the leftovers of a killed process at once instead of waiting for
/// them to age, while never touching a file that a live process is still writing.
pub fn temp_prefix() -> String {
    format!("{TEMP_PREFIX}{}-", std::process::id())
}

/// The id of the process that wrote a temporary file named by [`temp_prefix`], if the name has one.
fn writer_pid(name: &[u8]) -> Option<u32> {
    let rest = name.strip_prefix(TEMP_PREFIX.as_bytes())?;
    let dash = rest.iter().position(|&b| b == b'-')?;
    let digits = std::str::from_utf8(&rest[..dash]).ok()?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Whether the process `pid` has certainly ended. Only answers yes where the system can say so
/// (Linux's /proc); elsewhere the age rule alone decides. A reused pid keeps a file until it ages,
/// which is safe.
fn process_is_gone(pid: u32) -> bool {
    let proc = Path::new("/proc");
    pid != std::process::id() && proc.join("self").exists() && !proc.join(pid.to_string()).exists()
}

/// How many times a numbered name is retried when another writer takes it first.
const NAME_RACE_RETRIES: usize = 100;

/// The file format of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// Baseline JPEG; `quality` is 1..=100.
    Jpeg { quality: u8 },
    /// 8-bit RGB PNG.
    Png,
}

impl ExportFormat {
    /// The format an output's file name asks for: `.png`, or `.jpg`/`.jpeg` at `jpeg_quality` (any
    /// case). The one reading of an output name, for every command that writes a named file.
    pub fn from_name(dest: &Path, jpeg_quality: u8) -> Result<ExportFormat, ExportError> {
        let ext = dest
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("png") => Ok(ExportFormat::Png),
            Some("jpg" | "jpeg") => Ok(ExportFormat::Jpeg {
                quality: jpeg_quality,
            }),
            _ => Err(ExportError::UnknownFormat {
                dest: dest.to_path_buf(),
            }),
        }
    }
}

/// Everything about an export except the pixels and the destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportOptions {
    pub format: ExportFormat,
    /// An RGB ICC profile to embed (normally [`super::Photo::icc_profile`] of the source).
    pub icc_profile: Option<Vec<u8>>,
    /// Metadata as key/value pairs. PNG: one `tEXt` chunk each (`iTXt` when the value is not ASCII).
    /// JPEG: one comment segment of `key=value` lines, with `\`, newline and carriage return in
    /// values escaped as `\\`, `\n`, `\r`. Keys are 1 to 79 printable ASCII characters without `=`
    /// and without leading or trailing spaces; values may not contain NUL.
    pub text: Vec<(String, String)>,
    /// Replace an existing file at the destination; otherwise a free numbered name is chosen.
    pub overwrite: bool,
}

/// Encodes `img` and atomically places it at `dest` (or at a numbered variant of it when `dest`
/// exists and `overwrite` is off). Returns the path really written.
///
/// Refuses a destination that is any of `protected_sources` (by inode, so links and different
/// spellings of the same path are caught), even with `overwrite`. On any failure no temporary file
/// is left behind and nothing existing was modified.
pub fn export_atomic(
    img: &RgbImage,
    dest: &Path,
    opts: &ExportOptions,
    protected_sources: &[&Path],
) -> Result<PathBuf, ExportError> {
    let file_name = dest.file_name().ok_or_else(|| ExportError::NoFileName {
        dest: dest.to_path_buf(),
    })?;
    let dir = match dest.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    check_folder(dest, dir)?;
    if fs::metadata(dest).is_ok_and(|meta| meta.is_dir()) {
        return Err(ExportError::DestinationIsFolder {
            dest: dest.to_path_buf(),
        });
    }
    for source in protected_sources {
        if is_same_file(dest, dir, file_name, source) {
            return Err(ExportError::SameAsSource {
                dest: dest.to_path_buf(),
                source_path: source.to_path_buf(),
            });
        }
    }

    let encoded = encode(img, opts, dest)?;

    let mut builder = tempfile::Builder::new();
    let prefix = temp_prefix();
    builder.prefix(&prefix).suffix(".part");
    #[cfg(unix)]
    {
        // tempfile defaults to 0600; an export should get the usual permissions (umask applies).
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o666));
    }
    // From here on, dropping `temp` deletes the temporary file, so every early return cleans up.
    let mut temp = builder
        .tempfile_in(dir)
        .map_err(|e| io_error(dest, dir, "creating a temporary file", e))?;
    temp.write_all(&encoded)
        .map_err(|e| io_error(dest, dir, "writing", e))?;
    temp.as_file()
        .sync_all()
        .map_err(|e| io_error(dest, dir, "flushing to disk", e))?;

    let written = if opts.overwrite {
        temp.persist(dest)
            .map_err(|e| io_error(dest, dir, "renaming into place", e.error))?;
        dest.to_path_buf()
    } else {
        let mut attempt = 0;
        loop {
            let candidate = unique_path(dest);
            match temp.persist_noclobber(&candidate) {
                Ok(_) => break candidate,
                // Another writer took the name between the check and the rename: try the next one.
                Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists && attempt < NAME_RACE_RETRIES => {
                    temp = e.file;
                    attempt += 1;
                }
                Err(e) => return Err(io_error(dest, dir, "renaming into place", e.error)),
            }
        }
    };
    // Make the rename itself durable; the data already is, so a failure here is not worth an error.
    if let Ok(folder) = fs::File::open(dir) {
        let _ = folder.sync_all();
    }
    Ok(written)
}

/// `dest` if nothing exists there, otherwise the first free `name (N).ext` with N counting up from
/// 2 (or from one past an existing counter, so `a (2).jpg` is followed by `a (3).jpg`).
pub fn unique_path(dest: &Path) -> PathBuf {
    if is_free(dest) {
        return dest.to_path_buf();
    }
    let stem = dest.file_stem().unwrap_or_default();
    let (base, first) = match stem.to_str().and_then(split_counter) {
        Some((base, n)) => (OsString::from(base), n.saturating_add(1)),
        None => (stem.to_os_string(), 2),
    };
    let mut n = first;
    loop {
        let mut name = base.clone();
        name.push(format!(" ({n})"));
        if let Some(ext) = dest.extension() {
            name.push(".");
            name.push(ext);
        }
        let candidate = dest.with_file_name(name);
        if is_free(&candidate) || n == u64::MAX {
            return candidate;
        }
        n += 1;
    }
}

/// Removes temporary files left in `dir` by interrupted exports: those of a process that has ended,
/// and any older than [`STALE_TEMP_AGE`]. Returns how many were removed.
pub fn clean_stale_temp_files(dir: &Path) -> io::Result<usize> {
    let mut removed = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.as_encoded_bytes();
        if !name.starts_with(TEMP_PREFIX.as_bytes()) {
            continue;
        }
        let orphaned = writer_pid(name).is_some_and(process_is_gone);
        let meta = match entry.metadata() {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let age = meta.modified()?.elapsed().unwrap_or_default();
        if !meta.is_file() || (age < STALE_TEMP_AGE && !orphaned) {
            continue;
        }
        match fs::remove_file(entry.path()) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(removed)
}

fn is_free(path: &Path) -> bool {
    // A dangling symlink still occupies the name, hence symlink_metadata. A name that cannot be
    // examined at all (too long, no permission) counts as free: the no-clobber rename is the real
    // guard, and it reports the actual problem instead of this search looping over numbers.
    fs::symlink_metadata(path).is_err()
}

/// Splits `"photo (3)"` into `("photo", 3)`.
fn split_counter(stem: &str) -> Option<(&str, u64)> {
    let inner = stem.strip_suffix(')')?;
    let open = inner.rfind(" (")?;
    let digits = &inner[open + 2..];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.starts_with('0') {
        return None;
    }
    Some((&inner[..open], digits.parse().ok()?))
}

fn check_folder(dest: &Path, dir: &Path) -> Result<(), ExportError> {
    let folder_error = |kind: io::ErrorKind| match kind {
        io::ErrorKind::NotFound => Some(ExportError::MissingFolder {
            dest: dest.to_path_buf(),
            dir: dir.to_path_buf(),
        }),
        io::ErrorKind::NotADirectory => Some(ExportError::NotAFolder {
            dest: dest.to_path_buf(),
            dir: dir.to_path_buf(),
        }),
        _ => None,
    };
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(ExportError::NotAFolder {
            dest: dest.to_path_buf(),
            dir: dir.to_path_buf(),
        }),
        Err(e) => Err(folder_error(e.kind()).unwrap_or_else(|| io_error(dest, dir, "opening the folder", e))),
    }
}

/// Whether writing `dest` would replace `source`. Existing files are compared by identity (device
/// and inode on Unix); a source that no longer exists is compared by its resolved path.
fn is_same_file(dest: &Path, dir: &Path, file_name: &std::ffi::OsStr, source: &Path) -> bool {
    if let (Ok(a), Ok(b)) = (fs::metadata(dest), fs::metadata(source)) {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            return a.dev() == b.dev() && a.ino() == b.ino();
        }
        #[cfg(not(unix))]
        {
            let _ = (a, b);
        }
    }
    let resolved_dest = fs::canonicalize(dir).map(|d| d.join(file_name));
    let resolved_source = match (source.parent(), source.file_name()) {
        (Some(parent), Some(name)) => {
            let parent = if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            };
            fs::canonicalize(source).or_else(|_| fs::canonicalize(parent).map(|p| p.join(name)))
        }
        _ => fs::canonicalize(source),
    };
    matches!((resolved_dest, resolved_source), (Ok(d), Ok(s)) if d == s)
}

fn io_error(dest: &Path, dir: &Path, action: &'static str, source: io::Error) -> ExportError {
    let dest = dest.to_path_buf();
    match source.kind() {
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => ExportError::DiskFull { dest, source },
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => ExportError::ReadOnly {
            dest,
            dir: dir.to_path_buf(),
            source,
        },
        _ => ExportError::Io { dest, action, source },
    }
}

fn encode(img: &RgbImage, opts: &ExportOptions, dest: &Path) -> Result<Vec<u8>, ExportError> {
    let invalid = |detail: String| ExportError::InvalidOptions {
        dest: dest.to_path_buf(),
        detail,
    };
    if let Some(profile) = &opts.icc_profile
        && sniff::icc_colour_space(profile) != Some(*b"RGB ")
    {
        return Err(invalid("the ICC profile to embed is not an RGB profile".into()));
    }
    for (key, value) in &opts.text {
        check_text(key, value).map_err(invalid)?;
    }
    let (width, height) = img.dimensions();
    let mut out = Vec::new();
    let (format, result) = match opts.format {
        ExportFormat::Jpeg { quality } => {
            if !(1..=100).contains(&quality) {
                return Err(invalid(format!("JPEG quality {quality} is outside 1..=100")));
            }
            let mut encoder = JpegEncoder::new_with_quality(&mut out, quality);
            set_profile(&mut encoder, opts, dest, "JPEG")?;
            (
                "JPEG",
                encoder.write_image(img.as_raw(), width, height, ExtendedColorType::Rgb8),
            )
        }
        ExportFormat::Png => {
            let mut encoder =
                PngEncoder::new_with_quality(&mut out, CompressionType::Default, FilterType::Adaptive);
            set_profile(&mut encoder, opts, dest, "PNG")?;
            (
                "PNG",
                encoder.write_image(img.as_raw(), width, height, ExtendedColorType::Rgb8),
            )
        }
    };
    let encode_error = |detail: String| ExportError::Encode {
        dest: dest.to_path_buf(),
        format,
        detail,
    };
    result.map_err(|e| encode_error(e.to_string()))?;
    if !opts.text.is_empty() {
        match opts.format {
            ExportFormat::Jpeg { .. } => insert_jpeg_comment(&mut out, &opts.text),
            ExportFormat::Png => insert_png_text(&mut out, &opts.text),
        }
        .map_err(|detail| encode_error(detail.into()))?;
    }
    Ok(out)
}

fn set_profile(
    encoder: &mut impl ImageEncoder,
    opts: &ExportOptions,
    dest: &Path,
    format: &'static str,
) -> Result<(), ExportError> {
    match &opts.icc_profile {
        Some(profile) => encoder
            .set_icc_profile(profile.clone())
            .map_err(|e| ExportError::Encode {
                dest: dest.to_path_buf(),
                format,
                detail: e.to_string(),
            }),
        None => Ok(()),
    }
}

fn check_text(key: &str, value: &str) -> Result<(), String> {
    let key_ok = (1..=79).contains(&key.len())
        && key.bytes().all(|b| (0x20..0x7F).contains(&b) && b != b'=')
        && !key.starts_with(' ')
        && !key.ends_with(' ');
    if !key_ok {
        return Err(format!(
            "metadata key {key:?} is not allowed (1 to 79 printable ASCII characters, no '=', no outer spaces)"
        ));
    }
    if value.contains('\0') {
        return Err(format!("metadata value for {key:?} contains a NUL character"));
    }
    Ok(())
}

/// Adds one COM segment (several if the text exceeds a segment) after the APPn segments.
fn insert_jpeg_comment(jpeg: &mut Vec<u8>, text: &[(String, String)]) -> Result<(), &'static str> {
    let mut body = String::new();
    for (key, value) in text {
        let escaped = value
            .replace('\\', "\\\\")
            .replace('\n', "\\n")
            .replace('\r', "\\r");
        body.push_str(&format!("{key}={escaped}\n"));
    }
    if !jpeg.starts_with(&[0xFF, 0xD8]) {
        return Err("the encoder did not produce a JPEG start marker");
    }
    let mut at = 2;
    while jpeg.get(at) == Some(&0xFF) && jpeg.get(at + 1).is_some_and(|m| (0xE0..=0xEF).contains(m)) {
        let len = jpeg
            .get(at + 2..at + 4)
            .ok_or("the encoder produced a cut APP segment")?;
        at += 2 + usize::from(u16::from_be_bytes([len[0], len[1]]));
    }
    if at > jpeg.len() {
        return Err("the encoder produced a cut APP segment");
    }
    let mut segments = Vec::new();
    for chunk in body.as_bytes().chunks(0xFFFF - 2) {
        segments.extend_from_slice(&[0xFF, 0xFE]);
        // Chunks are at most 0xFFFD bytes, so the length fits in 16 bits.
        segments.extend_from_slice(&((chunk.len() + 2) as u16).to_be_bytes());
        segments.extend_from_slice(chunk);
    }
    jpeg.splice(at..at, segments);
    Ok(())
}

/// Adds text chunks right after IHDR, where readers that stop at the image data still see them.
fn insert_png_text(png: &mut Vec<u8>, text: &[(String, String)]) -> Result<(), &'static str> {
    const IHDR_END: usize = 8 + 8 + 13 + 4;
    if png.len() < IHDR_END || &png[12..16] != b"IHDR" {
        return Err("the encoder did not produce a PNG header");
    }
    let mut chunks = Vec::new();
    for (key, value) in text {
        let mut data = key.as_bytes().to_vec();
        let kind: &[u8; 4] = if value.is_ascii() {
            data.push(0);
            b"tEXt"
        } else {
            // keyword NUL, uncompressed, method 0, empty language tag NUL, empty translated key NUL.
            data.extend_from_slice(&[0, 0, 0, 0, 0]);
            b"iTXt"
        };
        data.extend_from_slice(value.as_bytes());
        let len = u32::try_from(data.len()).map_err(|_| "a metadata value is too long for a PNG chunk")?;
        chunks.extend_from_slice(&len.to_be_bytes());
        let start = chunks.len();
        chunks.extend_from_slice(kind);
        chunks.extend_from_slice(&data);
        let crc = crc32(&chunks[start..]);
        chunks.extend_from_slice(&crc.to_be_bytes());
    }
    png.splice(IHDR_END..IHDR_END, chunks);
    Ok(())
}

/// CRC-32 (ISO 3309, as PNG requires) over chunk type and data.
fn crc32(bytes: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut n = 0;
        while n < 256 {
            let mut c = n as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            table[n] = c;
            n += 1;
        }
        table
    };
    !bytes.iter().fold(!0u32, |c, &b| {
        TABLE[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_png_iend() {
        assert_eq!(crc32(b"IEND"), 0xAE42_6082);
    }

    #[test]
    fn counter_suffix_is_parsed_strictly() {
        assert_eq!(split_counter("photo (3)"), Some(("photo", 3)));
        assert_eq!(split_counter("a (b) (12)"), Some(("a (b)", 12)));
        assert_eq!(split_counter("photo (03)"), None);
        assert_eq!(split_counter("photo ()"), None);
        assert_eq!(split_counter("photo(3)"), None);
    }

    #[test]
    fn the_writer_pid_is_read_from_the_temp_name() {
        assert_eq!(writer_pid(b".facecast-tmp-4242-a8Xk.part"), Some(4242));
        assert_eq!(writer_pid(temp_prefix().as_bytes()), Some(std::process::id()));
        assert_eq!(writer_pid(b".facecast-tmp-crashed.part"), None);
        assert_eq!(writer_pid(b".facecast-tmp--x.part"), None);
        assert!(!process_is_gone(std::process::id()));
    }

    #[test]
    fn text_keys_are_validated() {
        assert!(check_text("recipe", "a=b\nc").is_ok());
        assert!(check_text("", "x").is_err());
        assert!(check_text("a=b", "x").is_err());
        assert!(check_text(" lead", "x").is_err());
        assert!(check_text("clé", "x").is_err());
        assert!(check_text("k", "nul\0").is_err());
    }
}
