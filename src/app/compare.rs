//! The before/after view of an edited photo: the original left of a divider, the edit right of it.
//! The divider is dragged on the canvas or set with the toolbar's slider.

use egui::{Color32, Pos2, Rect, Stroke, TextureHandle, Vec2};

/// The toolbar slider's label, also used by tests.
pub const SLIDER_LABEL: &str = "Before / after";

/// Where the divider stands: the fraction of the photo's width, from the left, that shows the
/// original.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompareView {
    pub split: f32,
}

impl Default for CompareView {
    fn default() -> Self {
        CompareView { split: 0.5 }
    }
}

/// Half the width of the divider's grab area, in points.
const GRAB: f32 = 8.0;

/// Draws `before` and `after` (both the whole photo) split at the divider inside `rect`, and lets the
/// divider be dragged.
pub fn draw(
    ui: &mut egui::Ui,
    painter: &egui::Painter,
    rect: Rect,
    before: &TextureHandle,
    after: &TextureHandle,
    view: &mut CompareView,
) {
    let split = view.split.clamp(0.0, 1.0);
    let x = rect.left() + rect.width() * split;
    if split > 0.0 {
        painter.image(
            before.id(),
            Rect::from_min_max(rect.min, Pos2::new(x, rect.bottom())),
            Rect::from_min_max(Pos2::ZERO, Pos2::new(split, 1.0)),
            Color32::WHITE,
        );
    }
    if split < 1.0 {
        painter.image(
            after.id(),
            Rect::from_min_max(Pos2::new(x, rect.top()), rect.max),
            Rect::from_min_max(Pos2::new(split, 0.0), Pos2::new(1.0, 1.0)),
            Color32::WHITE,
        );
    }
    let clip = painter.clip_rect();
    let top = rect.top().max(clip.top());
    let bottom = rect.bottom().min(clip.bottom());
    let handle = Rect::from_x_y_ranges(x - GRAB..=x + GRAB, top..=bottom);
    let response = ui
        .interact(handle, ui.scope_id().with("compare-divider"), egui::Sense::drag())
        .on_hover_cursor(egui::CursorIcon::ResizeHorizontal);
    if response.dragged()
        && let Some(pointer) = response.interact_pointer_pos()
        && rect.width() > 0.0
    {
        view.split = ((pointer.x - rect.left()) / rect.width()).clamp(0.0, 1.0);
    }
    let strong = response.hovered() || response.dragged();
    painter.line_segment(
        [Pos2::new(x, top), Pos2::new(x, bottom)],
        Stroke::new(if strong { 3.0 } else { 2.0 }, Color32::WHITE),
    );
    let knob = Pos2::new(x, (top + bottom) / 2.0);
    painter.circle(
        knob,
        9.0,
        Color32::from_black_alpha(160),
        Stroke::new(2.0, Color32::WHITE),
    );
    let font = egui::FontId::proportional(12.0);
    for (text, anchor, at) in [
        ("Before", egui::Align2::RIGHT_TOP, Pos2::new(x - 8.0, top + 6.0)),
        ("After", egui::Align2::LEFT_TOP, Pos2::new(x + 8.0, top + 6.0)),
    ] {
        let galley = painter.layout_no_wrap(text.to_string(), font.clone(), Color32::WHITE);
        let tag = anchor.anchor_size(at, galley.size() + Vec2::new(8.0, 4.0));
        painter.rect_filled(tag, 3.0, Color32::from_black_alpha(150));
        painter.galley(tag.min + Vec2::new(4.0, 2.0), galley, Color32::WHITE);
    }
}
