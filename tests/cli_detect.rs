//! `facecast detect` as a user runs it, on the shared photos and on broken files.

mod common;

use common::{data_with_mtcnn, facecast};

#[test]
fn json_report_lists_every_photo_with_its_faces_largest_first() {
    let data = data_with_mtcnn();
    let dir = common::fixture_dir("mtcnn");
    let out = facecast(data.path(), &["detect", "--json", dir.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let images = report["images"].as_array().expect("images");
    let by_name = |name: &str| {
        images
            .iter()
            .find(|i| i["path"].as_str().is_some_and(|p| p.ends_with(name)))
            .unwrap_or_else(|| panic!("{name} missing from {report}"))
    };
    let faces = |name: &str| by_name(name)["faces"].as_array().expect("faces").clone();
    assert_eq!(faces("astronaut.png").len(), 1);
    assert_eq!(faces("camera.png").len(), 1);
    assert_eq!(faces("chelsea.png").len(), 0, "the cat is not a face");
    let montage = faces("montage.png");
    assert_eq!(montage.len(), 4);
    // Boxes are MTCNN's, unclipped: the face cut by the left border starts left of 0.
    assert!(montage[0]["box"][0].as_f64().expect("x1") < 0.0);
    let area = |f: &serde_json::Value| {
        let b = f["box"].as_array().expect("box");
        (b[2].as_f64().unwrap_or(0.0) - b[0].as_f64().unwrap_or(0.0))
            * (b[3].as_f64().unwrap_or(0.0) - b[1].as_f64().unwrap_or(0.0))
    };
    assert!(
        montage.windows(2).all(|w| area(&w[0]) >= area(&w[1])),
        "not largest first"
    );
    for f in &montage {
        assert_eq!(f["landmarks"].as_array().expect("landmarks").len(), 5);
        assert!(f["score"].as_f64().expect("score") >= 0.7);
    }
    let astronaut = by_name("astronaut.png");
    assert_eq!(
        (astronaut["width"].as_u64(), astronaut["height"].as_u64()),
        (Some(512), Some(512))
    );
    assert!(astronaut["error"].is_null());
}

#[test]
fn unreadable_files_get_their_reason_and_the_others_still_run() {
    let data = data_with_mtcnn();
    let tmp = tempfile::tempdir().expect("tempdir");
    let text = tmp.path().join("notes.jpg");
    std::fs::write(&text, b"not a photo").expect("write");
    let photo = common::fixture_dir("mtcnn").join("astronaut.png");
    let out = facecast(
        data.path(),
        &[
            "detect",
            "--json",
            text.to_str().expect("utf-8"),
            photo.to_str().expect("utf-8"),
            "/no/such/photo.png",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "exit status when some files are unreadable"
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let images = report["images"].as_array().expect("images");
    assert_eq!(images.len(), 3);
    assert!(images[0]["error"].as_str().expect("error").contains("notes.jpg"));
    assert_eq!(images[1]["faces"].as_array().expect("faces").len(), 1);
    assert!(images[2]["error"].as_str().expect("error").contains("photo.png"));
}

#[test]
fn min_score_filters_the_reported_faces() {
    let data = data_with_mtcnn();
    let photo = common::fixture_dir("mtcnn").join("montage.png");
    let out = facecast(
        data.path(),
        &[
            "detect",
            "--json",
            "--min-score",
            "1.01",
            photo.to_str().expect("utf-8"),
        ],
    );
    assert!(out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(report["images"][0]["faces"].as_array().expect("faces").len(), 0);
}

#[test]
fn a_big_photo_is_detected_on_a_capped_copy_and_mapped_back() {
    let data = data_with_mtcnn();
    // The astronaut scaled 6x into a 3072×3072 photo: the face must come back at full resolution.
    let src = image::open(common::fixture_dir("mtcnn").join("astronaut.png"))
        .expect("astronaut")
        .to_rgb8();
    let big = image::imageops::resize(&src, 3072, 3072, image::imageops::FilterType::Triangle);
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("big.png");
    big.save(&path).expect("save");
    let out = facecast(data.path(), &["detect", "--json", path.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let faces = report["images"][0]["faces"].as_array().expect("faces").clone();
    assert_eq!(faces.len(), 1);
    // At 512 px the face box is about [181, 62, 268, 172]; ×6 within a few percent.
    let b: Vec<f64> = faces[0]["box"]
        .as_array()
        .expect("box")
        .iter()
        .map(|v| v.as_f64().unwrap_or(0.0))
        .collect();
    for (got, want) in b.iter().zip([181.0 * 6.0, 62.0 * 6.0, 268.0 * 6.0, 172.0 * 6.0]) {
        assert!((got - want).abs() < 40.0, "box {b:?}");
    }
}

#[test]
fn missing_weights_say_how_to_install_them() {
    let data = tempfile::tempdir().expect("tempdir");
    let photo = common::fixture_dir("mtcnn").join("astronaut.png");
    let out = facecast(data.path(), &["detect", photo.to_str().expect("utf-8")]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("facecast weights install mtcnn"), "{err}");
}
