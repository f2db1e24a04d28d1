//! PURE: the first line of a hook script, judged as the kernel and the agent will run it
//! (docs/behaviour/hooks.md: the script is executed directly; one without `#!` fails with
//! ENOEXEC and the agent runs it with `/bin/sh`, as the official agent does).
//!
//! What is an error and what a warning (docs/validate-in-pipelines.md says the same):
//! - no `#!` line: a warning. The hook works (`/bin/sh` runs it), but a script written for
//!   bash that relies on this runs under dash on Debian and Ubuntu.
//! - `#!` naming no interpreter, naming it by a relative path, or ending in a carriage return
//!   (a script saved with Windows line ends): errors. The kernel looks for an interpreter that
//!   is not there (`/bin/bash\r`, `bash` in the hook's working directory), so the hook fails.
//! - a `#!` line longer than the kernel reads (255 bytes after `#!` on Linux 5.1 and later,
//!   127 before): a warning, the interpreter's arguments are cut.
//! - an ELF executable (a compiled hook) has no `#!` line and needs none.
//!
//! Whether the interpreter exists is not checked: `validate` runs where the bundle is built,
//! not on the hosts it deploys to.

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub message: String,
}

/// The longest `#!` line (after `#!`) that older kernels read whole.
const KERNEL_SHEBANG_BYTES: usize = 127;

fn error(message: String) -> Option<Finding> {
    Some(Finding {
        severity: Severity::Error,
        message,
    })
}

fn warning(message: String) -> Option<Finding> {
    Some(Finding {
        severity: Severity::Warning,
        message,
    })
}

/// Judges a script by its first bytes (at least its first line); None when it is fine.
pub fn check_head(head: &[u8]) -> Option<Finding> {
    if head.starts_with(b"\x7fELF") {
        return None;
    }
    let Some(rest) = head.strip_prefix(b"#!") else {
        return warning(
            "has no #! line; the agent runs it with /bin/sh (add e.g. #!/bin/bash to choose the interpreter)"
                .into(),
        );
    };
    let line = match rest.iter().position(|b| *b == b'\n') {
        Some(end) => &rest[..end],
        None => rest,
    };
    if line.ends_with(b"\r") {
        return error(
            "its #! line ends with a carriage return (Windows line ends): the kernel looks for an interpreter whose name ends in \\r and the hook fails; save it with Unix line ends".into(),
        );
    }
    let text = String::from_utf8_lossy(line);
    let Some(interpreter) = text.split_whitespace().next() else {
        return error("its #! line names no interpreter; name one, e.g. #!/bin/bash".into());
    };
    if !interpreter.starts_with('/') {
        return error(format!(
            "its #! line names the interpreter {interpreter:?} by a relative path, which the kernel looks up in the hook's working directory; use an absolute path such as /usr/bin/env {interpreter}"
        ));
    }
    if line.len() > KERNEL_SHEBANG_BYTES {
        return warning(format!(
            "its #! line is {} bytes long; kernels before Linux 5.1 read only {KERNEL_SHEBANG_BYTES}, cutting the interpreter's arguments",
            line.len()
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn severity(head: &[u8]) -> Option<Severity> {
        check_head(head).map(|f| f.severity)
    }

    #[test]
    fn named_absolute_interpreters_are_fine() {
        assert_eq!(severity(b"#!/bin/bash\necho hi\n"), None);
        assert_eq!(severity(b"#! /usr/bin/env python3\n"), None);
        assert_eq!(severity(b"#!/bin/sh"), None, "no newline at all");
        assert_eq!(severity(b"\x7fELF\x02\x01"), None, "a compiled hook");
    }

    #[test]
    fn no_shebang_is_a_warning() {
        assert_eq!(severity(b"echo hi\n"), Some(Severity::Warning));
        assert_eq!(severity(b""), Some(Severity::Warning));
        assert_eq!(
            severity(b" #!/bin/bash\n"),
            Some(Severity::Warning),
            "#! must be the first two bytes"
        );
    }

    #[test]
    fn unusable_shebangs_are_errors() {
        for head in [
            &b"#!/bin/bash\r\necho hi\r\n"[..],
            b"#!\necho hi\n",
            b"#!   \n",
            b"#!bash\n",
        ] {
            assert_eq!(
                severity(head),
                Some(Severity::Error),
                "{}",
                String::from_utf8_lossy(head)
            );
        }
        assert!(check_head(b"#!bash\n")
            .unwrap()
            .message
            .contains("/usr/bin/env bash"));
    }

    #[test]
    fn an_overlong_shebang_is_a_warning() {
        let long = format!("#!/usr/bin/env {}\n", "x".repeat(130));
        assert_eq!(severity(long.as_bytes()), Some(Severity::Warning));
    }
}
