//! The Makeup section of the right-hand pipeline panel: the reference faces (thumbnails, import,
//! remove), the strength, and "Apply makeup" on the selected photo's chosen faces. BeautyGAN runs
//! on the worker's compute lane; the result becomes the photo's next undoable edit.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use egui::{ColorImage, RichText, TextureHandle, TextureOptions, Vec2};
use image::RgbImage;

use super::state::{AppState, PhotoStatus};
use super::{Action, FacecastApp};
use crate::jobs::makeup::{
    ApplyMakeup, CheckMakeupWeights, ImportReferences, LoadReferences, MakeupOutput, RemoveReference,
};
use crate::jobs::{JobId, MTCNN_ID, PhotoId};
use crate::pipeline::detect::Face;
use crate::pipeline::faces_text;
use crate::pipeline::makeup::MakeupSettings;
use crate::pipeline::makeup::references::Reference;
use crate::weights::models::BEAUTYGAN_ID;

/// The section's heading (also how tests find it).
pub const HEADING: &str = "Makeup";
/// The apply button's label.
pub const APPLY_LABEL: &str = "Apply makeup";
/// The import button's label.
pub const IMPORT_LABEL: &str = "Import reference…";
/// The before/after button's label.
pub const COMPARE_LABEL: &str = "Hold to compare";

const THUMB: f32 = 56.0;

/// Where BeautyGAN's install stands.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum MakeupWeights {
    #[default]
    Unknown,
    Ready,
    /// Not installed, or why it cannot be used.
    Missing(String),
}

/// The makeup step's part of the app state.
#[derive(Debug, Default)]
pub struct MakeupState {
    /// Usable reference faces, sorted by name.
    pub references: Vec<Reference>,
    /// Has the library been read yet?
    pub loaded: bool,
    /// The chosen reference and the strength (what a recipe records).
    pub settings: MakeupSettings,
    pub weights: MakeupWeights,
    /// The apply job in flight.
    pub running: Option<JobId>,
    /// The import job in flight.
    pub importing: Option<JobId>,
    /// The last makeup edit's faces before and after.
    pub compare: Option<(PhotoId, Arc<RgbImage>, Arc<RgbImage>)>,
    /// The start-up reads were queued.
    requested: bool,
    /// Damaged entries already reported, so each is told once.
    told: HashSet<String>,
}

impl MakeupState {
    pub fn reference(&self) -> Option<&Reference> {
        let id = self.settings.reference.as_deref()?;
        self.references.iter().find(|r| r.id() == id)
    }

    pub(super) fn job_finished(&mut self, job: JobId) {
        if self.running == Some(job) {
            self.running = None;
        }
        if self.importing == Some(job) {
            self.importing = None;
        }
    }
}

/// What the operator did in the section.
#[derive(Debug, Clone, PartialEq)]
pub enum MakeupAction {
    Choose(String),
    /// 0…1.
    SetStrength(f32),
    /// Open the file dialog for reference photos.
    Import,
    /// Import these photos as references (from the dialog, or a test).
    ImportPaths(Vec<PathBuf>),
    Remove(String),
    /// Apply the chosen reference to the selected photo.
    Apply,
    InstallWeights,
    LocateWeights,
}

/// UI-only parts: the thumbnails' textures.
#[derive(Default)]
pub struct MakeupUi {
    thumbs: HashMap<String, TextureHandle>,
    /// Textures of `MakeupState::compare`, with the pixels they were made from.
    compare: Option<(Arc<RgbImage>, TextureHandle, TextureHandle)>,
}

impl MakeupUi {
    /// Before and after textures for the compare view, remade when the pixels change.
    fn compare(
        &mut self,
        ctx: &egui::Context,
        before: &Arc<RgbImage>,
        after: &Arc<RgbImage>,
    ) -> (TextureHandle, TextureHandle) {
        if let Some((pixels, b, a)) = &self.compare
            && Arc::ptr_eq(pixels, after)
        {
            return (b.clone(), a.clone());
        }
        let load = |name: &str, img: &RgbImage| {
            let image = ColorImage::from_rgb([img.width() as usize, img.height() as usize], img.as_raw());
            ctx.load_texture(name, image, TextureOptions::LINEAR)
        };
        let (b, a) = (load("makeup-before", before), load("makeup-after", after));
        self.compare = Some((Arc::clone(after), b.clone(), a.clone()));
        (b, a)
    }

    fn thumbnail(&mut self, ctx: &egui::Context, reference: &Reference) -> TextureHandle {
        self.thumbs
            .entry(reference.id().to_string())
            .or_insert_with(|| {
                let crop = &reference.crop;
                let image =
                    ColorImage::from_rgb([crop.width() as usize, crop.height() as usize], crop.as_raw());
                ctx.load_texture(
                    format!("makeup-reference-{}", reference.id()),
                    image,
                    TextureOptions::LINEAR,
                )
            })
            .clone()
    }
}

impl AppState {
    pub(super) fn apply_makeup_output(&mut self, output: MakeupOutput) {
        let makeup = &mut self.makeup;
        match output {
            MakeupOutput::References { references, problems } => {
                makeup.references = references;
                makeup.loaded = true;
                if makeup.reference().is_none() {
                    makeup.settings.reference = makeup.references.first().map(|r| r.id().to_string());
                }
                for problem in problems {
                    if makeup.told.insert(problem.clone()) {
                        self.toasts
                            .warning(format!("Makeup reference skipped: {problem}"));
                    }
                }
            }
            MakeupOutput::Imported { reference } => {
                self.toasts.info(format!(
                    "Added the makeup reference \u{201c}{}\u{201d}",
                    reference.name()
                ));
                makeup.settings.reference = Some(reference.id().to_string());
            }
            MakeupOutput::Compare { photo, before, after } => {
                makeup.compare = Some((photo, before, after));
            }
            MakeupOutput::Weights(result) => {
                makeup.weights = match result {
                    Ok(()) => MakeupWeights::Ready,
                    Err(reason) => MakeupWeights::Missing(reason),
                };
            }
        }
    }

    /// The faces makeup would go on: the chosen ones, else every face passing the screening score.
    pub fn makeup_faces(&self) -> Vec<Face> {
        let Some(entry) = self.selected_entry() else {
            return Vec::new();
        };
        let Some(found) = entry.faces() else {
            return Vec::new();
        };
        if entry.targets.is_empty() {
            found
                .faces
                .iter()
                .filter(|f| f.score >= self.detect_settings.min_score)
                .copied()
                .collect()
        } else {
            entry
                .targets
                .iter()
                .filter_map(|&i| found.faces.get(i).copied())
                .collect()
        }
    }

    /// Why "Apply makeup" cannot run now, or `None` when it can.
    pub fn makeup_blocker(&self) -> Option<String> {
        let entry = match self.selected_entry() {
            Some(entry) => entry,
            None => return Some("Select a photo first".into()),
        };
        if !matches!(entry.status, PhotoStatus::Loaded { .. }) {
            return Some("The photo is not loaded".into());
        }
        match &self.makeup.weights {
            MakeupWeights::Ready => {}
            MakeupWeights::Unknown => return Some("Checking BeautyGAN…".into()),
            MakeupWeights::Missing(_) => return Some("BeautyGAN is not installed".into()),
        }
        if self.makeup.reference().is_none() {
            return Some("Import or choose a reference face first".into());
        }
        if entry.faces().is_none() {
            return Some("The photo's faces are still being found".into());
        }
        if self.makeup_faces().is_empty() {
            return Some("No face was found on this photo".into());
        }
        if self.makeup.running.is_some() {
            return Some("Makeup is being applied".into());
        }
        None
    }
}

impl FacecastApp {
    /// Reads the references and checks BeautyGAN once at start.
    pub(super) fn makeup_tick(&mut self) {
        if self.store.is_none() && self.state.makeup.weights == MakeupWeights::Unknown {
            self.state.makeup.weights =
                MakeupWeights::Missing("no data directory to install weights into".into());
        }
        if let Some(store) = &self.store
            && !self.state.makeup.requested
        {
            self.state.makeup.requested = true;
            self.worker.enqueue(LoadReferences {
                data_dir: store.data_dir().to_path_buf(),
            });
            self.worker.enqueue(CheckMakeupWeights { store: store.clone() });
        }
    }

    /// After an install or import in the Weights window: check again what it changed.
    pub(super) fn weights_changed(&mut self, id: &str) {
        let Some(store) = &self.store else { return };
        if id == BEAUTYGAN_ID {
            self.state.makeup.weights = MakeupWeights::Unknown;
            self.worker.enqueue(CheckMakeupWeights { store: store.clone() });
        }
        self.classifier_weights_changed(id);
    }

    pub(super) fn import_references(&mut self, photos: Vec<PathBuf>) {
        let Some(store) = &self.store else {
            self.state
                .toasts
                .warning("Makeup references need a data directory, and none could be found.");
            return;
        };
        let job = self.worker.enqueue(ImportReferences {
            store: store.clone(),
            photos,
        });
        self.state.makeup.importing = Some(job);
    }

    pub(super) fn makeup_action(&mut self, ctx: &egui::Context, action: MakeupAction) {
        match action {
            MakeupAction::Choose(id) => self.state.makeup.settings.reference = Some(id),
            MakeupAction::SetStrength(s) => self.state.makeup.settings.strength = s.clamp(0.0, 1.0),
            MakeupAction::Import => {
                if !self.detector_ready() {
                    self.state.toasts.warning_with(
                        "Importing a reference face needs MTCNN, the face detector, which is not installed.",
                        super::toasts::ToastAction::InstallModel(MTCNN_ID.to_string()),
                    );
                } else {
                    self.dialogs.request(
                        super::dialogs::DialogRequest::new(
                            super::dialogs::DialogPurpose::MakeupReferences,
                            "Choose photos of faces wearing the makeup you want",
                            super::dialogs::PickKind::Files,
                        )
                        .images(),
                    );
                }
            }
            MakeupAction::ImportPaths(paths) => self.import_references(paths),
            MakeupAction::Remove(id) => {
                if let Some(store) = &self.store {
                    if self.state.makeup.settings.reference.as_deref() == Some(id.as_str()) {
                        self.state.makeup.settings.reference = None;
                    }
                    self.makeup_ui.thumbs.remove(&id);
                    self.worker.enqueue(RemoveReference {
                        data_dir: store.data_dir().to_path_buf(),
                        id,
                    });
                }
            }
            MakeupAction::Apply => self.apply_makeup(),
            MakeupAction::InstallWeights => {
                self.install_model(ctx, BEAUTYGAN_ID);
            }
            MakeupAction::LocateWeights => {
                if let Some(weights) = &mut self.weights {
                    weights.locate(ctx, BEAUTYGAN_ID);
                    weights.open = true;
                }
            }
        }
    }

    fn apply_makeup(&mut self) {
        if let Some(why) = self.state.makeup_blocker() {
            self.state.toasts.warning(format!("Makeup: {why}."));
            return;
        }
        let (Some(store), Some(entry), Some(reference)) = (
            &self.store,
            self.state.selected_entry(),
            self.state.makeup.reference(),
        ) else {
            return;
        };
        let photo = entry.id;
        let job = ApplyMakeup {
            store: store.clone(),
            photo,
            path: entry.path.clone(),
            source: self.state.current_edit(photo).map(|v| Arc::clone(&v.image)),
            faces: self.state.makeup_faces(),
            reference: reference.clone(),
            settings: self.state.makeup.settings.clone(),
        };
        self.state.makeup.running = Some(self.worker.enqueue(job));
    }
}

/// Draws the section.
pub fn makeup_section(
    ui: &mut egui::Ui,
    state: &AppState,
    makeup_ui: &mut MakeupUi,
    actions: &mut Vec<Action>,
) {
    let makeup = &state.makeup;
    match &makeup.weights {
        MakeupWeights::Ready => {}
        MakeupWeights::Unknown => {
            ui.label(RichText::new("Checking BeautyGAN…").weak());
        }
        MakeupWeights::Missing(reason) => {
            ui.label(
                RichText::new("Makeup needs BeautyGAN, which is not installed.")
                    .color(ui.visuals().warn_fg_color),
            )
            .on_hover_text(reason.as_str());
            ui.horizontal(|ui| {
                if ui
                    .button("Install BeautyGAN")
                    .on_hover_text("Download BeautyGAN's weights")
                    .clicked()
                {
                    actions.push(Action::Makeup(MakeupAction::InstallWeights));
                }
                if ui
                    .button("Locate BeautyGAN file…")
                    .on_hover_text("Use a BeautyGAN generator file you already have (…_G.pth)")
                    .clicked()
                {
                    actions.push(Action::Makeup(MakeupAction::LocateWeights));
                }
            });
            super::weights_links::link(ui, "makeup", actions);
        }
    }

    ui.label("Reference face");
    if makeup.loaded && makeup.references.is_empty() {
        ui.label(
            RichText::new("No reference faces yet: import a photo of a face wearing the makeup you want.")
                .weak(),
        );
    }
    ui.horizontal_wrapped(|ui| {
        for reference in &makeup.references {
            let texture = makeup_ui.thumbnail(ui.ctx(), reference);
            let chosen = makeup.settings.reference.as_deref() == Some(reference.id());
            let button =
                egui::Button::image(egui::Image::new(&texture).fit_to_exact_size(Vec2::splat(THUMB)))
                    .selected(chosen);
            let response = ui.add(button).on_hover_text(format!(
                "{} (from {})",
                reference.name(),
                reference.record.source
            ));
            response.widget_info(|| {
                egui::WidgetInfo::selected(egui::Role::Button, true, chosen, reference.name())
            });
            if response.clicked() {
                actions.push(Action::Makeup(MakeupAction::Choose(reference.id().to_string())));
            }
            response.context_menu(|ui| {
                if ui.button("Remove reference").clicked() {
                    actions.push(Action::Makeup(MakeupAction::Remove(reference.id().to_string())));
                }
            });
        }
    });
    if let Some(reference) = makeup.reference() {
        ui.label(format!("Chosen: {}", reference.name()));
    }
    let importing = makeup.importing.is_some();
    if ui
        .add_enabled(!importing, egui::Button::new(IMPORT_LABEL))
        .on_hover_text("Add faces from photos; the most prominent face of each is used")
        .clicked()
    {
        actions.push(Action::Makeup(MakeupAction::Import));
    }

    let mut strength = makeup.settings.strength * 100.0;
    let slider = egui::Slider::new(&mut strength, 0.0..=100.0)
        .suffix("%")
        .fixed_decimals(0)
        .text("Strength");
    if ui.add(slider).changed() {
        actions.push(Action::Makeup(MakeupAction::SetStrength(strength / 100.0)));
    }

    let faces = state.makeup_faces().len();
    let blocker = state.makeup_blocker();
    ui.horizontal(|ui| {
        let button = ui.add_enabled(blocker.is_none(), egui::Button::new(APPLY_LABEL));
        let button = match &blocker {
            Some(why) => button.on_disabled_hover_text(why.as_str()),
            None => button.on_hover_text(format!("Applies to {}", faces_text(faces))),
        };
        if button.clicked() {
            actions.push(Action::Makeup(MakeupAction::Apply));
        }
        if let Some(job) = makeup.running {
            ui.spinner();
            if ui.small_button("Cancel").clicked() {
                actions.push(Action::Cancel(job));
            }
        }
    });
    if let Some(entry) = state.selected_entry()
        && let Some(edit) = state.current_edit(entry.id)
        && edit.label.starts_with("Makeup")
    {
        ui.label(RichText::new(format!("Current edit: {}", edit.label)).weak());
        for note in &edit.notes {
            ui.label(RichText::new(note).weak());
        }
        if let Some((photo, before, after)) = &makeup.compare
            && *photo == entry.id
        {
            let (before_tex, after_tex) = makeup_ui.compare(ui.ctx(), before, after);
            let hold = ui
                .button(COMPARE_LABEL)
                .on_hover_text("Press and hold to see the faces without the makeup");
            let texture = if hold.is_pointer_button_down_on() {
                &before_tex
            } else {
                &after_tex
            };
            // At most 240 points high, so the section fits beside the other steps.
            let size = texture.size_vec2();
            let scale = (ui.available_width().min(320.0) / size.x.max(1.0)).min(240.0 / size.y.max(1.0));
            ui.add(egui::Image::new(texture).fit_to_exact_size(size * scale));
        }
    }
}
