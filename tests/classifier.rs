//! The face/no-face classifier: MobileNetV2 config inference, a short fine-tune on face crops
//! against crops without faces cut from the shared photos (starting from the fixture's reduced
//! MobileNetV2 weights so it is fast), its reproducibility, and the CLI as a user runs it.

mod common;

use common::{facecast, text};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use burn::tensor::Device;
use facecast::io::{DecodeLimits, load_photo};
use facecast::nets::mobilenetv2::MobileNetV2Config;
use facecast::pipeline::classifier::train::{TrainSettings, photos_from_folders, train};
use facecast::pipeline::classifier::{FaceClassifier, base_from_file, read_info, save_checkpoint};
use facecast::pipeline::detect::photo::{DetectSettings, detect_photo};
use facecast::weights::models::{key_list_shapes, load_mtcnn, shapes};
use facecast::weights::read_checkpoint;
use image::RgbImage;

const SIDE: u32 = 64;

#[test]
fn mobilenetv2_configs_come_from_the_shapes() {
    let released =
        MobileNetV2Config::infer(&key_list_shapes("mobilenetv2-imagenet").expect("keys")).expect("infer");
    assert_eq!(
        released,
        MobileNetV2Config::default(),
        "the ImageNet checkpoint: width 1.0, 1000 classes"
    );
    let dir = common::fixture_dir("mobilenetv2");
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("meta.json")).expect("meta.json")).expect("json");
    let want = MobileNetV2Config::from_json(&meta["config"]).expect("meta config");
    let tensors = read_checkpoint(&dir.join("weights.pth"))
        .expect("read")
        .flatten_tensors();
    let got = MobileNetV2Config::infer(&shapes(&tensors)).expect("infer");
    assert_eq!(
        (got.num_classes, got.width_mult),
        (want.num_classes, want.width_mult)
    );
    assert_eq!(got.weight_shapes(), want.weight_shapes());
    let err =
        MobileNetV2Config::infer(&key_list_shapes("beautygan").expect("keys")).expect_err("not MobileNetV2");
    assert!(err.to_string().contains("classifier.1.weight"), "{err}");
}

/// `faces/` and `no_faces/` of 64-px crops cut from the shared photos: every detected face at a few
/// framings, and pieces of the photos (the cat included) that touch no face.
fn dataset() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // Inside the target folder, made afresh by each run, so nothing is left in /tmp.
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("classifier-dataset");
        let _ = std::fs::remove_dir_all(&root);
        let (faces_dir, others_dir) = (root.join("faces"), root.join("no_faces"));
        std::fs::create_dir_all(&faces_dir).expect("mkdir");
        std::fs::create_dir_all(&others_dir).expect("mkdir");
        let device = Device::flex();
        let nets = load_mtcnn(&common::fixture_dir("mtcnn"), &device).expect("MTCNN");
        let (mut n_face, mut n_other) = (0, 0);
        for name in ["astronaut.png", "camera.png", "montage.png", "chelsea.png"] {
            let img = load_photo(&common::fixture_dir("mtcnn").join(name), &DecodeLimits::default())
                .expect("photo")
                .rgb;
            let boxes: Vec<[f32; 4]> = detect_photo(&nets, &img, &DetectSettings::default(), &device)
                .expect("detect")
                .faces
                .iter()
                .filter(|f| f.score >= 0.7)
                .map(|f| f.bbox)
                .collect();
            for b in &boxes {
                let (cx, cy) = ((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0);
                let side = (b[2] - b[0]).max(b[3] - b[1]);
                for (scale, dx, dy) in [
                    (1.1, 0.0, 0.0),
                    (1.3, 0.0, 0.0),
                    (1.5, 0.0, 0.0),
                    (1.2, -0.1, 0.0),
                    (1.2, 0.1, 0.0),
                    (1.2, 0.0, -0.1),
                ] {
                    let s = side * scale;
                    let crop = square(&img, cx + dx * side - s / 2.0, cy + dy * side - s / 2.0, s);
                    crop.save(faces_dir.join(format!("face{n_face:02}.png")))
                        .expect("save");
                    n_face += 1;
                }
            }
            // A grid of squares that keep clear of every face (with a margin).
            let (w, h) = (img.width() as f32, img.height() as f32);
            for s in [96.0f32, 150.0] {
                let mut y = 0.0;
                while y + s <= h {
                    let mut x = 0.0;
                    while x + s <= w {
                        let clear = boxes.iter().all(|b| {
                            let m = 0.3 * (b[2] - b[0]);
                            x + s < b[0] - m || x > b[2] + m || y + s < b[1] - m || y > b[3] + m
                        });
                        if clear && n_other < 48 {
                            square(&img, x, y, s)
                                .save(others_dir.join(format!("other{n_other:02}.png")))
                                .expect("save");
                            n_other += 1;
                        }
                        x += s * 0.75;
                    }
                    y += s * 0.75;
                }
            }
        }
        assert!(
            n_face >= 30 && n_other >= 30,
            "{n_face} face crops, {n_other} others"
        );
        root
    })
}

/// The `s`-pixel square at (x, y), clamped to the photo, resized to SIDE.
fn square(img: &RgbImage, x: f32, y: f32, s: f32) -> RgbImage {
    let x0 = x.max(0.0) as u32;
    let y0 = y.max(0.0) as u32;
    let x1 = ((x + s) as u32).min(img.width());
    let y1 = ((y + s) as u32).min(img.height());
    let crop = image::imageops::crop_imm(img, x0, y0, x1 - x0, y1 - y0).to_image();
    image::imageops::resize(&crop, SIDE, SIDE, image::imageops::FilterType::Triangle)
}

fn settings(seed: u64, epochs: usize) -> TrainSettings {
    TrainSettings {
        epochs,
        seed,
        val_fraction: 0.25,
        input_size: SIDE,
        ..TrainSettings::default()
    }
}

#[test]
fn a_short_fine_tune_learns_faces_and_the_seed_reproduces_it() {
    let data = dataset();
    let photos = photos_from_folders(&data.join("faces"), &data.join("no_faces")).expect("folders");
    let base = base_from_file(&common::fixture_dir("mobilenetv2").join("weights.pth")).expect("base");
    assert_eq!(base.info.width_mult, 0.35);
    let device = Device::flex();
    let run = |settings: TrainSettings| {
        train(
            &base.tensors,
            &base.path,
            base.info.clone(),
            &photos,
            &settings,
            &device,
            &mut |_| {},
            &|| false,
        )
        .expect("training runs")
    };
    // The fixture's weights are random, so the first epochs are near chance; by ten the crops
    // are told apart (seeds 1 to 8 all reach 95% or more on these 21 held-out crops).
    let first = run(settings(11, 10));
    for e in &first.info.training.history {
        eprintln!(
            "epoch {}: train loss {:.3} acc {:.2}, val loss {:.3} acc {:.2}",
            e.epoch, e.train_loss, e.train_accuracy, e.val_loss, e.val_accuracy
        );
    }
    let accuracy = first.info.val_accuracy().expect("a kept epoch");
    let val: usize = first.info.training.val_counts.iter().sum();
    assert!(val >= 14, "{val} validation crops");
    assert!(
        accuracy >= 0.85,
        "validation accuracy {accuracy} is not well above chance (0.5)"
    );

    let (a, b) = (run(settings(4, 3)), run(settings(4, 3)));
    assert_eq!(
        a.info.training.history, b.info.training.history,
        "same seed, same history"
    );
    assert_eq!(a.tensors, b.tensors, "same seed, same weights");
    let c = run(settings(5, 3));
    assert_ne!(a.tensors, c.tensors, "another seed trains another classifier");

    // The kept weights load back through the checkpoint format and answer the same.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("face.safetensors");
    save_checkpoint(&file, &first.tensors, &first.info).expect("save");
    assert_eq!(read_info(&file).expect("info"), first.info);
    let classifier = FaceClassifier::load(&file, &device).expect("load");
    let face = image::open(data.join("faces/face00.png"))
        .expect("face")
        .into_rgb8();
    let other = image::open(data.join("no_faces/other00.png"))
        .expect("other")
        .into_rgb8();
    let p = classifier
        .face_probability(&[&face, &other], &device)
        .expect("classify");
    assert!(p.iter().all(|p| (0.0..=1.0).contains(p)), "{p:?}");
    // A plain MobileNetV2 is not a face classifier.
    let plain = FaceClassifier::load(&common::fixture_dir("mobilenetv2").join("weights.pth"), &device);
    assert!(plain.is_err());
}

#[test]
fn cli_trains_installs_and_classifies() {
    let data = tempfile::tempdir().expect("tempdir");
    let d = data.path();
    let s = |p: &Path| p.to_str().expect("utf-8 path").to_string();
    let set = dataset();
    let (faces, others) = (s(&set.join("faces")), s(&set.join("no_faces")));

    // Without a starting checkpoint the error says what to install.
    let out = facecast(d, &["train-classifier", "--faces", &faces, "--no-faces", &others]);
    assert!(!out.status.success());
    assert!(text(&out).contains("mobilenetv2-imagenet-v2"), "{}", text(&out));

    let weights = s(&common::fixture_dir("mobilenetv2").join("weights.pth"));
    let out = facecast(
        d,
        &[
            "weights",
            "import",
            "mobilenetv2-imagenet-v2",
            &weights,
            "--reduced",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));

    let empty = tempfile::tempdir().expect("tempdir");
    let out = facecast(
        d,
        &[
            "train-classifier",
            "--faces",
            &s(empty.path()),
            "--no-faces",
            &others,
        ],
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("holds no photos"), "{}", text(&out));

    let copy = d.join("copy.safetensors");
    let out = facecast(
        d,
        &[
            "train-classifier",
            "--faces",
            &faces,
            "--no-faces",
            &others,
            "--epochs",
            "2",
            "--seed",
            "3",
            "--size",
            "64",
            "--out",
            &s(&copy),
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("epoch 1/2") && stderr.contains("epoch 2/2"),
        "{stderr}"
    );
    assert!(stderr.contains("reduced-width test weights"), "{stderr}");
    let record: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON record");
    assert_eq!(record["training"]["history"].as_array().map(Vec::len), Some(2));
    assert_eq!(record["base"]["reduced"], true);
    assert!(copy.is_file());

    let list = facecast(d, &["weights", "list", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&list.stdout).expect("list JSON");
    let entry = list["models"]
        .as_array()
        .expect("models")
        .iter()
        .find(|m| m["id"] == "mobilenetv2-face")
        .expect("the classifier is in the list")
        .clone();
    assert!(matches!(entry["status"].as_str(), Some("unverified")), "{entry}");

    let out = facecast(
        d,
        &[
            "classify",
            "--json",
            &s(&set.join("faces/face00.png")),
            &s(&set.join("no_faces/other00.png")),
            &s(&d.join("missing.png")),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "one photo is missing: {}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let images = report["images"].as_array().expect("images");
    assert_eq!(images.len(), 3);
    assert!(images[0]["face_probability"].as_f64().is_some(), "{report}");
    assert!(
        images[2]["error"]
            .as_str()
            .is_some_and(|e| e.contains("missing.png")),
        "{report}"
    );

    // `facecast screen` adds the installed classifier's second opinion to its lists; without a
    // classifier the column is not there.
    let mtcnn = common::fixture_dir("mtcnn");
    let bare = tempfile::tempdir().expect("tempdir");
    let screen_header = |data: &Path| {
        let out = facecast(data, &["weights", "import", "mtcnn", &s(&mtcnn)]);
        assert!(out.status.success(), "{}", text(&out));
        let lists = data.join("lists");
        let out = facecast(
            data,
            &[
                "screen",
                "--out",
                &s(&lists),
                &s(&mtcnn.join("astronaut.png")),
                &s(&mtcnn.join("chelsea.png")),
            ],
        );
        assert!(out.status.success(), "{}", text(&out));
        let faces = std::fs::read_to_string(lists.join("faces.csv")).expect("faces.csv");
        let no_faces = std::fs::read_to_string(lists.join("no_faces.csv")).expect("no_faces.csv");
        (faces, no_faces)
    };
    let (faces, no_faces) = screen_header(d);
    let mut lines = faces.lines();
    assert_eq!(
        lines.next(),
        Some("path,face_count,best_score,classifier_face_probability,reason")
    );
    let astronaut: Vec<&str> = lines.next().expect("the astronaut's row").split(',').collect();
    assert!(astronaut[0].ends_with("astronaut.png"), "{faces}");
    let p: f64 = astronaut[3].parse().unwrap_or_else(|e| panic!("{e}: {faces}"));
    assert!((0.0..=1.0).contains(&p), "{faces}");
    assert!(
        no_faces.lines().nth(1).is_some_and(|l| l.contains("chelsea.png")),
        "{no_faces}"
    );
    let (faces, _) = screen_header(bare.path());
    assert_eq!(faces.lines().next(), Some("path,face_count,best_score,reason"));
}

#[test]
fn the_library_trains_from_marks_and_shows_the_second_opinion() {
    use egui_kittest::kittest::Queryable;
    use facecast::app::classifier_ui::{FaceMark, Opinion, SECOND_OPINION_LABEL, TRAIN_LABEL};
    use facecast::app::{FacecastApp, LibraryFilter, PhotoStatus, StartOptions};
    use facecast::weights::store::{Import, WeightsStore};

    let data = tempfile::tempdir().expect("tempdir");
    let store = WeightsStore::open(Some(data.path().to_path_buf())).expect("store");
    store
        .import_with(
            "mobilenetv2-imagenet-v2",
            &[common::fixture_dir("mobilenetv2").join("weights.pth")],
            Import::Reduced,
        )
        .expect("import the reduced MobileNetV2");
    let set = dataset();
    let photos: Vec<PathBuf> = ["faces/face00.png", "faces/face07.png", "faces/face13.png"]
        .iter()
        .chain(&[
            "no_faces/other00.png",
            "no_faces/other05.png",
            "no_faces/other11.png",
        ])
        .map(|p| set.join(p))
        .collect();
    let start = StartOptions {
        open: photos.clone(),
        data_dir: Some(data.path().to_path_buf()),
        ..StartOptions::default()
    };
    let mut harness = egui_kittest::Harness::builder()
        .with_size([1280.0, 900.0])
        .build_eframe(|cc| FacecastApp::new(&cc.egui_ctx, facecast::compute::Compute::cpu(), start));
    common::step_until(&mut harness, "loading the photos", |app| {
        let s = app.state();
        s.library.len() == 6
            && s.library.count(|st| matches!(st, PhotoStatus::Loaded { .. })) == 6
            && s.classifier.checked
    });
    assert!(
        harness.query_by_label(TRAIN_LABEL).is_none(),
        "nothing marked, no training offered"
    );
    // Mark them as the operator would from each row's context menu.
    let ids: Vec<_> = harness
        .state()
        .state()
        .library
        .entries()
        .iter()
        .map(|e| (e.id, e.path.clone()))
        .collect();
    for (id, path) in ids {
        let mark = if path.to_string_lossy().contains("/faces/") {
            FaceMark::Face
        } else {
            FaceMark::NoFace
        };
        if let Some(entry) = harness.state_mut().state_mut().library.get_mut(id) {
            entry.mark = Some(mark);
        }
    }
    harness.run_steps(2);
    harness.get_by_label("Marked: 3 face, 3 no face");
    harness.get_by_label(TRAIN_LABEL).click();
    common::step_until(&mut harness, "training and the second opinions", |app| {
        let s = app.state();
        s.classifier.installed.is_some()
            && s.classifier.training.is_none()
            && s.library
                .entries()
                .iter()
                .all(|e| matches!(e.opinion, Some(Opinion::Face(_))))
            && app.worker().is_idle()
    });
    let state = harness.state().state();
    assert!(
        state.classifier.second_opinion,
        "a fresh classifier gives its opinions at once"
    );
    let summary = state.classifier.installed.clone().expect("installed");
    assert_eq!(summary.photos, 6);
    assert!(
        summary.reduced_base,
        "trained from test weights, and the app knows it"
    );
    harness.get_by_label(SECOND_OPINION_LABEL);
    for entry in state.library.entries() {
        let suffix = facecast::app::classifier_ui::row_suffix(entry);
        assert!(suffix.contains("classifier:"), "{}: {suffix}", entry.name);
    }
    // Detection has not run (no MTCNN here), so nothing can disagree with it yet.
    harness
        .get_by_label(LibraryFilter::OpinionsDiffer.label())
        .click();
    harness.run_steps(2);
    assert_eq!(harness.state().state().filter, LibraryFilter::OpinionsDiffer);
    assert!(harness.state().state().visible_entries().is_empty());
    assert!(
        store.require("mobilenetv2-face").is_ok(),
        "the classifier is installed in the store"
    );
}
