//! The one file-dialog service of the window. Every place that asks for a path (add photos, the
//! export folder, recipes, makeup references, a face photo for the Cast, a weights file) sends a
//! [`DialogRequest`]; the native dialog runs as a poll-promise on its own thread so the window keeps
//! drawing, one dialog at a time, and the answer comes back tagged with what it was for.
//!
//! Where no native dialog can be shown (no desktop portal and no zenity), the request opens a small
//! window that says so and takes a typed path instead: clicking *Import face photo…* never does
//! nothing.

use std::path::{Path, PathBuf};

use poll_promise::Promise;

use crate::jobs::photos::IMAGE_EXTENSIONS;

/// What a picked path is for; the window routes the answer by it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialogPurpose {
    AddPhotos,
    AddFolder,
    ExportFolder,
    SaveRecipe,
    LoadRecipe,
    MakeupReferences,
    CastPhotos,
    /// Files of a weights model, by id.
    LocateWeights(String),
    /// A product feed (CSV) to import.
    Feed,
    /// The folder the screening lists are written into.
    ScreeningLists,
    /// The folder of face photos a generator is trained on (the Train window).
    TrainPhotos,
}

/// What the dialog picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PickKind {
    /// One existing file.
    File,
    /// Several existing files.
    Files,
    Folder,
    /// A file to write.
    Save,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DialogRequest {
    pub purpose: DialogPurpose,
    pub title: String,
    pub kind: PickKind,
    /// (name, extensions without the dot).
    pub filters: Vec<(String, Vec<String>)>,
    pub directory: Option<PathBuf>,
    pub file_name: Option<String>,
}

impl DialogRequest {
    pub fn new(purpose: DialogPurpose, title: impl Into<String>, kind: PickKind) -> DialogRequest {
        DialogRequest {
            purpose,
            title: title.into(),
            kind,
            filters: Vec::new(),
            directory: None,
            file_name: None,
        }
    }

    pub fn filter(mut self, name: &str, extensions: &[&str]) -> DialogRequest {
        self.filters.push((
            name.to_string(),
            extensions.iter().map(|e| e.to_string()).collect(),
        ));
        self
    }

    pub fn images(self) -> DialogRequest {
        self.filter("Images", IMAGE_EXTENSIONS)
    }

    /// Starts in `path`'s folder with its name filled in (a save dialog).
    pub fn at(mut self, path: &Path) -> DialogRequest {
        self.directory = path.parent().map(Path::to_path_buf);
        self.file_name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        self
    }

    pub fn named(mut self, file_name: &str) -> DialogRequest {
        self.file_name = Some(file_name.to_string());
        self
    }

    fn native(&self) -> Vec<PathBuf> {
        let mut dialog = rfd::FileDialog::new().set_title(&self.title);
        for (name, extensions) in &self.filters {
            dialog = dialog.add_filter(name, extensions.as_slice());
        }
        if let Some(dir) = &self.directory {
            dialog = dialog.set_directory(dir);
        }
        if let Some(name) = &self.file_name {
            dialog = dialog.set_file_name(name);
        }
        match self.kind {
            PickKind::File => dialog.pick_file().into_iter().collect(),
            PickKind::Files => dialog.pick_files().unwrap_or_default(),
            PickKind::Folder => dialog.pick_folder().into_iter().collect(),
            PickKind::Save => dialog.save_file().into_iter().collect(),
        }
    }
}

/// The answer to a request: the paths picked (empty when cancelled).
#[derive(Debug, Clone, PartialEq)]
pub struct Picked {
    pub purpose: DialogPurpose,
    pub paths: Vec<PathBuf>,
}

/// The typed-path window's title, also used by tests.
pub const TYPED_WINDOW: &str = "Type a path";
/// Its confirm button.
pub const TYPED_OK: &str = "Use this path";

/// The typed-path fallback being shown.
struct Typed {
    request: DialogRequest,
    text: String,
    problem: Option<String>,
}

pub struct FileDialogs {
    ctx: egui::Context,
    /// Why no native dialog can be shown, when none can.
    no_native: Option<String>,
    pending: Option<(DialogPurpose, Promise<Vec<PathBuf>>)>,
    typed: Option<Typed>,
    done: Vec<Picked>,
}

impl FileDialogs {
    /// Native dialogs where the desktop can show them, else typed paths.
    pub fn new(ctx: egui::Context) -> FileDialogs {
        let no_native = native_problem();
        if let Some(why) = &no_native {
            tracing::warn!("file dialogs: {why}; paths are typed instead");
        }
        FileDialogs::with(ctx, no_native)
    }

    /// Typed paths only, saying `why` (tests, and desktops without a dialog service).
    pub fn typed_only(ctx: egui::Context, why: impl Into<String>) -> FileDialogs {
        FileDialogs::with(ctx, Some(why.into()))
    }

    fn with(ctx: egui::Context, no_native: Option<String>) -> FileDialogs {
        FileDialogs {
            ctx,
            no_native,
            pending: None,
            typed: None,
            done: Vec::new(),
        }
    }

    /// A dialog (native or typed) is showing; another request waits for it to close.
    pub fn is_open(&self) -> bool {
        self.pending.is_some() || self.typed.is_some()
    }

    /// Opens a dialog for `request`, unless one is already open (the request is then dropped: the
    /// operator is answering the other one).
    pub fn request(&mut self, request: DialogRequest) {
        if self.is_open() {
            return;
        }
        if self.no_native.is_some() {
            self.open_typed(request);
            return;
        }
        let purpose = request.purpose.clone();
        let fallback = request.clone();
        let ctx = self.ctx.clone();
        let (sender, promise) = Promise::new();
        let spawned = std::thread::Builder::new()
            .name("facecast-dialog".into())
            .spawn(move || {
                // The promise must be answered even if the dialog library panics: an unanswered
                // promise panics the window when polled.
                let picked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| request.native()))
                    .unwrap_or_else(|_| {
                        tracing::error!("the file dialog failed");
                        Vec::new()
                    });
                sender.send(picked);
                ctx.request_repaint();
            });
        match spawned {
            Ok(_) => self.pending = Some((purpose, promise)),
            Err(e) => {
                drop(promise);
                self.no_native = Some(format!("the dialog's thread could not start ({e})"));
                self.open_typed(fallback);
            }
        }
    }

    fn open_typed(&mut self, request: DialogRequest) {
        let text = request
            .directory
            .as_ref()
            .map(|d| d.join(request.file_name.as_deref().unwrap_or_default()))
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        self.typed = Some(Typed {
            text,
            request,
            problem: None,
        });
    }

    /// Answers that arrived since the last call (a cancelled dialog answers with no path).
    pub fn poll(&mut self) -> Vec<Picked> {
        if let Some((purpose, promise)) = self.pending.take() {
            match promise.try_take() {
                Ok(paths) => self.done.push(Picked { purpose, paths }),
                Err(promise) => self.pending = Some((purpose, promise)),
            }
        }
        std::mem::take(&mut self.done)
    }

    /// Draws the typed-path window while one is open; its answer comes out of [`FileDialogs::poll`].
    pub fn ui(&mut self, ctx: &egui::Context) {
        let Some(typed) = &mut self.typed else {
            return;
        };
        let why = self.no_native.clone().unwrap_or_default();
        let mut open = true;
        let mut answer = None;
        egui::Window::new(TYPED_WINDOW)
            .id(egui::Id::unique("facecast-typed-path"))
            .collapsible(false)
            .resizable(false)
            .default_width(460.0)
            .open(&mut open)
            .show(ctx, |ui| {
                ui.strong(&typed.request.title);
                ui.label(format!(
                    "No file dialog can be shown here: {why}. Type the path instead."
                ));
                let hint = match typed.request.kind {
                    PickKind::Files => "one path per line",
                    PickKind::Folder => "/path/to/folder",
                    _ => "/path/to/file",
                };
                let edit = if typed.request.kind == PickKind::Files {
                    egui::TextEdit::multiline(&mut typed.text).desired_rows(3)
                } else {
                    egui::TextEdit::singleline(&mut typed.text)
                };
                ui.add(edit.hint_text(hint).desired_width(f32::INFINITY));
                if let Some(problem) = &typed.problem {
                    ui.colored_label(ui.visuals().error_fg_color, problem);
                }
                ui.horizontal(|ui| {
                    if ui.button(TYPED_OK).clicked() {
                        match check_typed(&typed.text, typed.request.kind) {
                            Ok(paths) => answer = Some(paths),
                            Err(problem) => typed.problem = Some(problem),
                        }
                    }
                    if ui.button("Cancel").clicked() {
                        answer = Some(Vec::new());
                    }
                });
            });
        if !open {
            answer = Some(Vec::new());
        }
        if let Some(paths) = answer
            && let Some(typed) = self.typed.take()
        {
            self.done.push(Picked {
                purpose: typed.request.purpose,
                paths,
            });
        }
    }
}

/// The typed paths, each checked against what the request picks.
fn check_typed(text: &str, kind: PickKind) -> Result<Vec<PathBuf>, String> {
    let paths: Vec<PathBuf> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(PathBuf::from)
        .collect();
    if paths.is_empty() {
        return Err("Type a path first.".into());
    }
    if paths.len() > 1 && kind != PickKind::Files {
        return Err("One path only.".into());
    }
    for path in &paths {
        let problem = match kind {
            PickKind::File | PickKind::Files if !path.is_file() => Some("is not a file"),
            PickKind::Folder if !path.is_dir() => Some("is not a folder"),
            PickKind::Save
                if path
                    .parent()
                    .is_some_and(|d| !d.as_os_str().is_empty() && !d.is_dir()) =>
            {
                Some("is in a folder that does not exist")
            }
            _ => None,
        };
        if let Some(problem) = problem {
            return Err(format!("{} {problem}.", path.display()));
        }
    }
    Ok(paths)
}

/// Why a native dialog cannot be shown, when that is certain: rfd asks the desktop portal over the
/// session D-Bus, then falls back to zenity. With neither it returns nothing, which reads like
/// "cancelled".
fn native_problem() -> Option<String> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    let on_path = |name: &str| {
        std::env::var_os("PATH")
            .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(name).is_file()))
    };
    let session_bus = std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some_and(|v| !v.is_empty())
        || std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|dir| Path::new(&dir).join("bus").exists());
    (!session_bus && !on_path("zenity"))
        .then(|| "there is no desktop portal (no D-Bus session) and zenity is not installed".to_string())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_paths_are_checked_against_what_is_asked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("a.png");
        std::fs::write(&file, b"x").expect("write");
        let text = |p: &Path| p.display().to_string();
        assert_eq!(check_typed(&text(&file), PickKind::File), Ok(vec![file.clone()]));
        assert!(check_typed(&text(dir.path()), PickKind::File).is_err());
        assert_eq!(
            check_typed(&text(dir.path()), PickKind::Folder),
            Ok(vec![dir.path().to_path_buf()])
        );
        let two = format!("{}\n\n{}\n", text(&file), text(&file));
        assert_eq!(check_typed(&two, PickKind::Files).map(|p| p.len()), Ok(2));
        assert!(check_typed(&two, PickKind::File).is_err());
        assert!(check_typed("  ", PickKind::Files).is_err());
        let new = dir.path().join("recipe.json");
        assert_eq!(check_typed(&text(&new), PickKind::Save), Ok(vec![new]));
        assert!(check_typed(&text(&dir.path().join("no/such/r.json")), PickKind::Save).is_err());
    }
}
