//! The Train window: fine-tune StyleGAN2 on a folder of the brand's face photos. A thin view over
//! the worker's [`TrainGenerator`] job: the form starts (or resumes) a run, then the window shows
//! progress with steps/s and time left, the preview grid of fixed seeds, the loss curves, Pause,
//! Resume and Cancel, and at the end the new generator, which the Cast window then lists.
//!
//! [`TrainInbox`] (in the app state, see `train_state`) folds the job's events; [`TrainWindow`] holds the fields
//! being typed and the preview textures.

use std::path::PathBuf;

use egui::{Color32, RichText, TextureHandle, TextureOptions, Vec2};

use super::FacecastApp;
use super::loss_plot::{Series, loss_plot};
pub use super::train_state::{LossHistory, TrainInbox, TrainPhase};
use crate::jobs::train_generator::TrainGenerator;
use crate::pipeline::generator_training::registry::{Lineage, check_name, generator_file};
use crate::pipeline::generator_training::run::{RunRequest, TrainControl, resumable};
use crate::pipeline::generator_training::trainer::TrainSettings;

/// The window's title (tests find it by this).
pub const TRAIN_WINDOW: &str = "Train a generator";
pub const START: &str = "Start";
pub const RESUME: &str = "Resume";
pub const PAUSE: &str = "Pause";
pub const CANCEL: &str = "Cancel";
pub const BROWSE: &str = "Browse…";
pub const ADVANCED: &str = "Advanced";

const PREVIEW_SIDE: f32 = 88.0;

/// What the operator asked for in the window.
#[derive(Debug, Clone, PartialEq)]
enum TrainAction {
    Browse,
    Start { resume: bool },
    Pause,
    Resume,
    Cancel,
}

/// What the typed name stands for in the data folder, looked up once per name.
#[derive(Debug, Clone)]
struct NameLookup {
    name: String,
    run: Option<Lineage>,
    generator_exists: bool,
}

/// The form and the preview textures.
#[derive(Default)]
pub struct TrainWindow {
    pub open: bool,
    pub photos: String,
    pub name: String,
    pub steps: String,
    pub batch: String,
    pub checkpoint_every: String,
    /// Advanced: a checkpoint file to start from (empty: the installed StyleGAN2).
    pub from: String,
    pub preview_every: String,
    lookup: Option<NameLookup>,
    textures: Vec<TextureHandle>,
    textures_of: Option<u64>,
}

/// The form's values, or what is wrong with them.
struct Form {
    photos: PathBuf,
    name: String,
    steps: u64,
    settings: TrainSettings,
    checkpoint_every: u64,
    preview_every: u64,
    from: String,
}

/// Empty fields take these (shown as the fields' hints).
const DEFAULT_STEPS: u64 = 1000;
const DEFAULT_BATCH: usize = 4;
const DEFAULT_CHECKPOINT_EVERY: u64 = 500;
/// Previews cost a forward pass per seed: every few hundred steps at full size.
const DEFAULT_PREVIEW_EVERY: u64 = 100;

/// A whole number typed in a field; empty gives `default`.
fn number<T: std::str::FromStr>(text: &str, what: &str, default: T) -> Result<T, String> {
    match text.trim() {
        "" => Ok(default),
        t => t
            .parse()
            .map_err(|_| format!("{what}: {t:?} is not a whole number")),
    }
}

impl TrainWindow {
    fn form(&self) -> Result<Form, String> {
        let name = self.name.trim().to_string();
        check_name(&name).map_err(|e| e.to_string())?;
        let steps = number(&self.steps, "Steps", DEFAULT_STEPS)?;
        let batch = number(&self.batch, "Batch", DEFAULT_BATCH)?;
        let checkpoint_every = number(
            &self.checkpoint_every,
            "Checkpoint every",
            DEFAULT_CHECKPOINT_EVERY,
        )?;
        let preview_every = number(&self.preview_every, "Preview every", DEFAULT_PREVIEW_EVERY)?;
        if steps == 0 || checkpoint_every == 0 {
            return Err("Steps and Checkpoint every must be at least 1".into());
        }
        // The window sets the batch; everything else is train.py's defaults.
        let settings = TrainSettings {
            batch,
            ..TrainSettings::default()
        };
        settings.validate().map_err(|e| e.to_string())?;
        let from = match self.from.trim() {
            "" => "installed".to_string(),
            file => file.to_string(),
        };
        Ok(Form {
            photos: PathBuf::from(self.photos.trim()),
            name,
            steps,
            settings,
            checkpoint_every,
            preview_every,
            from,
        })
    }

    fn lookup(&mut self, data: Option<&std::path::Path>) -> Option<&NameLookup> {
        let name = self.name.trim();
        let stale = self.lookup.as_ref().is_none_or(|l| l.name != name);
        if stale {
            let data = data?;
            self.lookup = Some(NameLookup {
                name: name.to_string(),
                run: resumable(data, name),
                generator_exists: check_name(name).is_ok() && generator_file(data, name).is_file(),
            });
        }
        self.lookup.as_ref()
    }

    fn preview_textures(&mut self, ctx: &egui::Context, inbox: &TrainInbox) {
        if self.textures_of == inbox.preview_iteration && self.textures.len() == inbox.previews.len() {
            return;
        }
        self.textures = inbox
            .previews
            .iter()
            .map(|(seed, image)| {
                let size = [image.width() as usize, image.height() as usize];
                let pixels = egui::ColorImage::from_rgb(size, image.as_raw());
                ctx.load_texture(format!("train-preview-{seed}"), pixels, TextureOptions::NEAREST)
            })
            .collect();
        self.textures_of = inbox.preview_iteration;
    }
}

fn labelled_field(ui: &mut egui::Ui, label: &str, text: &mut String, hint: &str, width: f32) {
    let label = ui.label(label);
    ui.add(
        egui::TextEdit::singleline(text)
            .hint_text(hint)
            .desired_width(width),
    )
    .labelled_by(label.id);
}

fn form_ui(
    ui: &mut egui::Ui,
    w: &mut TrainWindow,
    lookup: Option<&NameLookup>,
    detector_missing: bool,
    actions: &mut Vec<TrainAction>,
) {
    ui.horizontal(|ui| {
        labelled_field(
            ui,
            "Photos folder",
            &mut w.photos,
            "a folder of face photos",
            300.0,
        );
        if ui.button(BROWSE).clicked() {
            actions.push(TrainAction::Browse);
        }
    });
    ui.horizontal(|ui| labelled_field(ui, "Name", &mut w.name, "e.g. house-face", 180.0));
    ui.horizontal(|ui| {
        labelled_field(ui, "Steps", &mut w.steps, &DEFAULT_STEPS.to_string(), 60.0);
        labelled_field(ui, "Batch", &mut w.batch, &DEFAULT_BATCH.to_string(), 30.0);
        let every = DEFAULT_CHECKPOINT_EVERY.to_string();
        labelled_field(ui, "Checkpoint every", &mut w.checkpoint_every, &every, 60.0);
    });
    egui::CollapsingHeader::new(ADVANCED).show(ui, |ui| {
        ui.horizontal(|ui| {
            labelled_field(
                ui,
                "Start from checkpoint",
                &mut w.from,
                "installed StyleGAN2",
                300.0,
            )
        });
        ui.label(
            RichText::new(
                "Empty: the installed StyleGAN2. A train.py checkpoint holding g_ema and the discriminator d \
                 (the released FFHQ file has no discriminator).",
            )
            .small()
            .weak(),
        );
        ui.horizontal(|ui| {
            labelled_field(
                ui,
                "Preview every",
                &mut w.preview_every,
                &DEFAULT_PREVIEW_EVERY.to_string(),
                60.0,
            )
        });
    });
    if detector_missing {
        ui.colored_label(
            ui.visuals().warn_fg_color,
            "Training aligns the faces with MTCNN, the face detector, which is not installed: install it in the Weights window.",
        );
    }
    let form = w.form();
    let resumable = lookup.and_then(|l| l.run.as_ref());
    if let Some(run) = resumable {
        ui.label(format!(
            "A run called {} exists ({} of its iterations done): resume it, or choose another name.",
            run.name, run.steps
        ));
    } else if lookup.is_some_and(|l| l.generator_exists) {
        ui.colored_label(
            ui.visuals().warn_fg_color,
            "A generator of this name exists already; choose another name.",
        );
    }
    if let Err(problem) = &form
        && !w.name.trim().is_empty()
    {
        ui.colored_label(ui.visuals().warn_fg_color, problem);
    }
    let taken = lookup.is_some_and(|l| l.generator_exists);
    ui.horizontal(|ui| {
        let can_start = form.is_ok() && resumable.is_none() && !taken && !w.photos.trim().is_empty();
        if ui.add_enabled(can_start, egui::Button::new(START)).clicked() {
            actions.push(TrainAction::Start { resume: false });
        }
        if resumable.is_some()
            && ui
                .add_enabled(form.is_ok(), egui::Button::new(RESUME))
                .on_hover_text("Continue the run from its latest checkpoint, up to Steps iterations")
                .clicked()
        {
            actions.push(TrainAction::Start { resume: true });
        }
    });
}

fn progress_ui(ui: &mut egui::Ui, inbox: &TrainInbox, actions: &mut Vec<TrainAction>) {
    match &inbox.phase {
        TrainPhase::Preparing => {
            let (done, total) = inbox.aligning;
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(if total > 0 {
                    format!("Aligning the faces: photo {} of {total}", done + 1)
                } else {
                    "Loading the networks…".to_string()
                });
            });
        }
        TrainPhase::Training | TrainPhase::Paused => {
            let todo = inbox.steps.saturating_sub(inbox.from).max(1);
            let fraction = inbox.iteration.saturating_sub(inbox.from) as f32 / todo as f32;
            let text = if inbox.iteration > inbox.from {
                format!(
                    "Iteration {} of {} · {:.2} steps/s · {} left",
                    inbox.iteration,
                    inbox.steps,
                    inbox.steps_per_sec,
                    super::export_bar::format_duration(inbox.left)
                )
            } else {
                format!("Iteration {} of {}", inbox.iteration, inbox.steps)
            };
            ui.add(egui::ProgressBar::new(fraction).text(text));
        }
        _ => {}
    }
    if inbox.is_running() {
        ui.horizontal(|ui| {
            let paused = inbox.control.as_ref().is_some_and(TrainControl::is_paused);
            if paused {
                if ui.button(RESUME).clicked() {
                    actions.push(TrainAction::Resume);
                }
                ui.label(if inbox.phase == TrainPhase::Paused {
                    "Paused"
                } else {
                    "Pausing after this iteration…"
                });
            } else if ui.button(PAUSE).clicked() {
                actions.push(TrainAction::Pause);
            }
            if ui
                .button(CANCEL)
                .on_hover_text("Stop after this iteration and keep a checkpoint to resume from")
                .clicked()
            {
                actions.push(TrainAction::Cancel);
            }
        });
    }
    let message = match &inbox.phase {
        TrainPhase::Done(name) => Some((
            format!("Trained generator {name} registered: choose it in the Cast window's Generator list."),
            Color32::from_rgb(90, 170, 90),
        )),
        TrainPhase::Stopped {
            iteration,
            checkpoint,
        } => Some((
            format!(
                "Stopped after iteration {iteration}; the checkpoint {} resumes it (Resume with the same name).",
                checkpoint.display()
            ),
            ui.visuals().warn_fg_color,
        )),
        TrainPhase::Failed(reason) => {
            Some((format!("Training failed: {reason}"), ui.visuals().error_fg_color))
        }
        _ => None,
    };
    if let Some((text, color)) = message {
        ui.colored_label(color, text);
    }
    for note in &inbox.notes {
        ui.label(RichText::new(note).small().weak());
    }
}

fn results_ui(ui: &mut egui::Ui, w: &TrainWindow, inbox: &TrainInbox) {
    if !w.textures.is_empty() {
        ui.label(format!(
            "Previews (fixed seeds, after iteration {})",
            inbox.preview_iteration.unwrap_or(0)
        ));
        egui::Grid::new("train-previews")
            .spacing([4.0, 4.0])
            .show(ui, |ui| {
                for (i, (texture, (seed, _))) in w.textures.iter().zip(&inbox.previews).enumerate() {
                    ui.add(
                        egui::Image::new(texture)
                            .fit_to_exact_size(Vec2::splat(PREVIEW_SIDE))
                            .alt_text(format!("preview seed {seed}")),
                    );
                    if i % 4 == 3 {
                        ui.end_row();
                    }
                }
            });
    }
    if inbox.is_running() || inbox.history.points() > 0 {
        let h = &inbox.history;
        let series = [
            Series {
                name: "D",
                color: Color32::from_rgb(230, 120, 60),
                points: &h.d,
            },
            Series {
                name: "G",
                color: Color32::from_rgb(80, 150, 230),
                points: &h.g,
            },
            Series {
                name: "R1",
                color: Color32::from_rgb(200, 90, 200),
                points: &h.r1,
            },
            Series {
                name: "Path",
                color: Color32::from_rgb(90, 190, 110),
                points: &h.path,
            },
        ];
        let width = ui.available_width().clamp(240.0, 560.0);
        loss_plot(ui, &series, Vec2::new(width, 160.0));
    }
}

impl FacecastApp {
    /// Opens the Train window (the Cast window's *Train a generator…*).
    pub fn open_train_window(&mut self) {
        self.train_ui.open = true;
    }

    pub fn train_window(&self) -> &TrainWindow {
        &self.train_ui
    }

    /// The trained generators the Cast window lists.
    pub fn cast_generators(&self) -> &[String] {
        &self.cast.generators
    }

    /// The trained generator the Cast window generates from (None: the installed StyleGAN2).
    pub fn cast_generator_choice(&self) -> Option<&str> {
        self.cast.trained.as_deref()
    }

    /// A folder picked with *Browse…*.
    pub(super) fn train_photos_picked(&mut self, path: PathBuf) {
        self.train_ui.photos = path.display().to_string();
    }

    pub(super) fn train_ui(&mut self, ctx: &egui::Context) {
        if let Some(_name) = self.state.train.registered.take() {
            self.cast.refresh_generators();
            // The name now belongs to a generator.
            self.train_ui.lookup = None;
        }
        if !self.train_ui.open {
            return;
        }
        let data = self.store.as_ref().map(|s| s.data_dir().to_path_buf());
        let lookup = if self.state.train.is_running() {
            // A run in progress changes what the name stands for (its checkpoints, its
            // generator): look again once it has ended, not before.
            self.train_ui.lookup = None;
            None
        } else {
            self.train_ui.lookup(data.as_deref()).cloned()
        };
        self.train_ui.preview_textures(ctx, &self.state.train);
        let detector_missing = matches!(self.detector, super::Detector::Missing(_));
        let mut actions = Vec::new();
        let mut open = true;
        let running = self.state.train.is_running();
        egui::Window::new(TRAIN_WINDOW)
            .open(&mut open)
            .default_size([600.0, 640.0])
            .vscroll(true)
            .show(ctx, |ui| {
                if data.is_none() {
                    ui.label("Training needs a data directory; set FACECAST_DATA_DIR.");
                    return;
                }
                if !running {
                    form_ui(
                        ui,
                        &mut self.train_ui,
                        lookup.as_ref(),
                        detector_missing,
                        &mut actions,
                    );
                    ui.separator();
                }
                progress_ui(ui, &self.state.train, &mut actions);
                results_ui(ui, &self.train_ui, &self.state.train);
            });
        self.train_ui.open = open;
        for action in actions {
            self.train_action(action);
        }
    }

    fn train_action(&mut self, action: TrainAction) {
        let control = self.state.train.control.clone();
        match action {
            TrainAction::Browse => self.dialogs.request(super::dialogs::DialogRequest::new(
                super::dialogs::DialogPurpose::TrainPhotos,
                "Choose the folder of face photos to train on",
                super::dialogs::PickKind::Folder,
            )),
            TrainAction::Start { resume } => self.start_training(resume),
            TrainAction::Pause => control.iter().for_each(TrainControl::pause),
            TrainAction::Resume => control.iter().for_each(TrainControl::resume),
            TrainAction::Cancel => control.iter().for_each(TrainControl::cancel),
        }
    }

    fn start_training(&mut self, resume: bool) {
        let Some(store) = self.store.clone() else { return };
        if self.state.train.is_running() {
            return;
        }
        let form = match self.train_ui.form() {
            Ok(form) => form,
            Err(problem) => {
                self.state.toasts.error(problem);
                return;
            }
        };
        let request = RunRequest {
            resume: resume.then(|| form.name.clone()),
            // A resumed run keeps its photos unless the folder field names one.
            photos: (!self.train_ui.photos.trim().is_empty()).then_some(form.photos),
            name: form.name,
            from: form.from,
            steps: form.steps,
            checkpoint_every: form.checkpoint_every,
            size: None,
            settings: form.settings,
            preview_every: form.preview_every,
        };
        let control = TrainControl::default();
        let job = self.worker.enqueue(TrainGenerator {
            store,
            request,
            control: control.clone(),
        });
        self.state.train.begin(job, control);
        self.train_ui.textures.clear();
        self.train_ui.textures_of = None;
    }
}
