//! The `.version` file (docs/behaviour/layout.md#version-file): what the packages ship, how the
//! agent finds it, and the value sent as `x-amz-codedeploy-agent-version`.
//!
//! Invariants: the packages write [`version_file_text`], so the header value, `status` and
//! `--version` all show [`crate::VERSION`]; with no readable file the built-in version is used
//! (the official agent sent `UNKNOWN_VERSION`; our binary always knows its own version).

use std::path::{Path, PathBuf};

/// Header carrying the agent version on every CodeDeploy-command request.
pub const VERSION_HEADER: &str = "x-amz-codedeploy-agent-version";
/// Where the packages install the version file.
pub const DEFAULT_VERSION_FILE: &str = "/opt/codedeploy-agent/.version";

/// Content of the shipped `.version` file.
pub fn version_file_text() -> String {
    format!("agent_version: {}\n", crate::VERSION)
}

/// PURE: the value of a `.version` file: the text after the last `": "`, trimmed.
pub fn parse_version_file(text: &str) -> Option<String> {
    let (_, v) = text.rsplit_once(": ")?;
    let v = v.trim();
    (!v.is_empty()).then(|| v.to_string())
}

/// PURE: the files looked at, in order: `<root_dir>/../.version`, then the default.
pub fn candidates(root_dir: &Path) -> Vec<PathBuf> {
    let beside = root_dir
        .parent()
        .map(|p| p.join(".version"))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_VERSION_FILE));
    let mut v = vec![beside];
    if v[0] != Path::new(DEFAULT_VERSION_FILE) {
        v.push(PathBuf::from(DEFAULT_VERSION_FILE));
    }
    v
}

/// The agent version and the file it came from (`None`: built-in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentVersion {
    pub value: String,
    pub file: Option<PathBuf>,
}

/// Finds the agent version for `root_dir`. Log the result once at start-up:
/// `Version file found in <path> with agent version <v>.`
pub fn agent_version(root_dir: &Path) -> AgentVersion {
    for path in candidates(root_dir) {
        if let Some(value) = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| parse_version_file(&t))
        {
            return AgentVersion {
                value,
                file: Some(path),
            };
        }
    }
    AgentVersion {
        value: crate::VERSION.to_string(),
        file: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_the_official_agent() {
        assert_eq!(
            parse_version_file("agent_version: OFFICIAL_1.8.0-17_deb\n").as_deref(),
            Some("OFFICIAL_1.8.0-17_deb")
        );
        assert_eq!(parse_version_file("a: b: c \n").as_deref(), Some("c"));
        assert_eq!(parse_version_file("nothing"), None);
        assert_eq!(parse_version_file("agent_version: \n"), None);
        assert_eq!(
            parse_version_file(&version_file_text()).as_deref(),
            Some(crate::VERSION)
        );
    }

    #[test]
    fn looks_beside_the_root_first() {
        assert_eq!(
            candidates(Path::new("/opt/codedeploy-agent/deployment-root")),
            vec![PathBuf::from(DEFAULT_VERSION_FILE)]
        );
        assert_eq!(
            candidates(Path::new("/srv/cd/root")),
            vec![
                PathBuf::from("/srv/cd/.version"),
                PathBuf::from(DEFAULT_VERSION_FILE)
            ]
        );
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join(".version"), "agent_version: X1\n").unwrap();
        let v = agent_version(&t.path().join("root"));
        assert_eq!(v.value, "X1");
        assert_eq!(v.file, Some(t.path().join(".version")));
    }
}
