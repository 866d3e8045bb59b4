//! The library panel: every added photo with its thumbnail and status.

use egui::{Align2, Color32, FontId, Rect, Sense, Vec2};

use super::Action;
use super::dialogs::FileDialogs;
use super::state::{AppState, FaceBadge, LibraryFilter, PhotoEntry, PhotoStatus};
use super::textures::TextureCache;

/// Shown while the library is empty (the wording is part of the product spec).
pub const EMPTY_TEXT: &str = "Drop product photos here, or File → Open";

const ROW_HEIGHT: f32 = 56.0;
const THUMB_SIDE: f32 = 48.0;

pub fn library_panel(
    ui: &mut egui::Ui,
    state: &AppState,
    textures: &mut TextureCache,
    dialogs: &FileDialogs,
    scroll_to_selected: bool,
    actions: &mut Vec<Action>,
) {
    ui.add_space(4.0);
    ui.horizontal(|ui| {
        ui.heading("Library");
        let library = &state.library;
        if !library.is_empty() {
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                ui.label(summary(state))
                    .on_hover_text("Photos in the library: loaded, loading, unreadable");
            });
        }
    });
    ui.separator();

    if state.library.is_empty() {
        empty_state(ui, dialogs, actions);
        return;
    }

    super::classifier_ui::library_bar(ui, state, actions);
    ui.horizontal_wrapped(|ui| {
        // "Opinions differ" only means something once a face classifier is installed.
        let shown = LibraryFilter::ALL
            .into_iter()
            .filter(|f| *f != LibraryFilter::OpinionsDiffer || state.classifier.installed.is_some());
        for filter in shown {
            if ui
                .selectable_label(state.filter == filter, filter.label())
                .clicked()
            {
                actions.push(Action::SetFilter(filter));
            }
        }
    });
    ui.separator();

    let entries = state.visible_entries();
    if entries.is_empty() {
        ui.weak(format!("No photo matches \"{}\".", state.filter.label()));
        return;
    }
    let mut scroll = egui::ScrollArea::vertical().auto_shrink([false, false]);
    if scroll_to_selected
        && let Some(index) = state
            .selected
            .and_then(|id| entries.iter().position(|e| e.id == id))
    {
        let row = ROW_HEIGHT + ui.spacing().item_spacing.y;
        let view = ui.available_height();
        scroll = scroll.vertical_scroll_offset((index as f32 * row - view / 2.0 + row / 2.0).max(0.0));
    }
    // Only the visible rows are laid out, so a thousand photos cost no more than twenty.
    scroll.show_rows(ui, ROW_HEIGHT, entries.len(), |ui, range| {
        for entry in &entries[range] {
            let selected = state.selected == Some(entry.id);
            let response = row(ui, entry, selected, state.detect_settings.min_score, textures);
            if response.clicked() {
                actions.push(Action::Select(entry.id));
            }
            response.context_menu(|ui| {
                super::classifier_ui::mark_menu(ui, entry, actions);
                if ui.button("Remove from library").clicked() {
                    actions.push(Action::Remove(entry.id));
                }
            });
        }
    });
}

fn summary(state: &AppState) -> String {
    let library = &state.library;
    let failed = library.count(|s| matches!(s, PhotoStatus::Failed(_)));
    let loading = library.count(|s| matches!(s, PhotoStatus::Loading));
    let cancelled = library.count(|s| matches!(s, PhotoStatus::Cancelled));
    let mut text = format!("{} photos", library.len());
    if loading > 0 {
        text.push_str(&format!(", {loading} loading"));
    }
    if failed > 0 {
        text.push_str(&format!(", {failed} unreadable"));
    }
    if cancelled > 0 {
        text.push_str(&format!(", {cancelled} not loaded"));
    }
    text
}

fn empty_state(ui: &mut egui::Ui, dialogs: &FileDialogs, actions: &mut Vec<Action>) {
    ui.add_space(ui.available_height() * 0.3);
    ui.vertical_centered(|ui| {
        ui.label(EMPTY_TEXT);
        ui.add_space(12.0);
        super::dialogs::open_buttons(ui, dialogs, actions);
    });
}

fn row(
    ui: &mut egui::Ui,
    entry: &PhotoEntry,
    selected: bool,
    min_score: f32,
    textures: &mut TextureCache,
) -> egui::Response {
    let width = ui.available_width();
    let (rect, response) = ui.allocate_exact_size(Vec2::new(width, ROW_HEIGHT), Sense::click());
    response.widget_info(|| egui::WidgetInfo::selected(egui::Role::ListItem, true, selected, &entry.name));
    if !ui.is_rect_visible(rect) {
        return response;
    }
    let visuals = ui.visuals().clone();
    if selected {
        ui.painter().rect_filled(rect, 4.0, visuals.selection.bg_fill);
    } else if response.hovered() {
        ui.painter()
            .rect_filled(rect, 4.0, visuals.widgets.hovered.weak_bg_fill);
    }

    let thumb_slot = Rect::from_center_size(
        rect.left_center() + Vec2::new(6.0 + THUMB_SIDE / 2.0, 0.0),
        Vec2::splat(THUMB_SIDE),
    );
    match &entry.thumbnail {
        Some(pixels) => {
            let texture = textures.thumbnail(ui.ctx(), entry.id, pixels);
            let size = texture.size_vec2();
            let scale = (THUMB_SIDE / size.x.max(size.y)).min(1.0);
            let image_rect = Rect::from_center_size(thumb_slot.center(), size * scale);
            egui::Image::new(&texture).paint_at(ui, image_rect);
        }
        None => {
            ui.painter()
                .rect_filled(thumb_slot, 4.0, visuals.extreme_bg_color);
        }
    }

    let text_left = thumb_slot.right() + 10.0;
    let text_color = if selected {
        visuals.selection.stroke.color
    } else {
        visuals.text_color()
    };
    let name_rect = Rect::from_min_max(
        egui::pos2(text_left, rect.top()),
        rect.right_bottom() - Vec2::new(6.0, 0.0),
    );
    let name = ui.painter().layout(
        entry.name.clone(),
        FontId::proportional(14.0),
        text_color,
        name_rect.width().max(10.0),
    );
    let name_pos = egui::pos2(text_left, rect.center().y - 16.0);
    ui.painter()
        .with_clip_rect(name_rect)
        .galley(name_pos, name, text_color);

    let badge_pos = egui::pos2(text_left, rect.center().y + 10.0);
    let (mut badge, color) = badge(entry, min_score, &visuals);
    badge.push_str(&super::classifier_ui::row_suffix(entry));
    ui.painter().text(
        badge_pos,
        Align2::LEFT_CENTER,
        badge,
        FontId::proportional(12.0),
        color,
    );

    if let Some(FaceBadge::Error(reason)) = entry.badge(min_score) {
        return response.on_hover_text(reason);
    }
    match &entry.status {
        PhotoStatus::Failed(reason) => response.on_hover_text(reason.as_str()),
        PhotoStatus::Cancelled => {
            response.on_hover_text("Loading was cancelled; add the photo again to load it")
        }
        _ => response.on_hover_text(entry.path.display().to_string()),
    }
}

/// The row's second line: the face verdict once known (with how many faces are chosen), else the
/// loading state.
pub fn badge(entry: &PhotoEntry, min_score: f32, visuals: &egui::Visuals) -> (String, Color32) {
    match entry.badge(min_score) {
        Some(FaceBadge::Error(_)) => return ("error".to_string(), visuals.error_fg_color),
        Some(FaceBadge::NoFace) => return ("no face".to_string(), visuals.warn_fg_color),
        Some(verdict @ FaceBadge::Faces(_)) => {
            let total = entry.faces().map_or(0, |f| f.faces.len());
            let mut text = verdict.text();
            if !entry.targets.is_empty() {
                text.push_str(&format!(" · {} of {total} selected", entry.targets.len()));
            }
            return (text, visuals.hyperlink_color);
        }
        None => {}
    }
    if entry.detection == super::state::Detection::Pending {
        return ("detecting faces…".to_string(), visuals.weak_text_color());
    }
    match &entry.status {
        PhotoStatus::Loading => ("loading…".to_string(), visuals.weak_text_color()),
        PhotoStatus::Loaded { width, height } => (format!("{width} × {height}"), visuals.weak_text_color()),
        PhotoStatus::Failed(_) => ("unreadable".to_string(), visuals.error_fg_color),
        PhotoStatus::Cancelled => ("not loaded".to_string(), visuals.warn_fg_color),
    }
}
