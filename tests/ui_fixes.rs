//! The real window in egui_kittest, for the fixes of a new user's first hour: toasts expire (errors
//! stay until clicked) and never cover a window; the before/after divider drags from its knob while
//! the rest of the canvas pans; without a native file dialog a typed path takes its place.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use facecast::app::dialogs::TYPED_OK;
use facecast::app::history::Version;
use facecast::app::{FacecastApp, PhotoStatus, StartOptions};
use facecast::compute::Compute;

fn harness(start: StartOptions, size: [f32; 2]) -> Harness<'static, FacecastApp> {
    Harness::builder()
        .with_size(size)
        .build_eframe(move |cc| FacecastApp::new(&cc.egui_ctx, Compute::cpu(), start))
}

fn start(data: &Path) -> StartOptions {
    StartOptions {
        display: "test renderer".into(),
        data_dir: Some(data.to_path_buf()),
        ..Default::default()
    }
}

/// The centre of the widget labelled `label`.
fn centre(harness: &Harness<'_, FacecastApp>, label: &str) -> egui::Pos2 {
    harness.get_by_label(label).rect().center()
}

#[test]
fn warnings_expire_and_errors_stay_until_clicked() {
    let data = tempfile::tempdir().expect("tempdir");
    let mut start = start(data.path());
    start.warnings = vec!["A minor thing happened".into()];
    let mut harness = harness(start, [1280.0, 800.0]);
    harness.step();
    assert!(harness.query_by_label("A minor thing happened").is_some());
    harness.state_mut().state_mut().toasts.error("Something broke");
    // The harness advances its clock by a quarter second a step: 60 steps are 15 seconds.
    harness.run_steps(60);
    assert!(
        harness.query_by_label("A minor thing happened").is_none(),
        "a warning is gone after a few seconds"
    );
    assert!(
        harness.query_by_label("Something broke").is_some(),
        "an error stays until it is dismissed"
    );
    harness.get_by_label("Something broke").click();
    harness.run_steps(2);
    assert!(
        harness.query_by_label("Something broke").is_none(),
        "clicking dismisses it"
    );
}

#[test]
fn a_message_that_keeps_coming_back_does_not_restart_its_toast() {
    let data = tempfile::tempdir().expect("tempdir");
    let mut harness = harness(start(data.path()), [1280.0, 800.0]);
    harness
        .state_mut()
        .state_mut()
        .toasts
        .warning("Cannot read x.png");
    harness.step();
    let first = harness.state().state().toasts.items()[0].id;
    // Repeated every frame for 7.5 s: the first toast still goes after its 6 s.
    for _ in 0..30 {
        harness
            .state_mut()
            .state_mut()
            .toasts
            .warning("Cannot read x.png");
        harness.step();
    }
    let ids: Vec<u64> = harness
        .state()
        .state()
        .toasts
        .items()
        .iter()
        .map(|t| t.id)
        .collect();
    assert!(
        !ids.contains(&first),
        "the repeats kept the first toast up: {ids:?}"
    );
}

#[test]
fn toasts_are_drawn_under_the_weights_window() {
    let data = tempfile::tempdir().expect("tempdir");
    // A small window, so the Weights window covers the corner the toasts sit in.
    let mut harness = harness(start(data.path()), [820.0, 620.0]);
    harness.step();
    harness.get_by_label("File").click();
    harness.run_steps(3);
    harness.get_by_label("Weights…").click();
    harness.run_steps(3);
    assert!(
        harness
            .query_all_by_label("Install all for this feature")
            .next()
            .is_some()
    );
    harness
        .state_mut()
        .state_mut()
        .toasts
        .error("An error behind the window");
    harness.run_steps(3);
    let at = centre(&harness, "An error behind the window");
    let top = harness.ctx.layer_id_at(at).expect("something is drawn there");
    assert_eq!(
        top.order,
        egui::Order::Middle,
        "the Weights window, not the toast, is on top at {at:?}"
    );
}

/// A photo on the canvas with an edit, so the before/after divider shows.
fn edited_photo(harness: &mut Harness<'_, FacecastApp>, dir: &Path) {
    let path = dir.join("photo.png");
    let image = image::RgbImage::from_fn(400, 300, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    });
    image.save(&path).expect("write photo");
    harness.state_mut().open_paths(vec![path]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        harness.step();
        let app = harness.state();
        let loaded = app
            .state()
            .selected_entry()
            .is_some_and(|e| matches!(e.status, PhotoStatus::Loaded { .. }));
        if loaded && app.canvas_view().is_some() && app.worker().is_idle() {
            break;
        }
        assert!(Instant::now() < deadline, "the photo did not load within 60 s");
        std::thread::sleep(Duration::from_millis(5));
    }
    let id = harness.state().state().selected.expect("selected");
    let after = image::RgbImage::from_pixel(400, 300, image::Rgb([200, 40, 40]));
    harness
        .state_mut()
        .state_mut()
        .edits
        .entry(id)
        .or_default()
        .push(Version {
            label: "Test edit".into(),
            image: Arc::new(after),
            notes: Vec::new(),
        });
    harness.run_steps(3);
}

#[test]
fn the_divider_drags_from_its_knob_and_the_rest_of_the_canvas_pans() {
    let data = tempfile::tempdir().expect("tempdir");
    let mut harness = harness(start(data.path()), [1280.0, 800.0]);
    edited_photo(&mut harness, data.path());
    let view = *harness.state().canvas_view().expect("drawn");
    let split = harness.state().compare_view().split;
    let x = view.rect.left() + view.rect.width() * split;
    // The knob's edge, 9 points right of the line: a hand grabs the knob, not the hairline.
    let knob = egui::pos2(x + 9.0, view.rect.center().y);
    common::drag(&mut harness, knob, knob + egui::vec2(80.0, 0.0));
    let moved = harness.state().compare_view();
    assert!(
        moved.split > split + 0.05,
        "the divider moved: {split} → {}",
        moved.split
    );
    assert!(!moved.dragging);
    assert_eq!(
        harness.state().canvas_nav(),
        facecast::app::canvas::CanvasNav::fit(),
        "dragging the divider must not pan the photo"
    );

    // Well away from the divider, a drag pans and leaves the divider where it is.
    let view = *harness.state().canvas_view().expect("drawn");
    let from = egui::pos2(view.rect.left() + 30.0, view.rect.center().y);
    common::drag(&mut harness, from, from + egui::vec2(0.0, 60.0));
    assert_eq!(harness.state().compare_view().split, moved.split);
    let nav = harness.state().canvas_nav();
    assert!(nav.offset.y > 30.0, "the photo panned: {nav:?}");
}

fn write_png(path: &Path) -> PathBuf {
    image::RgbImage::from_pixel(32, 24, image::Rgb([10, 200, 30]))
        .save(path)
        .expect("write png");
    path.to_path_buf()
}

#[test]
fn without_a_native_dialog_a_typed_path_takes_its_place() {
    let data = tempfile::tempdir().expect("tempdir");
    let photo = write_png(&data.path().join("typed.png"));
    let mut harness = harness(start(data.path()), [1280.0, 800.0]);
    harness.step();
    let ctx = harness.ctx.clone();
    harness
        .state_mut()
        .use_typed_paths(&ctx, "no desktop portal and no zenity (test)");
    harness.get_by_label("Open files…").click();
    // A new window is laid out invisibly on its first frame.
    harness.run_steps(4);
    assert!(
        harness.query_by_label(TYPED_OK).is_some(),
        "a visible window, not nothing"
    );
    assert!(
        harness
            .query_by_label_contains("no desktop portal and no zenity (test)")
            .is_some(),
        "it says why"
    );

    // A path that is not there is refused in the window, which stays open.
    harness
        .get_by_role(egui::accesskit::Role::MultilineTextInput)
        .focus();
    harness.run_steps(1);
    harness
        .get_by_role(egui::accesskit::Role::MultilineTextInput)
        .type_text("/no/such/photo.png");
    harness.run_steps(1);
    harness.get_by_label(TYPED_OK).click();
    harness.run_steps(2);
    assert!(harness.query_by_label_contains("is not a file").is_some());
    assert_eq!(harness.state().state().library.len(), 0);

    // Cancel closes it with nothing picked; asked again, the typed photo is added.
    harness.get_by_label("Cancel").click();
    harness.run_steps(2);
    assert!(harness.query_by_label(TYPED_OK).is_none());
    harness.get_by_label("Open files…").click();
    // A new window is laid out invisibly on its first frame.
    harness.run_steps(4);
    harness
        .get_by_role(egui::accesskit::Role::MultilineTextInput)
        .focus();
    harness.run_steps(1);
    harness
        .get_by_role(egui::accesskit::Role::MultilineTextInput)
        .type_text(&photo.display().to_string());
    harness.run_steps(1);
    harness.get_by_label(TYPED_OK).click();
    harness.run_steps(2);
    assert!(harness.query_by_label(TYPED_OK).is_none());
    let deadline = Instant::now() + Duration::from_secs(30);
    while harness.state().state().library.len() != 1 {
        assert!(
            Instant::now() < deadline,
            "the typed photo did not reach the library"
        );
        harness.step();
        std::thread::sleep(Duration::from_millis(5));
    }
}
