//! Short-lived messages stacked at the bottom right: warnings and errors the operator should see but
//! that must not block the work (a file that could not be read, a job that failed).
//!
//! Notes and warnings go away by themselves after a few seconds; errors stay until clicked, since
//! they usually name something to fix. Toasts sit above the main window's panels but under every
//! window (Weights, Cast, …), so they never cover what the operator opened.

use egui::{Align2, Id, RichText, Vec2};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToastLevel {
    Info,
    Warning,
    Error,
}

impl ToastLevel {
    /// How long a toast stays once drawn; `None`: until dismissed.
    pub fn lifetime_s(self) -> Option<f64> {
        match self {
            ToastLevel::Info => Some(4.0),
            ToastLevel::Warning => Some(6.0),
            ToastLevel::Error => None,
        }
    }
}

/// A button on a toast that lets the operator fix what it reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToastAction {
    /// Install a model of the weights store (by id).
    InstallModel(String),
    /// Bring back a deleted virtual model (by id).
    UndeleteVirtualModel(String),
}

impl ToastAction {
    fn label(&self) -> &'static str {
        match self {
            ToastAction::InstallModel(_) => "Install",
            ToastAction::UndeleteVirtualModel(_) => "Undo",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Toast {
    pub id: u64,
    pub level: ToastLevel,
    pub text: String,
    pub action: Option<ToastAction>,
    /// When it was first drawn (egui time); the lifetime counts from there, so a toast raised while the
    /// window was hidden is still seen.
    shown_at: Option<f64>,
    /// How many times the same message came back to back while shown.
    pub repeats: u32,
}

/// The hover text of every toast.
pub const TOAST_DISMISS_HINT: &str = "Click to dismiss";

/// At most this many toasts are kept; older ones make room for new ones.
const MAX_TOASTS: usize = 6;

#[derive(Debug, Default)]
pub struct Toasts {
    items: Vec<Toast>,
    next_id: u64,
}

impl Toasts {
    pub fn info(&mut self, text: impl Into<String>) {
        self.push(ToastLevel::Info, text.into());
    }

    pub fn warning(&mut self, text: impl Into<String>) {
        let text = text.into();
        tracing::warn!("{text}");
        self.push(ToastLevel::Warning, text);
    }

    pub fn error(&mut self, text: impl Into<String>) {
        let text = text.into();
        tracing::error!("{text}");
        self.push(ToastLevel::Error, text);
    }

    /// A warning with a button; the button's action is returned by [`Toasts::show`] when clicked.
    pub fn warning_with(&mut self, text: impl Into<String>, action: ToastAction) {
        let text = text.into();
        tracing::warn!("{text}");
        self.push(ToastLevel::Warning, text);
        if let Some(last) = self.items.last_mut() {
            last.action = Some(action);
        }
    }

    /// A note with a button (e.g. Undo); the button's action is returned by [`Toasts::show`].
    pub fn info_with(&mut self, text: impl Into<String>, action: ToastAction) {
        self.push(ToastLevel::Info, text.into());
        if let Some(last) = self.items.last_mut() {
            last.action = Some(action);
        }
    }

    pub fn items(&self) -> &[Toast] {
        &self.items
    }

    fn push(&mut self, level: ToastLevel, text: String) {
        // A failure that repeats (the same message back to back) is counted on its toast instead of
        // stacking copies that push everything else out. Its clock is not restarted: a message that
        // keeps coming back must not keep its toast on screen for ever.
        if let Some(last) = self.items.last_mut()
            && last.level == level
            && last.text == text
        {
            last.repeats += 1;
            return;
        }
        self.next_id += 1;
        self.items.push(Toast {
            id: self.next_id,
            level,
            text,
            action: None,
            shown_at: None,
            repeats: 0,
        });
        if self.items.len() > MAX_TOASTS {
            self.items.remove(0);
        }
    }

    /// Draws the toasts and drops the expired ones. Clicking a toast dismisses it; clicking its button
    /// dismisses it and returns the button's action.
    pub fn show(&mut self, ctx: &egui::Context) -> Vec<ToastAction> {
        let mut clicked = Vec::new();
        let now = ctx.input(|i| i.time);
        self.items
            .retain(|toast| match (toast.shown_at, toast.level.lifetime_s()) {
                (Some(at), Some(life)) => now - at < life,
                _ => true,
            });
        if self.items.is_empty() {
            return clicked;
        }
        let mut dismissed = None;
        let mut next_expiry = f64::INFINITY;
        egui::Area::new(Id::unique("facecast-toasts"))
            .anchor(Align2::RIGHT_BOTTOM, Vec2::new(-12.0, -64.0))
            // Above the panels (the background layer, registered first) and under every window.
            .order(egui::Order::Background)
            .interactable(true)
            .show(ctx, |ui| {
                ui.set_max_width(360.0);
                for toast in self.items.iter_mut().rev() {
                    let at = *toast.shown_at.get_or_insert(now);
                    if let Some(life) = toast.level.lifetime_s() {
                        next_expiry = next_expiry.min(at + life - now);
                    }
                    let (title, color) = match toast.level {
                        ToastLevel::Info => ("Note", ui.visuals().hyperlink_color),
                        ToastLevel::Warning => ("Warning", ui.visuals().warn_fg_color),
                        ToastLevel::Error => ("Error", ui.visuals().error_fg_color),
                    };
                    let frame = egui::Frame::popup(ui.style()).stroke(egui::Stroke::new(1.0, color));
                    let response = frame
                        .show(ui, |ui| {
                            ui.horizontal_wrapped(|ui| {
                                ui.label(RichText::new(title).color(color).strong());
                                ui.label(&toast.text);
                                if toast.repeats > 0 {
                                    ui.label(RichText::new(format!("(×{})", toast.repeats + 1)).weak());
                                }
                                if let Some(action) = &toast.action
                                    && ui.button(action.label()).clicked()
                                {
                                    clicked.push(action.clone());
                                    dismissed = Some(toast.id);
                                }
                            });
                        })
                        .response
                        .interact(egui::Sense::click())
                        .on_hover_text(TOAST_DISMISS_HINT);
                    if response.clicked() {
                        dismissed = Some(toast.id);
                    }
                    ui.add_space(4.0);
                }
            });
        if let Some(id) = dismissed {
            self.items.retain(|toast| toast.id != id);
        }
        if next_expiry.is_finite() {
            ctx.request_repaint_after(std::time::Duration::from_secs_f64(next_expiry.max(0.05)));
        }
        clicked
    }
}
