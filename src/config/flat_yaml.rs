//! Reads a YAML document that is one flat mapping of scalar keys to scalar values (the
//! agent's configuration files), keeping each value's position for error messages.
//!
//! Invariant: never expands aliases and never recurses, so hostile input costs linear time.

use saphyr_parser::{Event, Parser, ScalarStyle};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A scalar as written; `plain` is false for quoted and block scalars.
    Scalar { text: String, plain: bool },
    /// A sequence of scalars (e.g. the retired `plugins` key).
    List(Vec<String>),
    /// Anything nested deeper than that.
    Nested,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: Value,
    pub line: usize,
    pub col: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlatYamlError {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

fn fail<T>(line: usize, col: usize, message: impl Into<String>) -> Result<T, FlatYamlError> {
    Err(FlatYamlError {
        line,
        col,
        message: message.into(),
    })
}

/// Parses `text`; an empty document is an empty mapping.
pub fn parse(text: &str) -> Result<Vec<Entry>, FlatYamlError> {
    let mut entries = Vec::new();
    // depth 0: outside the top mapping; 1: in it; >1: inside a nested value being skipped.
    let mut depth = 0usize;
    let mut seen_top = false;
    let mut pending_key: Option<(String, usize, usize)> = None;
    let mut list: Option<Vec<String>> = None;
    for item in Parser::new_from_str(text) {
        let (event, span) = match item {
            Ok(x) => x,
            Err(e) => {
                return fail(
                    e.marker().line(),
                    e.marker().col() + 1,
                    e.info().to_string(),
                );
            }
        };
        let (line, col) = (span.start.line(), span.start.col() + 1);
        match event {
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
            Event::DocumentStart(_) => {
                if seen_top {
                    return fail(line, col, "expected a single YAML document");
                }
            }
            Event::Alias(_) => return fail(line, col, "aliases (*name) are not supported here"),
            Event::MappingStart(..) if depth == 0 => {
                if seen_top {
                    return fail(line, col, "expected a single YAML document");
                }
                seen_top = true;
                depth = 1;
            }
            Event::MappingStart(..) | Event::SequenceStart(..) if depth >= 2 => {
                depth += 1;
                list = None;
            }
            Event::SequenceStart(..) if depth == 1 && pending_key.is_some() => {
                depth = 2;
                list = Some(Vec::new());
            }
            Event::MappingStart(..) if depth == 1 && pending_key.is_some() => {
                depth = 2;
                list = None;
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                return fail(line, col, "a key must be a plain word such as `root_dir`");
            }
            Event::SequenceEnd | Event::MappingEnd => {
                depth = depth.saturating_sub(1);
                if depth == 1 {
                    if let Some((key, kl, kc)) = pending_key.take() {
                        let value = match list.take() {
                            Some(items) => Value::List(items),
                            None => Value::Nested,
                        };
                        entries.push(Entry {
                            key,
                            value,
                            line: kl,
                            col: kc,
                        });
                    }
                }
            }
            Event::Scalar(text, style, _, _) => {
                if depth == 0 {
                    if text.trim().is_empty() && style == ScalarStyle::Plain {
                        continue;
                    }
                    return fail(line, col, "expected a mapping of `key: value` lines");
                }
                if depth >= 2 {
                    if let Some(l) = list.as_mut() {
                        l.push(text.into_owned());
                    }
                    continue;
                }
                match pending_key.take() {
                    None => pending_key = Some((text.into_owned(), line, col)),
                    Some((key, kl, kc)) => entries.push(Entry {
                        key,
                        value: Value::Scalar {
                            text: text.into_owned(),
                            plain: style == ScalarStyle::Plain,
                        },
                        line: kl,
                        col: kc,
                    }),
                }
            }
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_mapping_with_legacy_keys_and_lists() {
        let e = parse("---\n:log_dir: '/var/log/x'\nverbose: false\nplugins:\n  - codedeploy\n")
            .unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].key, ":log_dir");
        assert_eq!(
            e[0].value,
            Value::Scalar {
                text: "/var/log/x".into(),
                plain: false
            }
        );
        assert_eq!((e[1].line, e[1].col), (3, 1));
        assert_eq!(e[2].value, Value::List(vec!["codedeploy".into()]));
    }

    #[test]
    fn empty_and_bad_documents() {
        assert_eq!(parse("").unwrap(), vec![]);
        assert_eq!(parse("# only a comment\n").unwrap(), vec![]);
        assert!(parse("- a\n- b\n").is_err());
        assert!(parse("a: [1\n").is_err());
        assert!(parse("a: &x 1\nb: *x\n").is_err());
        let nested = parse("a:\n  b:\n    c: 1\nd: 2\n").unwrap();
        assert_eq!(nested[0].value, Value::Nested);
        assert_eq!(nested[1].key, "d");
    }
}
