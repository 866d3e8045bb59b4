//! The right-hand pipeline panel (the virtual-model section is in [`super::cast_panel`], the
//! export bar in [`super::export_bar`]).
//!
//! The pipeline panel is a list of collapsible sections, one per step, in pipeline order; each
//! step's controls live in that step's own file.

use egui::RichText;

use super::Action;
use super::state::{AppState, PhotoStatus};

/// One collapsible step of the pipeline panel.
pub fn section(ui: &mut egui::Ui, title: &str, add: impl FnOnce(&mut egui::Ui)) {
    egui::CollapsingHeader::new(RichText::new(title).strong())
        .id_salt(("pipeline-section", title))
        .default_open(true)
        .show(ui, add);
}

pub fn pipeline_panel(
    ui: &mut egui::Ui,
    state: &AppState,
    makeup_ui: &mut super::makeup_section::MakeupUi,
    actions: &mut Vec<Action>,
) {
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
            section(ui, "Restore", |ui| {
                super::restore_section::body(ui, state, actions)
            });
            section(ui, super::makeup_section::HEADING, |ui| {
                super::makeup_section::makeup_section(ui, state, makeup_ui, actions)
            });
            section(ui, "Text edits", |ui| {
                super::weights_links::missing_line(
                    ui,
                    &state.missing_networks,
                    "edit",
                    "text edits need them",
                    actions,
                );
                ui.label(
                    RichText::new(
                        "StyleCLIP edits change the virtual model itself: in the Virtual model section, a model's menu → Edit with text…",
                    )
                    .weak(),
                );
            });
        });
}
