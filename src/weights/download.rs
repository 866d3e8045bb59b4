//! Blocking HTTP downloads into `<dest>.part`: resume with `Range`, progress, streaming sha256, and a
//! rename into place only once the file is complete and checked.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};

/// What the finished file must be.
#[derive(Debug, Clone, Copy, Default)]
pub struct Expected<'a> {
    pub sha256: Option<&'a str>,
    /// Leading hex digits of the sha256 (all that torchvision publishes).
    pub sha256_prefix: Option<&'a str>,
    pub size: Option<u64>,
}

/// A completed, checked file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("{url}: {source}")]
    Http {
        url: String,
        #[source]
        source: Box<ureq::Error>,
    },
    #[error("{url}: the server answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error(
        "{url}: the server sent a web page instead of the file{}; download it by hand and use \
         `facecast weights import`",
        reason.map(|r| format!(" ({r})")).unwrap_or_default()
    )]
    WebPage {
        url: String,
        reason: Option<&'static str>,
    },
    #[error("{url}: too many redirects or confirmation pages (more than 8); the last led to {last}")]
    TooManyHops { url: String, last: String },
    #[error("{url}: cancelled; {bytes} bytes are kept in {} and the next try resumes from them", part.display())]
    Cancelled { url: String, bytes: u64, part: PathBuf },
    #[error("{url}: the server answered HTTP {status} with no usable Location")]
    BadRedirect { url: String, status: u16 },
    #[error("{url}: the server offers {offered} bytes but {file} has {expected}")]
    WrongLength {
        url: String,
        file: String,
        offered: u64,
        expected: u64,
    },
    #[error("{url}: {file} failed its check: {reason}; the downloaded file was deleted")]
    Check {
        url: String,
        file: String,
        reason: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "{url}: the transfer broke off {attempts} times (last: {last}); {bytes} bytes are kept in {} and \
         the next try resumes from them",
        part.display()
    )]
    Interrupted {
        url: String,
        attempts: u32,
        last: String,
        bytes: u64,
        part: PathBuf,
    },
}

impl DownloadError {
    /// The server never answered (unreachable, refused, no such host, timed out): its other files
    /// need not be tried either.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, DownloadError::Http { source, .. }
            if is_transient(source) || matches!(**source, ureq::Error::HostNotFound))
    }
}

/// Why a finished file is not the one expected; each message names both values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("size mismatch: expected {want} bytes, got {got}")]
    Size { want: u64, got: u64 },
    #[error("checksum mismatch: expected sha256 {want}, got {got}")]
    Sha256 { want: String, got: String },
    #[error("checksum mismatch: expected a sha256 starting with {prefix}, got {got}")]
    Sha256Prefix { prefix: String, got: String },
}

/// Checks a finished file against what it must be.
pub fn check_digest(expected: &Expected, size: u64, sha256: &str) -> Result<(), DigestError> {
    if let Some(want) = expected.size
        && want != size
    {
        return Err(DigestError::Size { want, got: size });
    }
    if let Some(want) = expected.sha256
        && !want.eq_ignore_ascii_case(sha256)
    {
        return Err(DigestError::Sha256 {
            want: want.to_string(),
            got: sha256.to_string(),
        });
    }
    if let Some(prefix) = expected.sha256_prefix
        && !sha256
            .to_ascii_lowercase()
            .starts_with(&prefix.to_ascii_lowercase())
    {
        return Err(DigestError::Sha256Prefix {
            prefix: prefix.to_string(),
            got: sha256.to_string(),
        });
    }
    Ok(())
}

/// Links to a page that shows a file are turned into links to the file itself: GitHub `blob` pages
/// give the raw file under `raw`, Dropbox shares need `dl=1`.
pub fn direct_url(url: &str) -> String {
    if let Some(rest) = url.strip_prefix("https://github.com/") {
        let parts: Vec<&str> = rest.splitn(4, '/').collect();
        if parts.len() == 4 && parts[2] == "blob" {
            return format!("https://github.com/{}/{}/raw/{}", parts[0], parts[1], parts[3]);
        }
    }
    if url.starts_with("https://www.dropbox.com/") {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let kept: Vec<&str> = query
            .split('&')
            .filter(|p| !p.is_empty() && !p.starts_with("dl="))
            .collect();
        let mut out = format!("{base}?");
        for p in kept {
            out.push_str(p);
            out.push('&');
        }
        out.push_str("dl=1");
        return out;
    }
    url.to_string()
}

/// Redirects and confirmation pages followed for one file before giving up.
pub const MAX_HOPS: u32 = 8;

/// Why a [`Hosts::ENV`] value cannot be used; the message names the variable and the entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostsError {
    #[error("FACECAST_HOSTS: {0:?} is not host=base")]
    NotHostBase(String),
    #[error("FACECAST_HOSTS: {0:?} is not an http(s) URL")]
    NotHttp(String),
}

/// Where requests really go: some `https://host` prefixes sent to another base URL (a local test
/// server, a mirror). Every check (which pages are Drive's, which URL a partial file came from)
/// uses the URL as written; only the request itself is redirected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hosts {
    map: Vec<(String, String)>,
}

impl Hosts {
    /// `host=base;host=base`, e.g. `drive.google.com=http://127.0.0.1:8080`.
    pub const ENV: &'static str = "FACECAST_HOSTS";

    pub fn parse(spec: &str) -> Result<Hosts, HostsError> {
        let mut hosts = Hosts::default();
        for entry in spec.split([';', ',']).map(str::trim).filter(|e| !e.is_empty()) {
            let (host, base) = entry
                .split_once('=')
                .ok_or_else(|| HostsError::NotHostBase(entry.to_string()))?;
            if !(base.starts_with("http://") || base.starts_with("https://")) {
                return Err(HostsError::NotHttp(base.to_string()));
            }
            hosts = hosts.with(host.trim(), base.trim());
        }
        Ok(hosts)
    }

    /// [`Hosts::ENV`], or no redirection when it is unset.
    pub fn from_env() -> Result<Hosts, HostsError> {
        match std::env::var(Self::ENV) {
            Ok(spec) => Hosts::parse(&spec),
            Err(_) => Ok(Hosts::default()),
        }
    }

    pub fn with(mut self, host: &str, base: &str) -> Hosts {
        self.map
            .push((host.to_ascii_lowercase(), base.trim_end_matches('/').to_string()));
        self
    }

    /// The URL a request for `url` is sent to.
    pub fn physical(&self, url: &str) -> String {
        for (host, base) in &self.map {
            for scheme in ["https://", "http://"] {
                if let Some(rest) = url.strip_prefix(scheme)
                    && rest.len() >= host.len()
                    && rest[..host.len()].eq_ignore_ascii_case(host)
                    && rest[host.len()..]
                        .chars()
                        .next()
                        .is_none_or(|c| "/?#".contains(c))
                {
                    return format!("{base}{}", &rest[host.len()..]);
                }
            }
        }
        url.to_string()
    }
}

/// `<dest>.part`: where a download grows until it is checked.
pub fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".part");
    dest.with_file_name(name)
}

/// Records which URL a `.part` file came from, so that bytes of one source are never continued
/// with bytes of another.
fn source_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".part.url");
    dest.with_file_name(name)
}

pub struct Downloader {
    agent: ureq::Agent,
    pub hosts: Hosts,
    /// Set from another thread to stop a transfer; the partial file is kept for a later resume.
    pub cancel: Option<Arc<AtomicBool>>,
    /// Tries per URL; a transfer that breaks off is resumed from the partial file.
    pub attempts: u32,
    pub retry_pause: Duration,
}

impl Default for Downloader {
    fn default() -> Self {
        Downloader::new(Duration::from_secs(20), Duration::from_secs(60))
    }
}

enum Attempt {
    Done(Fetched),
    /// A redirect or a Drive confirmation page: the same request goes on at this URL.
    Follow(String),
    /// The server answered but the transfer broke off; worth another try from the partial file.
    Retry(String),
    /// No answer at all (refused, unreachable, timed out): retried only if the server answered before.
    NoAnswer(ureq::Error),
}

impl Downloader {
    /// `connect`: to open a connection; `read`: the longest silence while headers or data arrive.
    pub fn new(connect: Duration, read: Duration) -> Downloader {
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(connect))
            .timeout_recv_response(Some(read))
            .timeout_per_read(Some(read))
            .http_status_as_error(false)
            // Redirects are followed here, so that each hop goes through `hosts` and is counted.
            .max_redirects(0)
            // Byte ranges must address the file itself, not a compressed rendering of it.
            .accept_encoding("identity")
            .user_agent(concat!("facecast/", env!("CARGO_PKG_VERSION")))
            .build();
        Downloader {
            agent: config.new_agent(),
            hosts: Hosts::default(),
            cancel: None,
            attempts: 4,
            retry_pause: Duration::from_millis(500),
        }
    }

    /// Downloads `url` to `dest` (through `<dest>.part`), reporting (bytes done, total when known).
    /// A partial file from an earlier try of the same URL is continued. A file that fails its check
    /// is deleted; a transfer that keeps breaking off leaves the partial file for the next call.
    pub fn fetch(
        &self,
        url: &str,
        dest: &Path,
        expected: &Expected,
        progress: &mut dyn FnMut(u64, Option<u64>),
    ) -> Result<Fetched, DownloadError> {
        let url = direct_url(url);
        let part = part_path(dest);
        let source = source_path(dest);
        let same_source = fs::read_to_string(&source).is_ok_and(|s| s == url);
        if !same_source {
            remove_if_exists(&part)?;
        }
        fs::write(&source, &url).map_err(|e| io_err(&source, e))?;

        let mut last = String::new();
        let mut answered = false;
        let mut attempt = 0;
        // Each try starts from the URL as written: a confirmation's token may not outlive it.
        let mut current = url.clone();
        let mut hops = 0;
        while attempt < self.attempts.max(1) {
            if self.cancelled() {
                return Err(DownloadError::Cancelled {
                    url,
                    bytes: fs::metadata(&part).map(|m| m.len()).unwrap_or(0),
                    part,
                });
            }
            if attempt > 0 && hops == 0 {
                std::thread::sleep(self.retry_pause);
            }
            let outcome = self
                .attempt(&current, dest, &part, expected, progress)
                .inspect_err(|_| {
                    if !part.exists() {
                        let _ = fs::remove_file(&source);
                    }
                })?;
            match outcome {
                Attempt::Done(fetched) => {
                    let _ = fs::remove_file(&source);
                    return Ok(fetched);
                }
                Attempt::Follow(next) => {
                    hops += 1;
                    if hops > MAX_HOPS {
                        return Err(DownloadError::TooManyHops { url, last: next });
                    }
                    current = next;
                    continue;
                }
                Attempt::Retry(why) => {
                    tracing::info!("{url}: try {} of {} failed: {why}", attempt + 1, self.attempts);
                    answered = true;
                    last = why;
                }
                // A source that never answered is not worth waiting for again: the caller has others.
                Attempt::NoAnswer(e) if !answered => {
                    if !part.exists() {
                        let _ = fs::remove_file(&source);
                    }
                    return Err(DownloadError::Http {
                        url,
                        source: Box::new(e),
                    });
                }
                Attempt::NoAnswer(e) => last = e.to_string(),
            }
            attempt += 1;
            current = url.clone();
            hops = 0;
        }
        let bytes = fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
        Err(DownloadError::Interrupted {
            url,
            attempts: self.attempts.max(1),
            last,
            bytes,
            part,
        })
    }

    fn cancelled(&self) -> bool {
        self.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed))
    }

    fn attempt(
        &self,
        url: &str,
        dest: &Path,
        part: &Path,
        expected: &Expected,
        progress: &mut dyn FnMut(u64, Option<u64>),
    ) -> Result<Attempt, DownloadError> {
        let mut offset = fs::metadata(part).map(|m| m.len()).unwrap_or(0);
        if expected.size.is_some_and(|size| offset > size) {
            remove_if_exists(part)?;
            offset = 0;
        }
        let mut request = self.agent.get(self.hosts.physical(url));
        if offset > 0 {
            request = request.header("Range", format!("bytes={offset}-"));
        }
        let response = match request.call() {
            Ok(r) => r,
            Err(e) if is_transient(&e) => return Ok(Attempt::NoAnswer(e)),
            Err(e) => {
                return Err(DownloadError::Http {
                    url: url.to_string(),
                    source: Box::new(e),
                });
            }
        };
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let content_length = header("content-length").and_then(|v| v.trim().parse::<u64>().ok());
        let content_type = header("content-type").unwrap_or_default();
        let content_range = header("content-range");
        if matches!(status, 301 | 302 | 303 | 307 | 308) {
            return match header("location") {
                Some(location) => Ok(Attempt::Follow(super::drive::resolve(url, location.trim()))),
                None => Err(DownloadError::BadRedirect {
                    url: url.to_string(),
                    status,
                }),
            };
        }
        if content_type
            .trim_start()
            .to_ascii_lowercase()
            .starts_with("text/html")
        {
            // Drive's confirmation for large files is a page; it says where the file is. Any other
            // page where a checkpoint belongs is refused.
            let cookies: Vec<String> = response
                .headers()
                .get_all("set-cookie")
                .iter()
                .filter_map(|v| v.to_str().ok().map(str::to_string))
                .collect();
            let mut bytes = Vec::new();
            // A page cut short is still worth reading: the form sits near its top.
            let _ = response
                .into_body()
                .into_reader()
                .take(super::drive::PAGE_LIMIT)
                .read_to_end(&mut bytes);
            let page = String::from_utf8_lossy(&bytes);
            return match super::drive::confirmation(url, &page, &cookies) {
                Some(next) => Ok(Attempt::Follow(next)),
                None => Err(DownloadError::WebPage {
                    url: url.to_string(),
                    reason: super::drive::page_reason(&page),
                }),
            };
        }

        let (start, total) = match status {
            200 => (0, content_length),
            206 => match content_range.as_deref().and_then(parse_content_range) {
                Some((first, total)) if first == offset => {
                    (offset, total.or(content_length.map(|n| offset + n)))
                }
                // A range other than the one asked for: start over rather than splice wrong bytes.
                _ => {
                    remove_if_exists(part)?;
                    return Ok(Attempt::Retry(format!(
                        "the server sent range {:?} when asked for bytes {offset}-",
                        content_range.unwrap_or_default()
                    )));
                }
            },
            416 if offset > 0 => {
                // The partial file may already be whole (a cut just before the rename); the checks decide.
                if expected.size == Some(offset) {
                    return self.finish(url, dest, part, expected, None).map(Attempt::Done);
                }
                remove_if_exists(part)?;
                return Ok(Attempt::Retry(
                    "the server refused the resume range; starting over".into(),
                ));
            }
            500..=599 => return Ok(Attempt::Retry(format!("HTTP {status}"))),
            _ => {
                return Err(DownloadError::Status {
                    url: url.to_string(),
                    status,
                });
            }
        };
        if let (Some(offered), Some(want)) = (total, expected.size)
            && offered != want
        {
            remove_if_exists(part)?;
            return Err(DownloadError::WrongLength {
                url: url.to_string(),
                file: display_name(dest),
                offered,
                expected: want,
            });
        }

        // A 200 answer to a range request means the server ignored the range: the body is the whole file.
        // Not truncated on open: the kept bytes are hashed first, the length is set below.
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(part)
            .map_err(|e| io_err(part, e))?;
        let mut hasher = Sha256::new();
        if start == 0 {
            file.set_len(0).map_err(|e| io_err(part, e))?;
        } else {
            // The bytes kept from the earlier try enter the digest first.
            file.seek(SeekFrom::Start(0)).map_err(|e| io_err(part, e))?;
            let hashed = io::copy(&mut (&mut file).take(start), &mut HashWriter(&mut hasher))
                .map_err(|e| io_err(part, e))?;
            if hashed != start {
                drop(file);
                remove_if_exists(part)?;
                return Ok(Attempt::Retry("the partial file shrank while resuming".into()));
            }
        }
        file.seek(SeekFrom::Start(start)).map_err(|e| io_err(part, e))?;
        file.set_len(start).map_err(|e| io_err(part, e))?;
        let mut done = start;
        progress(done, total);

        let mut body = response.into_body().into_reader();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    file.flush().map_err(|e| io_err(part, e))?;
                    return Ok(Attempt::Retry(format!("after {done} bytes: {e}")));
                }
            };
            file.write_all(&buf[..n]).map_err(|e| io_err(part, e))?;
            hasher.update(&buf[..n]);
            done += n as u64;
            if self.cancelled() {
                file.flush().map_err(|e| io_err(part, e))?;
                return Err(DownloadError::Cancelled {
                    url: url.to_string(),
                    bytes: done,
                    part: part.to_path_buf(),
                });
            }
            if expected.size.is_some_and(|size| done > size) {
                drop(file);
                remove_if_exists(part)?;
                return Err(DownloadError::Check {
                    url: url.to_string(),
                    file: display_name(dest),
                    reason: format!(
                        "more than the expected {} bytes arrived",
                        expected.size.unwrap_or(0)
                    ),
                });
            }
            progress(done, total);
        }
        file.sync_all().map_err(|e| io_err(part, e))?;
        drop(file);
        if let Some(total) = total
            && done < total
        {
            return Ok(Attempt::Retry(format!(
                "the connection closed after {done} of {total} bytes"
            )));
        }
        let digest = (done, hex::encode(hasher.finalize()));
        self.finish(url, dest, part, expected, Some(digest))
            .map(Attempt::Done)
    }

    /// Checks the complete partial file (hashing it unless the digest is known) and renames it into place.
    fn finish(
        &self,
        url: &str,
        dest: &Path,
        part: &Path,
        expected: &Expected,
        digest: Option<(u64, String)>,
    ) -> Result<Fetched, DownloadError> {
        let (size, sha256) = match digest {
            Some(d) => d,
            None => hash_file(part).map_err(|e| io_err(part, e))?,
        };
        if let Err(reason) = check_digest(expected, size, &sha256) {
            remove_if_exists(part)?;
            let _ = fs::remove_file(source_path(dest));
            return Err(DownloadError::Check {
                url: url.to_string(),
                file: display_name(dest),
                reason: reason.to_string(),
            });
        }
        fs::rename(part, dest).map_err(|e| io_err(dest, e))?;
        Ok(Fetched { size, sha256 })
    }
}

/// Size and sha256 of a file, streamed.
pub fn hash_file(path: &Path) -> io::Result<(u64, String)> {
    let mut file = File::open(path)?;
    hash_reader(&mut file)
}

pub fn hash_reader(reader: &mut dyn Read) -> io::Result<(u64, String)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1024 * 1024];
    let mut size = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, hex::encode(hasher.finalize())))
}

struct HashWriter<'a>(&'a mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `bytes first-last/total` (total may be `*`).
fn parse_content_range(value: &str) -> Option<(u64, Option<u64>)> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let (first, _last) = range.split_once('-')?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    Some((first.trim().parse().ok()?, total))
}

/// Connection-level failures and timeouts may pass; a bad URL or a TLS failure will not.
fn is_transient(err: &ureq::Error) -> bool {
    matches!(
        err,
        ureq::Error::Io(_) | ureq::Error::Timeout(_) | ureq::Error::ConnectionFailed
    )
}

fn remove_if_exists(path: &Path) -> Result<(), DownloadError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(path, e)),
        _ => Ok(()),
    }
}

fn io_err(path: &Path, source: io::Error) -> DownloadError {
    DownloadError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn display_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hosts_spec_is_read_and_a_wrong_entry_is_named() {
        let hosts = Hosts::parse("example.org=http://127.0.0.1:9/; other.org=https://mirror.test").unwrap();
        assert_eq!(
            hosts.physical("https://example.org/a?b"),
            "http://127.0.0.1:9/a?b"
        );
        assert_eq!(hosts.physical("https://example.orgx/a"), "https://example.orgx/a");
        assert_eq!(
            Hosts::parse("example.org"),
            Err(HostsError::NotHostBase("example.org".into()))
        );
        let err = Hosts::parse("example.org=ftp://x").unwrap_err();
        assert_eq!(err, HostsError::NotHttp("ftp://x".into()));
        assert!(err.to_string().starts_with("FACECAST_HOSTS: "), "{err}");
    }

    #[test]
    fn github_blob_links_become_raw_links() {
        assert_eq!(
            direct_url("https://github.com/timesler/facenet-pytorch/blob/master/data/pnet.pt"),
            "https://github.com/timesler/facenet-pytorch/raw/master/data/pnet.pt"
        );
        let raw = "https://github.com/timesler/facenet-pytorch/raw/master/data/pnet.pt";
        assert_eq!(direct_url(raw), raw);
        assert_eq!(
            direct_url("https://www.dropbox.com/s/abc/model.pth?dl=0"),
            "https://www.dropbox.com/s/abc/model.pth?dl=1"
        );
        assert_eq!(
            direct_url("https://www.dropbox.com/s/abc/model.pth"),
            "https://www.dropbox.com/s/abc/model.pth?dl=1"
        );
    }

    #[test]
    fn content_range_parses() {
        assert_eq!(parse_content_range("bytes 100-199/200"), Some((100, Some(200))));
        assert_eq!(parse_content_range("bytes 5-9/*"), Some((5, None)));
        assert_eq!(parse_content_range("items 1-2/3"), None);
    }

    #[test]
    fn digest_check_names_both_values() {
        let want = "ab".repeat(32);
        let expected = Expected {
            sha256: Some(&want),
            sha256_prefix: None,
            size: Some(3),
        };
        let err = check_digest(&expected, 3, &"cd".repeat(32)).unwrap_err();
        assert_eq!(
            err,
            DigestError::Sha256 {
                want: want.clone(),
                got: "cd".repeat(32)
            }
        );
        let text = err.to_string();
        assert!(text.contains(&want) && text.contains(&"cd".repeat(32)), "{text}");
        assert_eq!(
            check_digest(&expected, 4, &want).unwrap_err(),
            DigestError::Size { want: 3, got: 4 }
        );
        assert!(
            check_digest(&expected, 4, &want)
                .unwrap_err()
                .to_string()
                .contains("expected 3 bytes, got 4")
        );
        let prefix = Expected {
            sha256_prefix: Some("7ebf99e0"),
            ..Default::default()
        };
        assert!(check_digest(&prefix, 1, "7ebf99e0ffff").is_ok());
        assert!(check_digest(&prefix, 1, "00000000ffff").is_err());
    }
}
