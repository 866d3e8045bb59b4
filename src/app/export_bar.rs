//! Export in the window: the export bar (what will be exported, a progress bar with count, ETA and
//! the current file, Cancel), the results list per photo, and the recipe's export settings with
//! save and load. The export itself is [`crate::jobs::export::ExportPhotos`] on the worker: the same
//! engine as `facecast batch`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use egui::{Color32, RichText};

use super::dialogs::{DialogPurpose, DialogRequest, PickKind};
use super::state::AppState;
use super::{Action, FacecastApp};
use crate::jobs::export::{ExportEvent, ExportPhotos};
use crate::jobs::{JobId, JobOutcome, PhotoId};
use crate::pipeline::batch::{BatchInput, FileReport, FileStatus, StopReason};
use crate::pipeline::recipe::{FaceMode, MetadataLevel, OutputFormat, Recipe, check_naming};
use crate::pipeline::restore::{RestoreMode, RestoreSettings};
use crate::pipeline::steps::enabled_steps;

/// Button labels, also used by tests to click them.
pub const EXPORT_SELECTED: &str = "Export selected";
pub const EXPORT_ALL: &str = "Export all with faces";
pub const CANCEL_EXPORT: &str = "Cancel export";
pub const CHOOSE_FOLDER: &str = "Output folder…";
pub const OPEN_FOLDER: &str = "Open output folder";
pub const SHOW_RESULTS: &str = "Results";
pub const SHOW_SETTINGS: &str = "Recipe…";

/// What the operator asked of the export in this frame.
#[derive(Debug, Clone, PartialEq)]
pub enum ExportAction {
    /// The photo on the canvas.
    Selected,
    /// Every screened photo with a face above the recipe's score.
    AllWithFaces,
    Cancel,
    ChooseFolder,
    OpenFolder,
    ShowResults,
    ShowSettings,
}

/// Where the export stands, folded from the job's events.
#[derive(Debug, Default)]
pub struct ExportState {
    /// The export job running, if one is.
    pub job: Option<JobId>,
    started_at: Option<Instant>,
    /// When the last photo finished: the time left is the pace up to then, so the bar's text
    /// changes when a photo finishes rather than on every frame.
    last_finished_at: Option<Instant>,
    pub total: usize,
    /// Photos finished (whatever their outcome).
    pub finished: usize,
    /// The photo being worked on.
    pub current: Option<PathBuf>,
    /// The reports of the last (or running) export, in input order.
    pub reports: Vec<FileReport>,
    pub out_dir: Option<PathBuf>,
    /// Why the last export ended early.
    pub stopped: Option<StopReason>,
    /// Temporary files of interrupted exports removed by the last export.
    pub stale_removed: usize,
    /// Where the recipe was last saved or loaded.
    pub recipe_path: Option<PathBuf>,
    /// The last export ended (results are final).
    pub ended: bool,
}

impl ExportState {
    pub fn is_running(&self) -> bool {
        self.job.is_some()
    }

    /// Starts tracking a new export job.
    pub fn begin(&mut self, job: JobId, total: usize, out_dir: PathBuf) {
        self.begin_at(job, total, out_dir, Instant::now());
    }

    /// [`ExportState::begin`] with the start time given (tests fix the clock this way).
    pub fn begin_at(&mut self, job: JobId, total: usize, out_dir: PathBuf, started_at: Instant) {
        *self = ExportState {
            job: Some(job),
            started_at: Some(started_at),
            total,
            out_dir: Some(out_dir),
            recipe_path: self.recipe_path.take(),
            ..ExportState::default()
        };
    }

    /// When the export started, if one was begun.
    pub fn started_at(&self) -> Option<Instant> {
        self.started_at
    }

    pub fn apply(&mut self, event: ExportEvent) {
        self.apply_at(event, Instant::now());
    }

    /// Folds an event that arrived at `now`.
    pub fn apply_at(&mut self, event: ExportEvent, now: Instant) {
        match event {
            ExportEvent::Started { total, out_dir } => {
                self.total = total;
                self.out_dir = Some(out_dir);
            }
            ExportEvent::Working { input, .. } => self.current = Some(input),
            ExportEvent::File { report, .. } => {
                self.finished += 1;
                self.last_finished_at = Some(now);
                self.reports.push(report);
            }
            ExportEvent::Ended {
                stopped,
                stale_removed,
            } => {
                self.stopped = stopped;
                self.stale_removed = stale_removed;
                self.current = None;
                self.ended = true;
            }
        }
    }

    /// The job ended (its last event); a failure before any photo is shown as the stop reason.
    pub fn job_finished(&mut self, job: JobId, outcome: &JobOutcome) {
        if self.job != Some(job) {
            return;
        }
        self.job = None;
        self.current = None;
        self.ended = true;
        match outcome {
            JobOutcome::Failed(reason) if self.stopped.is_none() => {
                self.stopped = Some(StopReason::Output(reason.clone()));
            }
            JobOutcome::Cancelled if self.stopped.is_none() => self.stopped = Some(StopReason::Cancelled),
            _ => {}
        }
    }

    pub fn count(&self, status: FileStatus) -> usize {
        self.reports.iter().filter(|r| r.status == status).count()
    }

    /// Time left, from the pace up to the last finished photo (none before the first).
    pub fn eta(&self) -> Option<Duration> {
        self.eta_at(self.last_finished_at?)
    }

    /// Time left as it stands at `now`.
    pub fn eta_at(&self, now: Instant) -> Option<Duration> {
        let started = self.started_at?;
        if self.finished == 0 || self.finished >= self.total {
            return None;
        }
        let elapsed = now.saturating_duration_since(started);
        let per_photo = elapsed.as_secs_f64() / self.finished as f64;
        Some(Duration::from_secs_f64(
            per_photo * (self.total - self.finished) as f64,
        ))
    }
}

/// Window-side export state that is not plain data: which of its windows are open.
#[derive(Debug, Default)]
pub struct ExportUi {
    pub settings_open: bool,
    pub results_open: bool,
}

/// A time left as the progress lines show it ("1m 10s", "2h 05m").
pub(super) fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h {:02}m", s / 3600, s / 60 % 60)
    } else if s >= 60 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// Photos "Export all with faces" would export: screened, with a face scoring the recipe's minimum.
pub fn photos_with_faces(state: &AppState) -> Vec<PhotoId> {
    let min_score = state.recipe.faces.min_score;
    state
        .library
        .entries()
        .iter()
        .filter(|e| e.faces().is_some_and(|f| f.has_face(min_score)))
        .map(|e| e.id)
        .collect()
}

/// Why the export buttons are disabled, if they are.
fn blocked(state: &AppState) -> Option<String> {
    if state.export.is_running() {
        return Some("An export is running".into());
    }
    if state.recipe.export.folder.is_none() {
        return Some("Choose an output folder first".into());
    }
    if state.recipe.swap.enabled && state.cast.current.is_none() && state.recipe.virtual_model.is_none() {
        return Some("Choose the virtual model in the Cast panel first".into());
    }
    None
}

pub fn export_bar(ui: &mut egui::Ui, state: &AppState, actions: &mut Vec<Action>) {
    let export = &state.export;
    ui.add_space(4.0);
    ui.horizontal(|ui| {
        ui.label(RichText::new("Export").strong());
        ui.separator();
        let folder_text = match &state.recipe.export.folder {
            Some(dir) => super::paths::home_relative(dir),
            None => "no output folder".to_string(),
        };
        if ui
            .add_enabled(!export.is_running(), egui::Button::new(CHOOSE_FOLDER))
            .on_hover_text("Where exported photos are written")
            .clicked()
        {
            actions.push(Action::Export(ExportAction::ChooseFolder));
        }
        ui.label(RichText::new(folder_text).weak());
        if ui
            .button(SHOW_SETTINGS)
            .on_hover_text("Export settings, and saving or loading the recipe")
            .clicked()
        {
            actions.push(Action::Export(ExportAction::ShowSettings));
        }
        ui.separator();

        if export.is_running() {
            let fraction = if export.total > 0 {
                export.finished as f32 / export.total as f32
            } else {
                0.0
            };
            let eta = export
                .eta()
                .map(|d| format!(", about {} left", format_duration(d)))
                .unwrap_or_default();
            ui.add(
                egui::ProgressBar::new(fraction)
                    .desired_width(180.0)
                    .text(format!("{} of {}{eta}", export.finished, export.total)),
            );
            if let Some(current) = &export.current {
                ui.label(crate::jobs::photos::display_name(current));
            }
            if ui
                .button(CANCEL_EXPORT)
                .on_hover_text("Stop after the photo being written; nothing half-written is left")
                .clicked()
            {
                actions.push(Action::Export(ExportAction::Cancel));
            }
        } else if export.ended {
            let (done, skipped, failed) = (
                export.count(FileStatus::Done),
                export.count(FileStatus::Skipped),
                export.count(FileStatus::Failed),
            );
            let text = format!("{done} exported, {skipped} skipped, {failed} failed");
            let colour = if failed > 0 || export.stopped.is_some() {
                ui.visuals().warn_fg_color
            } else {
                ui.visuals().text_color()
            };
            ui.label(RichText::new(text).color(colour));
            if ui.button(SHOW_RESULTS).clicked() {
                actions.push(Action::Export(ExportAction::ShowResults));
            }
            if export.out_dir.is_some() && ui.button(OPEN_FOLDER).clicked() {
                actions.push(Action::Export(ExportAction::OpenFolder));
            }
        }

        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            let why = blocked(state);
            let with_faces = photos_with_faces(state).len();
            let all = ui
                .add_enabled(
                    why.is_none() && with_faces > 0,
                    egui::Button::new(format!("{EXPORT_ALL} ({with_faces})")),
                )
                .on_disabled_hover_text(
                    why.clone()
                        .unwrap_or_else(|| "No screened photo has a face yet".into()),
                );
            if all.clicked() {
                actions.push(Action::Export(ExportAction::AllWithFaces));
            }
            let selected = ui
                .add_enabled(
                    why.is_none() && state.selected.is_some(),
                    egui::Button::new(EXPORT_SELECTED),
                )
                .on_disabled_hover_text(why.unwrap_or_else(|| "No photo is selected".into()));
            if selected.clicked() {
                actions.push(Action::Export(ExportAction::Selected));
            }
            let recipe = state.recipe_with_sections();
            let steps = enabled_steps(&recipe);
            let steps = if steps.is_empty() {
                "no edit step".to_string()
            } else {
                steps.join(" → ")
            };
            ui.label(RichText::new(format!("Recipe: {steps}")).weak())
                .on_hover_text(format!("Recipe hash {}", recipe.short_hash()));
            if state.recipe.swap.enabled {
                let model = state
                    .cast
                    .current_model()
                    .map(|m| m.name.clone())
                    // A face photo's path would crowd the bar: its file name says enough.
                    .or_else(|| {
                        state
                            .recipe
                            .virtual_model
                            .as_deref()
                            .map(|v| crate::jobs::photos::display_name(Path::new(v)))
                    })
                    .unwrap_or_else(|| "none chosen".into());
                ui.label(RichText::new(format!("Virtual model: {model}")).weak());
            }
        });
    });
    ui.add_space(2.0);
}

impl FacecastApp {
    pub(super) fn export_action(&mut self, action: ExportAction) {
        match action {
            ExportAction::Selected => {
                let photos: Vec<PhotoId> = self.state.selected.into_iter().collect();
                self.start_export(&photos);
            }
            ExportAction::AllWithFaces => {
                let photos = photos_with_faces(&self.state);
                self.start_export(&photos);
            }
            ExportAction::Cancel => {
                if let Some(job) = self.state.export.job {
                    self.worker.cancel(job);
                }
            }
            ExportAction::ChooseFolder => self.dialogs.request(DialogRequest::new(
                DialogPurpose::ExportFolder,
                "Choose the output folder",
                PickKind::Folder,
            )),
            ExportAction::OpenFolder => {
                if let Some(dir) = self.state.export.out_dir.clone()
                    && let Err(err) = open_folder(&dir)
                {
                    self.state
                        .toasts
                        .error(format!("Cannot open {}: {err}", dir.display()));
                }
            }
            ExportAction::ShowResults => self.export_ui.results_open = true,
            ExportAction::ShowSettings => self.export_ui.settings_open = true,
        }
    }

    /// The recipe as the window runs and saves it: the virtual model is the one chosen in the Cast
    /// panel (by id, which survives renames), when one is.
    pub fn window_recipe(&self) -> Recipe {
        let mut recipe = self.state.recipe_with_sections();
        if let Some(id) = &self.state.cast.current {
            recipe.virtual_model = Some(id.clone());
        }
        recipe
    }

    /// Exports `photos` with the current recipe on the worker; returns the job, or `None` (with a
    /// toast saying why) when it cannot start.
    pub fn start_export(&mut self, photos: &[PhotoId]) -> Option<JobId> {
        if let Some(why) = blocked(&self.state) {
            self.state.toasts.warning(why);
            return None;
        }
        let Some(store) = self.store.clone() else {
            self.state
                .toasts
                .error("Export needs the weights store, which is unavailable (no data directory).");
            return None;
        };
        let recipe = self.window_recipe();
        let selected_mode = recipe.faces.mode == FaceMode::Selected;
        let inputs: Vec<BatchInput> = photos
            .iter()
            .filter_map(|id| self.state.library.get(*id))
            .map(|entry| {
                let chosen = selected_mode
                    .then(|| {
                        entry.faces().map(|found| {
                            entry
                                .targets
                                .iter()
                                .filter_map(|&i| found.faces.get(i).copied())
                                .collect::<Vec<_>>()
                        })
                    })
                    .flatten();
                BatchInput {
                    chosen,
                    ..BatchInput::new(entry.path.clone())
                }
            })
            .collect();
        if inputs.is_empty() {
            self.state.toasts.warning("There is no photo to export.");
            return None;
        }
        let out_dir = recipe.export.folder.clone()?;
        let total = inputs.len();
        let job = self.worker.enqueue(ExportPhotos {
            store,
            recipe,
            inputs,
        });
        self.state.export.begin(job, total, out_dir);
        Some(job)
    }

    /// A path picked in one of the export's dialogs.
    pub(super) fn export_picked(&mut self, purpose: &DialogPurpose, path: PathBuf) {
        match purpose {
            DialogPurpose::ExportFolder => self.state.recipe.export.folder = Some(path),
            DialogPurpose::SaveRecipe => {
                self.save_recipe(&path);
            }
            DialogPurpose::LoadRecipe => {
                self.load_recipe(&path);
            }
            _ => {}
        }
    }

    /// Saves the recipe to `path`, remembering it for the next save; the toast says how it went.
    pub fn save_recipe(&mut self, path: &Path) -> bool {
        match self.window_recipe().save(path) {
            Ok(()) => {
                self.state
                    .toasts
                    .info(format!("Recipe saved to {}", path.display()));
                self.state.export.recipe_path = Some(path.to_path_buf());
                true
            }
            Err(err) => {
                self.state.toasts.error(err.to_string());
                false
            }
        }
    }

    /// Loads a recipe file; a recipe without an output folder keeps the current one.
    pub fn load_recipe(&mut self, path: &Path) -> bool {
        match Recipe::load(path) {
            Ok(mut recipe) => {
                if recipe.export.folder.is_none() {
                    recipe.export.folder = self.state.recipe.export.folder.clone();
                }
                if let Some(wanted) = recipe.virtual_model.clone() {
                    let found = self
                        .state
                        .cast
                        .library
                        .iter()
                        .find(|i| {
                            i.model.id == wanted || i.model.name.to_lowercase() == wanted.to_lowercase()
                        })
                        .map(|i| i.model.id.clone());
                    match found {
                        Some(id) => self.state.cast.current = Some(id),
                        None => self.state.toasts.warning(format!(
                            "The recipe's virtual model \"{wanted}\" is not in the library; choose one in the Cast panel"
                        )),
                    }
                }
                self.state.set_recipe(recipe);
                self.state.export.recipe_path = Some(path.to_path_buf());
                self.state
                    .toasts
                    .info(format!("Recipe loaded from {}", path.display()));
                true
            }
            Err(err) => {
                self.state.toasts.error(err.to_string());
                false
            }
        }
    }

    /// Draws the settings and results windows.
    pub(super) fn export_windows(&mut self, ctx: &egui::Context) {
        let mut settings_open = self.export_ui.settings_open;
        let mut save = false;
        let mut load = false;
        egui::Window::new("Recipe and export settings")
            .open(&mut settings_open)
            .resizable(true)
            .default_width(420.0)
            .show(ctx, |ui| {
                let running = self.state.export.is_running();
                ui.add_enabled_ui(!running, |ui| {
                    recipe_settings(ui, &mut self.state.recipe, &mut self.state.restore.settings);
                });
                ui.separator();
                ui.horizontal(|ui| {
                    save = ui.button("Save recipe…").clicked();
                    load = ui
                        .add_enabled(!running, egui::Button::new("Load recipe…"))
                        .clicked();
                    if let Some(path) = &self.state.export.recipe_path {
                        ui.label(RichText::new(path.display().to_string()).weak());
                    }
                });
                ui.label(
                    RichText::new(format!(
                        "Recipe hash {} (recorded in every export)",
                        self.state.recipe_with_sections().short_hash()
                    ))
                    .weak(),
                );
            });
        self.export_ui.settings_open = settings_open;
        if save {
            let request = DialogRequest::new(DialogPurpose::SaveRecipe, "Save the recipe", PickKind::Save)
                .filter("Facecast recipe", &["json"]);
            let request = match &self.state.export.recipe_path {
                Some(path) => request.at(path),
                None => request.named("recipe.json"),
            };
            self.dialogs.request(request);
        }
        if load {
            self.dialogs.request(
                DialogRequest::new(DialogPurpose::LoadRecipe, "Load a recipe", PickKind::File)
                    .filter("Facecast recipe", &["json"]),
            );
        }

        let mut results_open = self.export_ui.results_open;
        egui::Window::new("Export results")
            .open(&mut results_open)
            .resizable(true)
            .default_width(520.0)
            .show(ctx, |ui| results_list(ui, &self.state.export));
        self.export_ui.results_open = results_open;
    }
}

/// `restore` is the Restore section's settings: whether the step runs is its mode (None: it does not).
fn recipe_settings(ui: &mut egui::Ui, recipe: &mut Recipe, restore: &mut RestoreSettings) {
    egui::Grid::new("recipe-settings")
        .num_columns(2)
        .spacing([12.0, 6.0])
        .show(ui, |ui| {
            ui.label("Faces");
            egui::ComboBox::from_id_salt("face-mode")
                .selected_text(recipe.faces.mode.label())
                .show_ui(ui, |ui| {
                    for mode in FaceMode::ALL {
                        ui.selectable_value(&mut recipe.faces.mode, mode, mode.label());
                    }
                });
            ui.end_row();
            ui.label("Minimum score");
            ui.add(egui::Slider::new(&mut recipe.faces.min_score, 0.0..=1.0).fixed_decimals(2));
            ui.end_row();

            ui.label("Steps");
            ui.vertical(|ui| {
                ui.checkbox(&mut recipe.swap.enabled, "Swap");
                let mut restoring = restore.is_enabled();
                if ui
                    .checkbox(&mut restoring, "Restore")
                    .on_hover_text("The Restore section's mode: None, GPEN or Blur then GPEN")
                    .changed()
                {
                    restore.mode = if restoring {
                        RestoreMode::Gpen
                    } else {
                        RestoreMode::None
                    };
                }
                recipe.restore.enabled = restoring;
                ui.checkbox(&mut recipe.makeup.enabled, "Makeup");
            });
            ui.end_row();

            ui.label("Format");
            egui::ComboBox::from_id_salt("output-format")
                .selected_text(recipe.export.format.label())
                .show_ui(ui, |ui| {
                    for format in OutputFormat::ALL {
                        ui.selectable_value(&mut recipe.export.format, format, format.label());
                    }
                });
            ui.end_row();
            ui.label("JPEG quality");
            ui.add(egui::Slider::new(&mut recipe.export.quality, 1..=100));
            ui.end_row();
            ui.label("File names");
            ui.vertical(|ui| {
                ui.text_edit_singleline(&mut recipe.export.naming);
                match check_naming(&recipe.export.naming) {
                    Ok(()) => {
                        let example = crate::pipeline::batch::output_name(
                            &recipe.export.naming,
                            Path::new("shot-01.jpg"),
                            "jpg".into(),
                            0,
                            recipe.virtual_model.as_deref(),
                        );
                        let text = match example {
                            Ok(name) => format!("shot-01.jpg → {}", name.to_string_lossy()),
                            Err(e) => e.to_string(),
                        };
                        ui.label(RichText::new(text).weak());
                    }
                    Err(e) => {
                        ui.label(RichText::new(e.to_string()).color(ui.visuals().error_fg_color));
                    }
                }
                ui.label(RichText::new("{stem} {ext} {index} {model}").weak());
            });
            ui.end_row();
            ui.label("Existing files");
            ui.vertical(|ui| {
                ui.radio_value(
                    &mut recipe.export.overwrite,
                    false,
                    "Keep them (number the new file)",
                );
                ui.radio_value(
                    &mut recipe.export.overwrite,
                    true,
                    "Replace them (never an original)",
                );
            });
            ui.end_row();
            ui.label("Colour profile");
            ui.checkbox(&mut recipe.export.keep_icc, "Keep the photo's ICC profile");
            ui.end_row();
            ui.label("Metadata");
            ui.vertical(|ui| {
                ui.radio_value(
                    &mut recipe.export.metadata,
                    MetadataLevel::Full,
                    "Hash, networks, AI note and the recipe",
                );
                ui.radio_value(
                    &mut recipe.export.metadata,
                    MetadataLevel::Minimal,
                    "Hash, networks and AI note",
                );
            });
            ui.end_row();
        });
}

fn results_list(ui: &mut egui::Ui, export: &ExportState) {
    if let Some(stop) = &export.stopped {
        ui.label(RichText::new(stop.to_string()).color(ui.visuals().warn_fg_color));
    }
    if export.stale_removed > 0 {
        ui.label(format!(
            "Removed {} temporary file(s) left by an interrupted export.",
            export.stale_removed
        ));
    }
    if export.reports.is_empty() {
        ui.label(RichText::new("No photo exported yet.").weak());
        return;
    }
    egui::ScrollArea::vertical().max_height(400.0).show(ui, |ui| {
        egui::Grid::new("export-results")
            .num_columns(3)
            .striped(true)
            .spacing([10.0, 4.0])
            .show(ui, |ui| {
                for report in &export.reports {
                    let (word, colour) = match report.status {
                        FileStatus::Done => ("done", Color32::from_rgb(60, 160, 80)),
                        FileStatus::Skipped => ("skipped", ui.visuals().warn_fg_color),
                        FileStatus::Failed => ("failed", ui.visuals().error_fg_color),
                    };
                    ui.label(crate::jobs::photos::display_name(&report.input));
                    ui.label(RichText::new(word).color(colour));
                    let detail = match (&report.output, &report.reason) {
                        (Some(out), _) => crate::jobs::photos::display_name(out),
                        (None, Some(reason)) => reason.clone(),
                        (None, None) => String::new(),
                    };
                    let label = ui.label(detail);
                    if !report.notes.is_empty() {
                        label.on_hover_text(report.notes.join("\n"));
                    }
                    ui.end_row();
                }
            });
    });
}

/// Opens a folder in the desktop's file manager.
fn open_folder(dir: &Path) -> std::io::Result<()> {
    let program = if cfg!(target_os = "macos") {
        "open"
    } else if cfg!(windows) {
        "explorer"
    } else {
        "xdg-open"
    };
    let mut child = std::process::Command::new(program)
        .arg(dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    // Reaped on a thread of its own so it never lingers as a zombie; its status does not matter.
    std::thread::spawn(move || child.wait());
    Ok(())
}

impl AppState {
    /// The recipe with the Swap, Restore and Makeup sections' settings in it: the sections edit the
    /// steps' settings, the recipe window whether each step runs.
    pub fn recipe_with_sections(&self) -> Recipe {
        let mut recipe = self.recipe.clone();
        recipe.swap.settings = self.swap.settings.clone();
        recipe.restore.settings = self.restore.settings.clone();
        // One control, not two: the Restore section's mode says whether the step runs.
        recipe.restore.enabled = self.restore.settings.is_enabled();
        recipe.makeup.settings = self.makeup.settings.clone();
        recipe
    }

    /// Takes a loaded recipe (already checked, every setting known: [`Recipe::parse`]), putting its
    /// step settings into the sections.
    pub fn set_recipe(&mut self, recipe: Recipe) {
        self.swap.settings = recipe.swap.settings.clone();
        self.restore.settings = recipe.restore_settings();
        self.makeup.settings = recipe.makeup.settings.clone();
        self.recipe = recipe;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_left_follows_the_pace_at_the_given_instant() {
        let mut export = ExportState::default();
        let t0 = Instant::now();
        export.begin_at(JobId(1), 12, PathBuf::from("out"), t0);
        assert_eq!(
            export.eta_at(t0 + Duration::from_secs(50)),
            None,
            "nothing finished yet"
        );
        export.finished = 5;
        // 10 s a photo, 7 photos left.
        assert_eq!(
            export.eta_at(t0 + Duration::from_secs(50)),
            Some(Duration::from_secs(70))
        );
        assert_eq!(format_duration(Duration::from_secs(70)), "1m 10s");
    }

    #[test]
    fn the_bar_shows_the_pace_at_the_last_finished_photo() {
        let mut export = ExportState::default();
        let t0 = Instant::now();
        export.begin_at(JobId(1), 3, PathBuf::from("out"), t0);
        assert_eq!(export.eta(), None, "nothing finished yet");
        let report = FileReport {
            input: PathBuf::from("a.png"),
            status: FileStatus::Done,
            skip: None,
            output: None,
            reason: None,
            faces: 1,
            notes: Vec::new(),
            measured: Vec::new(),
            resumed: false,
        };
        export.apply_at(
            ExportEvent::File { index: 0, report },
            t0 + Duration::from_secs(9),
        );
        // 9 s for the first photo, two left; later frames do not move it.
        assert_eq!(export.eta(), Some(Duration::from_secs(18)));
        assert_eq!(export.eta(), Some(Duration::from_secs(18)));
    }
}
