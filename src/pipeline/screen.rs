//! Screening lists, as the original project kept them (`face_urln.csv`, `not_face_urln.csv`):
//! `faces.csv`, `no_faces.csv` and `failed.csv`, each row's own columns (a feed's, or `path`)
//! followed by `face_count`, `best_score`, the face classifier's second opinion when one was asked
//! (`classifier_face_probability`), and `reason`. The one writer of these files: `facecast screen`
//! and the window's export of the library both use it.

use std::path::{Path, PathBuf};

use crate::io::csv;

/// Where a row lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Faces,
    NoFaces,
    Failed,
}

impl Verdict {
    /// The list file of this verdict.
    pub fn file_name(self) -> &'static str {
        match self {
            Verdict::Faces => "faces.csv",
            Verdict::NoFaces => "no_faces.csv",
            Verdict::Failed => "failed.csv",
        }
    }
}

/// One screened row.
#[derive(Debug, Clone, PartialEq)]
pub struct ScreenRow {
    /// The row's own cells, under the lists' header.
    pub cells: Vec<String>,
    pub verdict: Verdict,
    /// Faces scoring at least the screening score.
    pub faces: usize,
    /// The best face score, when the photo was screened.
    pub best: Option<f32>,
    /// The face classifier's probability that the photo shows a face, when it was asked.
    pub classifier: Option<f32>,
    /// Why it failed (failed rows only).
    pub reason: String,
}

/// The column of the classifier's second opinion.
pub const CLASSIFIER_COLUMN: &str = "classifier_face_probability";

#[derive(Debug, thiserror::Error)]
pub enum ScreenListError {
    #[error("cannot create the folder {}: {source}", path.display())]
    Folder { path: PathBuf, source: std::io::Error },
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
}

/// The lists' columns: `header`, then what screening found.
pub fn columns(header: &[String], with_classifier: bool) -> Vec<String> {
    let mut columns = header.to_vec();
    columns.extend(["face_count".to_string(), "best_score".to_string()]);
    if with_classifier {
        columns.push(CLASSIFIER_COLUMN.to_string());
    }
    columns.push("reason".to_string());
    columns
}

/// The CSV text of one list: the rows of `verdict`, in order.
pub fn list_text(header: &[String], rows: &[ScreenRow], verdict: Verdict, with_classifier: bool) -> String {
    let mut text = String::new();
    csv::write_record(&mut text, &columns(header, with_classifier));
    for row in rows.iter().filter(|r| r.verdict == verdict) {
        let mut cells = row.cells.clone();
        cells.resize(header.len().max(cells.len()), String::new());
        cells.push(row.faces.to_string());
        cells.push(row.best.map(|b| format!("{b:.4}")).unwrap_or_default());
        if with_classifier {
            cells.push(row.classifier.map(|p| format!("{p:.4}")).unwrap_or_default());
        }
        cells.push(row.reason.clone());
        csv::write_record(&mut text, &cells);
    }
    text
}

/// Writes the lists of `verdicts` into `out` (created when needed), each atomically; returns the
/// files written.
pub fn write_lists(
    out: &Path,
    header: &[String],
    rows: &[ScreenRow],
    verdicts: &[Verdict],
    with_classifier: bool,
) -> Result<Vec<PathBuf>, ScreenListError> {
    std::fs::create_dir_all(out).map_err(|source| ScreenListError::Folder {
        path: out.to_path_buf(),
        source,
    })?;
    let mut written = Vec::new();
    for &verdict in verdicts {
        let path = out.join(verdict.file_name());
        let text = list_text(header, rows, verdict, with_classifier);
        crate::io::atomic::write_atomic(&path, text.as_bytes()).map_err(|source| ScreenListError::Write {
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[&str], verdict: Verdict, classifier: Option<f32>) -> ScreenRow {
        ScreenRow {
            cells: cells.iter().map(|c| c.to_string()).collect(),
            verdict,
            faces: usize::from(verdict == Verdict::Faces),
            best: (verdict != Verdict::Failed).then_some(0.5),
            classifier,
            reason: String::new(),
        }
    }

    #[test]
    fn each_list_holds_its_rows_under_the_rows_own_columns() {
        let header = vec!["sku".to_string(), "image_url".to_string()];
        let rows = [
            row(&["A1", "http://x/a.png"], Verdict::Faces, Some(0.9)),
            row(&["B2", "http://x/b.png"], Verdict::NoFaces, None),
        ];
        let faces = list_text(&header, &rows, Verdict::Faces, true);
        assert_eq!(
            faces,
            "sku,image_url,face_count,best_score,classifier_face_probability,reason\n\
             A1,http://x/a.png,1,0.5000,0.9000,\n"
        );
        let none = list_text(&header, &rows, Verdict::NoFaces, false);
        assert_eq!(
            none,
            "sku,image_url,face_count,best_score,reason\nB2,http://x/b.png,0,0.5000,\n"
        );
    }
}
