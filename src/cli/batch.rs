//! `facecast batch`: runs a recipe over photos and folders, with progress on stderr, a journal and
//! a report in the output folder, and, with `--json`, the report on stdout. A rerun of the same
//! command resumes from the journal; `--shard K/N` runs a stable share of the inputs, and
//! `facecast batch merge-reports` joins the shares' reports (see docs/scale.md).
//!
//! Exit status: 0 when every photo was exported, 2 when some were skipped or failed, 1 when nothing
//! could run (bad recipe, missing weights, unusable output folder, no photos).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use super::batch_progress::{Progress, ProgressMode};
use crate::compute::{BackendChoice, Compute};
use crate::pipeline::batch::{BatchInput, BatchSummary, prepare_folder};
use crate::pipeline::journal::{Journal, JournalObserver, Verdict, journal_path};
use crate::pipeline::recipe::Recipe;
use crate::pipeline::report::{BatchReport, find_reports, report_path};
use crate::pipeline::runtime::NetworkCache;
use crate::pipeline::shard::{JOB_COMPLETION_INDEX, Shard};
use crate::pipeline::steps::{StepEnv, build_engine, load_networks};
use crate::weights::store::WeightsStore;

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct BatchArgs {
    #[command(subcommand)]
    pub command: Option<BatchCommand>,
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
    /// Print the run's report on stdout as JSON (the document written to facecast-report.json).
    #[arg(long)]
    pub json: bool,
    /// Export every photo again, even those the output folder's journal says were exported from
    /// the same bytes with the same recipe.
    #[arg(long)]
    pub force: bool,
    /// Run only share K of N (1-based), chosen by a stable hash of each input's id: N copies with
    /// K = 1..N together run every input once.
    #[arg(long, value_name = "K/N", conflicts_with = "shards")]
    pub shard: Option<Shard>,
    /// Run share JOB_COMPLETION_INDEX+1 of N (the 0-based index a Kubernetes Indexed Job sets).
    #[arg(long, value_name = "N")]
    pub shards: Option<u32>,
    /// Progress: auto (a bar with rate and time left on a terminal, a line per photo otherwise),
    /// json (one JSON object per finished photo on stderr) or none.
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,
    #[command(flatten)]
    pub feed: super::screen::FeedArgs,
    /// Photos or folders (searched recursively), run after the feed's rows.
    #[arg(required_unless_present = "csv", value_name = "INPUTS")]
    pub inputs: Vec<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
pub enum BatchCommand {
    /// Join the reports of a sharded run's copies into the report of the whole run.
    MergeReports(MergeArgs),
}

#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// Output folders of the shards (every facecast-report*.json in them) or report files.
    #[arg(required = true, value_name = "DIR")]
    pub reports: Vec<PathBuf>,
    /// Where to write the merged facecast-report.json (created when missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Print the merged report on stdout as JSON.
    #[arg(long)]
    pub json: bool,
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

/// The rows of `--csv`, their photos downloaded (or found in the cache): a row whose photo cannot
/// be had is an input that fails with the reason, so every row is in the report.
fn feed_inputs(args: &super::screen::FeedArgs, store: &WeightsStore) -> anyhow::Result<Vec<BatchInput>> {
    let Some(feed) = args.feed()? else {
        return Ok(Vec::new());
    };
    let fetcher = args.fetcher(store.data_dir())?;
    let inputs = feed
        .rows
        .iter()
        .zip(feed.resolve(&fetcher))
        .map(|(row, fetched)| {
            let mut input = match fetched {
                Ok(fetched) => BatchInput::new(fetched.path),
                Err(reason) => BatchInput {
                    unavailable: Some(reason),
                    ..BatchInput::new(row.source.trim())
                },
            };
            input.id = row.id.clone();
            input
        })
        .collect();
    Ok(inputs)
}

/// The share of the inputs this copy runs: `--shard K/N`, or `--shards N` with the index a
/// Kubernetes Indexed Job puts in the environment.
fn chosen_shard(args: &BatchArgs) -> anyhow::Result<Option<Shard>> {
    if let Some(count) = args.shards {
        let index = std::env::var(JOB_COMPLETION_INDEX).ok();
        return Ok(Some(Shard::from_completion_index(count, index.as_deref())?));
    }
    Ok(args.shard)
}

pub fn run(args: BatchArgs, backend: BackendChoice, data_dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    if let Some(BatchCommand::MergeReports(merge)) = &args.command {
        return merge_reports(merge);
    }
    let recipe = effective_recipe(&args)?;
    let shard = chosen_shard(&args)?;
    let compute = Compute::select(backend)?;
    let store = WeightsStore::open(data_dir)?;
    let env = StepEnv {
        store: &store,
        device: &compute.device,
    };
    let mut cache = NetworkCache::default();
    let loaded = load_networks(&recipe, &env, &mut cache)?;
    let mut all = feed_inputs(&args.feed, &store)?;
    all.extend(BatchInput::walk(&args.inputs));
    if all.is_empty() {
        anyhow::bail!(
            "no photos found in {}",
            args.inputs
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let inputs_total = all.len();
    // Every copy walks every input, so each knows its inputs' places in the whole run.
    let mut inputs: Vec<BatchInput> = all
        .into_iter()
        .enumerate()
        .filter(|(_, input)| shard.is_none_or(|s| s.contains(input.id.as_bytes())))
        .map(|(position, mut input)| {
            input.position = Some(position);
            input
        })
        .collect();
    let mut engine = build_engine(recipe, &env, &cache, &loaded)?;
    let quiet = args.json || args.progress != ProgressMode::Auto;
    if engine.step_count() == 0 && !quiet {
        eprintln!("facecast: the recipe enables no edit step: photos with a face are exported as they are");
    }
    let out_dir = engine.out_dir().to_path_buf();
    let recipe_hash = engine.recipe().hash();
    // The journal lives in the output folder, so the folder is made ready first.
    let stale_removed = prepare_folder(&out_dir).with_context(|| "the export could not start")?;
    let (journal, previous) = Journal::open(&journal_path(&out_dir, shard))?;
    if previous.unreadable_lines > 0 {
        eprintln!(
            "facecast: {}: {} unreadable line(s) ignored (a run killed while writing leaves one)",
            journal.path().display(),
            previous.unreadable_lines
        );
    }
    let (mut resumed, mut redone) = (0, 0);
    if !args.force && !previous.is_empty() {
        for input in inputs.iter_mut().filter(|i| i.not_a_photo.is_none()) {
            let (verdict, done) = previous.verdict(input, &recipe_hash);
            match verdict {
                Verdict::Resume => resumed += 1,
                Verdict::New => {}
                Verdict::SourceChanged | Verdict::RecipeChanged | Verdict::OutputGone => redone += 1,
            }
            input.resumed = done;
        }
    }
    if let Some(shard) = shard {
        eprintln!(
            "facecast: shard {shard}: {} of {inputs_total} inputs",
            inputs.len()
        );
    }
    if resumed + redone > 0 {
        eprintln!(
            "facecast: resuming from {}: {resumed} photo(s) already exported, {redone} to redo (photo, recipe or output changed); --force redoes all",
            journal.path().display()
        );
    }

    let mut progress = Progress::new(&inputs, args.progress, args.json);
    let (summary, journal_error) = {
        let mut observer = JournalObserver::new(&mut progress, journal, &inputs, recipe_hash.clone());
        let summary = if inputs.is_empty() {
            // A shard can be empty when there are fewer inputs than shards.
            BatchSummary::default()
        } else {
            engine
                .run(&inputs, &mut observer)
                .with_context(|| "the export could not start")?
        };
        (summary, observer.error.take())
    };
    progress.finish();

    let stale_removed = stale_removed + summary.stale_removed;
    if stale_removed > 0 {
        eprintln!("facecast: removed {stale_removed} temporary file(s) left by an interrupted export");
    }
    if let Some(e) = journal_error {
        eprintln!("facecast: warning: {e}; a rerun will export those photos again");
    }
    let report = BatchReport::of(&summary, &inputs, recipe_hash, shard, inputs_total);
    let report_file = report_path(&out_dir, shard);
    let report_written = report.write(&report_file);
    if let Err(e) = &report_written {
        eprintln!("facecast: {e}");
    }
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    }
    let counts = report.counts;
    let earlier = if counts.resumed > 0 {
        format!(" ({} by an earlier run)", counts.resumed)
    } else {
        String::new()
    };
    eprintln!(
        "{} exported{earlier}, {} skipped, {} failed, into {} ({})",
        counts.done,
        counts.skipped,
        counts.failed,
        out_dir.display(),
        compute.label()
    );
    if let Some(stop) = &summary.stopped {
        eprintln!("facecast: {stop}");
    }
    Ok(if summary.all_done() && report_written.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// `facecast batch merge-reports DIR... --out DIR`.
fn merge_reports(args: &MergeArgs) -> anyhow::Result<ExitCode> {
    let files = find_reports(&args.reports)?;
    let mut reports = Vec::with_capacity(files.len());
    for file in files {
        let report = BatchReport::read(&file)?;
        reports.push((file, report));
    }
    let count = reports.len();
    let merged = BatchReport::merge(reports)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create the folder {}", args.out.display()))?;
    let path = report_path(&args.out, None);
    merged.write(&path)?;
    if args.json {
        println!("{}", serde_json::to_string(&merged)?);
    }
    let c = merged.counts;
    eprintln!(
        "merged {count} report(s) into {}: {} inputs, {} exported, {} skipped, {} failed",
        path.display(),
        merged.inputs_total,
        c.done,
        c.skipped,
        c.failed
    );
    for stop in &merged.stopped {
        eprintln!("facecast: {stop}");
    }
    Ok(if c.done == merged.inputs_total {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}
