//! Fonts: egui's bundled proportional font (Ubuntu Light) has no arrows, and the product's own
//! wording uses them ("File → Open"). The bundled monospace font (Hack) has arrows and geometric shapes,
//! so it joins the proportional family as a fallback; no font files are added to the project.

use egui::{FontDefinitions, FontFamily};

pub fn install(ctx: &egui::Context) {
    let mut fonts = FontDefinitions::default();
    let monospace = fonts
        .families
        .get(&FontFamily::Monospace)
        .cloned()
        .unwrap_or_default();
    let proportional = fonts.families.entry(FontFamily::Proportional).or_default();
    for name in monospace {
        if !proportional.contains(&name) {
            proportional.push(name);
        }
    }
    ctx.set_fonts(fonts);
}
