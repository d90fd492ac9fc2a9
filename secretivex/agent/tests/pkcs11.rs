//! Issue 8: the PKCS#11 token store, against SoftHSM2 with the real OpenSSH tools.
//!
//! Each test makes its own SoftHSM2 configuration and token (RSA-2048, P-256, P-384, Ed25519
//! keys) under its temp dir. The token is hosted by `secretivex-pkcs11-helper`, a child of
//! the agent. `SECRETIVEX_TEST_AGENT=openssh` runs the interop test against `ssh-agent`
//! (with `-P` for the SoftHSM module) to check the test itself.

mod common;
mod pkcs11_support;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{poll, tempdir, AgentImpl, KeyFiles, KeyKind, Sshd, SshdConfig};
use pkcs11_support::{
    blob_of, helper_pids, kill_process, load, metric, scrape, sign, ssh_string, token_blobs,
    SoftHsm, Tally, PIN,
};

/// `ssh-add -L` lines of the agent, written to `dir/token-N.pub`, with their key kinds.
fn token_pub_files(dir: &std::path::Path, lines: &[String]) -> Vec<KeyFiles> {
    lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let public = dir.join(format!("token-{i}.pub"));
            std::fs::write(&public, format!("{line}\n")).expect("write pub");
            let kind = if line.starts_with("ssh-rsa") {
                KeyKind::Rsa3072
            } else if line.starts_with("ssh-ed25519") {
                KeyKind::Ed25519
            } else if line.starts_with("ecdsa-sha2-nistp384") {
                KeyKind::Ecdsa384
            } else {
                KeyKind::Ecdsa256
            };
            KeyFiles {
                kind,
                private: PathBuf::from("/nonexistent"),
                public,
                cert: None,
                comment: line.split_whitespace().nth(2).unwrap_or("").to_string(),
            }
        })
        .collect()
}

#[test]
fn ssh_add_s_loads_token_keys_that_sign_and_log_in_and_ssh_add_e_removes_them() {
    let dir = tempdir();
    let hsm = SoftHsm::new(dir.path());
    hsm.init_token_with_keys();
    let imp = AgentImpl::selected();
    let agent = hsm.agent(imp, dir.path(), &[]).start();

    // A wrong PIN is refused, reported, and does not use up the token's tries: the right
    // PIN works right after it.
    let wrong = hsm.ssh_add_s(&agent, "000000");
    assert!(!wrong.success(), "a wrong PIN was accepted: {wrong}");
    if imp == AgentImpl::SecretiveX {
        assert!(
            agent.output().contains("pin_incorrect"),
            "wrong PIN not reported clearly:\n{}",
            agent.output()
        );
    }
    assert!(agent.list().is_empty());
    hsm.ssh_add_s(&agent, PIN).assert_ok();

    let listed = agent.list_public();
    let kinds: Vec<&str> = listed
        .iter()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for want in ["ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384"] {
        assert!(kinds.contains(&want), "{want} missing from {listed:?}");
    }
    // SoftHSM2 2.6 offers CKM_EDDSA; OpenSSH's own agent lists Ed25519 token keys only
    // from 9.x on, so the check is ours.
    if imp == AgentImpl::SecretiveX {
        assert!(
            kinds.contains(&"ssh-ed25519"),
            "Ed25519 missing from {listed:?}"
        );
        assert_eq!(listed.len(), 4, "{listed:?}");
    }
    let keys = token_pub_files(dir.path(), &listed);
    for k in &keys {
        let out = agent.ssh_add([std::ffi::OsStr::new("-T"), k.public.as_os_str()]);
        assert!(
            out.success(),
            "ssh-add -T {:?} failed: {out}\n{}",
            k.kind,
            agent.output()
        );
    }

    // A real login with each token key, through the agent only.
    let authorized: Vec<&KeyFiles> = keys.iter().collect();
    let sshd = Sshd::start(
        dir.path(),
        "tokenhost",
        &SshdConfig {
            authorized,
            trusted_ca: None,
        },
    );
    for k in &keys {
        let out = sshd.login(&agent, k);
        assert!(
            out.success(),
            "ssh login with token key {:?} failed: {out}\n{}\n--- sshd ---\n{}",
            k.kind,
            agent.output(),
            sshd.log()
        );
    }

    // Loading the same module twice is refused; `ssh-add -e` removes its keys.
    assert!(!hsm.ssh_add_s(&agent, PIN).success());
    let module = hsm.module.to_string_lossy().into_owned();
    agent.ssh_add(["-e", &module]).assert_ok();
    assert!(agent.list().is_empty(), "token keys left after ssh-add -e");
    if imp == AgentImpl::SecretiveX {
        let gone = poll(250, Duration::from_millis(20), || {
            helper_pids(agent.pid()).is_empty().then_some(())
        });
        assert!(gone.is_some(), "helper still running after ssh-add -e");
    }
}

#[test]
fn modules_outside_the_allow_list_are_refused() {
    let dir = tempdir();
    let hsm = SoftHsm::new(dir.path());
    hsm.init_token_with_keys();
    let agent = hsm
        .agent(AgentImpl::SecretiveX, dir.path(), &["-P", "/opt/tokens/*"])
        .start();
    let out = hsm.ssh_add_s(&agent, PIN);
    assert!(
        !out.success(),
        "module outside the allow-list was loaded: {out}"
    );
    assert!(agent.list().is_empty());
    assert!(
        agent.output().contains("not in the PKCS#11 allow-list"),
        "refusal reason not logged:\n{}",
        agent.output()
    );
    assert!(
        helper_pids(agent.pid()).is_empty(),
        "a helper was started anyway"
    );
}

/// A module file that is group/world-writable is refused; one replaced after it was
/// added is not loaded again when the helper restarts: the module is dropped, logged.
#[test]
fn module_files_are_checked_at_add_and_before_every_helper_start() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempdir();
    let hsm = SoftHsm::new(dir.path());
    hsm.init_token_with_keys();
    let mods = dir.path().join("mods");
    std::fs::create_dir(&mods).unwrap();
    let lib = mods.join("token.so");
    std::fs::copy(&hsm.module, &lib).unwrap();
    let allow = format!("{}/*", mods.canonicalize().unwrap().display());
    let agent = hsm
        .agent(AgentImpl::SecretiveX, dir.path(), &["-P", &allow])
        .start();
    let script = hsm.pin_script(PIN);
    let lib_arg = lib.to_string_lossy().into_owned();
    let add = || agent.ssh_add_with_askpass(&script, &["-s", &lib_arg]);

    std::fs::set_permissions(&lib, std::fs::Permissions::from_mode(0o666)).unwrap();
    assert!(!add().success(), "a world-writable module was loaded");
    assert!(agent.output().contains("writable by group or others"));
    assert!(helper_pids(agent.pid()).is_empty());

    std::fs::set_permissions(&lib, std::fs::Permissions::from_mode(0o644)).unwrap();
    add().assert_ok();
    assert_eq!(token_blobs(agent.sock()).len(), 4);
    // Swap the file (a new inode at the same path), then make the helper restart.
    let swapped = mods.join("swap.tmp");
    std::fs::copy(&hsm.module, &swapped).unwrap();
    std::fs::set_permissions(&swapped, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::rename(&swapped, &lib).unwrap();
    let pids = helper_pids(agent.pid());
    assert_eq!(pids.len(), 1);
    kill_process(pids[0]);
    let dropped = poll(1000, Duration::from_millis(10), || {
        agent
            .output()
            .contains("replaced since it was added")
            .then_some(())
    });
    assert!(dropped.is_some(), "swap not noticed:\n{}", agent.output());
    assert!(token_blobs(agent.sock()).is_empty());
    assert!(helper_pids(agent.pid()).is_empty());
    // Added again, the new file is checked and loaded.
    add().assert_ok();
    assert_eq!(token_blobs(agent.sock()).len(), 4);
}

#[test]
fn forwarded_connections_may_not_add_modules() {
    let dir = tempdir();
    let hsm = SoftHsm::new(dir.path());
    hsm.init_token_with_keys();
    let agent = hsm.agent(AgentImpl::SecretiveX, dir.path(), &[]).start();
    let mut s = common::wire::connect(agent.sock()).expect("connect");
    // A session-bind attempt (even an invalid one) makes the connection a forwarded one
    // for every later request, as in OpenSSH.
    let mut bind = ssh_string(b"session-bind@openssh.com");
    bind.extend_from_slice(&[0, 0, 0, 1, 0]);
    let _ = common::wire::request(&mut s, &common::wire::frame(27, &bind)).expect("bind");
    let mut add = ssh_string(hsm.module.to_string_lossy().as_bytes());
    add.extend_from_slice(&ssh_string(PIN.as_bytes()));
    let reply = common::wire::request(&mut s, &common::wire::frame(20, &add)).expect("add");
    assert_eq!(
        reply.msg_type(),
        Some(5),
        "forwarded add not refused: {reply:?}"
    );
    assert!(agent.list().is_empty());
    assert!(
        agent.output().contains("forwarded connection"),
        "refusal reason not logged:\n{}",
        agent.output()
    );
    // The same request on a local connection works.
    let mut local = common::wire::connect(agent.sock()).expect("connect");
    let reply = common::wire::request(&mut local, &common::wire::frame(20, &add)).expect("add");
    assert_eq!(
        reply.msg_type(),
        Some(6),
        "local add failed:\n{}",
        agent.output()
    );
    assert_eq!(token_blobs(agent.sock()).len(), 4);
}

#[test]
fn configured_module_loads_with_its_pin_file() {
    let dir = tempdir();
    let hsm = SoftHsm::new(dir.path());
    hsm.init_token_with_keys();
    let pin_file = common::config::write_file(dir.path(), "token.pin", &format!("{PIN}\n"));
    let config = common::config::write_file(
        dir.path(),
        "agent.toml",
        &format!(
            "[[pkcs11]]\nmodule = {:?}\npin_file = {:?}\n",
            hsm.module.display().to_string(),
            pin_file.display().to_string()
        ),
    );
    let config_arg = config.to_string_lossy().into_owned();
    let agent = hsm
        .agent(
            AgentImpl::SecretiveX,
            dir.path(),
            &["--config", &config_arg],
        )
        .start();
    let loaded = poll(500, Duration::from_millis(20), || {
        (token_blobs(agent.sock()).len() == 4).then_some(())
    });
    assert!(
        loaded.is_some(),
        "configured module not loaded:\n{}",
        agent.output()
    );
    let blob = blob_of(agent.sock(), "ssh-rsa");
    let mut s = common::wire::connect(agent.sock()).expect("connect");
    let sig = sign(&mut s, &blob, b"configured", 4)
        .expect("sign")
        .expect("signature");
    secretivex_keys::verify_signature(&blob, b"configured", &sig).expect("verify");
    assert!(sig[4..].starts_with(b"rsa-sha2-512"));
}

#[test]
fn keys_known_only_by_their_certificate_are_offered() {
    let dir = tempdir();
    let hsm = SoftHsm::new(dir.path());
    hsm.init_token_with_keys();
    let line = hsm.import_key_with_certificate();
    let blob = common::keys::blob_of_pub_line(&line);
    let agent = hsm.agent(AgentImpl::SecretiveX, dir.path(), &[]).start();
    hsm.ssh_add_s(&agent, PIN).assert_ok();
    let listed = token_blobs(agent.sock());
    assert_eq!(listed.len(), 5, "{listed:?}");
    assert!(
        listed
            .iter()
            .any(|(b, c)| *b == blob && c.ends_with("/certified")),
        "the certificate's key is not listed: {listed:?}"
    );
    let mut s = common::wire::connect(agent.sock()).expect("connect");
    let sig = sign(&mut s, &blob, b"certified", 0)
        .expect("sign")
        .expect("signature");
    secretivex_keys::verify_signature(&blob, b"certified", &sig).expect("verify");
}

#[test]
fn pkcs11_table_errors_name_file_line_and_field() {
    let dir = tempdir();
    let file = common::config::write_file(
        dir.path(),
        "agent.toml",
        "[agent]\n\n[[pkcs11]]\nmodule = \"/usr/lib/x.so\"\nlifetime = \"soon\"\n",
    );
    let out = common::config::check_config(&file);
    assert!(!out.success(), "bad lifetime accepted: {out}");
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(text.contains(&format!("{}:5:", file.display())), "{text}");
    assert!(text.contains("pkcs11"), "{text}");
    let file = common::config::write_file(dir.path(), "typo.toml", "[[pkcs11]]\nmodul = \"/x\"\n");
    let out = common::config::check_config(&file);
    assert!(!out.success());
    assert!(
        format!("{}{}", out.stdout, out.stderr).contains(":2:"),
        "{out}"
    );
}

#[test]
fn module_lifetime_drops_its_keys_and_helper() {
    let dir = tempdir();
    let hsm = SoftHsm::new(dir.path());
    hsm.init_token_with_keys();
    let agent = hsm.agent(AgentImpl::SecretiveX, dir.path(), &[]).start();
    hsm.ssh_add_s_with(&agent, PIN, &["-t", "1"]).assert_ok();
    assert_eq!(token_blobs(agent.sock()).len(), 4);
    let gone = poll(500, Duration::from_millis(20), || {
        (token_blobs(agent.sock()).is_empty() && helper_pids(agent.pid()).is_empty()).then_some(())
    });
    assert!(
        gone.is_some(),
        "module outlived its lifetime:\n{}",
        agent.output()
    );
    // Nothing can come back by itself: the module is gone (unregistered, so ssh-add -e
    // finds nothing to remove), not just its keys.
    let module = hsm.module.to_string_lossy().into_owned();
    let again = agent.ssh_add(["-e", &module]);
    assert!(!again.success(), "module still registered: {again}");
    assert!(token_blobs(agent.sock()).is_empty());
}

/// `ssh-add -e` racing the supervisor's presence poll (every millisecond) and its helper
/// restarts: after each removal the listing is empty, and stays empty once the helper
/// (and with it any poll in flight) is gone.
#[test]
fn removed_module_keys_never_come_back_while_polling_fast() {
    let dir = tempdir();
    let hsm = SoftHsm::new(dir.path());
    hsm.init_token_with_keys();
    let agent = hsm
        .agent(
            AgentImpl::SecretiveX,
            dir.path(),
            &["--pkcs11-poll-ms", "1"],
        )
        .start();
    let module = hsm.module.to_string_lossy().into_owned();
    for round in 0..12 {
        hsm.ssh_add_s(&agent, PIN).assert_ok();
        assert_eq!(token_blobs(agent.sock()).len(), 4, "round {round}");
        // Let some polls complete so one is likely in flight at the removal.
        for _ in 0..3 {
            assert_eq!(token_blobs(agent.sock()).len(), 4, "round {round}");
        }
        agent.ssh_add(["-e", &module]).assert_ok();
        assert!(
            token_blobs(agent.sock()).is_empty(),
            "round {round}: keys listed right after ssh-add -e"
        );
        let gone = poll(500, Duration::from_millis(10), || {
            helper_pids(agent.pid()).is_empty().then_some(())
        });
        assert!(gone.is_some(), "round {round}: helper outlived ssh-add -e");
        for _ in 0..5 {
            assert!(
                token_blobs(agent.sock()).is_empty(),
                "round {round}: keys came back after ssh-add -e:\n{}",
                agent.output()
            );
        }
    }
}

#[test]
fn many_clients_sign_with_one_token_key_without_failures() {
    let dir = tempdir();
    let hsm = SoftHsm::new(dir.path());
    hsm.init_token_with_keys();
    let agent = hsm.agent(AgentImpl::SecretiveX, dir.path(), &[]).start();
    hsm.ssh_add_s(&agent, PIN).assert_ok();
    let blob = blob_of(agent.sock(), "ecdsa-sha2-nistp256");

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let clients = load(
        agent.sock().to_path_buf(),
        blob,
        256,
        stop.clone(),
        tally.clone(),
    );
    std::thread::sleep(Duration::from_secs(10));
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().expect("client thread panicked");
    }
    let (ok, failed, verified) = (
        tally.ok.load(Ordering::Relaxed),
        tally.failed.load(Ordering::Relaxed),
        tally.verified.load(Ordering::Relaxed),
    );
    eprintln!("256 clients, 10 s: {ok} signatures, {failed} failures, {verified} verified");
    assert_eq!(failed, 0, "sign failures under load:\n{}", agent.output());
    assert!(ok >= 256, "every client signed at least once ({ok})");
    assert!(verified >= 256);
}

#[test]
fn sign_requests_wait_for_a_token_session_at_most_sign_timeout() {
    let dir = tempdir();
    let hsm = SoftHsm::new(dir.path());
    hsm.init_token_with_keys();
    let metrics_sock = dir.path().join("metrics.sock");
    let metrics_arg = format!("--metrics-listen=unix:{}", metrics_sock.display());
    // One session, a 1 ms bound on the wait for it, 64 clients: most must give up.
    let args = [
        "--pkcs11-sessions",
        "1",
        "--sign-timeout",
        "1",
        &metrics_arg,
    ];
    let agent = hsm.agent(AgentImpl::SecretiveX, dir.path(), &args).start();
    hsm.ssh_add_s(&agent, PIN).assert_ok();
    let blob = blob_of(agent.sock(), "ssh-rsa");
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let clients = load(
        agent.sock().to_path_buf(),
        blob,
        64,
        stop.clone(),
        tally.clone(),
    );
    let enough = poll(1000, Duration::from_millis(10), || {
        (tally.failed.load(Ordering::Relaxed) > 100 && tally.ok.load(Ordering::Relaxed) > 10)
            .then_some(())
    });
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().expect("client thread panicked");
    }
    assert!(
        enough.is_some(),
        "no bounded waits seen:\n{}",
        agent.output()
    );
    let page = scrape(&metrics_sock);
    let timeouts = metric(
        &page,
        "secretivex_agent_store_errors_total{store=\"pkcs11\",reason=\"timeout\"}",
    );
    // Every failure was a bounded wait running out, nothing else.
    assert_eq!(
        timeouts,
        tally.failed.load(Ordering::Relaxed) as f64,
        "{page}"
    );
}

/// The PIN is bound to the token it was first accepted by: a token that shows up later
/// (with another PIN) is not offered it when the helper restarts, and does not make the
/// agent forget the PIN or drop the module.
#[test]
fn pin_is_not_offered_to_a_token_inserted_later() {
    let dir = tempdir();
    let hsm = SoftHsm::new(dir.path());
    hsm.init_token_with_keys();
    let agent = hsm.agent(AgentImpl::SecretiveX, dir.path(), &[]).start();
    hsm.ssh_add_s(&agent, PIN).assert_ok();
    assert_eq!(token_blobs(agent.sock()).len(), 4);
    hsm.init_other_token("sx-other", "999999");
    // A fresh helper (fresh C_Initialize) sees both tokens.
    let old = helper_pids(agent.pid());
    assert_eq!(old.len(), 1, "{old:?}");
    kill_process(old[0]);
    let back = poll(1000, Duration::from_millis(10), || {
        let now = helper_pids(agent.pid());
        (now.len() == 1 && now != old && token_blobs(agent.sock()).len() == 4).then_some(())
    });
    assert!(
        back.is_some(),
        "module did not come back with its token's keys:\n{}",
        agent.output()
    );
    let out = agent.output();
    assert!(
        !out.contains("pin_incorrect") && !out.contains("dropped"),
        "the PIN was offered to the other token:\n{out}"
    );
}

/// Two `ssh-add -s` of one module at the same time: one loads it, the other is refused
/// as already loaded (without a second helper trying the PIN).
#[test]
fn concurrent_adds_of_one_module_load_it_once() {
    let dir = tempdir();
    let hsm = SoftHsm::new(dir.path());
    hsm.init_token_with_keys();
    let agent = hsm.agent(AgentImpl::SecretiveX, dir.path(), &[]).start();
    // The askpass script is written once, up front (two writers would race on it).
    hsm.pin_script(PIN);
    let outcomes: Vec<bool> = std::thread::scope(|s| {
        let runs: Vec<_> = (0..2)
            .map(|_| s.spawn(|| hsm.ssh_add_s(&agent, PIN).success()))
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    assert_eq!(
        outcomes.iter().filter(|ok| **ok).count(),
        1,
        "{outcomes:?}\n{}",
        agent.output()
    );
    assert_eq!(token_blobs(agent.sock()).len(), 4);
    assert_eq!(helper_pids(agent.pid()).len(), 1);
}

#[test]
fn killed_helper_is_restarted_and_other_keys_keep_signing() {
    let dir = tempdir();
    let hsm = SoftHsm::new(dir.path());
    hsm.init_token_with_keys();
    let metrics_sock = dir.path().join("metrics.sock");
    let metrics_arg = format!("--metrics-listen=unix:{}", metrics_sock.display());
    let agent = hsm
        .agent(AgentImpl::SecretiveX, dir.path(), &[&metrics_arg])
        .start();
    let memory_key = common::gen_key(dir.path(), KeyKind::Ed25519, "id_memory");
    agent.add(&memory_key.private);
    hsm.ssh_add_s(&agent, PIN).assert_ok();
    let token_blob = blob_of(agent.sock(), "ecdsa-sha2-nistp256");

    let stop = Arc::new(AtomicBool::new(false));
    let mem_tally = Arc::new(Tally::default());
    let tok_tally = Arc::new(Tally::default());
    let mut clients = load(
        agent.sock().to_path_buf(),
        memory_key.public_blob(),
        16,
        stop.clone(),
        mem_tally.clone(),
    );
    clients.extend(load(
        agent.sock().to_path_buf(),
        token_blob.clone(),
        16,
        stop.clone(),
        tok_tally.clone(),
    ));
    let before = poll(500, Duration::from_millis(10), || {
        (tok_tally.ok.load(Ordering::Relaxed) > 100).then_some(())
    });
    assert!(
        before.is_some(),
        "token signing never got going:\n{}",
        agent.output()
    );

    let old = helper_pids(agent.pid());
    assert_eq!(old.len(), 1, "expected one helper, found {old:?}");
    let killed = Instant::now();
    kill_process(old[0]);

    // The helper comes back, with the token's keys, by itself.
    let back = poll(1000, Duration::from_millis(20), || {
        let now = helper_pids(agent.pid());
        (now.len() == 1 && now[0] != old[0] && token_blobs(agent.sock()).len() == 4).then_some(now)
    });
    assert!(
        back.is_some(),
        "helper not restarted with its keys:\n{}",
        agent.output()
    );
    let ok_after_restart = tok_tally.ok.load(Ordering::Relaxed);
    let resumed = poll(1000, Duration::from_millis(10), || {
        (tok_tally.ok.load(Ordering::Relaxed) > ok_after_restart + 100).then_some(())
    });
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().expect("client thread panicked");
    }
    assert!(
        resumed.is_some(),
        "token signing did not resume:\n{}",
        agent.output()
    );
    eprintln!(
        "helper killed; back after {:?}; memory key: {} ok / {} failed; token key: {} ok / {} failed",
        killed.elapsed(),
        mem_tally.ok.load(Ordering::Relaxed),
        mem_tally.failed.load(Ordering::Relaxed),
        tok_tally.ok.load(Ordering::Relaxed),
        tok_tally.failed.load(Ordering::Relaxed),
    );
    assert_eq!(
        mem_tally.failed.load(Ordering::Relaxed),
        0,
        "the in-memory key failed while the helper was down"
    );
    // The store's series count what happened.
    let page = scrape(&metrics_sock);
    assert!(
        metric(
            &page,
            "secretivex_agent_store_helper_restarts_total{store=\"pkcs11\"}"
        ) >= 1.0
    );
    let signed = metric(
        &page,
        "secretivex_agent_signs_total{key_type=\"ecdsa-p256\",store=\"pkcs11\"}",
    );
    assert_eq!(
        signed,
        tok_tally.ok.load(Ordering::Relaxed) as f64,
        "{page}"
    );
    // Every failed token request is accounted for: refused by the store while the helper
    // was down, or for a key that had left the listing.
    let store_errors: f64 = ["unavailable", "failed", "timeout"]
        .iter()
        .map(|r| {
            metric(
                &page,
                &format!("secretivex_agent_store_errors_total{{store=\"pkcs11\",reason=\"{r}\"}}"),
            )
        })
        .sum();
    let unknown = metric(
        &page,
        "secretivex_agent_failures_total{reason=\"unknown_key\"}",
    );
    assert_eq!(
        store_errors + unknown,
        tok_tally.failed.load(Ordering::Relaxed) as f64,
        "{page}"
    );
}

#[test]
fn token_churn_withdraws_keys_and_signing_resumes_by_itself() {
    let dir = tempdir();
    let hsm = SoftHsm::new(dir.path());
    hsm.init_token_with_keys();
    let backup = hsm.backup();
    let agent = hsm.agent(AgentImpl::SecretiveX, dir.path(), &[]).start();
    hsm.ssh_add_s(&agent, PIN).assert_ok();
    let blob = blob_of(agent.sock(), "ecdsa-sha2-nistp256");

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let clients = load(
        agent.sock().to_path_buf(),
        blob,
        16,
        stop.clone(),
        tally.clone(),
    );
    let going = poll(500, Duration::from_millis(10), || {
        (tally.ok.load(Ordering::Relaxed) > 100).then_some(())
    });
    assert!(
        going.is_some(),
        "signing never got going:\n{}",
        agent.output()
    );
    let failed_before = tally.failed.load(Ordering::Relaxed);

    hsm.delete_token();
    // The token's keys leave the listing.
    let withdrawn = poll(1000, Duration::from_millis(10), || {
        token_blobs(agent.sock()).is_empty().then_some(())
    });
    assert!(
        withdrawn.is_some(),
        "keys of a deleted token still listed:\n{}",
        agent.output()
    );
    hsm.restore(&backup);
    // ... and come back, and signing resumes, without touching the agent.
    let returned = poll(1000, Duration::from_millis(20), || {
        (token_blobs(agent.sock()).len() == 4).then_some(())
    });
    assert!(
        returned.is_some(),
        "keys of the re-created token did not return:\n{}",
        agent.output()
    );
    let ok_back = tally.ok.load(Ordering::Relaxed);
    let failed_back = tally.failed.load(Ordering::Relaxed);
    let resumed = poll(1000, Duration::from_millis(10), || {
        (tally.ok.load(Ordering::Relaxed) > ok_back + 100).then_some(())
    });
    // Once signing has resumed (100 successes, so every client's request in flight at the
    // return has been answered), no further failure: the next 100 all succeed.
    let failed_settled = tally.failed.load(Ordering::Relaxed);
    let settled = resumed.and_then(|_| {
        poll(1000, Duration::from_millis(10), || {
            (tally.ok.load(Ordering::Relaxed) > ok_back + 200).then_some(())
        })
    });
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().expect("client thread panicked");
    }
    assert!(
        resumed.is_some(),
        "signing did not resume:\n{}",
        agent.output()
    );
    eprintln!(
        "churn: {} ok, {} failed in the window",
        tally.ok.load(Ordering::Relaxed),
        failed_back - failed_before
    );
    assert_eq!(failed_before, 0, "failures before the token went away");
    assert!(settled.is_some(), "signing stalled:\n{}", agent.output());
    let after = tally.failed.load(Ordering::Relaxed) - failed_settled;
    assert_eq!(after, 0, "failures after signing had resumed");
}
