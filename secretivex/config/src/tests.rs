//! Loader tests: located errors, precedence, profiles, printing.

use std::path::{Path, PathBuf};

use crate::{load, parse_str, ConfigError, ConfigFile, Env, Profile, Request};

fn write(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("agent.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn request(path: &Path, env: &[(&str, &str)]) -> Request {
    Request {
        config_flag: Some(path.to_path_buf()),
        env: Env::from_pairs(env.iter().copied()),
        ..Request::default()
    }
}

fn error_of(text: &str) -> (ConfigError, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), text);
    let e = load(&request(&path, &[])).unwrap_err();
    let shown = e.to_string();
    let prefix = format!("{}:", path.display());
    assert!(shown.starts_with(&prefix), "{shown}");
    (e, shown.trim_start_matches(&prefix).to_string())
}

#[test]
fn unknown_field_is_located() {
    let (e, shown) = error_of("[agent]\nbacklog = 10\nmax_signer = 2\n");
    assert!(
        shown.starts_with("3:1: agent.max_signer: unknown field"),
        "{shown}"
    );
    assert_eq!(e.field(), Some("agent.max_signer"));
    let (_, shown) = error_of("[[keys]]\npath = \"k\"\ncolour = \"red\"\n");
    assert!(
        shown.starts_with("3:1: keys[0].colour: unknown field"),
        "{shown}"
    );
    let (_, shown) = error_of("prfile = \"fanout\"\n");
    assert!(shown.starts_with("1:1: prfile: unknown field"), "{shown}");
}

#[test]
fn wrong_types_and_bad_values_are_located() {
    let (_, shown) = error_of("[agent]\nmax_signers = \"two\"\n");
    assert!(shown.starts_with("2:15: agent.max_signers: "), "{shown}");
    let (_, shown) = error_of("[agent]\n\nmax_signers = 5000\n");
    assert!(
        shown.starts_with("3:15: agent.max_signers: must be between 1 and 1024"),
        "{shown}"
    );
    let (_, shown) = error_of("[agent]\nsign_timeout = \"soon\"\n");
    assert!(
        shown.starts_with("2:16: agent.sign_timeout: expected a number"),
        "{shown}"
    );
    let (_, shown) = error_of("[agent]\nmetrics_listen = \"0.0.0.0:9100\"\n");
    assert!(
        shown.contains("agent.metrics_listen: 0.0.0.0:9100: only loopback"),
        "{shown}"
    );
    let (_, shown) = error_of("profile = \"turbo\"\n");
    assert!(
        shown.starts_with("1:11: profile: unknown variant"),
        "{shown}"
    );
    let (_, shown) = error_of("[[keys]]\npath = \"~/.ssh/id\"\nunlock = \"later\"\n");
    assert!(
        shown.starts_with("3:10: keys[0].unlock: unknown variant"),
        "{shown}"
    );
    let (_, shown) = error_of("[agent]\nbacklog = 1\n[agent\n");
    assert!(shown.starts_with("3:"), "{shown}");
}

#[test]
fn unreadable_files_are_errors_but_a_missing_default_is_none() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    let e = load(&request(&missing, &[])).unwrap_err();
    assert!(matches!(e, ConfigError::Read { .. }));
    assert!(e
        .to_string()
        .starts_with(&format!("{}: cannot read", missing.display())));
    let e = load(&request(dir.path(), &[])).unwrap_err();
    assert!(matches!(e, ConfigError::Read { .. }), "{e}");
    let env = [("SECRETIVEX_CONFIG", missing.to_str().unwrap())];
    let req = Request {
        env: Env::from_pairs(env),
        ..Request::default()
    };
    assert!(load(&req).is_err());
    let home = dir.path().to_str().unwrap();
    let req = Request {
        env: Env::from_pairs([("HOME", home)]),
        ..Request::default()
    };
    let loaded = load(&req).unwrap();
    assert_eq!(loaded.file, None);
    assert_eq!(loaded.profile(), Profile::Balanced);
}

#[test]
fn precedence_flag_env_file_profile_default() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "profile = \"low-memory\"\n[agent]\nmax_signers = 3\nsign_timeout = \"3s\"\nidle_timeout = \"3m\"\n",
    );
    let env = [
        ("SECRETIVEX_MAX_SIGNERS", "5"),
        ("SECRETIVEX_SIGN_TIMEOUT", "5s"),
    ];
    let mut req = request(&path, &env);
    req.flags.max_signers = Some(7.try_into().unwrap());
    let loaded = load(&req).unwrap();
    let a = loaded.agent();
    assert_eq!(a.max_signers.map(|s| s.get()), Some(7)); // flag
    assert_eq!(a.sign_timeout.map(|d| d.get().as_secs()), Some(5)); // env
    assert_eq!(a.idle_timeout.map(|d| d.get().as_secs()), Some(180)); // file
    assert_eq!(a.max_connections.map(|n| n.get()), Some(256)); // profile
    assert_eq!(a.watch, Some(false)); // built-in default
    assert_eq!(loaded.profile(), Profile::LowMemory);

    // The profile itself: flag > env > file.
    let req = request(&path, &[("SECRETIVEX_PROFILE", "pssh")]);
    assert_eq!(load(&req).unwrap().profile(), Profile::Pssh);
    let mut req = request(&path, &[("SECRETIVEX_PROFILE", "pssh")]);
    req.profile_flag = Some(Profile::Fanout);
    let loaded = load(&req).unwrap();
    assert_eq!(loaded.profile(), Profile::Fanout);
    assert_eq!(loaded.agent().backlog.map(|b| b.get()), Some(65_535));

    let e = load(&request(&path, &[("SECRETIVEX_BACKLOG", "0")])).unwrap_err();
    assert!(
        e.to_string().starts_with("environment SECRETIVEX_BACKLOG:"),
        "{e}"
    );
}

#[test]
fn printed_config_parses_back_to_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "profile = \"pssh\"\n[agent]\nsocket = \"~/agent.sock\"\nwatch = true\n\n[[keys]]\npath = \"~/.ssh/id_*\"\nunlock = \"first-use\"\nlifetime = \"1h30m\"\n",
    );
    let loaded = load(&request(&path, &[("HOME", "/home/u")])).unwrap();
    let printed = loaded.to_toml().unwrap();
    let (again, _) = parse_str(Path::new("printed"), &printed).unwrap();
    assert_eq!(again, loaded.config);
    assert_eq!(
        again.agent.socket,
        Some(PathBuf::from("/home/u/agent.sock"))
    );
    assert!(printed.contains("sign_timeout = \"1m\""), "{printed}");
    assert!(printed.contains("lifetime = \"1h30m\""), "{printed}");
    assert_ne!(again, ConfigFile::default());
}
