//! The batch journal: one JSON line per finished photo in the output folder, appended and flushed as
//! each photo finishes, so that a killed run keeps what it did and a rerun of the same command
//! exports only the rest.
//!
//! A line records the input (its id and path), the sha256 of the source as it was read, the recipe's
//! hash, the file written and the outcome. A rerun skips a photo whose last line says it was
//! exported with the same recipe hash from the same source bytes, and whose output is still there;
//! anything else is done again. A line torn by a kill is ignored (and the next line starts on a line
//! of its own), so a journal never stops a run.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::batch::{BatchInput, BatchObserver, FileReport, FileStatus, Resumed};
use super::shard::Shard;

/// The journal's file name in the output folder (`facecast-journal.jsonl`, or with the shard, e.g.
/// `facecast-journal.shard-2-of-8.jsonl`, so that shards sharing a folder keep their own).
pub fn journal_path(out_dir: &Path, shard: Option<Shard>) -> PathBuf {
    match shard {
        Some(shard) => out_dir.join(format!("facecast-journal.{}.jsonl", shard.file_tag())),
        None => out_dir.join("facecast-journal.jsonl"),
    }
}

/// One finished photo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// The input's id: its path inside the folder given, or the path given for a file.
    pub id: String,
    /// The input's path as given (lossy where it is not UTF-8).
    pub input: String,
    /// sha256 of the source file's bytes, read before the photo was worked on; None when it could
    /// not be read.
    pub source_sha256: Option<String>,
    pub recipe_sha256: String,
    /// The file written (done only).
    pub output: Option<String>,
    /// done, skipped or failed.
    pub status: String,
    pub reason: Option<String>,
    pub faces: usize,
    /// When it finished, in seconds since 1970 (for people reading the journal).
    pub finished_unix_s: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("the batch journal {path}: {detail}")]
    Io { path: PathBuf, detail: String },
}

/// An open journal, appending.
pub struct Journal {
    file: File,
    path: PathBuf,
}

/// What earlier runs recorded: the last line of each input, by its path.
#[derive(Debug, Default)]
pub struct Previous {
    last: HashMap<String, JournalEntry>,
    /// Lines that could not be read (a line torn by a kill, or an edit by hand).
    pub unreadable_lines: usize,
}

/// Why a photo is done again rather than resumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not in the journal, or not exported there.
    New,
    Resume,
    SourceChanged,
    RecipeChanged,
    OutputGone,
}

impl Journal {
    /// Opens (creating) the journal at `path` for appending, with what earlier runs recorded.
    pub fn open(path: &Path) -> Result<(Journal, Previous), JournalError> {
        let fail = |what: &str, e: io::Error| JournalError::Io {
            path: path.to_path_buf(),
            detail: format!("{what}: {e}"),
        };
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(|e| fail("cannot be opened", e))?;
        let mut previous = Previous::default();
        let mut reader = BufReader::new(&file);
        let mut line = Vec::new();
        let mut ends_in_newline = true;
        loop {
            line.clear();
            let read = reader
                .read_until(b'\n', &mut line)
                .map_err(|e| fail("cannot be read", e))?;
            if read == 0 {
                break;
            }
            ends_in_newline = line.ends_with(b"\n");
            let text = line.trim_ascii();
            if text.is_empty() {
                continue;
            }
            match serde_json::from_slice::<JournalEntry>(text) {
                Ok(entry) => {
                    previous.last.insert(entry.input.clone(), entry);
                }
                Err(_) => previous.unreadable_lines += 1,
            }
        }
        drop(reader);
        if !ends_in_newline {
            // A kill tore the last line: the next one must not be glued to it.
            file.seek(SeekFrom::End(0))
                .map_err(|e| fail("cannot be read", e))?;
            file.write_all(b"\n").map_err(|e| fail("cannot be written", e))?;
        }
        Ok((
            Journal {
                file,
                path: path.to_path_buf(),
            },
            previous,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line and hands it to the operating system, so a killed process keeps it.
    pub fn record(&mut self, entry: &JournalEntry) -> Result<(), JournalError> {
        let fail = |e: String| JournalError::Io {
            path: self.path.clone(),
            detail: format!("cannot be written: {e}"),
        };
        let mut line = serde_json::to_vec(entry).map_err(|e| fail(e.to_string()))?;
        line.push(b'\n');
        // One write per line: with O_APPEND the line lands whole at the end.
        self.file.write_all(&line).map_err(|e| fail(e.to_string()))?;
        self.file.flush().map_err(|e| fail(e.to_string()))
    }
}

impl Previous {
    pub fn len(&self) -> usize {
        self.last.len()
    }

    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
    }

    /// Whether `input` can be skipped as exported, and if not, why. Reads the source to hash it
    /// only when the journal says it was exported with this recipe.
    pub fn verdict(&self, input: &BatchInput, recipe_sha256: &str) -> (Verdict, Option<Resumed>) {
        let Some(entry) = self.last.get(&*input.path.to_string_lossy()) else {
            return (Verdict::New, None);
        };
        let Some(output) = entry.output.as_ref().filter(|_| entry.status == "done") else {
            return (Verdict::New, None);
        };
        if entry.recipe_sha256 != recipe_sha256 {
            return (Verdict::RecipeChanged, None);
        }
        let output = PathBuf::from(output);
        if !output.is_file() {
            return (Verdict::OutputGone, None);
        }
        match (&entry.source_sha256, sha256_file(&input.path)) {
            (Some(then), Ok(now)) if *then == now => (
                Verdict::Resume,
                Some(Resumed {
                    output,
                    faces: entry.faces,
                }),
            ),
            _ => (Verdict::SourceChanged, None),
        }
    }
}

/// sha256 (hex) of a file's bytes, read in pieces.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(hex::encode(hasher.finalize()))
}

/// An observer that journals each photo as it finishes, then hands every event on.
pub struct JournalObserver<'a> {
    inner: &'a mut dyn BatchObserver,
    journal: Journal,
    inputs: &'a [BatchInput],
    recipe_sha256: String,
    /// The source's hash, taken when the photo started (before it was read for work).
    started_sha: Option<(usize, Option<String>)>,
    /// The first failure to write the journal; the run goes on, the caller says so.
    pub error: Option<JournalError>,
}

impl<'a> JournalObserver<'a> {
    pub fn new(
        inner: &'a mut dyn BatchObserver,
        journal: Journal,
        inputs: &'a [BatchInput],
        recipe_sha256: String,
    ) -> JournalObserver<'a> {
        JournalObserver {
            inner,
            journal,
            inputs,
            recipe_sha256,
            started_sha: None,
            error: None,
        }
    }

    fn entry(&self, index: usize, report: &FileReport, sha: Option<String>) -> JournalEntry {
        let id = self
            .inputs
            .get(index)
            .map(|i| i.id.clone())
            .unwrap_or_else(|| report.input.to_string_lossy().into_owned());
        JournalEntry {
            id,
            input: report.input.to_string_lossy().into_owned(),
            source_sha256: sha,
            recipe_sha256: self.recipe_sha256.clone(),
            output: report.output.as_ref().map(|p| p.to_string_lossy().into_owned()),
            status: report.status.as_str().to_string(),
            reason: report.reason.clone(),
            faces: report.faces,
            finished_unix_s: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        }
    }
}

impl BatchObserver for JournalObserver<'_> {
    fn is_cancelled(&self) -> bool {
        self.inner.is_cancelled()
    }

    fn file_started(&mut self, index: usize, total: usize, input: &Path) {
        self.started_sha = Some((index, sha256_file(input).ok()));
        self.inner.file_started(index, total, input);
    }

    fn file_finished(&mut self, index: usize, total: usize, report: &FileReport) {
        // A resumed photo is in the journal already; a photo the run never reached (stopped) is
        // not finished, so a rerun tries it.
        let reached = report.status != FileStatus::Skipped
            || matches!(self.started_sha, Some((started, _)) if started == index);
        if !report.resumed && reached {
            let sha = match self.started_sha.take() {
                Some((started, sha)) if started == index => sha,
                _ => None,
            };
            let entry = self.entry(index, report, sha);
            if let Err(e) = self.journal.record(&entry)
                && self.error.is_none()
            {
                self.error = Some(e);
            }
        }
        self.inner.file_finished(index, total, report);
    }
}
