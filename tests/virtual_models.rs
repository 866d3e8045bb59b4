//! Virtual models end to end: the StyleGAN2 config read off checkpoints, seeded generation with
//! the fixture's reduced weights, the `facecast virtual` commands as a user runs them, and the
//! Cast panel in the real window (egui_kittest).

mod common;

use common::{facecast, text};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use facecast::app::cast_panel::{CAST_WINDOW, GeneratorStatus};
use facecast::app::{FacecastApp, StartOptions};
use facecast::cast::{Latent, NoiseSpec, VirtualModelLibrary};
use facecast::compute::Compute;
use facecast::nets::stylegan2::StyleGan2Config;
use facecast::nets::stylegan2::infer::{Shapes, config_from_shapes};
use facecast::pipeline::generate::{GenerateSettings, NoiseChoice, generate, render, z_from_seed};
use facecast::weights::models::{STYLEGAN2_ID, load_stylegan2_file};
use facecast::weights::store::{Import, WeightsStore};

fn stylegan2_weights() -> PathBuf {
    common::fixture_dir("stylegan2").join("weights.pth")
}

#[test]
fn the_released_checkpoints_shapes_give_the_ffhq_config() {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("models/keys/stylegan2-ffhq.txt"))
            .expect("the released key list");
    let mut shapes = Shapes::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let mut fields = line.split('\t');
        let key = fields.next().unwrap();
        let shape: Vec<usize> = fields
            .next()
            .unwrap()
            .trim_matches(['[', ']'])
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|s| s.trim().parse().unwrap())
            .collect();
        if let Some(local) = key.strip_prefix("g_ema.") {
            shapes.insert(local.to_string(), shape);
        }
    }
    assert_eq!(config_from_shapes(&shapes).unwrap(), StyleGan2Config::ffhq_1024());
}

#[test]
fn the_fixture_weights_give_the_fixture_config_and_a_reproducible_face() {
    let path = stylegan2_weights();
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path.with_file_name("meta.json")).unwrap()).unwrap();
    let device = Compute::cpu().device;
    let loaded = load_stylegan2_file(&path, &device).unwrap();
    assert_eq!(
        loaded.config,
        StyleGan2Config::from_json(&meta["config"]).unwrap()
    );
    assert!(loaded.reduced);
    let config = &loaded.config;
    assert_eq!(
        config.channels,
        BTreeMap::from([(4, 32), (8, 32), (16, 32), (32, 24), (64, 16)])
    );

    let settings = |seed, truncation, noise| GenerateSettings {
        seed,
        truncation,
        noise,
    };
    let a = generate(&loaded.model, &settings(3, 0.7, NoiseChoice::Checkpoint)).unwrap();
    let b = generate(&loaded.model, &settings(3, 0.7, NoiseChoice::Checkpoint)).unwrap();
    assert_eq!(a.image, b.image, "the same seed gives the same pixels");
    assert_eq!(a.latent, b.latent);
    assert_eq!(a.image.dimensions(), (64, 64));
    assert_eq!(a.noise, NoiseSpec::Checkpoint);
    let (n, d) = (config.n_latent(), config.style_dim);
    assert_eq!((a.latent.n_latent, a.latent.style_dim), (n, d));
    // One w repeated over every W+ row.
    let rows: Vec<&[f32]> = a.latent.wplus.chunks(d).collect();
    assert!(rows.iter().all(|r| *r == rows[0]));
    let other = generate(&loaded.model, &settings(4, 0.7, NoiseChoice::Checkpoint)).unwrap();
    assert_ne!(other.image, a.image);
    assert_ne!(other.latent, a.latent);
    let untruncated = generate(&loaded.model, &settings(3, 1.0, NoiseChoice::Checkpoint)).unwrap();
    assert_ne!(untruncated.latent, a.latent);

    // Seeded noise is reproducible too, and differs from the checkpoint's.
    let s1 = generate(&loaded.model, &settings(3, 0.7, NoiseChoice::Seeded)).unwrap();
    let s2 = generate(&loaded.model, &settings(3, 0.7, NoiseChoice::Seeded)).unwrap();
    assert_eq!(s1.image, s2.image);
    assert_eq!(s1.noise, NoiseSpec::Seeded { seed: 3 });
    assert_eq!(s1.latent, a.latent, "noise does not touch the latent");
    assert_ne!(s1.image, a.image);

    // The saved latent gives the image back, with either noise.
    assert_eq!(render(&loaded.model, &a.latent, a.noise).unwrap(), a.image);
    assert_eq!(render(&loaded.model, &s1.latent, s1.noise).unwrap(), s1.image);
    // A latent of another generator is refused with a reason.
    let wrong = Latent::new(vec![0.0; 18 * 512], 18, 512).unwrap();
    let err = render(&loaded.model, &wrong, NoiseSpec::Checkpoint)
        .unwrap_err()
        .to_string();
    assert!(err.contains("another StyleGAN2"), "{err}");

    // z is numpy's RandomState(seed).randn: RandomState(0)'s first draws.
    let (z, _) = z_from_seed(0, 3);
    assert!(
        (z[0] - 1.764_052_3).abs() < 1e-6 && (z[2] - 0.978_738).abs() < 1e-6,
        "{z:?}"
    );
}

fn ok(data: &Path, args: &[&str]) -> Output {
    let out = facecast(data, args);
    assert!(out.status.success(), "facecast {args:?} failed:\n{}", text(&out));
    out
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", text(out)))
}

#[test]
fn the_virtual_commands_generate_list_import_and_manage_models() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    let weights = stylegan2_weights();

    // Without the weights the command says what is missing and how to get it.
    let out = facecast(d, &["virtual", "generate", "--seed", "3", "--name", "Ava"]);
    assert!(!out.status.success());
    let said = text(&out);
    assert!(
        said.contains("stylegan2-ffhq") && said.contains("weights install"),
        "{said}"
    );

    ok(
        d,
        &[
            "weights",
            "import",
            "stylegan2-ffhq",
            weights.to_str().unwrap(),
            "--reduced",
        ],
    );
    let a_png = d.join("a.png");
    let out = ok(
        d,
        &[
            "virtual",
            "generate",
            "--seed",
            "3",
            "--name",
            "Ava",
            "--out",
            a_png.to_str().unwrap(),
            "--json",
        ],
    );
    let report = json(&out);
    assert_eq!(report["seed"], 3);
    assert_eq!(report["truncation"], 0.7);
    assert_eq!(report["reduced_weights"], true);
    assert_eq!(report["noise"]["kind"], "checkpoint");
    assert_eq!(report["model"]["name"], "Ava");
    let face_path = PathBuf::from(report["model"]["face"].as_str().unwrap());

    // The same seed gives identical pixels again; another seed does not.
    let b_png = d.join("b.png");
    ok(
        d,
        &[
            "virtual",
            "generate",
            "--seed",
            "3",
            "--out",
            b_png.to_str().unwrap(),
        ],
    );
    let a = image::open(&a_png).unwrap().into_rgb8();
    assert_eq!(a, image::open(&b_png).unwrap().into_rgb8());
    assert_eq!(a, image::open(&face_path).unwrap().into_rgb8());
    let c_png = d.join("c.png");
    ok(
        d,
        &[
            "virtual",
            "generate",
            "--seed",
            "4",
            "--out",
            c_png.to_str().unwrap(),
        ],
    );
    assert_ne!(a, image::open(&c_png).unwrap().into_rgb8());

    // A taken name is refused before any work, in any case.
    let out = facecast(d, &["virtual", "generate", "--seed", "5", "--name", "ava"]);
    assert!(
        !out.status.success() && text(&out).contains("already exists"),
        "{}",
        text(&out)
    );
    // Keeping nothing is refused.
    assert!(
        !facecast(d, &["virtual", "generate", "--seed", "5"])
            .status
            .success()
    );

    let list = json(&ok(d, &["virtual", "list", "--json"]));
    let models = list["models"].as_array().unwrap();
    assert_eq!(models.len(), 1);
    assert_eq!(models[0]["name"], "Ava");
    assert_eq!(models[0]["summary"], "generated, seed 3, ψ 0.70 (test weights)");
    assert_eq!(models[0]["origin"]["generator"]["size"], 64);
    assert_eq!(models[0]["crops"].as_array().unwrap().len(), 1);
    // Without MTCNN the generated face is cut at the FFHQ positions, and the crop is 256×256.
    let library = VirtualModelLibrary::open(d);
    let ava = library.find("Ava").unwrap();
    assert_eq!(
        ava.face.landmarks_from,
        facecast::cast::LandmarkSource::FfhqTemplate
    );
    assert_eq!(ava.aligned_crops().unwrap()[0].dimensions(), (256, 256));

    // Importing needs MTCNN; then the astronaut becomes a model and the cat is refused by name.
    let mtcnn = common::fixture_dir("mtcnn");
    let astronaut = mtcnn.join("astronaut.png");
    let out = facecast(d, &["virtual", "import", "Astro", astronaut.to_str().unwrap()]);
    assert!(
        !out.status.success() && text(&out).contains("MTCNN"),
        "{}",
        text(&out)
    );
    ok(d, &["weights", "import", "mtcnn", mtcnn.to_str().unwrap()]);
    let model = json(&ok(
        d,
        &[
            "virtual",
            "import",
            "Astro Ñandú",
            astronaut.to_str().unwrap(),
            "--json",
        ],
    ));
    assert_eq!(model["name"], "Astro Ñandú");
    assert_eq!(model["origin"]["kind"], "imported");
    assert_eq!(model["origin"]["sources"][0]["file_name"], "astronaut.png");
    assert_eq!(model["origin"]["sources"][0]["faces_found"], 1);
    let astro = library.find("astro ñandú").unwrap();
    assert_eq!(astro.aligned_crops().unwrap().len(), 1);
    assert_eq!(astro.face_image().unwrap().dimensions(), (512, 512));
    let cat = mtcnn.join("chelsea.png");
    let out = facecast(d, &["virtual", "import", "Cat", cat.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("chelsea.png") && text(&out).contains("no face"),
        "{}",
        text(&out)
    );
    let out = facecast(
        d,
        &[
            "virtual",
            "import",
            "Two",
            astronaut.to_str().unwrap(),
            "--face",
            "2",
        ],
    );
    assert!(
        !out.status.success() && text(&out).contains("no face 2"),
        "{}",
        text(&out)
    );

    // Rename, duplicate, delete.
    ok(d, &["virtual", "rename", "ava", "Ava Summer"]);
    ok(d, &["virtual", "duplicate", "Ava Summer"]);
    ok(d, &["virtual", "delete", "Astro Ñandú"]);
    let list = json(&ok(d, &["virtual", "list", "--json"]));
    let names: Vec<&str> = list["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Ava Summer", "Ava Summer (copy)"]);

    // A damaged entry is listed as such and the rest still works.
    let copy = library.find("Ava Summer (copy)").unwrap();
    std::fs::write(copy.dir().join("model.json"), "{").unwrap();
    let list = json(&ok(d, &["virtual", "list", "--json"]));
    assert_eq!(list["models"].as_array().unwrap().len(), 1);
    assert_eq!(list["damaged"][0]["id"], copy.id.as_str());
    assert!(
        list["damaged"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("not valid JSON")
    );
    let plain = text(&ok(d, &["virtual", "list"]));
    assert!(
        plain.contains("Ava Summer") && plain.contains("damaged:"),
        "{plain}"
    );
}

/// Steps until `done` holds and the worker is idle (bounded).
fn settle(harness: &mut Harness<'_, FacecastApp>, what: &str, done: impl Fn(&FacecastApp) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        harness.step();
        let app = harness.state();
        if app.worker().is_idle() && done(app) {
            harness.run_steps(2);
            return;
        }
        if Instant::now() > deadline {
            let state = app.state();
            let toasts: Vec<&str> = state.toasts.items().iter().map(|t| t.text.as_str()).collect();
            let names: Vec<&str> = state.cast.library.iter().map(|i| i.model.name.as_str()).collect();
            panic!("{what} did not happen within 120 s; toasts {toasts:?}, library {names:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn app(data: &Path) -> Harness<'static, FacecastApp> {
    let start = StartOptions {
        data_dir: Some(data.to_path_buf()),
        ..Default::default()
    };
    Harness::builder()
        .with_size([1400.0, 900.0])
        .build_eframe(move |cc| FacecastApp::new(&cc.egui_ctx, Compute::cpu(), start))
}

#[test]
fn the_cast_panel_generates_saves_and_lists_a_virtual_model() {
    let data = tempfile::tempdir().unwrap();
    let store = WeightsStore::open(Some(data.path().to_path_buf())).unwrap();
    store
        .import_with(STYLEGAN2_ID, &[stylegan2_weights()], Import::Reduced)
        .unwrap();

    let mut harness = app(data.path());
    settle(&mut harness, "the first listing", |app| app.state().cast.listed);
    harness.get_by_label("No virtual model yet");
    harness.get_by_label("Generate…").click();
    harness.run_steps(3);
    settle(&mut harness, "the weights check", |app| {
        *app.cast_generator() != GeneratorStatus::Checking
    });
    harness.get_by_label_contains("StyleGAN2 FFHQ: ready");
    harness.get_by_label("Generate").click();
    settle(&mut harness, "generation", |app| {
        let c = &app.state().cast;
        !c.is_generating() && !c.candidates.is_empty() && c.candidates.iter().all(Option::is_some)
    });
    let seeds: Vec<u32> = harness
        .state()
        .state()
        .cast
        .candidates
        .iter()
        .map(|c| c.as_ref().unwrap().seed)
        .collect();
    assert_eq!(seeds, (0..8).collect::<Vec<u32>>());

    harness.get_by_label("Seed 3").click();
    harness.run_steps(2);
    assert_eq!(harness.state().state().cast.enlarged, Some(3));
    // Typing goes to the focused field: focus the name field, then type.
    harness.get_by_role(egui::accesskit::Role::TextInput).focus();
    harness.run_steps(2);
    harness
        .get_by_role(egui::accesskit::Role::TextInput)
        .type_text("Ava");
    harness.run_steps(2);
    assert_eq!(
        harness
            .get_by_role(egui::accesskit::Role::TextInput)
            .value()
            .as_deref(),
        Some("Ava")
    );
    harness.get_by_label("Save to library").click();
    settle(&mut harness, "saving", |app| {
        app.state().cast.library.iter().any(|i| i.model.name == "Ava")
    });

    let state = harness.state().state();
    let ava = state
        .cast
        .current_model()
        .expect("the first saved model is the current one");
    assert_eq!(ava.name, "Ava");
    assert_eq!(ava.generated().unwrap().seed, Some(3));
    harness.get_by_label("Swaps use this face");
    assert!(harness.query_all_by_label("Ava").count() >= 1);
    // It is on disk, with the candidate's pixels.
    let lib = VirtualModelLibrary::open(data.path());
    let saved = lib.find("ava").unwrap();
    let candidate = state.cast.candidates[3].as_ref().unwrap();
    assert_eq!(saved.face_image().unwrap(), *candidate.image);
}

#[test]
fn without_the_weights_the_cast_window_says_what_is_missing() {
    let data = tempfile::tempdir().unwrap();
    let mut harness = app(data.path());
    settle(&mut harness, "the first listing", |app| app.state().cast.listed);
    harness.get_by_label("Generate…").click();
    harness.run_steps(3);
    settle(&mut harness, "the weights check", |app| {
        *app.cast_generator() != GeneratorStatus::Checking
    });
    // Other steps offer their own Install buttons: these are the Cast window's.
    let window = harness.get_by_role_and_label(egui::accesskit::Role::Window, CAST_WINDOW);
    window.get_by_label("Generating faces needs the StyleGAN2 FFHQ weights");
    window.get_by_label("Install");
    window.get_by_label("Locate file…");
    window.get_by_label_contains("Importing a face photo works without it");
}
