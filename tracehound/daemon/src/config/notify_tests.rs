//! Tests of `[notify]` parsing, caps and secret handling.

use super::*;

fn parse(text: &str) -> Result<NotifySection, String> {
    let s: NotifySection = toml::from_str(text).map_err(|e| e.to_string())?;
    s.validate().map_err(|(f, m)| format!("{f}: {m}"))?;
    Ok(s)
}

#[test]
fn a_full_section_parses_and_secrets_never_print() {
    let s = parse(
        r#"
        [coalesce]
        window_ms = 5000
        key = "source+category"
        [[sinks]]
        kind = "webhook"
        url = "http://127.0.0.1:9000/hook"
        secret = "hunter2"
        events = ["threat.detected"]
        headers = { "X-Team" = "soc" }
        [[sinks]]
        kind = "splunk_hec"
        url = "https://splunk.example:8088"
        secret_env = "TH_TEST_UNSET_VARIABLE"
        "#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.coalesce.key, KeyName::SourceCategory);
    assert!(!format!("{s:?}").contains("hunter2"));
    let err = s.to_notifier().err().unwrap_or_default();
    assert!(err.contains("notify.sinks[1].secret_env"), "{err}");
    assert!(!err.contains("hunter2"));
}

#[test]
fn bad_sinks_are_refused_with_the_reason() {
    for (text, needle) in [
        ("[[sinks]]\nurl = \"http://x\"", "`kind` is required"),
        (
            "[[sinks]]\nkind = \"datadog\"\nurl = \"http://x\"",
            "Datadog API key",
        ),
        ("[[sinks]]\nkind = \"webhook\"\nurl = \"ftp://x\"", "`url`"),
        (
            "[[sinks]]\nkind = \"webhook\"\nurl = \"http://x\"\nevents = [\"nope\"]",
            "unknown event",
        ),
        (
            "[[sinks]]\nkind = \"webhook\"\nurl = \"http://x\"\nsecret = \"a\"\nsecret_env = \"B\"",
            "only one",
        ),
        (
            "[[sinks]]\nkind = \"webhook\"\nurl = \"http://x\"\nmax_attempts = 0",
            "max_attempts",
        ),
        (
            "[[sinks]]\nkind = \"kafka\"\nurl = \"http://x\"",
            "unknown variant",
        ),
        ("[coalesce]\nkey = \"scent\"", "unknown variant"),
        (
            "[[sinks]]\nkind = \"webhook\"\nurl = \"https://u:p@h.example/x\"",
            "must not carry credentials",
        ),
        (
            "[[sinks]]\nkind = \"webhook\"\nurl = \"http://h.example/x\"\nsecret = \"a\"",
            "must be https://",
        ),
        (
            "[[sinks]]\nkind = \"ocsf_http\"\nurl = \"http://10.0.0.1/x\"\nheaders = { A = \"b\" }",
            "must be https://",
        ),
        (
            "[[sinks]]\nkind = \"webhook\"\nurl = \"http:///x\"",
            "no host",
        ),
    ] {
        let err = parse(text).err().unwrap_or_default();
        assert!(err.contains(needle), "{text}: {err}");
    }
    // Plain http is fine to a loopback host, or without any secret or header.
    for url in [
        "http://127.0.0.1:1/x",
        "http://[::1]:1/x",
        "http://localhost:1/x",
    ] {
        let text = format!("[[sinks]]\nkind = \"webhook\"\nurl = \"{url}\"\nsecret = \"a\"");
        assert!(parse(&text).is_ok(), "{url}");
    }
    assert!(parse("[[sinks]]\nkind = \"webhook\"\nurl = \"http://h.example/x\"").is_ok());
}

#[test]
fn debug_of_a_configured_sink_prints_no_secret_or_header_value() {
    let s = parse(
        "[[sinks]]\nkind = \"elasticsearch\"\nurl = \"https://es.example/base?api_key=qs-secret\"\n\
         secret = \"es-secret\"\nheaders = { \"X-Api-Token\" = \"hdr-secret\" }\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let printed = format!("{s:?}");
    for secret in ["es-secret", "hdr-secret", "qs-secret"] {
        assert!(!printed.contains(secret), "{secret} in {printed}");
    }
    assert!(printed.contains("X-Api-Token"), "{printed}");
    let n = s.to_notifier().unwrap_or_else(|e| panic!("{e}"));
    let printed = format!("{n:?}");
    for secret in ["es-secret", "hdr-secret", "qs-secret"] {
        assert!(!printed.contains(secret), "{secret} in {printed}");
    }
}

#[test]
fn caps_are_enforced_at_their_bounds() {
    let sink = |kind: &str, batch: usize| {
        format!(
            "[[sinks]]\nkind = \"{kind}\"\nurl = \"http://127.0.0.1:1\"\nsecret = \"k\"\nbatch_max = {batch}"
        )
    };
    for (text, ok, needle) in [
        (sink("datadog", 1000), true, ""),
        (
            sink("datadog", 1001),
            false,
            "`batch_max` must be within 1..=1000 for datadog",
        ),
        (sink("elasticsearch", 5000), true, ""),
        (
            sink("elasticsearch", 5001),
            false,
            "`batch_max` must be within 1..=5000",
        ),
        (
            sink("splunk_hec", 5001),
            false,
            "`batch_max` must be within 1..=5000",
        ),
        (sink("webhook", 0), false, "`batch_max`"),
        ("[coalesce]\nsample = 64".into(), true, ""),
        (
            "[coalesce]\nsample = 65".into(),
            false,
            "notify.coalesce.sample: must be within 1..=64",
        ),
        ("[coalesce]\nmax_keys = 1000000".into(), true, ""),
        (
            "[coalesce]\nmax_keys = 1000001".into(),
            false,
            "notify.coalesce.max_keys: must be within 1..=1000000",
        ),
        ("shutdown_grace_ms = 60000".into(), true, ""),
        (
            "shutdown_grace_ms = 60001".into(),
            false,
            "notify.shutdown_grace_ms: must be within 1..=60000",
        ),
    ] {
        match parse(&text) {
            Ok(_) => assert!(ok, "{text}: accepted"),
            Err(e) => assert!(!ok && e.contains(needle), "{text}: {e}"),
        }
    }
}

#[test]
fn a_cap_error_names_file_line_and_field() {
    let text = "[notify]\nqueue_capacity = 16\n[notify.coalesce]\nwindow_ms = 10\nsample = 65\n";
    match crate::config::DaemonConfig::parse(text, std::path::Path::new("d.toml")) {
        Err(crate::config::ConfigError::Invalid {
            file, line, field, ..
        }) => {
            assert_eq!(file, std::path::Path::new("d.toml"));
            assert_eq!((line, field.as_str()), (5, "notify.coalesce.sample"));
        }
        other => panic!("expected an invalid config, got {other:?}"),
    }
}

#[test]
fn secret_files_are_read_and_trimmed() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("token");
    std::fs::write(&path, "tok-123\n").unwrap_or_else(|e| panic!("{e}"));
    let text = format!(
        "[[sinks]]\nkind = \"splunk_hec\"\nurl = \"http://127.0.0.1:1\"\nsecret_file = \"{}\"",
        path.display()
    );
    let s = parse(&text).unwrap_or_else(|e| panic!("{e}"));
    let n = s.to_notifier().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        n.sinks[0].secret.as_deref().map(String::as_str),
        Some("tok-123")
    );
    assert_eq!(n.sinks[0].name, "splunk_hec-0");
}
