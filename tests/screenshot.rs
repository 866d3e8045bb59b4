//! Renders the real window with egui_kittest's wgpu renderer (Mesa's software Vulkan on a machine
//! without a GPU) and checks that the selected photo really reaches the screen.
//!
//! The image is written to the test's temporary folder; with `UPDATE_SCREENSHOTS=1` it also replaces
//! `screenshots/window.png`, the picture in the README.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use facecast::app::{DISPLAY_OWN_DEVICE_CPU, FacecastApp, PhotoStatus, StartOptions};
use facecast::compute::Compute;

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

    let start = StartOptions {
        open: vec![dir.path().to_path_buf()],
        display: DISPLAY_OWN_DEVICE_CPU.into(),
        warnings: Vec::new(),
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
        if app.state().library.len() == 5 && loading == 0 && app.state().preview.is_some() {
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
