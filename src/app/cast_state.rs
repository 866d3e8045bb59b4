//! Plain state of virtual-model casting: the library as last listed, the current virtual model
//! (the one swaps use), generated candidates, an import in progress. Folded from worker events;
//! nothing here knows about egui.

use crate::cast::{DamagedEntry, VirtualModel};
use crate::jobs::cast::{Candidate, CastOutput, ImportPhoto, LibraryItem};
use crate::jobs::{JobId, JobOutcome};

use super::toasts::{ToastAction, Toasts};

/// An import waiting for the operator: the faces found, the face chosen in each photo, a name.
#[derive(Debug, Clone, Default)]
pub struct ImportDraft {
    /// One per picked file: its faces, or why it has none (names the file).
    pub photos: Vec<Result<ImportPhoto, String>>,
    /// The chosen face (0-based) of each photo with faces; the largest one at first.
    pub picks: Vec<usize>,
    pub name: String,
}

impl ImportDraft {
    /// The photos that can be used, with the face chosen in each.
    pub fn usable(&self) -> Vec<(&ImportPhoto, usize)> {
        self.photos
            .iter()
            .zip(&self.picks)
            .filter_map(|(p, &pick)| p.as_ref().ok().map(|p| (p, pick)))
            .collect()
    }
}

#[derive(Debug, Default)]
pub struct CastState {
    /// The virtual model swaps use, by id.
    pub current: Option<String>,
    /// The library as last listed, by name.
    pub library: Vec<LibraryItem>,
    /// Library folders that could not be read, with the reason.
    pub damaged: Vec<DamagedEntry>,
    /// The library was listed at least once.
    pub listed: bool,
    /// The last generation's candidates in seed order (None until each arrives).
    pub candidates: Vec<Option<Candidate>>,
    pub generate_job: Option<JobId>,
    /// The candidate shown large, by index.
    pub enlarged: Option<usize>,
    pub import: Option<ImportDraft>,
    pub import_job: Option<JobId>,
    /// Saving a candidate.
    pub save_job: Option<JobId>,
    /// Saving the import.
    pub import_save_job: Option<JobId>,
}

impl CastState {
    /// The current virtual model, when it is still in the library.
    pub fn current_model(&self) -> Option<&VirtualModel> {
        let id = self.current.as_deref()?;
        self.item(id).map(|i| &i.model)
    }

    pub fn item(&self, id: &str) -> Option<&LibraryItem> {
        self.library.iter().find(|i| i.model.id == id)
    }

    pub fn is_generating(&self) -> bool {
        self.generate_job.is_some()
    }

    /// Folds one output of a cast job.
    pub fn apply(&mut self, output: CastOutput, toasts: &mut Toasts) {
        match output {
            CastOutput::Candidate { index, candidate } => {
                if index >= self.candidates.len() {
                    self.candidates.resize(index + 1, None);
                }
                self.candidates[index] = Some(candidate);
            }
            CastOutput::Library { items, damaged } => {
                let newly_damaged: Vec<&DamagedEntry> = damaged
                    .iter()
                    .filter(|d| !self.damaged.iter().any(|old| old.dir == d.dir))
                    .collect();
                for d in newly_damaged {
                    toasts.warning(format!(
                        "Virtual model folder {} is damaged and was skipped: {}",
                        d.dir.display(),
                        d.reason
                    ));
                }
                self.library = items;
                self.damaged = damaged;
                self.listed = true;
                if self.current.as_deref().is_some_and(|id| self.item(id).is_none()) {
                    self.current = None;
                }
            }
            CastOutput::Saved { model, note } => {
                toasts.info(note);
                // The first model saved becomes the one swaps use; later ones are chosen by hand.
                if self.current.is_none() {
                    self.current = Some(model.id);
                }
            }
            CastOutput::Deleted { model } => {
                if self.current.as_deref() == Some(model.id.as_str()) {
                    self.current = None;
                }
                toasts.info_with(
                    format!("Deleted {}", model.name),
                    ToastAction::UndeleteVirtualModel(model.id),
                );
            }
            CastOutput::ImportFaces { photos } => {
                let picks = photos.iter().map(|_| 0).collect();
                let name = self.import.take().map(|d| d.name).unwrap_or_default();
                self.import = Some(ImportDraft { photos, picks, name });
            }
        }
    }

    /// A job ended: forget it, and say what a cancelled generation left.
    pub fn finished(&mut self, job: JobId, outcome: &JobOutcome) {
        if self.generate_job == Some(job) {
            self.generate_job = None;
            if *outcome != JobOutcome::Done {
                // Seeds never reached stay empty; drop their places.
                while self.candidates.last().is_some_and(Option::is_none) {
                    self.candidates.pop();
                }
            }
        }
        if self.import_job == Some(job) {
            self.import_job = None;
        }
        if self.save_job == Some(job) {
            self.save_job = None;
            if *outcome == JobOutcome::Done {
                self.enlarged = None;
            }
        }
        if self.import_save_job == Some(job) {
            self.import_save_job = None;
            if *outcome == JobOutcome::Done {
                self.import = None;
            }
        }
    }
}
