use super::*;

fn p(text: &str) -> Result<Loaded, ConfigError> {
    parse(Path::new("/etc/x.yml"), text)
}

#[test]
fn legacy_and_plain_forms_match() {
    let legacy = p(":log_dir: '/var/log/aws/codedeploy-agent/'\n:pid_dir: '/opt/codedeploy-agent/state/.pid/'\n:program_name: codedeploy-agent\n:root_dir: '/opt/codedeploy-agent/deployment-root'\n:verbose: false\n:wait_between_runs: 1\n:proxy_uri:\n:max_revisions: 5\n").unwrap();
    let plain = p("log_dir: /var/log/aws/codedeploy-agent/\npid_dir: /opt/codedeploy-agent/state/.pid/\nprogram_name: codedeploy-agent\nroot_dir: /opt/codedeploy-agent/deployment-root\nverbose: false\nwait_between_runs: 1\nproxy_uri:\nmax_revisions: 5\n").unwrap();
    assert_eq!(legacy.config, plain.config);
    assert_eq!(legacy.config.wait_between_runs, 1);
    assert_eq!(legacy.config.proxy_uri, crate::proxy::Setting::Unset);
    assert!(legacy.notes.is_empty());
}

#[test]
fn defaults_match_the_official_table() {
    let c = p("").unwrap().config;
    assert_eq!(c.wait_between_runs, 30);
    assert_eq!(c.max_revisions, 5);
    assert_eq!(c.http_read_timeout, 80);
    assert_eq!(c.kill_agent_max_wait_time_seconds, 7200);
    assert_eq!(c.ongoing_deployment_tracking, "ongoing-deployment");
    assert!(c.enable_deployments_log);
    assert!(!c.enable_auth_policy);
    assert!(!c.install_by_hard_link, "copies unless asked (ADR 0011)");
    assert!(
        p("install_by_hard_link: true\n")
            .unwrap()
            .config
            .install_by_hard_link
    );
    assert_eq!(c.codedeploy_test_profile, "prod");
    assert_eq!(
        c.on_premises_config_file,
        Path::new(DEFAULT_ON_PREMISES_FILE)
    );
}

#[test]
fn duplicate_keys_last_wins() {
    let c = p("verbose: true\nverbose: false\n\nmax_revisions: 2\nmax_revisions: 3\n")
        .unwrap()
        .config;
    assert!(!c.verbose);
    assert_eq!(c.max_revisions, 3);
}

#[test]
fn unknown_and_retired_keys_are_noted_and_ignored() {
    let l = p("children: 1\nplugins:\n  - codedeploy\nfrobnicate: 3\n").unwrap();
    assert_eq!(l.notes.len(), 3, "{:?}", l.notes);
    assert!(l.notes[0].contains("children"));
    assert!(l.notes[2].contains("unknown setting frobnicate"));
}

#[test]
fn invalid_values_name_file_key_line_and_expectation() {
    let cases = [
        ("max_revisions: -1\n", "max_revisions", "0 or more"),
        (
            "\nwait_between_runs: \"soon\"\n",
            "wait_between_runs",
            "whole number",
        ),
        (
            "deploy_control_endpoint: ftp://x\n",
            "deploy_control_endpoint",
            "http:// or https://",
        ),
        (
            "s3_endpoint_override: localhost:9000\n",
            "s3_endpoint_override",
            "http",
        ),
        ("root_dir: relative/dir\n", "root_dir", "absolute"),
        ("verbose: maybe\n", "verbose", "true or false"),
        (
            "install_by_hard_link: yes please\n",
            "install_by_hard_link",
            "true or false",
        ),
        ("proxy_uri: [a, b]\n", "proxy_uri", "single value"),
    ];
    for (text, key, want) in cases {
        let e = p(text).unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("/etc/x.yml:"), "{msg}");
        assert!(msg.contains(key) && msg.contains(want), "{msg}");
    }
    let e = p("\nwait_between_runs: \"soon\"\n").unwrap_err();
    assert_eq!(e.line, Some(2));
}

#[test]
fn broken_yaml_is_an_error_not_a_panic() {
    for text in [
        "a: [",
        "- just\n- a list\n",
        "key: *alias\n",
        "\t:::\n  - ]",
    ] {
        assert!(p(text).is_err(), "{text:?}");
    }
}

#[test]
fn root_dir_that_is_a_file_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("file");
    std::fs::write(&f, "x").unwrap();
    let c = Config {
        root_dir: f.clone(),
        source: Some("/etc/c.yml".into()),
        ..Config::default()
    };
    let e = check_paths(&c).unwrap_err();
    assert_eq!(e.key.as_deref(), Some("root_dir"));
    assert_eq!(
        e.to_string(),
        format!(
            "/etc/c.yml: root_dir: expected a directory, but {} is a file",
            f.display()
        )
    );
}

#[test]
fn source_choice() {
    let home = Path::new("/home/dev");
    assert_eq!(
        choose_source(Some(Path::new("/x.yml")), true, true, None, None),
        Source::File("/x.yml".into())
    );
    assert_eq!(
        choose_source(None, true, false, None, Some(home)),
        Source::File(DEFAULT_CONFIG_FILE.into())
    );
    assert_eq!(
        choose_source(None, false, true, None, None),
        Source::Defaults { state_dir: None }
    );
    assert_eq!(
        choose_source(None, false, false, None, Some(home)),
        Source::Defaults {
            state_dir: Some("/home/dev/.local/state/codedeploy-agent".into())
        }
    );
    assert_eq!(
        choose_source(None, false, false, Some(Path::new("/xdg")), Some(home)),
        Source::Defaults {
            state_dir: Some("/xdg/codedeploy-agent".into())
        }
    );
    let c = defaults_under(Some(Path::new("/xdg/codedeploy-agent")));
    assert_eq!(
        c.root_dir,
        Path::new("/xdg/codedeploy-agent/deployment-root")
    );
}

#[test]
fn free_space_reserve_and_extraction_size() {
    use crate::space::Reserve;
    let c = p("").unwrap().config;
    assert_eq!(c.free_space_reserve, Reserve::default());
    assert_eq!(
        c.archive_max_extraction_size, None,
        "the file system is the bound"
    );
    let c = p(":free_space_reserve: 10%, 2GiB\narchive_max_extraction_size: 512MiB\n")
        .unwrap()
        .config;
    assert_eq!(
        c.free_space_reserve,
        Reserve {
            basis_points: 1000,
            bytes: 2 << 30
        }
    );
    assert_eq!(c.archive_max_extraction_size, Some(512 << 20));
    assert_eq!(
        p("archive_max_extraction_size: 4096\n")
            .unwrap()
            .config
            .archive_max_extraction_size,
        Some(4096)
    );
    let e = p("free_space_reserve: lots\n").unwrap_err();
    assert_eq!(e.key.as_deref(), Some("free_space_reserve"));
    assert!(e.message.contains("percentage"), "{e}");
    assert!(p("archive_max_extraction_size: 0\n").is_err());
}

#[test]
fn the_packaged_default_file_parses_with_the_default_reserve() {
    let text = include_str!("../../packaging/files/codedeployagent.yml");
    let loaded = p(text).unwrap();
    assert!(loaded.notes.is_empty(), "{:?}", loaded.notes);
    assert_eq!(
        loaded.config.free_space_reserve,
        crate::space::Reserve::default()
    );
}

#[test]
fn start_up_checks_create_and_probe_the_directories() {
    let t = tempfile::tempdir().unwrap();
    let c = Config {
        root_dir: t.path().join("new/root"),
        log_dir: t.path().join("new/log"),
        on_premises_config_file: t.path().join("absent.yml"),
        ..Config::default()
    };
    check_paths(&c).unwrap();
    assert!(c.root_dir.is_dir() && c.log_dir.is_dir());
    assert_eq!(std::fs::read_dir(&c.root_dir).unwrap().count(), 0);
    let bad_ca = Config {
        deployment_spec_ca_file: Some(t.path().join("missing.pem")),
        ..c.clone()
    };
    let e = check_paths(&bad_ca).unwrap_err();
    assert_eq!(e.key.as_deref(), Some("deployment_spec_ca_file"));
    assert!(e.message.contains("missing.pem"), "{e}");
}

#[test]
fn deploy_local_lock_wait() {
    assert_eq!(p("").unwrap().config.deploy_local_lock_wait_seconds, 60);
    let c = p(":deploy_local_lock_wait_seconds: 0\n").unwrap().config;
    assert_eq!(c.deploy_local_lock_wait_seconds, 0);
    let e = p("\ndeploy_local_lock_wait_seconds: soon\n").unwrap_err();
    assert_eq!(e.line, Some(2));
    assert_eq!(e.key.as_deref(), Some("deploy_local_lock_wait_seconds"));
    assert!(e.message.contains("whole number of seconds"), "{e}");
}

#[test]
fn retry_waits_and_the_journal_budget() {
    let c = p("").unwrap().config;
    assert_eq!(
        (c.wait_after_throttle_error, c.wait_after_connection_problem),
        (60, 5)
    );
    assert_eq!(c.hook_output_journal_lines, 1000);
    let c = p(":hook_output_journal_lines: 0\nwait_after_throttle_error: 2\n")
        .unwrap()
        .config;
    assert_eq!(
        (c.hook_output_journal_lines, c.wait_after_throttle_error),
        (0, 2)
    );
    let e = p("hook_output_journal_lines: -1\n").unwrap_err();
    assert_eq!(e.key.as_deref(), Some("hook_output_journal_lines"));
    assert!(e.message.contains("whole number of lines"), "{e}");
    let shipped = p(include_str!("../../packaging/files/codedeployagent.yml"))
        .unwrap()
        .config;
    assert_eq!(
        shipped.hook_output_journal_lines,
        c_default().hook_output_journal_lines
    );
}

fn c_default() -> Config {
    Config::default()
}

#[test]
fn reboot_command_default_and_bad_values() {
    assert_eq!(
        p("").unwrap().config.reboot_command,
        ["systemctl", "reboot"]
    );
    let c = p("reboot_command: /usr/local/bin/reboot-now --soon\n")
        .unwrap()
        .config;
    assert_eq!(c.reboot_command, ["/usr/local/bin/reboot-now", "--soon"]);
    for bad in [
        "reboot_command: \n",
        "reboot_command: bin/reboot\n",
        "reboot_command: 'a;b'\n",
    ] {
        let e = p(bad).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("reboot_command"), "{bad}");
        assert_eq!(e.line, Some(1), "{bad}");
    }
}

#[test]
fn metrics_textfile_is_an_absolute_prom_file() {
    assert_eq!(p("").unwrap().config.metrics_textfile, None);
    let c = p("metrics_textfile: /var/lib/node_exporter/codedeploy.prom\n")
        .unwrap()
        .config;
    assert_eq!(
        c.metrics_textfile.as_deref(),
        Some(Path::new("/var/lib/node_exporter/codedeploy.prom"))
    );
    for bad in ["relative/codedeploy.prom", "/var/lib/codedeploy.txt"] {
        let e = p(&format!("metrics_textfile: {bad}\n")).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("metrics_textfile"), "{e}");
        assert!(e.to_string().contains(".prom"), "{e}");
    }
}

#[test]
fn s3_download_keys_default_parse_and_refuse_naming_the_key() {
    let d = p("").unwrap().config;
    assert_eq!(d.s3_download_connections, 8);
    assert_eq!(d.s3_download_part_size, 8 << 20);
    let c = p("s3_download_connections: 16\n:s3_download_part_size: 16MiB\n")
        .unwrap()
        .config;
    assert_eq!(c.s3_download_connections, 16);
    assert_eq!(c.s3_download_part_size, 16 << 20);
    assert_eq!(
        p("s3_download_part_size: 1048576\n")
            .unwrap()
            .config
            .s3_download_part_size,
        1 << 20
    );
    for (text, key) in [
        ("s3_download_connections: 0\n", "s3_download_connections"),
        ("s3_download_connections: 65\n", "s3_download_connections"),
        ("s3_download_connections: many\n", "s3_download_connections"),
        ("s3_download_part_size: 512KiB\n", "s3_download_part_size"),
        ("s3_download_part_size: 1GiB\n", "s3_download_part_size"),
        ("s3_download_part_size: 8MB\n", "s3_download_part_size"),
        ("s3_download_part_size:\n", "s3_download_part_size"),
    ] {
        let msg = p(text).unwrap_err().to_string();
        assert!(
            msg.starts_with("/etc/x.yml:1: ") && msg.contains(key),
            "{msg}"
        );
    }
}

#[test]
fn proxy_keys_fall_back_to_proxy_uri_and_hide_passwords() {
    use crate::proxy::Setting;
    let c = p("proxy_uri: http://u:pw@general:3128\ns3_proxy_uri: none\n")
        .unwrap()
        .config;
    assert_eq!(c.s3_proxy().setting, Setting::Direct);
    assert_eq!(c.s3_proxy().key, "s3_proxy_uri");
    let cmd = c.command_proxy();
    assert_eq!(cmd.key, "proxy_uri");
    assert!(matches!(&cmd.setting, Setting::Via(u) if u.host_port() == "general:3128"));
    assert!(!format!("{c:?}").contains("pw@"), "{c:?}");
    let c = p(":command_proxy_uri: 'http://cmd:8080'\n").unwrap().config;
    assert_eq!(c.command_proxy().key, "command_proxy_uri");
    assert_eq!(c.s3_proxy().setting, Setting::Unset);
    let e = p("s3_proxy_uri: ftp://u:secret@h\n").unwrap_err();
    assert_eq!(e.key.as_deref(), Some("s3_proxy_uri"));
    assert!(!e.to_string().contains("secret"), "{e}");
}
