//! Jobs that bring photos into the library: find image files, make thumbnails, load a canvas preview.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use image::{DynamicImage, RgbImage, imageops::FilterType};

use super::{Job, JobContext, JobError, JobOutput, Lane};
use crate::io::collect::{Found, is_photo_name, sniff_photo, walk};
use crate::io::{DecodeLimits, ImageError, load_photo};

/// Identifies one photo of the library in the jobs that work on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PhotoId(pub u64);

/// Pixels handed to the UI: 8-bit RGBA, already in displayed orientation.
pub type PhotoImage = image::RgbaImage;

/// File extensions of photos: the one list of [`crate::io::collect`].
pub use crate::io::collect::PHOTO_EXTENSIONS as IMAGE_EXTENSIONS;

/// Long side of library thumbnails, in pixels.
pub const THUMBNAIL_SIDE: u32 = 256;

/// Long side of the canvas preview: enough for a sharp view on a large screen without holding a
/// 24-megapixel original in memory.
pub const PREVIEW_SIDE: u32 = 2048;

/// Files found are reported in batches of this size so thumbnails of a big folder start early.
const SCAN_BATCH: usize = 256;

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
        // The one folder walker (streaming: thumbnails of a big folder start with its first files).
        for found in walk(&self.roots) {
            ctx.check_cancelled()?;
            match found {
                Found::Photo(path) if self.roots.contains(&path) => scan.root(path),
                Found::Photo(path) => scan.push(path),
                // The library lists photos only; a batch report lists the rest.
                Found::NotPhoto { .. } => {}
                Found::Unreadable { path, reason } => scan.problems.push((path, reason)),
            }
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
    /// A file the user named: it counts if its name or its content says image.
    fn root(&mut self, root: PathBuf) {
        match std::fs::metadata(&root) {
            Err(err) => {
                let reason = format!("{}: {err}", root.display());
                self.problems.push((root, reason));
            }
            Ok(_) if is_photo_name(&root) || sniff_photo(&root).unwrap_or(false) => self.push(root),
            Ok(_) => {
                let reason = format!("{}: not a supported image file", root.display());
                self.problems.push((root, reason));
            }
        }
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

/// Decodes thumbnails for library entries, several at a time, reporting each as it is ready.
#[derive(Debug, Clone)]
pub struct LoadThumbnails {
    pub photos: Vec<(PhotoId, PathBuf)>,
    /// Hand the decoded photos back too, so face detection need not decode them again.
    pub keep_rgb: bool,
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
                        ctx.output(thumbnail_output(*photo, path, self.keep_rgb));
                        ctx.progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
                    }
                });
            }
        });
        ctx.check_cancelled()
    }
}

fn thumbnail_output(photo: PhotoId, path: &Path, keep_rgb: bool) -> JobOutput {
    match photo_pixels(path) {
        Ok(rgb) => {
            let image = DynamicImage::ImageRgb8(rgb);
            let (width, height) = (image.width(), image.height());
            let thumbnail = image.thumbnail(THUMBNAIL_SIDE, THUMBNAIL_SIDE).into_rgba8();
            let rgb = keep_rgb.then(|| Arc::new(image.into_rgb8()));
            JobOutput::Thumbnail {
                photo,
                width,
                height,
                thumbnail: Arc::new(thumbnail),
                rgb,
            }
        }
        Err(e) => JobOutput::PhotoFailed {
            photo,
            reason: e.to_string(),
        },
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
        let image = DynamicImage::ImageRgb8(photo_pixels(&self.path)?);
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

/// A photo's pixels as every job sees them: [`crate::io::load_photo`], the loader the export uses
/// (upright, alpha over white, CMYK converted), so the window previews, detects and edits the same
/// pixels it exports. The error names the file and the cause.
pub fn photo_pixels(path: &Path) -> Result<RgbImage, ImageError> {
    load_photo(path, &DecodeLimits::default()).map(|photo| photo.rgb)
}

pub use crate::io::display_name;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_errors_name_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fake = dir.path().join("fake.png");
        std::fs::write(&fake, b"not a png at all").expect("write");
        let err = photo_pixels(&fake).expect_err("garbage must not decode");
        assert!(err.to_string().contains("fake.png"), "{err}");
        let missing = dir.path().join("missing.jpg");
        let err = photo_pixels(&missing).expect_err("missing file");
        assert!(err.to_string().contains("missing.jpg"), "{err}");
    }

    #[test]
    fn a_transparent_photo_is_flattened_over_white_as_the_export_does() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("really-a-png.jpg");
        image::RgbaImage::from_pixel(7, 5, image::Rgba([1, 2, 3, 0]))
            .save_with_format(&path, image::ImageFormat::Png)
            .expect("save");
        let rgb = photo_pixels(&path).expect("decodes by content");
        assert_eq!(rgb.dimensions(), (7, 5));
        assert_eq!(rgb.get_pixel(0, 0).0, [255, 255, 255]);
        let exported = load_photo(&path, &DecodeLimits::default()).expect("load");
        assert_eq!(rgb, exported.rgb, "the window's pixels are the export's");
    }
}
