//! Where the parity fixtures are. A missing folder is an error, never a reason to skip: a parity
//! check that ran nothing proved nothing, and a skip reads as green in every summary.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::ParityError;

/// Names the fixture root; relative values are taken from the repository root.
pub const FIXTURES_ENV: &str = "FACECAST_FIXTURES";

/// `value` (the content of [`FIXTURES_ENV`]) resolved against `repo`, else `shared/fixtures`
/// beside the repository, where the project keeps them.
pub fn fixtures_root(value: Option<OsString>, repo: &Path) -> PathBuf {
    match value.filter(|v| !v.is_empty()) {
        Some(v) => repo.join(v),
        None => repo.join("../shared/fixtures"),
    }
}

/// The fixture folder `name` under `root`; an error naming the folder when it, or its
/// `meta.json`, is missing.
pub fn fixture_folder(root: &Path, name: &str) -> Result<PathBuf, ParityError> {
    let dir = root.join(name);
    if dir.join("meta.json").is_file() {
        Ok(dir)
    } else {
        Err(ParityError::MissingFixture { dir })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_root_has_no_fixture_and_the_error_names_the_folder() {
        let root = tempfile::tempdir().expect("tempdir");
        let err = fixture_folder(root.path(), "mtcnn").expect_err("an empty folder has no fixture");
        let text = err.to_string();
        assert!(
            text.contains(&root.path().join("mtcnn").display().to_string()),
            "{text}"
        );
        assert!(text.contains(FIXTURES_ENV), "{text}");
    }

    #[test]
    fn a_folder_without_meta_json_is_not_a_fixture() {
        let root = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(root.path().join("mtcnn")).expect("mkdir");
        std::fs::write(root.path().join("mtcnn/pnet.pt"), b"x").expect("write");
        assert!(fixture_folder(root.path(), "mtcnn").is_err());
        std::fs::write(root.path().join("mtcnn/meta.json"), b"{}").expect("write");
        assert_eq!(
            fixture_folder(root.path(), "mtcnn").expect("fixture"),
            root.path().join("mtcnn")
        );
    }

    #[test]
    fn the_root_comes_from_the_variable_relative_to_the_repository() {
        let repo = Path::new("/repo");
        assert_eq!(fixtures_root(None, repo), repo.join("../shared/fixtures"));
        assert_eq!(
            fixtures_root(Some("".into()), repo),
            repo.join("../shared/fixtures")
        );
        assert_eq!(fixtures_root(Some("fx".into()), repo), repo.join("fx"));
        assert_eq!(fixtures_root(Some("/abs".into()), repo), PathBuf::from("/abs"));
    }
}
