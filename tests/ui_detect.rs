//! Face detection in the real window (egui_kittest): MTCNN is installed into a fresh data directory
//! from the shared fixtures, two photos are dropped, the worker screens them, the library shows the
//! verdicts, and clicking the face on the canvas chooses it as a swap target.

mod common;

use egui_kittest::Harness;
use facecast::app::{FaceBadge, FacecastApp, StartOptions};
use facecast::compute::Compute;
use facecast::weights::store::WeightsStore;

use common::DroppedPath;

/// Steps until the detector is ready, nothing is loading or detecting and the worker is idle.
fn settle(harness: &mut Harness<'_, FacecastApp>, photos: usize) {
    common::step_until(harness, "screening the photos", |app| {
        common::all_screened(app, photos) && app.state().preview.is_some()
    });
}

#[test]
fn dropped_photos_are_screened_and_a_face_is_chosen_by_clicking_it() {
    let fixtures = common::fixture_dir("mtcnn");
    let data = tempfile::tempdir().expect("tempdir");
    // The app must find MTCNN through the environment, as the real window does. This test binary has a
    // single test, so no other thread reads the environment while it is set.
    unsafe { std::env::set_var("FACECAST_DATA_DIR", data.path()) };
    let store = WeightsStore::open(Some(data.path().to_path_buf())).expect("open the store");
    store
        .import("mtcnn", std::slice::from_ref(&fixtures))
        .expect("import MTCNN from the fixtures");

    let photos = tempfile::tempdir().expect("tempdir");
    let mut paths = Vec::new();
    for name in ["astronaut.png", "chelsea.png"] {
        let path = photos.path().join(name);
        std::fs::copy(fixtures.join(name), &path).expect("copy a fixture photo");
        paths.push(path);
    }

    let mut harness = Harness::builder()
        .with_size([1280.0, 800.0])
        .build_eframe(|cc| FacecastApp::new(&cc.egui_ctx, Compute::cpu(), StartOptions::default()));
    harness.step();
    for path in &paths {
        harness
            .input_mut()
            .dropped_files
            .push(std::sync::Arc::new(DroppedPath(path.clone())));
    }
    settle(&mut harness, 2);

    let app = harness.state();
    let state = app.state();
    let min_score = state.detect_settings.min_score;
    assert_eq!(min_score, 0.70, "the screening rule of the original project");
    let badge = |name: &str| {
        let entry = state
            .library
            .entries()
            .iter()
            .find(|e| e.name == name)
            .unwrap_or_else(|| panic!("{name} is in the library"));
        entry.badge(min_score)
    };
    assert_eq!(badge("astronaut.png"), Some(FaceBadge::Faces(1)));
    assert_eq!(badge("chelsea.png"), Some(FaceBadge::NoFace));
    assert_eq!(
        badge("astronaut.png").map(|b| b.text()).as_deref(),
        Some("1 face")
    );
    assert_eq!(badge("chelsea.png").map(|b| b.text()).as_deref(), Some("no face"));

    // The astronaut was dropped first, so it is on the canvas; click the middle of its best face.
    let entry = state.selected_entry().expect("a photo is selected");
    assert_eq!(entry.name, "astronaut.png");
    assert!(entry.targets.is_empty(), "no face is chosen before the click");
    let faces = entry.faces().expect("the astronaut was screened");
    let (index, face) = faces
        .faces
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.score.total_cmp(&b.1.score))
        .expect("one face");
    let [x1, y1, x2, y2] = face.bbox;
    let view = *app.canvas_view().expect("the canvas drew the photo");
    let centre = view.to_screen(egui::pos2((x1 + x2) / 2.0, (y1 + y2) / 2.0));
    click(&mut harness, centre);
    let entry = harness.state().state().selected_entry().expect("still selected");
    assert!(
        entry.targets.contains(&index),
        "the clicked face is chosen: {:?}",
        entry.targets
    );

    // A second click un-chooses it; a click beside the face chooses nothing.
    click(&mut harness, centre);
    let entry = harness.state().state().selected_entry().expect("still selected");
    assert!(
        entry.targets.is_empty(),
        "clicking again un-chooses: {:?}",
        entry.targets
    );
    let view = *harness.state().canvas_view().expect("the canvas drew the photo");
    click(&mut harness, view.to_screen(egui::pos2(x2 + 40.0, y2 + 40.0)));
    let entry = harness.state().state().selected_entry().expect("still selected");
    assert!(entry.targets.is_empty(), "a click off the face chooses nothing");
}

fn click(harness: &mut Harness<'_, FacecastApp>, at: egui::Pos2) {
    harness.input_mut().events.push(egui::Event::PointerMoved(at));
    harness.step();
    for pressed in [true, false] {
        harness.input_mut().events.push(egui::Event::PointerButton {
            pos: at,
            button: egui::PointerButton::Primary,
            pressed,
            modifiers: egui::Modifiers::NONE,
        });
        harness.step();
    }
    harness.step();
}
