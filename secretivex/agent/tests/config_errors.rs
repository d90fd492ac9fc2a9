//! A malformed configuration stops the agent: unknown field, wrong type, bad fingerprint,
//! unreadable file. Each is refused at start-up AND by `--check-config` (non-zero), and the
//! message names the file, the line and the field.

mod common;

use std::ffi::OsStr;
use std::path::Path;

use common::config::{check_config, write_file};
use common::{tempdir, AgentBuilder, AgentImpl};

/// Asserts that `config` is refused by `--check-config` and at start-up, both times with
/// a message that holds every piece of `expected`; returns the `--check-config` stderr.
#[track_caller]
fn refused_everywhere(dir: &Path, config: &Path, expected: &[&str]) -> String {
    let check = check_config(config);
    assert!(!check.success(), "--check-config accepted it: {check}");
    for piece in expected {
        assert!(
            check.stderr.contains(piece),
            "--check-config said:\n{}\nwanted {piece:?}",
            check.stderr
        );
    }

    let mut agent = AgentBuilder::with_impl(AgentImpl::SecretiveX, dir)
        .args([OsStr::new("--config"), config.as_os_str()])
        .spawn();
    let code = agent.wait_exit();
    assert!(
        matches!(code, Some(c) if c != 0),
        "agent did not refuse to start ({code:?})\n{}",
        agent.output()
    );
    let log = agent.output();
    for piece in expected {
        assert!(
            log.contains(piece),
            "start-up said:\n{log}\nwanted {piece:?}"
        );
    }
    assert!(
        !dir.join("sock").exists(),
        "a refused start left its socket behind"
    );
    check.stderr
}

#[test]
fn unknown_field_names_file_line_and_field() {
    let dir = tempdir();
    let file = write_file(
        dir.path(),
        "agent.toml",
        "profile = \"balanced\"\n\n[agent]\nbacklog = 128\nmax_signrs = 2\n",
    );
    let at = format!("{}:5:1: agent.max_signrs: unknown field", file.display());
    refused_everywhere(dir.path(), &file, &[&at]);

    let file = write_file(
        dir.path(),
        "nested.toml",
        "[[keys]]\npath = \"~/.ssh/id_ed25519\"\nunlok = \"start\"\n",
    );
    let at = format!("{}:3:1: keys[0].unlok: unknown field", file.display());
    refused_everywhere(dir.path(), &file, &[&at]);
}

#[test]
fn wrong_type_names_file_line_and_field() {
    let dir = tempdir();
    let file = write_file(
        dir.path(),
        "agent.toml",
        "[agent]\nwatch = false\nmax_signers = \"four\"\n",
    );
    let at = format!("{}:3:15: agent.max_signers: ", file.display());
    let said = refused_everywhere(dir.path(), &file, &[&at]);
    assert!(said.contains("string"), "{said}");

    let file = write_file(dir.path(), "dur.toml", "[agent]\nidle_timeout = 30\n");
    let at = format!("{}:2:16: agent.idle_timeout: ", file.display());
    refused_everywhere(dir.path(), &file, &[&at]);
}

#[test]
fn bad_fingerprint_in_a_policy_rule_names_file_line_and_field() {
    let dir = tempdir();
    let file = write_file(
        dir.path(),
        "agent.toml",
        "[policy]\ndefault = \"allow\"\n\n[[policy.rules]]\nname = \"no-ci\"\naction = \"deny\"\nkey = { fingerprint = [\"MD5:00:11\"] }\n",
    );
    let at = format!("{}:7:", file.display());
    refused_everywhere(
        dir.path(),
        &file,
        &[&at, "policy.rules[0].key.fingerprint", "SHA256:"],
    );
}

#[test]
fn unreadable_files_are_refused() {
    let dir = tempdir();
    // The configuration itself: a directory, and a missing file named by --config.
    let not_a_file = dir.path().join("conf.d");
    std::fs::create_dir(&not_a_file).unwrap();
    let at = format!("{}: cannot read the configuration", not_a_file.display());
    let said = refused_everywhere(dir.path(), &not_a_file, &[&at]);
    assert_eq!(
        said.matches("Is a directory").count(),
        1,
        "cause said twice: {said}"
    );
    let missing = dir.path().join("missing.toml");
    let at = format!("{}: cannot read the configuration", missing.display());
    refused_everywhere(dir.path(), &missing, &[&at, "No such file"]);

    // A key file the configuration names: located at its `[[keys]]` entry.
    let gone = dir.path().join("id_gone");
    let file = write_file(
        dir.path(),
        "keys.toml",
        &format!(
            "[agent]\nwatch = false\n\n[[keys]]\npath = \"{}\"\n",
            gone.display()
        ),
    );
    let at = format!("{}:5:8: keys[0].path: ", file.display());
    refused_everywhere(dir.path(), &file, &[&at, "cannot read"]);
}

#[test]
fn a_valid_file_checks_ok_and_an_environment_error_names_the_variable() {
    let dir = tempdir();
    let file = write_file(
        dir.path(),
        "agent.toml",
        "profile = \"fanout\"\n[agent]\nwatch = true\n",
    );
    check_config(&file).assert_ok();

    let out = common::config::run_ours(
        &[
            OsStr::new("--check-config"),
            OsStr::new("--config"),
            file.as_os_str(),
        ],
        &[("SECRETIVEX_MAX_SIGNERS", "many")],
    );
    assert!(!out.success(), "{out}");
    assert!(
        out.stderr.contains("environment SECRETIVEX_MAX_SIGNERS:"),
        "{out}"
    );
}
