//! Per-photo edit history: every step that changes a photo (swap, restore, makeup) adds a version;
//! undo and redo move between them. The original file is never touched: version 0 is "the photo as
//! loaded", and the versions hold the edited pixels in memory until they are exported.

use std::sync::Arc;

use image::RgbImage;

/// One edited state of a photo.
#[derive(Debug, Clone)]
pub struct Version {
    /// What produced it, for the undo menu and the canvas ("Swap (FaceShifter), 2 faces").
    pub label: String,
    pub image: Arc<RgbImage>,
    /// What the step measured or wants the operator to know (e.g. identity similarity per face).
    pub notes: Vec<String>,
}

/// The versions of one photo and which one is current.
#[derive(Debug, Clone, Default)]
pub struct EditHistory {
    versions: Vec<Version>,
    /// How many versions are applied: 0 is the original photo, `versions.len()` the newest edit.
    applied: usize,
}

impl EditHistory {
    /// A history as saved: `versions` oldest first, the first `applied` of them applied (clamped).
    pub fn restore(versions: Vec<Version>, applied: usize) -> EditHistory {
        let applied = applied.min(versions.len());
        EditHistory { versions, applied }
    }

    /// Adds a version after the current one; versions that had been undone are dropped, as in any
    /// editor.
    pub fn push(&mut self, version: Version) {
        self.versions.truncate(self.applied);
        self.versions.push(version);
        self.applied = self.versions.len();
    }

    /// The edit currently shown, or `None` when the photo is back to its original.
    pub fn current(&self) -> Option<&Version> {
        self.applied.checked_sub(1).and_then(|i| self.versions.get(i))
    }

    pub fn can_undo(&self) -> bool {
        self.applied > 0
    }

    pub fn can_redo(&self) -> bool {
        self.applied < self.versions.len()
    }

    /// Steps back one version; returns the label of the edit undone.
    pub fn undo(&mut self) -> Option<&str> {
        if !self.can_undo() {
            return None;
        }
        self.applied -= 1;
        self.versions.get(self.applied).map(|v| v.label.as_str())
    }

    /// Re-applies the next undone version; returns its label.
    pub fn redo(&mut self) -> Option<&str> {
        if !self.can_redo() {
            return None;
        }
        self.applied += 1;
        self.versions.get(self.applied - 1).map(|v| v.label.as_str())
    }

    /// The label of the edit that undo would remove.
    pub fn undo_label(&self) -> Option<&str> {
        self.current().map(|v| v.label.as_str())
    }

    /// The label of the edit that redo would bring back.
    pub fn redo_label(&self) -> Option<&str> {
        self.versions.get(self.applied).map(|v| v.label.as_str())
    }

    /// Every version, oldest first, and how many are applied.
    pub fn versions(&self) -> (&[Version], usize) {
        (&self.versions, self.applied)
    }

    pub fn is_edited(&self) -> bool {
        self.current().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(label: &str, shade: u8) -> Version {
        Version {
            label: label.into(),
            image: Arc::new(RgbImage::from_pixel(2, 2, image::Rgb([shade; 3]))),
            notes: Vec::new(),
        }
    }

    #[test]
    fn undo_and_redo_walk_the_versions() {
        let mut h = EditHistory::default();
        assert!(h.current().is_none() && !h.can_undo() && !h.can_redo());
        h.push(version("Swap", 1));
        h.push(version("Restore", 2));
        assert_eq!(h.current().map(|v| v.label.as_str()), Some("Restore"));
        assert_eq!(h.undo(), Some("Restore"));
        assert_eq!(h.current().map(|v| v.label.as_str()), Some("Swap"));
        assert_eq!(h.redo_label(), Some("Restore"));
        assert_eq!(h.undo(), Some("Swap"));
        assert!(h.current().is_none(), "all undone: the original photo");
        assert_eq!(h.undo(), None);
        assert_eq!(h.redo(), Some("Swap"));
        assert_eq!(h.redo(), Some("Restore"));
        assert_eq!(h.redo(), None);
        assert_eq!(h.current().map(|v| v.image.get_pixel(0, 0)[0]), Some(2));
    }

    #[test]
    fn a_new_edit_after_undo_drops_the_undone_ones() {
        let mut h = EditHistory::default();
        h.push(version("Swap", 1));
        h.push(version("Restore", 2));
        h.undo();
        h.push(version("Makeup", 3));
        let (versions, applied) = h.versions();
        let labels: Vec<&str> = versions.iter().map(|v| v.label.as_str()).collect();
        assert_eq!(labels, ["Swap", "Makeup"]);
        assert_eq!(applied, 2);
        assert!(!h.can_redo());
    }
}
