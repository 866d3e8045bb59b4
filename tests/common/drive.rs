//! A server on 127.0.0.1 (std::net) that imitates Google Drive's large-file confirmation:
//! `drive.google.com/uc` redirects to `drive.usercontent.google.com/download`, whose page holds the
//! confirmation form; its hidden inputs get the file. Older pages (a `confirm=` link, a
//! `download_warning` cookie) too, and plain URLs by their last path segment. It answers until
//! dropped, or for two minutes at most, so no test leaves it running.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Write;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use facecast::weights::download::Hosts;
use facecast::weights::manifest::Manifest;
use sha2::{Digest, Sha256};

#[path = "http.rs"]
mod http;
pub use http::Seen;
use http::read_request;

/// How the imitation of Drive confirms a download.
#[derive(Clone, Copy, PartialEq)]
pub enum Style {
    /// Today's: `/uc` redirects to `/download`, whose page holds `<form id="download-form">`.
    Form,
    /// Older: the page links to `/uc?export=download&confirm=TOKEN&id=…`.
    Link,
    /// Older still: only a `download_warning…=TOKEN` cookie.
    Cookie,
}

pub const TOKEN: &str = "Xy_9";
pub const UUID: &str = "5c1e-77aa";

pub struct Site {
    /// Files by Drive id, or by the last path segment for plain URLs.
    pub files: HashMap<String, Vec<u8>>,
    pub style: Style,
    /// The first this-many file answers promise the whole file, send `cut_after` bytes and hang up.
    pub cuts: usize,
    pub cut_after: usize,
    /// Serve only this many bytes of every file, announced as the whole file.
    pub truncate_to: Option<usize>,
    /// Ids answered with Drive's quota page instead of a confirmation.
    pub quota: Vec<String>,
    /// Every file answer without a Range sends this many bytes, waits, then sends the rest: a
    /// transfer slow enough to cancel.
    pub pause_after: Option<(usize, Duration)>,
}

impl Site {
    pub fn new(style: Style) -> Site {
        Site {
            files: HashMap::new(),
            style,
            cuts: 0,
            cut_after: 0,
            truncate_to: None,
            quota: Vec::new(),
            pause_after: None,
        }
    }

    pub fn file(mut self, key: &str, bytes: &[u8]) -> Site {
        self.files.insert(key.to_string(), bytes.to_vec());
        self
    }
}

/// The server: answers until dropped, or for two minutes at most, so no test leaves it running.
pub struct Server {
    pub base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
}

impl Server {
    pub fn start(site: Site) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        listener.set_nonblocking(true).expect("nonblocking");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log, halt) = (seen.clone(), stop.clone());
        let served = AtomicUsize::new(0);
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(120);
            while !halt.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let _ = answer(stream, &site, &served, &log);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Server { base, seen, stop }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("log").clone()
    }

    /// Every Drive host sent here.
    pub fn drive_hosts(&self) -> Hosts {
        Hosts::default()
            .with("drive.google.com", &self.base)
            .with("drive.usercontent.google.com", &self.base)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn query(path: &str) -> HashMap<String, String> {
    path.split_once('?')
        .map(|(_, q)| q)
        .unwrap_or_default()
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn answer(
    stream: TcpStream,
    site: &Site,
    served: &AtomicUsize,
    log: &Mutex<Vec<Seen>>,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    let Seen { path, range } = read_request(&stream, log)?;
    let q = query(&path);
    let id = q.get("id").cloned().unwrap_or_default();
    let route = path.split('?').next().unwrap_or_default();
    let page = |stream: &mut TcpStream, extra: &str, body: &str| {
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes())?;
        stream.write_all(body.as_bytes())
    };
    let mut stream = stream;
    match route {
        "/uc" if site.quota.contains(&id) => page(
            &mut stream,
            "",
            "<html><title>Google Drive - Quota exceeded</title>Too many users have viewed or downloaded this file recently.</html>",
        ),
        "/uc" if q.get("confirm").map(String::as_str) == Some(TOKEN) && site.style != Style::Form => {
            serve_file(stream, site, &id, range.as_deref(), served)
        }
        "/uc" => match site.style {
            Style::Form => {
                let location =
                    format!("https://drive.usercontent.google.com/download?id={id}&export=download");
                let head = format!(
                    "HTTP/1.1 303 See Other\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                stream.write_all(head.as_bytes())
            }
            Style::Link => page(
                &mut stream,
                "",
                &format!(
                    "<html><body>Google Drive can't scan this file for viruses. \
                     <a id=\"uc-download-link\" href=\"/uc?export=download&amp;confirm={TOKEN}&amp;id={id}\">Download anyway</a></body></html>"
                ),
            ),
            Style::Cookie => page(
                &mut stream,
                &format!("Set-Cookie: download_warning_13058876669334088843_{id}={TOKEN}; Path=/uc\r\n"),
                "<html><body>Google Drive can't scan this file for viruses.</body></html>",
            ),
        },
        "/download"
            if q.get("confirm").map(String::as_str) == Some("t")
                && q.get("uuid").map(String::as_str) == Some(UUID) =>
        {
            serve_file(stream, site, &id, range.as_deref(), served)
        }
        "/download" => page(
            &mut stream,
            "",
            &format!(
                "<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head><body>\
                 <form id=\"download-form\" action=\"https://drive.usercontent.google.com/download\" method=\"get\">\
                 <input type=\"submit\" id=\"uc-download-link\" class=\"goog-inline-block jfk-button\" value=\"Download anyway\"/>\
                 <input type=\"hidden\" name=\"id\" value=\"{id}\"><input type=\"hidden\" name=\"export\" value=\"download\">\
                 <input type=\"hidden\" name=\"confirm\" value=\"t\"><input type=\"hidden\" name=\"uuid\" value=\"{UUID}\"></form></body></html>"
            ),
        ),
        _ => {
            let name = route.rsplit('/').next().unwrap_or_default().to_string();
            serve_file(stream, site, &name, range.as_deref(), served)
        }
    }
}

fn serve_file(
    mut stream: TcpStream,
    site: &Site,
    key: &str,
    range: Option<&str>,
    served: &AtomicUsize,
) -> std::io::Result<()> {
    let Some(full) = site.files.get(key) else {
        return stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    };
    let blob = &full[..site.truncate_to.unwrap_or(full.len()).min(full.len())];
    let len = blob.len();
    let start = range
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|s| s.parse::<usize>().ok())
        .filter(|&s| s < len);
    let (status, extra, body) = match start {
        Some(s) => (
            "206 Partial Content",
            format!("Content-Range: bytes {s}-{}/{len}\r\n", len - 1),
            &blob[s..],
        ),
        None => ("200 OK", String::new(), blob),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"{key}\"\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    if served.fetch_add(1, Ordering::SeqCst) < site.cuts {
        stream.write_all(&body[..site.cut_after.min(body.len())])?;
        stream.flush()?;
        return stream.shutdown(Shutdown::Both);
    }
    if let Some((first, pause)) = site.pause_after
        && start.is_none()
        && first < body.len()
    {
        stream.write_all(&body[..first])?;
        stream.flush()?;
        std::thread::sleep(pause);
        return stream.write_all(&body[first..]);
    }
    stream.write_all(body)
}

/// Not a repeating pattern, so bytes spliced at the wrong offset change the digest.
pub fn payload(len: usize, seed: u32) -> Vec<u8> {
    let mut state = 0x2545_f491u32 ^ seed.wrapping_mul(0x9E37_79B9);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state >> 24) as u8
        })
        .collect()
}

pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The embedded manifest's swap networks, each file given a random payload whose size and sha256
/// the test manifest publishes; the URLs stay the manifest's own. `keep_others`: the other networks
/// stay, unchanged.
pub fn swap_manifest(keep_others: bool) -> (Manifest, HashMap<String, Vec<u8>>) {
    let ids = ["mtcnn", "arcface-ir-se50", "faceshifter-aei"];
    let mut manifest = Manifest::embedded().expect("manifest");
    if !keep_others {
        manifest.models.retain(|m| ids.contains(&m.id.as_str()));
    }
    let mut served = HashMap::new();
    for (n, model) in manifest
        .models
        .iter_mut()
        .filter(|m| ids.contains(&m.id.as_str()))
        .enumerate()
    {
        // Only the URLs are exercised: the wheel fallback would call pip.
        model.pip.clear();
        for (k, file) in model.files.iter_mut().enumerate() {
            let bytes = payload(5_000 + 3_000 * k + 20_000 * n, (n * 10 + k) as u32);
            file.size = Some(bytes.len() as u64);
            file.sha256 = Some(sha256(&bytes));
            file.sha256_prefix = None;
            file.structure = None;
            for url in &file.urls {
                let key = match url.split_once("id=") {
                    Some((_, id)) => id.to_string(),
                    None => url.rsplit('/').next().unwrap_or_default().to_string(),
                };
                served.insert(key, bytes.clone());
            }
        }
    }
    (manifest, served)
}
