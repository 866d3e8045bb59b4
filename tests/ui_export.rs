//! Export and sessions in the real window (egui_kittest): the export bar's buttons run the recipe
//! on the worker and give byte for byte the files `facecast batch` writes with the same recipe;
//! Cancel stops it without a partial file; the library, chosen faces, recipe, layout and edit
//! history come back after a restart.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use facecast::app::export_bar::{CANCEL_EXPORT, EXPORT_ALL, SHOW_RESULTS};
use facecast::app::history::Version;
use facecast::app::{FacecastApp, StartOptions};
use facecast::compute::Compute;
use facecast::io::TEMP_PREFIX;
use facecast::pipeline::batch::{FileStatus, StopReason};
use facecast::pipeline::recipe::{FaceMode, OutputFormat};
use facecast::pipeline::swap::SwapEngine;

fn data_with_mtcnn() -> tempfile::TempDir {
    let data = tempfile::tempdir().expect("tempdir");
    common::store_with_mtcnn(data.path());
    data
}

fn harness(data: &Path, open: Vec<PathBuf>, restore_session: bool) -> Harness<'static, FacecastApp> {
    let start = StartOptions {
        open,
        data_dir: Some(data.to_path_buf()),
        restore_session,
        ..Default::default()
    };
    Harness::builder()
        .with_size([1280.0, 800.0])
        .build_eframe(move |cc| FacecastApp::new(&cc.egui_ctx, Compute::cpu(), start))
}

/// Steps until `photos` are in the library, loaded and screened, and the worker is idle.
fn settle(harness: &mut Harness<'_, FacecastApp>, photos: usize) {
    common::step_until(harness, "screening the photos", |app| {
        common::all_screened(app, photos)
    });
}

/// Steps until the export has ended and the worker is idle.
fn until_exported(harness: &mut Harness<'_, FacecastApp>) {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        harness.step();
        let app = harness.state();
        if app.state().export.ended && !app.state().export.is_running() && app.worker().is_idle() {
            harness.run_steps(2);
            return;
        }
        assert!(Instant::now() < deadline, "the export did not end within 180 s");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The exported files of a folder by name (the command line's journal and report left out).
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            !p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("facecast-journal") || n.starts_with("facecast-report"))
        })
        .map(|p| {
            (
                p.file_name().expect("name").to_string_lossy().into_owned(),
                fs::read(&p).expect("read"),
            )
        })
        .collect()
}

#[test]
fn the_window_exports_the_same_bytes_as_the_command_line() {
    let data = data_with_mtcnn();
    let work = tempfile::tempdir().expect("tempdir");
    let photos = work.path().join("photos");
    fs::create_dir(&photos).expect("mkdir");
    for name in ["astronaut.png", "chelsea.png", "montage.png"] {
        fs::copy(common::fixture_dir("mtcnn").join(name), photos.join(name)).expect("copy");
    }
    let window_out = work.path().join("from-window");
    let cli_out = work.path().join("from-cli");

    let mut harness = harness(data.path(), vec![photos.clone()], false);
    settle(&mut harness, 3);
    {
        let recipe = &mut harness.state_mut().state_mut().recipe;
        // The default swap, with the cameraman's face photo as the virtual model: without
        // FaceShifter's weights it falls back to the classic engine, in the window as on the CLI.
        recipe.swap.enabled = true;
        recipe.virtual_model = Some(
            common::fixture_dir("mtcnn")
                .join("camera.png")
                .display()
                .to_string(),
        );
        recipe.export.format = OutputFormat::Jpeg;
        recipe.export.quality = 85;
        recipe.export.naming = "{index}-{stem}.{ext}".into();
        recipe.export.folder = Some(window_out.clone());
    }
    harness.run_steps(2);
    // The cat is screened out: two photos have a face.
    harness.get_by_label(&format!("{EXPORT_ALL} (2)")).click();
    harness.step();
    assert!(harness.state().state().export.is_running() || harness.state().state().export.ended);
    until_exported(&mut harness);

    let export = &harness.state().state().export;
    assert_eq!(export.reports.len(), 2);
    assert!(
        export.reports.iter().all(|r| r.status == FileStatus::Done),
        "{:?}",
        export.reports
    );
    assert!(export.stopped.is_none());
    harness.get_by_label("2 exported, 0 skipped, 0 failed");
    harness.get_by_label(SHOW_RESULTS).click();
    harness.run_steps(3);
    harness.get_by_label_contains("0001-astronaut.jpg");

    // The same recipe, saved from the window, on the command line.
    let recipe_path = work.path().join("look.json");
    assert!(harness.state_mut().save_recipe(&recipe_path));
    let o = Command::new(env!("CARGO_BIN_EXE_facecast"))
        .env("FACECAST_DATA_DIR", data.path())
        .args(["--backend", "cpu", "batch", "--recipe"])
        .arg(&recipe_path)
        .arg("--out")
        .arg(&cli_out)
        .arg(photos.join("astronaut.png"))
        .arg(photos.join("montage.png"))
        .output()
        .expect("run facecast");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (from_window, from_cli) = (files(&window_out), files(&cli_out));
    assert_eq!(
        from_window.keys().collect::<Vec<_>>(),
        ["0001-astronaut.jpg", "0002-montage.jpg"]
    );
    assert_eq!(
        from_window.keys().collect::<Vec<_>>(),
        from_cli.keys().collect::<Vec<_>>()
    );
    for (name, bytes) in &from_window {
        assert!(
            bytes == &from_cli[name],
            "{name} differs between the window and the CLI"
        );
    }
    // And it is a swap: the astronaut's face is not what it was.
    let original = image::open(photos.join("astronaut.png"))
        .expect("photo")
        .to_rgb8();
    let swapped = image::load_from_memory(&from_window["0001-astronaut.jpg"])
        .expect("export")
        .to_rgb8();
    // The middle of the astronaut's face (its box is about x 181-268, y 63-172).
    let [x, y] = [225u32, 118u32];
    let differs = (0..40)
        .flat_map(|dy| (0..40).map(move |dx| (x - 20 + dx, y - 20 + dy)))
        .filter(|&(px, py)| {
            let (a, b) = (original.get_pixel(px, py).0, swapped.get_pixel(px, py).0);
            a.iter().zip(b).any(|(p, q)| p.abs_diff(q) > 24)
        })
        .count();
    assert!(
        differs > 400,
        "only {differs} of 1600 face pixels changed beyond JPEG noise"
    );
}

#[test]
fn load_recipe_refuses_a_misspelt_step_setting_and_keeps_the_settings_it_had() {
    let data = tempfile::tempdir().expect("tempdir");
    let work = tempfile::tempdir().expect("tempdir");
    let mut harness = harness(data.path(), Vec::new(), false);
    harness.run_steps(2);

    // A typo in a step setting: refused when read, the file and the setting named, nothing changed.
    let typo = work.path().join("typo-look.json");
    fs::write(
        &typo,
        r#"{"facecast_recipe": 1, "swap": {"enabled": true, "engnie": "classic"}, "export": {"quality": 60}}"#,
    )
    .expect("write");
    let before = harness.state().state().recipe.clone();
    assert!(!harness.state_mut().load_recipe(&typo), "the recipe is refused");
    let state = harness.state().state();
    assert_eq!(state.recipe, before, "nothing of the refused recipe was taken");
    assert_eq!(state.swap.settings.engine, SwapEngine::FaceShifter);
    let toasts: Vec<&str> = state.toasts.items().iter().map(|t| t.text.as_str()).collect();
    assert!(
        toasts
            .iter()
            .any(|t| t.contains("typo-look.json") && t.contains("swap.engnie")),
        "{toasts:?}"
    );

    // Spelt right, the same setting reaches the Swap section.
    let good = work.path().join("look.json");
    fs::write(
        &good,
        r#"{"facecast_recipe": 1, "swap": {"enabled": true, "engine": "classic"}, "export": {"quality": 60}}"#,
    )
    .expect("write");
    assert!(harness.state_mut().load_recipe(&good));
    let state = harness.state().state();
    assert_eq!(state.swap.settings.engine, SwapEngine::Classic);
    assert_eq!(state.recipe.export.quality, 60);
}

#[test]
fn cancelling_in_the_window_leaves_only_complete_files() {
    let data = data_with_mtcnn();
    let work = tempfile::tempdir().expect("tempdir");
    let photos = work.path().join("photos");
    fs::create_dir(&photos).expect("mkdir");
    for i in 0..12 {
        fs::copy(
            common::fixture_dir("mtcnn").join("astronaut.png"),
            photos.join(format!("shot-{i:02}.png")),
        )
        .expect("copy");
    }
    let out = work.path().join("out");
    let mut harness = harness(data.path(), vec![photos.clone()], false);
    settle(&mut harness, 12);
    {
        let recipe = &mut harness.state_mut().state_mut().recipe;
        recipe.swap.enabled = false;
        recipe.export.folder = Some(out.clone());
    }
    harness.run_steps(2);
    harness.get_by_label(&format!("{EXPORT_ALL} (12)")).click();
    // Cancel as soon as the first photo is written.
    let deadline = Instant::now() + Duration::from_secs(120);
    while harness.state().state().export.finished == 0 {
        harness.step();
        assert!(Instant::now() < deadline, "nothing exported within 120 s");
        std::thread::sleep(Duration::from_millis(2));
    }
    harness.get_by_label(CANCEL_EXPORT).click();
    until_exported(&mut harness);
    let export = &harness.state().state().export;
    assert_eq!(export.stopped, Some(StopReason::Cancelled));
    let done = export.count(FileStatus::Done);
    assert!(done < 12, "cancelled before the end");
    let written = files(&out);
    assert_eq!(written.len(), done);
    assert!(written.keys().all(|n| !n.starts_with(TEMP_PREFIX)));
    for name in written.keys() {
        image::open(out.join(name)).unwrap_or_else(|e| panic!("{name} is complete: {e}"));
    }
}

#[test]
fn the_session_comes_back_after_a_restart() {
    let data = data_with_mtcnn();
    let work = tempfile::tempdir().expect("tempdir");
    let photos = work.path().join("photos");
    fs::create_dir(&photos).expect("mkdir");
    for name in ["astronaut.png", "chelsea.png", "montage.png"] {
        fs::copy(common::fixture_dir("mtcnn").join(name), photos.join(name)).expect("copy");
    }
    let edited = Arc::new(image::RgbImage::from_fn(64, 48, |x, y| {
        image::Rgb([x as u8 * 3, y as u8 * 5, 77])
    }));
    let (montage_path, targets) = {
        let mut first = harness(data.path(), vec![photos.clone()], true);
        settle(&mut first, 3);
        let app = first.state_mut();
        let state = app.state_mut();
        state.recipe.faces.mode = FaceMode::Largest;
        state.recipe.export.quality = 77;
        state.recipe.export.folder = Some(work.path().join("out"));
        let montage = state
            .library
            .entries()
            .iter()
            .find(|e| e.name == "montage.png")
            .map(|e| (e.id, e.path.clone()))
            .expect("montage in the library");
        let entry = state.library.get_mut(montage.0).expect("entry");
        entry.toggle_target(1);
        entry.toggle_target(3);
        let targets = entry.targets.clone();
        let history = state.edits.entry(montage.0).or_default();
        history.push(Version {
            label: "Swap (test)".into(),
            image: Arc::clone(&edited),
            notes: vec!["identity 0.81".into()],
        });
        history.push(Version {
            label: "Restore (test)".into(),
            image: Arc::new(image::RgbImage::new(8, 8)),
            notes: Vec::new(),
        });
        history.undo();
        app.save_session_now().expect("save the session");
        (montage.1, targets)
    };

    let mut second = harness(data.path(), Vec::new(), true);
    settle(&mut second, 3);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        second.step();
        let state = second.state().state();
        let restored = state
            .library
            .entries()
            .iter()
            .find(|e| e.path == montage_path)
            .is_some_and(|e| state.edits.contains_key(&e.id) && !e.targets.is_empty());
        if restored && second.state().worker().is_idle() && state.preview.is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the session did not come back within 60 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let state = second.state().state();
    let names: Vec<&str> = state.library.entries().iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        ["astronaut.png", "chelsea.png", "montage.png"],
        "in the same order"
    );
    assert_eq!(state.recipe.faces.mode, FaceMode::Largest);
    assert_eq!(state.recipe.export.quality, 77);
    assert_eq!(
        state.recipe.export.folder.as_deref(),
        Some(work.path().join("out").as_path())
    );
    let montage = state
        .library
        .entries()
        .iter()
        .find(|e| e.path == montage_path)
        .expect("montage");
    assert_eq!(montage.targets, targets, "the chosen faces are back");
    let history = &state.edits[&montage.id];
    let (versions, applied) = history.versions();
    assert_eq!(versions.len(), 2);
    assert_eq!(applied, 1, "the undone edit can still be redone");
    assert_eq!(versions[0].label, "Swap (test)");
    assert_eq!(versions[0].notes, ["identity 0.81"]);
    assert_eq!(*versions[0].image, *edited, "the edited pixels are back exactly");
    assert_eq!(history.redo_label(), Some("Restore (test)"));
}
