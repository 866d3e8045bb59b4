//! The Edit window: StyleCLIP text edits of a generated virtual model, opened from the Cast panel.
//!
//! The operator types what should change ("smiling", "short blond hair") or picks a preset chip
//! (a few prompts, and the trained mappers that are installed), moves the strength and
//! disentanglement sliders, and watches the preview follow: each change waits a moment for the
//! next one, then renders on the worker's compute lane with progress; a newer change cancels the
//! preview still running. "Save as new version" adds the edited face to the library with the model
//! it came from as its parent. Missing networks are named with Install and "Locate file…".

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, channel};

use egui::{Color32, RichText};
use image::RgbImage;

use crate::jobs::text_edit::{
    EditRequest, EditSubject, SaveTextEdit, TextEditJob, TextEditPreview, subject_of,
};
use crate::jobs::{JobEvent, JobEventKind, JobId, JobOutcome, JobOutput, Worker};
use crate::pipeline::text_edit::{
    ALPHA_RANGE, BETA_RANGE, DEFAULT_ALPHA, DEFAULT_BETA, PROMPT_PRESETS, prompt_pair,
};
use crate::weights::models;
use crate::weights::store::WeightsStore;

/// The window's title.
pub const WINDOW_TITLE: &str = "Edit virtual model";
/// What an imported virtual model shows instead of the controls.
pub const IMPORTED_TEXT: &str = "Text edits need a generated virtual model.";
/// The save button.
pub const SAVE_LABEL: &str = "Save as new version";
/// The Cast panel's menu entry that opens the window.
pub const EDIT_BUTTON: &str = "Edit with text…";
/// Seconds a change waits for the next one before its preview starts.
const DEBOUNCE_S: f64 = 0.35;
/// Seconds between checks of the weights while some are missing.
const RECHECK_S: f64 = 3.0;
/// Side of the before/after images in points.
const PREVIEW_SIDE: f32 = 240.0;

/// Results of the window's jobs, folded from the worker's events (by [`crate::app::AppState`] in
/// the app, by hand in tests). Only jobs it was told about are kept.
#[derive(Debug, Default)]
pub struct TextEditInbox {
    jobs: HashSet<JobId>,
    pub results: Vec<TextEditPreview>,
    /// Versions saved by the window's save jobs.
    pub saved: Vec<(JobId, crate::cast::VirtualModel)>,
    pub progress: HashMap<JobId, (usize, usize)>,
    pub finished: Vec<(JobId, JobOutcome)>,
}

impl TextEditInbox {
    pub fn track(&mut self, job: JobId) {
        self.jobs.insert(job);
    }

    /// Notes what concerns the window's jobs.
    pub fn observe(&mut self, event: &JobEvent) {
        if !self.jobs.contains(&event.job) {
            return;
        }
        match &event.kind {
            JobEventKind::Started { .. } => {}
            JobEventKind::Progress { done, total } => {
                self.progress.insert(event.job, (*done, *total));
            }
            JobEventKind::Output(JobOutput::TextEdited(preview)) => self.results.push((**preview).clone()),
            JobEventKind::Output(JobOutput::Cast(output)) => {
                if let crate::jobs::cast::CastOutput::Saved { model, .. } = output.as_ref() {
                    self.saved.push((event.job, model.clone()));
                }
            }
            JobEventKind::Output(_) => {}
            JobEventKind::Finished(outcome) => {
                self.jobs.remove(&event.job);
                self.progress.remove(&event.job);
                self.finished.push((event.job, outcome.clone()));
            }
        }
    }
}

/// The face the window edits.
#[derive(Debug, Clone)]
pub struct EditTarget {
    /// The library id of the virtual model.
    pub id: String,
    pub name: String,
    /// Its face as shown in the library ("before").
    pub face: Option<Arc<crate::jobs::photos::PhotoImage>>,
    /// None for a model imported from photos (it has no latent to edit).
    pub subject: Option<EditSubject>,
}

/// What the operator asked for that the app carries out.
#[derive(Debug, Clone)]
pub enum TextEditAction {
    Install(String),
    Locate(String),
    /// Save the preview as a new version of `parent` named `name`.
    Save {
        parent: String,
        name: String,
        preview: Box<TextEditPreview>,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum Mode {
    Prompt,
    Mapper(String),
}

/// What the background check found: the networks the edit needs, and the installed mappers
/// (id, label).
type Checked = (Vec<Need>, Vec<(String, String)>);

/// A network the edit needs and where it stands.
#[derive(Debug, Clone)]
struct Need {
    id: String,
    name: String,
    ready: bool,
    detail: String,
}

pub struct TextEditWindow {
    pub open: bool,
    store: WeightsStore,
    target: Option<EditTarget>,
    prompt: String,
    neutral: String,
    alpha: f32,
    beta: f32,
    auto_beta: bool,
    mode: Mode,
    strength: f32,
    save_name: String,
    /// When the settings last changed (egui time), while their preview is not asked for yet.
    changed_at: Option<f64>,
    next_tag: u64,
    /// The request of the newest preview asked for, and its tag.
    asked: Option<(u64, EditRequest)>,
    running: Option<JobId>,
    /// A "save as new version" in progress.
    saving: Option<JobId>,
    latest: Option<TextEditPreview>,
    error: Option<String>,
    needs: Vec<Need>,
    installed_mappers: Vec<(String, String)>,
    check: Option<Receiver<Checked>>,
    checked_at: Option<f64>,
    before: Option<egui::TextureHandle>,
    after: Option<egui::TextureHandle>,
}

impl TextEditWindow {
    pub fn new(store: WeightsStore) -> TextEditWindow {
        TextEditWindow {
            open: false,
            store,
            target: None,
            prompt: String::new(),
            neutral: String::new(),
            alpha: DEFAULT_ALPHA,
            beta: DEFAULT_BETA,
            auto_beta: false,
            mode: Mode::Prompt,
            strength: 1.0,
            save_name: String::new(),
            changed_at: None,
            next_tag: 1,
            asked: None,
            running: None,
            saving: None,
            latest: None,
            error: None,
            needs: Vec::new(),
            installed_mappers: Vec::new(),
            check: None,
            checked_at: None,
            before: None,
            after: None,
        }
    }

    /// Opens the window on a virtual model (a new one starts from fresh settings).
    pub fn open_for(&mut self, target: EditTarget) {
        let same = self.target.as_ref().is_some_and(|t| t.id == target.id);
        self.open = true;
        if !same {
            self.latest = None;
            self.asked = None;
            self.error = None;
            self.before = None;
            self.after = None;
            self.changed_at = None;
            self.save_name = String::new();
        }
        self.target = Some(target);
        self.checked_at = None;
    }

    pub fn target(&self) -> Option<&EditTarget> {
        self.target.as_ref()
    }

    /// The newest preview received for the current settings.
    pub fn latest(&self) -> Option<&TextEditPreview> {
        self.latest.as_ref()
    }

    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// A preview is being computed.
    pub fn is_busy(&self) -> bool {
        self.running.is_some()
    }

    /// The settings as a request; None when there is nothing to render (no prompt yet).
    fn request(&self) -> Option<EditRequest> {
        match &self.mode {
            Mode::Mapper(id) => Some(EditRequest::Mapper {
                id: id.clone(),
                strength: self.strength,
            }),
            Mode::Prompt if self.prompt.trim().is_empty() => None,
            Mode::Prompt => Some(EditRequest::Global {
                prompt: self.prompt.trim().to_string(),
                neutral: Some(self.neutral.trim().to_string()).filter(|n| !n.is_empty()),
                alpha: self.alpha,
                beta: (!self.auto_beta).then_some(self.beta),
            }),
        }
    }

    fn needed_ids(&self) -> Vec<String> {
        let generator = models::STYLEGAN2_ID.to_string();
        match &self.mode {
            Mode::Prompt => vec![
                generator,
                models::CLIP_TEXT_ID.into(),
                models::CLIP_VOCAB_ID.into(),
                models::STYLECLIP_GLOBAL_ID.into(),
            ],
            Mode::Mapper(id) => vec![generator, id.clone()],
        }
    }

    /// Asks the store in the background what is installed.
    fn start_check(&mut self, ctx: &egui::Context, now: f64) {
        if self.check.is_some() {
            return;
        }
        self.checked_at = Some(now);
        let (tx, rx) = channel();
        let store = self.store.clone();
        let ids = self.needed_ids();
        let ctx = ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("facecast-check-text-edit".into())
            .spawn(move || {
                let needs = ids.iter().map(|id| need(&store, id)).collect();
                let mappers = models::mapper_models(store.manifest())
                    .into_iter()
                    .filter(|m| store.status(&m.id).is_ok_and(|s| s.status.is_usable()))
                    .map(|m| (m.id.clone(), mapper_label(&m.id)))
                    .collect();
                let _ = tx.send((needs, mappers));
                ctx.request_repaint();
            });
        match spawned {
            Ok(_) => self.check = Some(rx),
            Err(e) => self.error = Some(format!("could not check the installed networks: {e}")),
        }
    }

    fn poll_check(&mut self) {
        let Some(rx) = &self.check else { return };
        match rx.try_recv() {
            Ok((needs, mappers)) => {
                self.needs = needs;
                self.installed_mappers = mappers;
                self.check = None;
            }
            Err(std::sync::mpsc::TryRecvError::Empty) => {}
            Err(std::sync::mpsc::TryRecvError::Disconnected) => self.check = None,
        }
    }

    fn ready(&self) -> bool {
        let ids = self.needed_ids();
        !self.needs.is_empty()
            && ids
                .iter()
                .all(|id| self.needs.iter().any(|n| &n.id == id && n.ready))
    }

    fn changed(&mut self, now: f64) {
        self.changed_at = Some(now);
    }

    /// Takes the results of the window's jobs and starts the next preview when due.
    fn pump(&mut self, ctx: &egui::Context, worker: &Worker, inbox: &mut TextEditInbox, now: f64) {
        for preview in inbox.results.drain(..) {
            if self.asked.as_ref().is_some_and(|(tag, _)| *tag == preview.tag) {
                self.after = Some(ctx.load_texture(
                    "text-edit-after",
                    color_image(&preview.image),
                    egui::TextureOptions::LINEAR,
                ));
                self.error = None;
                self.latest = Some(preview);
            }
        }
        for (job, model) in inbox.saved.drain(..) {
            if self.saving == Some(job) {
                self.saved_as(model);
            }
        }
        for (job, outcome) in inbox.finished.drain(..) {
            if self.running == Some(job) {
                self.running = None;
                if let JobOutcome::Failed(reason) = &outcome {
                    self.error = Some(reason.clone());
                }
            }
            if self.saving == Some(job) {
                self.saving = None;
                if let JobOutcome::Failed(reason) = outcome {
                    self.error = Some(format!("Saving failed: {reason}"));
                }
            }
        }
        let Some(changed) = self.changed_at else { return };
        let wait = DEBOUNCE_S - (now - changed);
        if wait > 0.0 {
            ctx.request_repaint_after(std::time::Duration::from_secs_f64(wait));
            return;
        }
        self.changed_at = None;
        let (Some(request), Some(subject)) = (
            self.request(),
            self.target.as_ref().and_then(|t| t.subject.clone()),
        ) else {
            return;
        };
        if self.asked.as_ref().is_some_and(|(_, r)| *r == request) || !self.ready() {
            return;
        }
        // A preview nobody will look at any more only holds the compute lane up.
        if let Some(old) = self.running.take() {
            worker.cancel(old);
        }
        let tag = self.next_tag;
        self.next_tag += 1;
        let job = worker.enqueue(TextEditJob {
            store: self.store.clone(),
            subject,
            request: request.clone(),
            tag,
        });
        inbox.track(job);
        self.running = Some(job);
        self.asked = Some((tag, request));
    }

    /// Draws the window (when open) and returns what the app must do.
    pub fn ui(
        &mut self,
        ctx: &egui::Context,
        worker: &Worker,
        inbox: &mut TextEditInbox,
    ) -> Vec<TextEditAction> {
        let mut actions = Vec::new();
        let now = ctx.input(|i| i.time);
        self.poll_check();
        self.pump(ctx, worker, inbox, now);
        if !self.open {
            return actions;
        }
        if self
            .checked_at
            .is_none_or(|t| !self.ready() && now - t > RECHECK_S)
        {
            self.start_check(ctx, now);
        }
        if !self.ready() {
            ctx.request_repaint_after(std::time::Duration::from_secs_f64(RECHECK_S));
        }
        let mut open = self.open;
        egui::Window::new(WINDOW_TITLE)
            .open(&mut open)
            .default_width(560.0)
            .show(ctx, |ui| self.contents(ui, now, inbox, worker, &mut actions));
        self.open = open;
        if !self.open
            && let Some(job) = self.running.take()
        {
            worker.cancel(job);
        }
        actions
    }

    fn contents(
        &mut self,
        ui: &mut egui::Ui,
        now: f64,
        inbox: &TextEditInbox,
        worker: &Worker,
        actions: &mut Vec<TextEditAction>,
    ) {
        let Some(target) = self.target.clone() else {
            ui.label("Choose a virtual model in the Cast panel to edit it.");
            return;
        };
        ui.heading(format!("Edit {}", target.name));
        if target.subject.is_none() {
            ui.label(RichText::new(IMPORTED_TEXT).strong());
            ui.label(format!(
                "{} was imported from photos, so there is no generated face to change. Generate a virtual \
                 model in the Cast panel (or pick a generated one) and edit that.",
                target.name
            ));
            return;
        }
        self.needs_ui(ui, actions);
        ui.separator();
        self.chips_ui(ui, now);
        ui.add_space(4.0);
        self.controls_ui(ui, now);
        ui.separator();
        self.preview_ui(ui, &target, inbox, worker);
        ui.separator();
        self.save_ui(ui, &target, actions);
    }

    fn needs_ui(&mut self, ui: &mut egui::Ui, actions: &mut Vec<TextEditAction>) {
        if self.needs.is_empty() {
            ui.label(RichText::new("Checking the installed networks…").weak());
            return;
        }
        let missing: Vec<Need> = self
            .needed_ids()
            .iter()
            .filter_map(|id| self.needs.iter().find(|n| &n.id == id && !n.ready))
            .cloned()
            .collect();
        if missing.is_empty() {
            return;
        }
        ui.label(RichText::new("This edit needs networks that are not installed:").strong());
        for need in missing {
            ui.horizontal(|ui| {
                ui.label(format!("{} — {}", need.name, need.detail));
                if ui.button("Install").clicked() {
                    actions.push(TextEditAction::Install(need.id.clone()));
                }
                if ui.button("Locate file…").clicked() {
                    actions.push(TextEditAction::Locate(need.id.clone()));
                }
            });
        }
    }

    fn chips_ui(&mut self, ui: &mut egui::Ui, now: f64) {
        ui.horizontal_wrapped(|ui| {
            ui.label("Presets:");
            for (label, neutral, target) in PROMPT_PRESETS {
                let on = self.mode == Mode::Prompt && self.prompt == *target && self.neutral == *neutral;
                if ui.selectable_label(on, *label).clicked() {
                    self.mode = Mode::Prompt;
                    self.prompt = target.to_string();
                    self.neutral = neutral.to_string();
                    self.changed(now);
                }
            }
            for (id, label) in self.installed_mappers.clone() {
                let on = self.mode == Mode::Mapper(id.clone());
                if ui
                    .selectable_label(on, format!("{label} (trained)"))
                    .on_hover_text("A trained StyleCLIP mapper for this one edit")
                    .clicked()
                {
                    self.mode = Mode::Mapper(id);
                    self.checked_at = None;
                    self.changed(now);
                }
            }
        });
    }

    fn controls_ui(&mut self, ui: &mut egui::Ui, now: f64) {
        if let Mode::Mapper(id) = self.mode.clone() {
            ui.horizontal(|ui| {
                ui.label(format!("Trained edit: {}", mapper_label(&id)));
                if ui.button("Describe a change instead").clicked() {
                    self.mode = Mode::Prompt;
                    self.checked_at = None;
                    self.changed(now);
                }
            });
            let slider = egui::Slider::new(&mut self.strength, 0.0..=2.0).text("Strength");
            if ui
                .add(slider)
                .on_hover_text("1 is the edit as trained; other values scale it (a Facecast extension)")
                .changed()
            {
                self.changed(now);
            }
            return;
        }
        egui::Grid::new("text-edit-prompts")
            .num_columns(2)
            .show(ui, |ui| {
                let label = ui.label("Change");
                let edit = egui::TextEdit::singleline(&mut self.prompt)
                    .hint_text("e.g. smiling, short blond hair, freckles")
                    .desired_width(320.0);
                if ui.add(edit).labelled_by(label.id).changed() {
                    self.changed(now);
                }
                ui.end_row();
                let label = ui.label("Neutral");
                let automatic = prompt_pair(&self.prompt, None)
                    .map(|p| format!("automatic: {}", p.neutral))
                    .unwrap_or_else(|_| "automatic".into());
                let edit = egui::TextEdit::singleline(&mut self.neutral)
                    .hint_text(automatic)
                    .desired_width(320.0);
                if ui
                    .add(edit)
                    .labelled_by(label.id)
                    .on_hover_text("The face without the change, e.g. \"face with hair\" for a hair colour")
                    .changed()
                {
                    self.changed(now);
                }
                ui.end_row();
            });
        match prompt_pair(
            &self.prompt,
            Some(self.neutral.as_str()).filter(|n| !n.trim().is_empty()),
        ) {
            Ok(pair) => {
                ui.label(
                    RichText::new(format!(
                        "Edits towards \"{}\", away from \"{}\"",
                        pair.target, pair.neutral
                    ))
                    .small()
                    .weak(),
                );
            }
            Err(e) if !self.prompt.trim().is_empty() => {
                ui.colored_label(ui.visuals().warn_fg_color, e.to_string());
            }
            Err(_) => {}
        }
        let strength = egui::Slider::new(&mut self.alpha, ALPHA_RANGE).text("Strength");
        if ui
            .add(strength)
            .on_hover_text("How far the face moves; negative moves away from the change")
            .changed()
        {
            self.changed(now);
        }
        ui.horizontal(|ui| {
            let slider = egui::Slider::new(&mut self.beta, BETA_RANGE).text("Disentanglement");
            let response = ui.add_enabled(!self.auto_beta, slider).on_hover_text(
                "Higher changes only what matters most for the prompt; lower changes more of the face",
            );
            if response.changed() {
                self.changed(now);
            }
            if ui.checkbox(&mut self.auto_beta, "Auto").changed() {
                self.changed(now);
            }
        });
    }

    fn preview_ui(&mut self, ui: &mut egui::Ui, target: &EditTarget, inbox: &TextEditInbox, worker: &Worker) {
        if self.before.is_none()
            && let Some(face) = &target.face
        {
            self.before = Some(ui.ctx().load_texture(
                "text-edit-before",
                egui::ColorImage::from_rgba_unmultiplied(
                    [face.width() as usize, face.height() as usize],
                    face.as_raw(),
                ),
                egui::TextureOptions::LINEAR,
            ));
        }
        let side = egui::vec2(PREVIEW_SIDE, PREVIEW_SIDE);
        ui.horizontal(|ui| {
            ui.vertical(|ui| {
                ui.label("Before");
                match &self.before {
                    Some(t) => {
                        ui.add(egui::Image::new(t).fit_to_exact_size(side));
                    }
                    None => {
                        ui.allocate_space(side);
                    }
                }
            });
            ui.vertical(|ui| {
                ui.label("After");
                match &self.after {
                    Some(t) => {
                        ui.add(egui::Image::new(t).fit_to_exact_size(side));
                    }
                    None => {
                        ui.allocate_ui(side, |ui| {
                            ui.label(RichText::new("Type a change or pick a preset to see it here.").weak());
                        });
                    }
                }
            });
        });
        if let Some(job) = self.running {
            ui.horizontal(|ui| {
                let (done, total) = inbox.progress.get(&job).copied().unwrap_or((0, 0));
                let fraction = if total > 0 {
                    done as f32 / total as f32
                } else {
                    0.0
                };
                let bar = egui::ProgressBar::new(fraction)
                    .desired_width(300.0)
                    .text("Rendering the preview…")
                    .animate(true);
                ui.add(bar);
                if ui.button("Cancel").clicked() {
                    worker.cancel(job);
                }
            });
        }
        if let Some(error) = &self.error {
            ui.colored_label(ui.visuals().error_fg_color, error);
        }
        if let Some(latest) = &self.latest {
            if let Some(note) = &latest.note {
                ui.colored_label(ui.visuals().warn_fg_color, note);
            }
            if let Some(n) = latest.channels {
                let mut text = format!("{n} style channels changed");
                if let (Some(beta), true) = (latest.beta, self.auto_beta) {
                    text.push_str(&format!(" (automatic disentanglement {beta:.2})"));
                }
                ui.label(RichText::new(text).small().weak());
            }
        }
    }

    fn save_ui(&mut self, ui: &mut egui::Ui, target: &EditTarget, actions: &mut Vec<TextEditAction>) {
        let current = self.request();
        let fresh = self.latest.as_ref().filter(|p| {
            p.changed
                && self.changed_at.is_none()
                && self
                    .asked
                    .as_ref()
                    .is_some_and(|(tag, r)| *tag == p.tag && Some(r) == current.as_ref())
        });
        if self.save_name.is_empty()
            && let Some(p) = fresh
        {
            self.save_name = format!("{} ({})", target.name, short_label(&p.record));
        }
        ui.horizontal(|ui| {
            let label = ui.label("Name");
            ui.add(egui::TextEdit::singleline(&mut self.save_name).desired_width(220.0))
                .labelled_by(label.id);
            let why = if self.saving.is_some() {
                "Saving…"
            } else if fresh.is_none() {
                "Wait for a preview that changes the face"
            } else if self.save_name.trim().is_empty() {
                "Give the new version a name"
            } else {
                ""
            };
            let button = ui
                .add_enabled(why.is_empty(), egui::Button::new(SAVE_LABEL))
                .on_disabled_hover_text(why)
                .on_hover_text("Adds the edited face to the library; the original stays as it is");
            if button.clicked()
                && let Some(p) = fresh
            {
                actions.push(TextEditAction::Save {
                    parent: target.id.clone(),
                    name: self.save_name.trim().to_string(),
                    preview: Box::new(p.clone()),
                });
            }
        });
        ui.label(
            RichText::new("StyleCLIP and the FFHQ generator are for non-commercial use.")
                .small()
                .color(Color32::from_rgb(200, 150, 40)),
        );
    }

    /// A save job started for the window.
    pub fn saving(&mut self, job: JobId) {
        self.saving = Some(job);
    }

    /// After a save: the new version is the one being edited now (further edits build on it),
    /// with the edited face as its "before".
    fn saved_as(&mut self, model: crate::cast::VirtualModel) {
        let face = self.latest.take().map(|p| Arc::new(rgba(&p.image)));
        match subject_of(&model) {
            Ok(subject) => {
                self.target = Some(EditTarget {
                    id: model.id.clone(),
                    name: model.name.clone(),
                    face,
                    subject,
                });
                self.error = None;
            }
            Err(e) => {
                self.error = Some(format!(
                    "{} was saved but cannot be edited further: {e}",
                    model.name
                ))
            }
        }
        self.save_name = String::new();
        self.asked = None;
        self.after = None;
        self.before = None;
        self.prompt.clear();
        self.neutral.clear();
        self.mode = Mode::Prompt;
    }
}

fn rgba(image: &RgbImage) -> crate::jobs::photos::PhotoImage {
    image::DynamicImage::ImageRgb8(image.clone()).into_rgba8()
}

fn need(store: &WeightsStore, id: &str) -> Need {
    let name = store
        .model(id)
        .map(|m| m.name.clone())
        .unwrap_or_else(|_| id.to_string());
    // The vocabulary may also be where the setup script put it, outside the store.
    if id == models::CLIP_VOCAB_ID && models::clip_vocab_path(store).is_ok() {
        return Need {
            id: id.into(),
            name,
            ready: true,
            detail: "installed".into(),
        };
    }
    match store.status(id) {
        Ok(state) => Need {
            id: id.into(),
            name,
            ready: state.status.is_usable(),
            detail: state.status.describe(),
        },
        Err(e) => Need {
            id: id.into(),
            name,
            ready: false,
            detail: e.to_string(),
        },
    }
}

/// "purple hair" for `styleclip-mapper-purple-hair`.
pub fn mapper_label(id: &str) -> String {
    id.trim_start_matches(models::STYLECLIP_MAPPER_PREFIX)
        .replace('-', " ")
}

fn short_label(record: &crate::pipeline::text_edit::TextEditRecord) -> String {
    use crate::pipeline::text_edit::TextEditRecord;
    match record {
        TextEditRecord::StyleclipGlobal { target, .. } => target
            .trim_start_matches("face with ")
            .trim_end_matches(" face")
            .to_string(),
        TextEditRecord::StyleclipMapper { mapper, .. } => mapper_label(mapper),
    }
}

fn color_image(image: &RgbImage) -> egui::ColorImage {
    egui::ColorImage::from_rgb([image.width() as usize, image.height() as usize], image.as_raw())
}

impl super::FacecastApp {
    /// The Edit window's frame: draw it, then carry out what the operator asked for.
    pub(super) fn text_edit_ui(&mut self, ctx: &egui::Context) {
        let Some(window) = &mut self.text_edit else { return };
        let actions = window.ui(ctx, &self.worker, &mut self.state.text_edit);
        for action in actions {
            match action {
                TextEditAction::Install(id) => {
                    self.install_model(ctx, &id);
                }
                TextEditAction::Locate(id) => {
                    if let Some(weights) = &mut self.weights {
                        weights.locate(ctx, &id);
                        weights.open = true;
                    }
                }
                TextEditAction::Save {
                    parent,
                    name,
                    preview,
                } => self.save_text_edit(&parent, name, preview),
            }
        }
    }

    fn save_text_edit(&mut self, parent: &str, name: String, preview: Box<TextEditPreview>) {
        let (Some(store), Some(library)) = (self.store.clone(), self.cast.library().cloned()) else {
            self.state
                .toasts
                .error("The virtual-model library is unavailable (no data directory).");
            return;
        };
        let Some(parent) = self.state.cast.item(parent).map(|i| i.model.clone()) else {
            self.state
                .toasts
                .error("The virtual model being edited is no longer in the library.");
            return;
        };
        let job = self.worker.enqueue(SaveTextEdit {
            store,
            library,
            parent,
            name,
            preview,
        });
        self.state.text_edit.track(job);
        if let Some(window) = &mut self.text_edit {
            window.saving(job);
        }
    }

    /// Opens the Edit window on a library model (an imported one gets the explanation).
    pub fn open_text_edit(&mut self, id: &str) {
        let Some(item) = self.state.cast.item(id) else {
            return;
        };
        let model = item.model.clone();
        let face = item.thumbnail.clone();
        match subject_of(&model) {
            Ok(subject) => self.edit_virtual_model(EditTarget {
                id: model.id.clone(),
                name: model.name.clone(),
                face,
                subject,
            }),
            Err(e) => self
                .state
                .toasts
                .error(format!("{} cannot be edited: {e}", model.name)),
        }
    }

    /// Opens the Edit window on a virtual model.
    pub fn edit_virtual_model(&mut self, target: EditTarget) {
        if let Some(window) = &mut self.text_edit {
            window.open_for(target);
        }
    }

    pub fn text_edit_window(&self) -> Option<&TextEditWindow> {
        self.text_edit.as_ref()
    }
}
