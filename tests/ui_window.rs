//! The real window in egui_kittest: its panels are found by label, and photos dropped on it go through
//! the background worker into the library.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use facecast::app::canvas::NO_PHOTO_TEXT;
use facecast::app::dropzone::DROP_HINT;
use facecast::app::library::EMPTY_TEXT;
use facecast::app::{FacecastApp, PhotoStatus, StartOptions};
use facecast::compute::Compute;

use common::DroppedPath;

fn harness(start: StartOptions) -> Harness<'static, FacecastApp> {
    Harness::builder()
        .with_size([1280.0, 800.0])
        .build_eframe(move |cc| FacecastApp::new(&cc.egui_ctx, Compute::cpu(), start))
}

/// Steps the UI until the worker has nothing left and every photo has left "loading" (bounded).
fn settle(harness: &mut Harness<'_, FacecastApp>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        harness.step();
        let app = harness.state();
        let loading = app.state().library.count(|s| matches!(s, PhotoStatus::Loading));
        if app.worker().is_idle() && loading == 0 && app.state().preview_job.is_none() {
            // One more frame so the UI shows the last events.
            harness.step();
            return;
        }
        assert!(Instant::now() < deadline, "the worker did not finish within 30 s");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn drop_paths(harness: &mut Harness<'_, FacecastApp>, paths: &[PathBuf]) {
    for path in paths {
        harness
            .input_mut()
            .dropped_files
            .push(std::sync::Arc::new(DroppedPath(path.clone())));
    }
}

fn write_png(path: &Path, width: u32, height: u32) {
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x * 255 / width) as u8, (y * 255 / height) as u8, 128])
    });
    image
        .save(path)
        .unwrap_or_else(|err| panic!("writing {}: {err}", path.display()));
}

#[test]
fn panels_and_backend_are_found_by_label() {
    let harness = harness(StartOptions {
        display: "test renderer".into(),
        ..Default::default()
    });
    for label in [
        "Library",
        "Virtual model",
        "Pipeline",
        "Export",
        EMPTY_TEXT,
        NO_PHOTO_TEXT,
        "CPU (flex)",
    ] {
        harness.get_by_label(label);
    }
    // The virtual model panel says what it really has, and the status bar names the display path.
    harness.get_by_label("No virtual model yet");
    harness.get_by_label("test renderer");
    assert!(
        harness.query_by_label(DROP_HINT).is_none(),
        "the drop overlay shows only while hovering"
    );
}

#[test]
fn hovering_files_shows_the_drop_overlay() {
    let mut harness = harness(StartOptions::default());
    harness.input_mut().hovered_files.push(egui::HoveredFile {
        path: Some("photo.jpg".into()),
        mime: String::new(),
    });
    // An area is laid out invisibly on its first frame, then shown.
    harness.run_steps(2);
    harness.get_by_label(DROP_HINT);
    harness.input_mut().hovered_files.clear();
    harness.step();
    assert!(harness.query_by_label(DROP_HINT).is_none());
}

#[test]
fn dropped_files_and_folders_become_library_entries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let single = dir.path().join("single.png");
    write_png(&single, 320, 200);
    let folder = dir.path().join("shoot");
    std::fs::create_dir_all(folder.join("day2")).expect("mkdir");
    write_png(&folder.join("a.png"), 64, 96);
    write_png(&folder.join("day2").join("b.png"), 50, 40);
    std::fs::write(folder.join("broken.jpg"), b"this is not a jpeg").expect("write");
    std::fs::write(
        folder.join("notes.txt"),
        b"not an image, skipped by the folder scan",
    )
    .expect("write");

    let mut harness = harness(StartOptions::default());
    harness.get_by_label(EMPTY_TEXT);
    drop_paths(&mut harness, &[single.clone(), folder.clone()]);
    settle(&mut harness);

    let state = harness.state().state();
    let names: Vec<&str> = state.library.entries().iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["single.png", "a.png", "broken.jpg", "b.png"]);
    let status = |name: &str| {
        state
            .library
            .entries()
            .iter()
            .find(|e| e.name == name)
            .map(|e| e.status.clone())
            .expect(name)
    };
    assert_eq!(
        status("single.png"),
        PhotoStatus::Loaded {
            width: 320,
            height: 200
        }
    );
    assert_eq!(
        status("b.png"),
        PhotoStatus::Loaded {
            width: 50,
            height: 40
        }
    );
    match status("broken.jpg") {
        PhotoStatus::Failed(reason) => {
            assert!(reason.contains("broken.jpg"), "reason names the file: {reason}")
        }
        other => panic!("broken.jpg should be unreadable, got {other:?}"),
    }
    let thumb = state.library.entries()[0]
        .thumbnail
        .as_ref()
        .expect("single.png has a thumbnail");
    assert_eq!((thumb.width(), thumb.height()), (256, 160));

    // The first photo went onto the canvas at its real size.
    let preview = state.preview.as_ref().expect("the first photo is previewed");
    assert_eq!((preview.width, preview.height), (320, 200));
    assert!(harness.query_by_label(EMPTY_TEXT).is_none());
    harness.get_by_role_and_label(egui::Role::Image, "single.png");

    // Dropping the same file again adds nothing.
    drop_paths(&mut harness, &[single]);
    settle(&mut harness);
    assert_eq!(harness.state().state().library.len(), 4);

    // Clicking an entry selects it and loads its preview.
    harness
        .get_by_role_and_label(egui::Role::ListItem, "b.png")
        .click();
    settle(&mut harness);
    let state = harness.state().state();
    assert_eq!(state.selected_entry().map(|e| e.name.as_str()), Some("b.png"));
    assert_eq!(
        state.preview.as_ref().map(|p| (p.width, p.height)),
        Some((50, 40))
    );

    // Keyboard: up moves to the previous photo, Delete removes the selected one.
    harness.key_press(egui::Key::ArrowUp);
    settle(&mut harness);
    assert_eq!(
        harness.state().state().selected_entry().map(|e| e.name.as_str()),
        Some("broken.jpg")
    );
    harness.key_press(egui::Key::Delete);
    settle(&mut harness);
    let names: Vec<String> = harness
        .state()
        .state()
        .library
        .entries()
        .iter()
        .map(|e| e.name.clone())
        .collect();
    assert_eq!(names, ["single.png", "a.png", "b.png"]);
}

#[test]
fn a_missing_path_is_reported_as_a_toast_not_an_entry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("gone.png");
    let mut harness = harness(StartOptions {
        open: vec![missing],
        ..Default::default()
    });
    settle(&mut harness);
    assert!(harness.state().state().library.is_empty());
    let toasts = harness.state().state().toasts.items();
    assert_eq!(toasts.len(), 1, "{toasts:?}");
    assert!(toasts[0].text.contains("gone.png"), "{}", toasts[0].text);
    harness.get_by_label_contains("gone.png");
}

#[test]
fn cancelled_loading_leaves_no_photo_loading_and_adding_again_retries() {
    let dir = tempfile::tempdir().expect("tempdir");
    for i in 0..150 {
        write_png(&dir.path().join(format!("shot-{i:03}.png")), 400, 300);
    }
    let mut harness = harness(StartOptions::default());
    drop_paths(&mut harness, &[dir.path().to_path_buf()]);
    // Step until the scan has listed the photos; the thumbnail job is queued in that same frame.
    let deadline = Instant::now() + Duration::from_secs(30);
    while harness.state().state().library.len() < 150 {
        harness.step();
        assert!(Instant::now() < deadline, "the scan did not finish");
        std::thread::sleep(Duration::from_millis(1));
    }
    harness.state().worker().cancel_all();
    settle(&mut harness);

    let library = &harness.state().state().library;
    let cancelled = library.count(|s| *s == PhotoStatus::Cancelled);
    let loaded = library.count(|s| matches!(s, PhotoStatus::Loaded { .. }));
    assert_eq!(
        cancelled + loaded,
        150,
        "every photo is either loaded or marked not loaded"
    );
    assert!(
        cancelled > 0,
        "cancelling right after the scan stops most thumbnails"
    );

    drop_paths(&mut harness, &[dir.path().to_path_buf()]);
    settle(&mut harness);
    let library = &harness.state().state().library;
    assert_eq!(library.len(), 150);
    assert_eq!(library.count(|s| matches!(s, PhotoStatus::Loaded { .. })), 150);
}
