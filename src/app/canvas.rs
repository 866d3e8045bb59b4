//! The canvas: the selected photo, zoomable and pannable, with its detected faces drawn over it.
//! Clicking a face chooses it as a swap target (or un-chooses it). An edited photo is shown split
//! before/after, with the edit's notes (identity similarity per face after a swap).

use egui::{Color32, Pos2, Rect, RichText, Stroke, Vec2};

use super::Action;
use super::compare::{self, CompareView};
use super::state::{AppState, PhotoEntry, PhotoStatus};
use super::swap_panel::{MaskPreview, swap_targets};
use super::textures::TextureCache;
use crate::pipeline::detect::Face;

/// How the photo is framed: fitted to the view, or at a zoom with a pan offset.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CanvasNav {
    /// Screen points per photo pixel; None = fit the view.
    pub zoom: Option<f32>,
    /// Shift of the photo's centre from the view's centre, in screen points.
    pub offset: Vec2,
}

impl CanvasNav {
    const MIN_ZOOM: f32 = 0.02;
    const MAX_ZOOM: f32 = 16.0;

    pub fn fit() -> CanvasNav {
        CanvasNav::default()
    }

    /// Where a photo of `size` lands in `area`.
    pub fn place(&self, size: Vec2, area: Rect) -> Rect {
        match self.zoom {
            None => fit(size, area),
            Some(zoom) => Rect::from_center_size(area.center() + self.offset, size * zoom),
        }
    }

    /// Zooms by `factor` keeping the photo point under `anchor` (screen) where it is.
    pub fn zoom_by(&mut self, factor: f32, anchor: Pos2, size: Vec2, area: Rect) {
        let rect = self.place(size, area);
        let current = rect.width() / size.x.max(1.0);
        let zoom = (current * factor).clamp(Self::MIN_ZOOM, Self::MAX_ZOOM);
        let real = zoom / current;
        // The anchor's offset from the photo's centre scales with the zoom.
        let centre = anchor + (rect.center() - anchor) * real;
        self.zoom = Some(zoom);
        self.offset = centre - area.center();
    }
}

/// Shown on the canvas while nothing is selected.
pub const NO_PHOTO_TEXT: &str = "No photo selected";

/// Where the photo was drawn, and how photo pixels map to screen points. Overlays (face boxes,
/// landmarks) are drawn in photo coordinates through [`CanvasView::to_screen`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CanvasView {
    /// The photo's rectangle on screen.
    pub rect: Rect,
    /// The photo's full size in pixels (not the preview's).
    pub image_size: Vec2,
}

impl CanvasView {
    /// Screen points per photo pixel.
    pub fn scale(&self) -> f32 {
        self.rect.width() / self.image_size.x.max(1.0)
    }

    pub fn to_screen(&self, photo: Pos2) -> Pos2 {
        self.rect.min + photo.to_vec2() * self.scale()
    }

    pub fn to_photo(&self, screen: Pos2) -> Pos2 {
        ((screen - self.rect.min) / self.scale()).to_pos2()
    }
}

/// The largest rectangle of `size`'s aspect that fits in `area`, centred.
pub fn fit(size: Vec2, area: Rect) -> Rect {
    if size.x <= 0.0 || size.y <= 0.0 {
        return Rect::from_center_size(area.center(), Vec2::ZERO);
    }
    let scale = (area.width() / size.x).min(area.height() / size.y);
    Rect::from_center_size(area.center(), size * scale)
}

/// What the canvas draws over the photo, held by the window between frames.
pub struct Overlays<'a> {
    pub compare: &'a mut CompareView,
    pub masks: &'a mut MaskPreview,
}

pub fn canvas(
    ui: &mut egui::Ui,
    state: &AppState,
    textures: &mut TextureCache,
    nav: &mut CanvasNav,
    overlays: Overlays<'_>,
    actions: &mut Vec<Action>,
) -> Option<CanvasView> {
    if let Some(entry) = state.selected_entry() {
        toolbar(ui, state, entry, nav, overlays.compare, actions);
    }
    let area = ui.available_rect_before_wrap().shrink(8.0);
    let Some(entry) = state.selected_entry() else {
        hint(ui, area, state);
        return None;
    };

    let texture = match (&state.preview, &entry.thumbnail) {
        (Some(preview), _) if preview.photo == entry.id => Some(textures.preview(ui.ctx(), preview)),
        // The thumbnail stands in, blurry, until the preview arrives.
        (_, Some(thumbnail)) => Some(textures.thumbnail(ui.ctx(), entry.id, thumbnail)),
        _ => None,
    };
    let full_size = match &entry.status {
        PhotoStatus::Loaded { width, height } => Some(Vec2::new(*width as f32, *height as f32)),
        _ => state
            .preview
            .as_ref()
            .filter(|p| p.photo == entry.id)
            .map(|p| Vec2::new(p.width as f32, p.height as f32)),
    };

    match &entry.status {
        PhotoStatus::Failed(reason) => {
            centered_message(ui, area, &format!("Cannot show {}", entry.name), Some(reason));
            return None;
        }
        PhotoStatus::Cancelled => {
            let detail = "Loading was cancelled; add the photo again to load it.";
            centered_message(ui, area, &format!("{} is not loaded", entry.name), Some(detail));
            return None;
        }
        PhotoStatus::Loading | PhotoStatus::Loaded { .. } => {}
    }
    let (Some(texture), Some(full_size)) = (texture, full_size) else {
        centered_message(ui, area, &format!("Loading {}…", entry.name), None);
        return None;
    };

    let response = ui.allocate_rect(area, egui::Sense::click_and_drag());
    let edit = state.current_edit(entry.id);
    // The divider is hit where it was drawn, before this frame's pan or zoom moves the photo.
    let on_divider =
        edit.is_some() && compare::drag(ui, overlays.compare, nav.place(full_size, area), area, &response);
    navigate(ui, &response, nav, full_size, area, !on_divider);
    let rect = nav.place(full_size, area);
    let painter = ui.painter().with_clip_rect(area);
    match edit {
        Some(version) => {
            let after = textures.edit(ui.ctx(), entry.id, &version.image);
            compare::draw(ui, &painter, rect, &texture, &after, overlays.compare);
        }
        None => {
            painter.image(
                texture.id(),
                rect,
                Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0)),
                Color32::WHITE,
            );
        }
    }
    let view = CanvasView {
        rect,
        image_size: full_size,
    };
    if state.swap.show_mask {
        let min_score = state.detect_settings.min_score;
        let mut faces = swap_targets(entry, false, min_score);
        if faces.is_empty() {
            faces = swap_targets(entry, true, min_score);
        }
        overlays
            .masks
            .draw(ui.ctx(), &painter, &view, entry.id, &faces, &state.swap.settings);
    }
    if let Some(faces) = entry.faces() {
        for (index, face) in faces.faces.iter().enumerate() {
            draw_face(&painter, &view, face, entry.targets.contains(&index));
        }
        if response.clicked()
            && let Some(pointer) = response.interact_pointer_pos()
            && let Some(index) = face_at(&faces.faces, view.to_photo(pointer))
        {
            actions.push(Action::ToggleFace(entry.id, index));
        }
    }
    if let Some(version) = edit {
        edit_notes(ui, area, version);
    }
    if state.preview_job.is_some() {
        egui::Spinner::new().paint_at(
            ui,
            Rect::from_center_size(rect.right_top() + Vec2::new(-16.0, 16.0), Vec2::splat(16.0)),
        );
    }
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, &entry.name));
    Some(view)
}

/// Wheel or pinch zooms about the pointer, dragging pans (when `pan`), +/−/0 zoom from the keyboard.
fn navigate(
    ui: &egui::Ui,
    response: &egui::Response,
    nav: &mut CanvasNav,
    size: Vec2,
    area: Rect,
    pan: bool,
) {
    if response.hovered() {
        let (zoom, scroll, pointer) =
            ui.input(|i| (i.zoom_delta(), i.smooth_scroll_delta.y, i.pointer.hover_pos()));
        let factor = if zoom != 1.0 { zoom } else { (scroll / 200.0).exp() };
        if factor != 1.0 {
            nav.zoom_by(factor, pointer.unwrap_or(area.center()), size, area);
        }
    }
    if pan && response.dragged() {
        if nav.zoom.is_none() {
            // Panning a fitted photo starts from where it is drawn.
            nav.zoom_by(1.0, area.center(), size, area);
        }
        nav.offset += response.drag_delta();
    }
    if !ui.ctx().egui_wants_keyboard_input() {
        let (plus, minus, actual) = ui.input(|i| {
            (
                i.key_pressed(egui::Key::Plus) || i.key_pressed(egui::Key::Equals),
                i.key_pressed(egui::Key::Minus),
                i.key_pressed(egui::Key::Num0),
            )
        });
        if plus {
            nav.zoom_by(1.25, area.center(), size, area);
        }
        if minus {
            nav.zoom_by(0.8, area.center(), size, area);
        }
        if actual {
            *nav = CanvasNav::fit();
        }
    }
}

/// The current edit's label and notes in the canvas's lower left corner.
fn edit_notes(ui: &mut egui::Ui, area: Rect, version: &super::history::Version) {
    let width = (area.width() - 16.0).clamp(120.0, 360.0);
    let at = Rect::from_min_size(area.left_bottom() + Vec2::new(8.0, -8.0), Vec2::new(width, 0.0));
    egui::Area::new(ui.scope_id().with("edit-notes"))
        .order(egui::Order::Foreground)
        .pivot(egui::Align2::LEFT_BOTTOM)
        .fixed_pos(at.min)
        .interactable(false)
        .show(ui.ctx(), |ui| {
            egui::Frame::popup(ui.style()).show(ui, |ui| {
                ui.set_max_width(width);
                ui.label(RichText::new(&version.label).strong());
                for note in &version.notes {
                    ui.label(note);
                }
            });
        });
}

/// Zoom buttons, the before/after slider of an edited photo, the face selection summary and
/// "Select all faces ≥ score".
fn toolbar(
    ui: &mut egui::Ui,
    state: &AppState,
    entry: &PhotoEntry,
    nav: &mut CanvasNav,
    compare: &mut CompareView,
    actions: &mut Vec<Action>,
) {
    ui.horizontal(|ui| {
        let size = match entry.status {
            PhotoStatus::Loaded { width, height } => Vec2::new(width as f32, height as f32),
            _ => Vec2::ZERO,
        };
        let area = ui.ctx().content_rect();
        let center = nav.place(size, area).center();
        if ui.button("−").on_hover_text("Zoom out (−)").clicked() {
            nav.zoom_by(0.8, center, size, area);
        }
        if ui.button("+").on_hover_text("Zoom in (+)").clicked() {
            nav.zoom_by(1.25, center, size, area);
        }
        if ui
            .button("100%")
            .on_hover_text("One photo pixel per screen pixel")
            .clicked()
        {
            let pixels_per_point = ui.ctx().pixels_per_point();
            nav.zoom = Some(1.0 / pixels_per_point);
            nav.offset = Vec2::ZERO;
        }
        if ui
            .button("Fit")
            .on_hover_text("Fit the photo to the view (0)")
            .clicked()
        {
            *nav = CanvasNav::fit();
        }
        ui.separator();
        if state.current_edit(entry.id).is_some() {
            ui.add(
                egui::Slider::new(&mut compare.split, 0.0..=1.0)
                    .show_value(false)
                    .text(compare::SLIDER_LABEL),
            )
            .on_hover_text("Left of the divider: the photo as loaded; right: the edit");
            ui.separator();
        }
        match entry.faces() {
            Some(faces) if !faces.faces.is_empty() => {
                ui.label(format!(
                    "{} of {} faces chosen",
                    entry.targets.len(),
                    faces.faces.len()
                ));
                let mut score = state.select_score;
                if ui
                    .button("Select all faces ≥")
                    .on_hover_text("Choose every face scoring at least this as a swap target")
                    .clicked()
                {
                    actions.push(Action::SelectFacesFrom(entry.id, score));
                }
                let drag = egui::DragValue::new(&mut score)
                    .range(0.0..=1.0)
                    .speed(0.01)
                    .fixed_decimals(2);
                if ui.add(drag).changed() {
                    actions.push(Action::SetSelectScore(score));
                }
            }
            Some(_) => {
                ui.label("No face found");
            }
            None => {
                ui.weak("Faces not detected yet");
            }
        }
    });
}

/// The face under a photo point; the smallest box wins where boxes overlap.
pub fn face_at(faces: &[Face], point: Pos2) -> Option<usize> {
    faces
        .iter()
        .enumerate()
        .filter(|(_, f)| {
            let [x1, y1, x2, y2] = f.bbox;
            (x1..=x2).contains(&point.x) && (y1..=y2).contains(&point.y)
        })
        .min_by(|(_, a), (_, b)| area(a).total_cmp(&area(b)))
        .map(|(i, _)| i)
}

fn area(face: &Face) -> f32 {
    (face.bbox[2] - face.bbox[0]) * (face.bbox[3] - face.bbox[1])
}

/// Chosen faces are drawn thick and green, the others thin and amber, each with its score.
fn draw_face(painter: &egui::Painter, view: &CanvasView, face: &Face, chosen: bool) {
    let (color, width) = if chosen {
        (Color32::from_rgb(60, 200, 90), 3.0)
    } else {
        (Color32::from_rgb(255, 190, 40), 1.5)
    };
    let [x1, y1, x2, y2] = face.bbox;
    let rect = Rect::from_min_max(
        view.to_screen(Pos2::new(x1, y1)),
        view.to_screen(Pos2::new(x2, y2)),
    );
    painter.rect_stroke(rect, 2.0, Stroke::new(width, color), egui::StrokeKind::Middle);
    for [x, y] in face.landmarks {
        painter.circle_filled(view.to_screen(Pos2::new(x, y)), 2.5, color);
    }
    let label = if chosen {
        format!("{:.2} target", face.score)
    } else {
        format!("{:.2}", face.score)
    };
    let galley = painter.layout_no_wrap(label, egui::FontId::proportional(13.0), Color32::BLACK);
    let tag = Rect::from_min_size(
        rect.left_top() - Vec2::new(0.0, galley.size().y + 4.0),
        galley.size() + Vec2::new(6.0, 4.0),
    );
    painter.rect_filled(tag, 2.0, color);
    painter.galley(tag.min + Vec2::new(3.0, 2.0), galley, Color32::BLACK);
}

fn hint(ui: &mut egui::Ui, area: Rect, state: &AppState) {
    let detail = if state.library.is_empty() {
        "Add product photos: drop files or folders anywhere in the window, or use File → Open."
    } else {
        "Select a photo in the library (↑ ↓ move through it)."
    };
    centered_message(ui, area, NO_PHOTO_TEXT, Some(detail));
}

fn centered_message(ui: &mut egui::Ui, area: Rect, title: &str, detail: Option<&str>) {
    ui.scope_builder(egui::UiBuilder::new().max_rect(area), |ui| {
        ui.add_space(area.height() * 0.4);
        ui.vertical_centered(|ui| {
            ui.label(RichText::new(title).size(20.0).weak());
            if let Some(detail) = detail {
                ui.add_space(6.0);
                ui.label(RichText::new(detail).weak());
            }
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_keeps_the_aspect_and_centres() {
        let area = Rect::from_min_size(Pos2::new(10.0, 20.0), Vec2::new(400.0, 200.0));
        let rect = fit(Vec2::new(3000.0, 3000.0), area);
        assert_eq!(rect.size(), Vec2::new(200.0, 200.0));
        assert_eq!(rect.center(), area.center());
        let view = CanvasView {
            rect,
            image_size: Vec2::new(3000.0, 3000.0),
        };
        let corner = view.to_screen(Pos2::new(3000.0, 3000.0));
        assert!((corner - rect.max).length() < 1e-3);
        let back = view.to_photo(view.to_screen(Pos2::new(1234.0, 567.0)));
        assert!((back - Pos2::new(1234.0, 567.0)).length() < 1e-2);
    }
}
