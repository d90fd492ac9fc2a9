//! `secretivex hints` reads the agent's real configuration (through `secretivex-config`, as
//! the agent does) and this machine's limits, and ties every setting to them.

mod common;

use std::path::Path;
use std::process::Command;

use common::{cli_bin, run, tempdir, Out};

fn hints(config_home: &Path, args: &[&str]) -> Out {
    let mut c = Command::new(cli_bin());
    c.env("XDG_CONFIG_HOME", config_home)
        .env("HOME", config_home)
        .env("XDG_RUNTIME_DIR", config_home.join("run"))
        .env_remove("SECRETIVEX_CONFIG")
        .env_remove("SECRETIVEX_PROFILE")
        .env_remove("SECRETIVEX_BACKLOG")
        .env_remove("SECRETIVEX_MAX_CONNECTIONS")
        .env_remove("SECRETIVEX_SOCKET")
        .arg("hints")
        .args(args);
    run(&mut c)
}

fn json(out: &Out) -> serde_json::Value {
    out.ok();
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn hints_follow_the_agents_configuration_file() {
    let dir = tempdir();
    let file = dir.path().join("agent.toml");
    std::fs::write(
        &file,
        "profile = \"fanout\"\n[agent]\nsocket = \"/run/sx/agent.sock\"\nmax_connections = 100\n",
    )
    .unwrap();
    let v = json(&hints(
        dir.path(),
        &[
            "--config",
            file.to_str().unwrap(),
            "--parallel",
            "300",
            "--json",
        ],
    ));
    let facts = &v["facts"];
    assert_eq!(facts["socket"], "/run/sx/agent.sock");
    assert_eq!(facts["profile"], "fanout");
    assert_eq!(facts["backlog"], 65535, "the profile's backlog: {v:#}");
    assert_eq!(
        facts["max_connections"], 100,
        "the file wins over the profile"
    );
    let somaxconn: u64 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(facts["somaxconn"], somaxconn);
    assert_eq!(v["effective_backlog"], somaxconn.min(65535));

    let lines = |key: &str| -> Vec<String> {
        v[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().to_string())
            .collect()
    };
    assert!(lines("openssh_client").contains(&"    IdentityAgent /run/sx/agent.sock".into()));
    assert!(lines("ansible").contains(&"forks = 300".into()));
    assert!(lines("pssh")[0].contains("-p 300 "), "{v:#}");
    assert!(lines("openssh_server").contains(&"MaxStartups 300:30:600".into()));
    let warnings = lines("warnings").join("\n");
    assert!(warnings.contains("max_connections = 100"), "{warnings}");
    assert!(
        !warnings.contains("profile"),
        "fanout needs no profile advice: {warnings}"
    );
}

#[test]
fn the_global_socket_flag_wins_and_text_output_has_every_tool() {
    let dir = tempdir();
    let out = hints(
        dir.path(),
        &["--socket", "/tmp/other.sock", "--parallel", "20"],
    );
    out.ok();
    for needle in [
        "IdentityAgent /tmp/other.sock",
        "ControlPersist",
        "## OpenSSH server",
        "MaxStartups 20:30:40",
        "parallel-ssh -p 20 ",
        "forks = 20",
        "pipelining = True",
    ] {
        assert!(out.stdout.contains(needle), "{needle}: {out}");
    }
}

#[test]
fn a_broken_configuration_is_an_error_naming_the_line() {
    let dir = tempdir();
    let file = dir.path().join("agent.toml");
    std::fs::write(&file, "[agent]\nbacklogg = 5\n").unwrap();
    let out = hints(dir.path(), &["--config", file.to_str().unwrap()]);
    out.code_is(2);
    assert!(out.stderr.contains(":2:"), "{out}");
    assert!(out.stderr.contains("backlogg"), "{out}");
}
