//! Face restoration with GPEN: the step's alignment against the official matrices, a restore with
//! the fixture's reduced weights that must leave every pixel outside the masks alone, the
//! `facecast restore` command, and the Restore section of the window.

mod common;

use common::facecast;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use burn::tensor::Device;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use facecast::app::{Detection, FacecastApp, PhotoStatus};
use facecast::face::align::Point;
use facecast::face::mask::Plane;
use facecast::face::warp::crop_aligned;
use facecast::jobs::PhotoId;
use facecast::pipeline::detect::Face;
use facecast::pipeline::detect::photo::{DetectSettings, detect_photo};
use facecast::pipeline::paste::mask_in_photo;
use facecast::pipeline::recipe::Recipe;
use facecast::pipeline::restore::{
    GpenModel, RestoreMode, RestoreSettings, align_face, gpen_mask, restore_faces,
};
use facecast::weights::models::{load_gpen, load_mtcnn};
use facecast::weights::store::{Import, WeightsStore};
use image::{Rgb, RgbImage};

fn fixture_tensor(map: &facecast::weights::TensorMap, key: &str) -> Vec<f32> {
    map.get(key)
        .unwrap_or_else(|| panic!("gpen fixture lacks {key}"))
        .to_f32()
}

/// A data folder holding MTCNN's real weights and the GPEN fixture's reduced weights as GPEN-512,
/// installed as a user would.
fn store_with_weights() -> (tempfile::TempDir, WeightsStore) {
    let data = tempfile::tempdir().expect("tempdir");
    let store = common::store_with_mtcnn(data.path());
    store
        .import_with(
            "gpen-bfr-512",
            &[common::fixture_dir("gpen").join("weights.pth")],
            Import::Reduced,
        )
        .expect("import the reduced GPEN weights");
    (data, store)
}

fn photo(name: &str) -> RgbImage {
    let path = common::fixture_dir("mtcnn").join(name);
    image::open(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into_rgb8()
}

/// The largest mask weight each photo pixel gets from any face.
fn reached(faces: &[facecast::pipeline::restore::RestoredFace], mask: &Plane, w: u32, h: u32) -> Vec<f32> {
    let mut most = vec![0.0f32; (w * h) as usize];
    for face in faces {
        let m = mask_in_photo(mask, &face.photo_to_crop, w, h);
        for (a, v) in most.iter_mut().zip(&m.data) {
            *a = a.max(*v);
        }
    }
    most
}

/// Asserts that `after` equals `before` wherever the masks are too weak to move a value by half a
/// grey level (less than 1/512; exactly 0 outside every crop), and returns how many pixels changed.
fn changed_inside(before: &RgbImage, after: &RgbImage, weights: &[f32]) -> usize {
    assert_eq!(before.dimensions(), after.dimensions());
    let mut changed = 0;
    for (i, ((x, y, a), b)) in before.enumerate_pixels().zip(after.pixels()).enumerate() {
        if weights[i] < 1.0 / 512.0 {
            assert_eq!(
                a, b,
                "pixel ({x}, {y}) outside the masks (weight {}) changed",
                weights[i]
            );
        } else {
            changed += usize::from(a != b);
        }
    }
    changed
}

#[test]
fn the_restore_alignment_reproduces_the_official_matrices_and_crops_with_them() {
    let dir = common::fixture_dir("gpen");
    let map = facecast::weights::read_checkpoint(&dir.join("io.safetensors"))
        .expect("io.safetensors")
        .flatten_tensors();
    let src = fixture_tensor(&map, "pipeline.align.src_5pts");
    let tfm = fixture_tensor(&map, "pipeline.align.tfm_512");
    let tfm_inv = fixture_tensor(&map, "pipeline.align.tfm_inv_512");
    let faces = src.len() / 10;
    assert!(faces >= 1);
    // A linear ramp, on which bilinear sampling is exact up to the pixels' own rounding.
    let (w, h) = (640u32, 480u32);
    let ramp = |x: f64, y: f64| [x * 255.0 / (w - 1) as f64, y * 255.0 / (h - 1) as f64];
    let image = RgbImage::from_fn(w, h, |x, y| {
        let [r, g] = ramp(x as f64, y as f64);
        Rgb([r.round() as u8, g.round() as u8, 90])
    });
    for f in 0..faces {
        let pts: [Point; 5] = std::array::from_fn(|i| [src[f * 10 + 2 * i], src[f * 10 + 2 * i + 1]]);
        let m = |v: &[f32], r: usize, c: usize| v[f * 6 + r * 3 + c] as f64;
        for (size, k) in [(512u32, 1.0f64), (256, 0.5)] {
            let s = align_face(&pts, size).expect("alignable");
            // The 256 template is the 512 one halved, so its transform is the 512 one scaled by ½ and
            // its inverse takes crop coordinates doubled.
            let got = s.to_matrix_f64();
            let inv = s.inverse().to_matrix_f64();
            for r in 0..2 {
                for c in 0..3 {
                    let want = k * m(&tfm, r, c);
                    assert!(
                        (got[r][c] - want).abs() < 1e-3,
                        "face {f} size {size} tfm[{r}][{c}]: {} vs {want}",
                        got[r][c]
                    );
                    let want = if c < 2 {
                        m(&tfm_inv, r, c) / k
                    } else {
                        m(&tfm_inv, r, c)
                    };
                    assert!(
                        (inv[r][c] - want).abs() < 2e-3,
                        "face {f} size {size} tfm_inv[{r}][{c}]: {} vs {want}",
                        inv[r][c]
                    );
                }
            }
            // Each crop pixel shows the photo where the official inverse matrix puts it.
            let crop = crop_aligned(&image, &s, size);
            let mut checked = 0;
            for (cx, cy, px) in crop.enumerate_pixels() {
                let (cx, cy) = (cx as f64 * k.recip(), cy as f64 * k.recip());
                let x = m(&tfm_inv, 0, 0) * cx + m(&tfm_inv, 0, 1) * cy + m(&tfm_inv, 0, 2);
                let y = m(&tfm_inv, 1, 0) * cx + m(&tfm_inv, 1, 1) * cy + m(&tfm_inv, 1, 2);
                if x < 1.0 || y < 1.0 || x > (w - 2) as f64 || y > (h - 2) as f64 {
                    continue;
                }
                let [r, g] = ramp(x, y);
                assert!(
                    (px[0] as f64 - r).abs() <= 1.01 && (px[1] as f64 - g).abs() <= 1.01,
                    "face {f} size {size}: crop pixel {px:?} vs photo ({x:.2}, {y:.2}) = ({r:.1}, {g:.1})"
                );
                checked += 1;
            }
            assert!(
                checked > 1000,
                "face {f} size {size}: only {checked} crop pixels inside the photo"
            );
        }
    }
}

#[test]
fn a_reduced_weights_restore_changes_only_the_masked_pixels() {
    let (_data, store) = store_with_weights();
    let device = Device::flex();
    let mtcnn = load_mtcnn(&store.model_dir("mtcnn"), &device).expect("MTCNN loads");
    let file = store.require("gpen-bfr-512").expect("GPEN installed")[0].clone();
    let net = load_gpen(&file, &device).expect("GPEN loads from its own shapes");
    let size = net.size() as u32;
    assert_eq!(
        size, 64,
        "the crop size is the network's (the fixture's reduced one)"
    );
    let mask = gpen_mask(size);

    for name in ["astronaut.png", "montage.png"] {
        let before = photo(name);
        let (w, h) = before.dimensions();
        let found = detect_photo(&mtcnn, &before, &DetectSettings::default(), &device).expect("detect");
        let faces: Vec<Face> = found.faces.into_iter().filter(|f| f.score >= 0.70).collect();
        assert!(!faces.is_empty(), "{name} has faces");

        let gpen = RestoreSettings::gpen(None, 100.0, GpenModel::Bfr512);
        let mut calls = Vec::new();
        let out = restore_faces(&net, &device, &before, &faces, &gpen, |done, total| {
            calls.push((done, total));
            true
        })
        .expect("restore");
        assert_eq!(out.faces.len(), faces.len());
        assert_eq!(out.crop_size, size);
        assert_eq!(calls.last(), Some(&(faces.len(), faces.len())));
        let reach = reached(&out.faces, &mask, w, h);
        let changed = changed_inside(&before, &out.image, &reach);
        assert!(changed > 500, "{name}: only {changed} pixels changed");
        assert!(out.timings.network > Duration::ZERO && out.timings.total() >= out.timings.network);

        // Blurring first and blending at 50% changes the result, still only inside the masks.
        let blurred = RestoreSettings::gpen(Some(4.0), 50.0, GpenModel::Bfr512);
        let out2 = restore_faces(&net, &device, &before, &faces, &blurred, |_, _| true).expect("restore");
        changed_inside(&before, &out2.image, &reach);
        assert_ne!(out2.image, out.image, "{name}: blur and blend made no difference");
        // At 50% the pasted face lies half way between the crop and GPEN's output.
        let face = &out2.faces[0];
        let pure = restore_faces(
            &net,
            &device,
            &before,
            &faces[..1],
            &RestoreSettings {
                blend: 100.0,
                ..blurred.clone()
            },
            |_, _| true,
        )
        .expect("restore");
        for ((a, b), c) in face
            .restored
            .pixels()
            .zip(face.crop.pixels())
            .zip(pure.faces[0].restored.pixels())
        {
            for ch in 0..3 {
                let mid = (b[ch] as f32 + c[ch] as f32) / 2.0;
                assert!(
                    (a[ch] as f32 - mid).abs() <= 0.51,
                    "blend: {a:?} from {b:?} and {c:?}"
                );
            }
        }
    }

    // None leaves the image as it is; a stop request is honoured before the next face.
    let before = photo("astronaut.png");
    let face = Face {
        bbox: [180.0, 60.0, 300.0, 220.0],
        score: 0.99,
        landmarks: [
            [210.0, 120.0],
            [265.0, 118.0],
            [238.0, 150.0],
            [215.0, 180.0],
            [262.0, 178.0],
        ],
    };
    let none = RestoreSettings {
        mode: RestoreMode::None,
        ..RestoreSettings::default()
    };
    assert_eq!(
        restore_faces(&net, &device, &before, &[face], &none, |_, _| true)
            .expect("none")
            .image,
        before
    );
    let gpen = RestoreSettings::gpen(None, 100.0, GpenModel::Bfr512);
    let stopped = restore_faces(&net, &device, &before, &[face, face], &gpen, |done, _| done < 1);
    assert!(matches!(
        stopped,
        Err(facecast::pipeline::restore::RestoreError::Cancelled)
    ));
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "facecast failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_restore_command_writes_a_new_file_and_never_the_photo() {
    let data = tempfile::tempdir().expect("tempdir");
    let mtcnn = common::fixture_dir("mtcnn");
    let gpen = common::fixture_dir("gpen").join("weights.pth");
    ok(&facecast(
        data.path(),
        &["weights", "import", "mtcnn", mtcnn.to_str().expect("utf-8")],
    ));
    ok(&facecast(
        data.path(),
        &[
            "weights",
            "import",
            "gpen-bfr-512",
            gpen.to_str().expect("utf-8"),
            "--reduced",
        ],
    ));

    let work = tempfile::tempdir().expect("tempdir");
    let source = work.path().join("shot.png");
    std::fs::copy(mtcnn.join("astronaut.png"), &source).expect("copy");
    let original = std::fs::read(&source).expect("read");
    let out = work.path().join("restored.png");
    let args = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = ["restore", "--blur", "2", "--blend", "80"]
            .map(String::from)
            .to_vec();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let run = |extra: &[&str]| {
        let a = args(extra);
        facecast(data.path(), &a.iter().map(String::as_str).collect::<Vec<_>>())
    };

    let printed = ok(&run(&[
        source.to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
    ]));
    assert_eq!(PathBuf::from(printed.trim()), out, "prints the file written");
    let before = image::open(&source).expect("source").into_rgb8();
    let after = image::open(&out).expect("result decodes").into_rgb8();
    assert_eq!(after.dimensions(), before.dimensions());
    let differing = before
        .pixels()
        .zip(after.pixels())
        .filter(|(a, b)| a != b)
        .count();
    assert!(differing > 500, "only {differing} pixels changed");
    assert!(
        differing < (before.width() * before.height() / 2) as usize,
        "{differing} pixels changed: more than the face"
    );
    // The settings travel in the file's metadata: the one-step recipe it ran, as every export has.
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&out).expect("open")));
    let reader = decoder.read_info().expect("png");
    let info = reader.info();
    let text: Vec<(String, String)> = info
        .uncompressed_latin1_text
        .iter()
        .map(|t| (t.keyword.clone(), t.text.clone()))
        .chain(
            info.utf8_text
                .iter()
                .map(|t| (t.keyword.clone(), t.get_text().expect("iTXt"))),
        )
        .collect();
    let recipe = text
        .iter()
        .find(|(k, _)| k == "facecast:recipe")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("no facecast:recipe text in {text:?}"));
    let recipe = Recipe::parse(&recipe, "the embedded recipe").expect("the recipe reads back");
    assert!(recipe.restore.enabled && !recipe.swap.enabled && !recipe.makeup.enabled);
    assert_eq!(
        recipe.restore_settings(),
        RestoreSettings::gpen(Some(2.0), 80.0, GpenModel::Bfr512)
    );
    assert!(
        text.iter()
            .any(|(k, v)| k == "facecast:networks" && v.contains("gpen-bfr-512")),
        "{text:?}"
    );
    assert_eq!(
        std::fs::read(&source).expect("read"),
        original,
        "the photo was modified"
    );

    // The photo itself as the output is refused, before any work, and nothing changes.
    let refused = run(&[
        source.to_str().expect("utf-8"),
        "--out",
        source.to_str().expect("utf-8"),
    ]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("refusing") && err.contains("shot.png"), "{err}");
    assert_eq!(std::fs::read(&source).expect("read"), original);

    // The 256 model is not installed: the message names it and how to get it.
    let missing = run(&[
        "--model",
        "256",
        source.to_str().expect("utf-8"),
        "--out",
        work.path().join("small.png").to_str().expect("utf-8"),
    ]);
    assert!(!missing.status.success());
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(
        err.contains("gpen-bfr-256") && err.contains("weights install"),
        "{err}"
    );
    assert!(!work.path().join("small.png").exists());

    // A photo without a face writes nothing.
    let cat = work.path().join("cat.png");
    std::fs::copy(mtcnn.join("chelsea.png"), &cat).expect("copy");
    let none = run(&[
        cat.to_str().expect("utf-8"),
        "--out",
        work.path().join("cat-out.png").to_str().expect("utf-8"),
    ]);
    assert!(!none.status.success());
    assert!(String::from_utf8_lossy(&none.stderr).contains("no face"));
    assert!(!work.path().join("cat-out.png").exists());
}

fn window(data: &Path, open: Vec<PathBuf>) -> Harness<'static, FacecastApp> {
    // Tall enough that the Restore section, below Swap, is on screen without scrolling.
    common::window(data, open, [1280.0, 1800.0])
}

/// The Restore section set to Blur then GPEN, once it has found the installed GPEN-512.
fn blur_then_gpen(harness: &mut Harness<'_, FacecastApp>) {
    harness.get_by_label("Blur then GPEN").click();
    harness.run_steps(2);
    common::step_until(harness, "the GPEN check", |app| {
        app.state().restore.weights(GpenModel::Bfr512).is_some()
    });
}

/// Chooses the photo's faces scoring at least the screening threshold, as clicking them would.
fn choose_faces(harness: &mut Harness<'_, FacecastApp>, photo: PhotoId) {
    harness
        .state_mut()
        .state_mut()
        .library
        .get_mut(photo)
        .expect("entry")
        .select_faces_from(0.70);
    harness.run_steps(2);
}

/// Clicks Restore and waits for the photo's new edit.
fn restore_and_wait(harness: &mut Harness<'_, FacecastApp>, photo: PhotoId) {
    harness.get_by_label("Restore 1 face").click();
    common::step_until(harness, "the restore", |app| {
        app.state().restore.job.is_none()
            && app.state().current_edit(photo).is_some()
            && app.worker().is_idle()
    });
}

#[test]
fn the_restore_section_offers_the_missing_weights_then_restores_the_chosen_face() {
    // Without GPEN: the section says so and offers Install and Locate file….
    let empty = tempfile::tempdir().expect("tempdir");
    let mut harness = window(empty.path(), Vec::new());
    // A click lands where the label was drawn: let the start-up checks (each section's weights,
    // the Weights window's statuses) arrive and the panel take its final layout first, or the
    // click can hit whatever moved under the pointer.
    let ids: Vec<String> = WeightsStore::open(Some(empty.path().to_path_buf()))
        .expect("store")
        .manifest()
        .models
        .iter()
        .map(|m| m.id.clone())
        .collect();
    common::step_until(&mut harness, "the start-up checks", |app| {
        app.state().restore.weights(GpenModel::Bfr512).is_some()
            && app
                .weights_window()
                .is_some_and(|w| ids.iter().all(|id| w.status(id).is_some()))
    });
    harness.run_steps(2);
    harness.get_by_label("Restore");
    harness.get_by_label("Faces are not restored.");
    harness.get_by_label("GPEN").click();
    harness.run_steps(2);
    assert_eq!(harness.state().state().restore.settings.mode, RestoreMode::Gpen);
    // The section's mode is the export recipe's Restore step.
    harness.get_by_label("Recipe: swap → restore");
    harness.get_by_label("GPEN-512 is not installed.");
    harness.get_by_label("Install GPEN-512");
    harness.get_by_label("Locate GPEN-512 file…");
    harness.get_by_label("GPEN-256").click();
    harness.run_steps(2);
    harness.get_by_label("GPEN-256 is not installed.");
    drop(harness);

    // With MTCNN and the reduced GPEN installed: choose the face, restore it, get a new edit.
    let (data, store) = store_with_weights();
    let photos = tempfile::tempdir().expect("tempdir");
    let path = photos.path().join("astronaut.png");
    std::fs::copy(common::fixture_dir("mtcnn").join("astronaut.png"), &path).expect("copy");
    let mut harness = window(data.path(), vec![path.clone()]);
    common::step_until(&mut harness, "detection", |app| {
        let state = app.state();
        state.library.len() == 1
            && state.library.entries().iter().all(|e| {
                matches!(e.detection, Detection::Done(_)) && matches!(e.status, PhotoStatus::Loaded { .. })
            })
            && state.selected.is_some()
    });
    blur_then_gpen(&mut harness);
    // Nothing is chosen yet: the button is there but cannot be used.
    harness.get_by_label("No face chosen: click faces on the canvas");
    let photo = harness.state().state().selected.expect("selected");
    choose_faces(&mut harness, photo);
    harness.get_by_label("Works on the original photo");
    harness.get_by_label_contains("reduced-width test weights");
    restore_and_wait(&mut harness, photo);
    let state = harness.state().state();
    let edit = state.current_edit(photo).expect("a new edit");
    assert!(
        edit.label.starts_with("Restore (blur σ 2 then GPEN-512)") && edit.label.ends_with("1 face"),
        "{}",
        edit.label
    );
    assert!(
        edit.notes.iter().any(|n| n.contains("reduced-width")),
        "{:?}",
        edit.notes
    );
    let before = image::open(&path).expect("photo").into_rgb8();
    let after = edit.image.as_ref().clone();
    let differing = before
        .pixels()
        .zip(after.pixels())
        .filter(|(a, b)| a != b)
        .count();
    assert!(differing > 500, "only {differing} pixels changed");
    harness.get_by_label_contains("Works on the current edit: Restore");

    // Restoring again works on that edit: the job's result is the plain step run on it.
    let first = Arc::clone(&edit.image);
    let entry = state.library.get(photo).expect("entry");
    let faces: Vec<Face> = entry
        .targets
        .iter()
        .map(|&i| entry.faces().expect("faces").faces[i])
        .collect();
    let settings = state.restore.settings.clone();
    harness.get_by_label("Restore 1 face").click();
    common::step_until(&mut harness, "the second restore", |app| {
        app.state().restore.job.is_none()
            && app
                .state()
                .edits
                .get(&photo)
                .is_some_and(|h| h.versions().0.len() == 2)
            && app.worker().is_idle()
    });
    let second = Arc::clone(&harness.state().state().current_edit(photo).expect("edit").image);
    let device = Device::flex();
    let file = store.require("gpen-bfr-512").expect("installed")[0].clone();
    let net = load_gpen(&file, &device).expect("GPEN");
    let want = restore_faces(&net, &device, &first, &faces, &settings, |_, _| true).expect("restore");
    assert!(
        want.image == *second,
        "the second restore did not start from the first one's result"
    );
    assert!(*second != *first);
}

#[test]
fn the_window_restore_and_its_export_with_the_same_settings_are_the_same_pixels() {
    let (data, _store) = store_with_weights();
    let photos = tempfile::tempdir().expect("tempdir");
    let path = photos.path().join("astronaut.png");
    std::fs::copy(common::fixture_dir("mtcnn").join("astronaut.png"), &path).expect("copy");
    let mut harness = window(data.path(), vec![path.clone()]);
    common::step_until(&mut harness, "screening", |app| common::all_screened(app, 1));
    assert!(
        harness.state().state().selected.is_some(),
        "the photo is selected"
    );

    // The Restore section on the photo: Blur then GPEN on the faces chosen at the screening score.
    blur_then_gpen(&mut harness);
    let photo = harness.state().state().selected.expect("selected");
    choose_faces(&mut harness, photo);
    restore_and_wait(&mut harness, photo);
    let interactive = Arc::clone(
        &harness
            .state()
            .state()
            .current_edit(photo)
            .expect("an edit")
            .image,
    );
    let original = image::open(&path).expect("photo").into_rgb8();
    assert!(*interactive != original, "the section restored nothing");

    // The export of the same photo with the same settings: the section's Restore step, no swap.
    common::assert_export_is(
        &mut harness,
        &photos.path().join("out"),
        |recipe| recipe.swap.enabled = false,
        "Recipe: restore",
        &interactive,
        "the window's result",
    );
}
