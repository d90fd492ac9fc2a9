//! Precedence (flag > environment > file > profile > default), `--print-config` output that
//! parses back, and a started agent that really uses the merged values.

mod common;

use std::ffi::OsStr;
use std::path::Path;

use common::config::{run_ours, write_file};
use common::{gen_key, tempdir, AgentBuilder, AgentImpl, KeyKind};

/// `--print-config` with `extra` flags and `envs`; returns the printed TOML.
#[track_caller]
fn printed(config: &Path, extra: &[&str], envs: &[(&str, &str)]) -> String {
    let mut args: Vec<&OsStr> = vec![
        OsStr::new("--print-config"),
        OsStr::new("--config"),
        config.as_os_str(),
    ];
    args.extend(extra.iter().map(OsStr::new));
    let out = run_ours(&args, envs);
    out.assert_ok();
    out.stdout
}

/// The value of `key = value` in the printed TOML's `[agent]` table.
fn agent_value(toml: &str, key: &str) -> Option<String> {
    let agent = toml.split("[agent]").nth(1)?;
    let body = agent.split("\n[").next()?;
    body.lines()
        .filter_map(|l| l.split_once(" = "))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim().to_string())
}

#[test]
fn flag_beats_environment_beats_file_beats_profile() {
    let dir = tempdir();
    let file = write_file(
        dir.path(),
        "agent.toml",
        "profile = \"low-memory\"\n[agent]\nmax_signers = 3\nsign_timeout = \"3s\"\n",
    );
    let env = [
        ("SECRETIVEX_MAX_SIGNERS", "5"),
        ("SECRETIVEX_SIGN_TIMEOUT", "5s"),
    ];

    let all = printed(&file, &["--max-signers", "7"], &env);
    assert_eq!(
        agent_value(&all, "max_signers").as_deref(),
        Some("7"),
        "{all}"
    );
    assert_eq!(
        agent_value(&all, "sign_timeout").as_deref(),
        Some("\"5s\""),
        "{all}"
    );

    let no_flag = printed(&file, &[], &env);
    assert_eq!(
        agent_value(&no_flag, "max_signers").as_deref(),
        Some("5"),
        "{no_flag}"
    );

    let file_only = printed(&file, &[], &[]);
    assert_eq!(
        agent_value(&file_only, "max_signers").as_deref(),
        Some("3"),
        "{file_only}"
    );
    assert_eq!(
        agent_value(&file_only, "sign_timeout").as_deref(),
        Some("\"3s\"")
    );
    // Not in the file: the low-memory profile's values.
    assert_eq!(
        agent_value(&file_only, "max_connections").as_deref(),
        Some("256")
    );
    assert_eq!(agent_value(&file_only, "backlog").as_deref(), Some("128"));

    let bare = write_file(dir.path(), "bare.toml", "profile = \"low-memory\"\n");
    let profile_only = printed(&bare, &[], &[]);
    assert_eq!(
        agent_value(&profile_only, "max_signers").as_deref(),
        Some("1")
    );

    // The profile itself follows the same order: flag > environment > file.
    let by_env = printed(&bare, &[], &[("SECRETIVEX_PROFILE", "fanout")]);
    assert!(by_env.starts_with("profile = \"fanout\""), "{by_env}");
    assert_eq!(agent_value(&by_env, "backlog").as_deref(), Some("65535"));
    let by_flag = printed(
        &bare,
        &["--profile", "pssh"],
        &[("SECRETIVEX_PROFILE", "fanout")],
    );
    assert!(by_flag.starts_with("profile = \"pssh\""), "{by_flag}");
}

#[test]
fn printed_config_parses_back_and_prints_the_same() {
    let dir = tempdir();
    let key = gen_key(dir.path(), KeyKind::Ed25519, "id_cfg");
    let file = write_file(
        dir.path(),
        "agent.toml",
        &format!(
            "profile = \"pssh\"\n[agent]\nwatch = true\nidle_timeout = \"1h30m\"\n\n[[keys]]\npath = \"{}\"\nconfirm = true\nlifetime = \"8h\"\n\n[policy]\ndefault = \"allow\"\n\n[[policy.rules]]\nname = \"deny-it\"\naction = \"deny\"\nkey = {{ fingerprint = [\"{}\"] }}\n",
            key.private.display(),
            key.fingerprint()
        ),
    );
    let first = printed(&file, &[], &[]);
    assert!(first.contains("idle_timeout = \"1h30m\""), "{first}");
    assert!(first.contains("deny-it"), "{first}");
    let again_file = write_file(dir.path(), "printed.toml", &first);
    let check = run_ours(
        &[
            OsStr::new("--check-config"),
            OsStr::new("--config"),
            again_file.as_os_str(),
        ],
        &[],
    );
    assert!(
        check.success(),
        "printed config does not validate: {check}\n{first}"
    );
    let second = printed(&again_file, &[], &[]);
    assert_eq!(first, second);
}

#[test]
fn config_keys_and_settings_are_used_by_the_running_agent() {
    let dir = tempdir();
    let a = gen_key(dir.path(), KeyKind::Ed25519, "id_a");
    let b = gen_key(dir.path(), KeyKind::Ecdsa256, "deploy_b");
    let file = write_file(
        dir.path(),
        "agent.toml",
        &format!(
            "[[keys]]\npath = \"{}\"\n\n[[keys]]\npath = \"{}/deploy_*\"\n",
            a.private.display(),
            dir.path().display()
        ),
    );
    let agent = AgentBuilder::with_impl(AgentImpl::SecretiveX, dir.path())
        .args([OsStr::new("--config"), file.as_os_str()])
        .start();
    let listed = agent.list();
    assert_eq!(listed.len(), 2, "{listed:#?}\n{}", agent.output());
    for k in [&a, &b] {
        assert!(
            listed.iter().any(|l| l.contains(&k.fingerprint())),
            "{listed:#?}"
        );
        agent
            .ssh_add(["-T".as_ref(), k.public.as_os_str()])
            .assert_ok();
    }
}
