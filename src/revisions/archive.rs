//! The one owner of what DownloadBundle writes into a deployment directory: the archive
//! directory (the extracted revision), the strip rule's temp directory and `bundle.tar`.
//! The executor calls [`clear_download`] before a download and again after a failed one; the
//! transfer and the unpacker only write into a directory this module has emptied.
//!
//! Invariant: "replaced, never merged into" (as the official agent): a download starts from a
//! deployment directory holding none of the three, and a failed one leaves none of them.

use crate::bundle;
use crate::state::{self, StateError};
use std::io;
use std::path::Path;

/// Removes the archive directory, the strip temp directory and `bundle.tar` of `dir`; returns
/// what could not be removed (empty: all gone, or never there).
pub fn clear_download(dir: &Path) -> Vec<StateError> {
    let archive = state::archive_dir(dir);
    let temp = bundle::strip_temp_dir(&archive);
    let mut left = Vec::new();
    for tree in [&archive, &temp] {
        match std::fs::remove_dir_all(tree) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                left.push(StateError::new("remove", tree, e))
            }
            _ => {}
        }
    }
    let file = state::bundle_file(dir);
    match std::fs::remove_file(&file) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            left.push(StateError::new("remove", &file, e))
        }
        _ => {}
    }
    left
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_all_three_and_tolerates_absence() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        assert!(clear_download(d).is_empty());
        let archive = state::archive_dir(d);
        std::fs::create_dir_all(archive.join("sub")).unwrap();
        std::fs::create_dir_all(bundle::strip_temp_dir(&archive)).unwrap();
        std::fs::write(state::bundle_file(d), "x").unwrap();
        std::fs::create_dir_all(d.join("logs")).unwrap();
        assert!(clear_download(d).is_empty());
        let left: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["logs"], "the scripts log stays");
    }
}
