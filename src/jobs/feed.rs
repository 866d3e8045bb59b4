//! Product feeds in the window: importing a feed (its photos downloaded on this worker through the
//! same [`Feed`] and [`FeedFetcher`] as `facecast screen --csv`, with progress and cancel), and
//! writing the library's screening lists with the pipeline's one writer.

use std::path::PathBuf;
use std::sync::Arc;

use super::{Job, JobContext, JobError, JobOutput, Lane};
use crate::io::fetch::{FeedFetcher, FetchOptions};
use crate::pipeline::feed::Feed;
use crate::pipeline::screen::{ScreenRow, Verdict, write_lists};

/// One row of an imported feed: its cells, and its photo on disk or why there is none.
#[derive(Debug, Clone)]
pub struct FeedRowResult {
    pub cells: Vec<String>,
    pub photo: Result<PathBuf, String>,
}

/// What the feed jobs tell the window.
#[derive(Debug, Clone)]
pub enum FeedOutput {
    /// Every row of a feed, resolved, under its header.
    Imported {
        feed: PathBuf,
        header: Arc<Vec<String>>,
        rows: Vec<FeedRowResult>,
    },
    /// The screening lists were written.
    ListsWritten { files: Vec<PathBuf>, rows: usize },
}

/// Reads a feed and downloads its photos into the cache.
#[derive(Debug, Clone)]
pub struct ImportFeed {
    pub path: PathBuf,
    pub url_column: String,
    pub id_column: Option<String>,
    /// The download cache (the data folder's `feed-cache`, shared with the command line).
    pub cache: PathBuf,
}

impl Job for ImportFeed {
    fn label(&self) -> String {
        format!("Importing the feed {}", super::photos::display_name(&self.path))
    }

    fn lane(&self) -> Lane {
        Lane::Io
    }

    fn run(self: Box<Self>, ctx: &JobContext) -> Result<(), JobError> {
        let feed = Feed::load(&self.path, &self.url_column, self.id_column.as_deref())
            .map_err(|e| JobError::Failed(e.to_string()))?;
        let fetcher = FeedFetcher::new(self.cache.clone(), FetchOptions::default());
        ctx.progress(0, 0);
        let resolved = feed.resolve_with(&fetcher, &|done, total| ctx.progress(done, total), &|| {
            ctx.is_cancelled()
        });
        ctx.check_cancelled()?;
        let rows = feed
            .rows
            .iter()
            .zip(resolved)
            .map(|(row, fetched)| FeedRowResult {
                cells: row.cells.clone(),
                photo: fetched.map(|f| f.path),
            })
            .collect();
        ctx.output(JobOutput::Feed(FeedOutput::Imported {
            feed: self.path,
            header: Arc::new(feed.header),
            rows,
        }));
        Ok(())
    }
}

/// Writes faces.csv and no_faces.csv of the library's screened photos.
#[derive(Debug, Clone)]
pub struct WriteScreeningLists {
    pub out: PathBuf,
    pub header: Vec<String>,
    pub rows: Vec<ScreenRow>,
    pub with_classifier: bool,
}

impl Job for WriteScreeningLists {
    fn label(&self) -> String {
        format!("Writing the screening lists into {}", self.out.display())
    }

    fn lane(&self) -> Lane {
        Lane::Io
    }

    fn run(self: Box<Self>, ctx: &JobContext) -> Result<(), JobError> {
        let lists = [Verdict::Faces, Verdict::NoFaces];
        let files = write_lists(&self.out, &self.header, &self.rows, &lists, self.with_classifier)
            .map_err(|e| JobError::Failed(e.to_string()))?;
        ctx.output(JobOutput::Feed(FeedOutput::ListsWritten {
            files,
            rows: self.rows.len(),
        }));
        Ok(())
    }
}
