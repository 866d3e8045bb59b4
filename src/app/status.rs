//! The status bar: the compute backend really in use (and why, when it fell back), how the window
//! renders, and the background work in progress with a cancel button.

use egui::RichText;

use super::Action;
use super::state::AppState;

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
            let Some(activity) = state.activities.first() else {
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
        });
    });
}
