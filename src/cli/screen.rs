//! `facecast screen`: sorts photos (files, folders, or a product feed's rows) into those with a face
//! and those without, as the original project did with `face_urln.csv` and `not_face_urln.csv`.
//!
//! With `--out DIR` it writes `faces.csv`, `no_faces.csv` and `failed.csv` (each row's own columns,
//! then `face_count`, `best_score`, the face classifier's `classifier_face_probability` when a
//! classifier is installed, and `reason`: [`crate::pipeline::screen`]) and `summary.json`. Every
//! row lands in exactly one of the three files. Exit status: 0 when every row was screened, 2 when
//! some failed, 1 when nothing could run.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;

use crate::compute::{BackendChoice, Compute};
use crate::io::fetch::{FeedFetcher, FetchOptions, Fetched, Origin};
use crate::io::{DecodeLimits, load_photo};
use crate::pipeline::classifier::{FaceClassifier, load_installed};
use crate::pipeline::detect::photo::{DetectSettings, detect_photo};
use crate::pipeline::feed::Feed;
use crate::pipeline::screen::{ScreenRow, Verdict, write_lists};
use crate::weights::models::FACE_CLASSIFIER_ID;
use crate::weights::store::{ModelStatus, WeightsStore};

#[derive(Debug, clap::Args)]
pub struct FeedArgs {
    /// A product feed: a CSV with a header row whose URL column names each row's photo (a URL, or
    /// a path relative to the CSV).
    #[arg(long, value_name = "FILE", requires = "url_column")]
    pub csv: Option<PathBuf>,
    /// The feed's column holding the photo's URL or path.
    #[arg(long, value_name = "NAME", requires = "csv")]
    pub url_column: Option<String>,
    /// The feed's column identifying a row (default: the URL column).
    #[arg(long, value_name = "NAME", requires = "csv")]
    pub id_column: Option<String>,
    /// Downloads at once.
    #[arg(long, value_name = "N", default_value_t = FetchOptions::default().concurrency)]
    pub concurrency: usize,
    /// Tries per URL when the server is busy or silent (with a doubling pause between them).
    #[arg(long, value_name = "N", default_value_t = FetchOptions::default().attempts)]
    pub tries: u32,
    /// Seconds to wait for a connection, an answer or the next bytes.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub timeout: f64,
    /// The largest photo downloaded, in MB.
    #[arg(long, value_name = "MB", default_value_t = 64)]
    pub max_mb: u64,
}

impl FeedArgs {
    pub fn fetcher(&self, data_dir: &std::path::Path) -> anyhow::Result<FeedFetcher> {
        if !(self.timeout.is_finite() && self.timeout > 0.0) {
            anyhow::bail!("--timeout {}: expected a number of seconds above 0", self.timeout);
        }
        Ok(FeedFetcher::new(
            data_dir.join("feed-cache"),
            FetchOptions {
                concurrency: self.concurrency.max(1),
                attempts: self.tries.max(1),
                timeout: Duration::from_secs_f64(self.timeout),
                max_bytes: self.max_mb.saturating_mul(1 << 20),
                ..FetchOptions::default()
            },
        ))
    }

    /// The feed named by `--csv`, read.
    pub fn feed(&self) -> anyhow::Result<Option<Feed>> {
        match (&self.csv, &self.url_column) {
            (Some(path), Some(column)) => Ok(Some(Feed::load(path, column, self.id_column.as_deref())?)),
            _ => Ok(None),
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct ScreenArgs {
    #[command(flatten)]
    pub feed: FeedArgs,
    /// Write faces.csv, no_faces.csv, failed.csv and summary.json into this folder.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// A face scores at least this (the screening rule of the original project: 0.70).
    #[arg(long, value_name = "S", default_value_t = 0.70)]
    pub min_score: f32,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Photos or folders (searched recursively), screened with the feed's rows or alone.
    #[arg(value_name = "INPUTS", required_unless_present = "csv")]
    pub inputs: Vec<PathBuf>,
}

#[derive(Debug, Serialize)]
struct Summary {
    rows: usize,
    faces: usize,
    no_faces: usize,
    failed: usize,
    downloaded: usize,
    from_cache: usize,
    local: usize,
    min_score: f32,
    feed: Option<String>,
}

pub fn run(args: ScreenArgs, backend: BackendChoice, data_dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let store = WeightsStore::open(data_dir.clone())?;
    let feed = args.feed.feed()?;
    let compute = Compute::select(backend)?;
    let nets = super::detect::load_detector(data_dir, &compute)?;
    let classifier = installed_classifier(&store, &compute);

    // Every row to screen: its own cells and where its photo is (or why there is none).
    let mut header = vec!["path".to_string()];
    let mut rows: Vec<(Vec<String>, Result<Fetched, String>)> = Vec::new();
    if let Some(feed) = &feed {
        let fetcher = args.feed.fetcher(store.data_dir())?;
        header = feed.header.clone();
        for (row, fetched) in feed.rows.iter().zip(feed.resolve(&fetcher)) {
            rows.push((row.cells.clone(), fetched));
        }
    }
    for path in crate::io::collect::collect_photos(&args.inputs) {
        let mut cells = vec![path.to_string_lossy().into_owned()];
        cells.resize(header.len(), String::new());
        rows.push((
            cells,
            Ok(Fetched {
                path,
                origin: Origin::Local,
            }),
        ));
    }
    if rows.is_empty() {
        anyhow::bail!("nothing to screen: the feed has no rows and no photo was given");
    }

    let settings = DetectSettings::default();
    let limits = DecodeLimits::default();
    let mut summary = Summary {
        rows: rows.len(),
        faces: 0,
        no_faces: 0,
        failed: 0,
        downloaded: 0,
        from_cache: 0,
        local: 0,
        min_score: args.min_score,
        feed: feed.as_ref().map(|f| f.path.to_string_lossy().into_owned()),
    };
    let mut screened = Vec::with_capacity(rows.len());
    for (cells, fetched) in rows {
        let failed = |reason: String| ScreenRow {
            cells: cells.clone(),
            verdict: Verdict::Failed,
            faces: 0,
            best: None,
            classifier: None,
            reason,
        };
        let result = match fetched {
            Err(reason) => failed(reason),
            Ok(fetched) => {
                match fetched.origin {
                    Origin::Downloaded => summary.downloaded += 1,
                    Origin::Cached => summary.from_cache += 1,
                    Origin::Local => summary.local += 1,
                }
                match load_photo(&fetched.path, &limits) {
                    Err(e) => failed(e.to_string()),
                    Ok(photo) => match detect_photo(&nets, &photo.rgb, &settings, &compute.device) {
                        Err(e) => failed(format!("{}: {e}", fetched.path.display())),
                        Ok(found) => {
                            let best = found.faces.iter().map(|f| f.score).reduce(f32::max);
                            let faces = found.faces.iter().filter(|f| f.score >= args.min_score).count();
                            ScreenRow {
                                cells: cells.clone(),
                                verdict: if faces > 0 {
                                    Verdict::Faces
                                } else {
                                    Verdict::NoFaces
                                },
                                faces,
                                best,
                                classifier: classifier
                                    .as_ref()
                                    .and_then(|c| second_opinion(c, &photo.rgb, &fetched.path, &compute)),
                                reason: String::new(),
                            }
                        }
                    },
                }
            }
        };
        match result.verdict {
            Verdict::Faces => summary.faces += 1,
            Verdict::NoFaces => summary.no_faces += 1,
            Verdict::Failed => summary.failed += 1,
        }
        if !args.json {
            let what = match result.verdict {
                Verdict::Faces => format!("{} face(s)", result.faces),
                Verdict::NoFaces => "no face".to_string(),
                Verdict::Failed => format!("failed: {}", result.reason),
            };
            println!(
                "{}: {what}",
                result.cells.first().map(String::as_str).unwrap_or("")
            );
        }
        screened.push(result);
    }

    if let Some(out) = &args.out {
        let lists = [Verdict::Faces, Verdict::NoFaces, Verdict::Failed];
        write_lists(out, &header, &screened, &lists, classifier.is_some())?;
        let path = out.join("summary.json");
        crate::io::atomic::write_atomic(&path, serde_json::to_string_pretty(&summary)?.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    }
    eprintln!(
        "{} rows: {} with a face, {} without, {} failed ({} downloaded, {} from the cache) ({})",
        summary.rows,
        summary.faces,
        summary.no_faces,
        summary.failed,
        summary.downloaded,
        summary.from_cache,
        compute.label()
    );
    Ok(if summary.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// The installed face classifier, for its second opinion on every screened photo; `None` when
/// none is installed (no column then), or, with a warning, when it cannot be loaded.
fn installed_classifier(store: &WeightsStore, compute: &Compute) -> Option<FaceClassifier> {
    match store.status(FACE_CLASSIFIER_ID) {
        Ok(state) if matches!(state.status, ModelStatus::Missing { .. }) => return None,
        Ok(_) => {}
        Err(e) => {
            eprintln!("warning: the face classifier's install cannot be checked ({e}); screening without it");
            return None;
        }
    }
    match load_installed(store, &compute.device) {
        Ok(classifier) => Some(classifier),
        Err(e) => {
            eprintln!("warning: the face classifier cannot be loaded ({e}); screening without it");
            None
        }
    }
}

/// The classifier's probability that `rgb` shows a face; a failure is said and leaves the cell empty.
fn second_opinion(
    classifier: &FaceClassifier,
    rgb: &image::RgbImage,
    path: &std::path::Path,
    compute: &Compute,
) -> Option<f32> {
    match classifier.face_probability(&[rgb], &compute.device) {
        Ok(p) => p.first().copied(),
        Err(e) => {
            eprintln!("warning: {}: the face classifier failed: {e}", path.display());
            None
        }
    }
}
