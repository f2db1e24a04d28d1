//! The fixture corpus: the seed app's appspec validates cleanly, and every broken appspec
//! under `tests/fixtures/appspec/broken/` is refused naming the field its first line expects
//! (`# expect: <field>`, empty for document-level problems) and a line number.

use std::path::Path;

use codedeploy_agent::appspec::{parse, parse_file, Os};

fn fixtures() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/appspec"
    ))
}

#[test]
fn seed_app_validates_cleanly() {
    let spec = parse_file(&fixtures().join("seed-app.yml")).unwrap();
    assert_eq!(spec.os, Os::Linux);
    assert_eq!(spec.files.len(), 1);
    assert_eq!(spec.files[0].source, "/");
    assert_eq!(spec.files[0].destination, "/opt/myapp");
    let events: Vec<&str> = spec.hooks.events().collect();
    assert_eq!(
        events,
        [
            "BeforeInstall",
            "AfterInstall",
            "ApplicationStart",
            "ValidateService"
        ]
    );
    let after = spec.hooks.get("AfterInstall").unwrap();
    assert_eq!(after[0].location, "scripts/install_dependencies.sh");
    assert_eq!(after[0].timeout_secs, 120);
    assert_eq!(spec.hooks.custom_events().count(), 0);
}

#[test]
fn broken_corpus_is_refused_with_field_and_line() {
    let dir = fixtures().join("broken");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    names.sort();
    assert!(names.len() >= 30, "corpus has only {} files", names.len());
    for path in names {
        let text = std::fs::read_to_string(&path).unwrap();
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect:"))
            .unwrap_or_else(|| panic!("{} lacks an `# expect:` first line", path.display()))
            .trim();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let errs = match parse(&name, &text) {
            Ok(spec) => panic!("{name} was accepted: {spec:?}"),
            Err(e) => e,
        };
        let hit = errs.iter().find(|e| e.field == expect);
        let Some(hit) = hit else {
            panic!("{name}: no error for field {expect:?}; got:\n{errs}");
        };
        let line = hit
            .line
            .unwrap_or_else(|| panic!("{name}: no line in {hit}"));
        assert!(line >= 2, "{name}: line {line} is the expect comment");
        let shown = hit.to_string();
        assert!(
            shown.starts_with(&format!("{name}:{line}:")),
            "{name}: message does not lead with file:line: {shown}"
        );
        if !expect.is_empty() {
            assert!(shown.contains(&format!(": {expect}: ")), "{shown}");
        }
    }
}

#[test]
fn read_errors_name_the_file() {
    let missing = fixtures().join("no-such-appspec.yml");
    let errs = parse_file(&missing).unwrap_err();
    assert_eq!(errs.len(), 1);
    assert!(errs.to_string().contains("no-such-appspec.yml"), "{errs}");
    assert!(errs.to_string().contains("cannot read"), "{errs}");
}
