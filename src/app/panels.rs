//! The right-hand pipeline panel and the export bar (the virtual-model section is in
//! [`super::cast_panel`]).
//!
//! They show the real state of each feature. Features whose networks are not in this build yet are
//! named as "not available yet" with the issue that brings them, and their controls stay disabled.
//!
//! The pipeline panel is a list of sections, one per step, in pipeline order; a step that lands
//! replaces its "not available yet" entry with its own section function.

use egui::RichText;

use super::Action;
use super::state::{AppState, PhotoStatus};

/// One stage of the pipeline and where it stands in this build.
struct Stage {
    name: &'static str,
    network: &'static str,
    issue: u32,
}

const STAGES: &[Stage] = &[
    Stage {
        name: "Restore",
        network: "GPEN",
        issue: 7,
    },
    Stage {
        name: "Text edits",
        network: "StyleCLIP",
        issue: 8,
    },
    Stage {
        name: "Makeup",
        network: "BeautyGAN",
        issue: 9,
    },
];

/// One collapsible step of the pipeline panel.
pub fn section(ui: &mut egui::Ui, title: &str, add: impl FnOnce(&mut egui::Ui)) {
    egui::CollapsingHeader::new(RichText::new(title).strong())
        .id_salt(("pipeline-section", title))
        .default_open(true)
        .show(ui, add);
}

pub fn pipeline_panel(ui: &mut egui::Ui, state: &AppState, actions: &mut Vec<Action>) {
    ui.add_space(4.0);
    ui.heading("Pipeline");
    ui.add_space(4.0);
    match state.selected_entry() {
        Some(entry) => {
            let size = match &entry.status {
                PhotoStatus::Loaded { width, height } => format!("{width} × {height}"),
                PhotoStatus::Loading => "loading…".to_string(),
                PhotoStatus::Failed(_) => "unreadable".to_string(),
                PhotoStatus::Cancelled => "not loaded".to_string(),
            };
            ui.label(format!("Photo: {} ({size})", entry.name));
        }
        None => {
            ui.label(RichText::new("Photo: none selected").weak());
        }
    }
    ui.add_space(6.0);
    egui::ScrollArea::vertical()
        .id_salt("pipeline-sections")
        .auto_shrink([false, true])
        .show(ui, |ui| {
            section(ui, "Swap", |ui| {
                super::swap_panel::swap_section(ui, state, actions)
            });
            for stage in STAGES {
                section(ui, stage.name, |ui| {
                    ui.label(RichText::new("not available yet").weak())
                        .on_hover_text(format!(
                            "{} ({}) arrives with issue #{}",
                            stage.name, stage.network, stage.issue
                        ));
                });
            }
        });
}

pub fn export_bar(ui: &mut egui::Ui, state: &AppState) {
    ui.add_space(4.0);
    ui.horizontal(|ui| {
        ui.label(RichText::new("Export").strong());
        ui.separator();
        let library = &state.library;
        let readable = library.count(|s| matches!(s, PhotoStatus::Loaded { .. }));
        if library.is_empty() {
            ui.label(RichText::new("No photos yet").weak());
        } else {
            ui.label(format!(
                "{readable} of {} photos readable, none edited yet",
                library.len()
            ));
        }
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            let why = "Not available yet: batch export with recipes (issue #10)";
            ui.add_enabled(false, egui::Button::new("Export all…"))
                .on_disabled_hover_text(why);
            ui.add_enabled(false, egui::Button::new("Export selected…"))
                .on_disabled_hover_text(why);
        });
    });
    ui.add_space(2.0);
}
