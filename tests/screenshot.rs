//! The README's screenshots, rendered from the real window and checked so they cannot go stale.
//!
//! Each state is reached as a user reaches it: photos go through the worker and the installed
//! MTCNN (the shared fixture's real weights), a virtual model is imported from a face photo through
//! the import window, the swap is the classic engine run by the Swap section's button. Only the
//! export in progress is set through the app's public state, at a fixed clock: a real export moves
//! on while it is drawn. Each state is rendered with egui_kittest's wgpu renderer (Mesa's software
//! Vulkan without a GPU) at a fixed size, one pixel per point, the dark theme, no pointer, and only
//! once the window has stopped changing (no spinner, no toast, no animation), then compared with
//! `screenshots/<name>.png` (see `common/screens.rs` for the tolerance). A difference fails with
//! the file, how much differs and where the new render is; `UPDATE_SCREENSHOTS=1` rewrites the
//! committed files instead.

mod common;
#[path = "common/screens.rs"]
mod screens;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use facecast::app::{DISPLAY_OWN_DEVICE_CPU, FacecastApp, StartOptions};
use facecast::compute::Compute;
use facecast::weights::store::WeightsStore;
use image::RgbaImage;

const SIZE: [f32; 2] = [1280.0, 800.0];

/// The home folder every test of this file sees: a temporary one, so the Weights window shows its
/// folder as `~/.local/share/facecast/weights` on every machine. It is set once, before any test
/// of this binary starts a window or a thread that could read the environment.
fn fake_home() -> &'static Path {
    static HOME: OnceLock<PathBuf> = OnceLock::new();
    HOME.get_or_init(|| {
        let home = tempfile::tempdir().expect("tempdir").keep();
        // SAFETY: every test of this binary calls this first, and `get_or_init` makes the others
        // wait, so no thread of ours reads the environment while it is written.
        unsafe { std::env::set_var("HOME", &home) };
        home
    })
}

/// A data folder with MTCNN installed from the shared fixture.
fn data_with_mtcnn(dir: &Path) {
    WeightsStore::open(Some(dir.to_path_buf()))
        .expect("open the store")
        .import("mtcnn", &[common::fixture_dir("mtcnn")])
        .expect("import MTCNN from the fixtures");
}

fn window(data: &Path, open: Vec<PathBuf>) -> Harness<'static, FacecastApp> {
    let start = StartOptions {
        open,
        display: DISPLAY_OWN_DEVICE_CPU.into(),
        data_dir: Some(data.to_path_buf()),
        ..Default::default()
    };
    Harness::builder()
        .with_size(SIZE)
        .with_pixels_per_point(1.0)
        .with_theme(egui::Theme::Dark)
        .with_render_cursor(false)
        .wgpu()
        .build_eframe(move |cc| FacecastApp::new(&cc.egui_ctx, Compute::cpu(), start))
}

/// A stand-in product shot without a face: a backdrop, a figure with a plain head, a garment.
fn product_photo(path: &Path, garment: [u8; 3]) {
    let (w, h) = (600u32, 800u32);
    let image = image::RgbImage::from_fn(w, h, |x, y| {
        let (fx, fy) = (x as f32, y as f32);
        let backdrop = 235.0 - 40.0 * fy / h as f32;
        let head = ((fx - 300.0).powi(2) + (fy - 210.0).powi(2)).sqrt() < 80.0;
        let neck = (fx - 300.0).abs() < 30.0 && (250.0..330.0).contains(&fy);
        let half_width = 120.0 + (fy - 330.0) * 0.25;
        let body = fy >= 330.0 && (fx - 300.0).abs() < half_width;
        if head || neck {
            image::Rgb([224, 180, 150])
        } else if body {
            image::Rgb(garment)
        } else {
            image::Rgb([backdrop as u8, backdrop as u8, (backdrop + 8.0).min(255.0) as u8])
        }
    });
    image
        .save(path)
        .unwrap_or_else(|err| panic!("writing {}: {err}", path.display()));
}

/// A folder of photos: the fixture's real ones (faces, a group, a cat) and two without a face.
fn shoot(dir: &Path) -> PathBuf {
    let photos = dir.join("shoot");
    std::fs::create_dir_all(&photos).expect("mkdir");
    for name in ["astronaut.png", "camera.png", "chelsea.png", "montage.png"] {
        std::fs::copy(common::fixture_dir("mtcnn").join(name), photos.join(name)).expect("copy");
    }
    product_photo(&photos.join("navy-shirt.png"), [40, 90, 160]);
    product_photo(&photos.join("red-dress.png"), [170, 40, 60]);
    photos
}

/// Steps until `done` holds and the window has stopped changing: nothing loading or running, no
/// toast, nothing being checked, and two renders three frames apart identical (a spinner or an
/// animation would differ). Returns that render.
fn settle(
    harness: &mut Harness<'_, FacecastApp>,
    what: &str,
    done: impl Fn(&FacecastApp) -> bool,
) -> RgbaImage {
    harness.remove_cursor();
    let quiet = |app: &FacecastApp| {
        let state = app.state();
        done(app)
            && app.worker().is_idle()
            && state.preview_job.is_none()
            && state.toasts.items().is_empty()
            && (state.library.is_empty() || app.detector_ready())
            && state.cast.listed
    };
    common::step_until(harness, what, quiet);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = harness.render().expect("render the window with wgpu");
    loop {
        harness.run_steps(3);
        let checking = harness.query_by_label_contains("hecking").is_some();
        let next = harness.render().expect("render the window with wgpu");
        if next == last && !checking && quiet(harness.state()) {
            return next;
        }
        last = next;
        assert!(
            Instant::now() < deadline,
            "{what}: the window did not stop changing within 60 s; toasts: {:?}",
            harness.state().state().toasts.items()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn id_of(app: &FacecastApp, name: &str) -> facecast::jobs::PhotoId {
    app.state()
        .library
        .entries()
        .iter()
        .find(|e| e.name == name)
        .map(|e| e.id)
        .unwrap_or_else(|| panic!("{name} is in the library"))
}

/// Checks every render, then fails once naming each stale screenshot.
fn check_all(renders: &[(&str, RgbaImage)]) {
    let failures: Vec<String> = renders
        .iter()
        .filter_map(|(name, image)| {
            screens::check_in(
                &screens::committed_dir(),
                &screens::render_dir(),
                name,
                image,
                screens::updating(),
            )
            .err()
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn library_screenshot() {
    fake_home();
    let work = tempfile::tempdir().expect("tempdir");
    let data = work.path().join("data");
    data_with_mtcnn(&data);
    let mut harness = window(&data, vec![shoot(work.path())]);
    common::step_until(&mut harness, "screening the photos", |app| {
        common::all_screened(app, 6)
    });

    // The group photo on the canvas, every face above the screening score chosen as a target.
    let montage = id_of(harness.state(), "montage.png");
    harness.state_mut().select_photo(montage);
    if let Some(entry) = harness.state_mut().state_mut().library.get_mut(montage) {
        entry.select_faces_from(0.70);
    }
    let image = settle(&mut harness, "showing the group photo", |app| {
        app.state().preview.as_ref().is_some_and(|p| p.photo == montage)
    });
    let state = harness.state().state();
    let faces = state
        .selected_entry()
        .and_then(|e| e.faces())
        .map_or(0, |f| f.faces.len());
    assert!(faces >= 4, "the group photo shows its faces: {faces}");
    assert!(!state.selected_entry().expect("selected").targets.is_empty());
    check_all(&[("library.png", image)]);
}

#[test]
fn weights_screenshot() {
    let data = fake_home().join(".local/share/facecast");
    data_with_mtcnn(&data);
    let mut harness = window(&data, Vec::new());
    harness.step();
    harness.get_by_label("File").click();
    harness.run_steps(3);
    harness.get_by_label("Weights…").click();
    let image = settle(&mut harness, "opening the Weights window", |_| true);
    assert!(harness.query_by_label_contains("Detect — 1 of 1 ready").is_some());
    assert!(
        harness
            .query_by_label("Folder: ~/.local/share/facecast/weights")
            .is_some()
    );
    check_all(&[("weights.png", image)]);
}

/// A stand-in window: a panel, a label and a button, drawn into `image` at `button` (x, y).
fn fake_window(button: (u32, u32)) -> RgbaImage {
    let mut image = RgbaImage::from_pixel(320, 200, image::Rgba([27, 27, 27, 255]));
    for y in 0..200 {
        for x in 0..80 {
            image.put_pixel(x, y, image::Rgba([40, 40, 40, 255]));
        }
    }
    let (bx, by) = button;
    for y in by..by + 24 {
        for x in bx..bx + 90 {
            let edge = y == by || y == by + 23 || x == bx || x == bx + 89;
            // A few strokes of "text" inside the button.
            let text = (y - by) % 6 < 2 && (x - bx) % 7 < 4 && (8..16).contains(&(y - by));
            let colour = if edge || text {
                [210, 210, 210]
            } else {
                [60, 60, 60]
            };
            image.put_pixel(x, y, image::Rgba([colour[0], colour[1], colour[2], 255]));
        }
    }
    image
}

#[test]
fn the_comparison_passes_noise_and_fails_a_moved_widget() {
    fake_home();
    let base = fake_window((120, 80));
    assert!(screens::compare(&base, &base).matches(), "identical");
    assert_eq!(screens::compare(&base, &base).changed, 0);

    // One level up or down on every channel of every pixel: a driver's rounding, not a change.
    let mut noisy = base.clone();
    for (i, p) in noisy.pixels_mut().enumerate() {
        for c in p.0.iter_mut().take(3) {
            *c = if i % 2 == 0 {
                c.saturating_add(1)
            } else {
                c.saturating_sub(1)
            };
        }
    }
    let diff = screens::compare(&base, &noisy);
    assert!(diff.matches(), "{}", diff.describe());
    assert_eq!(diff.max_level, 1);

    // The button moved 6 points right: stale.
    let moved = fake_window((126, 80));
    let diff = screens::compare(&base, &moved);
    assert!(!diff.matches(), "a moved button must fail: {}", diff.describe());
    let [l, t, r, b] = diff.bounds.expect("changed pixels");
    assert!(
        l >= 120 && r <= 126 + 89 && t >= 80 && b < 104,
        "{:?}",
        diff.bounds
    );

    // Another size is always stale.
    let bigger = RgbaImage::from_pixel(321, 200, image::Rgba([27, 27, 27, 255]));
    assert!(!screens::compare(&base, &bigger).matches());
}

#[test]
fn a_stale_or_missing_committed_screenshot_fails_with_the_file_and_the_hint() {
    fake_home();
    let dir = tempfile::tempdir().expect("tempdir");
    let (committed, renders) = (dir.path().join("committed"), dir.path().join("renders"));
    let render = fake_window((120, 80));

    let missing = screens::check_in(&committed, &renders, "state.png", &render, false)
        .expect_err("a missing screenshot fails");
    assert!(
        missing.contains("state.png") && missing.contains("UPDATE_SCREENSHOTS=1"),
        "{missing}"
    );
    assert!(
        renders.join("state.png").is_file(),
        "the render is left to look at"
    );

    assert_eq!(
        screens::check_in(&committed, &renders, "state.png", &render, true),
        Ok(screens::Checked::Updated)
    );
    assert!(matches!(
        screens::check_in(&committed, &renders, "state.png", &render, false),
        Ok(screens::Checked::Matches(_))
    ));

    // The UI changed (the button moved) but the committed file did not: red, naming the file.
    let changed = fake_window((126, 80));
    let stale = screens::check_in(&committed, &renders, "state.png", &changed, false)
        .expect_err("a stale screenshot fails");
    assert!(
        stale.contains(&committed.join("state.png").display().to_string()) && stale.contains("%"),
        "{stale}"
    );
    assert!(renders.join("state-diff.png").is_file(), "the changes are marked");
}

/// The committed screenshots themselves: each is there, is a full window, and a widget moved in
/// one of them is caught (the check is not vacuous at the real size).
#[test]
fn every_committed_screenshot_is_a_window_and_a_moved_widget_in_it_is_caught() {
    fake_home();
    for name in ["library.png", "weights.png"] {
        let path = screens::committed_dir().join(name);
        let image = image::open(&path)
            .unwrap_or_else(|e| {
                panic!(
                    "{}: {e}; run the screenshot tests with UPDATE_SCREENSHOTS=1",
                    path.display()
                )
            })
            .to_rgba8();
        assert_eq!(image.dimensions(), (SIZE[0] as u32, SIZE[1] as u32), "{name}");
        // Move the export bar's right half (buttons and labels) 4 pixels down.
        let mut moved = image.clone();
        let (w, h) = image.dimensions();
        for y in (h - 70..h - 4).rev() {
            for x in w / 2..w {
                moved.put_pixel(x, y + 4, *image.get_pixel(x, y));
            }
        }
        let diff = screens::compare(&image, &moved);
        assert!(!diff.matches(), "{name}: {}", diff.describe());
    }
}
