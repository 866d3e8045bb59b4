//! The Weights window: the networks grouped by the feature they unlock (Detect, Swap, Restore,
//! Generate, Text edits, Makeup, Classifier), each section saying what it unlocks, with its files'
//! status, size and licence badge, *Install all for this feature* behind an acceptance of the
//! non-commercial licences, one progress bar (speed, time left, cancel) for everything queued, and
//! *Locate file…* for files the user already has. The work runs in the background
//! ([`super::weights_jobs`]); the window only reads its messages.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use egui::{Color32, RichText};

use super::weights_jobs::{Ended, Jobs, Msg, Work, human_duration};
use crate::weights::features::{self, FeatureGroup};
use crate::weights::manifest::{ModelEntry, human_bytes};
use crate::weights::store::{ModelStatus, WeightsStore};

/// The window's title, also used by tests.
pub const WINDOW_TITLE: &str = "Weights";
/// The button of every section.
pub const INSTALL_ALL: &str = "Install all for this feature";
/// The acceptance checkbox of sections with non-commercial networks.
pub const ACCEPT_LABEL: &str = "I accept the non-commercial licences of this feature's networks";
/// The badge of a network whose licence forbids commercial use or leaves it unclear.
pub const NONCOMMERCIAL_BADGE: &str = "NON-COMMERCIAL / NOT CLEARED";
pub const LOCATE_LABEL: &str = "Locate file…";
pub const CANCEL_LABEL: &str = "Cancel";

/// What the app should tell the user about (as toasts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WeightsEvent {
    Installed(String),
    Failed { id: String, message: String },
}

pub struct WeightsWindow {
    pub open: bool,
    jobs: Jobs,
    /// Last known status by model id; absent while being checked.
    statuses: HashMap<String, ModelStatus>,
    /// Sections (by `--for` key) whose non-commercial licences the user accepted.
    accepted: HashSet<&'static str>,
    /// Models whose files the user asked to locate; the app opens its file dialog for them.
    locate: Vec<String>,
    checked: bool,
    /// The user's home folder, read once, to show the weights folder as `~/…`.
    home: Option<PathBuf>,
}

/// What a click asked for.
enum Click {
    Install(String),
    InstallAll(&'static FeatureGroup),
    Locate(String),
    Cancel,
    Refresh,
}

impl WeightsWindow {
    pub fn new(store: WeightsStore) -> WeightsWindow {
        WeightsWindow {
            open: false,
            jobs: Jobs::new(store),
            statuses: HashMap::new(),
            accepted: HashSet::new(),
            locate: Vec::new(),
            checked: false,
            home: directories::BaseDirs::new().map(|b| b.home_dir().to_path_buf()),
        }
    }

    /// `folder` as the window shows it: under the home folder as `~/…` (shorter, and the same
    /// for every user), elsewhere in full.
    fn folder_text(&self, folder: &Path) -> String {
        home_relative(folder, self.home.as_deref())
    }

    /// The last known status of a model (None: unknown id or still being checked).
    pub fn status(&self, id: &str) -> Option<&ModelStatus> {
        self.statuses.get(id)
    }

    /// Whether a model is being installed or imported, or waits for it.
    pub fn is_busy(&self, id: &str) -> bool {
        self.jobs.is_busy(id)
    }

    /// Checks every model again in the background.
    pub fn refresh(&mut self, ctx: &egui::Context) {
        self.checked = true;
        let ids: Vec<String> = self
            .jobs
            .store()
            .manifest()
            .models
            .iter()
            .map(|m| m.id.clone())
            .filter(|id| !self.jobs.is_busy(id))
            .collect();
        for id in &ids {
            self.statuses.remove(id);
        }
        self.jobs.check(ctx, ids);
    }

    /// Queues an install (e.g. MTCNN at first start); progress shows in the window.
    pub fn install(&mut self, ctx: &egui::Context, id: &str) {
        self.jobs.push(ctx, id, Work::Install);
    }

    /// Asks the app for a file dialog to locate `id`'s files (see [`WeightsWindow::take_locate`]).
    pub fn locate(&mut self, _ctx: &egui::Context, id: &str) {
        if !self.locate.iter().any(|l| l == id) {
            self.locate.push(id.to_string());
        }
    }

    /// The file names of a model, for the title of its file dialog.
    pub fn model_files(&self, id: &str) -> Option<Vec<String>> {
        let model = self.jobs.store().model(id).ok()?;
        Some(model.files.iter().map(|f| f.name.clone()).collect())
    }

    /// The models whose files the user asked to locate since the last call.
    pub fn take_locate(&mut self) -> Vec<String> {
        std::mem::take(&mut self.locate)
    }

    /// Imports files the user picked for `id`, in the background.
    pub fn import_paths(&mut self, ctx: &egui::Context, id: &str, paths: Vec<PathBuf>) {
        if !paths.is_empty() {
            self.jobs.push(ctx, id, Work::Import(paths));
        }
    }

    /// Draws the window when open and returns what finished since the last frame.
    pub fn ui(&mut self, ctx: &egui::Context) -> Vec<WeightsEvent> {
        let events = self.drain(ctx);
        if !self.open {
            return events;
        }
        if !self.checked {
            self.refresh(ctx);
        }
        let mut click = None;
        let mut open = self.open;
        egui::Window::new(WINDOW_TITLE)
            .open(&mut open)
            .default_size([780.0, 560.0])
            .min_width(560.0)
            .show(ctx, |ui| {
                ui.horizontal(|ui| {
                    let folder = self.jobs.store().weights_dir();
                    ui.label(RichText::new(format!("Folder: {}", self.folder_text(&folder))).weak());
                    if ui.button("Check again").clicked() {
                        click = Some(Click::Refresh);
                    }
                });
                self.progress_ui(ui, &mut click);
                ui.separator();
                egui::ScrollArea::vertical()
                    .auto_shrink([false, false])
                    .show(ui, |ui| {
                        for group in features::GROUPS {
                            self.section_ui(ui, group, &mut click);
                        }
                    });
            });
        self.open = open;
        match click {
            Some(Click::Install(id)) => self.install(ctx, &id),
            Some(Click::InstallAll(group)) => {
                for id in group.needs {
                    if !self.statuses.get(*id).is_some_and(ModelStatus::is_usable) {
                        self.install(ctx, id);
                    }
                }
            }
            Some(Click::Locate(id)) => self.locate(ctx, &id),
            Some(Click::Cancel) => self.jobs.cancel(),
            Some(Click::Refresh) => self.refresh(ctx),
            None => {}
        }
        events
    }

    /// The one bar for everything queued: the file, bytes, speed, time left and Cancel.
    fn progress_ui(&self, ui: &mut egui::Ui, click: &mut Option<Click>) {
        let Some(running) = &self.jobs.running else {
            return;
        };
        let transfer = &self.jobs.transfer;
        let name = self
            .jobs
            .store()
            .model(&running.id)
            .map(|m| m.name.clone())
            .unwrap_or_else(|_| running.id.clone());
        let waiting = self.jobs.queue.len();
        ui.horizontal(|ui| {
            let (fraction, text) = match running.work {
                Work::Import(_) => (None, format!("Importing {name}…")),
                Work::Install => {
                    let done = transfer.finished + running.done;
                    let fraction =
                        (transfer.planned > 0).then(|| (done as f32 / transfer.planned as f32).min(1.0));
                    let mut text = format!("{name}: {}", running.file);
                    match running.total {
                        Some(total) => {
                            text += &format!(" {} / {}", human_bytes(running.done), human_bytes(total))
                        }
                        None if running.done > 0 => text += &format!(" {}", human_bytes(running.done)),
                        None => {}
                    }
                    if let Some(speed) = transfer.speed().filter(|s| *s > 0.0) {
                        text += &format!(" · {}/s", human_bytes(speed as u64));
                        let left = transfer.planned.saturating_sub(done);
                        text += &format!(" · {} left", human_duration(left as f64 / speed));
                    }
                    (fraction, text)
                }
            };
            let bar = egui::ProgressBar::new(fraction.unwrap_or(0.0))
                .desired_width(ui.available_width() - 90.0)
                .text(text);
            ui.add(if fraction.is_none() {
                bar.animate(true)
            } else {
                bar
            });
            if ui
                .button(CANCEL_LABEL)
                .on_hover_text("Stop; what was downloaded is kept and the next install resumes it")
                .clicked()
            {
                *click = Some(Click::Cancel);
            }
        });
        if waiting > 0 {
            ui.label(RichText::new(format!("{waiting} more waiting")).weak());
        }
    }

    fn section_ui(&mut self, ui: &mut egui::Ui, group: &'static FeatureGroup, click: &mut Option<Click>) {
        let store = self.jobs.store().clone();
        let models = features::section(store.manifest(), group);
        let needed: Vec<&ModelEntry> = models
            .iter()
            .copied()
            .filter(|m| group.needs.contains(&m.id.as_str()))
            .collect();
        let ready = needed
            .iter()
            .filter(|m| self.statuses.get(&m.id).is_some_and(ModelStatus::is_usable))
            .count();
        let missing_bytes: u64 = needed
            .iter()
            .filter(|m| !self.statuses.get(&m.id).is_some_and(ModelStatus::is_usable))
            .filter_map(|m| m.display_size_bytes())
            .sum();
        let restricted = needed.iter().any(|m| !m.commercial_use);
        let header = format!("{} — {ready} of {} ready", group.title, needed.len());
        egui::CollapsingHeader::new(RichText::new(header).strong())
            .id_salt(group.key)
            .default_open(ready < needed.len())
            .show(ui, |ui| {
                ui.label(group.unlocks);
                ui.horizontal_wrapped(|ui| {
                    let mut accepted = self.accepted.contains(group.key);
                    let allowed = !restricted || accepted;
                    let can = ready < needed.len() && allowed;
                    let button = ui
                        .add_enabled(can, egui::Button::new(INSTALL_ALL))
                        .on_hover_text(format!("Downloads about {}", human_bytes(missing_bytes)));
                    if button.clicked() {
                        *click = Some(Click::InstallAll(group));
                    }
                    if restricted && ui.checkbox(&mut accepted, ACCEPT_LABEL).changed() {
                        if accepted {
                            self.accepted.insert(group.key);
                        } else {
                            self.accepted.remove(group.key);
                        }
                    }
                });
                let accepted = self.accepted.contains(group.key);
                egui::Grid::new(("weights-section", group.key))
                    .num_columns(4)
                    .spacing([14.0, 6.0])
                    .min_col_width(60.0)
                    .show(ui, |ui| {
                        for model in &models {
                            let busy = self.jobs.is_busy(&model.id);
                            let optional = !group.needs.contains(&model.id.as_str());
                            model_row(
                                ui,
                                model,
                                self.statuses.get(&model.id),
                                busy,
                                optional,
                                accepted,
                                click,
                            );
                            ui.end_row();
                        }
                    });
            });
    }

    fn drain(&mut self, ctx: &egui::Context) -> Vec<WeightsEvent> {
        let mut events = Vec::new();
        for msg in self.jobs.drain(ctx) {
            match msg {
                Msg::Status { id, result } => {
                    if !self.jobs.is_busy(&id) {
                        let status = result.unwrap_or_else(|e| ModelStatus::Corrupt {
                            file: String::new(),
                            reason: e,
                        });
                        self.statuses.insert(id, status);
                    }
                }
                Msg::Finished { id, result } => match result {
                    Ok(status) => {
                        if status.is_usable() {
                            events.push(WeightsEvent::Installed(id.clone()));
                        } else {
                            events.push(WeightsEvent::Failed {
                                id: id.clone(),
                                message: status.describe(),
                            });
                        }
                        self.statuses.insert(id, status);
                    }
                    Err(Ended::Cancelled) => {}
                    Err(Ended::Failed(message)) => events.push(WeightsEvent::Failed { id, message }),
                },
                Msg::Progress { .. } => {}
            }
        }
        events
    }
}

/// One network: name (and id), status, size, licence badge, buttons.
fn model_row(
    ui: &mut egui::Ui,
    model: &ModelEntry,
    status: Option<&ModelStatus>,
    busy: bool,
    optional: bool,
    accepted: bool,
    click: &mut Option<Click>,
) {
    ui.vertical(|ui| {
        ui.set_min_width(280.0);
        ui.set_max_width(320.0);
        let name = ui.label(RichText::new(&model.name).strong());
        if let Some(note) = &model.note {
            name.on_hover_text(note);
        }
        let extra = if optional { " · optional" } else { "" };
        ui.label(RichText::new(format!("{}{extra}", model.id)).small().weak());
    });

    let (text, colour) = match status {
        None => ("checking…", Color32::GRAY),
        Some(ModelStatus::Installed) => ("installed", Color32::from_rgb(60, 170, 80)),
        Some(ModelStatus::Unverified { .. }) => ("installed (unverified)", Color32::from_rgb(200, 150, 40)),
        Some(ModelStatus::Missing { .. }) => ("not installed", Color32::GRAY),
        Some(ModelStatus::Corrupt { .. }) => ("corrupt", Color32::from_rgb(210, 60, 50)),
    };
    ui.vertical(|ui| {
        let label = ui.label(RichText::new(text).color(colour));
        if let Some(s) = status {
            label.on_hover_text(s.describe());
        }
        ui.label(RichText::new(model.size_text()).small());
    });

    ui.vertical(|ui| {
        ui.set_max_width(220.0);
        let badge = if model.commercial_use {
            RichText::new("commercial use allowed")
                .color(Color32::from_rgb(60, 170, 80))
                .small()
        } else {
            RichText::new(NONCOMMERCIAL_BADGE)
                .color(Color32::from_rgb(210, 60, 50))
                .small()
                .strong()
        };
        ui.label(badge).on_hover_text(&model.licence);
    });

    ui.horizontal(|ui| {
        if busy {
            ui.spinner();
            return;
        }
        let installed = status.is_some_and(ModelStatus::is_usable);
        let downloadable = model.files.iter().all(|f| !f.urls.is_empty()) || !model.pip.is_empty();
        if !installed && downloadable {
            let allowed = model.commercial_use || accepted;
            let button = ui.add_enabled(allowed, egui::Button::new("Install"));
            let button = if allowed {
                button
            } else {
                button.on_disabled_hover_text("Accept the non-commercial licences above first")
            };
            if button.clicked() {
                *click = Some(Click::Install(model.id.clone()));
            }
        }
        if ui
            .button(LOCATE_LABEL)
            .on_hover_text("Import files you already have")
            .clicked()
        {
            *click = Some(Click::Locate(model.id.clone()));
        }
    });
}

/// `path` with a leading `home` replaced by `~`; otherwise the path in full.
fn home_relative(path: &Path, home: Option<&Path>) -> String {
    match home.and_then(|h| path.strip_prefix(h).ok()) {
        Some(rest) if !rest.as_os_str().is_empty() => format!("~/{}", rest.display()),
        _ => path.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_folder_is_shown_from_home_when_it_is_under_it() {
        let home = Path::new("/home/ana");
        assert_eq!(
            home_relative(Path::new("/home/ana/.local/share/facecast/weights"), Some(home)),
            "~/.local/share/facecast/weights"
        );
        // A sibling whose name starts like the home folder is not under it.
        assert_eq!(
            home_relative(Path::new("/home/anabel/weights"), Some(home)),
            "/home/anabel/weights"
        );
        assert_eq!(
            home_relative(Path::new("/srv/weights"), Some(home)),
            "/srv/weights"
        );
        assert_eq!(home_relative(Path::new("/srv/weights"), None), "/srv/weights");
    }
}
