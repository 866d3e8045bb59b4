//! GPU textures for the pixels held in the state, made lazily on the UI thread and dropped with their
//! photo. The state keeps plain RGBA images; only this cache knows about egui textures.

use std::collections::HashMap;
use std::sync::Arc;

use egui::{ColorImage, TextureHandle, TextureOptions};

use crate::jobs::{PhotoId, PhotoImage};

use super::state::{AppState, Preview};

#[derive(Default)]
pub struct TextureCache {
    thumbnails: HashMap<PhotoId, (Arc<PhotoImage>, TextureHandle)>,
    preview: Option<(PhotoId, Arc<PhotoImage>, TextureHandle)>,
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
