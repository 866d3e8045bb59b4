//! GPU textures for the pixels held in the state, made lazily on the UI thread and dropped with their
//! photo. The state keeps plain RGBA images; only this cache knows about egui textures.

use std::collections::HashMap;
use std::sync::Arc;

use egui::{ColorImage, TextureHandle, TextureOptions};

use crate::jobs::photos::PREVIEW_SIDE;
use crate::jobs::{PhotoId, PhotoImage};

use super::state::{AppState, Preview};

#[derive(Default)]
pub struct TextureCache {
    thumbnails: HashMap<PhotoId, (Arc<PhotoImage>, TextureHandle)>,
    preview: Option<(PhotoId, Arc<PhotoImage>, TextureHandle)>,
    /// The selected photo's current edit.
    edit: Option<(PhotoId, Arc<image::RgbImage>, TextureHandle)>,
}

impl TextureCache {
    /// Forgets textures whose photo left the library or whose pixels changed.
    pub fn sync(&mut self, state: &AppState) {
        self.thumbnails.retain(|id, (pixels, _)| {
            state
                .library
                .get(*id)
                .and_then(|e| e.thumbnail.as_ref())
                .is_some_and(|t| Arc::ptr_eq(t, pixels))
        });
        let keep_preview = match (&self.preview, &state.preview) {
            (Some((id, pixels, _)), Some(preview)) => {
                *id == preview.photo && Arc::ptr_eq(pixels, &preview.image)
            }
            _ => false,
        };
        if !keep_preview {
            self.preview = None;
        }
        let keep_edit = self.edit.as_ref().is_some_and(|(id, pixels, _)| {
            state.selected == Some(*id)
                && state
                    .current_edit(*id)
                    .is_some_and(|v| Arc::ptr_eq(&v.image, pixels))
        });
        if !keep_edit {
            self.edit = None;
        }
    }

    /// The texture of an edited version, at most [`PREVIEW_SIDE`] on its long side like the preview
    /// (edits are kept at full resolution, which may exceed the GPU's texture limit).
    pub fn edit(
        &mut self,
        ctx: &egui::Context,
        photo: PhotoId,
        image: &Arc<image::RgbImage>,
    ) -> TextureHandle {
        if let Some((id, pixels, handle)) = &self.edit
            && *id == photo
            && Arc::ptr_eq(pixels, image)
        {
            return handle.clone();
        }
        let small = crate::io::thumbnail(image, PREVIEW_SIDE);
        let color = ColorImage::from_rgb([small.width() as usize, small.height() as usize], small.as_raw());
        let handle = ctx.load_texture(format!("edit-{}", photo.0), color, TextureOptions::LINEAR);
        self.edit = Some((photo, Arc::clone(image), handle.clone()));
        handle
    }

    pub fn thumbnail(&mut self, ctx: &egui::Context, id: PhotoId, pixels: &Arc<PhotoImage>) -> TextureHandle {
        let (_, handle) = self.thumbnails.entry(id).or_insert_with(|| {
            let handle = ctx.load_texture(
                format!("thumbnail-{}", id.0),
                to_color_image(pixels),
                TextureOptions::LINEAR,
            );
            (Arc::clone(pixels), handle)
        });
        handle.clone()
    }

    pub fn preview(&mut self, ctx: &egui::Context, preview: &Preview) -> TextureHandle {
        if let Some((id, pixels, handle)) = &self.preview
            && *id == preview.photo
            && Arc::ptr_eq(pixels, &preview.image)
        {
            return handle.clone();
        }
        let handle = ctx.load_texture(
            format!("preview-{}", preview.photo.0),
            to_color_image(&preview.image),
            TextureOptions::LINEAR,
        );
        self.preview = Some((preview.photo, Arc::clone(&preview.image), handle.clone()));
        handle
    }
}

fn to_color_image(pixels: &PhotoImage) -> ColorImage {
    let size = [pixels.width() as usize, pixels.height() as usize];
    ColorImage::from_rgba_unmultiplied(size, pixels.as_raw())
}
