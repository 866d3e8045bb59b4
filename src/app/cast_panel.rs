//! Casting the virtual model: the side panel's "Virtual model" section (the current model and the
//! library), the "Cast a virtual model" window (a grid of StyleGAN2 candidates, click to
//! enlarge, save with a name) and the import window (face photos, choosing a face when a photo
//! has several). Networks run on the worker's compute lane; file work on its io lane.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, channel};

use egui::{Color32, ColorImage, RichText, TextureHandle, TextureOptions, Vec2};

use super::FacecastApp;
use super::state::AppState;
use crate::cast::VirtualModelLibrary;
use crate::jobs::PhotoImage;
use crate::jobs::cast::{
    FindImportFaces, GenerateCandidates, LibraryJob, LibraryOp, SaveCandidate, SaveImport,
};
use crate::pipeline::generate::{DEFAULT_TRUNCATION, NoiseChoice, SeedStream};
use crate::pipeline::generator_training::registry::list_generators;
use crate::weights::models::STYLEGAN2_ID;
use crate::weights::store::{ModelStatus, WeightsStore};

/// Shown when no virtual model is chosen (tests look for it).
pub const NO_MODEL_TEXT: &str = "No virtual model yet";
/// Title of the generation window.
pub const CAST_WINDOW: &str = "Cast a virtual model";
/// Title of the import window.
pub const IMPORT_WINDOW: &str = "Import a face photo";
/// The Cast window's button that opens the Train window.
pub const TRAIN_BUTTON: &str = "Train a generator…";
/// The label of the Cast window's generator list.
pub const GENERATOR_LABEL: &str = "Generator";
/// The generator list's entry for the installed StyleGAN2.
pub const INSTALLED_GENERATOR: &str = "StyleGAN2 FFHQ (installed)";
/// Most candidates one run may ask for.
pub const MAX_CANDIDATES: usize = 64;

const CANDIDATE_SIDE: f32 = 120.0;
const ENLARGED_SIDE: f32 = 384.0;
const ROW_THUMB: f32 = 40.0;

/// Where the StyleGAN2 weights stand, as the Cast window shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GeneratorStatus {
    Checking,
    /// Usable; `reduced` for reduced-width test weights.
    Ready {
        reduced: bool,
    },
    /// Not installed or unusable: what is wrong.
    Missing(String),
    Installing,
    /// No data directory at all.
    Unavailable,
}

/// Something the operator asked for in the cast UI, applied after drawing.
#[derive(Debug, Clone, PartialEq)]
pub enum CastAction {
    OpenWindow,
    /// Open the Weights window at the Generate section.
    ShowWeights,
    Generate,
    CancelGenerate,
    Enlarge(Option<usize>),
    SaveCandidate {
        index: usize,
        name: String,
    },
    ImportPhotos,
    PickFace {
        photo: usize,
        face: usize,
    },
    SaveImport {
        name: String,
    },
    CloseImport,
    SetCurrent(Option<String>),
    Rename {
        id: String,
        name: String,
    },
    Duplicate(String),
    Delete(String),
    Undelete(String),
    /// Open the Edit window (StyleCLIP text edits) on a model.
    EditText(String),
    /// Open the Train window (fine-tune a generator on the brand's faces).
    OpenTrain,
    InstallWeights,
    LocateWeights,
    Refresh,
}

/// View state of the cast UI (fields being typed, open windows, textures).
pub struct CastUi {
    pub window_open: bool,
    pub generator: GeneratorStatus,
    generator_check: Option<Receiver<Result<ModelStatus, String>>>,
    library: Option<VirtualModelLibrary>,
    store: Option<WeightsStore>,
    /// First seed of a "from" run.
    pub seed_from: u32,
    pub count: usize,
    pub random: bool,
    pub truncation: f64,
    pub noise: NoiseChoice,
    /// Generators trained in Facecast (`generators/<name>`), sorted.
    pub generators: Vec<String>,
    /// The trained generator candidates come from; None: the installed StyleGAN2.
    pub trained: Option<String>,
    /// The name typed for the enlarged candidate.
    pub save_name: String,
    /// The name typed for the import.
    pub import_name: String,
    /// The model being renamed and the name typed so far.
    rename: Option<(String, String)>,
    /// The model whose deletion waits for confirmation.
    confirm_delete: Option<String>,
    textures: HashMap<String, (Arc<PhotoImage>, TextureHandle)>,
    used: HashSet<String>,
    started: bool,
}

impl Default for CastUi {
    fn default() -> Self {
        CastUi {
            window_open: false,
            generator: GeneratorStatus::Unavailable,
            generator_check: None,
            library: None,
            store: None,
            seed_from: 0,
            count: 8,
            random: false,
            truncation: DEFAULT_TRUNCATION,
            noise: NoiseChoice::Checkpoint,
            generators: Vec::new(),
            trained: None,
            save_name: String::new(),
            import_name: String::new(),
            rename: None,
            confirm_delete: None,
            textures: HashMap::new(),
            used: HashSet::new(),
            started: false,
        }
    }
}

impl CastUi {
    /// The library and weights of `store`; checks StyleGAN2's install in the background.
    pub fn new(ctx: &egui::Context, store: Option<WeightsStore>) -> CastUi {
        let mut ui = CastUi {
            library: store.as_ref().map(|s| VirtualModelLibrary::open(s.data_dir())),
            store,
            ..CastUi::default()
        };
        ui.check_generator(ctx);
        ui.refresh_generators();
        ui
    }

    /// Lists the trained generators again (after a training run registered one).
    pub fn refresh_generators(&mut self) {
        self.generators = self
            .store
            .as_ref()
            .map(|s| list_generators(s.data_dir()))
            .unwrap_or_default();
        if let Some(name) = &self.trained
            && !self.generators.contains(name)
        {
            self.trained = None;
        }
    }

    pub fn library(&self) -> Option<&VirtualModelLibrary> {
        self.library.as_ref()
    }

    /// Asks the store again whether StyleGAN2 is usable (after an install, say).
    pub fn check_generator(&mut self, ctx: &egui::Context) {
        let Some(store) = self.store.clone() else {
            self.generator = GeneratorStatus::Unavailable;
            return;
        };
        let (tx, rx) = channel();
        let ctx = ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("facecast-check-stylegan2".into())
            .spawn(move || {
                let result = store
                    .status(STYLEGAN2_ID)
                    .map(|s| s.status)
                    .map_err(|e| e.to_string());
                let _ = tx.send(result);
                ctx.request_repaint();
            });
        match spawned {
            Ok(_) => {
                self.generator = GeneratorStatus::Checking;
                self.generator_check = Some(rx);
            }
            Err(e) => self.generator = GeneratorStatus::Missing(format!("could not check: {e}")),
        }
    }

    fn poll(&mut self) {
        if let Some(rx) = &self.generator_check
            && let Ok(result) = rx.try_recv()
        {
            self.generator_check = None;
            self.generator = match result {
                Ok(status) if status.is_usable() => GeneratorStatus::Ready {
                    reduced: status.is_reduced(),
                },
                Ok(status) => GeneratorStatus::Missing(status.describe()),
                Err(reason) => GeneratorStatus::Missing(reason),
            };
        }
    }

    fn texture(&mut self, ctx: &egui::Context, key: String, pixels: &Arc<PhotoImage>) -> TextureHandle {
        self.used.insert(key.clone());
        if let Some((held, handle)) = self.textures.get(&key)
            && Arc::ptr_eq(held, pixels)
        {
            return handle.clone();
        }
        let size = [pixels.width() as usize, pixels.height() as usize];
        let image = ColorImage::from_rgba_unmultiplied(size, pixels.as_raw());
        let handle = ctx.load_texture(format!("cast-{key}"), image, TextureOptions::LINEAR);
        self.textures.insert(key, (Arc::clone(pixels), handle.clone()));
        handle
    }

    /// Drops the textures nothing drew this frame.
    fn end_frame(&mut self) {
        let used = std::mem::take(&mut self.used);
        self.textures.retain(|k, _| used.contains(k));
    }
}

/// The side panel's "Virtual model" section.
pub fn side_section(ui: &mut egui::Ui, state: &AppState, cast: &mut CastUi, actions: &mut Vec<CastAction>) {
    ui.add_space(4.0);
    ui.heading("Virtual model");
    ui.add_space(4.0);
    let ctx = ui.ctx().clone();
    match state.cast.current_model() {
        Some(model) => {
            ui.horizontal(|ui| {
                if let Some(thumb) = state.cast.item(&model.id).and_then(|i| i.thumbnail.as_ref()) {
                    let tex = cast.texture(&ctx, format!("current-{}", model.id), thumb);
                    ui.add(
                        egui::Image::new(&tex)
                            .fit_to_exact_size(Vec2::splat(64.0))
                            .alt_text(&model.name),
                    );
                }
                ui.vertical(|ui| {
                    ui.label(RichText::new(&model.name).strong());
                    ui.label(RichText::new(model.origin.summary()).small().weak());
                    ui.label(RichText::new("Swaps use this face").small().weak());
                });
            });
        }
        None => {
            ui.label(RichText::new(NO_MODEL_TEXT).strong());
            ui.label(
                RichText::new("Generate one with StyleGAN2, or import a face photo, then choose it below.")
                    .weak(),
            );
        }
    }
    ui.horizontal_wrapped(|ui| {
        let available = cast.library.is_some();
        if ui
            .add_enabled(available, egui::Button::new("Generate…"))
            .on_hover_text("Generate candidate faces with StyleGAN2")
            .clicked()
        {
            actions.push(CastAction::OpenWindow);
        }
        let importing = state.cast.import_job.is_some();
        if ui
            .add_enabled(available && !importing, egui::Button::new("Import face photo…"))
            .on_hover_text("Make a virtual model from photos of one person's face")
            .clicked()
        {
            actions.push(CastAction::ImportPhotos);
        }
    });
    library_list(ui, state, cast, actions);
}

fn library_list(ui: &mut egui::Ui, state: &AppState, cast: &mut CastUi, actions: &mut Vec<CastAction>) {
    let cs = &state.cast;
    if !cs.listed {
        return;
    }
    ui.add_space(4.0);
    ui.label(
        RichText::new(format!("Saved virtual models ({})", cs.library.len()))
            .small()
            .strong(),
    );
    if !cs.damaged.is_empty() {
        let reasons: Vec<String> = cs
            .damaged
            .iter()
            .map(|d| format!("{}: {}", d.dir.display(), d.reason))
            .collect();
        ui.label(
            RichText::new(format!("{} damaged folder(s) skipped", cs.damaged.len()))
                .small()
                .color(ui.visuals().warn_fg_color),
        )
        .on_hover_text(reasons.join("\n"));
    }
    let ctx = ui.ctx().clone();
    egui::ScrollArea::vertical()
        .id_salt("cast-library")
        .max_height(220.0)
        .auto_shrink([false, true])
        .show(ui, |ui| {
            for item in &cs.library {
                let m = &item.model;
                let current = cs.current.as_deref() == Some(m.id.as_str());
                ui.horizontal(|ui| {
                    match &item.thumbnail {
                        Some(thumb) => {
                            let tex = cast.texture(&ctx, format!("lib-{}", m.id), thumb);
                            ui.add(
                                egui::Image::new(&tex)
                                    .fit_to_exact_size(Vec2::splat(ROW_THUMB))
                                    .alt_text(format!("{} face", m.name)),
                            );
                        }
                        None => {
                            ui.add_space(ROW_THUMB);
                        }
                    }
                    let response = ui.selectable_label(current, &m.name).on_hover_text(format!(
                        "{}\n{}",
                        m.origin.summary(),
                        m.dir().display()
                    ));
                    if response.clicked() && !current {
                        actions.push(CastAction::SetCurrent(Some(m.id.clone())));
                    }
                    response.context_menu(|ui| model_menu(ui, m, current, cast, actions));
                    ui.menu_button("More", |ui| model_menu(ui, m, current, cast, actions));
                });
            }
        });
}

fn model_menu(
    ui: &mut egui::Ui,
    m: &crate::cast::VirtualModel,
    current: bool,
    cast: &mut CastUi,
    actions: &mut Vec<CastAction>,
) {
    if !current && ui.button("Use for swaps").clicked() {
        actions.push(CastAction::SetCurrent(Some(m.id.clone())));
        ui.close();
    }
    if ui.button(super::text_edit::EDIT_BUTTON).clicked() {
        actions.push(CastAction::EditText(m.id.clone()));
        ui.close();
    }
    if ui.button("Rename…").clicked() {
        cast.rename = Some((m.id.clone(), m.name.clone()));
        ui.close();
    }
    if ui.button("Duplicate").clicked() {
        actions.push(CastAction::Duplicate(m.id.clone()));
        ui.close();
    }
    if ui.button("Delete…").clicked() {
        cast.confirm_delete = Some(m.id.clone());
        ui.close();
    }
}

/// The windows of the cast UI: generation, import, rename and delete confirmations.
pub fn windows(ctx: &egui::Context, state: &AppState, cast: &mut CastUi, actions: &mut Vec<CastAction>) {
    cast_window(ctx, state, cast, actions);
    import_window(ctx, state, cast, actions);
    rename_window(ctx, state, cast, actions);
    delete_window(ctx, state, cast, actions);
    cast.end_frame();
}

fn cast_window(ctx: &egui::Context, state: &AppState, cast: &mut CastUi, actions: &mut Vec<CastAction>) {
    if !cast.window_open {
        return;
    }
    let mut open = true;
    egui::Window::new(CAST_WINDOW)
        .open(&mut open)
        .default_size([720.0, 600.0])
        .vscroll(true)
        .show(ctx, |ui| {
            let installed = generator_line(ui, cast, actions);
            let ready = generator_choice(ui, cast, actions) || installed;
            ui.separator();
            generate_controls(ui, state, cast, ready, actions);
            ui.separator();
            match state
                .cast
                .enlarged
                .and_then(|i| state.cast.candidates.get(i).cloned().flatten())
            {
                Some(candidate) => enlarged(ui, state, cast, candidate, actions),
                None => candidate_grid(ui, state, cast, actions),
            }
        });
    cast.window_open = open;
}

/// The generator list (the installed StyleGAN2 and the trained ones) and the Train button; true
/// when a trained generator is chosen (it needs no installed StyleGAN2).
fn generator_choice(ui: &mut egui::Ui, cast: &mut CastUi, actions: &mut Vec<CastAction>) -> bool {
    ui.horizontal_wrapped(|ui| {
        let label = ui
            .label(GENERATOR_LABEL)
            .on_hover_text("Generators trained in Facecast appear here beside the installed one");
        let shown = cast.trained.as_deref().unwrap_or(INSTALLED_GENERATOR).to_string();
        egui::ComboBox::from_id_salt("cast-generator")
            .selected_text(shown)
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut cast.trained, None, INSTALLED_GENERATOR);
                for name in &cast.generators {
                    ui.selectable_value(&mut cast.trained, Some(name.clone()), name);
                }
            })
            .response
            .labelled_by(label.id);
        if ui
            .button(TRAIN_BUTTON)
            .on_hover_text("Fine-tune StyleGAN2 on a folder of the brand's face photos")
            .clicked()
        {
            actions.push(CastAction::OpenTrain);
        }
    });
    cast.trained.is_some()
}

/// The StyleGAN2 status; true when generation can run.
fn generator_line(ui: &mut egui::Ui, cast: &CastUi, actions: &mut Vec<CastAction>) -> bool {
    match &cast.generator {
        GeneratorStatus::Ready { reduced } => {
            let text = if *reduced {
                "StyleGAN2 FFHQ: ready (reduced-width test weights: the faces will not look real)"
            } else {
                "StyleGAN2 FFHQ: ready"
            };
            ui.label(RichText::new(text).small());
            ui.label(
                RichText::new("The StyleGAN2 FFHQ weights are licensed for non-commercial use only.")
                    .small()
                    .weak(),
            );
            true
        }
        GeneratorStatus::Checking => {
            ui.label(RichText::new("Checking the StyleGAN2 weights…").weak());
            false
        }
        GeneratorStatus::Installing => {
            ui.label("Installing StyleGAN2 FFHQ; the Weights window shows the progress.");
            false
        }
        GeneratorStatus::Unavailable => {
            ui.label("Generating needs a data directory for the weights; set FACECAST_DATA_DIR.");
            false
        }
        GeneratorStatus::Missing(reason) => {
            ui.label(RichText::new("Generating faces needs the StyleGAN2 FFHQ weights").strong());
            ui.label(format!(
                "stylegan2-ffhq-config-f.pt (about 127 MiB) is not usable: {reason}. Importing a face photo works without it."
            ));
            ui.label(
                RichText::new("Licence: NVIDIA Source Code License-NC: non-commercial use only.")
                    .small()
                    .color(ui.visuals().warn_fg_color),
            );
            ui.horizontal(|ui| {
                if ui.button("Install").clicked() {
                    actions.push(CastAction::InstallWeights);
                }
                if ui
                    .button("Locate file…")
                    .on_hover_text("Import stylegan2-ffhq-config-f.pt if you already have it")
                    .clicked()
                {
                    actions.push(CastAction::LocateWeights);
                }
            });
            if ui
                .link(super::weights_links::link_label("generate"))
                .on_hover_text("Open the Weights window at this feature: licences, sizes, Install all")
                .clicked()
            {
                actions.push(CastAction::ShowWeights);
            }
            false
        }
    }
}

fn generate_controls(
    ui: &mut egui::Ui,
    state: &AppState,
    cast: &mut CastUi,
    ready: bool,
    actions: &mut Vec<CastAction>,
) {
    let busy = state.cast.is_generating();
    ui.horizontal_wrapped(|ui| {
        ui.radio_value(&mut cast.random, false, "Seeds from");
        ui.add_enabled(
            !cast.random,
            egui::DragValue::new(&mut cast.seed_from).range(0..=u32::MAX),
        )
        .on_hover_text("The same seed and truncation always give the same face");
        ui.radio_value(&mut cast.random, true, "Random seeds");
        ui.separator();
        ui.label("Count");
        ui.add(egui::DragValue::new(&mut cast.count).range(1..=MAX_CANDIDATES));
    });
    ui.horizontal_wrapped(|ui| {
        ui.add(
            egui::Slider::new(&mut cast.truncation, 0.0..=1.0)
                .text("Truncation")
                .fixed_decimals(2),
        )
        .on_hover_text("Lower: more typical, more reliable faces. 1: the full variety, with more oddities.");
        egui::ComboBox::from_id_salt("cast-noise")
            .selected_text(match cast.noise {
                NoiseChoice::Checkpoint => "Fixed noise",
                NoiseChoice::Seeded => "Noise from the seed",
            })
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut cast.noise, NoiseChoice::Checkpoint, "Fixed noise");
                ui.selectable_value(&mut cast.noise, NoiseChoice::Seeded, "Noise from the seed");
            })
            .response
            .on_hover_text("Noise sets fine details such as hair strands and skin texture");
    });
    ui.horizontal(|ui| {
        if busy {
            let activity = state
                .activities
                .iter()
                .find(|a| Some(a.job) == state.cast.generate_job);
            let (done, total) = activity.map(|a| (a.done, a.total)).unwrap_or((0, 0));
            let fraction = if total > 0 {
                done as f32 / total as f32
            } else {
                0.0
            };
            ui.add(
                egui::ProgressBar::new(fraction)
                    .desired_width(260.0)
                    .text(format!("Generating {done} of {total}")),
            );
            if ui.button("Cancel").clicked() {
                actions.push(CastAction::CancelGenerate);
            }
        } else if ui.add_enabled(ready, egui::Button::new("Generate")).clicked() {
            actions.push(CastAction::Generate);
        }
    });
}

fn candidate_grid(ui: &mut egui::Ui, state: &AppState, cast: &mut CastUi, actions: &mut Vec<CastAction>) {
    let candidates = &state.cast.candidates;
    if candidates.is_empty() {
        ui.label(RichText::new("Generated faces appear here. Click one to see it large and save it.").weak());
        return;
    }
    let ctx = ui.ctx().clone();
    ui.horizontal_wrapped(|ui| {
        for (index, slot) in candidates.iter().enumerate() {
            ui.vertical(|ui| {
                ui.set_width(CANDIDATE_SIDE);
                match slot {
                    Some(c) => {
                        let label = format!("Seed {}", c.seed);
                        let tex = cast.texture(&ctx, format!("cand-{index}-{}", c.seed), &c.thumbnail);
                        let image = egui::Image::new(&tex)
                            .fit_to_exact_size(Vec2::splat(CANDIDATE_SIDE))
                            .sense(egui::Sense::click())
                            .alt_text(format!("Face of seed {}", c.seed));
                        if ui.add(image).on_hover_text("Click to enlarge").clicked() {
                            actions.push(CastAction::Enlarge(Some(index)));
                        }
                        if ui.link(label).clicked() {
                            actions.push(CastAction::Enlarge(Some(index)));
                        }
                    }
                    None => {
                        let (rect, _) =
                            ui.allocate_exact_size(Vec2::splat(CANDIDATE_SIDE), egui::Sense::hover());
                        ui.painter().rect_filled(rect, 4.0, ui.visuals().extreme_bg_color);
                        ui.label(RichText::new("waiting…").weak());
                    }
                }
            });
        }
    });
}

fn enlarged(
    ui: &mut egui::Ui,
    state: &AppState,
    cast: &mut CastUi,
    c: crate::jobs::cast::Candidate,
    actions: &mut Vec<CastAction>,
) {
    let ctx = ui.ctx().clone();
    let Some(index) = state.cast.enlarged else { return };
    // The enlarged copy is made once per candidate and kept with its texture.
    let key = format!("big-{index}-{}", c.seed);
    let tex = match cast.textures.get(&key) {
        Some((_, handle)) => {
            let handle = handle.clone();
            cast.used.insert(key);
            handle
        }
        None => {
            let big = Arc::new(image::DynamicImage::ImageRgb8((*c.image).clone()).into_rgba8());
            cast.texture(&ctx, key, &big)
        }
    };
    ui.horizontal(|ui| {
        ui.add(
            egui::Image::new(&tex)
                .fit_to_exact_size(Vec2::splat(ENLARGED_SIDE))
                .alt_text(format!("Seed {} enlarged", c.seed)),
        );
        ui.vertical(|ui| {
            ui.label(RichText::new(format!("Seed {}", c.seed)).strong());
            ui.label(format!("Truncation {:.2}", c.truncation));
            ui.label(match c.noise {
                crate::cast::NoiseSpec::Checkpoint => "Fixed noise".to_string(),
                crate::cast::NoiseSpec::Seeded { .. } => "Noise from the seed".to_string(),
            });
            ui.label(RichText::new(format!("{} × {} px", c.image.width(), c.image.height())).weak());
            ui.add_space(8.0);
            ui.label("Name");
            ui.add(
                egui::TextEdit::singleline(&mut cast.save_name)
                    .hint_text("e.g. Ava")
                    .desired_width(200.0),
            );
            let saving = state.cast.save_job.is_some();
            let can_save = !cast.save_name.trim().is_empty() && !saving;
            if ui
                .add_enabled(can_save, egui::Button::new("Save to library"))
                .clicked()
            {
                actions.push(CastAction::SaveCandidate {
                    index,
                    name: cast.save_name.trim().to_string(),
                });
            }
            if saving {
                ui.label(RichText::new("Saving…").weak());
            }
            ui.add_space(8.0);
            if ui.button("Back to all faces").clicked() {
                actions.push(CastAction::Enlarge(None));
            }
        });
    });
}

fn import_window(ctx: &egui::Context, state: &AppState, cast: &mut CastUi, actions: &mut Vec<CastAction>) {
    let finding = state.cast.import_job.is_some();
    let Some(draft) = state.cast.import.as_ref().filter(|_| !finding) else {
        if finding {
            egui::Window::new(IMPORT_WINDOW)
                .collapsible(false)
                .show(ctx, |ui| {
                    ui.add(egui::Spinner::new());
                    ui.label("Finding the faces…");
                });
        }
        return;
    };
    let mut open = true;
    egui::Window::new(IMPORT_WINDOW)
        .open(&mut open)
        .default_size([560.0, 420.0])
        .vscroll(true)
        .show(ctx, |ui| {
            for (p, photo) in draft.photos.iter().enumerate() {
                match photo {
                    Err(reason) => {
                        ui.label(RichText::new(reason).color(ui.visuals().error_fg_color));
                    }
                    Ok(found) => {
                        let name = crate::jobs::photos::display_name(&found.faces.path);
                        let n = found.faces.faces.len();
                        if n > 1 {
                            ui.label(format!("{name}: {n} faces; click the one to use"));
                        } else {
                            ui.label(format!("{name}: 1 face"));
                        }
                        ui.horizontal_wrapped(|ui| {
                            for (f, preview) in found.previews.iter().enumerate() {
                                let tex = cast.texture(ctx, format!("imp-{p}-{f}"), preview);
                                let chosen = draft.picks.get(p) == Some(&f);
                                let frame = egui::Frame::new()
                                    .stroke(if chosen {
                                        egui::Stroke::new(3.0, ui.visuals().selection.stroke.color)
                                    } else {
                                        egui::Stroke::NONE
                                    })
                                    .inner_margin(2.0);
                                let response = frame
                                    .show(ui, |ui| {
                                        ui.add(
                                            egui::Image::new(&tex)
                                                .fit_to_exact_size(Vec2::splat(96.0))
                                                .sense(egui::Sense::click())
                                                .alt_text(format!("{name} face {}", f + 1)),
                                        )
                                    })
                                    .inner;
                                if response.clicked() {
                                    actions.push(CastAction::PickFace { photo: p, face: f });
                                }
                            }
                        });
                    }
                }
                ui.separator();
            }
            let usable = draft.usable().len();
            ui.horizontal(|ui| {
                ui.label("Name");
                ui.add(
                    egui::TextEdit::singleline(&mut cast.import_name)
                        .hint_text("the person's name")
                        .desired_width(200.0),
                );
            });
            ui.horizontal(|ui| {
                let saving = state.cast.import_save_job.is_some();
                let ok = usable > 0 && !cast.import_name.trim().is_empty() && !saving;
                let label = if usable > 1 {
                    format!("Save from {usable} photos")
                } else {
                    "Save to library".to_string()
                };
                if ui.add_enabled(ok, egui::Button::new(label)).clicked() {
                    actions.push(CastAction::SaveImport {
                        name: cast.import_name.trim().to_string(),
                    });
                }
                if ui.button("Cancel").clicked() {
                    actions.push(CastAction::CloseImport);
                }
            });
            if usable == 0 {
                ui.label(
                    RichText::new("None of these photos has a usable face.")
                        .color(ui.visuals().warn_fg_color),
                );
            }
        });
    if !open {
        actions.push(CastAction::CloseImport);
    }
}

fn rename_window(ctx: &egui::Context, state: &AppState, cast: &mut CastUi, actions: &mut Vec<CastAction>) {
    let Some((id, name)) = cast.rename.as_mut() else {
        return;
    };
    let old = state
        .cast
        .item(id)
        .map(|i| i.model.name.clone())
        .unwrap_or_default();
    let mut done = false;
    egui::Window::new("Rename virtual model")
        .collapsible(false)
        .resizable(false)
        .show(ctx, |ui| {
            ui.label(format!("New name for {old}"));
            let edit = ui.add(egui::TextEdit::singleline(name).desired_width(240.0));
            let enter = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            ui.horizontal(|ui| {
                let ok = !name.trim().is_empty();
                if (ui.add_enabled(ok, egui::Button::new("Rename")).clicked() || (enter && ok))
                    && name.trim() != old
                {
                    actions.push(CastAction::Rename {
                        id: id.clone(),
                        name: name.trim().to_string(),
                    });
                    done = true;
                }
                if ui.button("Cancel").clicked() {
                    done = true;
                }
            });
        });
    if done {
        cast.rename = None;
    }
}

fn delete_window(ctx: &egui::Context, state: &AppState, cast: &mut CastUi, actions: &mut Vec<CastAction>) {
    let Some(id) = cast.confirm_delete.clone() else {
        return;
    };
    let name = state
        .cast
        .item(&id)
        .map(|i| i.model.name.clone())
        .unwrap_or_else(|| id.clone());
    let mut done = false;
    egui::Window::new("Delete virtual model")
        .collapsible(false)
        .resizable(false)
        .show(ctx, |ui| {
            ui.label(format!("Delete {name}?"));
            ui.label(
                RichText::new("It is moved to the deleted-models folder and kept there for 30 days.")
                    .small()
                    .weak(),
            );
            ui.horizontal(|ui| {
                if ui
                    .button(RichText::new("Delete").color(Color32::from_rgb(210, 60, 50)))
                    .clicked()
                {
                    actions.push(CastAction::Delete(id.clone()));
                    done = true;
                }
                if ui.button("Cancel").clicked() {
                    done = true;
                }
            });
        });
    if done {
        cast.confirm_delete = None;
    }
}

impl FacecastApp {
    /// Where the StyleGAN2 weights stand for the Cast window.
    pub fn cast_generator(&self) -> &GeneratorStatus {
        &self.cast.generator
    }

    /// Lists the library once the app runs.
    pub(super) fn start_cast(&mut self) {
        if self.cast.started {
            return;
        }
        self.cast.started = true;
        self.apply_cast_op(LibraryOp::List);
    }

    /// Picks up the answers of background checks (the file dialog's come through `route_picked`).
    pub(super) fn poll_cast(&mut self) {
        self.start_cast();
        self.cast.poll();
    }

    /// Photos picked for import: their faces are found on the compute lane.
    pub fn find_import_faces(&mut self, paths: Vec<PathBuf>) {
        let Some(store) = self.store.clone() else { return };
        if let Some(previous) = self.state.cast.import_job.take() {
            self.worker.cancel(previous);
        }
        self.state.cast.import = None;
        // A new import is a new person: the name typed for the last one must not carry over.
        self.cast.import_name.clear();
        let job = self.worker.enqueue(FindImportFaces { store, paths });
        self.state.cast.import_job = Some(job);
    }

    fn apply_cast_op(&mut self, op: LibraryOp) {
        let Some(library) = self.cast.library.clone() else {
            return;
        };
        self.worker.enqueue(LibraryJob { library, op });
    }

    /// StyleGAN2 was installed or its install failed: look again.
    pub(super) fn generator_changed(&mut self, ctx: &egui::Context) {
        self.cast.check_generator(ctx);
    }

    pub(super) fn apply_cast(&mut self, ctx: &egui::Context, action: CastAction) {
        match action {
            CastAction::OpenWindow => {
                self.cast.window_open = true;
                if matches!(self.cast.generator, GeneratorStatus::Missing(_)) {
                    self.cast.check_generator(ctx);
                }
            }
            CastAction::Generate => {
                let Some(store) = self.store.clone() else { return };
                let count = self.cast.count.clamp(1, MAX_CANDIDATES);
                let seeds: Vec<u32> = if self.cast.random {
                    let nanos = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.subsec_nanos() ^ d.as_secs() as u32)
                        .unwrap_or(0);
                    let mut stream = SeedStream::new(nanos);
                    (0..count).map(|_| stream.next_u32()).collect()
                } else {
                    (0..count)
                        .map(|i| self.cast.seed_from.saturating_add(i as u32))
                        .collect()
                };
                if let Some(job) = self.state.cast.generate_job.take() {
                    self.worker.cancel(job);
                }
                self.state.cast.candidates = vec![None; seeds.len()];
                self.state.cast.enlarged = None;
                let job = self.worker.enqueue(GenerateCandidates {
                    store,
                    seeds,
                    truncation: self.cast.truncation,
                    noise: self.cast.noise,
                    trained: self.cast.trained.clone(),
                });
                self.state.cast.generate_job = Some(job);
            }
            CastAction::CancelGenerate => {
                if let Some(job) = self.state.cast.generate_job {
                    self.worker.cancel(job);
                }
            }
            CastAction::Enlarge(index) => self.state.cast.enlarged = index,
            CastAction::SaveCandidate { index, name } => {
                let (Some(store), Some(library)) = (self.store.clone(), self.cast.library.clone()) else {
                    return;
                };
                let Some(candidate) = self.state.cast.candidates.get(index).cloned().flatten() else {
                    return;
                };
                let job = self.worker.enqueue(SaveCandidate {
                    store,
                    library,
                    name,
                    candidate,
                });
                self.state.cast.save_job = Some(job);
            }
            CastAction::ImportPhotos => {
                let has_detector = self.detector_ready();
                if !has_detector {
                    self.state.toasts.warning_with(
                        "Importing a face photo needs MTCNN, the face detector, which is not installed yet.",
                        super::toasts::ToastAction::InstallModel(crate::jobs::MTCNN_ID.to_string()),
                    );
                    return;
                }
                self.dialogs.request(
                    super::dialogs::DialogRequest::new(
                        super::dialogs::DialogPurpose::CastPhotos,
                        "Import face photos of one person",
                        super::dialogs::PickKind::Files,
                    )
                    .images(),
                );
            }
            CastAction::PickFace { photo, face } => {
                if let Some(draft) = self.state.cast.import.as_mut()
                    && let Some(pick) = draft.picks.get_mut(photo)
                {
                    *pick = face;
                }
            }
            CastAction::SaveImport { name } => {
                let Some(library) = self.cast.library.clone() else {
                    return;
                };
                let Some(draft) = &self.state.cast.import else {
                    return;
                };
                let picks = draft
                    .usable()
                    .into_iter()
                    .map(|(p, i)| (Arc::clone(&p.faces), i))
                    .collect();
                let job = self.worker.enqueue(SaveImport { library, name, picks });
                self.state.cast.import_save_job = Some(job);
            }
            CastAction::CloseImport => self.state.cast.import = None,
            CastAction::SetCurrent(id) => self.state.cast.current = id,
            CastAction::Rename { id, name } => self.apply_cast_op(LibraryOp::Rename { id, name }),
            CastAction::Duplicate(id) => self.apply_cast_op(LibraryOp::Duplicate { id }),
            CastAction::Delete(id) => self.apply_cast_op(LibraryOp::Delete { id }),
            CastAction::Undelete(id) => self.apply_cast_op(LibraryOp::Undelete { id }),
            CastAction::EditText(id) => self.open_text_edit(&id),
            CastAction::OpenTrain => self.open_train_window(),
            CastAction::ShowWeights => self.apply(ctx, super::Action::ShowWeightsFor("generate")),
            CastAction::InstallWeights => {
                if self.install_model(ctx, STYLEGAN2_ID) {
                    self.cast.generator = GeneratorStatus::Installing;
                }
            }
            CastAction::LocateWeights => {
                if let Some(weights) = &mut self.weights {
                    weights.locate(ctx, STYLEGAN2_ID);
                    weights.open = true;
                }
            }
            CastAction::Refresh => {
                self.apply_cast_op(LibraryOp::List);
                self.cast.check_generator(ctx);
                self.cast.refresh_generators();
            }
        }
    }
}
