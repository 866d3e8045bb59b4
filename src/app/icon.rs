//! The window icon, drawn in code so the project ships no image assets for it: a rounded square in
//! the accent colour with a light face silhouette (head and shoulders).

use egui::IconData;

const SIDE: u32 = 64;

pub fn window_icon() -> IconData {
    let mut rgba = Vec::with_capacity((SIDE * SIDE * 4) as usize);
    let s = SIDE as f32;
    for y in 0..SIDE {
        for x in 0..SIDE {
            let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
            let background = coverage(rounded_square_distance(px, py, s, s * 0.2));
            let head = coverage(circle_distance(px, py, s * 0.5, s * 0.4, s * 0.17));
            // Shoulders: the top of a wide ellipse cut off by the bottom edge.
            let shoulders = coverage(ellipse_distance(px, py, s * 0.5, s * 0.95, s * 0.32, s * 0.26));
            let face = head.max(shoulders) * background;
            let accent = [38.0, 110.0, 190.0];
            let light = [240.0, 244.0, 250.0];
            let mix = |i: usize| (accent[i] * (1.0 - face) + light[i] * face) as u8;
            rgba.extend_from_slice(&[mix(0), mix(1), mix(2), (background * 255.0) as u8]);
        }
    }
    IconData {
        rgba,
        width: SIDE,
        height: SIDE,
    }
}

/// Anti-aliased coverage from a signed distance (negative inside).
fn coverage(distance: f32) -> f32 {
    (0.5 - distance).clamp(0.0, 1.0)
}

fn circle_distance(x: f32, y: f32, cx: f32, cy: f32, r: f32) -> f32 {
    ((x - cx).powi(2) + (y - cy).powi(2)).sqrt() - r
}

fn ellipse_distance(x: f32, y: f32, cx: f32, cy: f32, rx: f32, ry: f32) -> f32 {
    // Scaled-circle approximation; exact enough for a 64-pixel icon.
    let k = (((x - cx) / rx).powi(2) + ((y - cy) / ry).powi(2)).sqrt();
    (k - 1.0) * rx.min(ry)
}

fn rounded_square_distance(x: f32, y: f32, side: f32, radius: f32) -> f32 {
    let half = side / 2.0 - 1.0;
    let qx = (x - side / 2.0).abs() - (half - radius);
    let qy = (y - side / 2.0).abs() - (half - radius);
    let outside = (qx.max(0.0).powi(2) + qy.max(0.0).powi(2)).sqrt();
    outside + qx.max(qy).min(0.0) - radius
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icon_is_opaque_in_the_middle_and_transparent_in_the_corners() {
        let icon = window_icon();
        assert_eq!(icon.rgba.len(), (icon.width * icon.height * 4) as usize);
        let alpha = |x: u32, y: u32| icon.rgba[((y * icon.width + x) * 4 + 3) as usize];
        assert_eq!(alpha(0, 0), 0);
        assert_eq!(alpha(32, 32), 255);
    }
}
