//! Image input and output against real files in every layout a shop may hand over. All files are
//! generated here at test time (with the encoders, or byte by byte where no encoder writes them).

mod common;

use std::ffi::OsStr;
use std::fs;
use std::io::Cursor;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use facecast::io::{
    DecodeLimits, ExportError, ExportFormat, ExportOptions, ImageError, Photo, TEMP_PREFIX,
    clean_stale_temp_files, export_atomic, load_photo, probe_dimensions, unique_path,
};
use image::metadata::Orientation;
use image::{ExtendedColorType, ImageEncoder, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};

fn load(path: &Path) -> Result<Photo, ImageError> {
    load_photo(path, &DecodeLimits::default())
}

/// Loads a file that must be refused; a wrongly decoded photo is summarised, not dumped.
fn load_err(path: &Path) -> ImageError {
    match load(path) {
        Ok(photo) => panic!(
            "{} loaded as {:?} but must be refused",
            path.display(),
            photo.rgb.dimensions()
        ),
        Err(e) => e,
    }
}

fn write(dir: &Path, name: impl AsRef<OsStr>, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name.as_ref());
    fs::write(&path, bytes).unwrap();
    path
}

/// A smooth, asymmetric pattern: every pixel differs, so a flip or shift would show.
fn pattern(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        Rgb([
            (x * 255 / width.max(2)) as u8,
            (y * 255 / height.max(2)) as u8,
            ((x + 2 * y) % 97) as u8 + 80,
        ])
    })
}

fn max_diff(a: &RgbImage, b: &RgbImage) -> u8 {
    assert_eq!(a.dimensions(), b.dimensions());
    a.as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(p, q)| p.abs_diff(*q))
        .max()
        .unwrap_or(0)
}

fn mean_diff(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let total: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(p, q)| u64::from(p.abs_diff(*q)))
        .sum();
    total as f64 / a.as_raw().len() as f64
}

fn close(actual: &Rgb<u8>, expected: [u8; 3], tolerance: u8) -> bool {
    actual
        .0
        .iter()
        .zip(expected)
        .all(|(a, e)| a.abs_diff(e) <= tolerance)
}

fn encode_with(img: &RgbImage, encoder: impl ImageEncoder) {
    encoder
        .write_image(img.as_raw(), img.width(), img.height(), ExtendedColorType::Rgb8)
        .unwrap();
}

fn png_bytes(img: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    encode_with(img, image::codecs::png::PngEncoder::new(&mut out));
    out
}

fn jpeg_bytes(img: &RgbImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    encode_with(
        img,
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality),
    );
    out
}

fn temp_leftovers(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(TEMP_PREFIX))
        .collect()
}

/// A plausible ICC header (the decoder keeps only RGB profiles), padded with recognisable bytes.
fn icc_profile(space: &[u8; 4]) -> Vec<u8> {
    let mut profile: Vec<u8> = (0..600u32).map(|i| (i * 7 % 251) as u8).collect();
    profile[0..4].copy_from_slice(&600u32.to_be_bytes());
    profile[12..16].copy_from_slice(b"mntr");
    profile[16..20].copy_from_slice(space);
    profile[20..24].copy_from_slice(b"XYZ ");
    profile[36..40].copy_from_slice(b"acsp");
    profile
}

fn options(format: ExportFormat) -> ExportOptions {
    ExportOptions {
        format,
        icc_profile: None,
        text: Vec::new(),
        overwrite: false,
    }
}

// ---------------------------------------------------------------- decoding

#[test]
fn every_supported_format_loads_to_the_same_pixels() {
    let dir = tempfile::tempdir().unwrap();
    let img = pattern(64, 48);

    let mut webp = Vec::new();
    encode_with(&img, image::codecs::webp::WebPEncoder::new_lossless(&mut webp));
    let mut tiff = Cursor::new(Vec::new());
    encode_with(&img, image::codecs::tiff::TiffEncoder::new(&mut tiff));
    let mut bmp = Vec::new();
    encode_with(&img, image::codecs::bmp::BmpEncoder::new(&mut bmp));

    let cases: [(&str, Vec<u8>, ImageFormat, u8); 5] = [
        ("a.jpg", jpeg_bytes(&img, 98), ImageFormat::Jpeg, 12),
        ("a.png", png_bytes(&img), ImageFormat::Png, 0),
        ("a.webp", webp, ImageFormat::WebP, 0),
        ("a.tiff", tiff.into_inner(), ImageFormat::Tiff, 0),
        ("a.bmp", bmp, ImageFormat::Bmp, 0),
    ];
    for (name, bytes, format, tolerance) in cases {
        let photo = load(&write(dir.path(), name, &bytes)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(photo.format, format, "{name}");
        assert_eq!(photo.original_size, (64, 48), "{name}");
        assert_eq!(photo.orientation, Orientation::NoTransforms, "{name}");
        let diff = max_diff(&photo.rgb, &img);
        assert!(diff <= tolerance, "{name}: pixels differ by up to {diff}");
        assert!(
            photo.notes.is_empty(),
            "{name}: unexpected notes {:?}",
            photo.notes
        );
        assert_eq!(
            probe_dimensions(&dir.path().join(name)).unwrap(),
            (64, 48),
            "{name}"
        );
    }
}

#[test]
fn grey_png_becomes_equal_rgb_channels() {
    let dir = tempfile::tempdir().unwrap();
    let grey = image::GrayImage::from_fn(16, 8, |x, y| image::Luma([(x * 16 + y) as u8]));
    let mut bytes = Vec::new();
    image::codecs::png::PngEncoder::new(&mut bytes)
        .write_image(grey.as_raw(), 16, 8, ExtendedColorType::L8)
        .unwrap();
    let photo = load(&write(dir.path(), "grey.png", &bytes)).unwrap();
    for (x, y, p) in photo.rgb.enumerate_pixels() {
        let v = (x * 16 + y) as u8;
        assert_eq!(p.0, [v, v, v]);
    }
}

#[test]
fn palette_png_with_transparency_is_flattened_on_white() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, 4, 1);
        encoder.set_color(png::ColorType::Indexed);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_palette(vec![255, 0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0]);
        // Entry 2 fully transparent, entry 3 (black) half transparent, others opaque.
        encoder.set_trns(vec![255, 255, 0, 128]);
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(&[0, 1, 2, 3]).unwrap();
        writer.finish().unwrap();
    }
    let photo = load(&write(dir.path(), "indexed.png", &bytes)).unwrap();
    assert_eq!(photo.rgb.get_pixel(0, 0).0, [255, 0, 0]);
    assert_eq!(photo.rgb.get_pixel(1, 0).0, [0, 255, 0]);
    assert_eq!(
        photo.rgb.get_pixel(2, 0).0,
        [255, 255, 255],
        "transparent must become white, not blue or black"
    );
    assert!(close(photo.rgb.get_pixel(3, 0), [127, 127, 127], 1));
    assert!(
        photo.notes.iter().any(|n| n.contains("transparency")),
        "{:?}",
        photo.notes
    );
}

#[test]
fn rgba_png_is_composited_over_white() {
    let dir = tempfile::tempdir().unwrap();
    let rgba = RgbaImage::from_vec(
        4,
        1,
        vec![255, 0, 0, 128, 0, 0, 255, 0, 10, 20, 30, 255, 0, 0, 0, 64],
    )
    .unwrap();
    let mut bytes = Vec::new();
    image::codecs::png::PngEncoder::new(&mut bytes)
        .write_image(rgba.as_raw(), 4, 1, ExtendedColorType::Rgba8)
        .unwrap();
    let photo = load(&write(dir.path(), "rgba.png", &bytes)).unwrap();
    assert!(close(photo.rgb.get_pixel(0, 0), [255, 127, 127], 1));
    assert_eq!(photo.rgb.get_pixel(1, 0).0, [255, 255, 255]);
    assert_eq!(photo.rgb.get_pixel(2, 0).0, [10, 20, 30]);
    assert!(close(photo.rgb.get_pixel(3, 0), [191, 191, 191], 1));
}

#[test]
fn sixteen_bit_png_is_scaled_not_truncated() {
    let dir = tempfile::tempdir().unwrap();
    // Dropping the low byte would give 0x10 and 0 for 0x10FF and 0x00FF; scaling with rounding
    // gives 17 and 1.
    let samples: [u16; 6] = [65535, 0, 257 * 200, 0x10FF, 0x00FF, 32896];
    let raw: Vec<u8> = samples.iter().flat_map(|v| v.to_ne_bytes()).collect();
    let mut bytes = Vec::new();
    image::codecs::png::PngEncoder::new(&mut bytes)
        .write_image(&raw, 2, 1, ExtendedColorType::Rgb16)
        .unwrap();
    let photo = load(&write(dir.path(), "deep.png", &bytes)).unwrap();
    assert_eq!(photo.rgb.get_pixel(0, 0).0, [255, 0, 200]);
    assert_eq!(photo.rgb.get_pixel(1, 0).0, [17, 1, 128]);
    assert!(
        photo.notes.iter().any(|n| n.contains("16-bit")),
        "{:?}",
        photo.notes
    );

    // 16-bit grey with alpha: half-transparent black over white.
    let raw: Vec<u8> = [0u16, 32768].iter().flat_map(|v| v.to_ne_bytes()).collect();
    let mut bytes = Vec::new();
    image::codecs::png::PngEncoder::new(&mut bytes)
        .write_image(&raw, 1, 1, ExtendedColorType::La16)
        .unwrap();
    let photo = load(&write(dir.path(), "deep-la.png", &bytes)).unwrap();
    assert!(close(photo.rgb.get_pixel(0, 0), [127, 127, 127], 1));
}

/// Blocks of flat CMYK ink, each 16x16 so that JPEG's 8x8 transform keeps the centres exact.
fn cmyk_swatches() -> (Vec<u8>, Vec<[u8; 3]>, u16, u16) {
    let inks: [([u8; 4], [u8; 3]); 7] = [
        ([0, 0, 0, 0], [255, 255, 255]),
        ([255, 0, 0, 0], [0, 255, 255]),
        ([0, 255, 0, 0], [255, 0, 255]),
        ([0, 0, 255, 0], [255, 255, 0]),
        ([0, 0, 0, 255], [0, 0, 0]),
        ([0, 0, 0, 128], [127, 127, 127]),
        ([0, 128, 255, 0], [255, 127, 0]),
    ];
    let (w, h) = (16 * inks.len() as u16, 16u16);
    let mut data = Vec::new();
    for _y in 0..h {
        for x in 0..w {
            data.extend_from_slice(&inks[usize::from(x / 16)].0);
        }
    }
    (data, inks.iter().map(|(_, rgb)| *rgb).collect(), w, h)
}

#[test]
fn cmyk_and_ycck_jpegs_have_the_right_colours() {
    let dir = tempfile::tempdir().unwrap();
    let (data, expected, w, h) = cmyk_swatches();
    for (name, colour) in [
        ("cmyk.jpg", jpeg_encoder::ColorType::Cmyk),
        ("ycck.jpg", jpeg_encoder::ColorType::CmykAsYcck),
    ] {
        let mut bytes = Vec::new();
        jpeg_encoder::Encoder::new(&mut bytes, 100)
            .encode(&data, w, h, colour)
            .unwrap();
        let photo = load(&write(dir.path(), name, &bytes)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(photo.rgb.dimensions(), (u32::from(w), u32::from(h)));
        for (i, rgb) in expected.iter().enumerate() {
            let got = photo.rgb.get_pixel(i as u32 * 16 + 8, 8);
            assert!(
                close(got, *rgb, 6),
                "{name} swatch {i}: got {:?}, want {rgb:?}",
                got.0
            );
        }
        assert!(
            photo.notes.iter().any(|n| n.contains("converted to RGB")),
            "{name}: {:?}",
            photo.notes
        );
    }
}

/// Inserts an EXIF APP1 segment holding only an orientation tag right after SOI.
fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut tiff = b"MM\x00\x2A\x00\x00\x00\x08".to_vec();
    tiff.extend_from_slice(&1u16.to_be_bytes()); // one IFD entry
    tiff.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
    tiff.extend_from_slice(&3u16.to_be_bytes()); // SHORT
    tiff.extend_from_slice(&1u32.to_be_bytes()); // count
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0]); // value padding
    tiff.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
    let mut app1 = b"Exif\x00\x00".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

#[test]
fn exif_orientation_6_is_applied() {
    let dir = tempfile::tempdir().unwrap();
    // Stored landscape 48x24, grey, with a red 8x8 block in the stored top-left corner.
    let stored = RgbImage::from_fn(48, 24, |x, y| {
        if x < 8 && y < 8 {
            Rgb([255, 0, 0])
        } else {
            Rgb([128, 128, 128])
        }
    });
    let path = write(
        dir.path(),
        "rotated.jpg",
        &with_exif_orientation(&jpeg_bytes(&stored, 95), 6),
    );

    let photo = load(&path).unwrap();
    assert_eq!(photo.orientation, Orientation::Rotate90);
    assert_eq!(photo.original_size, (48, 24));
    assert_eq!(
        photo.rgb.dimensions(),
        (24, 48),
        "orientation 6 shows the photo in portrait"
    );
    // A 90-degree clockwise turn carries the stored top-left corner to the top-right.
    assert!(
        close(photo.rgb.get_pixel(24 - 4, 4), [255, 0, 0], 40),
        "{:?}",
        photo.rgb.get_pixel(20, 4)
    );
    for (x, y) in [(3, 3), (3, 44), (20, 44)] {
        assert!(close(photo.rgb.get_pixel(x, y), [128, 128, 128], 12), "({x},{y})");
    }
    assert_eq!(probe_dimensions(&path).unwrap(), (24, 48));
}

#[test]
fn animated_gif_gives_its_first_frame() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = Vec::new();
    {
        let mut encoder = image::codecs::gif::GifEncoder::new(&mut bytes);
        let frames = [Rgba([255, 0, 0, 255]), Rgba([0, 0, 255, 255])]
            .map(|c| image::Frame::new(RgbaImage::from_pixel(10, 6, c)));
        encoder.encode_frames(frames).unwrap();
    }
    let photo = load(&write(dir.path(), "anim.gif", &bytes)).unwrap();
    assert_eq!(photo.format, ImageFormat::Gif);
    assert_eq!(photo.rgb.dimensions(), (10, 6));
    assert!(
        photo.rgb.pixels().all(|p| close(p, [255, 0, 0], 3)),
        "first frame is red"
    );
    assert!(
        photo.notes.iter().any(|n| n == "animated GIF: first frame"),
        "{:?}",
        photo.notes
    );
}

#[test]
fn oversized_header_is_refused_before_decoding() {
    let dir = tempfile::tempdir().unwrap();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&60000u32.to_be_bytes());
    ihdr.extend_from_slice(&60000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend(common::png_chunk(b"IHDR", &ihdr));
    // A token of image data: the header is all that may be looked at.
    bytes.extend(common::png_chunk(b"IDAT", &[0x78, 0x01, 0x01, 0x00, 0x00]));
    bytes.extend(common::png_chunk(b"IEND", &[]));
    let path = write(dir.path(), "bomb.png", &bytes);

    let start = Instant::now();
    let err = load_err(&path);
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "took {:?}",
        start.elapsed()
    );
    assert!(
        matches!(
            err,
            ImageError::TooManyPixels {
                width: 60000,
                height: 60000,
                max: 100_000_000,
                ..
            }
        ),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("bomb.png") && message.contains("60000x60000"),
        "{message}"
    );
    assert_eq!(probe_dimensions(&path).unwrap(), (60000, 60000));

    // The limit is the caller's: a small one refuses an ordinary image.
    let small = write(dir.path(), "small.png", &png_bytes(&pattern(64, 48)));
    let strict = DecodeLimits {
        max_pixels: 1000,
        ..DecodeLimits::default()
    };
    assert!(matches!(
        load_photo(&small, &strict),
        Err(ImageError::TooManyPixels { .. })
    ));
    let tiny_files = DecodeLimits {
        max_file_bytes: 100,
        ..DecodeLimits::default()
    };
    assert!(matches!(
        load_photo(&small, &tiny_files),
        Err(ImageError::FileTooLarge { max: 100, .. })
    ));
}

#[test]
fn broken_files_get_distinct_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let img = pattern(64, 48);
    let jpeg = jpeg_bytes(&img, 90);
    let png = png_bytes(&img);

    let empty = write(dir.path(), "empty.jpg", &[]);
    let err = load_err(&empty);
    assert!(matches!(err, ImageError::Empty { .. }), "{err:?}");
    assert!(err.to_string().contains("empty.jpg"));

    for (name, bytes) in [
        ("cut.jpg", &jpeg[..jpeg.len() * 2 / 3]),
        ("cut-header.jpg", &jpeg[..40]),
        ("cut.png", &png[..png.len() / 2]),
        ("cut-header.png", &png[..20]),
    ] {
        let err = load_err(&write(dir.path(), name, bytes));
        assert!(matches!(err, ImageError::Truncated { .. }), "{name}: {err:?}");
        assert!(err.to_string().contains(name), "{err}");
    }

    let text = write(
        dir.path(),
        "notes.jpg",
        b"Product shots for spring, see the shared folder.\n",
    );
    let err = load_err(&text);
    assert!(matches!(err, ImageError::NotAnImage { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("notes.jpg") && message.contains("text"),
        "{message}"
    );

    let qoi = write(
        dir.path(),
        "odd.qoi",
        b"qoif\x00\x00\x00\x04\x00\x00\x00\x04\x03\x00rest",
    );
    let err = load_err(&qoi);
    assert!(matches!(err, ImageError::UnsupportedFormat { .. }), "{err:?}");
    assert!(err.to_string().contains("QOI"), "{err}");

    let missing = dir.path().join("missing.png");
    let err = load_err(&missing);
    assert!(matches!(err, ImageError::Unreadable { .. }), "{err:?}");
    assert!(err.to_string().contains("missing.png"));

    let err = load_err(dir.path());
    assert!(matches!(err, ImageError::NotAFile { .. }), "{err:?}");

    let mut damaged = png.clone();
    let idat = damaged.windows(4).position(|w| w == b"IDAT").unwrap();
    damaged[idat + 10] ^= 0xFF; // the chunk's CRC no longer matches
    let err = load_err(&write(dir.path(), "damaged.png", &damaged));
    assert!(matches!(err, ImageError::Corrupt { .. }), "{err:?}");
}

#[test]
fn content_decides_the_format_and_odd_names_work() {
    let dir = tempfile::tempdir().unwrap();
    let img = pattern(20, 10);
    let photo = load(&write(dir.path(), "really-a-png.jpg", &png_bytes(&img))).unwrap();
    assert_eq!(photo.format, ImageFormat::Png);
    assert_eq!(photo.rgb, img);

    let name = OsStr::from_bytes(b"caf\xe9 shot.png");
    let photo = load(&write(dir.path(), name, &png_bytes(&img))).unwrap();
    assert_eq!(photo.rgb, img);
    let err = load_err(&write(dir.path(), OsStr::from_bytes(b"caf\xe9 empty.png"), &[]));
    assert!(err.to_string().contains("caf\u{FFFD} empty.png"), "{err}");
}

// ---------------------------------------------------------------- export

#[test]
fn export_never_touches_a_source() {
    let dir = tempfile::tempdir().unwrap();
    let source = write(dir.path(), "shot.png", &png_bytes(&pattern(32, 16)));
    let original = fs::read(&source).unwrap();
    let edited = RgbImage::from_pixel(32, 16, Rgb([1, 2, 3]));
    let mut opts = options(ExportFormat::Png);

    let out = export_atomic(&edited, &dir.path().join("shot-edit.png"), &opts, &[&source]).unwrap();
    assert_eq!(out, dir.path().join("shot-edit.png"));
    assert_eq!(load(&out).unwrap().rgb, edited);

    fs::create_dir(dir.path().join("sub")).unwrap();
    fs::hard_link(&source, dir.path().join("hardlink.png")).unwrap();
    std::os::unix::fs::symlink(&source, dir.path().join("symlink.png")).unwrap();
    for overwrite in [false, true] {
        opts.overwrite = overwrite;
        for target in [
            source.clone(),
            dir.path().join("sub/../shot.png"),
            dir.path().join("hardlink.png"),
            dir.path().join("symlink.png"),
        ] {
            let err = export_atomic(&edited, &target, &opts, &[&source]).unwrap_err();
            assert!(
                matches!(err, ExportError::SameAsSource { .. }),
                "{target:?}: {err:?}"
            );
            assert!(err.to_string().contains("shot.png"), "{err}");
        }
    }
    assert_eq!(
        fs::read(&source).unwrap(),
        original,
        "the original's bytes changed"
    );
    assert!(temp_leftovers(dir.path()).is_empty());
}

#[test]
fn clashing_names_are_numbered_unless_overwriting() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("look.jpg");
    let opts = options(ExportFormat::Jpeg { quality: 90 });
    let written: Vec<PathBuf> = (0..3u8)
        .map(|i| {
            export_atomic(
                &RgbImage::from_pixel(8, 8, Rgb([i * 100, 0, 0])),
                &dest,
                &opts,
                &[],
            )
            .unwrap()
        })
        .collect();
    let names: Vec<_> = written
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["look.jpg", "look (2).jpg", "look (3).jpg"]);
    assert!(close(
        load(&written[2]).unwrap().rgb.get_pixel(4, 4),
        [200, 0, 0],
        8
    ));
    assert!(
        close(load(&dest).unwrap().rgb.get_pixel(4, 4), [0, 0, 0], 8),
        "first export kept"
    );

    assert_eq!(
        unique_path(&dir.path().join("look (2).jpg")),
        dir.path().join("look (4).jpg")
    );
    assert_eq!(
        unique_path(&dir.path().join("new.jpg")),
        dir.path().join("new.jpg")
    );

    let replace = ExportOptions {
        overwrite: true,
        ..opts
    };
    let again = export_atomic(
        &RgbImage::from_pixel(8, 8, Rgb([0, 250, 0])),
        &dest,
        &replace,
        &[],
    )
    .unwrap();
    assert_eq!(again, dest);
    assert!(close(load(&dest).unwrap().rgb.get_pixel(4, 4), [0, 250, 0], 8));
    assert!(temp_leftovers(dir.path()).is_empty());
}

#[test]
fn failed_exports_explain_and_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let img = pattern(16, 16);
    let opts = options(ExportFormat::Png);

    let err = export_atomic(&img, &dir.path().join("nowhere/out.png"), &opts, &[]).unwrap_err();
    assert!(matches!(err, ExportError::MissingFolder { .. }), "{err:?}");
    assert!(err.to_string().contains("nowhere"), "{err}");

    let blocker = write(dir.path(), "blocker", b"a file, not a folder");
    let err = export_atomic(&img, &blocker.join("out.png"), &opts, &[]).unwrap_err();
    assert!(matches!(err, ExportError::NotAFolder { .. }), "{err:?}");

    fs::create_dir(dir.path().join("taken.png")).unwrap();
    let overwrite = ExportOptions {
        overwrite: true,
        ..opts.clone()
    };
    let err = export_atomic(&img, &dir.path().join("taken.png"), &overwrite, &[]).unwrap_err();
    assert!(matches!(err, ExportError::DestinationIsFolder { .. }), "{err:?}");

    // Fails at the final rename, after the temporary file was written: even root cannot create a
    // name longer than the file system allows.
    let long = dir.path().join(format!("{}.png", "x".repeat(300)));
    for opts in [&opts, &overwrite] {
        let err = export_atomic(&img, &long, opts, &[]).unwrap_err();
        assert!(
            matches!(
                err,
                ExportError::Io {
                    action: "renaming into place",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    let bad_quality = options(ExportFormat::Jpeg { quality: 0 });
    let err = export_atomic(&img, &dir.path().join("q.jpg"), &bad_quality, &[]).unwrap_err();
    assert!(matches!(err, ExportError::InvalidOptions { .. }), "{err:?}");
    let cmyk_profile = ExportOptions {
        icc_profile: Some(icc_profile(b"CMYK")),
        ..opts.clone()
    };
    let err = export_atomic(&img, &dir.path().join("p.png"), &cmyk_profile, &[]).unwrap_err();
    assert!(matches!(err, ExportError::InvalidOptions { .. }), "{err:?}");
    let too_wide = RgbImage::new(70_000, 1);
    let err = export_atomic(
        &too_wide,
        &dir.path().join("wide.jpg"),
        &options(ExportFormat::Jpeg { quality: 80 }),
        &[],
    )
    .unwrap_err();
    assert!(matches!(err, ExportError::Encode { .. }), "{err:?}");

    assert!(
        temp_leftovers(dir.path()).is_empty(),
        "{:?}",
        temp_leftovers(dir.path())
    );
    let mut names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["blocker", "taken.png"],
        "no output appeared for a failed export"
    );
}

#[test]
fn icc_profile_and_text_survive_the_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let img = pattern(40, 30);
    let profile = icc_profile(b"RGB ");
    let text = vec![
        (
            "facecast:recipe".to_string(),
            "{\"swap\":\"model-a\",\"restore\":0.5}".to_string(),
        ),
        ("note".to_string(), "café\nline two".to_string()),
    ];

    let png_opts = ExportOptions {
        format: ExportFormat::Png,
        icc_profile: Some(profile.clone()),
        text: text.clone(),
        overwrite: false,
    };
    let png_path = export_atomic(&img, &dir.path().join("out.png"), &png_opts, &[]).unwrap();
    let photo = load(&png_path).unwrap();
    assert_eq!(photo.rgb, img);
    assert_eq!(photo.icc_profile.as_deref(), Some(profile.as_slice()));

    let reader = png::Decoder::new(std::io::BufReader::new(fs::File::open(&png_path).unwrap()))
        .read_info()
        .unwrap();
    let info = reader.info();
    let latin1: Vec<_> = info
        .uncompressed_latin1_text
        .iter()
        .map(|c| (c.keyword.as_str(), c.text.as_str()))
        .collect();
    assert_eq!(latin1, [("facecast:recipe", text[0].1.as_str())]);
    let utf8: Vec<_> = info
        .utf8_text
        .iter()
        .map(|c| (c.keyword.clone(), c.get_text().unwrap()))
        .collect();
    assert_eq!(utf8, [("note".to_string(), "café\nline two".to_string())]);

    let jpeg_opts = ExportOptions {
        format: ExportFormat::Jpeg { quality: 95 },
        ..png_opts
    };
    let jpeg_path = export_atomic(&img, &dir.path().join("out.jpg"), &jpeg_opts, &[]).unwrap();
    let photo = load(&jpeg_path).unwrap();
    assert!(
        mean_diff(&photo.rgb, &img) < 3.0,
        "{}",
        mean_diff(&photo.rgb, &img)
    );
    assert_eq!(photo.icc_profile.as_deref(), Some(profile.as_slice()));
    let bytes = fs::read(&jpeg_path).unwrap();
    let com = bytes
        .windows(2)
        .position(|w| w == [0xFF, 0xFE])
        .expect("a COM segment");
    let len = usize::from(u16::from_be_bytes([bytes[com + 2], bytes[com + 3]]));
    let comment = std::str::from_utf8(&bytes[com + 4..com + 2 + len]).unwrap();
    assert_eq!(
        comment,
        "facecast:recipe={\"swap\":\"model-a\",\"restore\":0.5}\nnote=café\\nline two\n"
    );
}

#[test]
fn a_non_rgb_profile_is_not_carried_over() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = Vec::new();
    let mut encoder = image::codecs::png::PngEncoder::new(&mut bytes);
    encoder.set_icc_profile(icc_profile(b"GRAY")).unwrap();
    encoder.write_image(&[7; 4], 2, 2, ExtendedColorType::L8).unwrap();
    let photo = load(&write(dir.path(), "grey-profile.png", &bytes)).unwrap();
    assert_eq!(photo.icc_profile, None);
    assert!(
        photo.notes.iter().any(|n| n.contains("GRAY ICC profile")),
        "{:?}",
        photo.notes
    );
}

#[test]
fn stale_temp_files_are_cleaned_and_fresh_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let stale = write(
        dir.path(),
        format!("{TEMP_PREFIX}crashed.part"),
        b"half an export",
    );
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    fs::File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(hour_ago)
        .unwrap();
    let fresh = write(dir.path(), format!("{TEMP_PREFIX}running.part"), b"being written");
    let other = write(dir.path(), "keep.jpg", b"not ours");
    fs::File::options()
        .write(true)
        .open(&other)
        .unwrap()
        .set_modified(hour_ago)
        .unwrap();

    assert_eq!(clean_stale_temp_files(dir.path()).unwrap(), 1);
    assert!(!stale.exists());
    assert!(fresh.exists() && other.exists());
}
