//! The Train window in egui_kittest, clicked by label, on a tiny configuration: the fixture's
//! 32 px `train.py` checkpoint (tests/train_generator.rs uses the same) fine-tuned for a dozen
//! iterations on six crops of the MTCNN fixture's astronaut, on the CPU. The window shows
//! previews and a loss plot while it trains, Pause really stops the iterations until Resume,
//! and the registered generator (file and lineage) appears in the Cast window's generator list.
//! A second run is cancelled (a checkpoint, nothing registered) and resumed from the window.

mod common;

use std::path::Path;

use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use facecast::app::cast_panel::{GENERATOR_LABEL, GeneratorStatus, INSTALLED_GENERATOR, TRAIN_BUTTON};
use facecast::app::train_window::{ADVANCED, CANCEL, PAUSE, RESUME, START, TRAIN_WINDOW, TrainPhase};
use facecast::app::{FacecastApp, StartOptions};
use facecast::compute::Compute;
use facecast::weights::store::WeightsStore;
use image::RgbImage;

const STEPS: u64 = 12;

/// Six crops of the astronaut, small so that MTCNN is quick.
fn photos(dir: &Path) {
    let fixture = common::fixture_dir("mtcnn");
    let astronaut = image::open(fixture.join("astronaut.png"))
        .expect("astronaut")
        .to_rgb8();
    for i in 0..6u32 {
        let side = 300 + 8 * (i % 3);
        let (x, y) = (60 + 12 * (i % 4), 8 * (i / 3));
        let crop = image::imageops::crop_imm(&astronaut, x, y, side, side).to_image();
        let small: RgbImage = image::imageops::resize(&crop, 150, 150, image::imageops::FilterType::Triangle);
        small
            .save(dir.join(format!("face_{i:02}.png")))
            .expect("write a photo");
    }
}

fn click(harness: &mut Harness<'_, FacecastApp>, label: &str) {
    harness.get_by_label(label).click();
    // The click's action applies after the frame; a new window is sized invisibly, then shown.
    harness.run_steps(3);
}

/// Types into the Train window's text field labelled `label`.
fn fill(harness: &mut Harness<'_, FacecastApp>, label: &str, text: &str) {
    harness
        .get_by_role_and_label(Role::Window, TRAIN_WINDOW)
        .get_by_role_and_label(Role::TextInput, label)
        .focus();
    harness.step();
    harness
        .get_by_role_and_label(Role::Window, TRAIN_WINDOW)
        .get_by_role_and_label(Role::TextInput, label)
        .type_text(text);
    harness.run_steps(2);
}

#[test]
fn the_train_window_trains_with_previews_and_a_plot_pauses_and_registers_the_generator() {
    let data = tempfile::tempdir().expect("tempdir");
    let store = WeightsStore::open(Some(data.path().to_path_buf())).expect("open the store");
    store
        .import("mtcnn", &[common::fixture_dir("mtcnn")])
        .expect("import MTCNN from the fixtures");
    let photo_dir = data.path().join("photos");
    std::fs::create_dir_all(&photo_dir).expect("photos folder");
    photos(&photo_dir);
    let base = common::fixture_dir("stylegan2_train").join("weights.pth");

    let start = StartOptions {
        data_dir: Some(data.path().to_path_buf()),
        ..Default::default()
    };
    let mut harness = Harness::builder()
        .with_size([1280.0, 1000.0])
        .build_eframe(move |cc| FacecastApp::new(&cc.egui_ctx, Compute::cpu(), start));
    common::step_until(&mut harness, "the detector check", |app| app.detector_ready());

    // The Cast window's generator list, then its Train button.
    click(&mut harness, "Generate…");
    // The window's content moves once the StyleGAN2 check answers; click after that.
    common::step_until(&mut harness, "the StyleGAN2 check", |app| {
        *app.cast_generator() != GeneratorStatus::Checking
    });
    click(&mut harness, TRAIN_BUTTON);
    harness.get_by_role_and_label(Role::Window, TRAIN_WINDOW);
    fill(&mut harness, "Photos folder", &photo_dir.display().to_string());
    fill(&mut harness, "Name", "house");
    fill(&mut harness, "Steps", &STEPS.to_string());
    fill(&mut harness, "Batch", "2");
    fill(&mut harness, "Checkpoint every", "4");
    click(&mut harness, ADVANCED);
    fill(&mut harness, "Start from checkpoint", &base.display().to_string());
    fill(&mut harness, "Preview every", "4");
    click(&mut harness, START);
    assert!(
        harness.state().state().train.is_running(),
        "Start queued the training job: {:?}",
        harness.state().state().train.phase
    );

    // Previews at the start and a first point on the plot.
    common::step_until(&mut harness, "the first previews and losses", |app| {
        let t = &app.state().train;
        (t.previews.len() == 8 && t.history.points() > 0) || !t.is_running()
    });
    let train = &harness.state().state().train;
    assert!(train.is_running(), "still training: {:?}", train.phase);
    assert_eq!(train.previews.len(), 8, "eight preview seeds");
    assert!(train.previews.iter().all(|(_, p)| p.dimensions() == (32, 32)));
    harness.get_by_label_contains("Previews (fixed seeds");
    harness.get_by_label_contains(" steps/s · ");

    // Pause: once the worker says it waits, the iteration stands still over many polls.
    click(&mut harness, PAUSE);
    common::step_until(&mut harness, "the pause", |app| {
        app.state().train.phase == TrainPhase::Paused
    });
    let train = &harness.state().state().train;
    let paused_at = train.paused_at.expect("the worker acknowledged the pause");
    assert_eq!(train.iteration, paused_at);
    assert!(paused_at < STEPS, "paused before the end");
    let checkpoint = train.checkpoint.clone();
    for _ in 0..30 {
        harness.step();
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let train = &harness.state().state().train;
    assert_eq!(train.iteration, paused_at, "no iteration ran while paused");
    assert_eq!(train.checkpoint, checkpoint, "no checkpoint written while paused");
    assert_eq!(train.phase, TrainPhase::Paused);

    // Resume and let it finish.
    click(&mut harness, RESUME);
    common::step_until(&mut harness, "the end of training", |app| {
        !app.state().train.is_running()
    });
    let train = &harness.state().state().train;
    assert_eq!(
        train.phase,
        TrainPhase::Done("house".into()),
        "notes: {:?}",
        train.notes
    );
    assert_eq!(train.iteration, STEPS);
    assert_eq!(train.history.d.len() as u64, STEPS, "one D loss per iteration");
    assert!(!train.history.r1.is_empty() && !train.history.path.is_empty());
    assert_eq!(train.preview_iteration, Some(STEPS), "the final previews");
    harness.get_by_label_contains("Trained generator house registered");

    // The generator file and its lineage.
    let generator = data.path().join("generators/house/generator.pt");
    assert!(generator.is_file(), "{} exists", generator.display());
    let model: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(data.path().join("generators/house/model.json")).expect("model.json"),
    )
    .expect("JSON");
    assert_eq!(model["steps"], STEPS);
    assert_eq!(model["batch"], 2);
    assert_eq!(model["size"], 32);
    assert_eq!(model["photos"].as_array().map(Vec::len), Some(6));
    assert!(
        model["base_file"]
            .as_str()
            .is_some_and(|f| f.ends_with("weights.pth"))
    );

    // Listed in the Cast window's generator list.
    assert_eq!(harness.state().cast_generators(), ["house".to_string()]);
    // Cancel stops after the current iteration with a checkpoint, registers nothing, and the
    // window then offers to resume the run of that name.
    fill(&mut harness, "Name", "-2");
    assert_eq!(harness.state().train_window().name, "house-2");
    click(&mut harness, START);
    common::step_until(&mut harness, "the second run's first losses", |app| {
        let t = &app.state().train;
        t.history.points() > 0 || !t.is_running()
    });
    // The status bar has a Cancel for every job too; this is the window's.
    harness
        .get_by_role_and_label(Role::Window, TRAIN_WINDOW)
        .get_by_label(CANCEL)
        .click();
    harness.run_steps(2);
    common::step_until(&mut harness, "the cancel", |app| !app.state().train.is_running());
    let TrainPhase::Stopped {
        iteration,
        checkpoint,
    } = harness.state().state().train.phase.clone()
    else {
        panic!("stopped: {:?}", harness.state().state().train.phase);
    };
    assert!(iteration > 0 && iteration < STEPS, "stopped at {iteration}");
    assert_eq!(
        checkpoint,
        data.path()
            .join(format!("training/house-2/checkpoint/{iteration:06}.pt"))
    );
    assert!(checkpoint.is_file());
    assert!(!data.path().join("generators/house-2").exists());
    harness.get_by_label_contains("Stopped after iteration");
    click(&mut harness, RESUME);
    common::step_until(&mut harness, "the resumed run", |app| {
        !app.state().train.is_running()
    });
    let train = &harness.state().state().train;
    assert_eq!(
        train.phase,
        TrainPhase::Done("house-2".into()),
        "{:?}",
        train.notes
    );
    assert_eq!(train.from, iteration, "the run went on from its checkpoint");
    assert!(train.notes.iter().any(|n| n.starts_with("Resuming house-2")));
    assert_eq!(
        harness.state().cast_generators(),
        ["house".to_string(), "house-2".to_string()]
    );

    // The Cast window (behind the Train window until clicked) generates from either.
    harness
        .get_by_role_and_label(Role::ComboBox, GENERATOR_LABEL)
        .click();
    harness.run_steps(3);
    harness.get_by_label(INSTALLED_GENERATOR);
    harness.get_by_label("house").click();
    harness.run_steps(2);
    assert_eq!(
        harness.state().cast_generator_choice(),
        Some("house"),
        "the trained generator is chosen for the next candidates"
    );
}
