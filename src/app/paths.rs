//! Paths as the window shows them: under the user's home folder as `~/…`, shorter and the same
//! for every user (the Weights window's folder, the export's output folder).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The user's home folder, read once: it does not change while the window is open.
pub fn home() -> Option<&'static Path> {
    static HOME: OnceLock<Option<PathBuf>> = OnceLock::new();
    HOME.get_or_init(|| directories::BaseDirs::new().map(|b| b.home_dir().to_path_buf()))
        .as_deref()
}

/// `path` as the window shows it: `~/…` under the home folder, elsewhere in full.
pub fn home_relative(path: &Path) -> String {
    relative_to(path, home())
}

/// `path` with a leading `home` replaced by `~`; otherwise the path in full.
pub fn relative_to(path: &Path, home: Option<&Path>) -> String {
    match home.and_then(|h| path.strip_prefix(h).ok()) {
        Some(rest) if !rest.as_os_str().is_empty() => format!("~/{}", rest.display()),
        _ => path.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_shown_from_home_when_it_is_under_it() {
        let home = Path::new("/home/ana");
        assert_eq!(
            relative_to(Path::new("/home/ana/.local/share/facecast/weights"), Some(home)),
            "~/.local/share/facecast/weights"
        );
        // A sibling whose name starts like the home folder is not under it.
        assert_eq!(
            relative_to(Path::new("/home/anabel/weights"), Some(home)),
            "/home/anabel/weights"
        );
        assert_eq!(relative_to(Path::new("/home/ana"), Some(home)), "/home/ana");
        assert_eq!(relative_to(Path::new("/srv/weights"), Some(home)), "/srv/weights");
        assert_eq!(relative_to(Path::new("/srv/weights"), None), "/srv/weights");
    }
}
