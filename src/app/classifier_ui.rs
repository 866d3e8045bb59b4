//! The face classifier in the library: the operator marks photos "face" / "no face" (right-click),
//! "Train from my labels" fine-tunes MobileNetV2 on them in the background, and once a classifier is
//! installed its second opinion can be shown beside MTCNN's verdict on every row, with a filter for
//! the photos where the two disagree. The screening rule itself stays MTCNN's (score ≥ 0.70).

use std::collections::HashMap;

use egui::RichText;

use super::state::{AppState, FaceBadge, PhotoEntry, PhotoStatus};
use super::{Action, FacecastApp};
use crate::jobs::classifier::{
    CheckClassifier, ClassifierOutput, ClassifierSummary, ScreenPhotos, ScreenTarget, TrainClassifier,
};
use crate::jobs::{JobId, JobOutcome, PhotoId};
use crate::pipeline::classifier::train::{LabelledPhoto, TrainSettings};
use crate::pipeline::classifier::{EpochStats, FACE_THRESHOLD};
use crate::weights::models::{FACE_CLASSIFIER_ID, MOBILENETV2_IMAGENET_ID};

/// The training button's label.
pub const TRAIN_LABEL: &str = "Train from my labels";
/// The second-opinion toggle's label.
pub const SECOND_OPINION_LABEL: &str = "Second opinion";

/// The operator's label of a photo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaceMark {
    Face,
    NoFace,
}

/// The classifier's answer about one photo.
#[derive(Debug, Clone, PartialEq)]
pub enum Opinion {
    Pending,
    /// The probability that the photo shows a face.
    Face(f32),
    Failed(String),
}

/// The classifier's part of the app state.
#[derive(Debug, Default)]
pub struct ClassifierState {
    /// The installed classifier, once checked.
    pub installed: Option<ClassifierSummary>,
    /// Checked at least once.
    pub checked: bool,
    /// Why the installed classifier cannot be used.
    pub error: Option<String>,
    /// Ask the classifier about every photo.
    pub second_opinion: bool,
    pub training: Option<JobId>,
    /// The last epoch of the training in flight.
    pub last_epoch: Option<EpochStats>,
    screen_jobs: HashMap<JobId, Vec<PhotoId>>,
    requested: bool,
}

/// What the operator did.
#[derive(Debug, Clone, PartialEq)]
pub enum ClassifierAction {
    Mark(PhotoId, Option<FaceMark>),
    Train,
    SetSecondOpinion(bool),
}

impl PhotoEntry {
    /// MTCNN's verdict and the classifier's disagree.
    pub fn opinions_differ(&self, min_score: f32) -> bool {
        let Some(Opinion::Face(p)) = self.opinion else {
            return false;
        };
        match self.badge(min_score) {
            Some(FaceBadge::Faces(_)) => p < FACE_THRESHOLD,
            Some(FaceBadge::NoFace) => p >= FACE_THRESHOLD,
            _ => false,
        }
    }
}

impl AppState {
    /// Marked, readable photos, as training data.
    pub fn marked_photos(&self) -> Vec<LabelledPhoto> {
        self.library
            .entries()
            .iter()
            .filter(|e| matches!(e.status, PhotoStatus::Loaded { .. }))
            .filter_map(|e| {
                e.mark.map(|m| LabelledPhoto {
                    path: e.path.clone(),
                    face: m == FaceMark::Face,
                })
            })
            .collect()
    }

    pub(super) fn apply_classifier_output(&mut self, output: ClassifierOutput) {
        let c = &mut self.classifier;
        match output {
            ClassifierOutput::Status(result) => {
                c.checked = true;
                match result {
                    Ok(summary) => {
                        c.installed = summary;
                        c.error = None;
                    }
                    Err(reason) => {
                        c.installed = None;
                        c.error = Some(reason);
                    }
                }
            }
            ClassifierOutput::Opinion { photo, result } => {
                if let Some(entry) = self.library.get_mut(photo) {
                    entry.opinion = Some(match result {
                        Ok(p) => Opinion::Face(p),
                        Err(reason) => Opinion::Failed(reason),
                    });
                }
            }
            ClassifierOutput::Epoch(stats) => c.last_epoch = Some(stats),
            ClassifierOutput::Trained(summary) => {
                self.toasts.info(format!(
                    "Face classifier trained on {} photos: {:.0}% right on the photos held out to check it.",
                    summary.photos,
                    summary.val_accuracy * 100.0
                ));
                c.installed = Some(summary);
                c.error = None;
                c.second_opinion = true;
                // Opinions of the old classifier no longer hold.
                let ids: Vec<PhotoId> = self.library.entries().iter().map(|e| e.id).collect();
                for id in ids {
                    if let Some(entry) = self.library.get_mut(id) {
                        entry.opinion = None;
                    }
                }
            }
        }
    }

    pub(super) fn classifier_job_finished(&mut self, job: JobId, outcome: &JobOutcome) {
        if self.classifier.training == Some(job) {
            self.classifier.training = None;
            self.classifier.last_epoch = None;
        }
        for photo in self.classifier.screen_jobs.remove(&job).unwrap_or_default() {
            if let Some(entry) = self.library.get_mut(photo)
                && entry.opinion == Some(Opinion::Pending)
            {
                entry.opinion = Some(Opinion::Failed(match outcome {
                    JobOutcome::Failed(reason) => reason.clone(),
                    JobOutcome::Done | JobOutcome::Cancelled => "not asked (stopped)".into(),
                }));
            }
        }
    }
}

impl FacecastApp {
    /// Checks the install once, and asks about new photos while the second opinion is on.
    pub(super) fn classifier_tick(&mut self) {
        let Some(store) = &self.store else { return };
        if !self.state.classifier.requested {
            self.state.classifier.requested = true;
            self.worker.enqueue(CheckClassifier { store: store.clone() });
        }
        if !self.state.classifier.second_opinion || self.state.classifier.installed.is_none() {
            return;
        }
        let mut targets = Vec::new();
        let ids: Vec<PhotoId> = self
            .state
            .library
            .entries()
            .iter()
            .filter(|e| e.opinion.is_none() && matches!(e.status, PhotoStatus::Loaded { .. }))
            .map(|e| e.id)
            .collect();
        for id in ids {
            if let Some(entry) = self.state.library.get_mut(id) {
                entry.opinion = Some(Opinion::Pending);
                targets.push(ScreenTarget {
                    photo: id,
                    path: entry.path.clone(),
                    rgb: self.state.decoded.get(&id).cloned(),
                });
            }
        }
        if targets.is_empty() {
            return;
        }
        let ids = targets.iter().map(|t| t.photo).collect();
        let job = self.worker.enqueue(ScreenPhotos {
            store: store.clone(),
            photos: targets,
        });
        self.state.classifier.screen_jobs.insert(job, ids);
    }

    pub(super) fn classifier_weights_changed(&mut self, id: &str) {
        if (id == FACE_CLASSIFIER_ID || id == MOBILENETV2_IMAGENET_ID)
            && let Some(store) = &self.store
        {
            self.worker.enqueue(CheckClassifier { store: store.clone() });
        }
    }

    pub(super) fn classifier_action(&mut self, action: ClassifierAction) {
        match action {
            ClassifierAction::Mark(photo, mark) => {
                if let Some(entry) = self.state.library.get_mut(photo) {
                    entry.mark = mark;
                }
            }
            ClassifierAction::SetSecondOpinion(on) => self.state.classifier.second_opinion = on,
            ClassifierAction::Train => {
                let photos = self.state.marked_photos();
                let faces = photos.iter().filter(|p| p.face).count();
                if faces < 2 || photos.len() - faces < 2 {
                    self.state.toasts.warning(
                        "Mark at least 2 photos with a face and 2 without first (right-click a photo in the library).",
                    );
                    return;
                }
                let Some(store) = &self.store else { return };
                let job = self.worker.enqueue(TrainClassifier {
                    store: store.clone(),
                    photos,
                    settings: TrainSettings::default(),
                });
                self.state.classifier.training = Some(job);
            }
        }
    }
}

/// The library's classifier line: marks, training, the second-opinion toggle.
pub fn library_bar(ui: &mut egui::Ui, state: &AppState, actions: &mut Vec<Action>) {
    let c = &state.classifier;
    let marked = state.marked_photos();
    let faces = marked.iter().filter(|p| p.face).count();
    let show = !marked.is_empty() || c.installed.is_some() || c.training.is_some();
    if !show {
        return;
    }
    ui.horizontal_wrapped(|ui| {
        if !marked.is_empty() {
            ui.label(format!("Marked: {faces} face, {} no face", marked.len() - faces))
                .on_hover_text("Right-click a photo to mark it; the marks train the face classifier");
        }
        match (c.training, &c.last_epoch) {
            (Some(job), epoch) => {
                ui.spinner();
                let text = match epoch {
                    Some(e) => format!("Training… epoch {}: {:.0}% right", e.epoch, e.val_accuracy * 100.0),
                    None => "Training…".to_string(),
                };
                ui.label(text);
                if ui.small_button("Cancel").clicked() {
                    actions.push(Action::Cancel(job));
                }
            }
            (None, _) => {
                let enough = faces >= 2 && marked.len() - faces >= 2;
                let button = ui
                    .add_enabled(enough, egui::Button::new(TRAIN_LABEL))
                    .on_disabled_hover_text("Mark at least 2 photos with a face and 2 without");
                if button.clicked() {
                    actions.push(Action::Classifier(ClassifierAction::Train));
                }
            }
        }
        if let Some(summary) = &c.installed {
            let mut on = c.second_opinion;
            let base = if summary.reduced_base {
                " It was trained from test weights, not the ImageNet network."
            } else {
                ""
            };
            let hover = format!(
                "The face classifier looks at each whole photo too (trained on {} photos, {:.0}% right on the held-out ones).{base} The \u{201c}has a face\u{201d} rule stays the detector's.",
                summary.photos,
                summary.val_accuracy * 100.0
            );
            if ui.checkbox(&mut on, SECOND_OPINION_LABEL).on_hover_text(hover).changed() {
                actions.push(Action::Classifier(ClassifierAction::SetSecondOpinion(on)));
            }
        }
    });
    if let Some(error) = &c.error {
        ui.label(
            RichText::new(format!("Face classifier unusable: {error}")).color(ui.visuals().warn_fg_color),
        );
    }
    if c.installed.is_none() && c.training.is_none() {
        // Training fine-tunes the ImageNet MobileNetV2: say so before the operator marks more.
        super::weights_links::missing_line(
            ui,
            &state.missing_networks,
            "classify",
            "training the face classifier needs it",
            actions,
        );
    }
}

/// What a library row adds after its verdict: the mark and the second opinion.
pub fn row_suffix(entry: &PhotoEntry) -> String {
    let mut out = String::new();
    match entry.mark {
        Some(FaceMark::Face) => out.push_str(" · marked face"),
        Some(FaceMark::NoFace) => out.push_str(" · marked no face"),
        None => {}
    }
    match &entry.opinion {
        Some(Opinion::Face(p)) if *p >= FACE_THRESHOLD => {
            out.push_str(&format!(" · classifier: face {:.0}%", p * 100.0))
        }
        Some(Opinion::Face(p)) => out.push_str(&format!(" · classifier: no face {:.0}%", (1.0 - p) * 100.0)),
        Some(Opinion::Pending) => out.push_str(" · classifier…"),
        Some(Opinion::Failed(_)) => out.push_str(" · classifier: error"),
        None => {}
    }
    out
}

/// The row's context-menu entries for marking.
pub fn mark_menu(ui: &mut egui::Ui, entry: &PhotoEntry, actions: &mut Vec<Action>) {
    let id = entry.id;
    if entry.mark != Some(FaceMark::Face) && ui.button("Mark as face").clicked() {
        actions.push(Action::Classifier(ClassifierAction::Mark(
            id,
            Some(FaceMark::Face),
        )));
    }
    if entry.mark != Some(FaceMark::NoFace) && ui.button("Mark as no face").clicked() {
        actions.push(Action::Classifier(ClassifierAction::Mark(
            id,
            Some(FaceMark::NoFace),
        )));
    }
    if entry.mark.is_some() && ui.button("Clear mark").clicked() {
        actions.push(Action::Classifier(ClassifierAction::Mark(id, None)));
    }
    ui.separator();
}
