//! `secretivex policy explain`: names the deciding rule and every condition, as text and
//! JSON, with exit 1 for a denial; bad files and bad fingerprints are errors (exit 2).

mod common;

use std::path::Path;
use std::process::Command;

use common::{cli_bin, run, tempdir, Out};

const KEY: &str = "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU";
const PROD: &str = "SHA256:AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM";

const CONFIG: &str = r#"
[policy]
default = "allow"

[[policy.rules]]
name = "ssh-add-may-not"
action = "deny"
peer = { exe = ["/usr/bin/ssh-add"] }

[[policy.rules]]
name = "prod-needs-ok"
action = "confirm"
window = "15m"
scope = "key+exe+dest"
dest = { host_key = ["SHA256:AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM"] }
"#;

fn explain(config: &Path, args: &[&str]) -> Out {
    let mut c = Command::new(cli_bin());
    c.args(["policy", "explain", "--config"])
        .arg(config)
        .args(args)
        .env_remove("SECRETIVEX_CONFIG");
    run(&mut c)
}

fn config(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("agent.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

#[test]
fn names_the_deciding_rule_and_why() {
    let dir = tempdir();
    let file = config(dir.path(), CONFIG);

    let out = explain(&file, &["--key", KEY, "--exe", "/usr/bin/ssh-add"]);
    out.code_is(1);
    assert!(
        out.stdout
            .starts_with("decision: deny by \"ssh-add-may-not\"\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("peer.exe: match (/usr/bin/ssh-add vs [/usr/bin/ssh-add])"),
        "{}",
        out.stdout
    );

    // ssh to the prod host key: the confirm rule decides.
    let out = explain(
        &file,
        &[
            "--key",
            KEY,
            "--exe",
            "/usr/bin/ssh",
            "--host",
            PROD,
            "--user",
            "root",
        ],
    );
    out.code_is(0);
    assert!(
        out.stdout
            .starts_with("decision: confirm (window 15m, scope key+exe+dest) by \"prod-needs-ok\""),
        "{}",
        out.stdout
    );

    // No destination given: unknown, so the confirm rule applies (fail closed).
    let out = explain(&file, &["--key", KEY, "--exe", "/usr/bin/ssh", "--json"]);
    out.code_is(0);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON output");
    assert_eq!(json["decision"]["rule"], "prod-needs-ok");
    assert_eq!(json["decision"]["action"], "confirm");
    assert_eq!(json["rules"][1]["conditions"][0]["field"], "dest.host_key");
    assert_eq!(json["rules"][1]["conditions"][0]["result"], "unknown");
    assert_eq!(json["rules"][2]["name"], "default");
    assert_eq!(json["listed"], true);
}

#[test]
fn bad_input_is_an_error_naming_the_problem() {
    let dir = tempdir();
    let file = config(
        dir.path(),
        "[policy]\n[[policy.rules]]\naction = \"deny\"\nkey = { fingerprint = [\"MD5:00\"] }\n",
    );
    let out = explain(&file, &["--key", KEY]);
    out.code_is(2);
    assert!(out.stderr.contains("agent.toml:4"), "{}", out.stderr);
    assert!(out.stderr.contains("SHA256:"), "{}", out.stderr);

    let good = config(dir.path(), CONFIG);
    let out = explain(&good, &["--key", "SHA256:nope"]);
    out.code_is(2);
    assert!(out.stderr.contains("--key"), "{}", out.stderr);

    let out = explain(&dir.path().join("missing.toml"), &["--key", KEY]);
    out.code_is(2);
    assert!(out.stderr.contains("missing.toml"), "{}", out.stderr);
}
