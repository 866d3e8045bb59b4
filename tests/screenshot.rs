//! The README's screenshots, rendered from the real window and checked so they cannot go stale.
//!
//! Each state is reached as a user reaches it: photos go through the worker and the installed
//! MTCNN (the shared fixture's real weights), a virtual model is imported from a face photo through
//! the import window, the swap is the classic engine run by the Swap section's button, the export
//! is started with *Export all with faces* and really runs. A running export moves on while it is
//! drawn, so the test takes the job's real events off the worker itself and folds them into the
//! window up to the second photo, with the first photo finished 9 s after the start (the time left
//! is the pace at the last finished photo, so the text is the same on every run). Each state is
//! rendered with egui_kittest's wgpu renderer (Mesa's software
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
use facecast::app::cast_panel::IMPORT_WINDOW;
use facecast::app::export_bar::{EXPORT_ALL, photos_with_faces};
use facecast::app::swap_panel::SWAP_ALL;
use facecast::app::{DISPLAY_OWN_DEVICE_CPU, FacecastApp, StartOptions};
use facecast::compute::Compute;
use facecast::jobs::export::ExportEvent;
use facecast::jobs::{JobEvent, JobEventKind, JobOutput};
use facecast::pipeline::batch::FileStatus;
use facecast::pipeline::swap::SwapEngine;
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

/// Steps the window until `done` holds; fails after `WAIT` naming what was awaited and what the
/// window was doing (its jobs and toasts), so a state that never comes is a failure, not a hang.
fn wait_for(harness: &mut Harness<'_, FacecastApp>, what: &str, done: impl Fn(&FacecastApp) -> bool) {
    let deadline = Instant::now() + WAIT;
    loop {
        harness.step();
        if done(harness.state()) {
            harness.run_steps(2);
            return;
        }
        if Instant::now() >= deadline {
            let state = harness.state().state();
            let jobs: Vec<&str> = state.activities.iter().map(|a| a.label.as_str()).collect();
            panic!(
                "{what} did not happen within {WAIT:?}; jobs: {jobs:?}; toasts: {:?}",
                state.toasts.items()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The longest any one state may take to come (a swap of one face, a three-photo export, the
/// screening of six photos take seconds on the CI machine).
const WAIT: Duration = Duration::from_secs(120);

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
    wait_for(harness, what, quiet);
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
    common::store_with_mtcnn(&data);
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
    common::store_with_mtcnn(&data);
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

/// Imports a virtual model from `photo` through the import window, as a user does.
fn import_model(harness: &mut Harness<'_, FacecastApp>, photo: &Path, name: &str) {
    harness.state_mut().find_import_faces(vec![photo.to_path_buf()]);
    wait_for(harness, "finding the face to import", |app| {
        app.state().cast.import.is_some() && app.state().cast.import_job.is_none()
    });
    let window = harness.get_by_role_and_label(egui::accesskit::Role::Window, IMPORT_WINDOW);
    window.get_by_role(egui::accesskit::Role::TextInput).focus();
    harness.run_steps(2);
    harness
        .get_by_role_and_label(egui::accesskit::Role::Window, IMPORT_WINDOW)
        .get_by_role(egui::accesskit::Role::TextInput)
        .type_text(name);
    harness.run_steps(2);
    let typed = harness
        .get_by_role_and_label(egui::accesskit::Role::Window, IMPORT_WINDOW)
        .get_by_role(egui::accesskit::Role::TextInput)
        .value();
    // A name left over from the last import would be saved under another name and never listed.
    assert_eq!(typed.as_deref(), Some(name), "the import window's name field");
    harness.get_by_label("Save to library").click();
    wait_for(harness, "saving the virtual model", |app| {
        let cast = &app.state().cast;
        cast.import.is_none() && cast.library.iter().any(|i| i.model.name == name)
    });
}

/// The worker's events until the job `job` has finished, taken before the window sees them.
fn take_events_until_finished(
    harness: &Harness<'_, FacecastApp>,
    job: facecast::jobs::JobId,
) -> Vec<JobEvent> {
    let deadline = Instant::now() + WAIT;
    let mut events = Vec::new();
    loop {
        events.extend(harness.state().worker().drain());
        let finished = events
            .iter()
            .any(|e| e.job == job && matches!(e.kind, JobEventKind::Finished(_)));
        if finished {
            return events;
        }
        assert!(
            Instant::now() < deadline,
            "the export did not finish within {WAIT:?}; its events so far: {events:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn cast_swap_and_export_screenshots() {
    let home = fake_home();
    let work = tempfile::tempdir().expect("tempdir");
    let data = work.path().join("data");
    common::store_with_mtcnn(&data);
    let photos = shoot(work.path());
    let mut harness = window(&data, vec![photos]);
    wait_for(&mut harness, "screening the photos", |app| {
        common::all_screened(app, 6)
    });

    // Cast: two virtual models imported from face photos; the first saved is the one swaps use.
    let faces = common::fixture_dir("mtcnn");
    import_model(&mut harness, &faces.join("camera.png"), "Ravi");
    import_model(&mut harness, &faces.join("astronaut.png"), "Eileen");
    let astronaut = id_of(harness.state(), "astronaut.png");
    harness.state_mut().select_photo(astronaut);
    let cast = settle(&mut harness, "listing the virtual models", |app| {
        app.state().cast.library.len() == 2
            && app.state().preview.as_ref().is_some_and(|p| p.photo == astronaut)
    });
    let current = harness
        .state()
        .state()
        .cast
        .current_model()
        .map(|m| m.name.clone());
    assert_eq!(current.as_deref(), Some("Ravi"));
    assert!(harness.query_by_label("Saved virtual models (2)").is_some());

    // Swap: Ravi's face on the astronaut with the classic engine (no large weights), clicked in
    // the Swap section; the canvas shows before and after.
    harness.get_by_label("Classic (fallback)").click();
    harness.run_steps(2);
    assert_eq!(harness.state().state().swap.settings.engine, SwapEngine::Classic);
    harness.get_by_label(SWAP_ALL).click();
    wait_for(&mut harness, "the swap", |app| {
        app.state().swap.job.is_none() && app.state().current_edit(astronaut).is_some()
    });
    let label = harness
        .state()
        .state()
        .current_edit(astronaut)
        .map(|v| v.label.clone());
    assert!(
        label.as_deref().is_some_and(|l| l.starts_with("Swap")),
        "{label:?}"
    );
    // The divider dragged by its knob to the middle of the face: half of it before, half after.
    let view = *harness.state().canvas_view().expect("the photo is drawn");
    let face = harness
        .state()
        .state()
        .selected_entry()
        .and_then(|e| e.faces())
        .map(|f| f.faces[0]);
    let [x1, y1, x2, y2] = face.expect("the astronaut's face").bbox;
    let middle = view.to_screen(egui::pos2((x1 + x2) / 2.0, (y1 + y2) / 2.0));
    let split = harness.state().compare_view().split;
    let knob = egui::pos2(view.rect.left() + view.rect.width() * split, view.rect.center().y);
    common::drag(&mut harness, knob, egui::pos2(middle.x, knob.y));
    let swap = settle(&mut harness, "the swap's before and after", |_| true);
    let split = harness.state().compare_view().split;
    let at = view.rect.left() + view.rect.width() * split;
    assert!(
        (at - middle.x).abs() < 2.0,
        "the divider is at x {at}, the face's middle at {}",
        middle.x
    );

    // Export: every photo with a face into ~/Exports/spring-lookbook, started by the button.
    let out = home.join("Exports/spring-lookbook");
    std::fs::create_dir_all(&out).expect("mkdir");
    let with_faces = photos_with_faces(harness.state().state()).len();
    assert!(with_faces >= 2, "photos with faces: {with_faces}");
    {
        let state = harness.state_mut().state_mut();
        state.recipe.swap.enabled = true;
        state.recipe.export.folder = Some(out.clone());
    }
    harness.run_steps(2);
    harness
        .get_by_label(&format!("{EXPORT_ALL} ({with_faces})"))
        .click();
    harness.step();
    let job = harness.state().state().export.job.expect("the export started");
    let started = harness.state().state().export.started_at().expect("started");
    // The job runs to its end on the worker; the window gets its events up to the second photo.
    let mut events = take_events_until_finished(&harness, job).into_iter();
    let state = harness.state_mut().state_mut();
    for event in events.by_ref() {
        let second = matches!(
            &event.kind,
            JobEventKind::Output(JobOutput::Export(ExportEvent::Working { index: 1, .. }))
        );
        match event.kind {
            JobEventKind::Output(JobOutput::Export(file @ ExportEvent::File { .. })) => {
                state.export.apply_at(file, started + Duration::from_secs(9));
            }
            kind => {
                state.apply(JobEvent { job: event.job, kind });
            }
        }
        if second {
            break;
        }
    }
    let export = settle(&mut harness, "drawing the export", |app| {
        app.state().export.is_running() && app.state().export.finished == 1
    });
    let progress = format!("1 of {with_faces}, about {}s left", 9 * (with_faces - 1));
    assert!(
        harness.query_by_label_contains(&progress).is_some(),
        "the export bar shows {progress}"
    );
    assert!(harness.query_by_label("~/Exports/spring-lookbook").is_some());

    // The rest of the real export: every photo with a face was written.
    let state = harness.state_mut().state_mut();
    for event in events {
        state.apply(event);
    }
    let export_state = &harness.state().state().export;
    assert!(!export_state.is_running());
    assert_eq!(
        export_state.count(FileStatus::Done),
        with_faces,
        "{:?}",
        export_state.reports
    );
    for report in &export_state.reports {
        let written = report.output.as_ref().expect("an output file");
        assert!(written.starts_with(&out) && written.is_file(), "{written:?}");
    }

    check_all(&[("cast.png", cast), ("swap.png", swap), ("export.png", export)]);
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
    for name in ["library.png", "weights.png", "cast.png", "swap.png", "export.png"] {
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
