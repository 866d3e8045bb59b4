//! The Weights window: the networks grouped by the feature they unlock (Detect, Swap, Restore,
//! Generate, Text edits, Makeup, Classifier), each section saying what it unlocks, with its files'
//! status, size and licence badge, *Install all for this feature* behind one checkbox per licence
//! that forbids commercial use (or leaves it unclear), one progress bar (speed, time left, cancel)
//! for everything queued, and *Locate file…* for files the user already has. The main window's
//! sections open it at their feature ([`WeightsWindow::open_at`]), and their own *Install* buttons
//! go through [`WeightsWindow::request_install`], so no such licence is installed unasked. The
//! work runs in the background ([`super::weights_jobs`]); the window only reads its messages.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use egui::{Color32, RichText};

use super::weights_jobs::{Ended, Jobs, Msg, Work, human_duration};
use crate::weights::features::{self, FeatureGroup};
use crate::weights::manifest::{Manifest, ModelEntry, human_bytes};
use crate::weights::store::{ModelStatus, WeightsStore};

/// The window's title, also used by tests.
pub const WINDOW_TITLE: &str = "Weights";
/// The button of every section.
pub const INSTALL_ALL: &str = "Install all for this feature";
/// The acceptance checkbox of one licence that forbids commercial use (or leaves it unclear); a
/// section shows one for each such licence among its networks, and accepting it in one section
/// accepts it everywhere.
pub fn accept_label(licence: &str) -> String {
    format!("I accept, for non-commercial use: {licence}")
}
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
    /// The licences (their text in the manifest) that forbid commercial use and that the user
    /// accepted in this session.
    accepted: HashSet<String>,
    /// The section (by `--for` key) to bring into view on the next frame.
    scroll_to: Option<&'static str>,
    /// Where each section's header sits in the scrolled content, from the last frame drawn.
    section_tops: HashMap<&'static str, f32>,
    /// The section last asked for from the main window, and the network an install was asked
    /// for there that waits for its licence.
    focus: Option<(&'static str, Option<String>)>,
    /// Models whose files the user asked to locate; the app opens its file dialog for them.
    locate: Vec<String>,
    checked: bool,
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
            scroll_to: None,
            section_tops: HashMap::new(),
            focus: None,
            locate: Vec::new(),
            checked: false,
        }
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

    /// Queues an install (e.g. MTCNN at first start); progress shows in the window. Only for
    /// networks the user may install now: see [`WeightsWindow::request_install`].
    pub fn install(&mut self, ctx: &egui::Context, id: &str) {
        self.jobs.push(ctx, id, Work::Install);
    }

    /// Whether `id` may be installed without asking: its licence allows commercial use, or the
    /// user accepted it.
    pub fn may_install(&self, id: &str) -> bool {
        self.jobs
            .store()
            .model(id)
            .is_ok_and(|m| m.commercial_use || self.accepted.contains(&m.licence))
    }

    /// An install asked for outside the window (a section's *Install* button): queued when
    /// [`WeightsWindow::may_install`], else the window opens at the network's feature, where its
    /// licence waits to be accepted. Returns whether the install was queued.
    pub fn request_install(&mut self, ctx: &egui::Context, id: &str) -> bool {
        self.open = true;
        if self.may_install(id) {
            self.install(ctx, id);
            return true;
        }
        let key = feature_of(self.jobs.store().manifest(), id);
        self.scroll_to = Some(key);
        self.focus = Some((key, Some(id.to_string())));
        false
    }

    /// Opens the window at a feature's section (by `--for` key), brought into view.
    pub fn open_at(&mut self, key: &'static str) {
        self.open = true;
        self.scroll_to = Some(key);
        self.focus = Some((key, None));
    }

    /// The section the window was last opened at from the main window.
    pub fn focused_section(&self) -> Option<&'static str> {
        self.focus.as_ref().map(|(key, _)| *key)
    }

    /// Ticks or unticks the acceptance of a licence (by its text in the manifest).
    pub fn set_accepted(&mut self, licence: &str, accepted: bool) {
        if accepted {
            self.accepted.insert(licence.to_string());
        } else {
            self.accepted.remove(licence);
        }
    }

    /// What each feature still needs, as last checked: by `--for` key, the names of the needed
    /// networks that are not usable. Features whose networks are still being checked are left out.
    pub fn missing_networks(&self) -> super::weights_links::MissingNetworks {
        let manifest = self.jobs.store().manifest();
        let mut missing = super::weights_links::MissingNetworks::default();
        for group in features::GROUPS {
            let statuses: Option<Vec<&ModelStatus>> =
                group.needs.iter().map(|id| self.statuses.get(*id)).collect();
            let Some(statuses) = statuses else { continue };
            let names: Vec<String> = group
                .needs
                .iter()
                .zip(statuses)
                .filter(|(_, status)| !status.is_usable())
                .map(|(id, _)| {
                    manifest
                        .get(id)
                        .map_or_else(|| id.to_string(), |m| m.name.clone())
                })
                .collect();
            missing.by_feature.insert(group.key, names);
        }
        missing
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
        let raise = self.scroll_to.is_some();
        // The section asked for is scrolled to once its place is known (from a frame drawn
        // before: the window's first frame lays it out).
        let target = self.scroll_to.and_then(|key| self.section_tops.get(key).copied());
        let shown = egui::Window::new(WINDOW_TITLE)
            .open(&mut open)
            .default_size([780.0, 560.0])
            .min_width(560.0)
            .show(ctx, |ui| {
                ui.horizontal(|ui| {
                    let folder = self.jobs.store().weights_dir();
                    ui.label(
                        RichText::new(format!("Folder: {}", super::paths::home_relative(&folder))).weak(),
                    );
                    if ui.button("Check again").clicked() {
                        click = Some(Click::Refresh);
                    }
                });
                self.progress_ui(ui, &mut click);
                ui.separator();
                let mut area = egui::ScrollArea::vertical().auto_shrink([false, false]);
                if let Some(y) = target {
                    area = area.vertical_scroll_offset(y);
                }
                area.show(ui, |ui| {
                    let top = ui.min_rect().top();
                    for group in features::GROUPS {
                        let header = self.section_ui(ui, group, &mut click);
                        self.section_tops.insert(group.key, header - top);
                    }
                });
            });
        if raise && let Some(shown) = shown {
            // Opened from a section of the main window: in front of any other window.
            ctx.move_to_top(shown.response.layer_id);
        }
        if target.is_some() {
            self.scroll_to = None;
        }
        self.open = open;
        if !open {
            self.focus = None;
        }
        match click {
            Some(Click::Install(id)) => self.install(ctx, &id),
            Some(Click::InstallAll(group)) => {
                for id in group.needs {
                    if !self.statuses.get(*id).is_some_and(ModelStatus::is_usable) && self.may_install(id) {
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

    /// One feature's section; returns where its header's top was drawn.
    fn section_ui(
        &mut self,
        ui: &mut egui::Ui,
        group: &'static FeatureGroup,
        click: &mut Option<Click>,
    ) -> f32 {
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
        // Every licence of the section that forbids commercial use, once, in the section's order.
        let mut licences: Vec<(&str, Vec<&str>)> = Vec::new();
        for model in models.iter().filter(|m| !m.commercial_use) {
            match licences.iter_mut().find(|(l, _)| *l == model.licence) {
                Some((_, names)) => names.push(&model.name),
                None => licences.push((&model.licence, vec![&model.name])),
            }
        }
        let allowed = needed
            .iter()
            .filter(|m| !self.statuses.get(&m.id).is_some_and(ModelStatus::is_usable))
            .all(|m| m.commercial_use || self.accepted.contains(&m.licence));
        let focused = self.focus.as_ref().filter(|(key, _)| *key == group.key);
        let asked = focused
            .and_then(|(_, id)| id.as_deref())
            .and_then(|id| store.manifest().get(id));
        let header = format!("{} — {ready} of {} ready", group.title, needed.len());
        let mut collapsing = egui::CollapsingHeader::new(RichText::new(header).strong())
            .id_salt(group.key)
            .default_open(ready < needed.len());
        if self.scroll_to == Some(group.key) {
            collapsing = collapsing.open(Some(true));
        }
        let shown = collapsing.show(ui, |ui| {
                ui.label(group.unlocks);
                if let Some(model) = asked.filter(|m| !self.may_install(&m.id)) {
                    ui.label(
                        RichText::new(format!(
                            "{} forbids commercial use or leaves it unclear: accept its licence below to install it.",
                            model.name
                        ))
                        .color(ui.visuals().warn_fg_color),
                    );
                }
                for (licence, names) in &licences {
                    let mut accepted = self.accepted.contains(*licence);
                    if ui
                        .checkbox(&mut accepted, accept_label(licence))
                        .on_hover_text(format!("The licence of {}", names.join(", ")))
                        .changed()
                    {
                        self.set_accepted(licence, accepted);
                    }
                }
                ui.horizontal_wrapped(|ui| {
                    let can = ready < needed.len() && allowed;
                    let button = ui
                        .add_enabled(can, egui::Button::new(INSTALL_ALL))
                        .on_hover_text(format!("Downloads about {}", human_bytes(missing_bytes)));
                    let button = if ready < needed.len() && !allowed {
                        button.on_disabled_hover_text("Accept the licences above first")
                    } else {
                        button
                    };
                    if button.clicked() {
                        *click = Some(Click::InstallAll(group));
                    }
                });
                egui::Grid::new(("weights-section", group.key))
                    .num_columns(4)
                    .spacing([14.0, 6.0])
                    .min_col_width(60.0)
                    .show(ui, |ui| {
                        for model in &models {
                            let busy = self.jobs.is_busy(&model.id);
                            let optional = !group.needs.contains(&model.id.as_str());
                            let accepted = self.accepted.contains(&model.licence);
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
        shown.header_response.rect.top()
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
                button.on_disabled_hover_text("Accept its licence above first")
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

/// The feature (by `--for` key) whose section installs `id`: the first that needs it, else the
/// first whose section lists it, else Detect.
fn feature_of(manifest: &Manifest, id: &str) -> &'static str {
    if let Some(group) = features::GROUPS.iter().find(|g| g.needs.contains(&id)) {
        return group.key;
    }
    manifest
        .get(id)
        .and_then(|model| {
            features::GROUPS
                .iter()
                .find(|g| model.features.contains(&g.feature))
        })
        .map_or("detect", |g| g.key)
}
