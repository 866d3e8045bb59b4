//! The Weights window: every network with its status, size and licence, and Install / "Locate file…"
//! buttons. Checks, downloads and imports run on background threads; the UI only reads their messages.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::task::{Context as TaskContext, Poll, Wake, Waker};
use std::thread;

use egui::{Color32, RichText};

use crate::weights::manifest::human_bytes;
use crate::weights::store::{ModelStatus, Progress, WeightsStore};

/// What the app should tell the user about (as toasts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WeightsEvent {
    Installed(String),
    Failed { id: String, message: String },
}

pub struct WeightsWindow {
    pub open: bool,
    store: WeightsStore,
    rows: Vec<Row>,
    tx: Sender<Msg>,
    rx: Receiver<Msg>,
    checked: bool,
}

struct Row {
    id: String,
    name: String,
    size: String,
    licence: String,
    commercial_use: bool,
    features: String,
    note: Option<String>,
    /// None while it is being checked.
    status: Option<ModelStatus>,
    job: Option<Job>,
}

struct Job {
    what: &'static str,
    file: String,
    done: u64,
    total: Option<u64>,
}

enum Msg {
    Status {
        id: String,
        result: Result<ModelStatus, String>,
    },
    Progress {
        id: String,
        progress: Progress,
    },
    /// An install or import ended; `None` when the user cancelled the file dialog.
    Finished {
        id: String,
        result: Option<Result<ModelStatus, String>>,
    },
}

#[derive(Clone, Copy)]
enum Action {
    Install,
    Locate,
}

impl WeightsWindow {
    pub fn new(store: WeightsStore) -> WeightsWindow {
        let rows = store
            .manifest()
            .models
            .iter()
            .map(|m| Row {
                id: m.id.clone(),
                name: m.name.clone(),
                size: m.size_text(),
                licence: m.licence.clone(),
                commercial_use: m.commercial_use,
                features: m
                    .features
                    .iter()
                    .map(|f| f.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                note: m.note.clone(),
                status: None,
                job: None,
            })
            .collect();
        let (tx, rx) = channel();
        WeightsWindow {
            open: false,
            store,
            rows,
            tx,
            rx,
            checked: false,
        }
    }

    /// The last known status of a model (None: unknown id or still being checked).
    pub fn status(&self, id: &str) -> Option<&ModelStatus> {
        self.rows
            .iter()
            .find(|r| r.id == id)
            .and_then(|r| r.status.as_ref())
    }

    pub fn is_busy(&self, id: &str) -> bool {
        self.rows.iter().any(|r| r.id == id && r.job.is_some())
    }

    /// Checks every model again in the background.
    pub fn refresh(&mut self, ctx: &egui::Context) {
        self.checked = true;
        let ids: Vec<String> = self
            .rows
            .iter()
            .filter(|r| r.job.is_none())
            .map(|r| r.id.clone())
            .collect();
        for row in self.rows.iter_mut().filter(|r| r.job.is_none()) {
            row.status = None;
        }
        let store = self.store.clone();
        let tx = self.tx.clone();
        let ctx = ctx.clone();
        let spawned = thread::Builder::new()
            .name("weights-status".into())
            .spawn(move || {
                for id in ids {
                    let result = store.status(&id).map(|s| s.status).map_err(|e| e.to_string());
                    if tx.send(Msg::Status { id, result }).is_err() {
                        return;
                    }
                    ctx.request_repaint();
                }
            });
        if let Err(e) = spawned {
            tracing::error!("could not start the weights check: {e}");
        }
    }

    /// Starts installing a model in the background (e.g. MTCNN at first start); progress shows in the window.
    pub fn install(&mut self, ctx: &egui::Context, id: &str) {
        self.start(ctx, id, Action::Install);
    }

    /// Asks for files the user already has (native dialog) and imports them in the background.
    pub fn locate(&mut self, ctx: &egui::Context, id: &str) {
        self.start(ctx, id, Action::Locate);
    }

    /// Draws the window when open and returns what finished since the last frame.
    pub fn ui(&mut self, ctx: &egui::Context) -> Vec<WeightsEvent> {
        let events = self.drain();
        if !self.open {
            return events;
        }
        if !self.checked {
            self.refresh(ctx);
        }
        let mut clicked: Option<(String, Action)> = None;
        let mut refresh = false;
        let mut open = self.open;
        egui::Window::new("Weights")
            .open(&mut open)
            .default_size([860.0, 520.0])
            .vscroll(true)
            .show(ctx, |ui| {
                ui.horizontal(|ui| {
                    ui.label(format!("Folder: {}", self.store.weights_dir().display()));
                    if ui.button("Check again").clicked() {
                        refresh = true;
                    }
                });
                ui.separator();
                egui::Grid::new("weights-grid")
                    .num_columns(5)
                    .striped(true)
                    .spacing([12.0, 6.0])
                    .show(ui, |ui| {
                        ui.strong("Network");
                        ui.strong("Status");
                        ui.strong("Size");
                        ui.strong("Licence");
                        ui.strong("");
                        ui.end_row();
                        for row in &self.rows {
                            row_ui(ui, row, &mut clicked);
                            ui.end_row();
                        }
                    });
            });
        self.open = open;
        if refresh {
            self.refresh(ctx);
        }
        if let Some((id, action)) = clicked {
            self.start(ctx, &id, action);
        }
        events
    }

    fn drain(&mut self) -> Vec<WeightsEvent> {
        let mut events = Vec::new();
        while let Ok(msg) = self.rx.try_recv() {
            match msg {
                Msg::Status { id, result } => {
                    if let Some(row) = self.row_mut(&id)
                        && row.job.is_none()
                    {
                        row.status = Some(result.unwrap_or_else(|e| ModelStatus::Corrupt {
                            file: String::new(),
                            reason: e,
                        }));
                    }
                }
                Msg::Progress { id, progress } => {
                    if let Some(job) = self.row_mut(&id).and_then(|r| r.job.as_mut()) {
                        match progress {
                            Progress::Source { file, .. } | Progress::Checking { file } => {
                                job.file = file;
                                job.done = 0;
                                job.total = None;
                            }
                            Progress::Bytes { file, done, total } => {
                                job.file = file;
                                job.done = done;
                                job.total = total;
                            }
                            Progress::SourceFailed { .. } | Progress::Done { .. } => {}
                        }
                    }
                }
                Msg::Finished { id, result } => {
                    let Some(row) = self.row_mut(&id) else { continue };
                    row.job = None;
                    match result {
                        None => {}
                        Some(Ok(status)) => {
                            if status.is_usable() {
                                events.push(WeightsEvent::Installed(id));
                            } else {
                                events.push(WeightsEvent::Failed {
                                    id,
                                    message: status.describe(),
                                });
                            }
                            row.status = Some(status);
                        }
                        Some(Err(message)) => events.push(WeightsEvent::Failed { id, message }),
                    }
                }
            }
        }
        events
    }

    fn row_mut(&mut self, id: &str) -> Option<&mut Row> {
        self.rows.iter_mut().find(|r| r.id == id)
    }

    fn start(&mut self, ctx: &egui::Context, id: &str, action: Action) {
        let Ok(model) = self.store.model(id) else { return };
        let names: Vec<String> = model.files.iter().map(|f| f.name.clone()).collect();
        let Some(row) = self.row_mut(id) else { return };
        if row.job.is_some() {
            return;
        }
        let what = match action {
            Action::Install => "downloading",
            Action::Locate => "importing",
        };
        row.job = Some(Job {
            what,
            file: String::new(),
            done: 0,
            total: None,
        });

        let store = self.store.clone();
        let tx = self.tx.clone();
        let ctx = ctx.clone();
        let id = id.to_string();
        let thread_id = id.clone();
        let spawned = thread::Builder::new()
            .name(format!("weights-{id}"))
            .spawn(move || {
                let id = thread_id;
                let result = match action {
                    Action::Install => {
                        let mut report = |progress| {
                            let _ = tx.send(Msg::Progress {
                                id: id.clone(),
                                progress,
                            });
                            ctx.request_repaint();
                        };
                        Some(
                            store
                                .install(&id, &mut report)
                                .map(|s| s.status)
                                .map_err(|e| e.to_string()),
                        )
                    }
                    Action::Locate => pick_files(&names).map(|paths| {
                        store
                            .import(&id, &paths)
                            .map(|s| s.status)
                            .map_err(|e| e.to_string())
                    }),
                };
                let _ = tx.send(Msg::Finished { id, result });
                ctx.request_repaint();
            });
        if let Err(e) = spawned {
            if let Some(row) = self.row_mut(&id) {
                row.job = None;
            }
            let _ = self.tx.send(Msg::Finished {
                id,
                result: Some(Err(format!("could not start: {e}"))),
            });
        }
    }
}

fn row_ui(ui: &mut egui::Ui, row: &Row, clicked: &mut Option<(String, Action)>) {
    ui.vertical(|ui| {
        let name = ui.label(RichText::new(&row.name).strong());
        if let Some(note) = &row.note {
            name.on_hover_text(note);
        }
        ui.label(
            RichText::new(format!("{} · {}", row.id, row.features))
                .small()
                .weak(),
        );
    });

    let (text, colour, detail) = match &row.status {
        None => ("checking…".to_string(), Color32::GRAY, None),
        Some(s @ ModelStatus::Installed) => (
            "installed".into(),
            Color32::from_rgb(60, 170, 80),
            Some(s.describe()),
        ),
        Some(s @ ModelStatus::Unverified { .. }) => (
            "installed (unverified)".into(),
            Color32::from_rgb(200, 150, 40),
            Some(s.describe()),
        ),
        Some(s @ ModelStatus::Missing { .. }) => ("not installed".into(), Color32::GRAY, Some(s.describe())),
        Some(s @ ModelStatus::Corrupt { .. }) => (
            "corrupt".into(),
            Color32::from_rgb(210, 60, 50),
            Some(s.describe()),
        ),
    };
    let status = ui.label(RichText::new(text).color(colour));
    if let Some(detail) = detail {
        status.on_hover_text(detail);
    }

    ui.label(&row.size);

    ui.vertical(|ui| {
        ui.set_max_width(300.0);
        if !row.commercial_use {
            ui.label(
                RichText::new("NON-COMMERCIAL / NOT CLEARED")
                    .color(Color32::from_rgb(210, 60, 50))
                    .strong(),
            );
        }
        ui.add(egui::Label::new(RichText::new(&row.licence).small()).wrap());
    });

    ui.vertical(|ui| match &row.job {
        Some(job) => {
            let fraction = job.total.filter(|t| *t > 0).map(|t| job.done as f32 / t as f32);
            let label = match job.total {
                Some(total) => format!(
                    "{} {} {}/{}",
                    job.what,
                    job.file,
                    human_bytes(job.done),
                    human_bytes(total)
                ),
                None if job.done > 0 => format!("{} {} {}", job.what, job.file, human_bytes(job.done)),
                None => format!("{} {}", job.what, job.file),
            };
            let bar = egui::ProgressBar::new(fraction.unwrap_or(0.0))
                .desired_width(200.0)
                .text(label);
            ui.add(if fraction.is_none() {
                bar.animate(true)
            } else {
                bar
            });
        }
        None => {
            ui.horizontal(|ui| {
                let installed = row.status.as_ref().is_some_and(|s| s.is_usable());
                if !installed && ui.button("Install").clicked() {
                    *clicked = Some((row.id.clone(), Action::Install));
                }
                if ui
                    .button("Locate file…")
                    .on_hover_text("Import files you already have")
                    .clicked()
                {
                    *clicked = Some((row.id.clone(), Action::Locate));
                }
            });
        }
    });
}

/// Runs the native file dialog on this (background) thread. The async dialog is used because it
/// may be driven from any thread on every platform; the sync one must run on macOS's main thread.
fn pick_files(names: &[String]) -> Option<Vec<PathBuf>> {
    let title = format!("Locate {}", names.join(", "));
    let dialog = rfd::AsyncFileDialog::new().set_title(title);
    let picked = block_on(dialog.pick_files())?;
    let paths: Vec<PathBuf> = picked.iter().map(|h| h.path().to_path_buf()).collect();
    (!paths.is_empty()).then_some(paths)
}

/// Polls a future to completion, parking the thread between wake-ups.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = TaskContext::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(value) => return value,
            Poll::Pending => thread::park(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use egui_kittest::Harness;
    use egui_kittest::kittest::Queryable;

    use super::*;
    use crate::weights::manifest::Manifest;

    #[test]
    fn lists_every_network_with_status_and_licence_without_blocking() {
        let data = tempfile::tempdir().unwrap();
        let manifest = Manifest::embedded().unwrap();
        let store = WeightsStore::with_manifest(data.path().to_path_buf(), manifest.clone());
        let mut window = WeightsWindow::new(store);
        window.open = true;
        let mut harness = Harness::builder().with_size([1100.0, 900.0]).build_ui_state(
            |ui, w: &mut WeightsWindow| assert!(w.ui(ui.ctx()).is_empty()),
            window,
        );

        // The statuses arrive from the background check while frames keep being drawn.
        for _ in 0..500 {
            harness.step();
            if manifest
                .models
                .iter()
                .all(|m| harness.state().status(&m.id).is_some())
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        harness.step();
        for model in &manifest.models {
            assert!(
                matches!(
                    harness.state().status(&model.id),
                    Some(ModelStatus::Missing { .. })
                ),
                "{} should be reported missing",
                model.id
            );
            assert!(
                harness.query_by_label(&model.name).is_some(),
                "{} is not shown",
                model.name
            );
        }
        let non_commercial = manifest.models.iter().filter(|m| !m.commercial_use).count();
        assert!(non_commercial > 0);
        assert_eq!(
            harness.query_all_by_label("NON-COMMERCIAL / NOT CLEARED").count(),
            non_commercial
        );
        assert_eq!(
            harness.query_all_by_label("not installed").count(),
            manifest.models.len()
        );
        assert_eq!(
            harness.query_all_by_label("Locate file…").count(),
            manifest.models.len()
        );
    }
}
