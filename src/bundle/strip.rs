//! Stripping a lone top-level directory (docs/behaviour/bundles.md#unpacking): after extraction, if
//! the archive dir holds exactly one entry, that entry is a real directory (a symlink never
//! qualifies, unlike the official agent, which would follow it), and that directory holds an entry
//! whose name contains "appspec" in any case, its contents become the archive dir.
//!
//! Done by renames through `<archive dir>-temp` (`deployment-archive-temp`), as the official
//! agent does, so no data is copied.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// PURE: the strip rule on names already listed.
pub fn should_strip(top: &[(String, bool)], inner: &[String]) -> bool {
    matches!(top, [(_, true)]) && inner.iter().any(|n| n.to_lowercase().contains("appspec"))
}

/// The temp dir beside the archive dir (`deployment-archive` -> `deployment-archive-temp`).
pub fn temp_dir(archive_dir: &Path) -> PathBuf {
    let mut name = archive_dir.file_name().unwrap_or_default().to_os_string();
    name.push("-temp");
    archive_dir.with_file_name(name)
}

/// Entry names (as bytes, kept for the renames) and whether each is a real directory.
fn names(dir: &Path) -> io::Result<Vec<(OsString, bool)>> {
    let mut out = Vec::new();
    for de in fs::read_dir(dir)? {
        let de = de?;
        let is_dir = de.file_type()?.is_dir();
        out.push((de.file_name(), is_dir));
    }
    Ok(out)
}

/// Applies the rule; returns the stripped directory's name (escaped, see [`crate::names`]).
pub fn strip_top_level(archive_dir: &Path) -> io::Result<Option<String>> {
    let top = names(archive_dir)?;
    let [(only, true)] = top.as_slice() else {
        return Ok(None);
    };
    // The rule looks for "appspec" in the names; a name that is not UTF-8 is matched on its
    // text, while the rename below uses its bytes.
    let inner: Vec<String> = names(&archive_dir.join(only))?
        .into_iter()
        .map(|(n, _)| crate::names::os(&n).into_owned())
        .collect();
    let shown_top = [(crate::names::os(only).into_owned(), true)];
    if !should_strip(&shown_top, &inner) {
        return Ok(None);
    }
    tracing::info!("Stripping leading directory from archive bundle contents.");
    let temp = temp_dir(archive_dir);
    match fs::remove_dir_all(&temp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    fs::rename(archive_dir, &temp)?;
    fs::rename(temp.join(only), archive_dir)?;
    fs::remove_dir(&temp)?;
    Ok(Some(crate::names::os(only).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn rule() {
        let one_dir = [("app-1.0".to_string(), true)];
        assert!(should_strip(&one_dir, &s(&["appspec.yml", "x"])));
        assert!(should_strip(&one_dir, &s(&["APPSPEC.yaml"])));
        assert!(should_strip(&one_dir, &s(&["my-AppSpec-notes"])));
        assert!(!should_strip(&one_dir, &s(&["app.yml"])));
        assert!(!should_strip(
            &[("f".to_string(), false)],
            &s(&["appspec.yml"])
        ));
        let two = [("a".to_string(), true), ("b".to_string(), true)];
        assert!(!should_strip(&two, &s(&["appspec.yml"])));
    }

    #[test]
    fn temp_name() {
        assert_eq!(
            temp_dir(Path::new("/r/g/d/deployment-archive")),
            Path::new("/r/g/d/deployment-archive-temp")
        );
    }
}
