//! `facecast check-fixture` as a user runs it: passes on the MTCNN fixture, fails on altered
//! weights, on a model that is not implemented, and on a hostile checkpoint.

mod common;

use std::path::Path;
use std::process::Command;

fn check_fixture(dir: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_facecast"))
        .args(["--backend", "cpu", "check-fixture"])
        .arg(dir)
        .output()
        .expect("run facecast");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

#[test]
fn mtcnn_fixture_passes_every_case() {
    let dir = common::fixture_dir("mtcnn");
    let (ok, text) = check_fixture(&dir);
    println!("{text}");
    assert!(ok, "check-fixture failed:\n{text}");
    let last = text
        .lines()
        .rev()
        .find(|l| l.contains("passed"))
        .expect("summary line");
    assert!(last.ends_with(" 0 failed"), "{last}");
    assert!(
        text.contains("detect.montage.boxes"),
        "the detection cases did not run"
    );
}

#[test]
fn altered_weights_fail() {
    let dir = common::fixture_dir("mtcnn");
    let tmp = tempfile::tempdir().expect("tempdir");
    copy_dir(&dir, tmp.path());
    // The storages sit at the end of a legacy file: perturb the last kilobytes (ONet's dense
    // heads) so the file still parses but computes something else.
    let path = tmp.path().join("onet.pt");
    let mut bytes = std::fs::read(&path).expect("read onet.pt");
    let n = bytes.len();
    for b in &mut bytes[n - 4096..n - 4] {
        *b = b.wrapping_add(37);
    }
    std::fs::write(&path, bytes).expect("write");
    let (ok, text) = check_fixture(tmp.path());
    assert!(!ok, "altered weights passed:\n{text}");
    assert!(text.contains("FAIL") && text.contains("onet."), "{text}");
}

#[test]
fn an_unknown_model_is_reported_not_implemented() {
    let dir = common::fixture_dir("mtcnn");
    let tmp = tempfile::tempdir().expect("tempdir");
    copy_dir(&dir, tmp.path());
    let meta = std::fs::read_to_string(tmp.path().join("meta.json")).expect("meta");
    std::fs::write(
        tmp.path().join("meta.json"),
        meta.replacen("\"mtcnn\"", "\"hypernet9000\"", 1),
    )
    .expect("write");
    let (ok, text) = check_fixture(tmp.path());
    assert!(!ok);
    assert!(text.contains("not implemented yet"), "{text}");
    assert!(text.contains("0 passed, 1 failed"), "{text}");
}

#[test]
fn a_hostile_checkpoint_is_refused_with_the_readers_error() {
    let dir = common::fixture_dir("mtcnn");
    let tmp = tempfile::tempdir().expect("tempdir");
    copy_dir(&dir, tmp.path());
    let mut evil =
        b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.\x80\x02M\xe9\x03.\x80\x02}.".to_vec();
    evil.extend_from_slice(b"\x80\x02csubprocess\ncheck_output\n.");
    std::fs::write(tmp.path().join("pnet.pt"), evil).expect("write");
    let (ok, text) = check_fixture(tmp.path());
    assert!(!ok);
    assert!(
        text.contains("subprocess.check_output") && text.contains("pnet.pt"),
        "{text}"
    );
}

#[test]
fn an_empty_folder_is_a_failure_not_a_skip() {
    let empty = tempfile::tempdir().expect("tempdir");
    let (ok, text) = check_fixture(empty.path());
    assert!(!ok, "an empty folder passed:\n{text}");
    assert!(
        text.contains("meta.json") && text.contains("0 passed, 1 failed"),
        "{text}"
    );
}

#[test]
fn a_decoded_png_named_by_meta_json_is_the_detectors_input() {
    let dir = common::fixture_dir("mtcnn");
    let tmp = tempfile::tempdir().expect("tempdir");
    copy_dir(&dir, tmp.path());
    // The photo becomes a file no decoder reads; the reference's own pixels stand beside it. Only
    // a run that feeds `decoded_png` can pass.
    std::fs::write(tmp.path().join("astronaut.jpg"), b"not a JPEG").expect("write");
    std::fs::rename(
        tmp.path().join("astronaut.png"),
        tmp.path().join("astronaut.decoded.png"),
    )
    .expect("rename");
    let meta_path = tmp.path().join("meta.json");
    let mut meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&meta_path).expect("meta")).expect("json");
    meta["photos"]["astronaut"]["file"] = "astronaut.jpg".into();
    meta["photos"]["astronaut"]["decoded_png"] = "astronaut.decoded.png".into();
    std::fs::write(&meta_path, meta.to_string()).expect("write");
    let (ok, text) = check_fixture(tmp.path());
    assert!(ok, "check-fixture failed:\n{text}");
    assert!(text.contains("detect.astronaut.boxes"), "{text}");

    // Without the decoded pixels the unreadable photo is what runs, and the fixture fails.
    meta["photos"]["astronaut"]
        .as_object_mut()
        .expect("object")
        .remove("decoded_png");
    std::fs::write(&meta_path, meta.to_string()).expect("write");
    let (ok, text) = check_fixture(tmp.path());
    assert!(!ok && text.contains("astronaut.jpg"), "{text}");
}

#[test]
fn clip_without_its_vocabulary_fails_and_says_what_to_install() {
    let dir = common::fixture_dir("clip_text");
    // A working folder and a data folder with no vocabulary, and no variable naming one.
    let cwd = tempfile::tempdir().expect("tempdir");
    let data = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_facecast"))
        .current_dir(cwd.path())
        .env_remove(facecast::parity::clip_text::VOCAB_ENV)
        .env("FACECAST_DATA_DIR", data.path())
        .args(["--backend", "cpu", "check-fixture"])
        .arg(&dir)
        .output()
        .expect("run facecast");
    let text = common::text(&out);
    assert!(!out.status.success(), "passed without the vocabulary:\n{text}");
    assert!(
        text.contains("FAIL")
            && text.contains("tokenizer_cases.json")
            && text.contains("fetch-clip-vocab.sh"),
        "{text}"
    );
}
