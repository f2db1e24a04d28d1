//! Table-driven checks of every AppSpec validation rule through the public `parse`.

use codedeploy_agent::appspec::{
    parse, parse_detailed, AceKind, AppSpecError, FileExistsBehavior, Mode, Os,
    DEFAULT_SCRIPT_TIMEOUT_SECS,
};

const HEAD: &str = "version: 0.0\nos: linux\n";

fn errors_of(text: &str) -> Vec<AppSpecError> {
    match parse("appspec.yml", text) {
        Ok(spec) => panic!("expected errors, parsed {spec:?}\n---\n{text}"),
        Err(e) => e.0,
    }
}

/// (body after the version/os head, expected field, expected message part, expected line)
const BAD: &[(&str, &str, &str, usize)] = &[
    // top level
    ("files: {a: b}\n", "files", "expected a list", 3),
    ("file_exists_behavior: SOMETIMES\n", "file_exists_behavior", "DISALLOW, OVERWRITE or RETAIN", 3),
    // files
    ("files:\n  - destination: /opt/a\n", "files[0].source", "missing", 4),
    ("files:\n  - source: /\n", "files[0].destination", "missing", 4),
    ("files:\n  - source: /\n    destination: opt/a\n", "files[0].destination", "absolute", 5),
    ("files:\n  - source: ../etc\n    destination: /opt/a\n", "files[0].source", "climbs out", 4),
    ("files:\n  - source: ''\n    destination: /opt/a\n", "files[0].source", "empty", 4),
    ("files:\n  - /opt/a\n", "files[0]", "expected a mapping", 4),
    // hooks
    ("hooks:\n  - AfterInstall\n", "hooks", "expected a mapping of event name", 4),
    ("hooks:\n  Install:\n    - location: a.sh\n", "hooks.Install", "built into the agent", 4),
    ("hooks:\n  DownloadBundle:\n    - location: a.sh\n", "hooks.DownloadBundle", "built into the agent", 4),
    ("hooks:\n  afterinstall:\n    - location: a.sh\n", "hooks.afterinstall", "did you mean AfterInstall", 4),
    ("hooks:\n  after_install:\n    - location: a.sh\n", "hooks.after_install", "PascalCase", 4),
    ("hooks:\n  AfterInstall: scripts/a.sh\n", "hooks.AfterInstall", "expected a list of scripts", 4),
    ("hooks:\n  AfterInstall:\n    location: a.sh\n", "hooks.AfterInstall", "expected a list of scripts", 5),
    ("hooks:\n  AfterInstall:\n    - scripts/a.sh\n", "hooks.AfterInstall[0]", "bare text", 5),
    ("hooks:\n  AfterInstall:\n    - timeout: 5\n", "hooks.AfterInstall[0].location", "missing", 5),
    ("hooks:\n  AfterInstall:\n    - location: '  '\n", "hooks.AfterInstall[0].location", "empty", 5),
    ("hooks:\n  AfterInstall:\n    - location: ../../x.sh\n", "hooks.AfterInstall[0].location", "climbs out", 5),
    ("hooks:\n  AfterInstall:\n    - location: a.sh\n      timeout: soon\n", "hooks.AfterInstall[0].timeout", "whole number of seconds between 1 and 3600, found \"soon\"", 6),
    ("hooks:\n  AfterInstall:\n    - location: a.sh\n      timeout: 0\n", "hooks.AfterInstall[0].timeout", "between 1 and 3600", 6),
    ("hooks:\n  AfterInstall:\n    - location: a.sh\n      timeout: -5\n", "hooks.AfterInstall[0].timeout", "between 1 and 3600", 6),
    ("hooks:\n  AfterInstall:\n    - location: a.sh\n      timeout: 3601\n", "hooks.AfterInstall[0].timeout", "between 1 and 3600", 6),
    ("hooks:\n  AfterInstall:\n    - location: a.sh\n      timeout: 30.7\n", "hooks.AfterInstall[0].timeout", "whole number", 6),
    ("hooks:\n  AfterInstall:\n    - location: a.sh\n      timeout: 3000\n    - location: b.sh\n      timeout: 601\n", "hooks.AfterInstall", "adding up to 3601", 4),
    ("hooks:\n  AfterInstall:\n    - location: a.sh\n    - location: b.sh\n", "hooks.AfterInstall", "adding up to 7200", 4),
    ("hooks:\n  AfterInstall:\n    - location: a.sh\n      sudo: perhaps\n", "hooks.AfterInstall[0].sudo", "true or false", 6),
    ("hooks:\n  AfterInstall:\n    - location: a.sh\n      runas: [a]\n", "hooks.AfterInstall[0].runas", "expected a user name", 6),
    // permissions
    ("permissions:\n  object: /opt\n", "permissions", "expected a list", 4),
    ("permissions:\n  - mode: 644\n", "permissions[0].object", "missing", 4),
    ("permissions:\n  - object: ' '\n", "permissions[0].object", "absolute", 4),
    ("permissions:\n  - object: opt/app\n", "permissions[0].object", "absolute", 4),
    ("permissions:\n  - object: /opt\n    mode: 075x\n", "permissions[0].mode", "invalid character 'x'", 5),
    ("permissions:\n  - object: /opt\n    mode: 12345\n", "permissions[0].mode", "1 to 4 octal digits", 5),
    ("permissions:\n  - object: /opt\n    mode: 0o644\n", "permissions[0].mode", "invalid character 'o'", 5),
    ("permissions:\n  - object: /opt\n    mode: 689\n", "permissions[0].mode", "invalid character '8'", 5),
    ("permissions:\n  - object: /opt\n    type: file\n", "permissions[0].type", "expected a list of object types", 5),
    ("permissions:\n  - object: /opt\n    type: [file, socket]\n", "permissions[0].type[1]", "expected file or directory", 5),
    ("permissions:\n  - object: /opt\n    type: []\n", "permissions[0].type", "empty", 5),
    ("permissions:\n  - object: /opt\n    except: '*.tmp'\n", "permissions[0].except", "expected a list", 5),
    ("permissions:\n  - object: /opt\n    acls: u:bob:rwx\n", "permissions[0].acls", "expected a list", 5),
    ("permissions:\n  - object: /opt\n    acls:\n      - u:bob:7\n      - d:d:bob:rwx\n", "permissions[0].acls[1]", "invalid ACL entry", 7),
    ("permissions:\n  - object: /opt\n    acls:\n      - user:bob:rwxd\n", "permissions[0].acls[0]", "invalid character 'd'", 6),
    ("permissions:\n  - object: /opt\n    acls:\n      - u::7\n", "permissions[0].acls[0]", "use mode", 6),
    ("permissions:\n  - object: /opt\n    context:\n      name: system_u\n", "permissions[0].context.type", "missing", 6),
    ("permissions:\n  - object: /opt\n    context: httpd_t\n", "permissions[0].context", "expected a mapping", 5),
    ("permissions:\n  - object: /opt\n    context:\n      type: t\n      range: s3-s2:c0\n", "permissions[0].context.range", "below", 7),
    ("permissions:\n  - object: /opt\n    context:\n      type: t\n      range: s0:c0.c2,c1\n", "permissions[0].context.range", "duplicate categories", 7),
    // YAML level
    ("files: &f []\nhooks: *f\n", "", "aliases", 4),
    ("hooks:\n  AfterInstall: []\n  AfterInstall: []\n", "AfterInstall", "duplicate key", 5),
    ("files: !!binary aGk=\n", "", "tag", 3),
    ("files: [\n", "", "invalid YAML", 4),
];

#[test]
fn each_rule_names_field_line_and_reason() {
    for (body, field, part, line) in BAD {
        let text = format!("{HEAD}{body}");
        let errs = errors_of(&text);
        let hit = errs
            .iter()
            .find(|e| e.field == *field && e.message.contains(part));
        let Some(hit) = hit else {
            panic!("no error for field {field:?} containing {part:?} in:\n{text}\ngot: {errs:#?}");
        };
        assert_eq!(hit.line, Some(*line), "line of {field} in:\n{text}\n{hit}");
        assert!(hit.col.is_some(), "{hit}");
        let shown = hit.to_string();
        assert!(
            shown.starts_with(&format!("appspec.yml:{line}:")),
            "{shown}"
        );
    }
}

#[test]
fn top_level_rules() {
    let cases: &[(&str, &str, &str)] = &[
        ("", "", "empty"),
        ("   \n\n", "", "empty"),
        ("# only a comment\n", "", "empty"),
        ("- a\n", "", "expected a mapping"),
        ("os: linux\n", "version", "missing"),
        ("version: 1.0\nos: linux\n", "version", "expected 0.0"),
        ("version: '0.1'\nos: linux\n", "version", "expected 0.0"),
        ("version: 0.0\n", "os", "missing"),
        (
            "version: 0.0\nos: windows\n",
            "os",
            "this agent deploys to Linux",
        ),
        ("version: 0.0\nos: solaris\n", "os", "expected linux"),
    ];
    for (text, field, part) in cases {
        let errs = errors_of(text);
        assert!(
            errs.iter()
                .any(|e| e.field == *field && e.message.contains(part)),
            "{text:?}: {errs:#?}"
        );
    }
}

#[test]
fn accepted_spellings() {
    for v in ["0.0", "\"0.0\"", "'0.0'", "0", "0.00"] {
        let spec = parse("a.yml", &format!("version: {v}\nos: linux\n")).unwrap();
        assert_eq!(spec.os, Os::Linux, "{v}");
    }
    let spec = parse(
        "a.yml",
        "version: 0.0\nos: Linux\nfile_exists_behavior: overwrite\n",
    )
    .unwrap();
    assert_eq!(
        spec.file_exists_behavior,
        Some(FileExistsBehavior::Overwrite)
    );
    for (m, bits) in [
        ("644", 0o644),
        ("0644", 0o644),
        ("\"0644\"", 0o644),
        ("0755", 0o755),
        ("4755", 0o4755),
        ("1777", 0o1777),
        ("7", 0o7),
        ("!!str 0600", 0o600),
    ] {
        let text = format!("{HEAD}permissions:\n  - object: /opt/a\n    mode: {m}\n");
        let spec = parse("a.yml", &text).unwrap();
        assert_eq!(spec.permissions[0].mode, Some(Mode(bits)), "{m}");
    }
    for (t, secs) in [("30", 30), ("\"30\"", 30), ("3600", 3600), ("1", 1)] {
        let text =
            format!("{HEAD}hooks:\n  AfterInstall:\n    - location: a.sh\n      timeout: {t}\n");
        let spec = parse("a.yml", &text).unwrap();
        assert_eq!(
            spec.hooks.get("AfterInstall").unwrap()[0].timeout_secs,
            secs,
            "{t}"
        );
    }
}

#[test]
fn full_permission_entry() {
    let text = format!(
        "{HEAD}permissions:\n  - object: /opt/app\n    pattern: '*.sh'\n    except: ['x.sh']\n    owner: henry\n    group: 1000\n    mode: 6763\n    acls:\n      - u:henry:7\n      - d:g:manager:rw\n    context:\n      name: system_u\n      type: httpd_sys_content_t\n      range: s3-s5:c0.c7,c13\n    type:\n      - file\n"
    );
    let spec = parse("a.yml", &text).unwrap();
    let p = &spec.permissions[0];
    assert_eq!(p.object, "/opt/app");
    assert_eq!(p.pattern, "*.sh");
    assert_eq!(p.except, vec!["x.sh".to_string()]);
    assert_eq!(p.owner.as_deref(), Some("henry"));
    assert_eq!(p.group.as_deref(), Some("1000"));
    let m = p.mode.unwrap();
    assert!(m.setuid() && m.setgid() && !m.sticky());
    assert_eq!(p.acls[0].kind, AceKind::User);
    assert_eq!(p.acls[1].to_string(), "default:group:manager:rw-");
    let c = p.context.as_ref().unwrap();
    assert_eq!(c.user.as_deref(), Some("system_u"));
    assert_eq!(c.type_, "httpd_sys_content_t");
    assert_eq!(c.range.as_ref().unwrap().to_string(), "s3-s5:c0.c7,c13");
    assert!(p.types.file && !p.types.directory);
    assert_eq!(p.pos.line, 4);
    // defaults
    let spec = parse(
        "a.yml",
        &format!("{HEAD}permissions:\n  - object: /opt\n    pattern:\n"),
    )
    .unwrap();
    let p = &spec.permissions[0];
    assert_eq!(p.pattern, "**");
    assert!(p.types.file && p.types.directory && p.except.is_empty() && p.mode.is_none());
}

#[test]
fn hooks_shape_and_defaults() {
    let text = format!(
        "{HEAD}hooks:\n  ApplicationStop:\n  BeforeInstall: []\n  AfterInstall:\n    - location: ' /scripts/a.sh '\n      runas: ' deploy '\n      sudo: yes\n      timeout: 100\n    - location: b.sh\n      timeout: 200\n  ValidateService:\n    - location: v.sh\n  MyCustomEvent:\n    - location: c.sh\n      timeout: 10\n"
    );
    let parsed = parse_detailed("a.yml", &text).unwrap();
    let spec = parsed.spec;
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    assert_eq!(
        spec.hooks.get("ApplicationStop"),
        None,
        "null hook is absent"
    );
    assert_eq!(
        spec.hooks.get("BeforeInstall"),
        Some(&[][..]),
        "empty list kept"
    );
    let after = spec.hooks.get("AfterInstall").unwrap();
    assert_eq!(after.len(), 2);
    assert_eq!(after[0].location, "/scripts/a.sh");
    assert_eq!(after[0].runas.as_deref(), Some("deploy"));
    assert!(after[0].sudo && !after[1].sudo);
    assert_eq!((after[0].timeout_secs, after[1].timeout_secs), (100, 200));
    assert_eq!(after[1].location, "b.sh");
    assert_eq!(after[1].pos.line, 11);
    let validate = spec.hooks.get("ValidateService").unwrap();
    assert_eq!(validate[0].timeout_secs, DEFAULT_SCRIPT_TIMEOUT_SECS);
    assert_eq!(validate[0].runas, None);
    let order: Vec<&str> = spec.hooks.events().collect();
    assert_eq!(
        order,
        [
            "BeforeInstall",
            "AfterInstall",
            "ValidateService",
            "MyCustomEvent"
        ]
    );
    assert_eq!(
        spec.hooks.custom_events().collect::<Vec<_>>(),
        ["MyCustomEvent"]
    );
}

#[test]
fn files_in_order_and_unknown_keys_warn() {
    let text = format!(
        "{HEAD}description: demo\nfiles:\n  - source: /\n    destination: /opt/app\n  - source: config/app.conf\n    destination: /etc/app\n    mode: 644\n"
    );
    let parsed = parse_detailed("a.yml", &text).unwrap();
    let files = &parsed.spec.files;
    assert_eq!(files.len(), 2);
    assert_eq!(
        (files[0].source.as_str(), files[0].destination.as_str()),
        ("/", "/opt/app")
    );
    assert_eq!(files[1].source, "config/app.conf");
    assert_eq!(files[1].pos.line, 7);
    let fields: Vec<&str> = parsed.warnings.iter().map(|w| w.field.as_str()).collect();
    assert_eq!(fields, ["description", "files[1].mode"]);
}

#[test]
fn every_problem_is_reported_in_file_order() {
    let text = "version: 2\nos: windows\nfiles:\n  - source: /\nhooks:\n  AfterInstall:\n    - location: a.sh\n      timeout: soon\n  Install: []\npermissions:\n  - object: /opt\n    mode: 999\n";
    let errs = errors_of(text);
    let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "version",
            "os",
            "files[0].destination",
            "hooks.AfterInstall[0].timeout",
            "hooks.Install",
            "permissions[0].mode"
        ]
    );
    let lines: Vec<usize> = errs.iter().map(|e| e.line.unwrap()).collect();
    assert_eq!(lines, [1, 2, 4, 8, 9, 12]);
}

#[test]
fn display_format() {
    let errs = errors_of(&format!(
        "{HEAD}hooks:\n  AfterInstall:\n    - location: a.sh\n      timeout: soon\n"
    ));
    assert_eq!(
        errs[0].to_string(),
        "appspec.yml:6:16: hooks.AfterInstall[0].timeout: expected a whole number of seconds between 1 and 3600, found \"soon\""
    );
}

#[test]
fn edge_inputs_accepted() {
    let cases = [
        "\u{feff}version: 0.0\nos: linux\n",
        "version: 0.0\r\nos: linux\r\nhooks:\r\n  AfterInstall:\r\n    - location: a.sh\r\n      timeout: 5\r\n",
        "---\nversion: 0.0 # the only version\nos: linux\nhooks: {}\nfiles: []\npermissions:\n",
        "{version: 0.0, os: linux, hooks: {AfterInstall: [{location: a.sh, timeout: 1}]}}\n",
        "version: !!float 0.0\nos: !!str linux\n",
    ];
    for text in cases {
        let spec = parse("a.yml", text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        assert_eq!(spec.os, Os::Linux);
    }
}
