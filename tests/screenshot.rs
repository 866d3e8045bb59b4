//! Renders the real window with egui_kittest's wgpu renderer (Mesa's software Vulkan on a machine
//! without a GPU) and checks that the selected photo really reaches the screen.
//!
//! The image is written to the test's temporary folder; with `UPDATE_SCREENSHOTS=1` it also replaces
//! `screenshots/window.png`, the picture in the README.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use facecast::app::{DISPLAY_OWN_DEVICE_CPU, Detection, FacecastApp, PhotoStatus, StartOptions};
use facecast::compute::Compute;
use facecast::weights::store::WeightsStore;

mod common;

/// A stand-in product shot: a studio backdrop, a figure with a head and a coloured garment.
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

#[test]
fn window_screenshot_shows_the_selected_photo() {
    let dir = tempfile::tempdir().expect("tempdir");
    let garments = [[40, 90, 160], [170, 40, 60], [60, 130, 80], [200, 160, 40]];
    let names = [
        "navy-shirt.png",
        "red-dress.png",
        "green-jacket.png",
        "mustard-knit.png",
    ];
    let paths: Vec<PathBuf> = names.iter().map(|name| dir.path().join(name)).collect();
    for (path, garment) in paths.iter().zip(garments) {
        product_photo(path, garment);
    }
    std::fs::write(dir.path().join("corrupt.jpg"), b"\xff\xd8\xff\xe0 truncated").expect("write");
    // A real face, in a subfolder so it is listed after the stand-ins; detection draws its box.
    let fixtures = common::fixture_dir("mtcnn");
    std::fs::create_dir(dir.path().join("people")).expect("mkdir");
    std::fs::copy(
        fixtures.join("astronaut.png"),
        dir.path().join("people/astronaut.png"),
    )
    .expect("copy");
    let data = tempfile::tempdir().expect("tempdir");
    WeightsStore::open(Some(data.path().to_path_buf()))
        .expect("open the store")
        .import("mtcnn", &[fixtures])
        .expect("import MTCNN from the fixtures");

    let start = StartOptions {
        open: vec![dir.path().to_path_buf()],
        display: DISPLAY_OWN_DEVICE_CPU.into(),
        warnings: Vec::new(),
        data_dir: Some(data.path().to_path_buf()),
        ..Default::default()
    };
    let mut harness = Harness::builder()
        .with_size([1280.0, 800.0])
        .wgpu()
        .build_eframe(move |cc| FacecastApp::new(&cc.egui_ctx, Compute::cpu(), start));

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        harness.step();
        let app = harness.state();
        let loading = app.state().library.count(|s| matches!(s, PhotoStatus::Loading));
        let screened = app
            .state()
            .library
            .count_entries(|e| matches!(e.detection, Detection::Done(_) | Detection::Failed(_)));
        if app.state().library.len() == 6 && loading == 0 && app.state().preview.is_some() && screened == 5 {
            break;
        }
        assert!(Instant::now() < deadline, "photos did not load within 60 s");
        std::thread::sleep(Duration::from_millis(5));
    }
    // Let the last thumbnails and toasts settle into the frame.
    harness.run_steps(3);

    let image = harness.render().expect("render the window with wgpu");
    assert_eq!((image.width(), image.height()), (1280, 800));

    // The canvas shows the first readable photo in name order (corrupt.jpg comes first but cannot be
    // read): its garment and skin colours must be on screen where the photo puts them.
    let app = harness.state();
    assert_eq!(
        app.state().selected_entry().map(|e| e.name.as_str()),
        Some("green-jacket.png")
    );
    let view = app.canvas_view().copied().expect("the canvas drew the photo");
    let sample = |x: f32, y: f32| {
        let p = view.to_screen(egui::pos2(x, y));
        image.get_pixel(p.x.round() as u32, p.y.round() as u32).0
    };
    let close = |a: [u8; 4], b: [u8; 3]| a.iter().zip(b).all(|(&a, b)| a.abs_diff(b) <= 12);
    let body = sample(300.0, 600.0);
    assert!(close(body, [60, 130, 80]), "garment pixel on screen: {body:?}");
    let head = sample(300.0, 200.0);
    assert!(close(head, [224, 180, 150]), "head pixel on screen: {head:?}");

    // The picture for the README: the astronaut with its face box, the face chosen as a target.
    let astronaut = harness
        .state()
        .state()
        .library
        .entries()
        .iter()
        .find(|e| e.name == "astronaut.png")
        .map(|e| e.id)
        .expect("the astronaut is in the library");
    harness.state_mut().select_photo(astronaut);
    if let Some(entry) = harness.state_mut().state_mut().library.get_mut(astronaut) {
        entry.select_faces_from(0.70);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while harness.state().state().preview.as_ref().map(|p| p.photo) != Some(astronaut) {
        harness.step();
        assert!(
            Instant::now() < deadline,
            "the astronaut's preview did not load within 60 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    harness.run_steps(3);
    let image = harness.render().expect("render the window with wgpu");
    let app = harness.state();
    let entry = app.state().selected_entry().expect("the astronaut is selected");
    let face = entry
        .faces()
        .and_then(|f| f.faces.first())
        .expect("the astronaut has a face");
    let view = app.canvas_view().copied().expect("the canvas drew the astronaut");
    // The chosen face's box is drawn green along its top edge.
    let [x1, y1, x2, _] = face.bbox;
    let edge = view.to_screen(egui::pos2((x1 + x2) / 2.0, y1));
    let pixel = image.get_pixel(edge.x.round() as u32, edge.y.round() as u32).0;
    assert!(
        pixel[1] > 150 && pixel[0] < 120 && pixel[2] < 150,
        "the face box is drawn on screen: {pixel:?}"
    );

    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("window.png");
    image
        .save(&out)
        .unwrap_or_else(|err| panic!("writing {}: {err}", out.display()));
    if std::env::var_os("UPDATE_SCREENSHOTS").is_some() {
        let committed = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("screenshots")
            .join("window.png");
        std::fs::create_dir_all(committed.parent().expect("has a parent")).expect("mkdir screenshots");
        image
            .save(&committed)
            .unwrap_or_else(|err| panic!("writing {}: {err}", committed.display()));
    }
}
