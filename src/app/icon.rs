//! The window icon: `assets/icon.png` (a rounded square in the accent colour with a light head and
//! shoulders), compiled into the binary so an installed app needs no asset folder.

use egui::IconData;

/// The icon as shipped in `assets/`.
pub const ICON_PNG: &[u8] = include_bytes!("../../assets/icon.png");

/// The decoded icon; `None` (and a log line) if the compiled-in PNG cannot be read, in which case
/// the window simply has the system's default icon.
pub fn window_icon() -> Option<IconData> {
    match image::load_from_memory_with_format(ICON_PNG, image::ImageFormat::Png) {
        Ok(img) => {
            let rgba = img.to_rgba8();
            Some(IconData {
                width: rgba.width(),
                height: rgba.height(),
                rgba: rgba.into_raw(),
            })
        }
        Err(e) => {
            tracing::warn!("assets/icon.png (compiled in) cannot be decoded: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icon_is_opaque_in_the_middle_and_transparent_in_the_corners() {
        let icon = window_icon().expect("the shipped icon decodes");
        assert_eq!(icon.rgba.len(), (icon.width * icon.height * 4) as usize);
        assert!(icon.width >= 64 && icon.width == icon.height);
        let alpha = |x: u32, y: u32| icon.rgba[((y * icon.width + x) * 4 + 3) as usize];
        assert_eq!(alpha(0, 0), 0);
        assert_eq!(alpha(icon.width / 2, icon.height / 2), 255);
    }
}
