//! The face swap end to end: the loaders build ArcFace and AEI-Net from the files' own shapes, the
//! same-named generator of another repository is refused, FaceShifter (with the fixtures' reduced
//! weights) and the classic engine swap faces on the shared photos touching nothing outside the
//! mask, `facecast swap` writes its result atomically, and the window swaps, compares and undoes.

mod common;

use common::facecast;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use burn::tensor::Device;
use facecast::io::{DecodeLimits, load_photo};
use facecast::nets::arcface::ArcFaceConfig;
use facecast::nets::faceshifter::AeiConfig;
use facecast::pipeline::detect::Face;
use facecast::pipeline::detect::photo::{DetectSettings, detect_photo};
use facecast::pipeline::paste::mask_in_photo;
use facecast::pipeline::swap::identity::identity_from_photo;
use facecast::pipeline::swap::{
    ClassicBlend, SwapEngine, SwapError, SwapJob, SwapNets, SwapOutcome, SwapSettings, crop_mask, swap_faces,
};
use facecast::weights::models::{load_aei, load_arcface, load_mtcnn};
use facecast::weights::store::{Import, WeightsStore};
use image::RgbImage;

fn mtcnn_dir() -> PathBuf {
    common::fixture_dir("mtcnn")
}

fn arcface_weights() -> PathBuf {
    common::fixture_dir("arcface_ir_se50").join("weights.pth")
}

fn aei_weights() -> PathBuf {
    common::fixture_dir("faceshifter_aei").join("weights.pth")
}

fn meta_config(fixture: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(common::fixture_dir(fixture).join("meta.json")).expect("meta.json");
    let meta: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    meta["config"].clone()
}

/// A data directory with MTCNN and, optionally, the fixtures' reduced FaceShifter weights.
fn data_dir(faceshifter: bool) -> tempfile::TempDir {
    let data = tempfile::tempdir().expect("tempdir");
    let store = WeightsStore::open(Some(data.path().to_path_buf())).expect("store");
    store.import("mtcnn", &[mtcnn_dir()]).expect("import MTCNN");
    if faceshifter {
        store
            .import_with("arcface-ir-se50", &[arcface_weights()], Import::Reduced)
            .expect("import ArcFace");
        store
            .import_with("faceshifter-aei", &[aei_weights()], Import::Reduced)
            .expect("import AEI-Net");
    }
    data
}

/// A virtual model imported into the library from the cameraman's photo.
fn library_model(data: &Path, name: &str) -> facecast::cast::VirtualModel {
    let device = Device::flex();
    let mtcnn = load_mtcnn(&mtcnn_dir(), &device).expect("MTCNN");
    let faces =
        facecast::pipeline::virtual_face::find_faces(&mtcnn_dir().join("camera.png"), &mtcnn, &device)
            .expect("the cameraman's face");
    let new = facecast::pipeline::virtual_face::imported_model(name, &[(&faces, 0)]).expect("a model");
    facecast::cast::VirtualModelLibrary::open(data)
        .create(new)
        .expect("saved in the library")
}

fn photo(name: &str) -> RgbImage {
    load_photo(&mtcnn_dir().join(name), &DecodeLimits::default())
        .expect("a shared photo")
        .rgb
}

fn faces_of(image: &RgbImage, device: &Device) -> Vec<Face> {
    let nets = load_mtcnn(&mtcnn_dir(), device).expect("MTCNN");
    detect_photo(&nets, image, &DetectSettings::default(), device)
        .expect("detect")
        .faces
}

/// Every pixel the swap may touch: the union of the faces' paste masks in photo coordinates.
fn touched(image: &RgbImage, faces: &[(usize, Face)], settings: &SwapSettings) -> Vec<bool> {
    let (w, h) = image.dimensions();
    let mut out = vec![false; (w * h) as usize];
    for (_, face) in faces {
        let (to_crop, mask) = crop_mask(face, &settings.mask).expect("mask");
        let weights = mask_in_photo(&mask, &to_crop, w, h);
        for (o, &m) in out.iter_mut().zip(&weights.data) {
            *o |= m > 0.0;
        }
    }
    out
}

/// Asserts that nothing outside the masks changed, and that a good part inside did.
fn assert_only_the_masked_region_changed(before: &RgbImage, after: &RgbImage, may_change: &[bool]) -> usize {
    assert_eq!(before.dimensions(), after.dimensions());
    let mut changed_inside = 0;
    for (i, (a, b)) in before.pixels().zip(after.pixels()).enumerate() {
        if may_change[i] {
            changed_inside += usize::from(a != b);
        } else {
            let (x, y) = (i as u32 % before.width(), i as u32 / before.width());
            assert_eq!(a, b, "pixel ({x}, {y}) outside the mask changed");
        }
    }
    let inside = may_change.iter().filter(|&&m| m).count();
    assert!(
        changed_inside * 4 > inside,
        "only {changed_inside} of {inside} masked pixels changed"
    );
    changed_inside
}

fn iou(a: [f32; 4], b: [f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let area = |r: [f32; 4]| (r[2] - r[0]) * (r[3] - r[1]);
    inter / (area(a) + area(b) - inter)
}

#[test]
fn loaders_build_the_fixture_networks_at_their_own_widths() {
    let device = Device::flex();
    let (arcface, config) = load_arcface(&arcface_weights(), &device).expect("ArcFace loads");
    assert_eq!(
        config,
        ArcFaceConfig::from_json(&meta_config("arcface_ir_se50")).expect("meta config")
    );
    assert_eq!((arcface.embedding_dim(), arcface.input_size()), (512, 112));
    let (aei, config) = load_aei(&aei_weights(), &device).expect("AEI-Net loads");
    assert_eq!(
        config,
        AeiConfig::from_json(&meta_config("faceshifter_aei")).expect("meta config")
    );
    assert_eq!(aei.identity_dim(), 512);

    // The loaded ArcFace is the fixture's network: it reproduces the reference embedding.
    let fx = facecast::parity::Fixture::open(&common::fixture_dir("arcface_ir_se50")).expect("fixture");
    let out = arcface.forward(fx.tensor::<4>("input", &device).expect("input"));
    let case = fx.compare("output", out);
    assert!(case.passed, "{case:?}");
}

#[test]
fn the_same_named_64px_generator_is_refused_by_name() {
    // Heonozis/FaceShifter-pytorch's G_latest.pth: encoder.conv1…conv5, generator.add1…add6.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("G_latest.pth");
    let zeros = |n: usize| vec![0u8; n * 4];
    let tensors = [
        ("encoder.conv1.weight", vec![32usize, 3, 4, 4]),
        ("generator.add1.conv1.weight", vec![64, 64, 3, 3]),
    ];
    let data: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
        .iter()
        .map(|(k, s)| (k.to_string(), zeros(s.iter().product()), s.clone()))
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = data
        .iter()
        .map(|(k, bytes, shape)| {
            let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)
                .expect("view");
            (k.clone(), view)
        })
        .collect();
    std::fs::write(&path, safetensors::serialize(views, None).expect("serialize")).expect("write");

    let err = load_aei(&path, &Device::flex()).expect_err("refused").to_string();
    assert!(err.contains("Heonozis") && err.contains("G_latest.pth"), "{err}");

    let data = tempfile::tempdir().expect("tempdir");
    let store = WeightsStore::open(Some(data.path().to_path_buf())).expect("store");
    let err = store
        .import("faceshifter-aei", std::slice::from_ref(&path))
        .expect_err("refused")
        .to_string();
    assert!(err.contains("Heonozis") && err.contains("taotaonice"), "{err}");
    assert!(
        store
            .import_with("faceshifter-aei", &[path], Import::Reduced)
            .is_err(),
        "its keys are not AEI-Net's, reduced or not"
    );
    assert!(!store.model_dir("faceshifter-aei").join("G_latest.pth").exists());
}

fn swap(
    target: &RgbImage,
    faces: &[(usize, Face)],
    settings: &SwapSettings,
    engine: SwapEngine,
    with_arcface: bool,
    device: &Device,
) -> SwapOutcome {
    let mtcnn = load_mtcnn(&mtcnn_dir(), device).expect("MTCNN");
    let identity = identity_from_photo(&mtcnn_dir().join("camera.png"), &mtcnn, device).expect("identity");
    assert_eq!(identity.crops[0].dimensions(), (256, 256));
    let arcface = with_arcface.then(|| load_arcface(&arcface_weights(), device).expect("ArcFace").0);
    let aei = (engine == SwapEngine::FaceShifter).then(|| load_aei(&aei_weights(), device).expect("AEI").0);
    let job = SwapJob {
        photo: target,
        faces,
        identity: &identity,
        settings,
        engine,
    };
    let nets = SwapNets {
        arcface: arcface.as_ref(),
        aei: aei.as_ref(),
    };
    let mut calls = Vec::new();
    let outcome = swap_faces(&job, nets, device, &mut |done, total| {
        calls.push((done, total));
        true
    })
    .expect("swap");
    assert_eq!(calls.first(), Some(&(0, faces.len())));
    assert_eq!(calls.last(), Some(&(faces.len(), faces.len())));
    outcome
}

#[test]
fn a_faceshifter_swap_runs_end_to_end_and_leaves_the_rest_of_the_photo_alone() {
    let device = Device::flex();
    // The montage has four faces; swap two of them.
    let target = photo("montage.png");
    let found = faces_of(&target, &device);
    assert!(found.len() >= 2, "{found:?}");
    let faces: Vec<(usize, Face)> = found.iter().copied().enumerate().take(2).collect();
    let settings = SwapSettings::default();
    let outcome = swap(&target, &faces, &settings, SwapEngine::FaceShifter, true, &device);
    assert_eq!(outcome.engine, SwapEngine::FaceShifter);
    assert_eq!(outcome.label(), "Swap (FaceShifter), 2 faces");
    assert_only_the_masked_region_changed(&target, &outcome.image, &touched(&target, &faces, &settings));
    for report in &outcome.faces {
        let s = report
            .similarity
            .expect("ArcFace is loaded, so every face is checked");
        assert!(s.is_finite() && (-1.0..=1.0).contains(&s), "{s}");
        assert!(report.timings.generate > Duration::ZERO && report.timings.arcface > Duration::ZERO);
    }
    let notes = outcome.note_lines();
    assert!(notes[0].starts_with("Face 1: identity similarity"), "{notes:?}");

    // Colour matching changes the face, and only the face.
    let plain = SwapSettings {
        color_match: false,
        ..SwapSettings::default()
    };
    let unmatched = swap(
        &target,
        &faces[..1],
        &plain,
        SwapEngine::FaceShifter,
        true,
        &device,
    );
    assert_only_the_masked_region_changed(&target, &unmatched.image, &touched(&target, &faces[..1], &plain));
    assert_ne!(unmatched.image, outcome.image);
}

#[test]
fn a_classic_swap_changes_only_the_face_and_a_face_is_still_found_there() {
    let device = Device::flex();
    let target = photo("astronaut.png");
    let found = faces_of(&target, &device);
    let faces = vec![(0, found[0])];
    for blend in [ClassicBlend::Poisson, ClassicBlend::MultiBand] {
        let settings = SwapSettings {
            engine: SwapEngine::Classic,
            classic_blend: blend,
            ..SwapSettings::default()
        };
        let outcome = swap(&target, &faces, &settings, SwapEngine::Classic, false, &device);
        assert_eq!(outcome.engine, SwapEngine::Classic);
        assert_eq!(outcome.faces[0].similarity, None, "no ArcFace, no identity check");
        assert!(
            outcome.notes.iter().any(|n| n.contains("ArcFace")),
            "{:?}",
            outcome.notes
        );
        assert_only_the_masked_region_changed(&target, &outcome.image, &touched(&target, &faces, &settings));
        // Asked to stop before the first face, nothing is returned.
        let mtcnn = load_mtcnn(&mtcnn_dir(), &device).expect("MTCNN");
        let identity =
            identity_from_photo(&mtcnn_dir().join("camera.png"), &mtcnn, &device).expect("identity");
        let job = SwapJob {
            photo: &target,
            faces: &faces,
            identity: &identity,
            settings: &settings,
            engine: SwapEngine::Classic,
        };
        let stopped = swap_faces(&job, SwapNets::default(), &device, &mut |_, _| false);
        assert!(matches!(stopped, Err(SwapError::Cancelled)), "{stopped:?}");
        let again = faces_of(&outcome.image, &device);
        let best = again
            .iter()
            .map(|f| (iou(f.bbox, found[0].bbox), f.score))
            .fold((0.0f32, 0.0f32), |a, b| if b.0 > a.0 { b } else { a });
        assert!(
            best.0 > 0.5 && best.1 >= 0.7,
            "{blend:?}: no face where the swapped one is: {again:?}"
        );
    }
}

fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn cli_swap_writes_the_result_and_never_an_original() {
    let data = tempfile::tempdir().expect("tempdir");
    let s = |p: &Path| p.to_str().expect("utf-8 path").to_string();
    for args in [
        vec![
            "weights".to_string(),
            "import".into(),
            "mtcnn".into(),
            s(&mtcnn_dir()),
        ],
        vec![
            "weights".into(),
            "import".into(),
            "arcface-ir-se50".into(),
            s(&arcface_weights()),
            "--reduced".into(),
        ],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = facecast(data.path(), &args);
        assert!(out.status.success(), "{}", text(&out));
    }
    let work = tempfile::tempdir().expect("tempdir");
    let target = work.path().join("astronaut.png");
    let face = work.path().join("camera.png");
    std::fs::copy(mtcnn_dir().join("astronaut.png"), &target).expect("copy");
    std::fs::copy(mtcnn_dir().join("camera.png"), &face).expect("copy");
    let original = std::fs::read(&target).expect("read");

    // Asked for by name, FaceShifter without its generator is an error that says what is missing.
    let out_png = work.path().join("swapped.png");
    let args = [
        "swap",
        "--virtual",
        &s(&face),
        "--engine",
        "faceshifter",
        &s(&target),
        "--out",
        &s(&out_png),
    ];
    let out = facecast(data.path(), &args);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("faceshifter-aei"), "{}", text(&out));
    assert!(!out_png.exists());

    // Without --engine it falls back to the classic engine and says so.
    let args = ["swap", "--virtual", &s(&face), &s(&target), "--out", &s(&out_png)];
    let out = facecast(data.path(), &args);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("fallback"), "{}", text(&out));
    let written = image::open(&out_png).expect("the output decodes").into_rgb8();
    assert_eq!(written.dimensions(), (512, 512));

    // With the generator installed, FaceShifter runs and reports identity and timings.
    let out = facecast(
        data.path(),
        &[
            "weights",
            "import",
            "faceshifter-aei",
            &s(&aei_weights()),
            "--reduced",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let out_jpg = work.path().join("swapped.jpg");
    let args = [
        "swap",
        "--virtual",
        &s(&face),
        "--engine",
        "faceshifter",
        "--timings",
        &s(&target),
        "--out",
        &s(&out_jpg),
    ];
    let out = facecast(data.path(), &args);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("face 1: identity similarity"), "{stdout}");
    assert!(stdout.contains("AEI-Net") && stdout.contains("paste"), "{stdout}");
    assert!(image::open(&out_jpg).is_ok());

    // The photo itself is never an output, and it is untouched.
    let args = [
        "swap",
        "--virtual",
        &s(&face),
        &s(&target),
        "--out",
        &s(&target),
        "--overwrite",
    ];
    let out = facecast(data.path(), &args);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("original"), "{}", text(&out));
    assert_eq!(std::fs::read(&target).expect("read"), original);
    let leftovers: Vec<_> = std::fs::read_dir(work.path())
        .expect("list")
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(facecast::io::TEMP_PREFIX)
        })
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");

    // A virtual model of the library, by name without regard to case.
    let out = facecast(data.path(), &["virtual", "import", "Camera Man", &s(&face)]);
    assert!(out.status.success(), "{}", text(&out));
    let by_name = work.path().join("by-name.png");
    let args = [
        "swap",
        "--virtual",
        "camera man",
        &s(&target),
        "--out",
        &s(&by_name),
    ];
    let out = facecast(data.path(), &args);
    assert!(out.status.success(), "{}", text(&out));
    assert!(by_name.exists());

    // A virtual model that is neither a photo nor a known name is a clear error.
    let args = ["swap", "--virtual", "Nobody", &s(&target), "--out", &s(&out_png)];
    let out = facecast(data.path(), &args);
    assert!(!out.status.success());
    assert!(text(&out).contains("Nobody"), "{}", text(&out));
}

mod window {
    use std::path::{Path, PathBuf};

    use egui_kittest::Harness;
    use egui_kittest::kittest::Queryable;
    use facecast::app::compare::SLIDER_LABEL;
    use facecast::app::swap_panel::{SWAP_ALL, UNDO};
    use facecast::app::{Detection, FacecastApp, PhotoStatus};

    use super::common::DroppedPath;

    /// A data folder with the networks and the library model "Camera Man", and a folder holding
    /// the photo to swap.
    fn setup() -> (
        tempfile::TempDir,
        facecast::cast::VirtualModel,
        tempfile::TempDir,
        PathBuf,
    ) {
        let data = super::data_dir(true);
        let model = super::library_model(data.path(), "Camera Man");
        let photos = tempfile::tempdir().expect("tempdir");
        let target = photos.path().join("astronaut.png");
        std::fs::copy(super::mtcnn_dir().join("astronaut.png"), &target).expect("copy");
        (data, model, photos, target)
    }

    fn window(data: &Path, open: Vec<PathBuf>) -> Harness<'static, FacecastApp> {
        super::common::window(data, open, [1280.0, 800.0])
    }

    #[test]
    fn the_window_swaps_all_faces_compares_and_undoes() {
        let (data, model, _photos, target) = setup();
        let mut harness = window(data.path(), Vec::new());
        harness.step();
        harness
            .input_mut()
            .dropped_files
            .push(std::sync::Arc::new(DroppedPath(target.clone())));
        super::common::step_until(&mut harness, "detection", |app| {
            let state = app.state();
            state.preview.is_some()
                && state.library.count(|s| matches!(s, PhotoStatus::Loaded { .. })) == 1
                && state
                    .library
                    .entries()
                    .iter()
                    .all(|e| matches!(e.detection, Detection::Done(_)))
                && app.worker().is_idle()
        });

        // Without a virtual model the swap says what is missing and starts nothing.
        harness.get_by_label(SWAP_ALL).click();
        harness.run_steps(2);
        assert!(harness.state().state().swap.job.is_none());
        assert!(harness.state().state().current_edit(photo_id(&harness)).is_none());

        // The virtual model is the library's, chosen in the Virtual model panel.
        let id = model.id.clone();
        super::common::step_until(&mut harness, "the library listing", |app| {
            app.state().cast.item(&id).is_some()
        });
        harness.state_mut().state_mut().cast.current = Some(id);
        harness.run_steps(2);
        assert!(!harness.state().state().swap.show_mask);
        assert_eq!(
            harness.state().state().swap.settings,
            facecast::pipeline::swap::SwapSettings::default(),
            "drawing the Swap section changes no setting"
        );
        harness.get_by_label("Show mask on the canvas").click();
        harness.run_steps(2);
        assert!(harness.state().state().swap.show_mask);
        harness.get_by_label(SWAP_ALL).click();
        harness.run_steps(2);
        assert!(
            harness.state().state().swap.job.is_some(),
            "the swap job was queued"
        );
        super::common::step_until(&mut harness, "the swap", |app| {
            app.state().swap.job.is_none() && app.worker().is_idle()
        });
        let id = photo_id(&harness);
        let version = harness
            .state()
            .state()
            .current_edit(id)
            .cloned()
            .unwrap_or_else(|| panic!("no edit; toasts: {:?}", harness.state().state().toasts));
        assert_eq!(version.label, "Swap (FaceShifter), 1 face");
        assert!(
            version.notes[0].starts_with("Face 1: identity similarity"),
            "{:?}",
            version.notes
        );
        assert_eq!(version.image.dimensions(), (512, 512));
        // The library keeps the identity ArcFace computed, marked as made by the reduced weights.
        let kept = facecast::cast::VirtualModelLibrary::open(data.path())
            .find(&model.id)
            .expect("the model is still in the library");
        let identity = kept.identity.expect("the identity embedding was saved");
        assert_eq!(identity.network, "arcface-ir-se50");
        assert!(identity.reduced);
        let norm = identity.embedding.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "unit length, not {norm}");
        // The notes are on the canvas and the before/after slider is in the toolbar.
        assert!(harness.query_all_by_label(&version.notes[0]).count() >= 1);
        harness.get_by_label(SLIDER_LABEL);
        if let Some(out) = std::env::var_os("TMP_SHOT") {
            let image = harness.render().expect("render");
            image.save(out).expect("save");
        }

        // Ctrl+Z undoes, Ctrl+Shift+Z redoes, the Edit menu too.
        harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Z);
        harness.run_steps(2);
        assert!(harness.state().state().current_edit(id).is_none(), "undone");
        assert!(harness.query_by_label(SLIDER_LABEL).is_none());
        harness.key_press_modifiers(egui::Modifiers::COMMAND | egui::Modifiers::SHIFT, egui::Key::Z);
        harness.run_steps(2);
        assert!(harness.state().state().current_edit(id).is_some(), "redone");
        harness.get_by_label("Edit").click();
        harness.run_steps(2);
        harness
            .get_by_label(&format!("{UNDO} Swap (FaceShifter), 1 face Ctrl+Z"))
            .click();
        harness.run_steps(2);
        assert!(
            harness.state().state().current_edit(id).is_none(),
            "undone from the menu"
        );
    }

    #[test]
    fn the_window_swap_and_its_export_with_the_same_settings_are_the_same_pixels() {
        let (data, model, photos, target) = setup();
        let mut harness = window(data.path(), vec![target.clone()]);
        let id = model.id.clone();
        super::common::step_until(&mut harness, "screening and the library listing", |app| {
            super::common::all_screened(app, 1) && app.state().cast.item(&id).is_some()
        });
        harness.state_mut().state_mut().cast.current = Some(model.id.clone());
        harness.run_steps(2);

        // The Swap section on the photo, FaceShifter with the section's settings.
        harness.get_by_label(SWAP_ALL).click();
        harness.run_steps(2);
        super::common::step_until(&mut harness, "the swap", |app| {
            app.state().swap.job.is_none() && app.worker().is_idle()
        });
        let photo = photo_id(&harness);
        let interactive = std::sync::Arc::clone(
            &harness
                .state()
                .state()
                .current_edit(photo)
                .unwrap_or_else(|| panic!("no edit; toasts: {:?}", harness.state().state().toasts))
                .image,
        );
        assert!(
            *interactive != super::photo("astronaut.png"),
            "the section swapped nothing"
        );

        // The export of the same photo with the same recipe: the section's swap, the same model.
        super::common::assert_export_is(
            &mut harness,
            &photos.path().join("out"),
            |_| {},
            "Recipe: swap",
            &interactive,
            "the window's swap",
        );
    }

    fn photo_id(harness: &Harness<'_, FacecastApp>) -> facecast::jobs::PhotoId {
        harness.state().state().selected.expect("a photo is selected")
    }
}
