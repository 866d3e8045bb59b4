//! The before/after view of an edited photo: the original left of a divider, the edit right of it.
//! The divider is dragged on the canvas or set with the toolbar's slider. A drag that starts on the
//! divider (its line or its knob) moves it; the canvas pans only for drags that start elsewhere.

use egui::{Color32, Pos2, Rect, Stroke, TextureHandle, Vec2};

/// The toolbar slider's label, also used by tests.
pub const SLIDER_LABEL: &str = "Before / after";

/// Where the divider stands: the fraction of the photo's width, from the left, that shows the
/// original.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompareView {
    pub split: f32,
    /// The current drag started on the divider.
    pub dragging: bool,
}

impl Default for CompareView {
    fn default() -> Self {
        CompareView {
            split: 0.5,
            dragging: false,
        }
    }
}

/// Half the width of the divider's grab area, in points.
const GRAB: f32 = 8.0;
/// The knob's radius; the grab area is at least as wide as the knob.
const KNOB: f32 = 9.0;

/// Where a press takes the divider: its line over the photo (clipped to the view), as wide as the
/// knob drawn on it.
pub fn handle_zone(rect: Rect, clip: Rect, split: f32) -> Rect {
    let x = rect.left() + rect.width() * split.clamp(0.0, 1.0);
    let half = GRAB.max(KNOB + 1.0);
    Rect::from_x_y_ranges(
        x - half..=x + half,
        rect.top().max(clip.top())..=rect.bottom().min(clip.bottom()),
    )
}

/// Follows a drag of the canvas (`response`) over the photo drawn at `rect`: a drag that began on
/// the divider moves it. Returns whether the current drag is the divider's (the canvas must not
/// pan then).
pub fn drag(
    ui: &egui::Ui,
    view: &mut CompareView,
    rect: Rect,
    clip: Rect,
    response: &egui::Response,
) -> bool {
    if response.drag_started() {
        let origin = ui.input(|i| i.pointer.press_origin());
        view.dragging = origin.is_some_and(|p| handle_zone(rect, clip, view.split).contains(p));
    }
    if !response.dragged() {
        view.dragging = false;
        if response.hovered()
            && ui
                .input(|i| i.pointer.hover_pos())
                .is_some_and(|p| handle_zone(rect, clip, view.split).contains(p))
        {
            ui.ctx().set_cursor_icon(egui::CursorIcon::ResizeHorizontal);
        }
        return false;
    }
    if view.dragging
        && let Some(pointer) = response.interact_pointer_pos()
        && rect.width() > 0.0
    {
        view.split = ((pointer.x - rect.left()) / rect.width()).clamp(0.0, 1.0);
        ui.ctx().set_cursor_icon(egui::CursorIcon::ResizeHorizontal);
    }
    view.dragging
}

/// Draws `before` and `after` (both the whole photo) split at the divider inside `rect`; [`drag`]
/// moves the divider.
pub fn draw(
    ui: &egui::Ui,
    painter: &egui::Painter,
    rect: Rect,
    before: &TextureHandle,
    after: &TextureHandle,
    view: &CompareView,
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
    let hovered = ui
        .input(|i| i.pointer.hover_pos())
        .is_some_and(|p| handle_zone(rect, clip, split).contains(p));
    let strong = hovered || view.dragging;
    painter.line_segment(
        [Pos2::new(x, top), Pos2::new(x, bottom)],
        Stroke::new(if strong { 3.0 } else { 2.0 }, Color32::WHITE),
    );
    let knob = Pos2::new(x, (top + bottom) / 2.0);
    painter.circle(
        knob,
        KNOB,
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
