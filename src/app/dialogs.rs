//! Native file dialogs, run on their own thread so the window keeps drawing while one is open.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::{Receiver, Sender};

use crate::jobs::photos::IMAGE_EXTENSIONS;

pub struct FileDialogs {
    ctx: egui::Context,
    tx: Sender<Vec<PathBuf>>,
    rx: Receiver<Vec<PathBuf>>,
    open: Arc<AtomicBool>,
}

impl FileDialogs {
    pub fn new(ctx: egui::Context) -> FileDialogs {
        let (tx, rx) = crossbeam_channel::unbounded();
        FileDialogs {
            ctx,
            tx,
            rx,
            open: Arc::default(),
        }
    }

    /// A dialog is showing; a second one is not opened on top of it.
    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::Relaxed)
    }

    pub fn open_files(&self) {
        self.spawn(|| {
            rfd::FileDialog::new()
                .set_title("Add product photos")
                .add_filter("Images", IMAGE_EXTENSIONS)
                .pick_files()
                .unwrap_or_default()
        });
    }

    pub fn open_folder(&self) {
        self.spawn(|| {
            rfd::FileDialog::new()
                .set_title("Add a folder of product photos")
                .pick_folder()
                .into_iter()
                .collect()
        });
    }

    /// Paths picked since the last call, if any.
    pub fn poll(&self) -> Option<Vec<PathBuf>> {
        let picked: Vec<PathBuf> = self.rx.try_iter().flatten().collect();
        (!picked.is_empty()).then_some(picked)
    }

    fn spawn(&self, pick: impl FnOnce() -> Vec<PathBuf> + Send + 'static) {
        if self.open.swap(true, Ordering::SeqCst) {
            return;
        }
        let (tx, ctx, open) = (self.tx.clone(), self.ctx.clone(), Arc::clone(&self.open));
        let spawned = std::thread::Builder::new()
            .name("facecast-dialog".into())
            .spawn(move || {
                // Without a desktop portal rfd logs the reason and returns nothing, which reads like "cancelled".
                let picked = pick();
                open.store(false, Ordering::SeqCst);
                let _ = tx.send(picked);
                ctx.request_repaint();
            });
        if let Err(err) = spawned {
            self.open.store(false, Ordering::SeqCst);
            tracing::error!("could not start the file dialog thread: {err}");
        }
    }
}

/// "Open files…" and "Open folder…", disabled while a dialog is already open (the File menu and
/// the empty library both offer them).
pub fn open_buttons(ui: &mut egui::Ui, dialogs: &FileDialogs, actions: &mut Vec<super::Action>) {
    let enabled = !dialogs.is_open();
    if ui
        .add_enabled(enabled, egui::Button::new("Open files…"))
        .clicked()
    {
        actions.push(super::Action::OpenFilesDialog);
    }
    if ui
        .add_enabled(enabled, egui::Button::new("Open folder…"))
        .clicked()
    {
        actions.push(super::Action::OpenFolderDialog);
    }
}
