//! Robustness of the parser on untrusted input: no panics on arbitrary text, a quick clear
//! error on absurd nesting, and work (parser events) growing linearly with the input.

use codedeploy_agent::appspec::{parse, yaml};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn parse_never_panics_on_arbitrary_text(text in "\\PC{0,200}") {
        let _ = parse("fuzz.yml", &text);
    }

    #[test]
    fn parse_never_panics_on_yamlish_text(
        text in "([ \\-:\\[\\]{},&*!|>'\"#?\\n\\t]|[a-z0-9]{1,4}|version: 0.0\\n|os: linux\\n|hooks:\\n|  AfterInstall:\\n|    - location: a\\n){0,60}"
    ) {
        if let Err(errs) = parse("fuzz.yml", &text) {
            // An error list is never empty and always names the file.
            prop_assert!(!errs.is_empty());
            for e in &errs {
                prop_assert!(e.to_string().starts_with("fuzz.yml"));
            }
        }
    }
}

/// Values that stress the typing layer: wrong shapes, odd numbers, nulls, huge numbers.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("~".to_string()),
        Just("[]".to_string()),
        Just("{}".to_string()),
        Just("[a, [b]]".to_string()),
        Just("{location: x, timeout: 99999999999999999999}".to_string()),
        Just("\"\"".to_string()),
        "[-+0-9a-z.:]{0,12}",
        "'[ -~]{0,12}'",
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("version".to_string()),
        Just("os".to_string()),
        Just("files".to_string()),
        Just("hooks".to_string()),
        Just("permissions".to_string()),
        Just("file_exists_behavior".to_string()),
        Just("source".to_string()),
        Just("destination".to_string()),
        Just("location".to_string()),
        Just("timeout".to_string()),
        Just("object".to_string()),
        Just("mode".to_string()),
        Just("acls".to_string()),
        Just("context".to_string()),
        Just("range".to_string()),
        Just("type".to_string()),
        Just("AfterInstall".to_string()),
        Just("sudo".to_string()),
    ]
}

/// Appspec-shaped documents: known keys nested up to three levels, random values.
fn appspec_like() -> impl Strategy<Value = String> {
    let leaf = (key(), value()).prop_map(|(k, v)| format!("{k}: {v}"));
    leaf.prop_recursive(3, 40, 6, |inner| {
        (key(), prop::collection::vec(inner, 1..6), any::<bool>()).prop_map(|(k, items, list)| {
            let body: Vec<String> = items
                .iter()
                .map(|i| {
                    let i = i.replace('\n', "\n    ");
                    if list {
                        format!("  - {i}")
                    } else {
                        format!("  {i}")
                    }
                })
                .collect();
            format!("{k}:\n{}", body.join("\n"))
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn typing_never_panics_on_appspec_shaped_input(
        parts in prop::collection::vec(appspec_like(), 0..8)
    ) {
        let text = format!("version: 0.0\nos: linux\n{}\n", parts.join("\n"));
        match parse("shaped.yml", &text) {
            Ok(_) => {}
            Err(errs) => {
                prop_assert!(!errs.is_empty());
                for e in &errs {
                    prop_assert!(e.to_string().starts_with("shaped.yml"));
                }
            }
        }
    }
}

#[test]
fn deep_nesting_is_refused_with_a_position() {
    let inputs = [
        "[".repeat(100_000),
        "- ".repeat(100_000),
        "{a: ".repeat(100_000),
        (0..100_000)
            .map(|i| format!("{}- x\n", " ".repeat(i % 200)))
            .collect::<String>(),
        format!(
            "hooks:\n{}",
            (1..2000)
                .map(|i| format!("{}a:\n", " ".repeat(i)))
                .collect::<String>()
        ),
    ];
    for text in &inputs {
        let errs = parse("deep.yml", text).unwrap_err();
        assert!(errs.iter().all(|e| e.line.is_some()), "{errs}");
    }
}

#[test]
fn many_aliases_cannot_expand() {
    // The classic "billion laughs": refused at the first alias, nothing is expanded.
    let mut text = String::from("a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
    for i in 1..10 {
        let prev = (b'a' + i - 1) as char;
        let cur = (b'a' + i) as char;
        text.push_str(&format!(
            "{cur}: &{cur} [*{prev},*{prev},*{prev},*{prev},*{prev}]\n"
        ));
    }
    let errs = parse("laughs.yml", &text).unwrap_err();
    assert!(errs.to_string().contains("aliases"), "{errs}");
    assert_eq!(errs.0[0].line, Some(2));
}

/// Doubling the input doubles the events the builder consumes (within rounding), for
/// wide and long documents alike: the work per byte is constant.
#[test]
fn events_grow_linearly_with_input() {
    let shapes: [fn(usize) -> String; 3] = [
        |n| {
            let mut s = String::from("version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n");
            for i in 0..n {
                s.push_str(&format!("    - location: s{i}.sh\n      timeout: 1\n"));
            }
            s
        },
        |n| format!("k: [{}]\n", vec!["1"; n].join(", ")),
        |n| (0..n).map(|i| format!("key{i}: {{a: [x, y]}}\n")).collect(),
    ];
    for shape in shapes {
        let small = shape(2_000);
        let big = shape(4_000);
        let e1 = yaml::load(&small).unwrap().events as f64;
        let e2 = yaml::load(&big).unwrap().events as f64;
        let ratio = e2 / e1;
        assert!(
            (1.9..=2.1).contains(&ratio),
            "events {e1} -> {e2} (ratio {ratio})"
        );
        let bytes = big.len() as f64 / small.len() as f64;
        assert!(bytes > 1.9, "input ratio {bytes}");
    }
}
