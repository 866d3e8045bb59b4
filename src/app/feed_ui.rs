//! The window's side of product feeds (issue 17): *Import product feed…* picks a CSV, the Feed
//! window asks which column holds each row's photo (and, optionally, its id), and the import runs
//! on the worker ([`crate::jobs::feed::ImportFeed`]: the same feed reader and downloader as
//! `facecast screen --csv`, progress in the status bar, cancellable). Each photo enters the library
//! with its row's cells, so *Export screening lists…* writes faces.csv and no_faces.csv with the
//! feed's own columns, through the pipeline's one writer, as `facecast screen` does.

use std::path::PathBuf;
use std::sync::Arc;

use egui::RichText;

use super::FacecastApp;
use super::state::{AppState, FaceBadge, FollowUp};
use crate::jobs::JobId;
use crate::jobs::feed::{FeedOutput, ImportFeed, WriteScreeningLists};
use crate::pipeline::feed::read_header;
use crate::pipeline::screen::{ScreenRow, Verdict};

/// Labels, also used by tests to click them.
pub const IMPORT_FEED: &str = "Import product feed…";
pub const EXPORT_LISTS: &str = "Export screening lists…";
pub const FEED_WINDOW: &str = "Import a product feed";
pub const IMPORT_BUTTON: &str = "Import feed";
/// How many failed rows the Feed window lists (the rest are counted).
const SHOWN_FAILURES: usize = 20;

/// A feed row's cells, kept with the photo it named.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedCells {
    pub header: Arc<Vec<String>>,
    pub cells: Vec<String>,
}

/// A feed picked, waiting for its columns to be chosen.
#[derive(Debug, Clone)]
pub struct FeedDraft {
    pub path: PathBuf,
    pub header: Vec<String>,
    /// The photo column, by index into `header`.
    pub url_column: usize,
    /// The id column, when one is chosen.
    pub id_column: Option<usize>,
}

/// How the last import went.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedSummary {
    pub feed: PathBuf,
    pub rows: usize,
    /// Rows whose photo was had (downloaded, cached or local).
    pub photos: usize,
    /// The rows that failed, each with its reason (naming the URL or file).
    pub failed: Vec<String>,
}

#[derive(Debug, Default)]
pub struct FeedState {
    pub draft: Option<FeedDraft>,
    /// The import running, if one is.
    pub job: Option<JobId>,
    pub last: Option<FeedSummary>,
    /// Writing the screening lists.
    pub lists_job: Option<JobId>,
}

impl FeedState {
    pub fn job_finished(&mut self, job: JobId) {
        if self.job == Some(job) {
            self.job = None;
        }
        if self.lists_job == Some(job) {
            self.lists_job = None;
        }
    }
}

/// The column a feed's photo is most likely in: the first whose name says URL, image or photo.
pub fn guess_photo_column(header: &[String]) -> usize {
    let says = |h: &String, word: &str| h.to_ascii_lowercase().contains(word);
    ["url", "image", "photo", "picture"]
        .iter()
        .find_map(|word| header.iter().position(|h| says(h, word)))
        .unwrap_or(0)
}

impl AppState {
    /// Folds a feed job's output; new photos need thumbnails.
    pub(super) fn apply_feed_output(&mut self, output: FeedOutput) -> Option<FollowUp> {
        match output {
            FeedOutput::Imported { feed, header, rows } => {
                let paths: Vec<PathBuf> = rows.iter().filter_map(|r| r.photo.clone().ok()).collect();
                let added = self.library.add(paths);
                let mut failed = Vec::new();
                for row in &rows {
                    match &row.photo {
                        Ok(path) => {
                            let id = self.library.id_of_path(path);
                            if let Some(entry) = id.and_then(|id| self.library.get_mut(id))
                                && entry.feed.is_none()
                            {
                                entry.feed = Some(FeedCells {
                                    header: Arc::clone(&header),
                                    cells: row.cells.clone(),
                                });
                            }
                        }
                        Err(reason) => failed.push(reason.clone()),
                    }
                }
                if !failed.is_empty() {
                    self.toasts.warning(format!(
                        "{} of {} rows of {} have no photo: see the Feed window",
                        failed.len(),
                        rows.len(),
                        crate::io::display_name(&feed)
                    ));
                }
                self.feed.last = Some(FeedSummary {
                    feed,
                    rows: rows.len(),
                    photos: rows.len() - failed.len(),
                    failed,
                });
                (!added.is_empty()).then_some(FollowUp::LoadThumbnails(added))
            }
            FeedOutput::ListsWritten { files, rows } => {
                let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
                self.toasts.info(format!(
                    "{rows} screened photos written to {}",
                    names.join(" and ")
                ));
                None
            }
        }
    }

    /// The library as screening lists: the header (the first imported feed's columns, else
    /// `path`), a row per screened photo, whether the classifier column is written, and how many
    /// photos were left out because they are not screened yet (or failed).
    pub fn screening_rows(&self) -> (Vec<String>, Vec<ScreenRow>, bool, usize) {
        let min_score = self.detect_settings.min_score;
        let feed_header = self
            .library
            .entries()
            .iter()
            .find_map(|e| e.feed.as_ref().map(|f| Arc::clone(&f.header)));
        let header = feed_header
            .as_ref()
            .map_or_else(|| vec!["path".to_string()], |h| h.to_vec());
        let with_classifier = self.classifier.installed.is_some();
        let mut rows = Vec::new();
        let mut left_out = 0;
        for entry in self.library.entries() {
            let (verdict, faces) = match entry.badge(min_score) {
                Some(FaceBadge::Faces(n)) => (Verdict::Faces, n),
                Some(FaceBadge::NoFace) => (Verdict::NoFaces, 0),
                Some(FaceBadge::Error(_)) | None => {
                    left_out += 1;
                    continue;
                }
            };
            // A row of another feed (other columns) or a file: its path under the first column.
            let cells = match (&entry.feed, &feed_header) {
                (Some(feed), Some(header)) if feed.header == *header => feed.cells.clone(),
                _ => vec![entry.path.to_string_lossy().into_owned()],
            };
            let classifier = match entry.opinion {
                Some(super::classifier_ui::Opinion::Face(p)) => Some(p),
                _ => None,
            };
            rows.push(ScreenRow {
                cells,
                verdict,
                faces,
                best: entry
                    .faces()
                    .and_then(|f| f.faces.iter().map(|face| face.score).reduce(f32::max)),
                classifier,
                reason: String::new(),
            });
        }
        (header, rows, with_classifier, left_out)
    }
}

impl FacecastApp {
    /// A feed was picked: its columns are read and the Feed window asks which holds the photos.
    pub fn choose_feed(&mut self, path: PathBuf) {
        match read_header(&path) {
            Ok(header) => {
                let url_column = guess_photo_column(&header);
                self.state.feed.draft = Some(FeedDraft {
                    path,
                    header,
                    url_column,
                    id_column: None,
                });
            }
            Err(e) => self.state.toasts.error(e.to_string()),
        }
    }

    /// Imports the chosen feed on the worker; its photos join the library as they come.
    pub fn import_feed(&mut self) {
        let Some(draft) = self.state.feed.draft.clone() else {
            return;
        };
        let Some(store) = &self.store else {
            self.state
                .toasts
                .error("Importing a feed needs a data folder for its download cache.");
            return;
        };
        let column = |i: usize| draft.header.get(i).cloned();
        let Some(url_column) = column(draft.url_column) else {
            return;
        };
        let job = self.worker.enqueue(ImportFeed {
            path: draft.path.clone(),
            url_column,
            id_column: draft.id_column.and_then(column),
            cache: store.data_dir().join("feed-cache"),
        });
        self.state.feed.job = Some(job);
        self.state.feed.last = None;
    }

    /// Writes faces.csv and no_faces.csv of the library into `out` on the worker; returns the
    /// job, or `None` (with a toast saying why) when nothing is screened yet.
    pub fn export_screening_lists(&mut self, out: PathBuf) -> Option<JobId> {
        let (header, rows, with_classifier, left_out) = self.state.screening_rows();
        if rows.is_empty() {
            self.state
                .toasts
                .warning("No photo is screened yet: there is nothing to list.");
            return None;
        }
        if left_out > 0 {
            self.state.toasts.info(format!(
                "{left_out} photos not screened yet (or unreadable) are left out of the lists"
            ));
        }
        let job = self.worker.enqueue(WriteScreeningLists {
            out,
            header,
            rows,
            with_classifier,
        });
        self.state.feed.lists_job = Some(job);
        Some(job)
    }

    /// The Feed window: the feed's columns to choose from, the import's progress and its result.
    pub(super) fn feed_window(&mut self, ctx: &egui::Context) {
        let state = &mut self.state;
        if state.feed.draft.is_none() {
            return;
        }
        let mut open = true;
        let mut import = false;
        let mut cancel = None;
        let running = state
            .feed
            .job
            .and_then(|job| state.activities.iter().find(|a| a.job == job).cloned());
        let feed = &mut state.feed;
        egui::Window::new(FEED_WINDOW)
            .open(&mut open)
            .default_width(520.0)
            .show(ctx, |ui| {
                let Some(draft) = feed.draft.as_mut() else { return };
                ui.label(RichText::new(draft.path.display().to_string()).weak());
                ui.label("The column holding each row's photo (a URL, or a path beside the feed):");
                ui.horizontal_wrapped(|ui| {
                    for (i, name) in draft.header.iter().enumerate() {
                        ui.radio_value(&mut draft.url_column, i, name);
                    }
                });
                ui.horizontal(|ui| {
                    ui.label("Id column:");
                    let shown = draft
                        .id_column
                        .and_then(|i| draft.header.get(i))
                        .map_or("the photo column", String::as_str)
                        .to_string();
                    egui::ComboBox::from_id_salt("feed-id-column")
                        .selected_text(shown)
                        .show_ui(ui, |ui| {
                            ui.selectable_value(&mut draft.id_column, None, "the photo column");
                            for (i, name) in draft.header.iter().enumerate() {
                                ui.selectable_value(&mut draft.id_column, Some(i), name);
                            }
                        });
                });
                ui.separator();
                match (feed.job, &running) {
                    (Some(job), activity) => {
                        ui.horizontal(|ui| {
                            let (done, total) = activity.as_ref().map_or((0, 0), |a| (a.done, a.total));
                            let fraction = (total > 0).then(|| done as f32 / total as f32);
                            ui.add(
                                egui::ProgressBar::new(fraction.unwrap_or(0.0))
                                    .desired_width(260.0)
                                    .text(format!("{done} of {total} photos downloaded")),
                            );
                            if ui.button("Cancel").clicked() {
                                cancel = Some(job);
                            }
                        });
                    }
                    (None, _) => {
                        if ui.button(IMPORT_BUTTON).clicked() {
                            import = true;
                        }
                    }
                }
                if let Some(last) = &feed.last {
                    summary_ui(ui, last);
                }
            });
        if import {
            self.import_feed();
        }
        if let Some(job) = cancel {
            self.worker.cancel(job);
        }
        if !open {
            self.state.feed.draft = None;
        }
    }
}

/// The result of the last import: counts, then the failed rows with their reasons.
fn summary_ui(ui: &mut egui::Ui, last: &FeedSummary) {
    ui.label(format!(
        "{} rows: {} photos, {} without a photo",
        last.rows,
        last.photos,
        last.failed.len()
    ));
    for reason in last.failed.iter().take(SHOWN_FAILURES) {
        ui.label(RichText::new(reason).small().color(ui.visuals().warn_fg_color));
    }
    if last.failed.len() > SHOWN_FAILURES {
        ui.label(RichText::new(format!("and {} more", last.failed.len() - SHOWN_FAILURES)).small());
    }
}
