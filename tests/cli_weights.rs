//! `facecast weights ...` as a user runs it: the built binary, a fresh data directory, the real MTCNN
//! files from the shared fixtures (`FACECAST_FIXTURES`, default `../shared/fixtures`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use facecast::weights::manifest::Manifest;

fn facecast(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_facecast"))
        .args(args)
        .env("FACECAST_DATA_DIR", data)
        .env_remove("FACECAST_PYTHON")
        .output()
        .expect("the facecast binary runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn mtcnn_fixtures() -> PathBuf {
    let root = match std::env::var_os("FACECAST_FIXTURES") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures"),
    };
    let dir = root.join("mtcnn");
    assert!(
        dir.join("pnet.pt").is_file(),
        "MTCNN fixtures not found in {}; set FACECAST_FIXTURES",
        dir.display()
    );
    dir
}

fn list_json(data: &Path) -> serde_json::Value {
    let out = facecast(data, &["weights", "list", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).expect("list --json prints JSON")
}

fn model<'a>(list: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    list["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == id)
        .unwrap()
}

#[test]
fn list_json_names_every_manifest_model_with_its_licence() {
    let data = tempfile::tempdir().unwrap();
    let list = list_json(data.path());
    let listed: Vec<&str> = list["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    let manifest = Manifest::embedded().unwrap();
    let expected: Vec<&str> = manifest.ids().collect();
    assert_eq!(listed, expected);
    for m in list["models"].as_array().unwrap() {
        assert_eq!(m["status"], "missing", "{m}");
        assert!(!m["licence"].as_str().unwrap().is_empty());
        assert!(m["commercial_use"].is_boolean());
    }
    assert_eq!(model(&list, "stylegan2-ffhq")["commercial_use"], false);
    assert_eq!(model(&list, "mtcnn")["size_bytes"], 28_570 + 403_147 + 1_559_269);
    assert_eq!(
        list["weights_dir"].as_str().unwrap(),
        data.path().join("weights").to_str().unwrap()
    );
    assert!(!data.path().join("weights").exists(), "listing creates nothing");

    let plain = facecast(data.path(), &["weights", "list"]);
    let plain = text(&plain);
    assert!(
        plain.contains("NON-COMMERCIAL") && plain.contains("mtcnn"),
        "{plain}"
    );
}

#[test]
fn import_the_real_mtcnn_files_then_verify_and_remove() {
    let fixtures = mtcnn_fixtures();
    let data = tempfile::tempdir().unwrap();
    let files: Vec<String> = ["pnet.pt", "rnet.pt", "onet.pt"]
        .iter()
        .map(|n| fixtures.join(n).display().to_string())
        .collect();
    let mut args = vec!["weights", "import", "mtcnn"];
    args.extend(files.iter().map(String::as_str));
    let out = facecast(data.path(), &args);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("installed, sha256 verified"),
        "{}",
        text(&out)
    );

    let out = facecast(data.path(), &["weights", "verify"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("mtcnn: installed"), "{}", text(&out));
    assert_eq!(model(&list_json(data.path()), "mtcnn")["status"], "installed");

    // A damaged file fails verification, by name.
    let onet = data.path().join("weights/mtcnn/onet.pt");
    let mut bytes = std::fs::read(&onet).unwrap();
    bytes.push(0);
    std::fs::write(&onet, bytes).unwrap();
    let out = facecast(data.path(), &["weights", "verify", "mtcnn"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("onet.pt") && text(&out).contains("size mismatch"),
        "{}",
        text(&out)
    );

    let out = facecast(data.path(), &["weights", "remove", "mtcnn"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!data.path().join("weights/mtcnn").exists());
    let out = facecast(data.path(), &["weights", "verify", "mtcnn"]);
    assert!(
        !out.status.success(),
        "a missing model fails verification when asked for by id"
    );
}

#[test]
fn import_mtcnn_from_a_folder() {
    let fixtures = mtcnn_fixtures();
    let data = tempfile::tempdir().unwrap();
    let out = facecast(
        data.path(),
        &["weights", "import", "mtcnn", fixtures.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(model(&list_json(data.path()), "mtcnn")["status"], "installed");
}

#[test]
fn import_refuses_a_file_under_the_wrong_name() {
    let fixtures = mtcnn_fixtures();
    let data = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let fake = src.path().join("pnet.pt");
    std::fs::copy(fixtures.join("rnet.pt"), &fake).unwrap();
    let out = facecast(
        data.path(),
        &["weights", "import", "mtcnn", fake.to_str().unwrap()],
    );
    assert!(!out.status.success());
    let t = text(&out);
    assert!(
        t.contains("mtcnn") && t.contains("pnet.pt") && t.contains("mismatch"),
        "{t}"
    );
    assert!(!data.path().join("weights/mtcnn/pnet.pt").exists());

    let out = facecast(
        data.path(),
        &["weights", "import", "no-such-net", fake.to_str().unwrap()],
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("unknown model"), "{}", text(&out));
}

fn fixture_file(folder: &str, file: &str) -> PathBuf {
    let path = mtcnn_fixtures().parent().unwrap().join(folder).join(file);
    assert!(path.is_file(), "{} is missing", path.display());
    path
}

#[test]
fn reduced_test_weights_need_the_flag_and_are_marked_as_such() {
    let data = tempfile::tempdir().unwrap();
    let small = fixture_file("stylegan2", "weights.pth");
    let small = small.to_str().unwrap();

    // Without the flag the shapes are checked against the released file: refused, with the way out named.
    let refused = facecast(data.path(), &["weights", "import", "stylegan2-ffhq", small]);
    assert!(!refused.status.success());
    let said = text(&refused);
    assert!(said.contains("--reduced"), "{said}");
    assert_eq!(
        model(&list_json(data.path()), "stylegan2-ffhq")["status"],
        "missing"
    );

    let out = facecast(
        data.path(),
        &["weights", "import", "stylegan2-ffhq", small, "--reduced"],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("reduced-width test weights"),
        "{}",
        text(&out)
    );
    let listed = model(&list_json(data.path()), "stylegan2-ffhq").clone();
    assert_eq!(listed["status"], "unverified", "{listed}");
    assert!(
        listed["detail"].as_str().unwrap().contains("reduced-width"),
        "{listed}"
    );

    // A later full verify keeps to the reduced rule instead of calling the file corrupt.
    let verify = facecast(data.path(), &["weights", "verify", "stylegan2-ffhq"]);
    assert!(verify.status.success(), "{}", text(&verify));
    assert!(text(&verify).contains("reduced-width"), "{}", text(&verify));
}

#[test]
fn reduced_import_still_refuses_another_network() {
    let data = tempfile::tempdir().unwrap();
    let gpen = fixture_file("gpen", "weights.pth");
    let out = facecast(
        data.path(),
        &[
            "weights",
            "import",
            "stylegan2-ffhq",
            gpen.to_str().unwrap(),
            "--reduced",
        ],
    );
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("not part of this network"), "{}", text(&out));
    assert_eq!(
        model(&list_json(data.path()), "stylegan2-ffhq")["status"],
        "missing"
    );
}
