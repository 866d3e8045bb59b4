//! Downloads through Google Drive's large-file confirmation, against a server on 127.0.0.1 (std::net)
//! that imitates Drive: `drive.google.com/uc` redirects to `drive.usercontent.google.com/download`,
//! which answers with the confirmation form, whose hidden inputs get the file. Older pages (a
//! `confirm=` link, a `download_warning` cookie) too; a wrong file, a truncated one, a dropped
//! connection; and `facecast weights install --for swap` with the manifest's real URLs sent here.

mod common;
#[path = "common/drive.rs"]
mod drive;

use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use drive::{Seen, Server, Site, Style, TOKEN, UUID, payload, sha256, swap_manifest};
use facecast::weights::download::{DownloadError, Downloader, Expected, Hosts, part_path};

fn downloader(hosts: Hosts, attempts: u32) -> Downloader {
    let mut d = Downloader::new(Duration::from_secs(5), Duration::from_secs(5));
    d.attempts = attempts;
    d.retry_pause = Duration::from_millis(10);
    d.hosts = hosts;
    d
}

fn expect(bytes: &[u8]) -> (String, u64) {
    (sha256(bytes), bytes.len() as u64)
}

fn fetch(d: &Downloader, url: &str, dest: &Path, want: &(String, u64)) -> Result<(), DownloadError> {
    let expected = Expected {
        sha256: Some(&want.0),
        sha256_prefix: None,
        size: Some(want.1),
    };
    d.fetch(url, dest, &expected, &mut |_, _| {}).map(|_| ())
}

const UC: &str = "https://drive.google.com/uc?id=1BiG";

#[test]
fn the_confirmation_form_is_followed_to_the_file() {
    let big = payload(150_000, 1);
    let server = Server::start(Site::new(Style::Form).file("1BiG", &big));
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("G_latest.pth");
    fetch(&downloader(server.drive_hosts(), 1), UC, &dest, &expect(&big)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(std::fs::read(&dest).expect("file"), big);
    let paths: Vec<String> = server.seen().into_iter().map(|s| s.path).collect();
    assert_eq!(
        paths,
        [
            "/uc?id=1BiG".to_string(),
            "/download?id=1BiG&export=download".into(),
            format!("/download?id=1BiG&export=download&confirm=t&uuid={UUID}"),
        ]
    );
    assert!(!part_path(&dest).exists());
}

#[test]
fn older_confirmation_links_and_cookies_are_followed() {
    for style in [Style::Link, Style::Cookie] {
        let big = payload(40_000, 2);
        let server = Server::start(Site::new(style).file("1BiG", &big));
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("f.pt");
        fetch(&downloader(server.drive_hosts(), 1), UC, &dest, &expect(&big))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(std::fs::read(&dest).expect("file"), big);
        let last = server.seen().pop().expect("requests").path;
        assert!(
            last.starts_with("/uc?") && last.contains(&format!("confirm={TOKEN}")),
            "{last}"
        );
    }
}

#[test]
fn a_dropped_connection_resumes_with_range_behind_the_confirmation() {
    let big = payload(100_000, 3);
    let mut site = Site::new(Style::Form).file("1BiG", &big);
    site.cuts = 1;
    site.cut_after = 30_000;
    let server = Server::start(site);
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("f.pt");
    fetch(&downloader(server.drive_hosts(), 3), UC, &dest, &expect(&big)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(std::fs::read(&dest).expect("file"), big);
    let downloads: Vec<Seen> = server
        .seen()
        .into_iter()
        .filter(|s| s.path.contains("confirm=t"))
        .collect();
    assert_eq!(downloads.len(), 2, "{downloads:?}");
    assert_eq!(downloads[0].range, None);
    assert_eq!(downloads[1].range.as_deref(), Some("bytes=30000-"));
}

#[test]
fn a_transfer_that_keeps_breaking_is_resumed_by_the_next_install() {
    let big = payload(100_000, 4);
    let mut site = Site::new(Style::Form).file("1BiG", &big);
    site.cuts = 2;
    site.cut_after = 20_000;
    let server = Server::start(site);
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("f.pt");
    let want = expect(&big);
    let err = fetch(&downloader(server.drive_hosts(), 2), UC, &dest, &want).expect_err("cut twice");
    assert!(matches!(err, DownloadError::Interrupted { .. }), "{err}");
    let kept = std::fs::metadata(part_path(&dest))
        .expect("partial file kept")
        .len();
    assert_eq!(
        kept, 40_000,
        "two cuts of 20 000 bytes, the second resumed from the first"
    );

    fetch(&downloader(server.drive_hosts(), 2), UC, &dest, &want).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(std::fs::read(&dest).expect("file"), big);
    let last = server.seen().pop().expect("requests");
    assert_eq!(last.range.as_deref(), Some("bytes=40000-"), "{last:?}");
}

#[test]
fn a_wrong_file_is_refused_and_deleted() {
    let served = payload(50_000, 5);
    let mut published = served.clone();
    published[49_999] ^= 1;
    let server = Server::start(Site::new(Style::Form).file("1BiG", &served));
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("f.pt");
    let err = fetch(
        &downloader(server.drive_hosts(), 1),
        UC,
        &dest,
        &expect(&published),
    )
    .expect_err("wrong sha256");
    let text = err.to_string();
    assert!(matches!(err, DownloadError::Check { .. }), "{text}");
    assert!(
        text.contains(&sha256(&served)) && text.contains(&sha256(&published)),
        "{text}"
    );
    assert!(!dest.exists() && !part_path(&dest).exists());
}

#[test]
fn a_truncated_file_is_refused() {
    let big = payload(50_000, 6);
    let mut site = Site::new(Style::Form).file("1BiG", &big);
    site.truncate_to = Some(30_000);
    let server = Server::start(site);
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("f.pt");
    let err = fetch(&downloader(server.drive_hosts(), 1), UC, &dest, &expect(&big)).expect_err("truncated");
    let text = err.to_string();
    assert!(
        matches!(
            err,
            DownloadError::WrongLength {
                offered: 30_000,
                expected: 50_000,
                ..
            }
        ),
        "{text}"
    );
    assert!(!dest.exists());
}

#[test]
fn a_page_that_is_not_a_confirmation_is_still_refused() {
    let big = payload(1_000, 7);
    let mut site = Site::new(Style::Link).file("1BiG", &big);
    site.quota.push("1BiG".into());
    let server = Server::start(site);
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("f.pt");
    let err = fetch(&downloader(server.drive_hosts(), 1), UC, &dest, &expect(&big)).expect_err("quota page");
    let text = err.to_string();
    assert!(matches!(err, DownloadError::WebPage { .. }), "{text}");
    assert!(text.contains("quota"), "{text}");
    assert!(!dest.exists() && !part_path(&dest).exists());

    // The same confirmation page served from a host that is not Drive's is not followed.
    let server = Server::start(Site::new(Style::Link).file("1BiG", &big));
    let hosts = Hosts::default().with("files.example", &server.base);
    let err = fetch(
        &downloader(hosts, 1),
        "https://files.example/uc?id=1BiG",
        &dest,
        &expect(&big),
    )
    .expect_err("not Drive");
    assert!(matches!(err, DownloadError::WebPage { .. }), "{err}");
    assert_eq!(server.seen().len(), 1);
}

#[test]
fn install_for_swap_asks_for_the_licence_then_installs_arcface_and_the_generator() {
    let (manifest, files) = swap_manifest(false);
    let mut site = Site::new(Style::Form);
    site.files = files;
    let server = Server::start(site);
    let dead = TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead_base = format!("http://{}", dead.local_addr().expect("address"));
    drop(dead);

    let work = tempfile::tempdir().expect("tempdir");
    let manifest_path = work.path().join("manifest.toml");
    std::fs::write(&manifest_path, toml::to_string(&manifest).expect("toml")).expect("write");
    let data = work.path().join("data");
    let hosts = format!(
        "drive.google.com={0};drive.usercontent.google.com={0};github.com={0};www.dropbox.com={dead_base}",
        server.base
    );
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_facecast"))
            .env("FACECAST_DATA_DIR", &data)
            .env("FACECAST_MANIFEST", &manifest_path)
            .env("FACECAST_HOSTS", &hosts)
            .args(args)
            .output()
            .expect("run facecast")
    };

    let out = run(&["weights", "install", "--for", "swap"]);
    let text = common::text(&out);
    assert!(
        !out.status.success(),
        "installed without accepting the licences:\n{text}"
    );
    assert!(
        text.contains("arcface-ir-se50")
            && text.contains("faceshifter-aei")
            && text.contains("--accept-noncommercial"),
        "{text}"
    );
    assert!(
        !text.contains("mtcnn:"),
        "MTCNN is MIT, not named in the refusal:\n{text}"
    );
    assert!(
        server.seen().is_empty(),
        "nothing may be downloaded before the licences are accepted"
    );
    assert!(!data.join("weights").exists());

    let out = run(&["weights", "install", "--for", "swap", "--accept-noncommercial"]);
    let text = common::text(&out);
    assert!(out.status.success(), "{text}");
    for model in &manifest.models {
        for file in &model.files {
            let path = data.join("weights").join(&model.id).join(&file.name);
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(Some(sha256(&bytes)), file.sha256, "{}", path.display());
        }
    }
    // ArcFace's Dropbox mirror did not answer; its Drive copy came through the confirmation.
    assert!(text.contains("dropbox"), "{text}");
    let seen: Vec<String> = server.seen().into_iter().map(|s| s.path).collect();
    assert!(
        seen.iter().any(
            |p| p.starts_with("/download?id=15nZSJ2bAT3m-iCBqP3N_9gld5_EGv4kp&") && p.contains("confirm=t")
        ),
        "{seen:?}"
    );
    assert!(
        seen.iter().any(
            |p| p.starts_with("/download?id=1iANX7oJoXCEECNzBEW1xOpac2tDOKeu9&") && p.contains("confirm=t")
        ),
        "{seen:?}"
    );

    let out = run(&["weights", "verify"]);
    let verify = common::text(&out);
    for id in ["mtcnn", "arcface-ir-se50", "faceshifter-aei"] {
        assert!(verify.contains(&format!("{id}: installed")), "{verify}");
    }
}
