//! Loading a photo from disk into 8-bit RGB, whatever the file holds.
//!
//! The format is taken from the content, never the name: shops rename files freely, and a PNG
//! called `.jpg` is an ordinary sight. Dimensions are read from the header and checked against the
//! limits before any pixel buffer exists, so a hostile or broken header cannot exhaust memory.

use std::fs::File;
use std::io::{BufReader, Cursor, Read};
use std::path::Path;

use image::metadata::Orientation;
use image::{DynamicImage, ExtendedColorType, ImageDecoder, ImageFormat, ImageReader, Pixel, RgbImage};

use super::error::ImageError;
use super::sniff;

/// Resource limits applied to every load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest accepted `width * height` as stored in the file.
    pub max_pixels: u64,
    /// Largest accepted file size; the whole file is read into memory.
    pub max_file_bytes: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_pixels: 100_000_000,
            max_file_bytes: 512 * 1024 * 1024,
        }
    }
}

/// A decoded photo, upright and ready for the pipeline.
#[derive(Debug, Clone)]
pub struct Photo {
    /// 8-bit RGB with the EXIF orientation applied and any alpha composited over white (merchandise
    /// is presented on white, so transparent areas must not turn black).
    pub rgb: RgbImage,
    /// Width and height as stored in the file, before orientation.
    pub original_size: (u32, u32),
    /// The orientation that was applied to produce `rgb`.
    pub orientation: Orientation,
    /// The format found from the file's content.
    pub format: ImageFormat,
    /// The embedded ICC profile, kept only when it describes RGB data (a CMYK or grey profile would
    /// be wrong for `rgb`); exports embed it again so the colours keep their meaning.
    pub icc_profile: Option<Vec<u8>>,
    /// Human-readable remarks on conversions that changed or dropped information.
    pub notes: Vec<String>,
}

/// Loads `path`, applying the limits, EXIF orientation and conversion to 8-bit RGB.
pub fn load_photo(path: &Path, limits: &DecodeLimits) -> Result<Photo, ImageError> {
    let bytes = read_whole_file(path, limits)?;
    let format = content_format(path, &bytes)?;
    let mut notes = Vec::new();

    let jpeg = (format == ImageFormat::Jpeg).then(|| sniff::jpeg_info(&bytes));
    if jpeg.is_some_and(|info| !info.complete) {
        return Err(ImageError::Truncated {
            path: path.to_path_buf(),
            format: format_name(format).into(),
        });
    }

    let mut reader = ImageReader::with_format(Cursor::new(bytes.as_slice()), format);
    reader.limits(decoder_limits(limits));
    let mut decoder = reader.into_decoder().map_err(|e| classify(path, format, e))?;
    let (width, height) = decoder.dimensions();
    check_pixels(path, width, height, limits)?;

    let orientation = decoder.orientation().unwrap_or_else(|e| {
        notes.push(format!("EXIF orientation unreadable ({e}); image left as stored"));
        Orientation::NoTransforms
    });
    let icc_profile = match decoder.icc_profile() {
        Ok(profile) => profile,
        Err(e) => {
            notes.push(format!("embedded ICC profile unreadable ({e}); ignored"));
            None
        }
    };
    let original_colour = decoder.original_color_type();

    let needed = decoder.total_bytes();
    let allowed = limits.max_pixels.saturating_mul(MAX_BYTES_PER_PIXEL);
    if needed > allowed {
        return Err(ImageError::MemoryLimit {
            path: path.to_path_buf(),
            detail: format!("{needed} bytes of pixels, at most {allowed} allowed"),
        });
    }
    let decoded = DynamicImage::from_decoder(decoder).map_err(|e| classify(path, format, e))?;

    if let Some(info) = jpeg.filter(|info| info.components == Some(4)) {
        let kind = if info.adobe_transform == Some(2) {
            "YCCK"
        } else {
            "CMYK"
        };
        notes.push(format!("{kind} JPEG converted to RGB without colour management"));
    } else if matches!(
        original_colour,
        ExtendedColorType::Cmyk8 | ExtendedColorType::Cmyk16
    ) {
        notes.push("CMYK converted to RGB without colour management".into());
    }
    note_frames(format, &bytes, &mut notes);
    let icc_profile = keep_rgb_profile(icc_profile, &mut notes);

    let mut upright = DynamicImage::ImageRgb8(to_rgb8(decoded, &mut notes));
    upright.apply_orientation(orientation);
    Ok(Photo {
        rgb: upright.into_rgb8(),
        original_size: (width, height),
        orientation,
        format,
        icc_profile,
        notes,
    })
}

/// The size the photo will have once loaded (EXIF orientation applied), read from the header only.
pub fn probe_dimensions(path: &Path) -> Result<(u32, u32), ImageError> {
    let limits = DecodeLimits::default();
    let file = open_checked(path, &limits)?.0;
    let reader = ImageReader::new(BufReader::new(file))
        .with_guessed_format()
        .map_err(|source| ImageError::Unreadable {
            path: path.to_path_buf(),
            source,
        })?;
    let Some(format) = reader.format() else {
        // Only the first bytes are needed to describe what the file is instead.
        let mut head = Vec::new();
        File::open(path)
            .and_then(|f| f.take(512).read_to_end(&mut head))
            .map_err(|source| ImageError::Unreadable {
                path: path.to_path_buf(),
                source,
            })?;
        return Err(not_an_image(path, &head));
    };
    let mut decoder = reader.into_decoder().map_err(|e| classify(path, format, e))?;
    let (width, height) = decoder.dimensions();
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    Ok(if swaps_sides(orientation) {
        (height, width)
    } else {
        (width, height)
    })
}

/// Worst case of the decoded buffer before conversion: RGBA with 32-bit float samples.
const MAX_BYTES_PER_PIXEL: u64 = 16;

fn decoder_limits(limits: &DecodeLimits) -> image::Limits {
    let side = u32::try_from(limits.max_pixels).unwrap_or(u32::MAX);
    let mut out = image::Limits::default();
    out.max_image_width = Some(side);
    out.max_image_height = Some(side);
    // Room for the decoded buffer plus the decoder's own working memory.
    out.max_alloc = Some(
        limits
            .max_pixels
            .saturating_mul(MAX_BYTES_PER_PIXEL)
            .saturating_add(256 << 20),
    );
    out
}

fn check_pixels(path: &Path, width: u32, height: u32, limits: &DecodeLimits) -> Result<(), ImageError> {
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(ImageError::TooManyPixels {
            path: path.to_path_buf(),
            width,
            height,
            max: limits.max_pixels,
        });
    }
    Ok(())
}

fn swaps_sides(orientation: Orientation) -> bool {
    matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

/// Opens `path` after checking it is a non-empty regular file within the size limit. The check comes
/// first because opening a FIFO would block.
fn open_checked(path: &Path, limits: &DecodeLimits) -> Result<(File, u64), ImageError> {
    let unreadable = |source| ImageError::Unreadable {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(unreadable)?;
    if !meta.is_file() {
        return Err(ImageError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    let size = meta.len();
    if size == 0 {
        return Err(ImageError::Empty {
            path: path.to_path_buf(),
        });
    }
    if size > limits.max_file_bytes {
        return Err(ImageError::FileTooLarge {
            path: path.to_path_buf(),
            size,
            max: limits.max_file_bytes,
        });
    }
    let file = File::open(path).map_err(unreadable)?;
    Ok((file, size))
}

fn read_whole_file(path: &Path, limits: &DecodeLimits) -> Result<Vec<u8>, ImageError> {
    let (file, size) = open_checked(path, limits)?;
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    // The file may grow between the size check and the read; never read past the limit.
    file.take(limits.max_file_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|source| ImageError::Unreadable {
            path: path.to_path_buf(),
            source,
        })?;
    if bytes.is_empty() {
        return Err(ImageError::Empty {
            path: path.to_path_buf(),
        });
    }
    if bytes.len() as u64 > limits.max_file_bytes {
        return Err(ImageError::FileTooLarge {
            path: path.to_path_buf(),
            size: bytes.len() as u64,
            max: limits.max_file_bytes,
        });
    }
    Ok(bytes)
}

fn content_format(path: &Path, bytes: &[u8]) -> Result<ImageFormat, ImageError> {
    image::guess_format(bytes).map_err(|_| not_an_image(path, bytes))
}

/// Explains what an unrecognised file seems to be, mentioning a misleading extension.
fn not_an_image(path: &Path, bytes: &[u8]) -> ImageError {
    let head = &bytes[..bytes.len().min(512)];
    if head.len() >= 12
        && &head[4..8] == b"ftyp"
        && matches!(&head[8..12], b"heic" | b"heix" | b"mif1" | b"msf1")
    {
        return ImageError::UnsupportedFormat {
            path: path.to_path_buf(),
            format: "HEIC/HEIF".into(),
            detail: "convert the photo to JPEG or PNG first".into(),
        };
    }
    let looks_like_text = match std::str::from_utf8(head) {
        Ok(text) => !text.chars().any(|c| c.is_control() && !c.is_whitespace()),
        // A multi-byte character cut at the 512-byte boundary is still text.
        Err(e) => e.error_len().is_none() && e.valid_up_to() > 0,
    };
    let content = if looks_like_text {
        "the content is text"
    } else {
        "the content is not recognised"
    };
    let detail = match path.extension() {
        Some(ext) => format!("named .{} but {content}", ext.to_string_lossy()),
        None => content.to_string(),
    };
    ImageError::NotAnImage {
        path: path.to_path_buf(),
        detail,
    }
}

/// Maps the `image` crate's error to ours, telling a cut-off file from a damaged one.
fn classify(path: &Path, format: ImageFormat, error: image::ImageError) -> ImageError {
    let path = path.to_path_buf();
    let format_str = format_name(format).to_string();
    match error {
        image::ImageError::Limits(e) => ImageError::MemoryLimit {
            path,
            detail: e.to_string(),
        },
        image::ImageError::Unsupported(e) => ImageError::UnsupportedFormat {
            path,
            format: format_str,
            detail: e.to_string(),
        },
        image::ImageError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            ImageError::Truncated {
                path,
                format: format_str,
            }
        }
        other => {
            let detail = other.to_string();
            if mentions_end_of_data(&detail) {
                ImageError::Truncated {
                    path,
                    format: format_str,
                }
            } else {
                ImageError::Corrupt {
                    path,
                    format: format_str,
                    detail,
                }
            }
        }
    }
}

/// Decoders report a short file in their own words; these are the ones they use.
fn mentions_end_of_data(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    [
        "eof",
        "end of file",
        "unexpected end",
        "truncated",
        "end of stream",
        "not enough data",
        "no more data",
    ]
    .iter()
    .any(|needle| lower.contains(needle))
}

/// A short upper-case name for messages.
pub(crate) fn format_name(format: ImageFormat) -> &'static str {
    match format {
        ImageFormat::Jpeg => "JPEG",
        ImageFormat::Png => "PNG",
        ImageFormat::WebP => "WebP",
        ImageFormat::Tiff => "TIFF",
        ImageFormat::Bmp => "BMP",
        ImageFormat::Gif => "GIF",
        ImageFormat::Avif => "AVIF",
        ImageFormat::Ico => "ICO",
        ImageFormat::Tga => "TGA",
        ImageFormat::Dds => "DDS",
        ImageFormat::Hdr => "Radiance HDR",
        ImageFormat::OpenExr => "OpenEXR",
        ImageFormat::Pnm => "PNM",
        ImageFormat::Farbfeld => "Farbfeld",
        ImageFormat::Qoi => "QOI",
        _ => "image",
    }
}

fn note_frames(format: ImageFormat, bytes: &[u8], notes: &mut Vec<String>) {
    let animated = match format {
        ImageFormat::Gif => sniff::gif_frame_count(bytes, 2).is_some_and(|n| n > 1),
        ImageFormat::WebP => sniff::webp_is_animated(bytes),
        _ => false,
    };
    if animated {
        notes.push(format!("animated {}: first frame", format_name(format)));
    }
}

fn keep_rgb_profile(profile: Option<Vec<u8>>, notes: &mut Vec<String>) -> Option<Vec<u8>> {
    let profile = profile?;
    match sniff::icc_colour_space(&profile) {
        Some(space) if &space == b"RGB " => Some(profile),
        Some(space) => {
            let space = String::from_utf8_lossy(&space).trim().to_string();
            notes.push(format!(
                "{space} ICC profile not applied and dropped (pixels are now plain RGB)"
            ));
            None
        }
        None => {
            notes.push("malformed ICC profile ignored".into());
            None
        }
    }
}

/// Converts any decoded layout to 8-bit RGB, compositing alpha over white.
fn to_rgb8(image: DynamicImage, notes: &mut Vec<String>) -> RgbImage {
    let sample_note = match image.color() {
        image::ColorType::Rgb32F | image::ColorType::Rgba32F => {
            Some("floating-point samples converted to 8-bit")
        }
        c if c.bytes_per_pixel() / c.channel_count() == 2 => Some("16-bit samples converted to 8-bit"),
        _ => None,
    };
    notes.extend(sample_note.map(String::from));
    let (rgb, translucent) = match image {
        DynamicImage::ImageRgb8(buffer) => (buffer, false),
        DynamicImage::ImageLumaA8(buffer) => over_white(&buffer, |v| f32::from(v) / 255.0),
        DynamicImage::ImageRgba8(buffer) => over_white(&buffer, |v| f32::from(v) / 255.0),
        DynamicImage::ImageLumaA16(buffer) => over_white(&buffer, |v| f32::from(v) / 65535.0),
        DynamicImage::ImageRgba16(buffer) => over_white(&buffer, |v| f32::from(v) / 65535.0),
        DynamicImage::ImageRgba32F(buffer) => over_white(&buffer, |v| v.clamp(0.0, 1.0)),
        // No alpha: the crate's own conversion scales 16-bit and float samples with rounding.
        opaque if !opaque.color().has_alpha() => (opaque.into_rgb8(), false),
        other => over_white(&other.into_rgba16(), |v| f32::from(v) / 65535.0),
    };
    if translucent {
        notes.push("transparency flattened onto white".into());
    }
    rgb
}

/// Composites every pixel over white; also says whether any pixel was not fully opaque.
fn over_white<P: Pixel>(
    buffer: &image::ImageBuffer<P, Vec<P::Subpixel>>,
    unit: impl Fn(P::Subpixel) -> f32,
) -> (RgbImage, bool) {
    let mut translucent = false;
    let mut out = RgbImage::new(buffer.width(), buffer.height());
    for (dst, src) in out.pixels_mut().zip(buffer.pixels()) {
        let rgba = src.to_rgba();
        let alpha = unit(rgba[3]);
        translucent |= alpha < 1.0;
        for c in 0..3 {
            let value = unit(rgba[c]) * alpha + (1.0 - alpha);
            // Saturating float-to-int cast; the value is already within 0..=255.5.
            dst[c] = (value * 255.0 + 0.5) as u8;
        }
    }
    (out, translucent)
}
