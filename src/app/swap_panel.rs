//! The window's side of the face swap: the Swap section of the pipeline panel, the live mask
//! preview on the canvas, starting the swap job, and undo / redo of edits (Edit menu, Ctrl+Z,
//! Ctrl+Shift+Z), per photo.

use egui::{Color32, ColorImage, Pos2, RichText, TextureHandle, TextureOptions};

use super::canvas::CanvasView;
use super::state::{AppState, PhotoEntry};
use super::{Action, FacecastApp};
use crate::jobs::{JobId, PhotoId, SwapPhoto};
use crate::pipeline::detect::Face;
use crate::pipeline::swap::{ClassicBlend, IdentitySource, SwapEngine, SwapSettings, crop_mask};

/// What the Swap section holds between frames. The virtual model is the Virtual model panel's
/// current one (`AppState::cast`).
#[derive(Debug, Clone, Default)]
pub struct SwapUi {
    pub settings: SwapSettings,
    /// The swap job in flight, if any.
    pub job: Option<JobId>,
    /// Draw the paste mask over the faces on the canvas.
    pub show_mask: bool,
}

/// Button labels, also used by tests to click them.
pub const SWAP_CHOSEN: &str = "Swap chosen faces";
pub const SWAP_ALL: &str = "Swap all faces";
pub const UNDO: &str = "Undo";
pub const REDO: &str = "Redo";

/// The faces a swap would work on: the chosen ones, or (with `all`, or when none is chosen, for the
/// preview) every face passing the screening score.
pub fn swap_targets(entry: &PhotoEntry, all: bool, min_score: f32) -> Vec<(usize, Face)> {
    let Some(faces) = entry.faces() else {
        return Vec::new();
    };
    faces
        .faces
        .iter()
        .copied()
        .enumerate()
        .filter(|(i, f)| {
            if all {
                f.score >= min_score
            } else {
                entry.targets.contains(i)
            }
        })
        .collect()
}

/// The Swap section of the pipeline panel.
pub fn swap_section(ui: &mut egui::Ui, state: &AppState, actions: &mut Vec<Action>) {
    let swap = &state.swap;
    let mut settings = swap.settings.clone();

    ui.horizontal_wrapped(|ui| {
        ui.label("Virtual model:");
        match state.cast.current_model() {
            Some(model) => ui.label(RichText::new(&model.name).strong()),
            None => ui
                .label(RichText::new("none chosen").weak())
                .on_hover_text("Generate or import one in the Virtual model panel, or pick one there"),
        };
    });
    ui.add_space(4.0);

    ui.label("Engine");
    ui.horizontal(|ui| {
        ui.radio_value(&mut settings.engine, SwapEngine::FaceShifter, "FaceShifter")
            .on_hover_text("The virtual model's identity on the target's pose, expression and light");
        // On the engine's own line, so the section is no taller when its networks are missing.
        if let Some(names) = state.missing_networks.missing("swap")
            && ui
                .link(super::weights_links::link_label("swap"))
                .on_hover_text(format!(
                    "Not installed: {}. FaceShifter needs them; the classic engine does not.",
                    names.join(", ")
                ))
                .clicked()
        {
            actions.push(Action::ShowWeightsFor("swap"));
        }
    });
    ui.radio_value(&mut settings.engine, SwapEngine::Classic, "Classic (fallback)")
        .on_hover_text(
            "The virtual model's own face, warped onto the target and blended in. Needs no swap network; \
             used automatically when FaceShifter's weights are not installed",
        );
    if settings.engine == SwapEngine::Classic {
        ui.horizontal(|ui| {
            ui.label("Blend:");
            for blend in [ClassicBlend::Poisson, ClassicBlend::MultiBand] {
                ui.radio_value(&mut settings.classic_blend, blend, blend.label());
            }
        });
    }
    ui.add_space(4.0);

    let mut mask_changed = false;
    let mut outline = settings.mask.hull_dilate.is_some();
    if ui
        .checkbox(&mut outline, "Follow the face outline")
        .on_hover_text("Limit the mask to the eyes, nose and mouth area, grown by a margin")
        .changed()
    {
        settings.mask.hull_dilate = outline.then_some(0.2);
        mask_changed = true;
    }
    fn slider<'a>(value: &'a mut f32, max: f32, suffix: &str, text: &str) -> egui::Slider<'a> {
        egui::Slider::new(value, 0.0..=max)
            .suffix(suffix)
            .fixed_decimals(0)
            // Showing the value must not round the setting; only edits are kept in range.
            .clamping(egui::SliderClamping::Edits)
            .text(text)
    }
    ui.scope(|ui| {
        // Narrow sliders leave room for their labels in the side panel.
        ui.spacing_mut().slider_width = 96.0;
        let mut padding = settings.mask.padding * 100.0;
        if ui
            .add(slider(&mut padding, 25.0, " %", "Mask padding"))
            .on_hover_text("Margin of the mask inside the aligned face crop")
            .changed()
        {
            settings.mask.padding = padding / 100.0;
            mask_changed = true;
        }
        mask_changed |= ui
            .add(slider(&mut settings.mask.blur_sigma, 24.0, " px", "Mask feather"))
            .on_hover_text("How softly the new face fades into the photo")
            .changed();
        if let Some(margin) = settings.mask.hull_dilate.as_mut() {
            let mut percent = *margin * 100.0;
            if ui
                .add(slider(&mut percent, 40.0, " %", "Outline margin"))
                .on_hover_text("How far the mask reaches beyond the eyes, nose and mouth")
                .changed()
            {
                *margin = percent / 100.0;
                mask_changed = true;
            }
        }
    });
    ui.checkbox(&mut settings.color_match, "Match skin colour")
        .on_hover_text(
            "Move the new face's colour to the target's skin tone (neck and hands stay as they are)",
        );
    let mut show = swap.show_mask;
    if ui.checkbox(&mut show, "Show mask on the canvas").changed() {
        actions.push(Action::ShowSwapMask(show));
    }
    if mask_changed && !swap.show_mask {
        // Moving a mask slider shows what it does.
        actions.push(Action::ShowSwapMask(true));
    }
    if settings != swap.settings {
        actions.push(Action::SetSwapSettings(settings));
    }
    ui.add_space(6.0);

    let entry = state.selected_entry();
    let chosen = entry.map_or(0, |e| e.targets.len());
    let all = entry.map_or(0, |e| {
        swap_targets(e, true, state.detect_settings.min_score).len()
    });
    let running = swap
        .job
        .and_then(|job| state.activities.iter().find(|a| a.job == job));
    match (swap.job, running) {
        (Some(job), activity) => {
            ui.horizontal(|ui| {
                match activity.and_then(|a| a.fraction()) {
                    Some(f) => {
                        let text = activity.map_or(String::new(), |a| format!("face {}/{}", a.done, a.total));
                        ui.add(egui::ProgressBar::new(f).desired_width(120.0).text(text));
                    }
                    None => {
                        ui.spinner();
                        ui.label("Swapping…");
                    }
                }
                if ui.button("Cancel swap").clicked() {
                    actions.push(Action::Cancel(job));
                }
            });
        }
        (None, _) => {
            ui.horizontal_wrapped(|ui| {
                let why_chosen = if chosen == 0 {
                    "Click faces on the canvas to choose them"
                } else {
                    "Swap the faces drawn in green"
                };
                if ui
                    .add_enabled(chosen > 0, egui::Button::new(SWAP_CHOSEN))
                    .on_hover_text(why_chosen)
                    .on_disabled_hover_text(why_chosen)
                    .clicked()
                {
                    actions.push(Action::Swap { all_faces: false });
                }
                let why_all = format!(
                    "Swap every face scoring at least {:.2}",
                    state.detect_settings.min_score
                );
                if ui
                    .add_enabled(all > 0, egui::Button::new(SWAP_ALL))
                    .on_hover_text(&why_all)
                    .on_disabled_hover_text("No face found in this photo yet")
                    .clicked()
                {
                    actions.push(Action::Swap { all_faces: true });
                }
            });
        }
    }
    if let Some(version) = entry.and_then(|e| state.current_edit(e.id)) {
        ui.add_space(4.0);
        ui.label(RichText::new(&version.label).strong());
        for note in &version.notes {
            ui.label(note);
        }
    }
}

/// The Edit menu: undo and redo of the selected photo's edits.
pub fn edit_menu(ui: &mut egui::Ui, state: &AppState, actions: &mut Vec<Action>) {
    ui.menu_button("Edit", |ui| {
        let history = state.selected.and_then(|id| state.edits.get(&id));
        let undo = history.and_then(|h| h.undo_label());
        let redo = history.and_then(|h| h.redo_label());
        let undo_text = undo.map_or(UNDO.to_string(), |l| format!("{UNDO} {l}"));
        let redo_text = redo.map_or(REDO.to_string(), |l| format!("{REDO} {l}"));
        if ui
            .add_enabled(
                undo.is_some(),
                egui::Button::new(undo_text).shortcut_text("Ctrl+Z"),
            )
            .clicked()
        {
            actions.push(Action::Undo);
            ui.close();
        }
        if ui
            .add_enabled(
                redo.is_some(),
                egui::Button::new(redo_text).shortcut_text("Ctrl+Shift+Z"),
            )
            .clicked()
        {
            actions.push(Action::Redo);
            ui.close();
        }
    });
}

/// Ctrl+Z undoes, Ctrl+Shift+Z (or Ctrl+Y) redoes, unless a text field has the keyboard.
pub fn history_shortcuts(ctx: &egui::Context, actions: &mut Vec<Action>) {
    if ctx.egui_wants_keyboard_input() {
        return;
    }
    let shift = egui::Modifiers::COMMAND | egui::Modifiers::SHIFT;
    let (redo, undo) = ctx.input_mut(|i| {
        // The shifted shortcut first: Ctrl+Z also matches while Shift is held.
        let redo = i.consume_shortcut(&egui::KeyboardShortcut::new(shift, egui::Key::Z))
            || i.consume_shortcut(&egui::KeyboardShortcut::new(
                egui::Modifiers::COMMAND,
                egui::Key::Y,
            ));
        let undo = i.consume_shortcut(&egui::KeyboardShortcut::new(
            egui::Modifiers::COMMAND,
            egui::Key::Z,
        ));
        (redo, undo)
    });
    if redo {
        actions.push(Action::Redo);
    }
    if undo {
        actions.push(Action::Undo);
    }
}

impl FacecastApp {
    /// Queues the swap of the selected photo's chosen faces (or all of them).
    pub(super) fn start_swap(&mut self, all_faces: bool) {
        if self.state.swap.job.is_some() {
            self.state.toasts.info("A swap is already running.");
            return;
        }
        let Some(entry) = self.state.selected_entry() else {
            self.state.toasts.warning("Select a photo first.");
            return;
        };
        let faces = swap_targets(entry, all_faces, self.state.detect_settings.min_score);
        if faces.is_empty() {
            let text = if entry.faces().is_none() {
                format!("The faces of {} have not been found yet.", entry.name)
            } else if all_faces {
                format!("{} has no face to swap.", entry.name)
            } else {
                "Choose the faces to swap by clicking them on the canvas, or use \u{201c}Swap all faces\u{201d}."
                    .to_string()
            };
            self.state.toasts.warning(text);
            return;
        }
        let Some(model) = self.state.cast.current_model().cloned() else {
            self.state.toasts.warning(
                "Choose the virtual model first: generate or import one in the Virtual model panel, \
                 or pick one there with \u{201c}Use for swaps\u{201d}.",
            );
            return;
        };
        let Some(store) = self.store.clone() else {
            self.state
                .toasts
                .error("The swap needs the weights store, which is unavailable (no data directory).");
            return;
        };
        let (photo, path) = (entry.id, entry.path.clone());
        let job = SwapPhoto {
            store,
            photo,
            path,
            base: self.state.current_edit(photo).map(|v| v.image.clone()),
            faces,
            identity: IdentitySource::Model(Box::new(model)),
            settings: self.state.swap.settings.clone(),
        };
        self.state.swap.job = Some(self.worker.enqueue(job));
    }

    pub(super) fn undo(&mut self) {
        let Some(photo) = self.state.selected else { return };
        let undone = self
            .state
            .edits
            .get_mut(&photo)
            .and_then(|h| h.undo().map(str::to_string));
        if let Some(label) = undone {
            self.state.toasts.info(format!("Undone: {label}"));
        }
    }

    pub(super) fn redo(&mut self) {
        let Some(photo) = self.state.selected else { return };
        let redone = self
            .state
            .edits
            .get_mut(&photo)
            .and_then(|h| h.redo().map(str::to_string));
        if let Some(label) = redone {
            self.state.toasts.info(format!("Redone: {label}"));
        }
    }
}

/// The mask overlay's colour: a translucent blue that reads on skin and on white backgrounds.
const MASK_TINT: [u8; 3] = [40, 140, 255];
const MASK_ALPHA: f32 = 150.0;

/// Textures of the paste masks drawn over the canvas, made at crop resolution and mapped onto the
/// face with the crop's corners, so a 24-megapixel photo costs the same as a small one.
#[derive(Default)]
pub struct MaskPreview {
    cached: Vec<(String, TextureHandle)>,
}

impl MaskPreview {
    const KEEP: usize = 16;

    /// Draws the mask of each face of `faces` (photo coordinates) over the canvas.
    pub fn draw(
        &mut self,
        ctx: &egui::Context,
        painter: &egui::Painter,
        view: &CanvasView,
        photo: PhotoId,
        faces: &[(usize, Face)],
        settings: &SwapSettings,
    ) {
        for (index, face) in faces {
            let Ok((to_crop, plane)) = crop_mask(face, &settings.mask) else {
                continue;
            };
            let key = format!("{}:{index}:{:?}:{:?}", photo.0, face.landmarks, settings.mask);
            let texture = match self.cached.iter().find(|(k, _)| *k == key) {
                Some((_, t)) => t.clone(),
                None => {
                    let rgba: Vec<u8> = plane
                        .data
                        .iter()
                        .flat_map(|&m| {
                            let a = (m.clamp(0.0, 1.0) * MASK_ALPHA).round() as u8;
                            [MASK_TINT[0], MASK_TINT[1], MASK_TINT[2], a]
                        })
                        .collect();
                    let image = ColorImage::from_rgba_unmultiplied([plane.width, plane.height], &rgba);
                    let t = ctx.load_texture(format!("swap-mask-{key}"), image, TextureOptions::LINEAR);
                    self.cached.push((key, t.clone()));
                    if self.cached.len() > Self::KEEP {
                        drop(self.cached.remove(0));
                    }
                    t
                }
            };
            let back = to_crop.inverse();
            let side = plane.width as f32;
            let mut mesh = egui::Mesh::with_texture(texture.id());
            for (cx, cy) in [(0.0, 0.0), (side, 0.0), (side, side), (0.0, side)] {
                let [x, y] = back.apply([cx - 0.5, cy - 0.5]);
                mesh.vertices.push(egui::epaint::Vertex {
                    pos: view.to_screen(Pos2::new(x, y)),
                    uv: Pos2::new(cx / side, cy / side),
                    color: Color32::WHITE,
                });
            }
            mesh.add_triangle(0, 1, 2);
            mesh.add_triangle(0, 2, 3);
            painter.add(egui::Shape::mesh(mesh));
        }
    }
}
