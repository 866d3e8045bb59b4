//! Photos named by URL in a product feed: downloaded concurrently (with a limit), retried with a
//! growing pause when the server is busy or silent, capped in size, checked to be an image (an HTML
//! error page served with status 200 is not a photo), and kept in a cache keyed by URL and ETag, so
//! that a rerun asks the server only whether the photo changed.
//!
//! Cache layout: `<cache>/<sha256 of the URL, 32 hex digits>/` holds `entry.json` (URL, ETag, size,
//! sha256) and the photo under the URL's own file name, so an export named `{stem}` keeps it.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How feeds are fetched.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Downloads at once.
    pub concurrency: usize,
    /// Tries per URL (timeouts, dropped connections, HTTP 429 and 5xx are tried again).
    pub attempts: u32,
    /// The pause before the second try; it doubles for each further one.
    pub backoff: Duration,
    /// The largest photo accepted, in bytes.
    pub max_bytes: u64,
    /// The longest wait for a connection, the response or the next bytes.
    pub timeout: Duration,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            concurrency: 8,
            attempts: 3,
            backoff: Duration::from_millis(500),
            max_bytes: 64 << 20,
            timeout: Duration::from_secs(30),
        }
    }
}

/// Where a photo came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Downloaded in this run.
    Downloaded,
    /// In the cache, and the server said it has not changed (ETag), or the server was not asked.
    Cached,
    /// A local path, not a URL.
    Local,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub path: PathBuf,
    pub origin: Origin,
}

/// Why a photo could not be had; each names the URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("{url}: not a usable URL: {detail}")]
    BadUrl { url: String, detail: String },
    #[error("{url}: {detail} (after {attempts} tries)")]
    Unreachable {
        url: String,
        attempts: u32,
        detail: String,
    },
    #[error("{url}: the server answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: not a photo: {detail}")]
    NotAPhoto { url: String, detail: String },
    #[error("{url}: larger than the {limit}-byte limit{}", size.map(|s| format!(" ({s} bytes)")).unwrap_or_default())]
    TooLarge {
        url: String,
        limit: u64,
        size: Option<u64>,
    },
    #[error("{url}: the cache {path}: {detail}")]
    Cache {
        url: String,
        path: PathBuf,
        detail: String,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CacheEntry {
    url: String,
    etag: Option<String>,
    file: String,
    size: u64,
    sha256: String,
}

/// Whether a feed cell names a URL (else it is a local path).
pub fn is_url(cell: &str) -> bool {
    let lower = cell.trim_start().to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

pub struct FeedFetcher {
    agent: ureq::Agent,
    cache: PathBuf,
    pub options: FetchOptions,
}

enum Try {
    Done(Fetched),
    Again(String),
}

impl FeedFetcher {
    /// A fetcher keeping its cache in `cache` (created when needed).
    pub fn new(cache: PathBuf, options: FetchOptions) -> FeedFetcher {
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(options.timeout))
            .timeout_recv_response(Some(options.timeout))
            .timeout_per_read(Some(options.timeout))
            .http_status_as_error(false)
            .max_redirects(8)
            .user_agent(concat!("facecast/", env!("CARGO_PKG_VERSION")))
            .build();
        FeedFetcher {
            agent: config.new_agent(),
            cache,
            options,
        }
    }

    /// Every URL of `urls`, at most `concurrency` at once, each once however often it is listed;
    /// results in the order of `urls`.
    pub fn fetch_all(&self, urls: &[&str]) -> Vec<Result<Fetched, FetchError>> {
        self.fetch_all_with(urls, &|_, _| {}, &|| false)
    }

    /// [`FeedFetcher::fetch_all`] telling `progress` (URLs done, distinct URLs) after each one, and
    /// starting no further download once `stop` says so (those URLs fail as not fetched).
    pub fn fetch_all_with(
        &self,
        urls: &[&str],
        progress: &(dyn Fn(usize, usize) + Sync),
        stop: &(dyn Fn() -> bool + Sync),
    ) -> Vec<Result<Fetched, FetchError>> {
        let mut unique: Vec<&str> = urls.to_vec();
        unique.sort_unstable();
        unique.dedup();
        let results: Mutex<Vec<Option<Result<Fetched, FetchError>>>> = Mutex::new(vec![None; unique.len()]);
        let next = AtomicUsize::new(0);
        let done = AtomicUsize::new(0);
        let workers = self.options.concurrency.clamp(1, unique.len().max(1));
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    loop {
                        if stop() {
                            break;
                        }
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(url) = unique.get(i) else { break };
                        let result = self.fetch(url);
                        if let Ok(mut all) = results.lock() {
                            all[i] = Some(result);
                        }
                        progress(done.fetch_add(1, Ordering::Relaxed) + 1, unique.len());
                    }
                });
            }
        });
        let results = results.into_inner().unwrap_or_default();
        urls.iter()
            .map(|url| {
                unique
                    .binary_search(url)
                    .ok()
                    .and_then(|i| results.get(i).cloned().flatten())
                    .unwrap_or_else(|| {
                        Err(FetchError::Unreachable {
                            url: url.to_string(),
                            attempts: 0,
                            detail: "the download worker stopped".into(),
                        })
                    })
            })
            .collect()
    }

    /// One URL, from the cache when the server says it has not changed.
    pub fn fetch(&self, url: &str) -> Result<Fetched, FetchError> {
        let url = url.trim();
        if let Err(e) = url.parse::<ureq::http::Uri>() {
            return Err(FetchError::BadUrl {
                url: url.to_string(),
                detail: e.to_string(),
            });
        }
        let dir = self
            .cache
            .join(&hex::encode(Sha256::digest(url.as_bytes()))[..32]);
        let cached = read_entry(&dir).filter(|e| e.url == url && dir.join(&e.file).is_file());
        let attempts = self.options.attempts.max(1);
        let mut last = String::new();
        for attempt in 0..attempts {
            if attempt > 0 {
                std::thread::sleep(self.options.backoff * 2u32.saturating_pow(attempt - 1));
            }
            match self.attempt(url, &dir, cached.as_ref())? {
                Try::Done(fetched) => return Ok(fetched),
                Try::Again(why) => last = why,
            }
        }
        Err(FetchError::Unreachable {
            url: url.to_string(),
            attempts,
            detail: last,
        })
    }

    fn attempt(&self, url: &str, dir: &Path, cached: Option<&CacheEntry>) -> Result<Try, FetchError> {
        let mut request = self.agent.get(url);
        if let Some(etag) = cached.and_then(|c| c.etag.as_deref()) {
            request = request.header("If-None-Match", etag);
        }
        let response = match request.call() {
            Ok(r) => r,
            Err(e @ (ureq::Error::Io(_) | ureq::Error::Timeout(_) | ureq::Error::ConnectionFailed)) => {
                return Ok(Try::Again(e.to_string()));
            }
            Err(e) => {
                return Err(FetchError::Unreachable {
                    url: url.to_string(),
                    attempts: 1,
                    detail: e.to_string(),
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
        if let (304, Some(entry)) = (status, cached) {
            return Ok(Try::Done(Fetched {
                path: dir.join(&entry.file),
                origin: Origin::Cached,
            }));
        }
        if status == 429 || (500..=599).contains(&status) {
            return Ok(Try::Again(format!("the server answered HTTP {status}")));
        }
        if status != 200 {
            return Err(FetchError::Status {
                url: url.to_string(),
                status,
            });
        }
        let etag = header("etag");
        let content_type = header("content-type").unwrap_or_default().to_ascii_lowercase();
        if content_type.starts_with("text/") || content_type.contains("html") {
            return Err(FetchError::NotAPhoto {
                url: url.to_string(),
                detail: format!("the server sent {}", content_type.trim()),
            });
        }
        let limit = self.options.max_bytes;
        let length = header("content-length").and_then(|v| v.trim().parse::<u64>().ok());
        if length.is_some_and(|n| n > limit) {
            return Err(FetchError::TooLarge {
                url: url.to_string(),
                limit,
                size: length,
            });
        }
        let cache_error = |path: &Path, e: io::Error| FetchError::Cache {
            url: url.to_string(),
            path: path.to_path_buf(),
            detail: e.to_string(),
        };
        fs::create_dir_all(dir).map_err(|e| cache_error(dir, e))?;
        let mut temp = tempfile::Builder::new()
            .prefix(crate::io::TEMP_PREFIX)
            .tempfile_in(dir)
            .map_err(|e| cache_error(dir, e))?;
        let mut body = response.into_body().into_reader().take(limit + 1);
        let mut hasher = Sha256::new();
        let mut head = Vec::new();
        let mut size = 0u64;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // The transfer broke off: worth another try.
                Err(e) => return Ok(Try::Again(format!("the transfer broke off: {e}"))),
            };
            size += n as u64;
            if size > limit {
                return Err(FetchError::TooLarge {
                    url: url.to_string(),
                    limit,
                    size: None,
                });
            }
            if head.len() < 64 {
                head.extend_from_slice(&buf[..n.min(64 - head.len())]);
            }
            hasher.update(&buf[..n]);
            temp.write_all(&buf[..n])
                .map_err(|e| cache_error(temp.path(), e))?;
        }
        if length.is_some_and(|n| n != size) {
            return Ok(Try::Again(format!(
                "the transfer broke off after {size} of {} bytes",
                length.unwrap_or(0)
            )));
        }
        if image::guess_format(&head).is_err() {
            let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
            let detail = if text.contains("<html") || text.contains("<!doctype") {
                "the content is an HTML page".to_string()
            } else if size == 0 {
                "the content is empty".to_string()
            } else {
                "the content is not an image format Facecast reads".to_string()
            };
            return Err(FetchError::NotAPhoto {
                url: url.to_string(),
                detail,
            });
        }
        let file = file_name_of(url);
        let dest = dir.join(&file);
        temp.persist(&dest).map_err(|e| cache_error(&dest, e.error))?;
        let entry = CacheEntry {
            url: url.to_string(),
            etag,
            file,
            size,
            sha256: hex::encode(hasher.finalize()),
        };
        let entry_path = dir.join("entry.json");
        let text =
            serde_json::to_vec_pretty(&entry).map_err(|e| cache_error(&entry_path, io::Error::other(e)))?;
        crate::io::atomic::write_atomic(&entry_path, &text).map_err(|e| cache_error(&entry_path, e))?;
        Ok(Try::Done(Fetched {
            path: dest,
            origin: Origin::Downloaded,
        }))
    }
}

fn read_entry(dir: &Path) -> Option<CacheEntry> {
    serde_json::from_slice(&fs::read(dir.join("entry.json")).ok()?).ok()
}

/// The URL's last path segment as a safe file name ("photo" when it has none).
fn file_name_of(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or("");
    let after_host = path.splitn(4, '/').nth(3).unwrap_or("");
    let last = after_host.rsplit('/').next().unwrap_or("");
    let safe: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let safe = safe.trim_start_matches('.');
    if safe.is_empty() || safe == "entry.json" {
        "photo".to_string()
    } else {
        safe.chars().take(120).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_files_keep_the_urls_name() {
        assert_eq!(
            file_name_of("https://cdn.example/p/Dress%20Red.JPG?w=800"),
            "Dress_20Red.JPG"
        );
        assert_eq!(file_name_of("https://cdn.example/"), "photo");
        assert_eq!(file_name_of("https://cdn.example"), "photo");
        assert_eq!(file_name_of("http://h/a/../.hidden"), "hidden");
        assert!(is_url("HTTPS://x/a.jpg") && !is_url("photos/a.jpg"));
    }
}
