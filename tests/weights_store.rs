//! The weights store against a real HTTP server on 127.0.0.1 (written here with std::net): downloads,
//! resume after a cut, servers that ignore Range, checksum failures, imports and the pip fallback.

use std::io::Write;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use facecast::weights::download::{DownloadError, Downloader, Expected, part_path};
use facecast::weights::manifest::Manifest;
use facecast::weights::store::{FileStatus, ModelStatus, Progress, StoreError, WeightsStore};
use sha2::{Digest, Sha256};

#[path = "common/http.rs"]
mod http;
use http::{Seen, read_request};

/// How the test server answers.
#[derive(Clone)]
struct Behaviour {
    blob: Vec<u8>,
    honour_range: bool,
    /// Send only this many body bytes of the first answer (after promising them all), then hang up.
    cut_first_after: Option<usize>,
    content_type: &'static str,
}

struct Server {
    base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    fn start(behaviour: Behaviour) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        thread::spawn(move || {
            for (n, stream) in listener.incoming().enumerate() {
                let Ok(stream) = stream else { continue };
                let behaviour = behaviour.clone();
                let log = log.clone();
                // Each connection is answered once and closed, which also exercises reconnecting.
                let _ = serve(stream, n, &behaviour, &log);
            }
        });
        Server { base, seen }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve(mut stream: TcpStream, n: usize, b: &Behaviour, log: &Mutex<Vec<Seen>>) -> std::io::Result<()> {
    let Seen { path, range } = read_request(&stream, log)?;

    if path == "/missing" {
        stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
        return Ok(());
    }
    let len = b.blob.len();
    let start = range
        .as_deref()
        .filter(|_| b.honour_range)
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|s| s.parse::<usize>().ok());
    let (head, body) = match start {
        Some(s) if s < len => (
            format!(
                "HTTP/1.1 206 Partial Content\r\nContent-Type: {}\r\nContent-Length: {}\r\nContent-Range: bytes {s}-{}/{len}\r\nConnection: close\r\n\r\n",
                b.content_type,
                len - s,
                len - 1
            ),
            &b.blob[s..],
        ),
        _ => (
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n",
                b.content_type
            ),
            &b.blob[..],
        ),
    };
    stream.write_all(head.as_bytes())?;
    match b.cut_first_after {
        Some(cut) if n == 0 => {
            stream.write_all(&body[..cut.min(body.len())])?;
            stream.flush()?;
            stream.shutdown(Shutdown::Both)?;
        }
        _ => stream.write_all(body)?,
    }
    Ok(())
}

fn blob(len: usize) -> Vec<u8> {
    // Not a repeating pattern, so a splice at the wrong offset changes the digest.
    let mut state = 0x2545_f491u32;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state >> 24) as u8
        })
        .collect()
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn behaviour(data: &[u8]) -> Behaviour {
    Behaviour {
        blob: data.to_vec(),
        honour_range: true,
        cut_first_after: None,
        content_type: "application/octet-stream",
    }
}

fn quick(attempts: u32) -> Downloader {
    let mut d = Downloader::new(Duration::from_secs(5), Duration::from_secs(5));
    d.attempts = attempts;
    d.retry_pause = Duration::from_millis(10);
    d
}

#[test]
fn download_completes_with_progress_and_no_leftovers() {
    let data = blob(700_000);
    let server = Server::start(behaviour(&data));
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("w.pt");
    let sha = sha256(&data);
    let mut last = (0, None);
    let fetched = quick(1)
        .fetch(
            &server.url("/w.pt"),
            &dest,
            &Expected {
                sha256: Some(&sha),
                size: Some(data.len() as u64),
                ..Default::default()
            },
            &mut |done, total| last = (done, total),
        )
        .unwrap();
    assert_eq!(fetched.sha256, sha);
    assert_eq!(std::fs::read(&dest).unwrap(), data);
    assert_eq!(last, (data.len() as u64, Some(data.len() as u64)));
    assert!(!part_path(&dest).exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "only the finished file remains"
    );
}

#[test]
fn a_cut_transfer_is_resumed_from_the_partial_file() {
    let data = blob(500_000);
    let cut = 200_000;
    let server = Server::start(Behaviour {
        cut_first_after: Some(cut),
        ..behaviour(&data)
    });
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("w.pt");
    let sha = sha256(&data);
    let expected = Expected {
        sha256: Some(&sha),
        size: Some(data.len() as u64),
        ..Default::default()
    };

    // One try only: the cut leaves the partial file behind.
    let err = quick(1)
        .fetch(&server.url("/w.pt"), &dest, &expected, &mut |_, _| {})
        .unwrap_err();
    assert!(matches!(err, DownloadError::Interrupted { .. }), "{err}");
    assert!(!dest.exists());
    assert_eq!(std::fs::metadata(part_path(&dest)).unwrap().len(), cut as u64);

    // The next call continues from those bytes with a Range request.
    let mut first_report = None;
    quick(1)
        .fetch(&server.url("/w.pt"), &dest, &expected, &mut |done, _| {
            first_report.get_or_insert(done);
        })
        .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), data);
    assert_eq!(
        first_report,
        Some(cut as u64),
        "progress starts from the kept bytes"
    );
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|s| s.path == "/w.pt"));
    assert_eq!(seen[0].range, None);
    assert_eq!(seen[1].range.as_deref(), Some(format!("bytes={cut}-").as_str()));
}

#[test]
fn retries_within_one_call_resume_too() {
    let data = blob(300_000);
    let server = Server::start(Behaviour {
        cut_first_after: Some(123_456),
        ..behaviour(&data)
    });
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("w.pt");
    let sha = sha256(&data);
    quick(3)
        .fetch(
            &server.url("/w.pt"),
            &dest,
            &Expected {
                sha256: Some(&sha),
                ..Default::default()
            },
            &mut |_, _| {},
        )
        .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), data);
    assert_eq!(server.seen()[1].range.as_deref(), Some("bytes=123456-"));
}

#[test]
fn a_server_that_ignores_range_restarts_from_zero() {
    let data = blob(400_000);
    let server = Server::start(Behaviour {
        cut_first_after: Some(150_000),
        honour_range: false,
        ..behaviour(&data)
    });
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("w.pt");
    let sha = sha256(&data);
    let expected = Expected {
        sha256: Some(&sha),
        size: Some(data.len() as u64),
        ..Default::default()
    };
    assert!(
        quick(1)
            .fetch(&server.url("/w.pt"), &dest, &expected, &mut |_, _| {})
            .is_err()
    );
    quick(1)
        .fetch(&server.url("/w.pt"), &dest, &expected, &mut |_, _| {})
        .unwrap();
    // The whole body came again with 200: it replaced the partial bytes instead of being appended.
    assert_eq!(std::fs::read(&dest).unwrap(), data);
    assert!(server.seen()[1].range.is_some());
}

#[test]
fn a_checksum_mismatch_deletes_the_file_and_names_both_digests() {
    let data = blob(50_000);
    let server = Server::start(behaviour(&data));
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("w.pt");
    let wrong = "0".repeat(64);
    let err = quick(1)
        .fetch(
            &server.url("/w.pt"),
            &dest,
            &Expected {
                sha256: Some(&wrong),
                ..Default::default()
            },
            &mut |_, _| {},
        )
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, DownloadError::Check { .. }), "{text}");
    assert!(text.contains(&wrong) && text.contains(&sha256(&data)), "{text}");
    assert!(text.contains("deleted"), "{text}");
    assert!(!dest.exists());
    assert!(!part_path(&dest).exists());
}

#[test]
fn a_web_page_or_an_http_error_is_not_taken_for_the_file() {
    let server = Server::start(Behaviour {
        content_type: "text/html; charset=utf-8",
        ..behaviour(b"<html></html>")
    });
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("w.pt");
    let err = quick(1)
        .fetch(&server.url("/w.pt"), &dest, &Expected::default(), &mut |_, _| {})
        .unwrap_err();
    assert!(matches!(err, DownloadError::WebPage { .. }), "{err}");
    let err = quick(1)
        .fetch(
            &server.url("/missing"),
            &dest,
            &Expected::default(),
            &mut |_, _| {},
        )
        .unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");
    assert!(!dest.exists() && !part_path(&dest).exists());
}

#[test]
fn github_blob_urls_are_fetched_as_raw() {
    assert_eq!(
        facecast::weights::download::direct_url("https://github.com/o/r/blob/main/a/b.pt"),
        "https://github.com/o/r/raw/main/a/b.pt"
    );
}

/// A port where nothing listens: connections are refused at once.
fn dead_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/gone.pt")
}

/// A one-model manifest. `extra` is more TOML: plain keys (before any `[[...]]`) belong to the model,
/// tables such as `[[models.pip]]` follow the files.
fn manifest(id: &str, files: &[(&str, &[u8], Vec<String>)], extra: &str) -> Manifest {
    let (model_keys, tables) = extra.split_at(extra.find("[[").unwrap_or(extra.len()));
    let mut text = format!(
        "[[models]]\nid = \"{id}\"\nname = \"Test\"\nlicence = \"MIT\"\ncommercial_use = true\nfeatures = [\"detect\"]\n{model_keys}"
    );
    for (name, data, urls) in files {
        let urls: Vec<String> = urls.iter().map(|u| format!("{u:?}")).collect();
        text.push_str(&format!(
            "[[models.files]]\nname = \"{name}\"\nsize = {}\nsha256 = \"{}\"\nurls = [{}]\n",
            data.len(),
            sha256(data),
            urls.join(", ")
        ));
    }
    text.push_str(tables);
    Manifest::parse(&text).unwrap()
}

#[test]
fn install_tries_the_next_url_then_verify_catches_tampering_and_remove_deletes() {
    let a = blob(80_000);
    let b = blob(1_000);
    let server = Server::start(behaviour(&a));
    let small = Server::start(behaviour(&b));
    let data = tempfile::tempdir().unwrap();
    let store = WeightsStore::with_manifest(
        data.path().to_path_buf(),
        manifest(
            "net",
            &[
                ("a.pt", &a, vec![dead_url(), server.url("/a.pt")]),
                ("b.pt", &b, vec![small.url("/b.pt")]),
            ],
            "",
        ),
    );
    assert_eq!(
        store.status("net").unwrap().status,
        ModelStatus::Missing {
            files: vec!["a.pt".into(), "b.pt".into()]
        }
    );

    let mut events = Vec::new();
    let state = store.install("net", &mut |p| events.push(p)).unwrap();
    assert_eq!(state.status, ModelStatus::Installed);
    assert!(
        events
            .iter()
            .any(|p| matches!(p, Progress::SourceFailed { file, .. } if file == "a.pt"))
    );
    assert!(
        events
            .iter()
            .any(|p| matches!(p, Progress::Done { file } if file == "b.pt"))
    );
    let installed = data.path().join("weights/net/a.pt");
    assert_eq!(std::fs::read(&installed).unwrap(), a);
    assert!(!data.path().join("weights/net/.incoming").exists());

    // A second install has nothing to do: no new request reaches the server.
    let before = server.seen().len();
    store.install("net", &mut |_| {}).unwrap();
    assert_eq!(server.seen().len(), before);

    // Same size, one byte changed: only the digest can tell.
    let mut tampered = a.clone();
    tampered[1234] ^= 0xff;
    std::fs::write(&installed, &tampered).unwrap();
    let state = store.verify("net").unwrap();
    match &state.status {
        ModelStatus::Corrupt { file, reason } => {
            assert_eq!(file, "a.pt");
            assert!(
                reason.contains(&sha256(&a)) && reason.contains(&sha256(&tampered)),
                "{reason}"
            );
        }
        other => panic!("expected corrupt, got {other:?}"),
    }
    assert!(store.require("net").is_err());

    assert!(store.remove("net").unwrap());
    assert!(!data.path().join("weights/net").exists());
    assert!(!store.remove("net").unwrap());
    assert!(matches!(
        store.status("nope"),
        Err(StoreError::UnknownModel { .. })
    ));
}

#[test]
fn install_reports_every_failed_source_and_the_pages() {
    let a = blob(10);
    let data = tempfile::tempdir().unwrap();
    let store = WeightsStore::with_manifest(
        data.path().to_path_buf(),
        manifest(
            "net",
            &[("a.pt", &a, vec![dead_url()])],
            "pages = [\"https://example.invalid/page\"]\n",
        ),
    );
    let err = store.install("net", &mut |_| {}).unwrap_err().to_string();
    assert!(err.contains("net") && err.contains("a.pt"), "{err}");
    assert!(
        err.contains("127.0.0.1") && err.contains("https://example.invalid/page"),
        "{err}"
    );
    assert!(
        !data.path().join("weights/net").exists(),
        "a failed install leaves no empty folders"
    );
}

#[test]
fn import_checks_the_sha256_before_anything_is_installed() {
    let a = blob(5_000);
    let b = blob(7_000);
    let data = tempfile::tempdir().unwrap();
    let store = WeightsStore::with_manifest(
        data.path().to_path_buf(),
        manifest("net", &[("a.pt", &a, vec![]), ("b.pt", &b, vec![])], ""),
    );
    let src = tempfile::tempdir().unwrap();
    let good_a = src.path().join("a.pt");
    std::fs::write(&good_a, &a).unwrap();
    // Named b.pt but holding other bytes.
    let bad_b = src.path().join("b.pt");
    std::fs::write(&bad_b, &blob(7_001)[1..]).unwrap();

    let err = store.import("net", &[good_a.clone(), bad_b.clone()]).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, StoreError::Rejected { .. }), "{text}");
    assert!(text.contains("b.pt") && text.contains(&sha256(&b)), "{text}");
    assert!(
        !data.path().join("weights/net").exists(),
        "nothing is installed or left when one file is refused"
    );

    // A renamed copy is recognised by its digest.
    let renamed_b = src.path().join("download (1).bin");
    std::fs::write(&renamed_b, &b).unwrap();
    let state = store.import("net", &[good_a, renamed_b]).unwrap();
    assert_eq!(state.status, ModelStatus::Installed);
    assert!(state.files.iter().all(|f| f.status == FileStatus::Verified));
    assert_eq!(std::fs::read(data.path().join("weights/net/b.pt")).unwrap(), b);

    // The originals are copied, never moved.
    assert!(src.path().join("a.pt").exists());
}

#[test]
fn import_of_a_folder_takes_the_files_by_name() {
    let a = blob(3_000);
    let data = tempfile::tempdir().unwrap();
    let store = WeightsStore::with_manifest(
        data.path().to_path_buf(),
        manifest("net", &[("a.pt", &a, vec![])], ""),
    );
    let src = tempfile::tempdir().unwrap();
    let err = store
        .import("net", &[src.path().to_path_buf()])
        .unwrap_err()
        .to_string();
    assert!(err.contains("none of a.pt"), "{err}");
    std::fs::write(src.path().join("a.pt"), &a).unwrap();
    assert_eq!(
        store.import("net", &[src.path().to_path_buf()]).unwrap().status,
        ModelStatus::Installed
    );
}

fn write_wheel(path: &Path, members: &[(&str, &[u8])]) {
    let file = std::fs::File::create(path).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in members {
        zip.start_file(*name, options).unwrap();
        zip.write_all(data).unwrap();
    }
    zip.finish().unwrap();
}

/// A stand-in for `python3` that answers `-m pip download ... --dest DIR REQ` by copying a wheel made
/// here, and logs its arguments. The real pip needs a package index, which tests may not reach.
#[cfg(unix)]
fn fake_python(dir: &Path, wheel: &Path) -> (PathBuf, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let log = dir.join("args.txt");
    let script = dir.join("python3");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$@\" >> '{log}'\ndest=''\nwhile [ $# -gt 0 ]; do\n  if [ \"$1\" = --dest ]; then dest=\"$2\"; fi\n  shift\ndone\ncp '{wheel}' \"$dest/\"\n",
            log = log.display(),
            wheel = wheel.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    (script, log)
}

#[cfg(unix)]
#[test]
fn install_falls_back_to_the_pinned_wheel_when_the_urls_fail() {
    let a = blob(20_000);
    let b = blob(30_000);
    let tools = tempfile::tempdir().unwrap();
    let wheel = tools.path().join("pkg-1.0-py3-none-any.whl");
    write_wheel(
        &wheel,
        &[
            ("pkg/__init__.py", b""),
            ("pkg/data/a.pt", &a),
            ("pkg/data/b.pt", &b),
        ],
    );
    let (python, log) = fake_python(tools.path(), &wheel);
    let pip = "[[models.pip]]\nrequirement = \"pkg==1.0\"\nmembers = { \"a.pt\" = \"pkg/data/a.pt\", \"b.pt\" = \"pkg/data/b.pt\" }\n";
    let dead = dead_url();
    let data = tempfile::tempdir().unwrap();
    let store = WeightsStore::with_manifest(
        data.path().to_path_buf(),
        manifest(
            "net",
            &[("a.pt", &a, vec![dead.clone()]), ("b.pt", &b, vec![dead.clone()])],
            pip,
        ),
    )
    .with_python(&python);

    let mut sources = Vec::new();
    let state = store
        .install("net", &mut |p| {
            if let Progress::Source { source, .. } = p {
                sources.push(source)
            }
        })
        .unwrap();
    assert_eq!(state.status, ModelStatus::Installed);
    assert_eq!(std::fs::read(data.path().join("weights/net/b.pt")).unwrap(), b);
    let args = std::fs::read_to_string(&log).unwrap();
    assert_eq!(args.lines().count(), 1, "one wheel serves both files: {args}");
    assert!(args.starts_with("-m pip download --no-deps"), "{args}");
    // The host that did not answer for a.pt is not tried again for b.pt.
    assert_eq!(
        sources.iter().filter(|s| s.starts_with("http://")).count(),
        1,
        "{sources:?}"
    );
    assert!(args.trim_end().ends_with("pkg==1.0"), "{args}");
    assert!(
        sources.iter().any(|s| s == "pip download pkg==1.0"),
        "{sources:?}"
    );
    // The wheel's temporary folder is gone.
    let leftovers: Vec<_> = std::fs::read_dir(data.path().join("weights"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, vec![std::ffi::OsString::from("net")]);
}

#[cfg(unix)]
#[test]
fn a_wheel_member_with_the_wrong_digest_is_refused() {
    let a = blob(20_000);
    let tools = tempfile::tempdir().unwrap();
    let wheel = tools.path().join("pkg-1.0-py3-none-any.whl");
    let mut other = a.clone();
    other[0] ^= 1;
    write_wheel(&wheel, &[("pkg/a.pt", &other)]);
    let (python, _) = fake_python(tools.path(), &wheel);
    let pip = "[[models.pip]]\nrequirement = \"pkg==1.0\"\nmembers = { \"a.pt\" = \"pkg/a.pt\" }\n";
    let data = tempfile::tempdir().unwrap();
    let store = WeightsStore::with_manifest(
        data.path().to_path_buf(),
        manifest("net", &[("a.pt", &a, vec![dead_url()])], pip),
    )
    .with_python(&python);
    let err = store.install("net", &mut |_| {}).unwrap_err().to_string();
    assert!(
        err.contains("pkg==1.0") && err.contains("checksum mismatch"),
        "{err}"
    );
    assert!(!data.path().join("weights/net/a.pt").exists());
}

fn fixtures() -> PathBuf {
    match std::env::var_os("FACECAST_FIXTURES") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures"),
    }
}

/// Files without a published sha256 are recognised by their key/shape structure, read by the
/// checkpoint reader (which never executes anything).
#[test]
fn structure_check_accepts_the_right_network_and_refuses_another() {
    let mtcnn = fixtures().join("mtcnn");
    assert!(
        mtcnn.join("pnet.pt").is_file(),
        "MTCNN fixtures not found in {}; set FACECAST_FIXTURES",
        mtcnn.display()
    );
    let text = "[[models]]\nid = \"pnet-only\"\nname = \"PNet\"\nlicence = \"MIT\"\ncommercial_use = true\nfeatures = []\n\
                [[models.files]]\nname = \"pnet.pt\"\nstructure = { keys = \"mtcnn\", prefix = \"pnet.\" }\n";
    let data = tempfile::tempdir().unwrap();
    let store = WeightsStore::with_manifest(data.path().to_path_buf(), Manifest::parse(text).unwrap());

    let err = store
        .import("pnet-only", &[mtcnn.join("rnet.pt")])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("rnet.pt") && err.contains("not the expected network"),
        "{err}"
    );
    assert!(err.contains("missing") || err.contains("differ"), "{err}");

    let state = store.import("pnet-only", &[mtcnn.join("pnet.pt")]).unwrap();
    match &state.status {
        ModelStatus::Unverified { reason } => {
            assert!(reason.contains("keys and shapes match mtcnn"), "{reason}")
        }
        other => panic!("expected unverified, got {other:?}"),
    }
    assert!(state.status.is_usable());

    // The sha256 seen at import is the reference afterwards.
    let installed = data.path().join("weights/pnet-only/pnet.pt");
    let mut bytes = std::fs::read(&installed).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&installed, &bytes).unwrap();
    // Asked twice: the first failed check must not erase the reference.
    for _ in 0..2 {
        match store.verify("pnet-only").unwrap().status {
            ModelStatus::Corrupt { reason, .. } => {
                assert!(reason.contains("changed since it was installed"), "{reason}")
            }
            other => panic!("expected corrupt, got {other:?}"),
        }
    }
}

#[test]
fn a_truncated_checkpoint_is_refused_by_structure() {
    let pnet = fixtures().join("mtcnn/pnet.pt");
    let bytes = std::fs::read(&pnet).expect("MTCNN fixtures (set FACECAST_FIXTURES)");
    let src = tempfile::tempdir().unwrap();
    let cut = src.path().join("pnet.pt");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let text = "[[models]]\nid = \"p\"\nname = \"PNet\"\nlicence = \"MIT\"\ncommercial_use = true\nfeatures = []\n\
                [[models.files]]\nname = \"pnet.pt\"\nstructure = { keys = \"mtcnn\", prefix = \"pnet.\" }\n";
    let data = tempfile::tempdir().unwrap();
    let store = WeightsStore::with_manifest(data.path().to_path_buf(), Manifest::parse(text).unwrap());
    let err = store.import("p", &[cut]).unwrap_err().to_string();
    assert!(err.contains("cannot be read as a checkpoint"), "{err}");
    assert!(!data.path().join("weights/p/pnet.pt").exists());
}
