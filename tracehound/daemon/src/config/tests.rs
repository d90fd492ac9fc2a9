use std::path::Path;

use super::{ConfigError, DaemonConfig};

fn invalid(text: &str) -> (usize, String, String) {
    match DaemonConfig::parse(text, Path::new("d.toml")) {
        Err(ConfigError::Invalid {
            line,
            field,
            message,
            ..
        }) => (line, field, message),
        other => panic!("expected an invalid config, got {other:?}"),
    }
}

#[test]
fn empty_file_is_all_defaults() {
    let c = DaemonConfig::parse("", Path::new("d.toml")).unwrap();
    assert_eq!(c, DaemonConfig::default());
}

#[test]
fn full_file_parses() {
    let c = DaemonConfig::parse(
        "[listen]\nsocket = \"/x/s.sock\"\ntcp = \"127.0.0.1:0\"\n[limits]\nmax_payload_size = 10\n\
         [rate_limit]\nmax_requests = 5\n[quarantine]\nmax_count = 3\n[stats]\ntop_default = 4\n\
         [reload]\nwatch = false\n",
        Path::new("d.toml"),
    )
    .unwrap();
    assert_eq!(c.limits.max_payload_size, 10);
    assert_eq!(c.rate_limit.max_requests, 5);
    assert_eq!(c.quarantine.max_count, 3);
    assert_eq!(c.stats.top_default, 4);
    assert!(!c.reload.watch);
}

#[test]
fn unknown_field_names_line_and_field() {
    let (line, field, message) =
        invalid("[limits]\nmax_payload_size = 10\n\n[rate_limit]\nmax_requestz = 5\n");
    assert_eq!(line, 5);
    assert_eq!(field, "rate_limit.max_requestz");
    assert!(message.contains("unknown field"), "{message}");
}

#[test]
fn wrong_type_names_line_and_field() {
    let (line, field, _) = invalid("[limits]\nmax_payload_size = \"big\"\n");
    assert_eq!((line, field.as_str()), (2, "limits.max_payload_size"));
}

#[test]
fn out_of_range_values_name_line_and_field() {
    let (line, field, message) = invalid("# c\n[rate_limit]\nwindow_ms = 10\nmax_requests = 0\n");
    assert_eq!((line, field.as_str()), (4, "rate_limit.max_requests"));
    assert!(message.contains("positive"));
    let (line, field, _) = invalid("[listen]\ntcp = \"10.1.2.3:80\"\n");
    assert_eq!((line, field.as_str()), (2, "listen.tcp"));
}

#[test]
fn display_has_file_line_and_field() {
    let e = DaemonConfig::parse("[stats]\nbogus = 1\n", Path::new("conf/d.toml")).unwrap_err();
    let s = e.to_string();
    assert!(s.starts_with("conf/d.toml:2: field `stats.bogus`"), "{s}");
}

#[test]
fn reload_keeps_restart_only_fields() {
    let running = DaemonConfig::default();
    let mut new = DaemonConfig::default();
    new.quarantine.max_count = 1;
    new.limits.max_payload_size = 7;
    new.stats.top_default = 3;
    new.stats.recent_threats = 2;
    assert_eq!(
        new.restart_only_changes(&running),
        vec!["quarantine", "stats.recent_threats"]
    );
    let applied = new.reloadable_part(&running);
    assert_eq!(applied.quarantine, running.quarantine);
    assert_eq!(applied.stats.recent_threats, running.stats.recent_threats);
    assert_eq!(applied.limits.max_payload_size, 7);
    assert_eq!(applied.stats.top_default, 3);
}

#[test]
fn ledger_section_parses_with_defaults_and_policies() {
    use super::FsyncMode;
    use tracehound_ledger::FsyncPolicy;
    let c = DaemonConfig::parse(
        "[ledger]\ndir = \"/var/lib/th\"\nfsync = \"interval\"\nfsync_interval_ms = 20\n",
        Path::new("d.toml"),
    )
    .unwrap();
    let l = c.ledger.unwrap();
    assert_eq!(l.fsync, FsyncMode::Interval);
    assert_eq!(
        l.ledger_policy(),
        FsyncPolicy::Interval(std::time::Duration::from_millis(20))
    );
    assert_eq!(
        l.key_path(),
        Path::new("/var/lib/th").join("checkpoint.key")
    );
    let c = DaemonConfig::parse(
        "[ledger]\ndir = \"d\"\nfsync = \"batch\"\nfsync_batch = 8\n",
        Path::new("d.toml"),
    )
    .unwrap();
    assert_eq!(c.ledger.unwrap().ledger_policy(), FsyncPolicy::Batch(8));
    assert!(DaemonConfig::parse("", Path::new("d.toml"))
        .unwrap()
        .ledger
        .is_none());
}

#[test]
fn ledger_errors_name_line_and_field() {
    let (line, field, message) = invalid("[ledger]\nfsync = \"every\"\n");
    assert_eq!((line, field.as_str()), (1, "ledger"));
    assert!(message.contains("`dir` is required"), "{message}");
    let (line, field, message) = invalid("[ledger]\ndir = \"d\"\nfsync = \"sometimes\"\n");
    assert_eq!((line, field.as_str()), (3, "ledger.fsync"));
    assert!(message.contains("unknown variant"), "{message}");
    let (line, field, _) = invalid("[ledger]\ndir = \"d\"\n\nfsync_batch = 0\n");
    assert_eq!((line, field.as_str()), (4, "ledger.fsync_batch"));
    let (line, field, _) = invalid("[ledger]\ndir = \"d\"\nkey_name = \"a b\"\n");
    assert_eq!((line, field.as_str()), (3, "ledger.key_name"));
    let (line, field, _) = invalid("[ledger]\ndir = \"d\"\ncheckpoint_interval_ms = 0\n");
    assert_eq!((line, field.as_str()), (3, "ledger.checkpoint_interval_ms"));
    let (line, field, _) = invalid("[ledger]\ndir = \"d\"\nfsync_every = 1\n");
    assert_eq!((line, field.as_str()), (3, "ledger.fsync_every"));
}

#[test]
fn ledger_changes_need_a_restart() {
    let running = DaemonConfig::default();
    let new = DaemonConfig {
        ledger: Some(super::LedgerSection {
            dir: Some("d".into()),
            ..super::LedgerSection::default()
        }),
        ..DaemonConfig::default()
    };
    assert_eq!(new.restart_only_changes(&running), vec!["ledger"]);
    assert_eq!(new.reloadable_part(&running).ledger, None);
}
