//! The Restore section of the right-hand panel: None / GPEN / Blur then GPEN, blur sigma, blend and
//! model size; whether the chosen GPEN is installed (with Install and Locate … file when it is not);
//! and the button that restores the chosen faces of the selected photo on the compute lane, working
//! on the photo's current edit when it has one. The result becomes a new, undoable edit.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, channel};

use egui::RichText;

use super::state::AppState;
use super::{Action, FacecastApp};
use crate::jobs::{JobId, JobOutcome, PhotoId, RestoreFaces};
use crate::pipeline::detect::Face;
use crate::pipeline::faces_text;
use crate::pipeline::restore::{GpenModel, MAX_BLUR_SIGMA, RestoreMode, RestoreSettings};
use crate::weights::store::{ModelStatus, REDUCED_NOTE, WeightsStore};

/// What the operator did in the section.
#[derive(Debug, Clone, PartialEq)]
pub enum RestoreAction {
    Settings(RestoreSettings),
    /// Restore the chosen faces of this photo.
    Start(PhotoId),
    Install(GpenModel),
    Locate(GpenModel),
}

/// Where a GPEN checkpoint stands, as the section last heard.
#[derive(Debug, Clone, PartialEq)]
pub enum WeightsState {
    Ready {
        reduced: bool,
    },
    /// Not installed (`None`), or why it cannot be used.
    Missing(Option<String>),
}

/// The section's state, kept in [`AppState::restore`].
#[derive(Debug, Default)]
pub struct RestorePanel {
    pub settings: RestoreSettings,
    /// Install state by model; absent while being checked.
    weights: HashMap<GpenModel, WeightsState>,
    check: Option<Receiver<(GpenModel, WeightsState)>>,
    /// The Weights window was installing or importing a GPEN last frame, so its end triggers a check.
    weights_busy: bool,
    /// Whether a weights store exists at all (no data directory: restoring cannot run).
    has_store: bool,
    /// The restore job queued or running.
    pub job: Option<JobId>,
}

impl RestorePanel {
    /// The install state of `model`, once checked.
    pub fn weights(&self, model: GpenModel) -> Option<&WeightsState> {
        self.weights.get(&model)
    }

    fn poll(&mut self) {
        let Some(rx) = &self.check else { return };
        loop {
            match rx.try_recv() {
                Ok((model, state)) => {
                    self.weights.insert(model, state);
                }
                Err(std::sync::mpsc::TryRecvError::Empty) => return,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    self.check = None;
                    return;
                }
            }
        }
    }

    /// Checks both GPEN checkpoints on a background thread (a check may read a 270 MB file).
    fn recheck(&mut self, ctx: &egui::Context, store: &WeightsStore) {
        let (tx, rx) = channel();
        let store = store.clone();
        let ctx = ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("facecast-check-gpen".into())
            .spawn(move || {
                for model in GpenModel::ALL {
                    let state = match store.status(model.id()) {
                        Ok(s) if s.status.is_usable() => WeightsState::Ready {
                            reduced: s.status.is_reduced(),
                        },
                        Ok(s) => WeightsState::Missing(match s.status {
                            ModelStatus::Missing { .. } => None,
                            other => Some(other.describe()),
                        }),
                        Err(e) => WeightsState::Missing(Some(e.to_string())),
                    };
                    if tx.send((model, state)).is_err() {
                        return;
                    }
                    ctx.request_repaint();
                }
            });
        match spawned {
            Ok(_) => {
                self.weights.clear();
                self.check = Some(rx);
            }
            Err(e) => tracing::error!("could not start the GPEN check: {e}"),
        }
    }
}

impl AppState {
    /// Called when any job ends: clears the section's job and says when the faces were restored.
    pub(super) fn restore_job_finished(&mut self, job: JobId, outcome: &JobOutcome) {
        if self.restore.job != Some(job) {
            return;
        }
        self.restore.job = None;
        if *outcome == JobOutcome::Done {
            self.toasts.info(
                "Faces restored: a new version of the photo is ready (undo brings back the previous one).",
            );
        }
    }
}

impl FacecastApp {
    /// Once a frame, before drawing: folds the background check of GPEN's install, and checks again
    /// at start and whenever the Weights window finishes installing or importing a GPEN.
    pub(super) fn poll_restore(&mut self, ctx: &egui::Context) {
        let panel = &mut self.state.restore;
        panel.poll();
        let busy = self
            .weights
            .as_ref()
            .is_some_and(|w| GpenModel::ALL.iter().any(|m| w.is_busy(m.id())));
        let ended = panel.weights_busy && !busy;
        panel.weights_busy = busy;
        panel.has_store = self.store.is_some();
        if let Some(store) = &self.store
            && ((panel.weights.is_empty() && panel.check.is_none()) || ended)
        {
            panel.recheck(ctx, store);
        }
    }

    pub(super) fn apply_restore(&mut self, ctx: &egui::Context, action: RestoreAction) {
        match action {
            RestoreAction::Settings(settings) => self.state.restore.settings = settings,
            RestoreAction::Start(photo) => self.start_restore(photo),
            RestoreAction::Install(model) => {
                self.install_model(ctx, model.id());
            }
            RestoreAction::Locate(model) => {
                if let Some(weights) = &mut self.weights {
                    weights.open = true;
                    weights.locate(ctx, model.id());
                }
            }
        }
    }

    fn start_restore(&mut self, photo: PhotoId) {
        let Some(store) = &self.store else {
            self.state
                .toasts
                .error("Restoring needs the weights store, which is unavailable (no data directory).");
            return;
        };
        let Some(entry) = self.state.library.get(photo) else {
            return;
        };
        let Some(found) = entry.faces() else {
            self.state
                .toasts
                .warning(format!("{}: its faces have not been found yet", entry.name));
            return;
        };
        let faces: Vec<Face> = entry
            .targets
            .iter()
            .filter_map(|&i| found.faces.get(i).copied())
            .collect();
        if faces.is_empty() {
            self.state
                .toasts
                .warning("Choose the faces to restore first: click them on the canvas.");
            return;
        }
        let job = RestoreFaces {
            store: store.clone(),
            photo,
            path: entry.path.clone(),
            base: self.state.current_edit(photo).map(|v| Arc::clone(&v.image)),
            faces,
            photo_size: (found.width, found.height),
            settings: self.state.restore.settings.clone(),
        };
        self.state.restore.job = Some(self.worker.enqueue(job));
    }
}

/// The section's controls (a panel section supplies the title).
pub fn body(ui: &mut egui::Ui, state: &AppState, actions: &mut Vec<Action>) {
    let panel = &state.restore;
    let (has_store, weights_busy) = (panel.has_store, panel.weights_busy);
    let mut settings = panel.settings.clone();
    ui.horizontal_wrapped(|ui| {
        for mode in RestoreMode::ALL {
            let hover = match mode {
                RestoreMode::None => "Leave the faces as they are",
                RestoreMode::Gpen => "Restore the faces with GPEN",
                RestoreMode::BlurThenGpen => {
                    "Blur the faces a little, then restore them: for swaps that left doubled features"
                }
            };
            ui.radio_value(&mut settings.mode, mode, mode.label())
                .on_hover_text(hover);
        }
    });
    let enabled = settings.is_enabled();
    ui.add_enabled_ui(enabled, |ui| {
        ui.add_enabled(
            settings.mode == RestoreMode::BlurThenGpen,
            egui::Slider::new(&mut settings.blur_sigma, 0.0..=MAX_BLUR_SIGMA)
                .text("Blur sigma")
                .suffix(" px"),
        )
        .on_hover_text("How much to blur each face before GPEN, in pixels of a 512-pixel face")
        .on_disabled_hover_text("Used by Blur then GPEN");
        ui.add(
            egui::Slider::new(&mut settings.blend, 0.0..=100.0)
                .text("Blend")
                .suffix(" %")
                .integer(),
        )
        .on_hover_text("How much of the restored face to use: 100% is GPEN's result, lower keeps more of the face as it was");
        ui.horizontal(|ui| {
            ui.label("Model:");
            for model in GpenModel::ALL {
                let hover = match model {
                    GpenModel::Bfr512 => "GPEN at 512 pixels: the best result (the official default)",
                    GpenModel::Bfr256 => "GPEN at 256 pixels: much faster, softer",
                };
                ui.radio_value(&mut settings.model, model, model.label())
                    .on_hover_text(hover);
            }
        });
    });
    if settings != panel.settings {
        actions.push(Action::Restore(RestoreAction::Settings(settings.clone())));
    }
    if !enabled {
        ui.label(RichText::new("Faces are not restored.").weak());
        return;
    }

    let model = settings.model;
    let ready = weights_line(ui, panel, model, has_store, weights_busy, actions);

    let entry = state.selected_entry();
    let chosen = entry.map_or(0, |e| e.targets.len());
    if let Some(entry) = entry {
        let base = match state.current_edit(entry.id) {
            Some(edit) => format!("Works on the current edit: {}", edit.label),
            None => "Works on the original photo".to_string(),
        };
        ui.label(RichText::new(base).weak());
        if chosen == 0 {
            ui.label(RichText::new("No face chosen: click faces on the canvas").weak());
        }
    }
    let running = panel
        .job
        .and_then(|job| state.activities.iter().find(|a| a.job == job));
    if let Some(job) = panel.job {
        ui.horizontal(|ui| {
            match running {
                Some(activity) => {
                    let fraction = activity.fraction().unwrap_or(0.0);
                    ui.add(
                        egui::ProgressBar::new(fraction)
                            .desired_width(150.0)
                            .text(format!("Restoring {}/{}", activity.done, activity.total)),
                    );
                }
                None => {
                    ui.spinner();
                    ui.label("Waiting to restore…");
                }
            }
            if ui.button("Cancel").on_hover_text("Stop restoring").clicked() {
                actions.push(Action::Cancel(job));
            }
        });
        return;
    }
    let why_not = if entry.is_none() {
        Some("Select a photo first")
    } else if chosen == 0 {
        Some("Choose the faces to restore: click them on the canvas")
    } else if !ready {
        Some("The GPEN weights are needed first")
    } else {
        None
    };
    let text = if chosen == 0 {
        "Restore faces".to_string()
    } else {
        format!("Restore {}", faces_text(chosen))
    };
    let button = ui.add_enabled(why_not.is_none(), egui::Button::new(text));
    if let Some(why) = why_not {
        button.on_disabled_hover_text(why);
    } else if button
        .on_hover_text(format!("{} on the chosen faces", settings.describe()))
        .clicked()
        && let Some(entry) = entry
    {
        actions.push(Action::Restore(RestoreAction::Start(entry.id)));
    }
}

/// The chosen model's install state; true when it can be used.
fn weights_line(
    ui: &mut egui::Ui,
    panel: &RestorePanel,
    model: GpenModel,
    has_store: bool,
    busy: bool,
    actions: &mut Vec<Action>,
) -> bool {
    if !has_store {
        ui.label(
            RichText::new("Restoring is unavailable: there is no data directory for the weights.")
                .color(ui.visuals().warn_fg_color),
        );
        return false;
    }
    match panel.weights(model) {
        None => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(format!("Checking {}…", model.label()));
            });
            false
        }
        Some(WeightsState::Ready { reduced }) => {
            if *reduced {
                ui.label(
                    RichText::new(format!("{}: {REDUCED_NOTE}", model.label()))
                        .color(ui.visuals().warn_fg_color),
                );
            }
            true
        }
        Some(WeightsState::Missing(reason)) => {
            let text = match reason {
                None => format!("{} is not installed.", model.label()),
                Some(reason) => format!("{} cannot be used: {reason}", model.label()),
            };
            ui.label(RichText::new(text).color(ui.visuals().warn_fg_color));
            ui.label(RichText::new("Restoring needs its weights (non-commercial licence).").weak());
            ui.horizontal(|ui| {
                if busy {
                    ui.spinner();
                    ui.label("Installing…");
                    return;
                }
                if ui
                    .button(format!("Install {}", model.label()))
                    .on_hover_text(format!("Download {} from its official source", model.id()))
                    .clicked()
                {
                    actions.push(Action::Restore(RestoreAction::Install(model)));
                }
                if ui
                    .button(format!("Locate {} file…", model.label()))
                    .on_hover_text("Use a copy you already have")
                    .clicked()
                {
                    actions.push(Action::Restore(RestoreAction::Locate(model)));
                }
            });
            super::weights_links::link(ui, "restore", actions);
            false
        }
    }
}
