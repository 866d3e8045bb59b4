//! The canvas: the selected photo fitted to the view.

use egui::{Pos2, Rect, RichText, Vec2};

use super::state::{AppState, PhotoStatus};
use super::textures::TextureCache;

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

pub fn canvas(ui: &mut egui::Ui, state: &AppState, textures: &mut TextureCache) -> Option<CanvasView> {
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

    let rect = fit(full_size, area);
    let response = ui.allocate_rect(area, egui::Sense::hover());
    egui::Image::new(&texture).paint_at(ui, rect);
    if state.preview_job.is_some() {
        egui::Spinner::new().paint_at(
            ui,
            Rect::from_center_size(rect.right_top() + Vec2::new(-16.0, 16.0), Vec2::splat(16.0)),
        );
    }
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, &entry.name));
    Some(CanvasView {
        rect,
        image_size: full_size,
    })
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
