//! Links from the main window's feature sections to the Weights window: a section whose feature
//! needs a network that is not installed names it, and its link opens the Weights window at that
//! feature's section, where the licences are accepted and *Install all for this feature* is.

use std::collections::HashMap;

use egui::RichText;

use super::Action;
use crate::weights::features;

/// What each feature lacks, as the Weights window last checked: by `--for` key, the names of the
/// needed networks that are not usable. A feature not listed is still being checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MissingNetworks {
    pub by_feature: HashMap<&'static str, Vec<String>>,
}

impl MissingNetworks {
    /// The networks `key`'s feature lacks; `None` when it has them all or they are being checked.
    pub fn missing(&self, key: &str) -> Option<&[String]> {
        self.by_feature
            .get(key)
            .map(Vec::as_slice)
            .filter(|names| !names.is_empty())
    }
}

/// The link's label for a feature (by `--for` key); tests click it by this label.
pub fn link_label(key: &str) -> String {
    let title = features::GROUPS
        .iter()
        .find(|g| g.key == key)
        .map_or(key, |g| g.title);
    format!("Set up {title} in Weights…")
}

/// The link to the Weights window at `key`'s feature.
pub fn link(ui: &mut egui::Ui, key: &'static str, actions: &mut Vec<Action>) {
    if ui
        .link(link_label(key))
        .on_hover_text("Open the Weights window at this feature: licences, sizes, Install all")
        .clicked()
    {
        actions.push(Action::ShowWeightsFor(key));
    }
}

/// When `key`'s feature lacks networks: a line naming them (with `what` it means for the
/// section, e.g. "swaps use the classic engine") and the link. Returns whether any is missing.
pub fn missing_line(
    ui: &mut egui::Ui,
    missing: &MissingNetworks,
    key: &'static str,
    what: &str,
    actions: &mut Vec<Action>,
) -> bool {
    let Some(names) = missing.missing(key) else {
        return false;
    };
    ui.label(
        RichText::new(format!("{} not installed: {what}.", names.join(", ")))
            .color(ui.visuals().warn_fg_color),
    );
    link(ui, key, actions);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_feature_is_missing_only_when_checked_and_lacking() {
        let mut missing = MissingNetworks::default();
        assert_eq!(missing.missing("swap"), None, "not checked yet");
        missing.by_feature.insert("swap", Vec::new());
        assert_eq!(missing.missing("swap"), None, "all there");
        missing.by_feature.insert("swap", vec!["ArcFace IR-SE50".into()]);
        assert_eq!(
            missing.missing("swap"),
            Some(&["ArcFace IR-SE50".to_string()][..])
        );
        assert_eq!(link_label("edit"), "Set up Text edits in Weights…");
    }
}
