//! The makeup step with the BeautyGAN fixture's reduced-width weights on the shared photos: config
//! inference, the pipeline function (only the face's mask may change), the CLI as a user runs it,
//! and the window's Makeup section.

mod common;

use common::{facecast, text};
use std::path::{Path, PathBuf};

use burn::tensor::Device;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use facecast::app::makeup_section::{APPLY_LABEL, COMPARE_LABEL, MakeupWeights};
use facecast::app::{Detection, FacecastApp, PhotoStatus, StartOptions};
use facecast::compute::Compute;
use facecast::face::align::align_to_template;
use facecast::face::mask::face_mask;
use facecast::io::{DecodeLimits, load_photo};
use facecast::nets::beautygan::BeautyGanConfig;
use facecast::pipeline::detect::photo::{DetectSettings, detect_photo};
use facecast::pipeline::makeup::references::{
    CROP_SIZE, ReferenceLibrary, import_reference, makeup_template,
};
use facecast::pipeline::makeup::{MakeupSettings, apply_makeup};
use facecast::pipeline::paste::mask_in_photo;
use facecast::weights::models::{BEAUTYGAN_ID, key_list_shapes, load_beautygan, load_mtcnn, shapes};
use facecast::weights::read_checkpoint;
use facecast::weights::store::{Import, WeightsStore};

fn photo(name: &str) -> PathBuf {
    common::fixture_dir("mtcnn").join(name)
}

/// A data folder with MTCNN (real weights) and BeautyGAN (the fixture's reduced weights).
fn data_dir() -> tempfile::TempDir {
    let data = tempfile::tempdir().expect("tempdir");
    let store = common::store_with_mtcnn(data.path());
    let weights = common::fixture_dir("beautygan").join("weights.pth");
    let state = store
        .import_with(BEAUTYGAN_ID, &[weights], Import::Reduced)
        .expect("import BeautyGAN's reduced weights");
    assert!(state.status.is_usable(), "{:?}", state.status);
    data
}

#[test]
fn beautygan_configs_come_from_the_shapes() {
    let released = BeautyGanConfig::infer(&key_list_shapes("beautygan").expect("key list")).expect("infer");
    assert_eq!(
        released,
        BeautyGanConfig::default(),
        "the released checkpoint is Generator_branch(64, 6)"
    );
    let dir = common::fixture_dir("beautygan");
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("meta.json")).expect("meta.json")).expect("json");
    let want = BeautyGanConfig::from_json(&meta["config"]).expect("meta config");
    let tensors = read_checkpoint(&dir.join("weights.pth"))
        .expect("read")
        .flatten_tensors();
    assert_eq!(BeautyGanConfig::infer(&shapes(&tensors)).expect("infer"), want);
    // A file of another network is refused with the reason.
    let other = key_list_shapes("mobilenetv2-imagenet").expect("key list");
    let err = BeautyGanConfig::infer(&other).expect_err("not BeautyGAN");
    assert!(err.to_string().contains("Branch_0.0.weight"), "{err}");
}

#[test]
fn makeup_changes_the_face_and_nothing_outside_its_mask() {
    let data = data_dir();
    let store = WeightsStore::open(Some(data.path().to_path_buf())).expect("store");
    let device = Device::flex();
    let nets = load_mtcnn(&store.model_dir("mtcnn"), &device).expect("MTCNN");
    let file = store.require(BEAUTYGAN_ID).expect("BeautyGAN installed")[0].clone();
    let (generator, config) = load_beautygan(&file, &device).expect("BeautyGAN");
    assert_eq!((config.conv_dim, config.repeat_num), (16, 6));

    let library = ReferenceLibrary::new(data.path());
    let reference = import_reference(
        &library,
        &nets,
        &photo("camera.png"),
        Some("Camera look"),
        &device,
    )
    .expect("import");
    assert_eq!(reference.crop.dimensions(), (CROP_SIZE, CROP_SIZE));
    assert_eq!(library.list().expect("list").references.len(), 1);
    // A photo without a face cannot be a reference.
    let err = import_reference(&library, &nets, &photo("chelsea.png"), None, &device).expect_err("a cat");
    assert!(err.to_string().contains("chelsea.png"), "{err}");

    let original = load_photo(&photo("astronaut.png"), &DecodeLimits::default())
        .expect("astronaut")
        .rgb;
    let faces = detect_photo(&nets, &original, &DetectSettings::default(), &device)
        .expect("detect")
        .faces;
    assert_eq!(faces.len(), 1);
    let settings = MakeupSettings {
        reference: Some(reference.id().to_string()),
        strength: 1.0,
        ..MakeupSettings::default()
    };
    let out =
        apply_makeup(&generator, &original, &faces, &reference.crop, &settings, &device).expect("makeup");
    assert_eq!(out.faces, 1);

    // The same mask the step pastes through, in photo coordinates.
    let to_crop = align_to_template(&faces[0].landmarks, &makeup_template(CROP_SIZE)).expect("align");
    let crop_landmarks: Vec<_> = faces[0].landmarks.iter().map(|&p| to_crop.apply(p)).collect();
    let mask = face_mask(CROP_SIZE as usize, &settings.mask_settings(), &crop_landmarks);
    let weights = mask_in_photo(&mask, &to_crop, original.width(), original.height());
    let (mut outside, mut changed_inside) = (0, 0);
    for (x, y, p) in out.image.enumerate_pixels() {
        let before = original.get_pixel(x, y);
        if weights.get(x as usize, y as usize) <= 0.0 {
            outside += 1;
            assert_eq!(p, before, "pixel ({x}, {y}) outside the face mask changed");
        } else if p != before {
            changed_inside += 1;
        }
    }
    assert!(
        outside > 150_000,
        "most of the photo is outside the mask ({outside} pixels)"
    );
    assert!(
        changed_inside > 5_000,
        "the face changed ({changed_inside} pixels)"
    );

    // Half strength lands between the original and the full result.
    let half = MakeupSettings {
        strength: 0.5,
        ..settings.clone()
    };
    let soft = apply_makeup(&generator, &original, &faces, &reference.crop, &half, &device).expect("half");
    let distance = |a: &image::RgbImage| -> u64 {
        a.pixels()
            .zip(original.pixels())
            .map(|(p, q)| (0..3).map(|c| p[c].abs_diff(q[c]) as u64).sum::<u64>())
            .sum()
    };
    let (full_d, half_d) = (distance(&out.image), distance(&soft.image));
    assert!(half_d > 0 && half_d < full_d, "half {half_d} vs full {full_d}");
}

#[test]
fn cli_imports_a_reference_and_makes_up_a_folder_of_photos() {
    let data = tempfile::tempdir().expect("tempdir");
    let d = data.path();
    let s = |p: &Path| p.to_str().expect("utf-8 path").to_string();
    let mtcnn = s(&common::fixture_dir("mtcnn"));
    let out = facecast(d, &["weights", "import", "mtcnn", &mtcnn]);
    assert!(out.status.success(), "{}", text(&out));
    let weights = s(&common::fixture_dir("beautygan").join("weights.pth"));
    let out = facecast(d, &["weights", "import", "beautygan", &weights, "--reduced"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("reduced-width test weights"),
        "{}",
        text(&out)
    );

    let out = facecast(
        d,
        &[
            "makeup",
            "import",
            &s(&photo("camera.png")),
            "--name",
            "Studio look",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = facecast(d, &["makeup", "list", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let refs = list["references"].as_array().expect("references");
    assert_eq!(refs.len(), 1, "{list}");
    assert_eq!(refs[0]["name"], "Studio look");
    let id = refs[0]["id"].as_str().expect("id").to_string();

    // The inputs live in their own folder so the test can prove they are untouched.
    let inputs = tempfile::tempdir().expect("tempdir");
    for name in ["astronaut.png", "chelsea.png"] {
        std::fs::copy(photo(name), inputs.path().join(name)).expect("copy");
    }
    let before = std::fs::read(inputs.path().join("astronaut.png")).expect("read");
    let results = tempfile::tempdir().expect("tempdir");
    let out = facecast(
        d,
        &[
            "makeup",
            "apply",
            "--reference",
            &id,
            "--strength",
            "0.9",
            "--out",
            &s(results.path()),
            &s(inputs.path()),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("chelsea.png: no face, skipped"), "{stdout}");
    let written = results.path().join("astronaut-makeup.png");
    let made_up = image::open(&written).expect("the result is a PNG").into_rgb8();
    let original = image::open(inputs.path().join("astronaut.png"))
        .expect("original")
        .into_rgb8();
    assert_eq!(made_up.dimensions(), original.dimensions());
    assert_ne!(made_up, original, "the face changed");
    assert_eq!(
        std::fs::read(inputs.path().join("astronaut.png")).expect("read"),
        before
    );
    let names: Vec<_> = std::fs::read_dir(results.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        vec!["astronaut-makeup.png"],
        "no temporary or extra file is left"
    );

    let out = facecast(
        d,
        &[
            "makeup",
            "apply",
            "--reference",
            "nope",
            "--out",
            &s(results.path()),
            &s(inputs.path()),
        ],
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("no makeup reference \"nope\""),
        "{}",
        text(&out)
    );

    let out = facecast(d, &["makeup", "remove", &id]);
    assert!(out.status.success(), "{}", text(&out));
    let out = facecast(d, &["makeup", "list"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("no makeup references"),
        "{}",
        text(&out)
    );
}

#[test]
fn the_makeup_section_applies_the_chosen_reference_as_an_undoable_edit() {
    let data = data_dir();
    let device = Device::flex();
    let store = WeightsStore::open(Some(data.path().to_path_buf())).expect("store");
    let nets = load_mtcnn(&store.model_dir("mtcnn"), &device).expect("MTCNN");
    let library = ReferenceLibrary::new(data.path());
    import_reference(
        &library,
        &nets,
        &photo("camera.png"),
        Some("Studio look"),
        &device,
    )
    .expect("import");

    let start = StartOptions {
        open: vec![photo("astronaut.png")],
        data_dir: Some(data.path().to_path_buf()),
        ..StartOptions::default()
    };
    let mut harness = Harness::builder()
        .with_size([1280.0, 900.0])
        .build_eframe(|cc| FacecastApp::new(&cc.egui_ctx, Compute::cpu(), start));
    common::step_until(&mut harness, "screening and the makeup checks", |app| {
        let s = app.state();
        s.library.entries().first().is_some_and(|e| {
            matches!(e.detection, Detection::Done(_)) && matches!(e.status, PhotoStatus::Loaded { .. })
        }) && s.makeup.weights == MakeupWeights::Ready
            && s.makeup.reference().is_some()
            && app.worker().is_idle()
    });
    assert_eq!(harness.state().state().makeup_blocker(), None);
    harness.get_by_label("Studio look").click();
    harness.get_by_label(APPLY_LABEL).click();
    common::step_until(&mut harness, "the makeup edit", |app| {
        let s = app.state();
        s.selected.and_then(|id| s.current_edit(id)).is_some() && app.worker().is_idle()
    });
    let state = harness.state().state();
    let photo_id = state.selected.expect("selected");
    let edit = state.current_edit(photo_id).expect("an edit");
    assert!(
        edit.label.starts_with("Makeup (BeautyGAN), 1 face"),
        "{}",
        edit.label
    );
    assert!(
        edit.notes.iter().any(|n| n.contains("Studio look")),
        "{:?}",
        edit.notes
    );
    let original = image::open(photo("astronaut.png")).expect("original").into_rgb8();
    assert_eq!(edit.image.dimensions(), original.dimensions());
    assert_ne!(edit.image.as_ref(), &original);
    assert!(state.edits[&photo_id].can_undo());
    let (compared, before, after) = state.makeup.compare.clone().expect("a before/after of the faces");
    assert_eq!(compared, photo_id);
    assert_eq!(before.dimensions(), after.dimensions());
    assert_ne!(before, after);
    harness.get_by_label(COMPARE_LABEL);
}
