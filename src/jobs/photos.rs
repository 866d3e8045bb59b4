//! Jobs that bring photos into the library: find image files, make thumbnails, load a canvas preview.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use image::{DynamicImage, ImageDecoder, ImageReader, imageops::FilterType};

use super::{Job, JobContext, JobError, JobOutput, Lane};

/// Identifies one photo of the library in the jobs that work on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PhotoId(pub u64);

/// Pixels handed to the UI: 8-bit RGBA, already in displayed orientation.
pub type PhotoImage = image::RgbaImage;

/// File extensions picked up when scanning folders (explicitly named files are sniffed instead).
pub const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "webp", "tif", "tiff", "bmp", "gif"];

/// Long side of library thumbnails, in pixels.
pub const THUMBNAIL_SIDE: u32 = 256;

/// Long side of the canvas preview: enough for a sharp view on a large screen without holding a
/// 24-megapixel original in memory.
pub const PREVIEW_SIDE: u32 = 2048;

/// Files found are reported in batches of this size so thumbnails of a big folder start early.
const SCAN_BATCH: usize = 256;

/// Refuse images whose decoded pixels would need more than this (a decompression bomb guard).
const MAX_DECODE_BYTES: u64 = 1 << 30;

/// Finds the image files under dropped or opened paths (folders recursively).
#[derive(Debug, Clone)]
pub struct ScanPaths {
    pub roots: Vec<PathBuf>,
}

impl Job for ScanPaths {
    fn label(&self) -> String {
        match self.roots.as_slice() {
            [one] => format!("Looking for photos in {}", one.display()),
            many => format!("Looking for photos in {} places", many.len()),
        }
    }

    fn lane(&self) -> Lane {
        Lane::Io
    }

    fn run(self: Box<Self>, ctx: &JobContext) -> Result<(), JobError> {
        let mut scan = Scan {
            ctx,
            files: Vec::new(),
            problems: Vec::new(),
        };
        for root in &self.roots {
            ctx.check_cancelled()?;
            scan.root(root)?;
        }
        scan.flush();
        Ok(())
    }
}

struct Scan<'a> {
    ctx: &'a JobContext,
    files: Vec<PathBuf>,
    problems: Vec<(PathBuf, String)>,
}

impl Scan<'_> {
    fn root(&mut self, root: &Path) -> Result<(), JobError> {
        match std::fs::metadata(root) {
            Err(err) => self
                .problems
                .push((root.to_path_buf(), format!("{}: {err}", root.display()))),
            Ok(meta) if meta.is_dir() => self.folder(root)?,
            // A file the user named explicitly counts if its content looks like an image, whatever
            // its extension says.
            Ok(_) if is_image_file(root) => self.push(root.to_path_buf()),
            Ok(_) => self.problems.push((
                root.to_path_buf(),
                format!("{}: not a supported image file", root.display()),
            )),
        }
        Ok(())
    }

    fn folder(&mut self, folder: &Path) -> Result<(), JobError> {
        let mut stack = vec![folder.to_path_buf()];
        while let Some(dir) = stack.pop() {
            self.ctx.check_cancelled()?;
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(err) => {
                    self.problems
                        .push((dir.clone(), format!("{}: {err}", dir.display())));
                    continue;
                }
            };
            let mut children: Vec<(PathBuf, std::fs::FileType)> = entries
                .filter_map(Result::ok)
                .filter(|entry| !entry.file_name().to_string_lossy().starts_with('.'))
                .filter_map(|entry| entry.file_type().ok().map(|kind| (entry.path(), kind)))
                .collect();
            children.sort_by(|a, b| a.0.cmp(&b.0));
            // Subfolders go on the stack in reverse so they are visited in name order.
            let mut subfolders = Vec::new();
            for (path, kind) in children {
                // Symlinked folders are not followed, so a link cycle cannot trap the scan.
                if kind.is_dir() {
                    subfolders.push(path);
                } else if has_image_extension(&path) {
                    self.push(path);
                }
            }
            stack.extend(subfolders.into_iter().rev());
        }
        Ok(())
    }

    fn push(&mut self, path: PathBuf) {
        self.files.push(path);
        if self.files.len() >= SCAN_BATCH {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.files.is_empty() && self.problems.is_empty() {
            return;
        }
        let files = std::mem::take(&mut self.files);
        let problems = std::mem::take(&mut self.problems);
        self.ctx.output(JobOutput::FilesFound { files, problems });
    }
}

pub fn has_image_extension(path: &Path) -> bool {
    path.extension().and_then(|ext| ext.to_str()).is_some_and(|ext| {
        IMAGE_EXTENSIONS
            .iter()
            .any(|known| known.eq_ignore_ascii_case(ext))
    })
}

/// True when the file starts like an image format we decode.
fn is_image_file(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 32];
    let Ok(mut file) = std::fs::File::open(path) else {
        return has_image_extension(path);
    };
    let Ok(read) = file.read(&mut head) else {
        return has_image_extension(path);
    };
    image::guess_format(&head[..read]).is_ok() || has_image_extension(path)
}

/// Decodes thumbnails for library entries, several at a time, reporting each as it is ready.
#[derive(Debug, Clone)]
pub struct LoadThumbnails {
    pub photos: Vec<(PhotoId, PathBuf)>,
}

impl Job for LoadThumbnails {
    fn label(&self) -> String {
        match self.photos.len() {
            1 => "Loading 1 photo".to_string(),
            n => format!("Loading {n} photos"),
        }
    }

    fn lane(&self) -> Lane {
        Lane::Io
    }

    fn run(self: Box<Self>, ctx: &JobContext) -> Result<(), JobError> {
        let total = self.photos.len();
        let next = AtomicUsize::new(0);
        let done = AtomicUsize::new(0);
        // Decoding is CPU-bound and memory-hungry (a 24 MP photo is ~100 MB decoded): a few threads
        // keep thumbnails flowing without starving the rest of the machine.
        let threads = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .clamp(1, 4)
            .min(total);
        ctx.progress(0, total);
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    while !ctx.is_cancelled() {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        let Some((photo, path)) = self.photos.get(index) else {
                            break;
                        };
                        ctx.output(thumbnail_output(*photo, path));
                        ctx.progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
                    }
                });
            }
        });
        ctx.check_cancelled()
    }
}

fn thumbnail_output(photo: PhotoId, path: &Path) -> JobOutput {
    match decode_photo(path) {
        Ok(image) => {
            let (width, height) = (image.width(), image.height());
            let thumbnail = image.thumbnail(THUMBNAIL_SIDE, THUMBNAIL_SIDE).into_rgba8();
            JobOutput::Thumbnail {
                photo,
                width,
                height,
                thumbnail: Arc::new(thumbnail),
            }
        }
        Err(reason) => JobOutput::PhotoFailed { photo, reason },
    }
}

/// Loads the selected photo at canvas resolution.
#[derive(Debug, Clone)]
pub struct LoadPreview {
    pub photo: PhotoId,
    pub path: PathBuf,
}

impl Job for LoadPreview {
    fn label(&self) -> String {
        format!("Opening {}", display_name(&self.path))
    }

    fn lane(&self) -> Lane {
        Lane::Interactive
    }

    fn run(self: Box<Self>, ctx: &JobContext) -> Result<(), JobError> {
        let image = decode_photo(&self.path).map_err(JobError::Failed)?;
        ctx.check_cancelled()?;
        let (width, height) = (image.width(), image.height());
        let image = if width.max(height) > PREVIEW_SIDE {
            image.resize(PREVIEW_SIDE, PREVIEW_SIDE, FilterType::Triangle)
        } else {
            image
        };
        let image = Arc::new(image.into_rgba8());
        ctx.output(JobOutput::Preview {
            photo: self.photo,
            width,
            height,
            image,
        });
        Ok(())
    }
}

/// Decodes a photo in its displayed orientation; the error names the file and the cause.
///
/// Kept in one place so it can be swapped for the shared `crate::io` loader once that lands.
pub fn decode_photo(path: &Path) -> Result<DynamicImage, String> {
    let fail = |cause: &dyn std::fmt::Display| format!("{}: {cause}", path.display());
    let mut reader = ImageReader::open(path)
        .map_err(|e| fail(&e))?
        .with_guessed_format()
        .map_err(|e| fail(&e))?;
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(|e| fail(&e))?;
    let orientation = decoder.orientation().map_err(|e| fail(&e))?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| fail(&e))?;
    image.apply_orientation(orientation);
    Ok(image)
}

/// The file name for labels, or the whole path when it has none.
pub fn display_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_errors_name_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fake = dir.path().join("fake.png");
        std::fs::write(&fake, b"not a png at all").expect("write");
        let err = decode_photo(&fake).expect_err("garbage must not decode");
        assert!(err.contains("fake.png"), "{err}");
        let missing = dir.path().join("missing.jpg");
        let err = decode_photo(&missing).expect_err("missing file");
        assert!(err.contains("missing.jpg"), "{err}");
    }

    #[test]
    fn a_png_named_jpg_still_decodes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("really-a-png.jpg");
        image::RgbImage::from_pixel(7, 5, image::Rgb([1, 2, 3]))
            .save_with_format(&path, image::ImageFormat::Png)
            .expect("save");
        let image = decode_photo(&path).expect("decodes by content");
        assert_eq!((image.width(), image.height()), (7, 5));
    }

    #[test]
    fn extensions_are_matched_without_case() {
        assert!(has_image_extension(Path::new("a/B.JPG")));
        assert!(has_image_extension(Path::new("c.TiFf")));
        assert!(!has_image_extension(Path::new("notes.txt")));
        assert!(!has_image_extension(Path::new("jpg")));
    }
}
