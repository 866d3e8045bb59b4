//! `facecast batch`: runs a recipe over photos and folders, with a progress bar on a terminal and,
//! with `--json`, a machine-readable report on stdout.
//!
//! Exit status: 0 when every photo was exported, 2 when some were skipped or failed, 1 when nothing
//! could run (bad recipe, missing weights, unusable output folder, no photos).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::compute::{BackendChoice, Compute};
use crate::pipeline::batch::{BatchInput, BatchObserver, FileReport, FileStatus};
use crate::pipeline::recipe::Recipe;
use crate::pipeline::runtime::NetworkCache;
use crate::pipeline::steps::{StepEnv, build_engine, load_networks};
use crate::weights::store::WeightsStore;

#[derive(Debug, clap::Args)]
pub struct BatchArgs {
    /// The virtual model: a name or id from the virtual-model library, or a face photo (overrides
    /// the recipe's).
    #[arg(long = "virtual", value_name = "NAME_OR_PHOTO")]
    pub virtual_model: Option<String>,
    /// The recipe to run (JSON, see docs/recipe.md); default: the default recipe.
    #[arg(long, value_name = "FILE")]
    pub recipe: Option<PathBuf>,
    /// The output folder (overrides the recipe's; created when missing).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print a JSON report on stdout: {"results":[{"input","status","output","reason"}]}.
    #[arg(long)]
    pub json: bool,
    /// Photos or folders (searched recursively).
    #[arg(required = true, value_name = "INPUTS")]
    pub inputs: Vec<PathBuf>,
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    results: Vec<ResultLine<'a>>,
}

#[derive(Debug, Serialize)]
struct ResultLine<'a> {
    input: String,
    status: &'a str,
    output: Option<String>,
    reason: Option<&'a str>,
}

impl<'a> ResultLine<'a> {
    fn of(report: &'a FileReport) -> ResultLine<'a> {
        ResultLine {
            input: report.input.to_string_lossy().into_owned(),
            status: report.status.as_str(),
            output: report.output.as_ref().map(|p| p.to_string_lossy().into_owned()),
            reason: report.reason.as_deref(),
        }
    }
}

/// The recipe a command line asks for: the file (or the default) with `--virtual` and `--out` applied.
pub fn effective_recipe(args: &BatchArgs) -> anyhow::Result<Recipe> {
    let mut recipe = match &args.recipe {
        Some(path) => Recipe::load(path)?,
        None => Recipe::default(),
    };
    if let Some(model) = &args.virtual_model {
        recipe.virtual_model = Some(model.clone());
    }
    if let Some(out) = &args.out {
        recipe.export.folder = Some(out.clone());
    }
    if recipe.export.folder.is_none() {
        anyhow::bail!("no output folder: pass --out DIR (or set export.folder in the recipe)");
    }
    Ok(recipe)
}

pub fn run(args: BatchArgs, backend: BackendChoice, data_dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let recipe = effective_recipe(&args)?;
    let compute = Compute::select(backend)?;
    let store = WeightsStore::open(data_dir)?;
    let env = StepEnv {
        store: &store,
        device: &compute.device,
    };
    let mut cache = NetworkCache::default();
    let loaded = load_networks(&recipe, &env, &mut cache)?;
    let inputs = BatchInput::walk(&args.inputs);
    if inputs.is_empty() {
        anyhow::bail!(
            "no photos found in {}",
            args.inputs
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let mut engine = build_engine(recipe, &env, &cache, &loaded)?;
    if engine.step_count() == 0 && !args.json {
        eprintln!("facecast: the recipe enables no edit step: photos with a face are exported as they are");
    }
    let mut observer = Terminal::new(inputs.len(), args.json);
    let summary = engine
        .run(&inputs, &mut observer)
        .with_context(|| "the export could not start")?;
    observer.finish();

    if summary.stale_removed > 0 {
        eprintln!(
            "facecast: removed {} temporary file(s) left by an interrupted export",
            summary.stale_removed
        );
    }
    if args.json {
        let report = Report {
            results: summary.reports.iter().map(ResultLine::of).collect(),
        };
        println!("{}", serde_json::to_string(&report)?);
    }
    let (done, skipped, failed) = (
        summary.count(FileStatus::Done),
        summary.count(FileStatus::Skipped),
        summary.count(FileStatus::Failed),
    );
    eprintln!(
        "{done} exported, {skipped} skipped, {failed} failed, into {} ({})",
        engine.out_dir().display(),
        compute.label()
    );
    if let Some(stop) = &summary.stopped {
        eprintln!("facecast: {stop}");
    }
    Ok(if summary.all_done() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// A progress bar on a terminal; one line per photo otherwise (unless the report is JSON).
struct Terminal {
    bar: Option<ProgressBar>,
    lines: bool,
}

impl Terminal {
    fn new(total: usize, json: bool) -> Terminal {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
            if let Ok(style) =
                ProgressStyle::with_template("{bar:30} {pos}/{len} photos, {eta} left  {wide_msg}")
            {
                bar.set_style(style);
            }
            bar
        });
        Terminal { bar, lines: !json }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    fn say(&self, line: String) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => println!("{line}"),
        }
    }
}

impl BatchObserver for Terminal {
    fn file_started(&mut self, _index: usize, _total: usize, input: &Path) {
        if let Some(bar) = &self.bar {
            bar.set_message(crate::io::display_name(input));
        }
    }

    fn file_finished(&mut self, _index: usize, _total: usize, report: &FileReport) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
        if !self.lines {
            return;
        }
        let line = match (&report.output, &report.reason) {
            (Some(out), _) => format!("done: {} -> {}", report.input.display(), out.display()),
            (None, Some(reason)) => format!("{}: {reason}", report.status.as_str()),
            (None, None) => format!("{}: {}", report.status.as_str(), report.input.display()),
        };
        self.say(line);
    }
}
