//! The status bar: the compute backend really in use (and why, when it fell back), how the window
//! renders, and the background work in progress with a cancel button. On wgpu it also says when
//! GPU kernels are being prepared (the start-up warm-up, `jobs::warmup`) and when a job stalls on a
//! network's first use, so a minutes-long compilation is never a silent stall.

use std::collections::HashMap;

use egui::RichText;

use super::Action;
use super::state::{Activity, AppState};
use crate::jobs::JobId;
use crate::jobs::warmup::{WARMUP_LABEL, WarmupEvent};

/// What the worker said about GPU kernels: the warm-up's progress and the jobs meeting a network
/// for the first time.
#[derive(Debug, Clone, Default)]
pub struct WarmupStatus {
    /// The warm-up job while it runs.
    pub job: Option<JobId>,
    /// The networks it plans to prepare, in order.
    pub planned: Vec<String>,
    /// The networks it prepared so far, in order.
    pub prepared: Vec<String>,
    /// Jobs running networks for the first time on this GPU, and which networks.
    pub first_use: HashMap<JobId, Vec<String>>,
}

impl WarmupStatus {
    /// Folds one event of `job`; the warm-up's activity is relabelled with the network it prepares.
    pub fn apply(&mut self, job: JobId, event: WarmupEvent, activities: &mut [Activity]) {
        match event {
            WarmupEvent::Planned { networks } => {
                self.job = Some(job);
                self.planned = networks;
                self.prepared.clear();
            }
            WarmupEvent::Preparing {
                network,
                index,
                total,
            } => {
                if let Some(activity) = activities.iter_mut().find(|a| a.job == job) {
                    activity.label = preparing_label(&network, index, total);
                }
            }
            WarmupEvent::Prepared { network, .. } => self.prepared.push(network),
            // The job that needs the network reports the problem; the warm-up only goes on.
            WarmupEvent::Skipped { .. } => {}
            WarmupEvent::FirstUse { networks } => {
                self.first_use.entry(job).or_default().extend(networks);
            }
        }
    }

    pub fn job_finished(&mut self, job: JobId) {
        if self.job == Some(job) {
            self.job = None;
        }
        self.first_use.remove(&job);
    }

    /// What the status bar says beside `job` when it runs networks for the first time on this GPU.
    pub fn first_use_note(&self, job: JobId) -> Option<String> {
        let networks = self.first_use.get(&job)?;
        Some(format!(
            "first use on this GPU: compiling kernels ({}), this can take minutes",
            networks.join(", ")
        ))
    }
}

/// The warm-up's label while it prepares `network`, e.g. "Preparing GPU kernels… (ArcFace, 2 of 5)".
pub fn preparing_label(network: &str, index: usize, total: usize) -> String {
    format!("{WARMUP_LABEL} ({network}, {index} of {total})")
}

pub fn status_bar(ui: &mut egui::Ui, state: &AppState, actions: &mut Vec<Action>) {
    ui.horizontal(|ui| {
        let backend = &state.backend;
        ui.label(RichText::new("Compute:").weak());
        ui.label(&backend.label).on_hover_text(format!(
            "The networks run on {}: {}",
            backend.label, backend.reason
        ));
        ui.label(RichText::new(format!("({})", backend.reason)).weak())
            .on_hover_text("`facecast devices` lists every adapter and this choice");
        if let Some(reason) = &backend.fallback_reason {
            ui.label(RichText::new(format!("fell back: {reason}")).color(ui.visuals().warn_fg_color))
                .on_hover_text("The backend in use is not the one asked for");
        }
        ui.separator();
        ui.label(RichText::new("Display:").weak());
        ui.label(&backend.display);

        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            // The warm-up lets the operator's jobs run first; while one does, it is the one shown.
            let Some(activity) = state
                .activities
                .iter()
                .find(|a| Some(a.job) != state.warmup.job)
                .or(state.activities.first())
            else {
                ui.label(RichText::new("Idle").weak());
                return;
            };
            let more = state.activities.len() - 1;
            if more > 0
                && ui
                    .small_button("Cancel all")
                    .on_hover_text("Stop every background job")
                    .clicked()
            {
                actions.push(Action::CancelAll);
            }
            if ui.small_button("Cancel").on_hover_text("Stop this job").clicked() {
                actions.push(Action::Cancel(activity.job));
            }
            if more > 0 {
                ui.label(RichText::new(format!("+{more} more")).weak());
            }
            match activity.fraction() {
                Some(fraction) => {
                    let text = format!("{}/{}", activity.done, activity.total);
                    ui.add(egui::ProgressBar::new(fraction).desired_width(140.0).text(text));
                }
                None => {
                    ui.spinner();
                }
            }
            ui.label(&activity.label);
            if let Some(note) = state.warmup.first_use_note(activity.job) {
                ui.label(RichText::new(note).color(ui.visuals().warn_fg_color))
                    .on_hover_text(
                        "On wgpu a network's first call compiles its kernels; after start-up the \
                     installed networks are prepared in the background so this happens once",
                    );
            }
        });
    });
}
