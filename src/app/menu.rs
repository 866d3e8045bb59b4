//! The menu bar and the About window.

use super::dialogs::FileDialogs;
use super::state::AppState;
use super::{APP_NAME, Action, Layout};

pub fn menu_bar(
    ui: &mut egui::Ui,
    layout: &mut Layout,
    dialogs: &FileDialogs,
    state: &AppState,
    actions: &mut Vec<Action>,
) {
    egui::MenuBar::new().ui(ui, |ui| {
        ui.menu_button("File", |ui| {
            super::dialogs::open_buttons(ui, dialogs, actions);
            if ui.button(super::feed_ui::IMPORT_FEED).clicked() {
                actions.push(Action::ImportFeedDialog);
            }
            if ui
                .add_enabled(
                    !state.library.is_empty(),
                    egui::Button::new(super::feed_ui::EXPORT_LISTS),
                )
                .on_hover_text(
                    "faces.csv and no_faces.csv of the screened photos, as `facecast screen` writes them",
                )
                .clicked()
            {
                actions.push(Action::ExportListsDialog);
            }
            ui.separator();
            if ui.button("Weights…").clicked() {
                actions.push(Action::ShowWeights);
            }
            ui.separator();
            if ui.button("Quit").clicked() {
                actions.push(Action::Quit);
            }
        });
        super::swap_panel::edit_menu(ui, state, actions);
        ui.menu_button("View", |ui| {
            ui.checkbox(&mut layout.library, "Library panel");
            ui.checkbox(&mut layout.side, "Virtual model and pipeline panels");
            ui.separator();
            // egui's own theme buttons label themselves with emoji the bundled fonts lack.
            let mut theme = ui.ctx().options(|o| o.theme_preference);
            let before = theme;
            ui.radio_value(
                &mut theme,
                egui::ThemePreference::System,
                "Follow the system theme",
            );
            ui.radio_value(&mut theme, egui::ThemePreference::Light, "Light theme");
            ui.radio_value(&mut theme, egui::ThemePreference::Dark, "Dark theme");
            if theme != before {
                ui.ctx().set_theme(theme);
            }
        });
        ui.menu_button("Help", |ui| {
            if ui.button("Open sample photos").clicked() {
                actions.push(Action::OpenSamples);
            }
            if ui.button("About").clicked() {
                actions.push(Action::ShowAbout);
            }
        });
    });
}

pub fn about_window(ctx: &egui::Context, open: &mut bool) {
    egui::Window::new(format!("About {APP_NAME}"))
        .open(open)
        .collapsible(false)
        .resizable(false)
        .anchor(egui::Align2::CENTER_CENTER, egui::Vec2::ZERO)
        .show(ctx, |ui| {
            ui.heading(format!("{APP_NAME} {}", env!("CARGO_PKG_VERSION")));
            ui.label(env!("CARGO_PKG_DESCRIPTION"));
            ui.add_space(6.0);
            ui.label("Every network runs natively in Rust on burn, on the GPU through wgpu, or on the CPU.");
            ui.label(format!("Licence: {}", env!("CARGO_PKG_LICENSE")));
        });
}
