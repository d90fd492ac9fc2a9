//! Issue 2, "Done when" 1 (constraints part): lock/unlock (`ssh-add -x`/`-X`), lifetimes
//! (`ssh-add -t`, agent `-t`), confirmation (`ssh-add -c` with an approving and a denying
//! askpass) and destination constraints (`ssh-add -h`) in real logins.

mod common;

use std::path::Path;
use std::time::Duration;

use common::cmd::{poll, write_script};
use common::sshsig::{sig_path, sign_via_agent, verify};
use common::{gen_key, tempdir, Agent, AgentBuilder, KeyKind, Sshd, SshdConfig};

#[test]
fn lock_hides_keys_refuses_signing_and_needs_the_right_passphrase() {
    let dir = tempdir();
    let ed = gen_key(dir.path(), KeyKind::Ed25519, "id_ed");
    let rsa = gen_key(dir.path(), KeyKind::Rsa3072, "id_rsa");
    let right = dir.path().join("askpass-right");
    let wrong = dir.path().join("askpass-wrong");
    write_script(&right, "echo 'correct horse battery staple'");
    write_script(&wrong, "echo 'incorrect horse'");

    let agent = Agent::start(dir.path());
    agent.add(&ed.private);
    agent.add(&rsa.private);
    assert_eq!(agent.list().len(), 2);

    agent.ssh_add_with_askpass(&right, &["-x"]).assert_ok();

    // Locked: nothing listed, nothing signed, no key added.
    assert!(agent.list().is_empty(), "keys listed while locked");
    assert!(
        agent.list_public().is_empty(),
        "keys listed (-L) while locked"
    );
    for k in [&ed, &rsa] {
        agent
            .ssh_add(["-T".as_ref(), k.public.as_os_str()])
            .assert_fail();
    }
    let msg = dir.path().join("msg");
    std::fs::write(&msg, "while locked\n").expect("msg");
    sign_via_agent(&agent, &ed, "file", &msg).assert_fail();
    let extra = gen_key(dir.path(), KeyKind::Ecdsa256, "id_extra");
    agent.ssh_add([&extra.private]).assert_fail();

    // A wrong passphrase is refused and the agent stays locked.
    agent.ssh_add_with_askpass(&wrong, &["-X"]).assert_fail();
    assert!(
        agent.list().is_empty(),
        "wrong passphrase unlocked the agent"
    );
    agent
        .ssh_add(["-T".as_ref(), ed.public.as_os_str()])
        .assert_fail();

    // The right one restores both keys and signing.
    agent.ssh_add_with_askpass(&right, &["-X"]).assert_ok();
    assert_eq!(agent.list().len(), 2, "keys not restored after unlock");
    for k in [&ed, &rsa] {
        agent
            .ssh_add(["-T".as_ref(), k.public.as_os_str()])
            .assert_ok();
    }
    sign_via_agent(&agent, &ed, "file", &msg).assert_ok();
    verify(&ed, "me@example.com", "file", &msg, &sig_path(&msg)).assert_ok();

    // Unlocking an unlocked agent fails.
    agent.ssh_add_with_askpass(&right, &["-X"]).assert_fail();
}

/// Polls `ssh-add -l` (at most ~10 s) until no line mentions `fingerprint`.
fn wait_until_gone(agent: &Agent, fingerprint: &str) -> bool {
    poll(100, Duration::from_millis(100), || {
        (!agent.list().iter().any(|l| l.contains(fingerprint))).then_some(())
    })
    .is_some()
}

#[test]
fn key_added_with_lifetime_is_listed_then_expires() {
    let dir = tempdir();
    let short = gen_key(dir.path(), KeyKind::Ed25519, "id_short");
    let stays = gen_key(dir.path(), KeyKind::Ecdsa256, "id_stays");
    let agent = Agent::start(dir.path());
    agent.add(&stays.private);
    agent
        .ssh_add(["-t".as_ref(), "2".as_ref(), short.private.as_os_str()])
        .assert_ok();
    let listed = agent.list();
    assert!(
        listed.iter().any(|l| l.contains(&short.fingerprint())),
        "key with lifetime not listed: {listed:#?}"
    );
    assert!(
        wait_until_gone(&agent, &short.fingerprint()),
        "key with a 2 s lifetime still listed after ~10 s\n{}",
        agent.output()
    );
    // Expiry removed the key, not the agent's other keys, and signing with it now fails.
    let listed = agent.list();
    assert_eq!(listed.len(), 1, "{listed:#?}");
    assert!(listed[0].contains(&stays.fingerprint()));
    agent
        .ssh_add(["-T".as_ref(), short.public.as_os_str()])
        .assert_fail();
}

#[test]
fn agent_default_lifetime_applies_to_added_keys() {
    let dir = tempdir();
    let key = gen_key(dir.path(), KeyKind::Ed25519, "id_default_life");
    let agent = AgentBuilder::new(dir.path()).args(["-t", "2"]).start();
    agent.add(&key.private);
    assert!(
        agent.list().iter().any(|l| l.contains(&key.fingerprint())),
        "key not listed right after add"
    );
    assert!(
        wait_until_gone(&agent, &key.fingerprint()),
        "agent -t 2: key still listed after ~10 s\n{}",
        agent.output()
    );
}

/// Starts an agent whose askpass logs each call and exits with `exit_code`; returns the agent
/// and the log path.
fn agent_with_confirm(dir: &Path, exit_code: i32) -> (Agent, std::path::PathBuf) {
    let log = dir.join("askpass.log");
    let script = dir.join("askpass-confirm");
    write_script(
        &script,
        &format!(
            "echo \"prompt=$SSH_ASKPASS_PROMPT\" >> '{}'\nexit {exit_code}",
            log.display()
        ),
    );
    (AgentBuilder::new(dir).askpass(&script).start(), log)
}

fn askpass_calls(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn confirm_key_signs_when_askpass_approves() {
    let dir = tempdir();
    let key = gen_key(dir.path(), KeyKind::Ed25519, "id_confirm");
    let rsa = gen_key(dir.path(), KeyKind::Rsa3072, "id_confirm_rsa");
    let (agent, log) = agent_with_confirm(dir.path(), 0);
    agent
        .ssh_add(["-c".as_ref(), key.private.as_os_str()])
        .assert_ok();
    agent
        .ssh_add(["-c".as_ref(), rsa.private.as_os_str()])
        .assert_ok();

    let out = agent.ssh_add(["-T".as_ref(), key.public.as_os_str()]);
    assert!(
        out.success(),
        "approved sign failed: {out}\n{}",
        agent.output()
    );
    let msg = dir.path().join("msg");
    std::fs::write(&msg, "approved\n").expect("msg");
    sign_via_agent(&agent, &rsa, "file", &msg).assert_ok();
    verify(&rsa, "me@example.com", "file", &msg, &sig_path(&msg)).assert_ok();

    let calls = askpass_calls(&log);
    assert_eq!(calls.len(), 2, "askpass calls: {calls:?}");
    assert!(calls.iter().all(|c| c == "prompt=confirm"), "{calls:?}");
}

#[test]
fn confirm_key_is_refused_when_askpass_denies() {
    let dir = tempdir();
    let confirm = gen_key(dir.path(), KeyKind::Ed25519, "id_confirm");
    let plain = gen_key(dir.path(), KeyKind::Ecdsa256, "id_plain");
    let (agent, log) = agent_with_confirm(dir.path(), 1);
    agent
        .ssh_add(["-c".as_ref(), confirm.private.as_os_str()])
        .assert_ok();
    agent.add(&plain.private);

    agent
        .ssh_add(["-T".as_ref(), confirm.public.as_os_str()])
        .assert_fail();
    let msg = dir.path().join("msg");
    std::fs::write(&msg, "denied\n").expect("msg");
    sign_via_agent(&agent, &confirm, "file", &msg).assert_fail();
    assert_eq!(
        askpass_calls(&log).len(),
        2,
        "askpass not consulted for each sign"
    );

    // Keys without -c are not affected by the denying askpass.
    agent
        .ssh_add(["-T".as_ref(), plain.public.as_os_str()])
        .assert_ok();
    assert_eq!(
        askpass_calls(&log).len(),
        2,
        "askpass run for an unconfirmed key"
    );
    // The refused key is still there (denial is per use, not removal).
    assert_eq!(agent.list().len(), 2);
}

#[test]
fn destination_constrained_key_logs_in_only_to_the_allowed_host() {
    let dir = tempdir();
    let constrained = gen_key(dir.path(), KeyKind::Ed25519, "id_dest");
    let free = gen_key(dir.path(), KeyKind::Ecdsa256, "id_free");
    let config = SshdConfig {
        authorized: vec![&constrained, &free],
        trusted_ca: None,
    };
    let host_a = Sshd::start(dir.path(), "hosta", &config);
    let host_b = Sshd::start(dir.path(), "hostb", &config);
    assert_ne!(host_a.host_key.public_line(), host_b.host_key.public_line());

    let agent = Agent::start(dir.path());
    let dest = format!("{}@hosta", host_a.user);
    let out = agent.ssh_add([
        "-H".as_ref(),
        host_a.known_hosts.as_os_str(),
        "-h".as_ref(),
        dest.as_ref(),
        constrained.private.as_os_str(),
    ]);
    assert!(out.success(), "ssh-add -h: {out}\n{}", agent.output());
    agent.add(&free.private);

    let to_a = host_a.login(&agent, &constrained);
    assert!(
        to_a.success(),
        "login to the allowed host failed: {to_a}\n{}\nsshd:\n{}",
        agent.output(),
        host_a.log()
    );
    let to_b = host_b.login(&agent, &constrained);
    assert!(
        !to_b.success(),
        "constrained key logged in to another host: {to_b}"
    );
    assert!(
        to_b.stderr.contains("Permission denied"),
        "refusal should come from authentication: {to_b}"
    );
    // Controls: host B accepts logins, and the unconstrained key works on both.
    host_b.login(&agent, &free).assert_ok();
    host_a.login(&agent, &free).assert_ok();
}
