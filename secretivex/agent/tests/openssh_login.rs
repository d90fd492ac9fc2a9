//! Issue 2, "Done when" 2: real `ssh` logins to a throw-away `sshd` through the agent
//! (`IdentityAgent`, `IdentitiesOnly`), with every key type and with a user certificate.

mod common;

use common::{gen_ca_and_cert, gen_key, tempdir, Agent, KeyKind, Sshd, SshdConfig};

#[test]
fn ssh_login_through_agent_with_every_key_type_and_a_certificate() {
    let dir = tempdir();
    let keys = common::keys::gen_all_kinds(dir.path());
    let user = common::cmd::current_user();
    let (ca, certified) = gen_ca_and_cert(dir.path(), "id_certified", &user);
    // Authorized for sshd but never given to the agent: proves the logins use the agent.
    let absent = gen_key(dir.path(), KeyKind::Ed25519, "id_absent");

    let mut authorized: Vec<_> = keys.iter().collect();
    authorized.push(&absent);
    // The certified key itself is NOT authorized: only its certificate (via the CA) is.
    let sshd = Sshd::start(
        dir.path(),
        "loginhost",
        &SshdConfig {
            authorized,
            trusted_ca: Some(&ca),
        },
    );

    let agent = Agent::start(dir.path());
    for k in keys.iter().chain(std::iter::once(&certified)) {
        agent.add(&k.private);
    }
    // ssh must not find the private keys on disk either.
    for k in keys.iter().chain([&certified, &absent]) {
        std::fs::remove_file(&k.private).expect("remove private key");
    }

    // The logins are independent: run them side by side to keep the suite's wall time down.
    let (sshd_ref, agent_ref) = (&sshd, &agent);
    let outcomes: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = keys
            .iter()
            .chain(std::iter::once(&certified))
            .map(|k| scope.spawn(move || (k, sshd_ref.login(agent_ref, k))))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("login thread panicked"))
            .collect()
    });
    for (k, out) in outcomes {
        assert!(
            out.success(),
            "ssh login with {} failed: {out}\n{}\n--- sshd ---\n{}",
            k.comment,
            agent.output(),
            sshd.log()
        );
    }
    let log = sshd.log();
    assert!(
        log.contains("Accepted publickey") && log.contains("ED25519-CERT"),
        "sshd did not accept the certificate: {log}"
    );

    let out = sshd.login(&agent, &absent);
    assert!(!out.success(), "login without the key in the agent: {out}");
}

#[test]
fn ssh_login_with_a_certificate_held_only_by_the_agent() {
    let dir = tempdir();
    let user = common::cmd::current_user();
    let (ca, certified) = gen_ca_and_cert(dir.path(), "id_certified", &user);
    let sshd = Sshd::start(
        dir.path(),
        "certhost",
        &SshdConfig {
            authorized: Vec::new(),
            trusted_ca: Some(&ca),
        },
    );
    let agent = Agent::start(dir.path());
    // Control: with the plain key only (`-k` skips certificates) the login is refused, since
    // only the certificate is trusted.
    agent
        .ssh_add(["-k".as_ref(), certified.private.as_os_str()])
        .assert_ok();
    let out = sshd.login_with_agent_identities(&agent);
    assert!(!out.success(), "login without the certificate: {out}");

    let out = agent.ssh_add([&certified.private]);
    out.assert_ok();
    assert!(
        out.stderr.contains("Certificate added"),
        "{out}\n{}",
        agent.output()
    );
    // Nothing on disk any more: key, certificate, public key.
    for f in [
        Some(&certified.private),
        certified.cert.as_ref(),
        Some(&certified.public),
    ]
    .into_iter()
    .flatten()
    {
        std::fs::remove_file(f).expect("remove key file");
    }
    let out = sshd.login_with_agent_identities(&agent);
    assert!(
        out.success(),
        "login with the agent's certificate failed: {out}\n{}\n--- sshd ---\n{}",
        agent.output(),
        sshd.log()
    );
    assert!(sshd.log().contains("ED25519-CERT"), "{}", sshd.log());
}

#[test]
fn forwarded_agent_serves_the_remote_side_within_destination_constraints() {
    let dir = tempdir();
    let free = gen_key(dir.path(), KeyKind::Ed25519, "id_free");
    let pinned = gen_key(dir.path(), KeyKind::Ecdsa256, "id_pinned");
    let sshd = Sshd::start(
        dir.path(),
        "fwdhost",
        &SshdConfig {
            authorized: vec![&free, &pinned],
            trusted_ca: None,
        },
    );
    let agent = Agent::start(dir.path());
    agent.add(&free.private);
    // Usable for logging in to fwdhost, but not through a forwarded agent on it.
    let dest = format!("{}@fwdhost", sshd.user);
    agent
        .ssh_add([
            "-H".as_ref(),
            sshd.known_hosts.as_os_str(),
            "-h".as_ref(),
            dest.as_ref(),
            pinned.private.as_os_str(),
        ])
        .assert_ok();

    // On the server, the forwarded agent (sshd sets SSH_AUTH_SOCK) lists and signs.
    let remote = format!(
        "ssh-add -l; echo listed=$?; ssh-add -T {}; echo tested=$?",
        free.public.display()
    );
    let out = sshd.login_running(&agent, &free, &["-A"], &remote);
    assert!(out.success(), "{out}\n{}\n{}", agent.output(), sshd.log());
    assert!(
        out.stdout.contains("listed=0") && out.stdout.contains("tested=0"),
        "{out}\n{}",
        agent.output()
    );
    assert!(out.stdout.contains(&free.fingerprint()), "{out}");
    assert!(
        !out.stdout.contains(&pinned.fingerprint()),
        "a key restricted to logins to fwdhost is visible through the agent forwarded to it: {out}"
    );

    // The pinned key still logs in to fwdhost directly.
    sshd.login(&agent, &pinned).assert_ok();
}
