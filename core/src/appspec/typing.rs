//! PURE: helpers that read typed values out of the node tree while collecting problems.
//!
//! Every helper records an error in the [`Ctx`] and returns `None` instead of stopping, so
//! one pass over the tree reports every problem in the file.

use super::error::AppSpecError;
use super::model::Pos;
use super::yaml::{Node, NodeKind};

/// Collected problems of one appspec.
pub(crate) struct Ctx {
    pub file: String,
    pub errors: Vec<AppSpecError>,
    pub warnings: Vec<AppSpecError>,
}

impl Ctx {
    pub fn new(file: &str) -> Self {
        Self {
            file: file.to_string(),
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn make(&self, pos: Option<Pos>, field: &str, message: String) -> AppSpecError {
        AppSpecError {
            file: self.file.clone(),
            line: pos.map(|p| p.line),
            col: pos.map(|p| p.col),
            field: field.to_string(),
            message,
        }
    }

    pub fn err(&mut self, pos: Pos, field: &str, message: impl Into<String>) {
        let e = self.make(Some(pos), field, message.into());
        self.errors.push(e);
    }

    pub fn err_nopos(&mut self, field: &str, message: impl Into<String>) {
        let e = self.make(None, field, message.into());
        self.errors.push(e);
    }

    pub fn warn(&mut self, pos: Pos, field: &str, message: impl Into<String>) {
        let w = self.make(Some(pos), field, message.into());
        self.warnings.push(w);
    }
}

/// A mapping node's entries, with lookups by key. With duplicate keys (already reported as
/// errors) the last one is used, as YAML 1.1 loaders do.
#[derive(Clone, Copy)]
pub(crate) struct Fields<'a> {
    pub entries: &'a [(Node, Node)],
    pub pos: Pos,
}

impl<'a> Fields<'a> {
    /// The value of `key`, with null treated as absent.
    pub fn get(&self, key: &str) -> Option<&'a Node> {
        self.entries
            .iter()
            .rev()
            .find(|(k, _)| k.as_scalar() == Some(key))
            .map(|(_, v)| v)
            .filter(|v| !v.is_null())
    }

    /// Warns about keys outside `known`: they are ignored, as the official agent does, but a
    /// misspelt key (`timout:`) deserves a word.
    pub fn warn_unknown(&self, ctx: &mut Ctx, path: &str, known: &[&str]) {
        for (k, _) in self.entries {
            let name = k.as_scalar().unwrap_or_default();
            if !known.contains(&name) {
                ctx.warn(
                    k.pos,
                    &join(path, name),
                    format!("unknown key ignored (known keys: {})", known.join(", ")),
                );
            }
        }
    }
}

/// `a` + `.b`, or just `b` at the top.
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

pub(crate) fn expect_map<'a>(
    ctx: &mut Ctx,
    node: &'a Node,
    field: &str,
    what: &str,
) -> Option<Fields<'a>> {
    match &node.kind {
        NodeKind::Map(entries) => Some(Fields {
            entries,
            pos: node.pos,
        }),
        _ => {
            ctx.err(
                node.pos,
                field,
                format!("expected {what}, found {}", node.describe()),
            );
            None
        }
    }
}

pub(crate) fn expect_seq<'a>(
    ctx: &mut Ctx,
    node: &'a Node,
    field: &str,
    what: &str,
) -> Option<&'a [Node]> {
    match &node.kind {
        NodeKind::Seq(items) => Some(items),
        _ => {
            ctx.err(
                node.pos,
                field,
                format!("expected {what}, found {}", node.describe()),
            );
            None
        }
    }
}

/// A text value; numbers and booleans count as their written text.
pub(crate) fn expect_text(ctx: &mut Ctx, node: &Node, field: &str, what: &str) -> Option<String> {
    match &node.kind {
        NodeKind::Scalar { text, .. } => Some(text.clone()),
        _ => {
            ctx.err(
                node.pos,
                field,
                format!("expected {what}, found {}", node.describe()),
            );
            None
        }
    }
}

/// An optional text field of a mapping.
pub(crate) fn opt_text(
    ctx: &mut Ctx,
    fields: Fields<'_>,
    key: &str,
    path: &str,
    what: &str,
) -> Option<String> {
    let node = fields.get(key)?;
    expect_text(ctx, node, &join(path, key), what)
}

/// YAML 1.1 / 1.2 boolean spellings, case-insensitive.
pub(crate) fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "y" => Some(true),
        "false" | "no" | "off" | "n" => Some(false),
        _ => None,
    }
}

/// Whether a relative path climbs out of its root with `..` (`a/../..`, `../x`).
pub(crate) fn escapes_root(path: &str) -> bool {
    let mut depth: i64 = 0;
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            _ => depth += 1,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        for (p, esc) in [
            ("scripts/a.sh", false),
            ("/", false),
            ("./a/../b", false),
            ("../a", true),
            ("a/../../b", true),
            ("/../etc/passwd", true),
            ("a/..", false),
            ("..", true),
        ] {
            assert_eq!(escapes_root(p), esc, "{p}");
        }
    }

    #[test]
    fn bools() {
        assert_eq!(parse_bool("True"), Some(true));
        assert_eq!(parse_bool("no"), Some(false));
        assert_eq!(parse_bool("maybe"), None);
    }
}
