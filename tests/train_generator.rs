//! `facecast virtual train` as a user runs it, on the CPU at the fixture's 32 px: photos in,
//! checkpoints out, a killed run resumed, the result registered and generating faces.
//!
//! The base is the `stylegan2_train` fixture's `weights.pth`, a real `train.py` checkpoint at
//! reduced width (g, d, g_ema, both optimisers). The photos are crops of the MTCNN fixture's
//! astronaut, plus one photo without a face (the cat), which must be skipped.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{data_with_mtcnn, facecast, text};
use facecast::pipeline::generator_training::checkpoint::TrainingCheckpoint;
use facecast::weights::{Value, read_checkpoint};
use image::RgbImage;

fn ok(data: &Path, args: &[&str]) -> Output {
    let out = facecast(data, args);
    assert!(out.status.success(), "facecast {args:?} failed:\n{}", text(&out));
    out
}

/// Twenty crops of the astronaut (the face at different places and scales, some darker) and the
/// cat, small so that MTCNN is quick.
fn photos(dir: &Path) -> usize {
    let fixture = common::fixture_dir("mtcnn");
    let astronaut = image::open(fixture.join("astronaut.png"))
        .expect("astronaut")
        .to_rgb8();
    for i in 0..20u32 {
        let side = 300 + 8 * (i % 5);
        let (x, y) = (60 + 12 * (i % 4), 8 * (i / 4));
        let crop = image::imageops::crop_imm(&astronaut, x, y, side, side).to_image();
        let mut small: RgbImage =
            image::imageops::resize(&crop, 150, 150, image::imageops::FilterType::Triangle);
        let dim = 1.0 - 0.02 * (i % 6) as f32;
        for p in small.pixels_mut() {
            for c in p.0.iter_mut() {
                *c = (*c as f32 * dim) as u8;
            }
        }
        small
            .save(dir.join(format!("face_{i:02}.png")))
            .expect("write a photo");
    }
    let cat = image::open(fixture.join("chelsea.png"))
        .expect("chelsea")
        .to_rgb8();
    image::imageops::resize(&cat, 150, 100, image::imageops::FilterType::Triangle)
        .save(dir.join("cat.png"))
        .expect("write the cat");
    20
}

fn base() -> PathBuf {
    common::fixture_dir("stylegan2_train").join("weights.pth")
}

fn train_args<'a>(photos: &'a str, base: &'a str, steps: &'a str, name: &'a str) -> Vec<&'a str> {
    vec![
        "virtual",
        "train",
        "--photos",
        photos,
        "--from",
        base,
        "--steps",
        steps,
        "--batch",
        "2",
        "--checkpoint-every",
        "2",
        "--name",
        name,
        "--seed",
        "7",
        "--r1",
        "10",
        "--d-reg-every",
        "2",
        "--g-reg-every",
        "2",
    ]
}

fn checkpoints(run: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(run.join("checkpoint"))
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn g_ema(file: &Path) -> Vec<f32> {
    let ckpt = TrainingCheckpoint::read(file).unwrap_or_else(|e| panic!("{e}"));
    ckpt.g_ema.tensors.values().flat_map(|t| t.to_f32()).collect()
}

#[test]
fn train_checkpoints_resumes_a_killed_run_and_registers_a_generator_that_generates() {
    let data = data_with_mtcnn();
    let d = data.path();
    let photo_dir = d.join("photos");
    std::fs::create_dir_all(&photo_dir).expect("photos folder");
    let faces = photos(&photo_dir);
    let (p, b) = (photo_dir.to_str().expect("utf-8"), base());
    let b = b.to_str().expect("utf-8");

    // An uninterrupted run of 6 iterations, as the reference.
    let out = ok(d, &train_args(p, b, "6", "straight"));
    let said = text(&out);
    assert!(
        said.contains("cat.png"),
        "the faceless photo is listed as skipped: {said}"
    );
    let straight = d.join("training/straight");
    assert_eq!(
        checkpoints(&straight),
        vec!["000006.pt"],
        "older checkpoints are pruned"
    );

    // The same run killed once its first checkpoint is on disk, then resumed.
    let mut child = Command::new(env!("CARGO_BIN_EXE_facecast"))
        .env("FACECAST_DATA_DIR", d)
        .args(["--backend", "cpu"])
        .args(train_args(p, b, "6", "house"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start training");
    let run = d.join("training/house");
    let numbered = |names: Vec<String>| -> Vec<String> {
        names
            .into_iter()
            .filter(|n| n.len() == 9 && n.ends_with(".pt") && n[..6].bytes().all(|b| b.is_ascii_digit()))
            .collect()
    };
    while numbered(checkpoints(&run)).is_empty() {
        if let Some(status) = child.try_wait().expect("wait") {
            panic!("the run ended ({status}) before its first checkpoint");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    // Whatever the kill interrupted, every checkpoint under its final name is whole (a save in
    // progress is a hidden temporary file until it is complete).
    for name in numbered(checkpoints(&run)) {
        TrainingCheckpoint::read(&run.join("checkpoint").join(&name))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let out = ok(
        d,
        &[
            "virtual", "train", "--resume", "house", "--steps", "6", "--name", "house",
        ],
    );
    assert!(text(&out).contains("resuming house"), "{}", text(&out));
    assert_eq!(
        checkpoints(&run),
        vec!["000006.pt"],
        "older and half-written saves are removed"
    );

    // The final checkpoint reads back through the train.py reader, with the run's state.
    let last = run.join("checkpoint/000006.pt");
    let ckpt = TrainingCheckpoint::read(&last).unwrap_or_else(|e| panic!("{e}"));
    assert!(ckpt.g_optim.states.values().all(|s| s.step > 0));
    assert_eq!(ckpt.g_optim.params, ckpt.g_optim.states.len());
    let root = read_checkpoint(&last).expect("readable");
    let args = root.get("args").expect("args");
    assert_eq!(args.get("facecast_iteration"), Some(&Value::Int(6)));
    assert!(matches!(args.get("size"), Some(Value::Int(32))));

    // Resuming loses nothing: the resumed run ends where the uninterrupted one did.
    let (resumed, reference) = (g_ema(&last), g_ema(&straight.join("checkpoint/000006.pt")));
    let base_ema = g_ema(&base());
    assert_eq!(resumed.len(), reference.len());
    let diff = resumed
        .iter()
        .zip(&reference)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    let moved = resumed
        .iter()
        .zip(&base_ema)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(moved > 1e-4, "training changed g_ema (max change {moved})");
    assert!(diff < 1e-4, "resumed and uninterrupted runs differ by {diff}");

    // The lineage.
    let model: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(d.join("generators/house/model.json")).expect("model.json"),
    )
    .expect("JSON");
    assert_eq!(model["steps"], 6);
    assert_eq!(model["size"], 32);
    assert_eq!(model["batch"], 2);
    assert_eq!(model["seed"], 7);
    assert_eq!(model["photos"].as_array().map(Vec::len), Some(faces));
    assert!(
        model["photos"][0]["sha256"]
            .as_str()
            .is_some_and(|s| s.len() == 64)
    );
    assert!(
        model["skipped"][0]["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("cat.png"))
    );
    let base_sha = {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(std::fs::read(base()).expect("base")))
    };
    assert_eq!(model["base_sha256"], base_sha.as_str());

    // The registered generator makes faces through `virtual generate --generator`.
    let out_png = d.join("face.png");
    ok(
        d,
        &[
            "virtual",
            "generate",
            "--generator",
            "house",
            "--seed",
            "1",
            "--out",
            out_png.to_str().expect("utf-8"),
        ],
    );
    let face = image::open(&out_png).expect("a PNG").to_rgb8();
    assert_eq!(face.dimensions(), (32, 32));
    let out = facecast(
        d,
        &[
            "virtual",
            "generate",
            "--generator",
            "nobody",
            "--seed",
            "1",
            "--out",
            "x.png",
        ],
    );
    assert!(
        !out.status.success() && text(&out).contains("house"),
        "{}",
        text(&out)
    );
}
