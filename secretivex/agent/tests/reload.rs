//! Reload: SIGHUP and (with `watch = true`) file changes reload the configuration's keys
//! atomically; an invalid configuration is refused and the running one stays; keys added
//! with `ssh-add` are never touched; signing under repeated reloads never fails.

mod common;

use std::ffi::OsStr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use common::config::{hup, log_count, replace_file, wait_log, wait_until, write_file};
use common::policy::sign_frame;
use common::{gen_key, tempdir, wire, Agent, AgentBuilder, AgentImpl, KeyFiles, KeyKind};

const REFUSED: &str = "configuration reload refused";
const RELOADED: &str = "configuration reloaded";

/// A configuration listing `keys`, with `extra` appended verbatim.
fn config_text(keys: &[&KeyFiles], extra: &str) -> String {
    let mut text = String::from("[agent]\nwatch = false\n");
    for k in keys {
        text.push_str(&format!("\n[[keys]]\npath = \"{}\"\n", k.private.display()));
    }
    text.push_str(extra);
    text
}

fn start(dir: &Path, config: &Path) -> Agent {
    AgentBuilder::with_impl(AgentImpl::SecretiveX, dir)
        .args([OsStr::new("--config"), config.as_os_str()])
        .env("RUST_LOG", "info")
        .start()
}

fn lists(agent: &Agent, key: &KeyFiles) -> bool {
    agent.list().iter().any(|l| l.contains(&key.fingerprint()))
}

fn signs(agent: &Agent, key: &KeyFiles) -> bool {
    agent
        .ssh_add(["-T".as_ref(), key.public.as_os_str()])
        .success()
}

#[test]
fn sighup_replaces_config_keys_and_never_touches_ssh_add_keys() {
    let dir = tempdir();
    let [a, b, c] = ["id_a", "id_b", "id_c"].map(|n| gen_key(dir.path(), KeyKind::Ed25519, n));
    let file = write_file(dir.path(), "agent.toml", &config_text(&[&a], ""));
    let mut agent = start(dir.path(), &file);
    agent.add(&c.private); // a client's key
    assert!(lists(&agent, &a) && lists(&agent, &c));

    replace_file(&file, &config_text(&[&a, &b], ""));
    hup(&agent);
    wait_until("key b listed after SIGHUP", &agent, || lists(&agent, &b));
    assert!(signs(&agent, &b));
    assert!(agent.is_alive(), "SIGHUP stopped the agent");

    replace_file(&file, &config_text(&[&b], ""));
    hup(&agent);
    wait_until("key a dropped after SIGHUP", &agent, || !lists(&agent, &a));
    assert!(
        lists(&agent, &b) && lists(&agent, &c),
        "{:#?}",
        agent.list()
    );
    assert!(signs(&agent, &c), "the ssh-add key must survive reloads");

    // Even a configuration without any key leaves the client's key alone.
    replace_file(&file, &config_text(&[], ""));
    hup(&agent);
    wait_until("key b dropped", &agent, || !lists(&agent, &b));
    assert_eq!(agent.list().len(), 1);
    assert!(lists(&agent, &c));
    assert_eq!(log_count(&agent, REFUSED), 0, "{}", agent.output());
}

#[test]
fn invalid_config_on_sighup_is_refused_and_the_old_one_stays() {
    let dir = tempdir();
    let [a, b] = ["id_a", "id_b"].map(|n| gen_key(dir.path(), KeyKind::Ed25519, n));
    let file = write_file(dir.path(), "agent.toml", &config_text(&[&a], ""));
    let agent = start(dir.path(), &file);

    // Unknown field (with a new key that must NOT appear), then a missing key file.
    let bad = [
        (
            config_text(&[&a, &b], "\n[agent2]\nx = 1\n"),
            "agent2: unknown field",
        ),
        (
            config_text(
                &[&b],
                &format!("\n[[keys]]\npath = \"{}/gone\"\n", dir.path().display()),
            ),
            "keys[1].path:",
        ),
    ];
    for (n, (text, why)) in bad.iter().enumerate() {
        replace_file(&file, text);
        hup(&agent);
        wait_log(&agent, REFUSED, n + 1);
        let log = agent.output();
        assert!(log.contains(why), "refusal does not say {why:?}:\n{log}");
        assert!(log.contains(&format!("{}:", file.display())), "{log}");
        assert!(
            lists(&agent, &a) && signs(&agent, &a),
            "old key lost\n{log}"
        );
        assert!(!lists(&agent, &b), "a refused config added its key\n{log}");
    }

    // A good one is taken again afterwards.
    replace_file(&file, &config_text(&[&b], ""));
    hup(&agent);
    wait_until("key b listed", &agent, || lists(&agent, &b));
    assert!(!lists(&agent, &a));
}

#[test]
fn watched_files_reload_on_change_and_refuse_invalid_ones() {
    let dir = tempdir();
    let keys_dir = dir.path().join("keys");
    std::fs::create_dir(&keys_dir).unwrap();
    let a = gen_key(dir.path(), KeyKind::Ed25519, "id_a");
    let watched = |keys: &[&KeyFiles], extra: &str| {
        config_text(keys, extra).replace("watch = false", "watch = true")
            + &format!("\n[[keys]]\npath = \"{}/*_ed25519\"\n", keys_dir.display())
    };
    let file = write_file(dir.path(), "agent.toml", &watched(&[], ""));
    let agent = start(dir.path(), &file);
    assert!(agent.list().is_empty());

    // The file changes: its new key is loaded without any signal.
    replace_file(&file, &watched(&[&a], ""));
    wait_until("key a listed after the file changed", &agent, || {
        lists(&agent, &a)
    });

    // A key file appears under a configured glob.
    let g = gen_key(&keys_dir, KeyKind::Ed25519, "new_ed25519");
    wait_until("globbed key listed", &agent, || lists(&agent, &g));

    // An invalid file is refused, the running configuration stays.
    let refused_before = log_count(&agent, REFUSED);
    replace_file(&file, &watched(&[], "\n[agent]\nmax_signers = \"all\"\n"));
    wait_log(&agent, REFUSED, refused_before + 1);
    assert!(lists(&agent, &a) && signs(&agent, &a), "{}", agent.output());
    assert!(lists(&agent, &g));
}

#[test]
fn signing_never_fails_across_repeated_reloads() {
    let dir = tempdir();
    let [a, b] = ["id_a", "id_b"].map(|n| gen_key(dir.path(), KeyKind::Ed25519, n));
    let file = write_file(dir.path(), "agent.toml", &config_text(&[&a], ""));
    let agent = start(dir.path(), &file);

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let frame = sign_frame(&a.public_blob(), b"reload under load");
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
            let (sock, frame) = (agent.sock().to_path_buf(), frame.clone());
            std::thread::spawn(move || {
                let mut conn = wire::connect(&sock).expect("connect");
                while !stop.load(Ordering::Relaxed) {
                    match wire::request(&mut conn, &frame).map(|r| r.msg_type()) {
                        Ok(Some(wire::SIGN_RESPONSE)) => ok.fetch_add(1, Ordering::Relaxed),
                        _ => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();

    const RELOADS: usize = 10;
    for i in 0..RELOADS {
        let keys: &[&KeyFiles] = if i % 2 == 0 { &[&a, &b] } else { &[&a] };
        replace_file(&file, &config_text(keys, ""));
        let before = ok.load(Ordering::Relaxed);
        hup(&agent);
        wait_log(&agent, RELOADED, i + 1);
        // Signatures keep being made between reloads.
        wait_until("signatures after a reload", &agent, || {
            ok.load(Ordering::Relaxed) > before
        });
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().expect("signing thread");
    }
    assert_eq!(failed.load(Ordering::Relaxed), 0, "{}", agent.output());
    assert!(ok.load(Ordering::Relaxed) >= RELOADS);
    assert_eq!(log_count(&agent, REFUSED), 0);
}

#[test]
fn a_config_key_and_its_certificate_survive_reloads_unchanged() {
    let dir = tempdir();
    let (_ca, user) = common::gen_ca_and_cert(dir.path(), "id_user", "deploy");
    let file = write_file(dir.path(), "agent.toml", &config_text(&[&user], ""));
    let agent = start(dir.path(), &file);
    let before = agent.list_public();
    assert_eq!(before.len(), 2, "key and certificate: {before:#?}");
    for n in 1..=2 {
        hup(&agent);
        wait_log(&agent, RELOADED, n);
        assert_eq!(agent.list_public(), before, "reload {n} changed the keys");
    }
    assert!(agent.output().contains("kept: 2"), "{}", agent.output());
}
