//! Drag and drop: an overlay while files hover over the window, and the dropped paths as an action.

use egui::{Color32, Id, RichText};

use super::Action;

/// Shown over the whole window while files hover over it.
pub const DROP_HINT: &str = "Drop to add photos";

pub fn dropzone(ctx: &egui::Context, actions: &mut Vec<Action>) {
    let (hovering, dropped) = ctx.input(|i| {
        let dropped: Vec<_> = i
            .raw
            .dropped_files
            .iter()
            .map(|file| file.path().to_path_buf())
            .collect();
        (!i.raw.hovered_files.is_empty(), dropped)
    });
    if hovering {
        overlay(ctx);
    }
    if !dropped.is_empty() {
        actions.push(Action::AddPaths(dropped));
    }
}

fn overlay(ctx: &egui::Context) {
    let rect = ctx.content_rect();
    // An area rather than bare paint, so the hint is a real label (screen readers, UI tests).
    egui::Area::new(Id::unique("facecast-drop-overlay"))
        .order(egui::Order::Foreground)
        .fixed_pos(rect.min)
        .interactable(false)
        .show(ctx, |ui| {
            let accent = ui.visuals().selection.bg_fill;
            ui.painter()
                .rect_filled(rect, 0.0, Color32::from_black_alpha(170));
            ui.painter().rect_stroke(
                rect.shrink(12.0),
                12.0,
                egui::Stroke::new(3.0, accent),
                egui::StrokeKind::Inside,
            );
            ui.put(
                rect,
                egui::Label::new(RichText::new(DROP_HINT).size(28.0).color(Color32::WHITE)),
            );
        });
}
