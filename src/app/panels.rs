//! The right-hand pipeline panel (the virtual-model section is in [`super::cast_panel`], the
//! export bar in [`super::export_bar`]).
//!
//! They show the real state of each feature. Features whose networks are not in this build yet are
//! named as "not available yet" with the issue that brings them, and their controls stay disabled.

use egui::RichText;

use super::state::{AppState, PhotoStatus};

/// One stage of the pipeline and where it stands in this build.
struct Stage {
    name: &'static str,
    network: &'static str,
    issue: u32,
}

const STAGES: &[Stage] = &[
    Stage {
        name: "Swap",
        network: "FaceShifter",
        issue: 6,
    },
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

pub fn pipeline_panel(ui: &mut egui::Ui, state: &AppState) {
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
    egui::Grid::new("pipeline-stages")
        .num_columns(2)
        .spacing([12.0, 6.0])
        .striped(true)
        .show(ui, |ui| {
            for stage in STAGES {
                ui.label(stage.name)
                    .on_hover_text(format!("Runs {}", stage.network));
                ui.label(RichText::new("not available yet").weak())
                    .on_hover_text(format!(
                        "{} ({}) arrives with issue #{}",
                        stage.name, stage.network, stage.issue
                    ));
                ui.end_row();
            }
        });
}
