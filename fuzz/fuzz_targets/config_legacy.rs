//! The legacy `:key: value` form of codedeployagent.yml (the Ruby agent's own): each input is
//! read as written and again with every `key:` line turned into `:key:`. When every line is a
//! simple `key: value` line, both spellings must give the same settings.
#![no_main]

use std::path::Path;

use codedeploy_agent::config::parse;
use libfuzzer_sys::fuzz_target;

const FILE: &str = "codedeployagent.yml";

/// `key:` at the start of a line, the key made of the characters configuration keys use.
fn simple_key(line: &str) -> Option<usize> {
    let end = line.find(':')?;
    let key = &line[..end];
    let rest = &line[end + 1..];
    let ok = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && (rest.is_empty() || rest.starts_with(' '));
    ok.then_some(end)
}

fn legacy(text: &str) -> (String, bool) {
    let mut out = String::with_capacity(text.len() + 64);
    let mut all_simple = true;
    for line in text.split('\n') {
        if simple_key(line).is_some() {
            out.push(':');
        } else if !line.trim().is_empty() {
            all_simple = false;
        }
        out.push_str(line);
        out.push('\n');
    }
    (out, all_simple)
}

fuzz_target!(init: fuzz_support::init(), |data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = Path::new(FILE);
    let plain = parse(file, text);
    let (old_form, all_simple) = legacy(text);
    let old = parse(file, &old_form);
    // Plain values after `key: ` may still hold YAML that the `:` changes nothing about, but
    // a value starting with a quote or bracket spans lines differently; compare only when
    // every value is a one-line plain scalar too.
    let one_line_plain = text.split('\n').all(|l| {
        simple_key(l).is_none_or(|end| {
            let v = l[end + 1..].trim_start();
            !v.starts_with(['"', '\'', '[', '{', '|', '>', '&', '*', '!', '%', '@', '`', '#'])
        })
    });
    if all_simple && one_line_plain {
        match (&plain, &old) {
            (Ok(a), Ok(b)) => assert_eq!(a.config, b.config, "the :key: form reads differently"),
            (Err(_), Err(_)) => {}
            _ => panic!("one form accepted, the other refused: {plain:?} / {old:?}"),
        }
    }
});
