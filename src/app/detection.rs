//! The app's side of face detection and the weights store: checking MTCNN's install at start,
//! installing it (at first start, or from a toast), screening photos as they load, and fetching the
//! sample photos. Nothing here blocks the UI thread.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, channel};

use super::dialogs::{DialogPurpose, DialogRequest, PickKind};
use super::weights_window::{WeightsEvent, WeightsWindow};
use super::{Detector, FacecastApp};
use crate::jobs::{DetectFaces, DetectTarget, MTCNN_ID};
use crate::weights::store::WeightsStore;

/// Asks the store in the background whether MTCNN is installed and usable.
pub(super) fn check_detector(ctx: &egui::Context, store: WeightsStore) -> Receiver<Result<bool, String>> {
    let (tx, rx) = channel();
    let ctx = ctx.clone();
    let spawned = std::thread::Builder::new()
        .name("facecast-check-mtcnn".into())
        .spawn(move || {
            let result = store
                .status(MTCNN_ID)
                .map(|state| state.status.is_usable())
                .map_err(|e| e.to_string());
            let _ = tx.send(result);
            ctx.request_repaint();
        });
    if let Err(err) = spawned {
        tracing::error!("could not start the MTCNN check: {err}");
    }
    rx
}

impl FacecastApp {
    /// Folds the answer of the start-up check: ready, or missing (then installed at first start, or
    /// offered in a toast).
    pub(super) fn poll_detector(&mut self, ctx: &egui::Context) {
        let Some(rx) = &self.detector_check else { return };
        let Ok(result) = rx.try_recv() else { return };
        self.detector_check = None;
        match result {
            Ok(true) => self.detector = Detector::Ready,
            Ok(false) if self.install_missing => {
                self.state
                    .toasts
                    .info("Installing MTCNN, the face detector (first start)…");
                // MIT: never held back for a licence, so it starts at once.
                self.install_model(ctx, MTCNN_ID);
            }
            // Said when a photo needs it (see detect_new_photos), not to someone only looking around.
            Ok(false) => self.detector = Detector::Missing(None),
            Err(reason) => self.detector = Detector::Missing(Some(reason)),
        }
    }

    /// Starts installing a model; the Weights window opens to show the progress. A network whose
    /// licence forbids commercial use is installed only once the user accepted that licence: until
    /// then the Weights window opens at its feature and asks. Returns whether the install started.
    pub(super) fn install_model(&mut self, ctx: &egui::Context, id: &str) -> bool {
        let Some(weights) = &mut self.weights else {
            return false;
        };
        if !weights.request_install(ctx, id) {
            return false;
        }
        if id == MTCNN_ID {
            self.detector = Detector::Installing;
        }
        true
    }

    /// Draws the Weights window and turns what finished into toasts.
    pub(super) fn weights_ui(&mut self, ctx: &egui::Context) {
        let Some(weights) = &mut self.weights else { return };
        let events = weights.ui(ctx);
        let missing = weights.missing_networks();
        if missing != self.state.missing_networks {
            self.state.missing_networks = missing;
        }
        for id in weights.take_locate() {
            let title = match weights_store_files(weights, &id) {
                Some(names) => format!("Locate {names}"),
                None => format!("Locate the files of {id}"),
            };
            self.dialogs.request(DialogRequest::new(
                DialogPurpose::LocateWeights(id),
                title,
                PickKind::Files,
            ));
        }
        for event in events {
            match event {
                WeightsEvent::Installed(id) => {
                    self.state.toasts.info(format!("{id} installed"));
                    if id == crate::weights::models::STYLEGAN2_ID {
                        self.generator_changed(ctx);
                    }
                    self.weights_changed(&id);
                    if id == MTCNN_ID {
                        self.detector = Detector::Ready;
                        self.retry_detection = true;
                    }
                }
                WeightsEvent::Failed { id, message } => {
                    self.state
                        .toasts
                        .error(format!("Installing {id} failed: {message}"));
                    if id == crate::weights::models::STYLEGAN2_ID {
                        self.generator_changed(ctx);
                    }
                    if id == MTCNN_ID {
                        self.detector = Detector::Missing(Some(message));
                        self.missing_told = true;
                    }
                }
            }
        }
    }

    /// Screens the loaded photos not screened yet, in one batch on the compute lane.
    pub(super) fn detect_new_photos(&mut self) {
        if let Detector::Missing(reason) = &self.detector
            && !self.missing_told
            && self
                .state
                .library
                .count(|s| matches!(s, super::PhotoStatus::Loaded { .. }))
                > 0
        {
            self.missing_told = true;
            let text = match reason {
                None => "Face detection needs MTCNN, which is not installed.".to_string(),
                Some(reason) => format!("Face detection needs MTCNN, which cannot be used: {reason}"),
            };
            self.state.toasts.warning_with(
                text,
                super::toasts::ToastAction::InstallModel(MTCNN_ID.to_string()),
            );
        }
        if self.detector != Detector::Ready {
            return;
        }
        let Some(store) = &self.store else { return };
        let retry = std::mem::take(&mut self.retry_detection);
        let photos: Vec<DetectTarget> = self
            .state
            .take_undetected(retry)
            .into_iter()
            .map(|(photo, path, rgb)| DetectTarget { photo, path, rgb })
            .collect();
        if photos.is_empty() {
            return;
        }
        let ids = photos.iter().map(|t| t.photo).collect();
        let job = self.worker.enqueue(DetectFaces {
            store: store.clone(),
            photos,
            settings: self.state.detect_settings,
        });
        self.state.track_detection(job, ids);
    }

    /// Help → Open sample photos: fetched (when missing) on a background thread, then opened.
    pub(super) fn open_samples(&mut self, ctx: &egui::Context) {
        if self.samples.is_some() {
            return;
        }
        let (tx, rx) = channel();
        let data_dir = self.store.as_ref().map(|s| s.data_dir().to_path_buf());
        let ctx = ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("facecast-samples".into())
            .spawn(move || {
                let result =
                    crate::weights::samples::install_samples(data_dir, || {}).map_err(|e| e.to_string());
                let _ = tx.send(result);
                ctx.request_repaint();
            });
        match spawned {
            Ok(_) => {
                self.state.toasts.info("Fetching the sample photos…");
                self.samples = Some(rx);
            }
            Err(err) => self
                .state
                .toasts
                .error(format!("Could not start fetching the sample photos: {err}")),
        }
    }

    pub(super) fn poll_samples(&mut self) {
        let Some(rx) = &self.samples else { return };
        let result: Result<Vec<PathBuf>, String> = match rx.try_recv() {
            Ok(result) => result,
            Err(std::sync::mpsc::TryRecvError::Empty) => return,
            Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                Err("the sample photo download stopped unexpectedly".to_string())
            }
        };
        self.samples = None;
        match result {
            Ok(paths) => self.open_paths(paths),
            Err(reason) => self.state.toasts.error(format!("Sample photos: {reason}")),
        }
    }
}

/// "pnet.pt, rnet.pt, onet.pt": the file names a model's dialog asks for.
fn weights_store_files(weights: &WeightsWindow, id: &str) -> Option<String> {
    let names: Vec<String> = weights.model_files(id)?;
    Some(names.join(", "))
}
