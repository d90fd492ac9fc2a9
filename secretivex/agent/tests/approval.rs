//! Issue 6, "Done when" 3: approval windows. 500 concurrent sign requests in one scope
//! produce exactly one prompt, and with it pending other keys are served; an unanswered
//! prompt is a refusal after `confirm_timeout` (and is killed); a refusal is not
//! remembered; with real `ssh` logins, an approval's scope includes the destination.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::agent::pid_running;
use common::cmd::{poll, write_script};
use common::policy::{sign_frame, sign_type, ssh_add_test, start_with_config, write_config};
use common::{gen_key, tempdir, wire, KeyKind, Sshd, SshdConfig};

const CLIENTS: usize = 500;

fn count_lines(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |s| s.lines().count())
}

/// A `[policy]` whose one rule confirms `fingerprint` through `script`.
fn confirm_policy(script: &Path, timeout: &str, scope: &str, fingerprint: Option<&str>) -> String {
    let key = fingerprint.map_or(String::new(), |fp| {
        format!("key = {{ fingerprint = [\"{fp}\"] }}\n")
    });
    format!(
        "[policy]\nconfirm_command = [\"{}\"]\nconfirm_timeout = \"{timeout}\"\n\
         [[policy.rules]]\nname = \"ask\"\naction = \"confirm\"\nwindow = \"15m\"\nscope = \"{scope}\"\n{key}",
        script.display()
    )
}

#[test]
fn concurrent_requests_in_one_scope_share_one_prompt() {
    let dir = tempdir();
    let asked = gen_key(dir.path(), KeyKind::Ed25519, "id_asked");
    let other = gen_key(dir.path(), KeyKind::Ed25519, "id_other");
    let count = dir.path().join("prompts");
    let release = dir.path().join("release");
    let script = dir.path().join("prompt.sh");
    write_script(
        &script,
        &format!(
            "echo \"$SSH_ASKPASS_PROMPT\" >> '{}'\nwhile [ ! -e '{}' ]; do sleep 0.05; done\necho yes",
            count.display(),
            release.display()
        ),
    );
    let policy = confirm_policy(&script, "10m", "key+exe", Some(&asked.fingerprint()));
    let agent = start_with_config(dir.path(), &write_config(dir.path(), &policy));
    agent.add(&asked.private);
    agent.add(&other.private);

    let blob = asked.public_blob();
    let sent = Arc::new(AtomicUsize::new(0));
    let answered = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (sock, frame) = (agent.sock().to_path_buf(), sign_frame(&blob, b"fan-out"));
            let (sent, answered) = (sent.clone(), answered.clone());
            std::thread::spawn(move || {
                let mut s = wire::connect(&sock).expect("connect");
                std::io::Write::write_all(&mut s, &frame).expect("send");
                sent.fetch_add(1, Ordering::SeqCst);
                let reply = wire::read_reply(&mut s).expect("reply");
                answered.fetch_add(1, Ordering::SeqCst);
                reply.msg_type()
            })
        })
        .collect();

    let up = poll(3000, Duration::from_millis(20), || {
        (sent.load(Ordering::SeqCst) == CLIENTS && count_lines(&count) >= 1).then_some(())
    });
    assert!(up.is_some(), "prompt never started\n{}", agent.output());
    // With the prompt pending: another key is served, and nobody in the scope is.
    assert!(ssh_add_test(&agent, &other), "{}", agent.output());
    assert_eq!(sign_type(agent.sock(), &other), Some(wire::SIGN_RESPONSE));
    assert_eq!(answered.load(Ordering::SeqCst), 0);

    std::fs::write(&release, b"").expect("release the prompt");
    let replies: Vec<_> = clients
        .into_iter()
        .map(|c| c.join().expect("client thread"))
        .collect();
    let signed = replies
        .iter()
        .filter(|r| **r == Some(wire::SIGN_RESPONSE))
        .count();
    assert_eq!(signed, CLIENTS, "{replies:?}\n{}", agent.output());
    assert_eq!(
        std::fs::read_to_string(&count).unwrap_or_default(),
        "confirm\n"
    );
    // The window is open: the next request in the scope needs no prompt.
    assert_eq!(sign_type(agent.sock(), &asked), Some(wire::SIGN_RESPONSE));
    assert_eq!(count_lines(&count), 1);
}

#[test]
fn an_unanswered_prompt_is_killed_and_refuses_after_the_timeout() {
    let dir = tempdir();
    let key = gen_key(dir.path(), KeyKind::Ed25519, "id_timeout");
    let pids = dir.path().join("pids");
    let script = dir.path().join("never.sh");
    write_script(
        &script,
        &format!("echo $$ >> '{}'\nexec sleep 600", pids.display()),
    );
    let policy = confirm_policy(&script, "1s", "key+exe", None);
    let agent = start_with_config(dir.path(), &write_config(dir.path(), &policy));
    agent.add(&key.private);

    assert_eq!(sign_type(agent.sock(), &key), Some(wire::FAILURE));
    let first: u32 = std::fs::read_to_string(&pids)
        .expect("the prompt ran")
        .trim()
        .parse()
        .expect("pid");
    let killed = poll(500, Duration::from_millis(20), || {
        (!pid_running(first)).then_some(())
    });
    assert!(
        killed.is_some(),
        "the unanswered prompt {first} is still running"
    );
    // A timeout is not remembered: the next request prompts again (and is refused again).
    assert_eq!(sign_type(agent.sock(), &key), Some(wire::FAILURE));
    assert_eq!(count_lines(&pids), 2);
}

#[test]
fn a_refusal_is_not_remembered() {
    let dir = tempdir();
    let key = gen_key(dir.path(), KeyKind::Ed25519, "id_refused");
    let count = dir.path().join("prompts");
    let script = dir.path().join("no.sh");
    write_script(
        &script,
        &format!("echo x >> '{}'\necho no", count.display()),
    );
    let policy = confirm_policy(&script, "30s", "key+exe", None);
    let agent = start_with_config(dir.path(), &write_config(dir.path(), &policy));
    agent.add(&key.private);
    for round in 1..=3 {
        assert_eq!(sign_type(agent.sock(), &key), Some(wire::FAILURE));
        assert_eq!(count_lines(&count), round);
    }
}

#[test]
fn ssh_logins_share_an_approval_per_destination() {
    let dir = tempdir();
    let key = gen_key(dir.path(), KeyKind::Ed25519, "id_window");
    let count = dir.path().join("prompts");
    let prompt_text = dir.path().join("prompt-text");
    let script = dir.path().join("yes.sh");
    write_script(
        &script,
        &format!(
            "echo x >> '{}'\nprintf '%s' \"$1\" > '{}'\necho yes",
            count.display(),
            prompt_text.display()
        ),
    );
    let config = SshdConfig {
        authorized: vec![&key],
        trusted_ca: None,
    };
    let one = Sshd::start(dir.path(), "onehost", &config);
    let two = Sshd::start(dir.path(), "twohost", &config);
    let policy = confirm_policy(&script, "30s", "key+exe+dest", None);
    let agent = start_with_config(dir.path(), &write_config(dir.path(), &policy));
    agent.add(&key.private);
    std::fs::remove_file(&key.private).expect("remove private key");

    for _ in 0..3 {
        let out = one.login(&agent, &key);
        assert!(out.success(), "login failed: {out}\n{}", agent.output());
    }
    assert_eq!(
        count_lines(&count),
        1,
        "one approval serves every login to one host"
    );
    let text = std::fs::read_to_string(&prompt_text).expect("prompt text");
    assert!(text.contains(&key.fingerprint()), "{text}");
    assert!(text.contains("Requested by /"), "{text}");
    assert!(text.contains(&one.host_key.fingerprint()), "{text}");
    let out = two.login(&agent, &key);
    assert!(out.success(), "login failed: {out}\n{}", agent.output());
    assert_eq!(
        count_lines(&count),
        2,
        "another destination is another scope"
    );
}
