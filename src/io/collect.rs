//! Turning the paths a user gives (files and folders) into the photos to work on: the one folder
//! walker of the window, the command line and the batch.
//!
//! [`walk`] streams what it finds, one entry at a time, so a caller can show the first photos of a
//! large folder at once and stop (cancel) by simply not asking for more. Every file inside a folder
//! comes out: a photo as [`Found::Photo`], anything else as [`Found::NotPhoto`] with the reason, so
//! a report can list it instead of dropping it silently. A file is a photo when its name ends in one
//! of [`PHOTO_EXTENSIONS`], or, whatever its name, when its first bytes are an image format the
//! loader reads (a JPEG saved without an extension is a photo; `notes.txt` is not). Linked folders
//! are followed once: a folder already visited (a link cycle) is reported and not entered again.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The one list of photo file extensions (lower case): folder walks, file dialogs and the window's
/// drop zone all use it.
pub const PHOTO_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "webp", "tif", "tiff", "bmp", "gif"];

/// Whether the file name ends in a photo extension (any case).
pub fn is_photo_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| PHOTO_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// Whether the file's first bytes are an image format the loader reads.
pub fn sniff_photo(path: &Path) -> std::io::Result<bool> {
    let mut head = [0u8; 32];
    let mut file = std::fs::File::open(path)?;
    let mut read = 0;
    // `read` may return fewer bytes than asked for before the end of the file.
    while read < head.len() {
        match file.read(&mut head[read..])? {
            0 => break,
            n => read += n,
        }
    }
    Ok(image::guess_format(&head[..read]).is_ok())
}

/// One thing a walk found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// A photo to work on: a file named on its own (always tried, so that what is wrong with it is
    /// reported by the loader), or a photo inside a folder.
    Photo(PathBuf),
    /// A file inside a folder that is not a photo, or a folder that is not entered; the reason names
    /// the path and says why.
    NotPhoto { path: PathBuf, reason: String },
    /// A path that could not be read (missing, no permission); the reason names it and the cause.
    Unreadable { path: PathBuf, reason: String },
}

impl Found {
    pub fn path(&self) -> &Path {
        match self {
            Found::Photo(path) | Found::NotPhoto { path, .. } | Found::Unreadable { path, .. } => path,
        }
    }
}

/// A depth-first walk over files and folders, in name order, yielding as it goes.
pub struct Walk {
    /// Entries still to visit, the next one last. Roots are marked, since a named file is always a
    /// photo to try while a file inside a folder is sniffed.
    pending: Vec<(PathBuf, bool)>,
    /// Folders entered, by canonical path, so a link cycle is entered once.
    visited: HashSet<PathBuf>,
}

/// Walks `paths`: files as given, folders recursively (hidden entries, whose names start with a
/// dot, are reported and not entered).
pub fn walk(paths: &[PathBuf]) -> Walk {
    Walk {
        pending: paths.iter().rev().map(|p| (p.clone(), true)).collect(),
        visited: HashSet::new(),
    }
}

impl Iterator for Walk {
    type Item = Found;

    fn next(&mut self) -> Option<Found> {
        while let Some((path, root)) = self.pending.pop() {
            if let Some(found) = self.visit(path, root) {
                return Some(found);
            }
        }
        None
    }
}

impl Walk {
    /// What `path` is, or None for a folder whose entries were queued.
    fn visit(&mut self, path: PathBuf, root: bool) -> Option<Found> {
        let hidden = path
            .file_name()
            .is_some_and(|name| name.as_encoded_bytes().starts_with(b"."));
        if hidden && !root {
            let reason = format!("{}: skipped, a hidden file or folder", path.display());
            return Some(Found::NotPhoto { path, reason });
        }
        // Follows links: a linked photo is a photo, a linked folder is walked (once).
        let meta = match std::fs::metadata(&path) {
            Ok(meta) => meta,
            // A named file that does not exist goes to the loader, which reports it like any file
            // it cannot read.
            Err(_) if root => return Some(Found::Photo(path)),
            Err(e) => {
                let reason = format!("{}: {e}", path.display());
                return Some(Found::Unreadable { path, reason });
            }
        };
        if meta.is_dir() {
            return self.enter(path);
        }
        if root || is_photo_name(&path) {
            return Some(Found::Photo(path));
        }
        Some(match sniff_photo(&path) {
            Ok(true) => Found::Photo(path),
            Ok(false) => {
                let reason = format!(
                    "{}: skipped, not a photo (neither its name nor its content is an image format Facecast reads)",
                    path.display()
                );
                Found::NotPhoto { path, reason }
            }
            Err(e) => {
                let reason = format!("{}: {e}", path.display());
                Found::Unreadable { path, reason }
            }
        })
    }

    /// Queues a folder's entries in name order; None when they were queued.
    fn enter(&mut self, dir: PathBuf) -> Option<Found> {
        let canonical = std::fs::canonicalize(&dir).unwrap_or_else(|_| dir.clone());
        if !self.visited.insert(canonical) {
            let reason = format!(
                "{}: skipped, this folder was already walked (a link leads back to it)",
                dir.display()
            );
            return Some(Found::NotPhoto { path: dir, reason });
        }
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) => {
                let reason = format!("{}: {e}", dir.display());
                return Some(Found::Unreadable { path: dir, reason });
            }
        };
        let mut children = Vec::new();
        for entry in entries {
            match entry {
                Ok(entry) => children.push(entry.path()),
                Err(e) => {
                    let reason = format!("{}: {e}", dir.display());
                    return Some(Found::Unreadable { path: dir, reason });
                }
            }
        }
        children.sort();
        self.pending
            .extend(children.into_iter().rev().map(|child| (child, false)));
        None
    }
}

/// Files as given, and the photos inside folders (recursively, sorted). A path that does not exist
/// is kept, so that the caller reports it like any unreadable file; what is not a photo is left out
/// (use [`walk`] to report it).
pub fn collect_photos(paths: &[PathBuf]) -> Vec<PathBuf> {
    walk(paths)
        .filter_map(|found| match found {
            Found::Photo(path) => Some(path),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg() -> Vec<u8> {
        let mut bytes = Vec::new();
        image::RgbImage::from_pixel(4, 4, image::Rgb([200, 100, 50]))
            .write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Jpeg)
            .expect("encode");
        bytes
    }

    #[test]
    fn every_file_of_a_folder_comes_out_in_name_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::write(root.join("b.png"), b"any bytes: the name says photo").expect("write");
        std::fs::write(root.join("no-extension"), jpeg()).expect("write");
        std::fs::write(root.join("a.txt"), b"notes").expect("write");
        std::fs::write(root.join(".hidden.png"), jpeg()).expect("write");
        std::fs::create_dir(root.join("sub")).expect("mkdir");
        std::fs::write(root.join("sub").join("c.JPG"), jpeg()).expect("write");

        let found: Vec<Found> = walk(&[root.to_path_buf()]).collect();
        let kinds: Vec<(String, &str)> = found
            .iter()
            .map(|f| {
                let name = f.path().strip_prefix(root).expect("inside").display().to_string();
                let kind = match f {
                    Found::Photo(_) => "photo",
                    Found::NotPhoto { .. } => "not a photo",
                    Found::Unreadable { .. } => "unreadable",
                };
                (name, kind)
            })
            .collect();
        let want = [
            (".hidden.png", "not a photo"),
            ("a.txt", "not a photo"),
            ("b.png", "photo"),
            ("no-extension", "photo"),
            ("sub/c.JPG", "photo"),
        ];
        let want: Vec<(String, &str)> = want.iter().map(|(n, k)| (n.to_string(), *k)).collect();
        assert_eq!(kinds, want);
        let Some(Found::NotPhoto { reason, .. }) = found.get(1) else {
            panic!("a.txt is not a photo: {found:?}");
        };
        assert!(
            reason.contains("a.txt") && reason.contains("not a photo"),
            "{reason}"
        );
    }

    #[test]
    fn a_named_file_is_always_tried_and_a_missing_one_too() {
        let dir = tempfile::tempdir().expect("tempdir");
        let notes = dir.path().join("notes.txt");
        std::fs::write(&notes, b"not a photo").expect("write");
        let missing = dir.path().join("gone.jpg");
        let found: Vec<Found> = walk(&[notes.clone(), missing.clone()]).collect();
        assert_eq!(found, [Found::Photo(notes), Found::Photo(missing)]);
    }

    #[cfg(unix)]
    #[test]
    fn a_link_cycle_is_walked_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("photos");
        std::fs::create_dir(&root).expect("mkdir");
        std::fs::write(root.join("a.jpg"), jpeg()).expect("write");
        std::os::unix::fs::symlink(&root, root.join("loop")).expect("symlink");
        let found: Vec<Found> = walk(std::slice::from_ref(&root)).collect();
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0], Found::Photo(root.join("a.jpg")));
        assert!(
            matches!(&found[1], Found::NotPhoto { path, reason } if *path == root.join("loop") && reason.contains("already walked")),
            "{found:?}"
        );
    }

    #[test]
    fn a_walk_stops_when_nobody_asks_for_more() {
        let dir = tempfile::tempdir().expect("tempdir");
        for i in 0..5 {
            std::fs::write(dir.path().join(format!("{i}.jpg")), jpeg()).expect("write");
        }
        let mut walk = walk(&[dir.path().to_path_buf()]);
        assert!(matches!(walk.next(), Some(Found::Photo(_))));
        assert_eq!(walk.pending.len(), 4, "the rest is still queued, not read");
    }
}
