//! The batch report: one JSON document per run in the output folder (`facecast-report.json`, or
//! `facecast-report.shard-K-of-N.json` for a shard), the same document `facecast batch --json`
//! prints, and the merge of the shards' reports into the report of the whole run.
//!
//! Every input has a line with its place in the whole run (`index`), so merging the shards' reports
//! gives the unsharded run's report line for line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::batch::{BatchInput, BatchSummary, FileStatus};
use super::shard::Shard;

pub const REPORT_FORMAT: &str = "facecast-batch-report";
pub const REPORT_VERSION: u32 = 1;

/// The report's file name in the output folder.
pub fn report_path(out_dir: &Path, shard: Option<Shard>) -> PathBuf {
    match shard {
        Some(shard) => out_dir.join(format!("facecast-report.{}.json", shard.file_tag())),
        None => out_dir.join("facecast-report.json"),
    }
}

/// Whether a file name is a batch report's (`facecast-report*.json`).
pub fn is_report_name(name: &str) -> bool {
    name.starts_with("facecast-report") && name.ends_with(".json")
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchReport {
    pub format: String,
    pub version: u32,
    /// The recipe's hash, as in every export's metadata.
    pub recipe_sha256: String,
    /// The share of the run this report covers; None for a whole run (or a merge).
    pub shard: Option<Shard>,
    /// How many inputs the whole run has (before sharding).
    pub inputs_total: usize,
    pub counts: Counts,
    /// Why the run ended before its last photo, if it did (one line per shard after a merge).
    pub stopped: Vec<String>,
    pub results: Vec<ReportLine>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Exported, by this run or (resumed) an earlier one.
    pub done: usize,
    /// Of the done, how many an earlier run exported.
    pub resumed: usize,
    pub skipped: usize,
    pub failed: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportLine {
    /// The input's place in the whole run (0-based).
    pub index: usize,
    pub id: String,
    pub input: String,
    /// done, skipped or failed.
    pub status: String,
    pub output: Option<String>,
    pub reason: Option<String>,
    pub faces: usize,
    pub resumed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("the batch report {path}: {detail}")]
    Read { path: PathBuf, detail: String },
    #[error("the batch report {path} cannot be written: {detail}")]
    Write { path: PathBuf, detail: String },
    #[error("no batch report (facecast-report*.json) in {0}")]
    NoneFound(PathBuf),
    #[error("these reports cannot be merged: {0}")]
    Mismatch(String),
}

impl Counts {
    fn add(&mut self, other: Counts) {
        self.done += other.done;
        self.resumed += other.resumed;
        self.skipped += other.skipped;
        self.failed += other.failed;
    }
}

impl BatchReport {
    /// The report of a run over `inputs` (in the order they ran), `inputs_total` being the size of
    /// the whole run when this is a shard of it.
    pub fn of(
        summary: &BatchSummary,
        inputs: &[BatchInput],
        recipe_sha256: String,
        shard: Option<Shard>,
        inputs_total: usize,
    ) -> BatchReport {
        let results: Vec<ReportLine> = summary
            .reports
            .iter()
            .zip(inputs)
            .enumerate()
            .map(|(i, (report, input))| ReportLine {
                index: input.position.unwrap_or(i),
                id: input.id.clone(),
                input: report.input.to_string_lossy().into_owned(),
                status: report.status.as_str().to_string(),
                output: report.output.as_ref().map(|p| p.to_string_lossy().into_owned()),
                reason: report.reason.clone(),
                faces: report.faces,
                resumed: report.resumed,
            })
            .collect();
        BatchReport {
            format: REPORT_FORMAT.to_string(),
            version: REPORT_VERSION,
            recipe_sha256,
            shard,
            inputs_total,
            counts: Counts {
                done: summary.count(FileStatus::Done),
                resumed: summary.resumed(),
                skipped: summary.count(FileStatus::Skipped),
                failed: summary.count(FileStatus::Failed),
            },
            stopped: summary.stopped.iter().map(|s| s.to_string()).collect(),
            results,
        }
    }

    pub fn read(path: &Path) -> Result<BatchReport, ReportError> {
        let fail = |detail: String| ReportError::Read {
            path: path.to_path_buf(),
            detail,
        };
        let text = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
        let report: BatchReport =
            serde_json::from_slice(&text).map_err(|e| fail(format!("not a batch report: {e}")))?;
        if report.format != REPORT_FORMAT || report.version > REPORT_VERSION {
            return Err(fail(format!(
                "format \"{}\" version {} is not a batch report this Facecast reads ({REPORT_FORMAT} {REPORT_VERSION})",
                report.format, report.version
            )));
        }
        Ok(report)
    }

    /// Writes the report atomically (a reader never sees half of it).
    pub fn write(&self, path: &Path) -> Result<(), ReportError> {
        let fail = |detail: String| ReportError::Write {
            path: path.to_path_buf(),
            detail,
        };
        let text = serde_json::to_string_pretty(self).map_err(|e| fail(e.to_string()))?;
        crate::io::atomic::write_atomic(path, text.as_bytes()).map_err(|e| fail(e.to_string()))
    }

    /// Joins the reports of every shard of one run into the report of the whole run, in the whole
    /// run's order. Refuses reports of different recipes or runs, a shard missing or given twice,
    /// and an input listed twice or not at all: a merged report never hides a gap.
    pub fn merge(reports: Vec<(PathBuf, BatchReport)>) -> Result<BatchReport, ReportError> {
        let mismatch = ReportError::Mismatch;
        let Some((first_path, first)) = reports.first() else {
            return Err(mismatch("no report was given".into()));
        };
        let (first_path, recipe, total) = (
            first_path.clone(),
            first.recipe_sha256.clone(),
            first.inputs_total,
        );
        let mut shards: BTreeMap<u32, PathBuf> = BTreeMap::new();
        let mut count = None;
        for (path, report) in &reports {
            if report.recipe_sha256 != recipe {
                return Err(mismatch(format!(
                    "{} ran recipe {} but {} ran recipe {}",
                    first_path.display(),
                    &recipe[..recipe.len().min(12)],
                    path.display(),
                    &report.recipe_sha256[..report.recipe_sha256.len().min(12)]
                )));
            }
            if report.inputs_total != total {
                return Err(mismatch(format!(
                    "{} is a run over {total} inputs but {} over {}: not the same run",
                    first_path.display(),
                    path.display(),
                    report.inputs_total
                )));
            }
            let Some(shard) = report.shard else {
                if reports.len() > 1 {
                    return Err(mismatch(format!(
                        "{} is a whole run, not a shard",
                        path.display()
                    )));
                }
                continue;
            };
            if *count.get_or_insert(shard.count) != shard.count {
                return Err(mismatch(format!(
                    "{} is shard {shard} but the others are of {}",
                    path.display(),
                    count.unwrap_or(0)
                )));
            }
            if let Some(other) = shards.insert(shard.index, path.clone()) {
                return Err(mismatch(format!(
                    "shard {shard} is given twice: {} and {}",
                    other.display(),
                    path.display()
                )));
            }
        }
        if let Some(count) = count {
            let missing: Vec<String> = (1..=count)
                .filter(|k| !shards.contains_key(k))
                .map(|k| format!("{k}/{count}"))
                .collect();
            if !missing.is_empty() {
                return Err(mismatch(format!("shard {} is missing", missing.join(", "))));
            }
        }

        let mut merged = BatchReport {
            format: REPORT_FORMAT.to_string(),
            version: REPORT_VERSION,
            recipe_sha256: recipe,
            shard: None,
            inputs_total: total,
            counts: Counts::default(),
            stopped: Vec::new(),
            results: Vec::new(),
        };
        let mut by_index: BTreeMap<usize, (ReportLine, PathBuf)> = BTreeMap::new();
        for (path, report) in reports {
            merged.counts.add(report.counts);
            merged.stopped.extend(
                report
                    .stopped
                    .into_iter()
                    .map(|s| format!("{}: {s}", path.display())),
            );
            for line in report.results {
                if let Some((other, other_path)) = by_index.insert(line.index, (line, path.clone())) {
                    return Err(mismatch(format!(
                        "input {} ({}) is in {} and in {}",
                        other.index,
                        other.id,
                        other_path.display(),
                        path.display()
                    )));
                }
            }
        }
        let missing = (0..total).filter(|i| !by_index.contains_key(i)).count();
        if missing > 0 || by_index.len() != total {
            return Err(mismatch(format!(
                "the reports list {} of the run's {total} inputs ({missing} missing)",
                by_index.len()
            )));
        }
        merged.results = by_index.into_values().map(|(line, _)| line).collect();
        Ok(merged)
    }
}

/// The reports to merge from what a user names: report files as they are, and in each folder every
/// `facecast-report*.json` (in name order).
pub fn find_reports(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ReportError> {
    let mut found = Vec::new();
    for path in paths {
        if !path.is_dir() {
            found.push(path.clone());
            continue;
        }
        let entries = std::fs::read_dir(path).map_err(|e| ReportError::Read {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        let mut here: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_str().is_some_and(is_report_name))
            .map(|e| e.path())
            .collect();
        if here.is_empty() {
            return Err(ReportError::NoneFound(path.clone()));
        }
        here.sort();
        found.extend(here);
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(index: usize, status: &str) -> ReportLine {
        ReportLine {
            index,
            id: format!("p{index}.jpg"),
            input: format!("/in/p{index}.jpg"),
            status: status.to_string(),
            output: (status == "done").then(|| format!("/out/p{index}_vm.jpg")),
            reason: None,
            faces: usize::from(status == "done"),
            resumed: false,
        }
    }

    fn shard(k: u32, n: u32, lines: Vec<ReportLine>) -> (PathBuf, BatchReport) {
        let mut counts = Counts::default();
        for l in &lines {
            match l.status.as_str() {
                "done" => counts.done += 1,
                "skipped" => counts.skipped += 1,
                _ => counts.failed += 1,
            }
        }
        let report = BatchReport {
            format: REPORT_FORMAT.into(),
            version: REPORT_VERSION,
            recipe_sha256: "ab".repeat(32),
            shard: Shard::new(k, n),
            inputs_total: 4,
            counts,
            stopped: Vec::new(),
            results: lines,
        };
        (PathBuf::from(format!("out-{k}")), report)
    }

    #[test]
    fn shards_merge_in_the_whole_runs_order_and_gaps_are_refused() {
        let a = shard(1, 2, vec![line(1, "done"), line(3, "failed")]);
        let b = shard(2, 2, vec![line(0, "done"), line(2, "skipped")]);
        let merged = BatchReport::merge(vec![a.clone(), b.clone()]).expect("merge");
        let order: Vec<usize> = merged.results.iter().map(|l| l.index).collect();
        assert_eq!(order, [0, 1, 2, 3]);
        assert_eq!(
            merged.counts,
            Counts {
                done: 2,
                resumed: 0,
                skipped: 1,
                failed: 1
            }
        );
        assert_eq!(merged.shard, None);

        let err = BatchReport::merge(vec![a.clone()]).expect_err("a shard is missing");
        assert!(err.to_string().contains("shard 2/2 is missing"), "{err}");
        let err = BatchReport::merge(vec![a.clone(), a.clone()]).expect_err("twice");
        assert!(err.to_string().contains("given twice"), "{err}");
        let mut other = b.clone();
        other.1.recipe_sha256 = "cd".repeat(32);
        let err = BatchReport::merge(vec![a.clone(), other]).expect_err("two recipes");
        assert!(err.to_string().contains("recipe"), "{err}");
        let mut short = b;
        short.1.results.pop();
        let err = BatchReport::merge(vec![a, short]).expect_err("an input is missing");
        assert!(err.to_string().contains("3 of the run's 4"), "{err}");
    }

    #[test]
    fn a_report_round_trips_and_other_json_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_, report) = shard(1, 1, vec![line(0, "done")]);
        let path = report_path(dir.path(), report.shard);
        assert!(path.ends_with("facecast-report.shard-1-of-1.json"));
        report.write(&path).expect("write");
        assert_eq!(BatchReport::read(&path).expect("read"), report);
        assert_eq!(find_reports(&[dir.path().to_path_buf()]).expect("find"), [path]);
        let other = dir.path().join("other.json");
        std::fs::write(&other, b"{\"results\":[]}").expect("write");
        let err = BatchReport::read(&other).expect_err("not a report");
        assert!(err.to_string().contains("other.json"), "{err}");
    }
}
