//! Product feeds: a CSV whose URL column names each row's photo (a URL, or a path relative to the
//! CSV's folder). Every row is kept, with its own columns, so results can be written back beside
//! them; a row whose photo cannot be had carries the reason instead of a file.

use std::path::{Path, PathBuf};

use crate::io::csv;
use crate::io::fetch::{FeedFetcher, FetchError, Fetched, Origin, is_url};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    #[error("the feed {path}: {detail}")]
    Read { path: PathBuf, detail: String },
    #[error("the feed {path} has no column \"{column}\" (its columns: {columns})")]
    NoColumn {
        path: PathBuf,
        column: String,
        columns: String,
    },
}

/// One row of a feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedRow {
    /// The line the row starts on (1-based, the header is line 1).
    pub line: usize,
    /// The id column's cell, else the URL cell: stable when rows are added or reordered.
    pub id: String,
    pub cells: Vec<String>,
    /// The URL column's cell.
    pub source: String,
}

#[derive(Debug, Clone)]
pub struct Feed {
    pub path: PathBuf,
    pub header: Vec<String>,
    pub rows: Vec<FeedRow>,
}

/// A feed's header row (its column names), for choosing the photo column.
pub fn read_header(path: &Path) -> Result<Vec<String>, FeedError> {
    let read_error = |detail: String| FeedError::Read {
        path: path.to_path_buf(),
        detail,
    };
    let bytes = std::fs::read(path).map_err(|e| read_error(e.to_string()))?;
    let text = String::from_utf8(bytes).map_err(|_| read_error("it is not UTF-8 text".into()))?;
    // Parsed whole: a quoted cell may hold line breaks, so the header cannot be cut off by lines.
    let records = csv::parse(&text).map_err(|e| read_error(e.to_string()))?;
    records
        .into_iter()
        .next()
        .map(|r| r.fields)
        .ok_or_else(|| read_error("it is empty: a header row naming the columns is needed".into()))
}

impl Feed {
    /// Reads a feed; the columns are named by the header row (exactly, or else ignoring case).
    pub fn load(path: &Path, url_column: &str, id_column: Option<&str>) -> Result<Feed, FeedError> {
        let read_error = |detail: String| FeedError::Read {
            path: path.to_path_buf(),
            detail,
        };
        let bytes = std::fs::read(path).map_err(|e| read_error(e.to_string()))?;
        let text = String::from_utf8(bytes).map_err(|_| read_error("it is not UTF-8 text".into()))?;
        let mut records = csv::parse(&text)
            .map_err(|e| read_error(e.to_string()))?
            .into_iter();
        let header = records
            .next()
            .ok_or_else(|| read_error("it is empty: a header row naming the columns is needed".into()))?
            .fields;
        let column = |name: &str| {
            header
                .iter()
                .position(|h| h.trim() == name)
                .or_else(|| header.iter().position(|h| h.trim().eq_ignore_ascii_case(name)))
                .ok_or_else(|| FeedError::NoColumn {
                    path: path.to_path_buf(),
                    column: name.to_string(),
                    columns: header.join(", "),
                })
        };
        let url_at = column(url_column)?;
        let id_at = id_column.map(column).transpose()?;
        let rows = records
            .map(|record| {
                let source = record.fields.get(url_at).cloned().unwrap_or_default();
                let id = id_at
                    .and_then(|i| record.fields.get(i))
                    .filter(|id| !id.trim().is_empty())
                    .cloned()
                    .unwrap_or_else(|| source.clone());
                FeedRow {
                    line: record.line,
                    id,
                    cells: record.fields,
                    source,
                }
            })
            .collect();
        Ok(Feed {
            path: path.to_path_buf(),
            header,
            rows,
        })
    }

    /// Each row's photo on disk: downloaded (or found in the cache) for a URL, the path for the
    /// rest (relative to the feed's folder). In row order.
    pub fn resolve(&self, fetcher: &FeedFetcher) -> Vec<Result<Fetched, String>> {
        self.resolve_with(fetcher, &|_, _| {}, &|| false)
    }

    /// [`Feed::resolve`] reporting the downloads' progress (done, distinct URLs) and stopping
    /// further downloads once `stop` says so (the window's import runs this on its worker).
    pub fn resolve_with(
        &self,
        fetcher: &FeedFetcher,
        progress: &(dyn Fn(usize, usize) + Sync),
        stop: &(dyn Fn() -> bool + Sync),
    ) -> Vec<Result<Fetched, String>> {
        let urls: Vec<&str> = self
            .rows
            .iter()
            .filter(|r| is_url(&r.source))
            .map(|r| r.source.trim())
            .collect();
        let mut fetched = fetcher.fetch_all_with(&urls, progress, stop).into_iter();
        let base = self.path.parent().unwrap_or(Path::new("."));
        self.rows
            .iter()
            .map(|row| {
                let cell = row.source.trim();
                if cell.is_empty() {
                    return Err(format!(
                        "{} line {}: the photo column is empty",
                        self.path.display(),
                        row.line
                    ));
                }
                if is_url(cell) {
                    return match fetched.next() {
                        Some(result) => result.map_err(|e: FetchError| e.to_string()),
                        None => Err(format!("{cell}: not fetched")),
                    };
                }
                Ok(Fetched {
                    path: base.join(cell),
                    origin: Origin::Local,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_keep_their_cells_and_ids_fall_back_to_the_url() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("feed.csv");
        std::fs::write(
            &path,
            "SKU,Image URL,title\nA1,https://x/a.jpg,Dress\n,local/b.png,\"Shirt, blue\"\n",
        )
        .expect("write");
        let feed = Feed::load(&path, "image url", Some("sku")).expect("load");
        assert_eq!(feed.header, ["SKU", "Image URL", "title"]);
        assert_eq!(feed.rows[0].id, "A1");
        assert_eq!(
            feed.rows[1].id, "local/b.png",
            "an empty id falls back to the URL"
        );
        assert_eq!(feed.rows[1].cells[2], "Shirt, blue");
        assert_eq!(feed.rows[1].line, 3);
        let err = Feed::load(&path, "photo", None).expect_err("no such column");
        assert!(err.to_string().contains("SKU, Image URL, title"), "{err}");
    }
}
