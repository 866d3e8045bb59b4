//! The batch engine and `facecast batch` as a user runs them: a folder mixing good photos with
//! hostile files, cancelling, killing the process mid-run, a full disk and a read-only folder.
//! Every file is generated here; the good photos are the shared MTCNN fixture photos.

mod common;

use common::{data_with_mtcnn, facecast, os, recipe_file};
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use facecast::compute::Compute;
use facecast::io::TEMP_PREFIX;
use facecast::pipeline::batch::{BatchEngine, BatchInput, BatchObserver, FileReport, FileStatus, StopReason};
use facecast::pipeline::recipe::Recipe;
use image::{ExtendedColorType, ImageEncoder, Rgb, RgbImage, Rgba, RgbaImage};
use sha2::{Digest, Sha256};

fn astronaut() -> RgbImage {
    image::open(common::fixture_dir("mtcnn").join("astronaut.png"))
        .expect("astronaut")
        .to_rgb8()
}

fn png_bytes(img: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(img.as_raw(), img.width(), img.height(), ExtendedColorType::Rgb8)
        .expect("png");
    out
}

fn jpeg_bytes(img: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 92)
        .write_image(img.as_raw(), img.width(), img.height(), ExtendedColorType::Rgb8)
        .expect("jpeg");
    out
}

/// A PNG whose header claims 60000×60000 pixels, with a token of data.
fn bomb_png() -> Vec<u8> {
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&60000u32.to_be_bytes());
    ihdr.extend_from_slice(&60000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend(common::png_chunk(b"IHDR", &ihdr));
    bytes.extend(common::png_chunk(b"IDAT", &[0x78, 0x01, 0x01, 0x00, 0x00]));
    bytes.extend(common::png_chunk(b"IEND", &[]));
    bytes
}

/// Inserts an EXIF APP1 segment holding only an orientation tag right after SOI.
fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut tiff = b"MM\x00\x2A\x00\x00\x00\x08".to_vec();
    tiff.extend_from_slice(&1u16.to_be_bytes());
    tiff.extend_from_slice(&0x0112u16.to_be_bytes());
    tiff.extend_from_slice(&3u16.to_be_bytes());
    tiff.extend_from_slice(&1u32.to_be_bytes());
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0]);
    tiff.extend_from_slice(&0u32.to_be_bytes());
    let mut app1 = b"Exif\x00\x00".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// What each file of the hostile folder must end as.
struct Expected {
    status: &'static str,
    /// Part of the reason (or, for done, of the output's name).
    says: &'static str,
}

/// A folder of good and hostile photos, and what the batch must report for each.
fn hostile_folder(dir: &Path) -> BTreeMap<PathBuf, Expected> {
    let fixtures = common::fixture_dir("mtcnn");
    let mut expected = BTreeMap::new();
    let mut put = |name: &OsStr, bytes: &[u8], status: &'static str, says: &'static str| {
        let path = dir.join(name);
        fs::write(&path, bytes).expect("write a test photo");
        expected.insert(path, Expected { status, says });
    };
    for (name, status, says) in [
        ("astronaut.png", "done", "astronaut_vm.png"),
        ("montage.png", "done", "montage_vm.png"),
        ("chelsea.png", "skipped", "no face scoring at least 0.70"),
    ] {
        put(
            os(name),
            &fs::read(fixtures.join(name)).expect("fixture"),
            status,
            says,
        );
    }
    let face = astronaut();
    let jpeg = jpeg_bytes(&face);
    put(
        os("truncated.jpg"),
        &jpeg[..jpeg.len() * 2 / 3],
        "failed",
        "truncated",
    );
    put(os("empty.jpg"), &[], "failed", "empty");
    put(
        os("notes.jpg"),
        b"Spring shoot: see the shared folder.\n",
        "failed",
        "the content is text",
    );
    put(os("bomb.png"), &bomb_png(), "failed", "60000x60000");

    // CMYK: inks that decode back to the astronaut.
    let cmyk: Vec<u8> = face
        .pixels()
        .flat_map(|p| [255 - p[0], 255 - p[1], 255 - p[2], 0])
        .collect();
    let mut bytes = Vec::new();
    jpeg_encoder::Encoder::new(&mut bytes, 95)
        .encode(
            &cmyk,
            face.width() as u16,
            face.height() as u16,
            jpeg_encoder::ColorType::Cmyk,
        )
        .expect("cmyk jpeg");
    put(os("cmyk.jpg"), &bytes, "done", "cmyk_vm.jpg");

    // 16-bit PNG of the same photo.
    let deep: Vec<u8> = face
        .as_raw()
        .iter()
        .flat_map(|&v| (u16::from(v) * 257).to_ne_bytes())
        .collect();
    let mut bytes = Vec::new();
    image::codecs::png::PngEncoder::new(&mut bytes)
        .write_image(&deep, face.width(), face.height(), ExtendedColorType::Rgb16)
        .expect("16-bit png");
    put(os("deep16.png"), &bytes, "done", "deep16_vm.png");

    // An animated GIF: the photo, then a blank frame.
    let mut bytes = Vec::new();
    {
        let mut encoder = image::codecs::gif::GifEncoder::new_with_speed(&mut bytes, 30);
        let first = image::DynamicImage::ImageRgb8(face.clone()).to_rgba8();
        let frames = [
            first,
            RgbaImage::from_pixel(face.width(), face.height(), Rgba([255, 255, 255, 255])),
        ]
        .map(image::Frame::new);
        encoder.encode_frames(frames).expect("gif");
    }
    put(os("animated.gif"), &bytes, "done", "animated_vm.png");

    // Stored turned a quarter left, with EXIF orientation 6 to show it upright; not square, so the
    // output's size shows whether the orientation was applied.
    let tall = image::imageops::crop_imm(&face, 0, 0, 512, 400).to_image();
    let stored = image::imageops::rotate270(&tall);
    put(
        os("rotated.jpg"),
        &with_exif_orientation(&jpeg_bytes(&stored), 6),
        "done",
        "rotated_vm.jpg",
    );

    // Names that are not ASCII, and one that is not even UTF-8; a PNG named .jpg.
    put(
        os("café ünï 写真.png"),
        &png_bytes(&face),
        "done",
        "café ünï 写真_vm.png",
    );
    put(
        OsStr::from_bytes(b"caf\xe9-latin1.png"),
        &png_bytes(&face),
        "done",
        "-latin1_vm.png",
    );
    put(
        os("really-a-png.jpg"),
        &png_bytes(&face),
        "done",
        "really-a-png_vm.png",
    );

    // Not photos of the run, but files of the folder: listed as skipped, with the reason.
    put(os(".hidden.png"), &png_bytes(&face), "skipped", "hidden");
    put(os("readme.txt"), b"not a photo", "skipped", "not a photo");
    expected
}

fn digests(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .map(|p| {
            let bytes = fs::read(&p).expect("read");
            (p, Sha256::digest(&bytes).to_vec())
        })
        .collect()
}

/// Whether a file is the batch's own record of a run (its journal or report), not an export.
fn is_run_record(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("facecast-journal") || n.starts_with("facecast-report"))
}

/// The exports in a folder: everything but the run's journal and report.
fn exports_in(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| !is_run_record(p))
        .collect()
}

fn temp_files(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(TEMP_PREFIX))
        .collect()
}

/// The text metadata of a PNG (tEXt and iTXt chunks).
fn png_text(path: &Path) -> BTreeMap<String, String> {
    let decoder = png::Decoder::new(std::io::BufReader::new(fs::File::open(path).expect("open")));
    let reader = decoder.read_info().expect("png header");
    let info = reader.info();
    let mut out = BTreeMap::new();
    for chunk in &info.uncompressed_latin1_text {
        out.insert(chunk.keyword.clone(), chunk.text.clone());
    }
    for chunk in &info.utf8_text {
        out.insert(chunk.keyword.clone(), chunk.get_text().expect("itxt"));
    }
    out
}

/// The `key=value` lines of a JPEG's comment segments.
fn jpeg_comment(path: &Path) -> BTreeMap<String, String> {
    let bytes = fs::read(path).expect("read");
    let mut at = 2;
    let mut text = String::new();
    while at + 4 <= bytes.len() && bytes[at] == 0xFF {
        let marker = bytes[at + 1];
        let len = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
        if marker == 0xFE {
            text.push_str(&String::from_utf8_lossy(&bytes[at + 4..at + 2 + len]));
        }
        if marker == 0xDA {
            break;
        }
        at += 2 + len;
    }
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn a_hostile_folder_ends_with_a_correct_report_untouched_sources_and_no_temporary_files() {
    let data = data_with_mtcnn();
    let work = tempfile::tempdir().expect("tempdir");
    let photos = work.path().join("photos");
    let out = work.path().join("out");
    fs::create_dir(&photos).expect("mkdir");
    let expected = hostile_folder(&photos);
    let recipe_path = recipe_file(work.path(), |_| {});
    let recipe = Recipe::load(&recipe_path).expect("recipe");
    let before = digests(&photos);

    let run = facecast(
        data.path(),
        &[
            os("batch"),
            os("--recipe"),
            recipe_path.as_os_str(),
            os("--out"),
            out.as_os_str(),
            os("--json"),
            photos.as_os_str(),
        ],
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "some photos are not done: {stderr}");
    let report: serde_json::Value = serde_json::from_slice(&run.stdout)
        .unwrap_or_else(|e| panic!("JSON on stdout ({e}): {}", String::from_utf8_lossy(&run.stdout)));
    let results = report["results"].as_array().expect("results");
    assert_eq!(report["format"], "facecast-batch-report", "{report}");
    assert_eq!(
        report["inputs_total"],
        results.len(),
        "every input is in the report: {report}"
    );
    assert_eq!(
        results.len(),
        expected.len(),
        "one entry per input file: {report}"
    );

    for (result, (path, want)) in results.iter().zip(&expected) {
        let keys: Vec<&String> = result.as_object().expect("object").keys().collect();
        assert_eq!(
            keys,
            [
                "faces", "id", "index", "input", "output", "reason", "resumed", "status"
            ],
            "exactly these fields"
        );
        assert_eq!(result["input"], path.to_string_lossy().as_ref(), "in input order");
        let name = path.file_name().expect("name").to_string_lossy();
        assert_eq!(result["status"], want.status, "{name}: {result}");
        if want.status == "done" {
            assert!(result["reason"].is_null(), "{result}");
            let output = result["output"].as_str().expect("output");
            assert!(output.ends_with(want.says), "{name}: {output}");
        } else {
            assert!(result["output"].is_null(), "{result}");
            let reason = result["reason"].as_str().expect("reason");
            assert!(reason.contains(want.says), "{name}: {reason}");
            assert!(
                reason.contains(name.as_ref()),
                "the reason names the file: {reason}"
            );
        }
    }

    // Sources byte-identical, nothing added beside them, no temporary file anywhere.
    assert_eq!(digests(&photos), before, "the sources are untouched");
    assert!(temp_files(&photos).is_empty() && temp_files(&out).is_empty());
    let done = expected.values().filter(|e| e.status == "done").count();
    assert_eq!(exports_in(&out).len(), done);

    // Outputs: upright, complete, with their metadata.
    let rotated = image::open(out.join("rotated_vm.jpg")).expect("rotated output");
    assert_eq!(
        (rotated.width(), rotated.height()),
        (512, 400),
        "EXIF orientation applied"
    );
    let png = png_text(&out.join("astronaut_vm.png"));
    assert_eq!(png.get("facecast:recipe-sha256"), Some(&recipe.hash()));
    assert!(png["AI-edited"].starts_with("no:"), "no edit step ran: {png:?}");
    assert_eq!(png.get("facecast:networks").map(String::as_str), Some("mtcnn"));
    assert_eq!(png.get("facecast:recipe"), Some(&recipe.canonical_json()));
    let jpeg = jpeg_comment(&out.join("cmyk_vm.jpg"));
    assert_eq!(jpeg.get("facecast:recipe-sha256"), Some(&recipe.hash()));
    let cmyk = image::open(out.join("cmyk_vm.jpg"))
        .expect("cmyk output")
        .to_rgb8();
    let centre = cmyk.get_pixel(256, 256);
    let want = astronaut().get_pixel(256, 256).0;
    assert!(
        centre.0.iter().zip(want).all(|(a, b)| a.abs_diff(b) < 24),
        "CMYK converted to the right colours: {centre:?} vs {want:?}"
    );
    let latin1 = out.join(OsStr::from_bytes(b"caf\xe9-latin1_vm.png"));
    assert!(latin1.exists(), "the raw name is kept");
    assert!(
        stderr.contains("9 exported, 3 skipped, 4 failed"),
        "summary on stderr: {stderr}"
    );

    // The same run again, forced past the journal: names are taken now, so every output gets a
    // number.
    let again = facecast(
        data.path(),
        &[
            os("batch"),
            os("--force"),
            os("--recipe"),
            recipe_path.as_os_str(),
            os("--out"),
            out.as_os_str(),
            os("--json"),
            photos.join("astronaut.png").as_os_str(),
        ],
    );
    assert_eq!(
        again.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&again.stdout).expect("json");
    let output = report["results"][0]["output"].as_str().expect("output");
    assert!(output.ends_with("astronaut_vm (2).png"), "{output}");
    assert_eq!(
        fs::read(out.join("astronaut_vm.png")).expect("first"),
        fs::read(output).expect("second"),
        "the same recipe gives the same bytes"
    );
}

#[test]
fn every_file_of_a_folder_is_in_the_report_a_photo_without_extension_included() {
    let data = data_with_mtcnn();
    let work = tempfile::tempdir().expect("tempdir");
    let photos = work.path().join("photos");
    let out = work.path().join("out");
    fs::create_dir(&photos).expect("mkdir");
    // A JPEG saved without an extension is a photo (found by its content); a .txt is not.
    fs::write(photos.join("shot-without-extension"), jpeg_bytes(&astronaut())).expect("write");
    fs::write(photos.join("notes.txt"), b"Spring shoot, take two.\n").expect("write");
    fs::copy(
        common::fixture_dir("mtcnn").join("astronaut.png"),
        photos.join("astronaut.png"),
    )
    .expect("copy");
    let recipe = recipe_file(work.path(), |_| {});
    let run = facecast(
        data.path(),
        &[
            os("batch"),
            os("--recipe"),
            recipe.as_os_str(),
            os("--out"),
            out.as_os_str(),
            os("--json"),
            photos.as_os_str(),
        ],
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "one file is not done: {stderr}");
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).expect("json report");
    let results = report["results"].as_array().expect("results");
    let listed: Vec<(String, &str)> = results
        .iter()
        .map(|r| {
            let input = Path::new(r["input"].as_str().expect("input"));
            let name = input.file_name().expect("name").to_string_lossy().into_owned();
            (name, r["status"].as_str().expect("status"))
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("astronaut.png".to_string(), "done"),
            ("notes.txt".to_string(), "skipped"),
            ("shot-without-extension".to_string(), "done"),
        ],
        "{report}"
    );
    let reason = results[1]["reason"].as_str().expect("a reason");
    assert!(
        reason.contains("notes.txt") && reason.contains("not a photo"),
        "{reason}"
    );
    // The photo without an extension is exported as the JPEG it is.
    let output = results[2]["output"].as_str().expect("output");
    assert_eq!(
        image::ImageFormat::from_path(output).ok(),
        Some(image::ImageFormat::Jpeg),
        "{output}"
    );
    assert!(image::open(output).is_ok(), "{output}");
}

/// `facecast batch` of the one photo with `recipe` into `out` (`extra` arguments first), which
/// must succeed.
fn batch_photo(data: &Path, extra: &[&OsStr], recipe: &Path, out: &Path, photo: &Path) {
    let mut args = vec![os("batch")];
    args.extend_from_slice(extra);
    args.extend([
        os("--recipe"),
        recipe.as_os_str(),
        os("--out"),
        out.as_os_str(),
        photo.as_os_str(),
    ]);
    let batch = facecast(data, &args);
    assert!(batch.status.success(), "{}", common::text(&batch));
}

/// A one-step command's file and the batch's carry the same metadata: the same keys, and the same
/// AI label, networks and software.
fn assert_same_metadata(single: &BTreeMap<String, String>, batched: &BTreeMap<String, String>) {
    assert_eq!(
        single.keys().collect::<Vec<_>>(),
        batched.keys().collect::<Vec<_>>(),
        "the same metadata schema"
    );
    for key in ["AI-edited", "facecast:networks", "Software"] {
        assert_eq!(single.get(key), batched.get(key), "{key}");
    }
}

#[test]
fn facecast_swap_is_a_one_step_recipe_same_pixels_and_metadata_as_the_batch() {
    let data = data_with_mtcnn();
    let work = tempfile::tempdir().expect("tempdir");
    let fixtures = common::fixture_dir("mtcnn");
    let photo = work.path().join("astronaut.png");
    fs::copy(fixtures.join("astronaut.png"), &photo).expect("copy");
    let face = fixtures.join("camera.png");

    // `facecast swap` with the classic engine, asked for by name.
    let single = work.path().join("single").join("A.png");
    fs::create_dir(single.parent().expect("folder")).expect("mkdir");
    let swap = facecast(
        data.path(),
        &[
            os("swap"),
            os("--engine"),
            os("classic"),
            os("--virtual"),
            face.as_os_str(),
            photo.as_os_str(),
            os("--out"),
            single.as_os_str(),
        ],
    );
    assert!(swap.status.success(), "{}", common::text(&swap));

    // The batch with the same swap settings.
    let recipe = recipe_file(work.path(), |r| {
        r.swap.enabled = true;
        r.swap.settings.engine = facecast::pipeline::swap::SwapEngine::Classic;
        r.swap.settings.fallback_to_classic = false;
        r.export.format = facecast::pipeline::recipe::OutputFormat::Png;
    });
    let out = work.path().join("batch");
    batch_photo(
        data.path(),
        &[os("--virtual"), face.as_os_str()],
        &recipe,
        &out,
        &photo,
    );
    let batched = out.join("astronaut_vm.png");

    let a = image::open(&single).expect("swap output").to_rgb8();
    let b = image::open(&batched).expect("batch output").to_rgb8();
    assert_ne!(a, astronaut(), "the face was swapped");
    assert!(a == b, "the same pixels");
    let (meta_a, meta_b) = (png_text(&single), png_text(&batched));
    assert_same_metadata(&meta_a, &meta_b);
    assert!(meta_a.contains_key("facecast:recipe-sha256"), "{meta_a:?}");
}

#[test]
fn facecast_restore_is_a_one_step_recipe_same_pixels_and_metadata_as_the_batch() {
    let data = data_with_mtcnn();
    import_reduced(
        data.path(),
        "gpen-bfr-512",
        &common::fixture_dir("gpen").join("weights.pth"),
    );
    let work = tempfile::tempdir().expect("tempdir");
    let photo = work.path().join("astronaut.png");
    fs::copy(common::fixture_dir("mtcnn").join("astronaut.png"), &photo).expect("copy");

    // `facecast restore` into a JPEG: the format and its quality come from the command line.
    let single = work.path().join("single").join("R.jpg");
    fs::create_dir(single.parent().expect("folder")).expect("mkdir");
    let restore = facecast(
        data.path(),
        &[
            os("restore"),
            os("--blur"),
            os("3"),
            os("--blend"),
            os("70"),
            os("--quality"),
            os("90"),
            photo.as_os_str(),
            os("--out"),
            single.as_os_str(),
        ],
    );
    assert!(restore.status.success(), "{}", common::text(&restore));
    assert_eq!(
        PathBuf::from(String::from_utf8_lossy(&restore.stdout).trim()),
        single,
        "prints the file written"
    );

    // The batch with the same restore settings.
    let recipe = recipe_file(work.path(), |r| {
        r.restore.enabled = true;
        r.restore.settings = facecast::pipeline::restore::RestoreSettings::gpen(
            Some(3.0),
            70.0,
            facecast::pipeline::restore::GpenModel::Bfr512,
        );
        r.export.format = facecast::pipeline::recipe::OutputFormat::Jpeg;
        r.export.quality = 90;
    });
    let out = work.path().join("batch");
    batch_photo(data.path(), &[], &recipe, &out, &photo);
    let batched = out.join("astronaut_vm.jpg");

    let a = image::open(&single).expect("restore output").to_rgb8();
    let b = image::open(&batched).expect("batch output").to_rgb8();
    let original = astronaut();
    let changed = a.pixels().zip(original.pixels()).filter(|(p, q)| p != q).count();
    assert!(
        changed > 500,
        "only {changed} pixels changed: the face was not restored"
    );
    assert!(a == b, "the same pixels");
    let (meta_a, meta_b) = (jpeg_comment(&single), jpeg_comment(&batched));
    assert_same_metadata(&meta_a, &meta_b);
    assert!(
        meta_a
            .get("facecast:networks")
            .is_some_and(|n| n.contains("gpen-bfr-512")),
        "{meta_a:?}"
    );
    assert_eq!(meta_a.get("facecast:recipe-sha256").map(String::len), Some(64));
}

#[test]
fn facecast_makeup_apply_is_a_one_step_recipe_same_pixels_and_metadata_as_the_batch() {
    let data = data_with_mtcnn();
    import_reduced(
        data.path(),
        "beautygan",
        &common::fixture_dir("beautygan").join("weights.pth"),
    );
    let mtcnn = common::fixture_dir("mtcnn");
    let o = facecast(
        data.path(),
        &[os("makeup"), os("import"), mtcnn.join("camera.png").as_os_str()],
    );
    assert!(o.status.success(), "{}", common::text(&o));
    let reference = String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .expect("the new reference's id")
        .to_string();
    let work = tempfile::tempdir().expect("tempdir");
    let photo = work.path().join("astronaut.png");
    fs::copy(mtcnn.join("astronaut.png"), &photo).expect("copy");

    let single = work.path().join("single");
    let apply = facecast(
        data.path(),
        &[
            os("makeup"),
            os("apply"),
            os("--reference"),
            os(&reference),
            os("--strength"),
            os("0.6"),
            os("--out"),
            single.as_os_str(),
            photo.as_os_str(),
        ],
    );
    assert!(apply.status.success(), "{}", common::text(&apply));
    let single = single.join("astronaut-makeup.png");

    let recipe = recipe_file(work.path(), |r| {
        r.makeup.enabled = true;
        r.makeup.settings.reference = Some(reference.clone());
        r.makeup.settings.strength = 0.6;
    });
    let out = work.path().join("batch");
    batch_photo(data.path(), &[], &recipe, &out, &photo);
    let batched = out.join("astronaut_vm.png");

    let a = image::open(&single).expect("makeup output").to_rgb8();
    let b = image::open(&batched).expect("batch output").to_rgb8();
    assert_ne!(a, astronaut(), "the face was made up");
    assert!(a == b, "the same pixels");
    let (meta_a, meta_b) = (png_text(&single), png_text(&batched));
    assert_same_metadata(&meta_a, &meta_b);
}

#[test]
fn a_detector_imported_again_is_loaded_again_and_an_unchanged_one_is_not() {
    let data = tempfile::tempdir().expect("tempdir");
    let store = facecast::weights::store::WeightsStore::open(Some(data.path().to_path_buf())).expect("store");
    let fixtures = common::fixture_dir("mtcnn");
    store
        .import("mtcnn", std::slice::from_ref(&fixtures))
        .expect("import");
    let device = Compute::cpu().device;
    let mut cache = facecast::pipeline::runtime::NetworkCache::default();
    let first = cache.mtcnn(&store, &device).expect("load MTCNN");
    let again = cache.mtcnn(&store, &device).expect("MTCNN from the cache");
    assert_eq!(cache.loads(), 1, "an unchanged detector is not read again");
    assert_eq!(first.stamp(), again.stamp());
    assert!(cache.get(&first).is_ok());

    // Imported again (new files under the same names): another stamp, read again, the old copy gone.
    std::thread::sleep(Duration::from_millis(20));
    store
        .import("mtcnn", std::slice::from_ref(&fixtures))
        .expect("import again");
    let reloaded = cache.mtcnn(&store, &device).expect("reload MTCNN");
    assert_ne!(first.stamp(), reloaded.stamp(), "the files' stamp changed");
    assert_eq!(cache.loads(), 2, "the re-imported detector was loaded again");
    assert!(cache.get(&reloaded).is_ok());
    assert!(cache.get(&first).is_err(), "the old copy is not handed out");
}

#[test]
fn what_cannot_run_exits_1_and_says_why() {
    let data = data_with_mtcnn();
    let work = tempfile::tempdir().expect("tempdir");
    let photo = common::fixture_dir("mtcnn").join("astronaut.png");
    let out = work.path().join("out");
    let run = |args: &[&OsStr]| {
        let mut all = vec![os("batch")];
        all.extend_from_slice(args);
        facecast(data.path(), &all)
    };
    let stderr = |o: &Output| String::from_utf8_lossy(&o.stderr).into_owned();
    // `batch --recipe RECIPE --out OUT INPUT`.
    let run_recipe = |recipe: &Path, out: &Path, input: &Path| {
        run(&[
            os("--recipe"),
            recipe.as_os_str(),
            os("--out"),
            out.as_os_str(),
            input.as_os_str(),
        ])
    };
    // Exit status 1, with every one of `words` in the message.
    let refused = |o: &Output, words: &[&str]| {
        assert_eq!(o.status.code(), Some(1), "{}", stderr(o));
        assert!(words.iter().all(|w| stderr(o).contains(w)), "{}", stderr(o));
    };

    // A typo in a recipe: the file and the setting are named, nothing runs.
    let bad = work.path().join("typo.json");
    fs::write(&bad, r#"{"facecast_recipe": 1, "export": {"qualty": 80}}"#).expect("write");
    refused(&run_recipe(&bad, &out, &photo), &["typo.json", "export.qualty"]);
    assert!(!out.exists(), "nothing was written");

    // A misspelt step setting would silently run with the default: refused, naming it.
    let step_typo = work.path().join("step-typo.json");
    fs::write(
        &step_typo,
        r#"{"facecast_recipe": 1, "swap": {"enabled": false}, "restore": {"enabled": true, "blnd": 80}}"#,
    )
    .expect("write");
    refused(
        &run_recipe(&step_typo, &out, &photo),
        &["step-typo.json", "restore.blnd"],
    );
    assert!(!out.exists(), "nothing was written");

    // The default recipe swaps faces: a virtual model that is neither in the library nor a photo is
    // named before anything is written.
    let o = run(&[
        os("--virtual"),
        os("Ava"),
        os("--out"),
        out.as_os_str(),
        photo.as_os_str(),
    ]);
    refused(&o, &["\"Ava\""]);
    assert!(!out.exists(), "nothing was written");

    // No photos, no output folder.
    let recipe = recipe_file(work.path(), |_| {});
    let empty = work.path().join("empty");
    fs::create_dir(&empty).expect("mkdir");
    refused(&run_recipe(&recipe, &out, &empty), &["no photos found"]);
    let o = run(&[os("--recipe"), recipe.as_os_str(), photo.as_os_str()]);
    refused(&o, &["--out"]);

    // An output "folder" that is a file.
    let file = work.path().join("a-file");
    fs::write(&file, b"x").expect("write");
    refused(&run_recipe(&recipe, &file, &photo), &["a-file", "not a folder"]);

    // Every photo done: 0. The output next to its source with a name equal to it: refused.
    let o = run_recipe(&recipe, &out, &photo);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let beside = work.path().join("beside");
    fs::create_dir(&beside).expect("mkdir");
    let source = beside.join("shot.png");
    fs::copy(&photo, &source).expect("copy");
    let digest = Sha256::digest(fs::read(&source).expect("read"));
    let same_name = recipe_file(work.path(), |r| r.export.naming = "{stem}.{ext}".into());
    for overwrite in [false, true] {
        let recipe = if overwrite {
            recipe_file(work.path(), |r| {
                r.export.naming = "{stem}.{ext}".into();
                r.export.overwrite = true;
            })
        } else {
            same_name.clone()
        };
        let o = run(&[
            os("--recipe"),
            recipe.as_os_str(),
            os("--out"),
            beside.as_os_str(),
            os("--json"),
            source.as_os_str(),
        ]);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
        let reason = report["results"][0]["reason"].as_str().expect("reason");
        assert!(reason.contains("never overwritten"), "{reason}");
        assert_eq!(Sha256::digest(fs::read(&source).expect("read")), digest);
        assert_eq!(exports_in(&beside).len(), 1, "nothing written beside it");
    }

    // Without MTCNN: the install command is named.
    let bare = tempfile::tempdir().expect("tempdir");
    let o = facecast(
        bare.path(),
        &[
            os("batch"),
            os("--recipe"),
            recipe.as_os_str(),
            os("--out"),
            out.as_os_str(),
            photo.as_os_str(),
        ],
    );
    refused(&o, &["facecast weights install mtcnn"]);
}

#[test]
fn an_output_never_replaces_another_photo_of_the_run() {
    let data = data_with_mtcnn();
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path().join("shots");
    fs::create_dir(&dir).expect("mkdir");
    let face = png_bytes(&astronaut());
    fs::write(dir.join("a.png"), &face).expect("write");
    // b.png's output would be a.png, which is a photo of the run.
    fs::write(dir.join("b.png"), &face).expect("write");
    let recipe = recipe_file(work.path(), |r| {
        r.export.naming = "a.{ext}".into();
        r.export.overwrite = true;
    });
    let before = digests(&dir);
    let o = facecast(
        data.path(),
        &[
            os("batch"),
            os("--recipe"),
            recipe.as_os_str(),
            os("--out"),
            dir.as_os_str(),
            os("--json"),
            dir.as_os_str(),
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let reason = |i: usize| {
        report["results"][i]["reason"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(report["results"][0]["status"], "failed");
    assert!(
        reason(0).contains("never overwritten"),
        "a.png onto itself: {}",
        reason(0)
    );
    assert_eq!(report["results"][1]["status"], "failed");
    assert!(
        reason(1).contains("another photo of this export"),
        "b.png onto a.png: {}",
        reason(1)
    );
    // The folder is also the output folder, so the run's journal and report are now beside them.
    let after: BTreeMap<PathBuf, Vec<u8>> = digests(&dir)
        .into_iter()
        .filter(|(path, _)| !is_run_record(path))
        .collect();
    assert_eq!(after, before);
}

/// Stops the run once `after` photos are finished, or as soon as photo `at_start` begins.
struct CancelAt {
    after: Option<usize>,
    at_start: Option<usize>,
    finished: usize,
    cancelled: std::cell::Cell<bool>,
}

impl BatchObserver for CancelAt {
    fn is_cancelled(&self) -> bool {
        self.cancelled.get()
    }

    fn file_started(&mut self, index: usize, _total: usize, _input: &Path) {
        if self.at_start == Some(index) {
            self.cancelled.set(true);
        }
    }

    fn file_finished(&mut self, _index: usize, _total: usize, _report: &FileReport) {
        self.finished += 1;
        if self.after == Some(self.finished) {
            self.cancelled.set(true);
        }
    }
}

#[test]
fn cancelling_stops_between_photos_and_never_leaves_a_partial_file() {
    let compute = Compute::cpu();
    let nets = facecast::weights::models::load_mtcnn(&common::fixture_dir("mtcnn"), &compute.device)
        .expect("MTCNN from the fixtures");
    let work = tempfile::tempdir().expect("tempdir");
    let photos = work.path().join("photos");
    fs::create_dir(&photos).expect("mkdir");
    let face = png_bytes(&astronaut());
    let inputs: Vec<BatchInput> = (0..5)
        .map(|i| {
            let path = photos.join(format!("shot-{i}.png"));
            fs::write(&path, &face).expect("write");
            BatchInput::new(path)
        })
        .collect();

    for (after, at_start, done) in [(Some(2), None, 2), (None, Some(1), 1)] {
        let out = work.path().join(format!("out-{done}"));
        let mut recipe = Recipe::default();
        recipe.swap.enabled = false;
        recipe.export.folder = Some(out.clone());
        let mut engine = BatchEngine::new(recipe, &nets, &compute.device, Vec::new()).expect("engine");
        let mut observer = CancelAt {
            after,
            at_start,
            finished: 0,
            cancelled: std::cell::Cell::new(false),
        };
        let summary = engine.run(&inputs, &mut observer).expect("run");
        assert_eq!(summary.stopped, Some(StopReason::Cancelled));
        assert_eq!(summary.reports.len(), 5, "every input is reported");
        assert_eq!(summary.count(FileStatus::Done), done);
        for report in &summary.reports[done..] {
            assert_eq!(report.status, FileStatus::Skipped);
            assert!(
                report.reason.as_deref().is_some_and(|r| r.contains("cancelled")),
                "{report:?}"
            );
        }
        let written: Vec<PathBuf> = fs::read_dir(&out)
            .expect("out")
            .map(|e| e.expect("e").path())
            .collect();
        assert_eq!(
            written.len(),
            done,
            "only finished photos were written: {written:?}"
        );
        for path in written {
            image::open(&path).unwrap_or_else(|e| panic!("{} is complete: {e}", path.display()));
        }
        assert!(temp_files(&out).is_empty());
    }
}

/// A tmpfs of `size` mounted in `dir` for the test's lifetime; `None` where mounting is not allowed.
struct SmallDisk {
    dir: PathBuf,
}

impl SmallDisk {
    fn mount(dir: &Path, size: &str) -> Option<SmallDisk> {
        fs::create_dir_all(dir).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| SmallDisk {
            dir: dir.to_path_buf(),
        })
    }

    fn read_only(&self) {
        let status = Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.dir)
            .status()
            .expect("remount");
        assert!(status.success());
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
    }
}

#[test]
fn a_full_disk_or_a_read_only_folder_stops_cleanly_with_a_clear_error() {
    let work = tempfile::tempdir().expect("tempdir");
    let Some(disk) = SmallDisk::mount(&work.path().join("disk"), "160k") else {
        eprintln!("skipping: cannot mount a small tmpfs here (needs mount rights)");
        return;
    };
    let data = data_with_mtcnn();
    let photos = work.path().join("photos");
    fs::create_dir(&photos).expect("mkdir");
    // Noisy pixels compress badly: each PNG output is about 700 kB, more than the disk holds.
    let face = astronaut();
    let noisy = RgbImage::from_fn(512, 512, |x, y| {
        let p = face.get_pixel(x, y);
        let n = ((x * 7919 + y * 104_729) % 23) as u8;
        Rgb([p[0].saturating_add(n), p[1].saturating_add(n / 2), p[2]])
    });
    for i in 0..3 {
        fs::write(photos.join(format!("shot-{i}.png")), png_bytes(&noisy)).expect("write");
    }
    let recipe = recipe_file(work.path(), |_| {});
    let o = facecast(
        data.path(),
        &[
            os("batch"),
            os("--recipe"),
            recipe.as_os_str(),
            os("--out"),
            disk.dir.as_os_str(),
            os("--json"),
            photos.as_os_str(),
        ],
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let results = report["results"].as_array().expect("results");
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["status"], "failed");
    assert!(
        results[0]["reason"]
            .as_str()
            .expect("reason")
            .contains("disk is full"),
        "{report}"
    );
    for later in &results[1..] {
        assert_eq!(later["status"], "skipped", "the run stopped: {report}");
        assert!(
            later["reason"].as_str().expect("reason").contains("disk is full"),
            "{report}"
        );
    }
    assert!(stderr.contains("the export stopped"), "{stderr}");
    assert_eq!(exports_in(&disk.dir).len(), 0, "no partial file, no temp file");

    // Read-only: refused before any photo is worked on.
    disk.read_only();
    let o = facecast(
        data.path(),
        &[
            os("batch"),
            os("--recipe"),
            recipe.as_os_str(),
            os("--out"),
            disk.dir.as_os_str(),
            photos.as_os_str(),
        ],
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot be written") || stderr.contains("Read-only"),
        "{stderr}"
    );
}

#[test]
fn a_killed_run_leaves_no_partial_output_and_the_next_run_cleans_up() {
    let data = data_with_mtcnn();
    let work = tempfile::tempdir().expect("tempdir");
    let photos = work.path().join("photos");
    let out = work.path().join("out");
    fs::create_dir(&photos).expect("mkdir");
    let face = png_bytes(&astronaut());
    for i in 0..40 {
        fs::write(photos.join(format!("shot-{i:02}.png")), &face).expect("write");
    }
    let recipe = recipe_file(work.path(), |_| {});
    let mut child = common::spawn_batch(data.path(), &recipe, &out, &photos);
    let killed_pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(180);
    let outputs = |dir: &Path| -> Vec<PathBuf> {
        fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| {
                        !is_run_record(p)
                            && !p
                                .file_name()
                                .is_some_and(|n| n.to_string_lossy().starts_with(TEMP_PREFIX))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    while outputs(&out).len() < 2 {
        assert!(Instant::now() < deadline, "no output within 180 s");
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the run ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");

    let written = outputs(&out);
    assert!(written.len() < 40, "killed mid-run");
    for path in &written {
        let img = image::open(path).unwrap_or_else(|e| panic!("{} is complete: {e}", path.display()));
        assert_eq!((img.width(), img.height()), (512, 512));
    }
    // Whatever the killed process had in flight is only a temporary file. Leave one for certain, as
    // a process killed while writing would: named with its (now dead) process id, and fresh.
    let leftover = out.join(format!("{TEMP_PREFIX}{killed_pid}-Xk3s.part"));
    fs::write(&leftover, &face[..1000]).expect("write");
    let second = photos.join("shot-00.png");
    let o = facecast(
        data.path(),
        &[
            os("batch"),
            os("--recipe"),
            recipe.as_os_str(),
            os("--out"),
            out.as_os_str(),
            second.as_os_str(),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("left by an interrupted export"));
    assert!(temp_files(&out).is_empty(), "cleaned: {:?}", temp_files(&out));
}

/// `facecast weights import --reduced ID FILE`, as a user installs test weights.
fn import_reduced(data: &Path, id: &str, file: &Path) {
    let out = facecast(
        data,
        &[
            os("weights"),
            os("import"),
            os("--reduced"),
            os(id),
            file.as_os_str(),
        ],
    );
    assert!(
        out.status.success(),
        "importing {id}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_recipe_with_swap_restore_and_makeup_runs_every_step_on_every_face() {
    let data = data_with_mtcnn();
    for (id, fixture) in [
        ("arcface-ir-se50", "arcface_ir_se50"),
        ("faceshifter-aei", "faceshifter_aei"),
        ("gpen-bfr-512", "gpen"),
        ("beautygan", "beautygan"),
    ] {
        import_reduced(data.path(), id, &common::fixture_dir(fixture).join("weights.pth"));
    }
    let mtcnn = common::fixture_dir("mtcnn");
    // The makeup reference is the astronaut's face; the virtual model is the cameraman's.
    let o = facecast(
        data.path(),
        &[
            os("makeup"),
            os("import"),
            mtcnn.join("astronaut.png").as_os_str(),
            os("--name"),
            os("Astronaut"),
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let reference = String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .expect("the new reference's id")
        .to_string();

    let work = tempfile::tempdir().expect("tempdir");
    let recipe = recipe_file(work.path(), |r| {
        r.swap.enabled = true;
        r.restore.enabled = true;
        r.makeup.enabled = true;
        r.makeup.settings.reference = Some(reference.clone());
        r.makeup.settings.strength = 0.5;
        r.restore.settings.blend = 80.0;
    });
    let photos = work.path().join("photos");
    fs::create_dir(&photos).expect("mkdir");
    let source = photos.join("astronaut.png");
    fs::copy(mtcnn.join("astronaut.png"), &source).expect("copy");
    let before = fs::read(&source).expect("read");
    let out = work.path().join("out");
    let camera = mtcnn.join("camera.png");
    let o = facecast(
        data.path(),
        &[
            os("batch"),
            os("--virtual"),
            camera.as_os_str(),
            os("--recipe"),
            recipe.as_os_str(),
            os("--out"),
            out.as_os_str(),
            os("--json"),
            photos.as_os_str(),
        ],
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(report["results"][0]["status"], "done", "{report}");
    let output = PathBuf::from(report["results"][0]["output"].as_str().expect("output"));
    assert_eq!(
        fs::read(&source).expect("read"),
        before,
        "the source is untouched"
    );

    let text = png_text(&output);
    let networks = &text["facecast:networks"];
    for net in [
        "mtcnn",
        "arcface-ir-se50",
        "faceshifter-aei",
        "gpen-bfr-512",
        "beautygan",
    ] {
        assert!(networks.contains(net), "{net} missing from {networks}");
    }
    let note = &text["AI-edited"];
    assert!(
        note.starts_with("yes:")
            && note.contains("camera.png")
            && note.contains("restored")
            && note.contains("Astronaut"),
        "{note}"
    );
    assert_eq!(text["facecast:recipe-sha256"].len(), 64);

    // The face changed; the corners of the photo, far from it, did not.
    let original = astronaut();
    let edited = image::open(&output).expect("the export").to_rgb8();
    assert_eq!(edited.dimensions(), original.dimensions());
    let (w, h) = original.dimensions();
    let changed = original
        .pixels()
        .zip(edited.pixels())
        .filter(|(a, b)| a != b)
        .count();
    assert!(changed > (w * h / 50) as usize, "only {changed} pixels changed");
    for (x, y) in [(0, 0), (w - 1, 0), (0, h - 1), (w - 1, h - 1)] {
        assert_eq!(
            original.get_pixel(x, y),
            edited.get_pixel(x, y),
            "corner ({x}, {y})"
        );
    }
}
