//! PURE: YAML text -> a small positioned node tree, built from `saphyr-parser` events.
//!
//! The tree keeps every scalar as the text written in the file together with its style
//! (plain or quoted); typing (numbers, booleans, modes) is left to the AppSpec layer so that
//! `mode: 0644` can be read as the digits the user wrote instead of a YAML 1.1 octal integer.
//!
//! Invariants, because appspecs come from untrusted bundles:
//! * aliases are refused, never expanded, so "billion laughs" documents cannot grow;
//! * nesting deeper than [`MAX_DEPTH`] stops the parse at once with an error;
//! * tags other than the YAML core-schema ones are refused;
//! * work is linear in the input: one pass over the events, duplicate keys found with a hash
//!   set per open mapping.
//!
//! Duplicate mapping keys are reported (with both lines) instead of "last wins", because a
//! second `AfterInstall:` block silently replacing the first loses scripts without a trace.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span, Tag};

use super::model::Pos;

/// Deeper nesting than any real appspec needs (the deepest is about 5).
pub const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    /// `quoted` is true for single/double-quoted and block (`|`, `>`) scalars and for `!!str`:
    /// the user asked for text, so no number/null typing applies.
    Scalar {
        text: String,
        quoted: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: NodeKind,
    /// 1-based line and column where the node starts.
    pub pos: Pos,
}

impl Node {
    /// YAML null: a plain `~`, `null` (any of the three spellings) or an empty plain value.
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, NodeKind::Scalar { text, quoted: false }
            if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    pub fn as_scalar(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// A short description of the node's shape for "expected X, found Y" messages.
    pub fn describe(&self) -> String {
        match &self.kind {
            NodeKind::Scalar { .. } if self.is_null() => "nothing (null)".to_string(),
            NodeKind::Scalar { text, .. } => format!("{text:?}"),
            NodeKind::Seq(_) => "a list".to_string(),
            NodeKind::Map(_) => "a mapping".to_string(),
        }
    }
}

/// A key that appears twice in one mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateKey {
    pub key: String,
    pub first: Pos,
    pub second: Pos,
}

/// The result of loading: the single document's root (None when the file holds no document
/// or only comments), the duplicate keys found, and how many parser events were consumed
/// (exposed so tests can show the work is linear in the input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub root: Option<Node>,
    pub duplicate_keys: Vec<DuplicateKey>,
    pub events: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct YamlError {
    pub pos: Option<Pos>,
    pub message: String,
}

impl YamlError {
    fn at(pos: Pos, message: impl Into<String>) -> Self {
        Self {
            pos: Some(pos),
            message: message.into(),
        }
    }
}

fn pos_of(span: &Span) -> Pos {
    Pos {
        line: span.start.line(),
        col: span.start.col() + 1,
    }
}

fn from_scan(e: &ScanError) -> YamlError {
    let m = e.marker();
    YamlError::at(
        Pos {
            line: m.line(),
            col: m.col() + 1,
        },
        if e.info().contains("recursion limit") {
            format!(
                "nesting is deeper than the YAML parser allows (keep it under {MAX_DEPTH} levels)"
            )
        } else {
            format!("invalid YAML: {}", e.info())
        },
    )
}

/// An open collection on the builder's stack.
enum Frame {
    Seq {
        pos: Pos,
        items: Vec<Node>,
    },
    Map {
        pos: Pos,
        entries: Vec<(Node, Node)>,
        pending_key: Option<Node>,
        seen: HashMap<String, Pos>,
    },
}

/// Checks a tag against the few we understand; returns whether it forces a string.
fn check_tag(tag: Option<&Tag>, collection: Option<&str>, pos: Pos) -> Result<bool, YamlError> {
    let Some(tag) = tag else { return Ok(false) };
    let known = tag.is_yaml_core_schema()
        && match collection {
            Some(kind) => tag.suffix == kind,
            None => matches!(
                tag.suffix.as_str(),
                "str" | "int" | "float" | "bool" | "null"
            ),
        };
    if !known {
        return Err(YamlError::at(
            pos,
            format!("the YAML tag {tag} is not supported in an appspec; remove it"),
        ));
    }
    Ok(tag.suffix == "str")
}

/// Parses `text` into a [`Document`]. Syntax errors, aliases, unknown tags, non-scalar keys,
/// several documents and too deep nesting stop the load with one error.
pub fn load(text: &str) -> Result<Document, YamlError> {
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<Node> = None;
    let mut docs = 0usize;
    let mut duplicate_keys = Vec::new();
    let mut events = 0usize;

    while let Some(next) = parser.next_event() {
        let (event, span) = next.map_err(|e| from_scan(&e))?;
        events += 1;
        let pos = pos_of(&span);
        let finished: Node = match event {
            Event::StreamStart | Event::Nothing | Event::DocumentEnd => continue,
            Event::StreamEnd => break,
            Event::DocumentStart(_) => {
                docs += 1;
                if docs > 1 {
                    return Err(YamlError::at(
                        pos,
                        "the file holds more than one YAML document (a second `---`); an appspec is one document",
                    ));
                }
                continue;
            }
            Event::Alias(_) => {
                return Err(YamlError::at(
                    pos,
                    "YAML aliases (*name) are not supported in an appspec; write the value out",
                ))
            }
            Event::Scalar(value, style, _anchor, tag) => {
                let forced = check_tag(tag.as_deref(), None, pos)?;
                Node {
                    kind: NodeKind::Scalar {
                        text: value.into_owned(),
                        quoted: forced || style != ScalarStyle::Plain,
                    },
                    pos,
                }
            }
            Event::SequenceStart(_, ref tag) | Event::MappingStart(_, ref tag) => {
                let is_seq = matches!(event, Event::SequenceStart(..));
                check_tag(
                    tag.as_deref(),
                    Some(if is_seq { "seq" } else { "map" }),
                    pos,
                )?;
                if stack.len() >= MAX_DEPTH {
                    return Err(YamlError::at(
                        pos,
                        format!("nesting is deeper than {MAX_DEPTH} levels"),
                    ));
                }
                stack.push(if is_seq {
                    Frame::Seq {
                        pos,
                        items: Vec::new(),
                    }
                } else {
                    Frame::Map {
                        pos,
                        entries: Vec::new(),
                        pending_key: None,
                        seen: HashMap::new(),
                    }
                });
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Frame::Seq { pos, items }) => Node {
                    kind: NodeKind::Seq(items),
                    pos,
                },
                Some(Frame::Map { pos, entries, .. }) => Node {
                    kind: NodeKind::Map(entries),
                    pos,
                },
                None => {
                    return Err(YamlError::at(
                        pos,
                        "invalid YAML: unbalanced collection end",
                    ))
                }
            },
        };
        match stack.last_mut() {
            None => root = Some(finished),
            Some(Frame::Seq { items, .. }) => items.push(finished),
            Some(Frame::Map {
                entries,
                pending_key,
                seen,
                ..
            }) => match pending_key.take() {
                Some(key) => entries.push((key, finished)),
                None => {
                    let Some(name) = finished.as_scalar() else {
                        return Err(YamlError::at(
                            finished.pos,
                            "a mapping key must be plain text, not a list or mapping",
                        ));
                    };
                    if let Some(first) = seen.get(name) {
                        duplicate_keys.push(DuplicateKey {
                            key: name.to_string(),
                            first: *first,
                            second: finished.pos,
                        });
                    } else {
                        seen.insert(name.to_string(), finished.pos);
                    }
                    *pending_key = Some(finished);
                }
            },
        }
    }
    Ok(Document {
        root,
        duplicate_keys,
        events,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(node: &Node) -> (&str, bool) {
        match &node.kind {
            NodeKind::Scalar { text, quoted } => (text, *quoted),
            other => panic!("not a scalar: {other:?}"),
        }
    }

    fn map(node: &Node) -> &[(Node, Node)] {
        match &node.kind {
            NodeKind::Map(m) => m,
            other => panic!("not a map: {other:?}"),
        }
    }

    #[test]
    fn keeps_plain_scalar_source_text_and_positions() {
        let doc = load("mode: 0644\nq: \"0644\"\nempty:\n").unwrap();
        let root = doc.root.unwrap();
        let m = map(&root);
        assert_eq!(scalar(&m[0].1), ("0644", false));
        assert_eq!(m[0].1.pos, Pos { line: 1, col: 7 });
        assert_eq!(scalar(&m[1].1), ("0644", true));
        assert_eq!(m[1].0.pos, Pos { line: 2, col: 1 });
        assert!(m[2].1.is_null());
    }

    #[test]
    fn refuses_aliases_unknown_tags_and_complex_keys() {
        let e = load("a: &x [1]\nb: *x\n").unwrap_err();
        assert!(e.message.contains("aliases"), "{e}");
        assert_eq!(e.pos.unwrap().line, 2);
        let e = load("a: !ruby/object:Foo {}\n").unwrap_err();
        assert!(e.message.contains("tag"), "{e}");
        let e = load("? [a]\n: b\n").unwrap_err();
        assert!(e.message.contains("key"), "{e}");
        assert!(load("a: !!str 0644\n").unwrap().root.is_some());
    }

    #[test]
    fn str_tag_forces_text() {
        let root = load("a: !!str 0644\n").unwrap().root.unwrap();
        assert_eq!(scalar(&map(&root)[0].1), ("0644", true));
    }

    #[test]
    fn reports_duplicate_keys_with_both_lines() {
        let doc = load("a: 1\nb: 2\na: 3\n").unwrap();
        assert_eq!(
            doc.duplicate_keys,
            vec![DuplicateKey {
                key: "a".into(),
                first: Pos { line: 1, col: 1 },
                second: Pos { line: 3, col: 1 }
            }]
        );
    }

    #[test]
    fn depth_limit_stops_early() {
        for deep in [
            "[".repeat(100_000),
            "- ".repeat(100_000),
            "{a: ".repeat(100_000),
        ] {
            let e = load(&deep).unwrap_err();
            assert!(e.message.contains("nesting"), "{e}");
            assert_eq!(e.pos.map(|p| p.line), Some(1));
        }
        let ok = format!("{}1{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(load(&ok).is_ok());
    }

    #[test]
    fn empty_and_comment_only_have_no_root() {
        assert_eq!(load("").unwrap().root, None);
        assert_eq!(load("# nothing\n\n").unwrap().root, None);
    }

    #[test]
    fn second_document_is_refused() {
        let e = load("a: 1\n---\nb: 2\n").unwrap_err();
        assert!(e.message.contains("more than one"), "{e}");
    }
}
