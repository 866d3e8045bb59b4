//! The eframe window: a thin view over plain state. Never runs a network on the UI thread.
//!
//! Each frame the app drains the worker's events into [`AppState`], draws the panels from the state,
//! and turns what the operator did into [`Action`]s that it applies after drawing (enqueue a job,
//! change the selection, open a dialog).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::mpsc::Receiver;

use crate::compute::{BackendChoice, Compute};
use crate::jobs::{Job, JobId, LoadPreview, LoadThumbnails, PhotoId, ScanPaths, Worker};
use crate::weights::store::WeightsStore;

pub mod canvas;
pub mod cast_panel;
pub mod cast_state;
pub mod classifier_ui;
pub mod compare;
mod detection;
pub mod dialogs;
pub mod dropzone;
pub mod export_bar;
pub mod feed_ui;
pub mod fonts;
pub mod history;
pub mod icon;
pub mod library;
pub mod loss_plot;
pub mod makeup_section;
pub mod menu;
pub mod panels;
pub mod paths;
pub mod restore_section;
pub mod session;
pub mod state;
pub mod status;
pub mod swap_panel;
pub mod text_edit;
pub mod textures;
pub mod toasts;
pub mod train_state;
pub mod train_window;
mod window;

pub use state::{
    AppState, BackendInfo, Detection, FaceBadge, FollowUp, Library, LibraryFilter, PhotoEntry, PhotoStatus,
};

/// The window title, also used by tests to find the window.
pub const APP_NAME: &str = "Facecast";

/// The status bar's "Display:" text when the networks run on the CPU and the window on wgpu.
pub const DISPLAY_OWN_DEVICE_CPU: &str = "own wgpu device (the networks run on the CPU)";

pub mod weights_jobs;
pub mod weights_links;
pub mod weights_window;

/// What the command line asks of the window.
#[derive(Debug, Clone, Default)]
pub struct WindowOptions {
    pub backend: BackendChoice,
    pub data_dir: Option<PathBuf>,
    pub open: Vec<PathBuf>,
    pub samples: bool,
}

/// Opens the window and returns when it is closed.
pub fn run_window(options: WindowOptions) -> anyhow::Result<ExitCode> {
    window::run(options)
}

/// Something the operator asked for in this frame, applied after drawing.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    OpenFilesDialog,
    OpenFolderDialog,
    /// Pick a product feed (CSV) to import.
    ImportFeedDialog,
    /// Pick the folder for the library's screening lists.
    ExportListsDialog,
    AddPaths(Vec<PathBuf>),
    Select(PhotoId),
    Remove(PhotoId),
    Cancel(JobId),
    CancelAll,
    ShowAbout,
    ShowWeights,
    /// Open the Weights window at a feature's section (by `--for` key).
    ShowWeightsFor(&'static str),
    OpenSamples,
    SetFilter(LibraryFilter),
    /// Choose or un-choose a face of a photo as a swap target.
    ToggleFace(PhotoId, usize),
    /// Choose exactly the faces scoring at least the score.
    SelectFacesFrom(PhotoId, f32),
    SetSelectScore(f32),
    /// Something in the Restore section.
    Restore(restore_section::RestoreAction),
    /// The makeup section (references, strength, apply).
    Makeup(makeup_section::MakeupAction),
    /// The face classifier (marks, training, second opinions).
    Classifier(classifier_ui::ClassifierAction),
    /// Swap the selected photo's chosen faces (or all its faces) for the virtual model's.
    Swap {
        all_faces: bool,
    },
    SetSwapSettings(crate::pipeline::swap::SwapSettings),
    ShowSwapMask(bool),
    /// Undo or redo the selected photo's last edit.
    Undo,
    Redo,
    /// Start, cancel or follow an export.
    Export(export_bar::ExportAction),
    Quit,
}

/// Which optional panels are visible (View menu).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub library: bool,
    pub side: bool,
    pub about: bool,
}

impl Default for Layout {
    fn default() -> Self {
        Layout {
            library: true,
            side: true,
            about: false,
        }
    }
}

/// How the app starts, beyond the device.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// Photos or folders to add at once.
    pub open: Vec<PathBuf>,
    /// How the window renders, for the status bar (e.g. "on the compute device").
    pub display: String,
    /// Messages to show as warnings on the first frame (e.g. a feature asked for on the command line
    /// that is not available).
    pub warnings: Vec<String>,
    /// The data directory (weights, samples); None: `FACECAST_DATA_DIR`, else the per-user one.
    pub data_dir: Option<PathBuf>,
    /// Install MTCNN at once when it is missing (the real window; tests leave it off so they never
    /// reach the network).
    pub install_missing: bool,
    /// Bring back the last session from the data directory and save it again on exit (the real
    /// window; tests turn it on explicitly).
    pub restore_session: bool,
}

/// Where the face detector stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Detector {
    /// Its install is being checked in the background.
    Checking,
    Ready,
    /// Not installed, or why it cannot be used.
    Missing(Option<String>),
    Installing,
    /// No data directory: detection cannot run at all.
    Unavailable,
}

pub struct FacecastApp {
    state: AppState,
    worker: Worker,
    textures: textures::TextureCache,
    dialogs: dialogs::FileDialogs,
    layout: Layout,
    /// Where the selected photo was drawn last frame; overlays (face boxes) map through it.
    canvas_view: Option<canvas::CanvasView>,
    /// Set when the selection moved by keyboard, so the library scrolls to it.
    scroll_to_selected: bool,
    nav: canvas::CanvasNav,
    store: Option<WeightsStore>,
    weights: Option<weights_window::WeightsWindow>,
    /// The Edit window (StyleCLIP text edits of a generated virtual model).
    text_edit: Option<text_edit::TextEditWindow>,
    detector: Detector,
    /// The answer of the background check of MTCNN's install.
    detector_check: Option<Receiver<Result<bool, String>>>,
    install_missing: bool,
    /// The "MTCNN is missing" toast was shown (once is enough).
    missing_told: bool,
    /// After an install, photos whose detection failed are tried again.
    retry_detection: bool,
    /// The sample photos being fetched on a background thread.
    samples: Option<Receiver<Result<Vec<PathBuf>, String>>>,
    /// Where the before/after divider stands.
    compare: compare::CompareView,
    /// Textures of the swap mask preview.
    masks: swap_panel::MaskPreview,
    /// The export's dialogs and windows.
    export_ui: export_bar::ExportUi,
    /// Where the session is saved; `None` when sessions are off (tests, no data directory).
    session: Option<session::SessionStore>,
    /// Virtual-model casting: the Cast window, the import window, their fields.
    cast: cast_panel::CastUi,
    /// The makeup section's dialogs and reference thumbnails.
    makeup_ui: makeup_section::MakeupUi,
    /// The Train window's fields and preview textures.
    train_ui: train_window::TrainWindow,
}

impl FacecastApp {
    /// Starts the worker on `compute` and queues the photos to open.
    pub fn new(ctx: &egui::Context, compute: Compute, start: StartOptions) -> FacecastApp {
        fonts::install(ctx);
        let backend = BackendInfo::from_compute(&compute, start.display);
        let repaint = ctx.clone();
        let worker = Worker::start(compute, Arc::new(move || repaint.request_repaint()));
        let mut app = FacecastApp {
            state: AppState::new(backend),
            worker,
            textures: textures::TextureCache::default(),
            dialogs: dialogs::FileDialogs::new(ctx.clone()),
            layout: Layout::default(),
            canvas_view: None,
            scroll_to_selected: false,
            nav: canvas::CanvasNav::fit(),
            store: None,
            weights: None,
            text_edit: None,
            detector: Detector::Unavailable,
            detector_check: None,
            install_missing: start.install_missing,
            missing_told: false,
            retry_detection: false,
            samples: None,
            compare: compare::CompareView::default(),
            masks: swap_panel::MaskPreview::default(),
            export_ui: export_bar::ExportUi::default(),
            session: None,
            cast: cast_panel::CastUi::default(),
            makeup_ui: makeup_section::MakeupUi::default(),
            train_ui: train_window::TrainWindow::default(),
        };
        match WeightsStore::open(start.data_dir.clone()) {
            Ok(store) => {
                app.detector_check = Some(detection::check_detector(ctx, store.clone()));
                app.detector = Detector::Checking;
                let mut weights = weights_window::WeightsWindow::new(store.clone());
                // Checked at once, so each section can say what its feature still needs.
                weights.refresh(ctx);
                app.weights = Some(weights);
                app.text_edit = Some(text_edit::TextEditWindow::new(store.clone()));
                app.store = Some(store);
            }
            Err(err) => app
                .state
                .toasts
                .error(format!("Face detection is unavailable: {err}")),
        }
        app.cast = cast_panel::CastUi::new(ctx, app.store.clone());
        if let Some(reason) = app.state.backend.fallback_reason.clone() {
            app.state.toasts.warning(format!(
                "Compute fell back to {}: {reason}",
                app.state.backend.label
            ));
        }
        for warning in start.warnings {
            app.state.toasts.warning(warning);
        }
        if start.restore_session
            && let Some(dir) = app.store.as_ref().map(|s| s.data_dir().to_path_buf())
        {
            app.restore_session(&dir);
        }
        // After the session, so the recipe it brings back is the one warmed (nothing on the CPU).
        if let Some(store) = &app.store {
            crate::jobs::warmup::start(&app.worker, store.clone(), app.state.recipe_with_sections());
        }
        if !start.open.is_empty() {
            app.open_paths(start.open);
        }
        app
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Where the before/after divider stands and whether it is being dragged.
    pub fn compare_view(&self) -> compare::CompareView {
        self.compare
    }

    /// How the canvas frames the photo (zoom and pan).
    pub fn canvas_nav(&self) -> canvas::CanvasNav {
        self.nav
    }

    /// Shows file dialogs as typed-path windows only (tests, and desktops where the native dialog
    /// is known to be missing), saying `why`.
    pub fn use_typed_paths(&mut self, ctx: &egui::Context, why: &str) {
        self.dialogs = dialogs::FileDialogs::typed_only(ctx.clone(), why);
    }

    /// Sends a path picked in a file dialog (native or typed) to what asked for it.
    fn route_picked(&mut self, ctx: &egui::Context, picked: dialogs::Picked) {
        use dialogs::DialogPurpose as P;
        if picked.paths.is_empty() {
            return;
        }
        let mut paths = picked.paths;
        match picked.purpose {
            P::AddPhotos | P::AddFolder => self.open_paths(paths),
            P::CastPhotos => self.find_import_faces(paths),
            P::Feed => self.choose_feed(paths.swap_remove(0)),
            P::ScreeningLists => {
                self.export_screening_lists(paths.swap_remove(0));
            }
            P::MakeupReferences => self.import_references(paths),
            P::TrainPhotos => self.train_photos_picked(paths.swap_remove(0)),
            P::LocateWeights(id) => {
                if let Some(weights) = &mut self.weights {
                    weights.import_paths(ctx, &id, paths);
                }
            }
            purpose @ (P::ExportFolder | P::SaveRecipe | P::LoadRecipe) => {
                let path = paths.swap_remove(0);
                self.export_picked(&purpose, path);
            }
        }
    }

    pub fn state_mut(&mut self) -> &mut AppState {
        &mut self.state
    }

    /// True once MTCNN is known to be installed (the start-up check or an install finished).
    pub fn detector_ready(&self) -> bool {
        self.detector == Detector::Ready
    }

    /// The Weights window (None without a data directory).
    pub fn weights_window(&self) -> Option<&weights_window::WeightsWindow> {
        self.weights.as_ref()
    }

    pub fn worker(&self) -> &Worker {
        &self.worker
    }

    /// Queues background work; its events are folded into the state every frame.
    pub fn enqueue(&self, job: impl Job) -> JobId {
        self.worker.enqueue(job)
    }

    /// Adds files and folders (recursively) to the library; thumbnails follow in the background.
    pub fn open_paths(&mut self, paths: Vec<PathBuf>) {
        if !paths.is_empty() {
            self.worker.enqueue(ScanPaths { roots: paths });
        }
    }

    /// Makes `id` the photo on the canvas and loads its preview.
    pub fn select_photo(&mut self, id: PhotoId) {
        let Some(entry) = self.state.library.get(id) else {
            return;
        };
        if self.state.selected == Some(id)
            && (self.state.preview.is_some() || self.state.preview_job.is_some())
        {
            return;
        }
        let path = entry.path.clone();
        let failed = matches!(entry.status, PhotoStatus::Failed(_) | PhotoStatus::Cancelled);
        self.state.selected = Some(id);
        self.state.preview = None;
        self.nav = canvas::CanvasNav::fit();
        if let Some(previous) = self.state.preview_job.take() {
            self.worker.cancel(previous);
        }
        if !failed {
            self.state.preview_job = Some(self.worker.enqueue(LoadPreview { photo: id, path }));
        }
    }

    pub fn remove_photo(&mut self, id: PhotoId) {
        let index = self.state.visible_entries().iter().position(|e| e.id == id);
        self.state.library.remove(id);
        self.state.decoded.remove(&id);
        self.state.edits.remove(&id);
        if self.state.selected == Some(id) {
            self.state.selected = None;
            self.state.preview = None;
            // Keep the operator in place: the next photo (or the new last one) takes the selection.
            let entries = self.state.visible_entries();
            let next = index
                .and_then(|i| entries.get(i).or(entries.last()))
                .map(|e| e.id);
            if let Some(next) = next {
                self.select_photo(next);
            }
        }
    }

    /// Where the selected photo was drawn in the last frame, with its image↔screen mapping.
    pub fn canvas_view(&self) -> Option<&canvas::CanvasView> {
        self.canvas_view.as_ref()
    }

    fn drain_events(&mut self) {
        for event in self.worker.drain() {
            match self.state.apply(event) {
                Some(FollowUp::LoadThumbnails(photos)) => {
                    let ids = photos.iter().map(|(id, _)| *id).collect();
                    let keep_rgb = self.detector != Detector::Unavailable;
                    let job = self.worker.enqueue(LoadThumbnails { photos, keep_rgb });
                    self.state.track_thumbnails(job, ids);
                }
                None => {}
            }
        }
        // With nothing on the canvas, the first readable photo goes there as soon as it is loaded
        // (waiting for the ones before it, so the choice does not depend on decoding order).
        if self.state.selected.is_none() {
            let first = self
                .state
                .library
                .entries()
                .iter()
                .find(|e| matches!(e.status, PhotoStatus::Loading | PhotoStatus::Loaded { .. }));
            if let Some(entry) = first
                && matches!(entry.status, PhotoStatus::Loaded { .. })
            {
                self.select_photo(entry.id);
            }
        }
    }

    fn apply(&mut self, ctx: &egui::Context, action: Action) {
        match action {
            Action::OpenFilesDialog => self.dialogs.request(
                dialogs::DialogRequest::new(
                    dialogs::DialogPurpose::AddPhotos,
                    "Add product photos",
                    dialogs::PickKind::Files,
                )
                .images(),
            ),
            Action::OpenFolderDialog => self.dialogs.request(dialogs::DialogRequest::new(
                dialogs::DialogPurpose::AddFolder,
                "Add a folder of product photos",
                dialogs::PickKind::Folder,
            )),
            Action::ImportFeedDialog => self.dialogs.request(
                dialogs::DialogRequest::new(
                    dialogs::DialogPurpose::Feed,
                    "Choose a product feed (CSV)",
                    dialogs::PickKind::File,
                )
                .filter("CSV", &["csv"]),
            ),
            Action::ExportListsDialog => self.dialogs.request(dialogs::DialogRequest::new(
                dialogs::DialogPurpose::ScreeningLists,
                "Choose the folder for faces.csv and no_faces.csv",
                dialogs::PickKind::Folder,
            )),
            Action::AddPaths(paths) => self.open_paths(paths),
            Action::Select(id) => self.select_photo(id),
            Action::Remove(id) => self.remove_photo(id),
            Action::Cancel(job) => self.worker.cancel(job),
            Action::CancelAll => self.worker.cancel_all(),
            Action::ShowAbout => self.layout.about = true,
            Action::ShowWeights => {
                if let Some(weights) = &mut self.weights {
                    weights.open = true;
                } else {
                    self.state
                        .toasts
                        .warning("The weights store is unavailable (no data directory).");
                }
            }
            Action::ShowWeightsFor(key) => match &mut self.weights {
                Some(weights) => weights.open_at(key),
                None => self
                    .state
                    .toasts
                    .warning("The weights store is unavailable (no data directory)."),
            },
            Action::OpenSamples => self.open_samples(ctx),
            Action::SetFilter(filter) => self.state.filter = filter,
            Action::ToggleFace(photo, index) => {
                if let Some(entry) = self.state.library.get_mut(photo) {
                    entry.toggle_target(index);
                }
            }
            Action::SelectFacesFrom(photo, score) => {
                if let Some(entry) = self.state.library.get_mut(photo) {
                    entry.select_faces_from(score);
                }
            }
            Action::SetSelectScore(score) => self.state.select_score = score,
            Action::Restore(action) => self.apply_restore(ctx, action),
            Action::Makeup(action) => self.makeup_action(ctx, action),
            Action::Classifier(action) => self.classifier_action(action),
            Action::Swap { all_faces } => self.start_swap(all_faces),
            Action::SetSwapSettings(settings) => self.state.swap.settings = settings,
            Action::ShowSwapMask(show) => self.state.swap.show_mask = show,
            Action::Undo => self.undo(),
            Action::Redo => self.redo(),
            Action::Export(action) => self.export_action(action),
            Action::Quit => ctx.send_viewport_cmd(egui::ViewportCommand::Close),
        }
    }

    fn keyboard(&mut self, ctx: &egui::Context, actions: &mut Vec<Action>) {
        if ctx.egui_wants_keyboard_input() {
            return;
        }
        let entries = self.state.visible_entries();
        if entries.is_empty() {
            return;
        }
        let current = self
            .state
            .selected
            .and_then(|id| entries.iter().position(|e| e.id == id));
        let last = entries.len() - 1;
        let target = ctx.input(|i| {
            if i.key_pressed(egui::Key::ArrowDown) {
                Some(current.map_or(0, |c| (c + 1).min(last)))
            } else if i.key_pressed(egui::Key::ArrowUp) {
                Some(current.map_or(0, |c| c.saturating_sub(1)))
            } else if i.key_pressed(egui::Key::Home) {
                Some(0)
            } else if i.key_pressed(egui::Key::End) {
                Some(last)
            } else {
                None
            }
        });
        if let Some(index) = target
            && Some(index) != current
        {
            actions.push(Action::Select(entries[index].id));
            self.scroll_to_selected = true;
        }
        if let Some(id) = self.state.selected
            && ctx.input(|i| i.key_pressed(egui::Key::Delete))
        {
            actions.push(Action::Remove(id));
        }
    }
}

impl eframe::App for FacecastApp {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.drain_events();
        self.poll_detector(ctx);
        self.poll_samples();
        self.poll_cast();
        self.poll_restore(ctx);
        self.detect_new_photos();
        self.makeup_tick();
        self.classifier_tick();
        for picked in self.dialogs.poll() {
            self.route_picked(ctx, picked);
        }
        self.session_tick();
        self.textures.sync(&self.state);
    }

    fn save(&mut self, _storage: &mut dyn eframe::Storage) {
        self.save_session();
    }

    fn on_exit(&mut self) {
        if self.session.is_some()
            && let Err(e) = self.save_session_now()
        {
            tracing::warn!("saving the session failed: {e}");
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let ctx = ui.ctx().clone();
        let mut actions = Vec::new();
        let mut cast_actions = Vec::new();

        egui::Panel::top("menu").show(ui, |ui| {
            menu::menu_bar(ui, &mut self.layout, &self.dialogs, &self.state, &mut actions)
        });
        egui::Panel::bottom("status").show(ui, |ui| status::status_bar(ui, &self.state, &mut actions));
        egui::Panel::bottom("export").show(ui, |ui| export_bar::export_bar(ui, &self.state, &mut actions));
        if self.layout.library {
            egui::Panel::left("library")
                .resizable(true)
                .default_size(280.0)
                .min_size(200.0)
                .show(ui, |ui| {
                    let scroll = std::mem::take(&mut self.scroll_to_selected);
                    library::library_panel(
                        ui,
                        &self.state,
                        &mut self.textures,
                        &self.dialogs,
                        scroll,
                        &mut actions,
                    );
                });
        }
        if self.layout.side {
            egui::Panel::right("side")
                .resizable(true)
                .default_size(280.0)
                .min_size(220.0)
                .show(ui, |ui| {
                    cast_panel::side_section(ui, &self.state, &mut self.cast, &mut cast_actions);
                    ui.separator();
                    panels::pipeline_panel(ui, &self.state, &mut self.makeup_ui, &mut actions);
                });
        }
        egui::CentralPanel::default().show(ui, |ui| {
            let overlays = canvas::Overlays {
                compare: &mut self.compare,
                masks: &mut self.masks,
            };
            self.canvas_view = canvas::canvas(
                ui,
                &self.state,
                &mut self.textures,
                &mut self.nav,
                overlays,
                &mut actions,
            );
        });

        menu::about_window(&ctx, &mut self.layout.about);
        dropzone::dropzone(&ctx, &mut actions);
        cast_panel::windows(&ctx, &self.state, &mut self.cast, &mut cast_actions);
        self.weights_ui(&ctx);
        self.text_edit_ui(&ctx);
        self.train_ui(&ctx);
        self.export_windows(&ctx);
        self.feed_window(&ctx);
        self.dialogs.ui(&ctx);
        for action in self.state.toasts.show(&ctx) {
            match action {
                toasts::ToastAction::InstallModel(id) => {
                    self.install_model(&ctx, &id);
                }
                toasts::ToastAction::UndeleteVirtualModel(id) => {
                    cast_actions.push(cast_panel::CastAction::Undelete(id))
                }
            }
        }
        swap_panel::history_shortcuts(&ctx, &mut actions);
        self.keyboard(&ctx, &mut actions);

        for action in actions {
            self.apply(&ctx, action);
        }
        for action in cast_actions {
            self.apply_cast(&ctx, action);
        }
    }
}
