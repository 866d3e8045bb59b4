//! Atomic writes of small files (JSON records, checkpoints): written to a hidden temporary file in
//! the destination folder, flushed, then renamed over the destination, so a reader sees the old
//! file or the new one and never half of either.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use super::export::TEMP_PREFIX;

/// Writes `bytes` to `dest`, replacing what is there, atomically. The error says which step failed.
pub fn write_atomic(dest: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match dest.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let step = |what: &str, e: io::Error| io::Error::new(e.kind(), format!("{what}: {e}"));
    let mut temp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .suffix(".part")
        .tempfile_in(dir)
        .map_err(|e| step("creating a temporary file", e))?;
    temp.write_all(bytes).map_err(|e| step("writing", e))?;
    temp.as_file()
        .sync_all()
        .map_err(|e| step("flushing to disk", e))?;
    temp.persist(dest)
        .map_err(|e| step("renaming into place", e.error))?;
    // The data is durable already; a failed folder sync only risks the rename, not the content.
    if let Ok(folder) = fs::File::open(dir) {
        let _ = folder.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary_behind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("a.json");
        write_atomic(&dest, b"one").expect("first write");
        write_atomic(&dest, b"two").expect("second write");
        assert_eq!(fs::read(&dest).expect("read"), b"two");
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.json")]);
        let missing = dir.path().join("no-such-folder").join("b.json");
        assert!(write_atomic(&missing, b"x").is_err());
    }
}
