//! Issue 6, "Done when" 2: policy rules enforced with real clients (`ssh-add -T`, `ssh`
//! logins to throw-away `sshd`s): deny by key fingerprint, by the peer's executable and
//! by the destination host key; denied keys are absent from that peer's `ssh-add -l`.

mod common;

use common::policy::{exe_path, listed, ssh_add_test, start_with_config, write_config};
use common::{gen_key, tempdir, KeyKind, Sshd, SshdConfig};

#[test]
fn deny_by_fingerprint_hides_and_refuses_that_key_only() {
    let dir = tempdir();
    let denied = gen_key(dir.path(), KeyKind::Ed25519, "id_denied");
    let allowed = gen_key(dir.path(), KeyKind::Ecdsa256, "id_allowed");
    let config = write_config(
        dir.path(),
        &format!(
            "[policy]\n[[policy.rules]]\nname = \"no-old-key\"\naction = \"deny\"\nkey = {{ fingerprint = [\"{}\"] }}\n",
            denied.fingerprint()
        ),
    );
    let agent = start_with_config(dir.path(), &config);
    agent.add(&denied.private);
    agent.add(&allowed.private);

    assert_eq!(listed(&agent), vec![allowed.fingerprint()]);
    assert!(!ssh_add_test(&agent, &denied), "{}", agent.output());
    assert!(ssh_add_test(&agent, &allowed), "{}", agent.output());

    // The same key through a real login: refused, while the other key logs in.
    let sshd = Sshd::start(
        dir.path(),
        "fphost",
        &SshdConfig {
            authorized: vec![&denied, &allowed],
            trusted_ca: None,
        },
    );
    std::fs::remove_file(&denied.private).expect("remove private key");
    std::fs::remove_file(&allowed.private).expect("remove private key");
    let out = sshd.login(&agent, &denied);
    assert!(!out.success(), "login with a denied key succeeded: {out}");
    let out = sshd.login(&agent, &allowed);
    assert!(out.success(), "login failed: {out}\n{}", agent.output());
}

#[test]
fn deny_by_executable_applies_to_that_program_only() {
    let dir = tempdir();
    let key = gen_key(dir.path(), KeyKind::Ed25519, "id_exe");
    let ssh_add = exe_path("ssh-add");
    let config = write_config(
        dir.path(),
        &format!(
            "[policy]\n[[policy.rules]]\nname = \"not-ssh-add\"\naction = \"deny\"\npeer = {{ exe = [\"{ssh_add}\"] }}\n"
        ),
    );
    let agent = start_with_config(dir.path(), &config);
    agent.add(&key.private); // adding is not a use of the key: allowed

    // ssh-add neither sees nor uses the key ...
    assert_eq!(listed(&agent), Vec::<String>::new());
    assert!(!ssh_add_test(&agent, &key));
    // ... while ssh (another executable) logs in with it.
    let sshd = Sshd::start(
        dir.path(),
        "exehost",
        &SshdConfig {
            authorized: vec![&key],
            trusted_ca: None,
        },
    );
    std::fs::remove_file(&key.private).expect("remove private key");
    let out = sshd.login(&agent, &key);
    assert!(out.success(), "ssh login failed: {out}\n{}", agent.output());
}

#[test]
fn deny_by_destination_host_key() {
    let dir = tempdir();
    let key = gen_key(dir.path(), KeyKind::Ed25519, "id_dest");
    let config = SshdConfig {
        authorized: vec![&key],
        trusted_ca: None,
    };
    let prod = Sshd::start(dir.path(), "prodhost", &config);
    let dev = Sshd::start(dir.path(), "devhost", &config);
    let policy = format!(
        "[policy]\n[[policy.rules]]\nname = \"not-prod\"\naction = \"deny\"\ndest = {{ host_key = [\"{}\"] }}\n",
        prod.host_key.fingerprint()
    );
    let agent = start_with_config(dir.path(), &write_config(dir.path(), &policy));
    agent.add(&key.private);
    std::fs::remove_file(&key.private).expect("remove private key");

    let out = prod.login(&agent, &key);
    assert!(!out.success(), "login to the denied host succeeded: {out}");
    let out = dev.login(&agent, &key);
    assert!(
        out.success(),
        "login to the other host failed: {out}\n{}",
        agent.output()
    );

    // Local listing (no session bind) shows the key: it may still go to other hosts.
    assert_eq!(listed(&agent), vec![key.fingerprint()]);
    // A signature with no known destination is refused: the rule might apply (fail closed).
    assert!(!ssh_add_test(&agent, &key));
}

#[test]
fn rules_decide_in_file_order_and_the_default_applies_last() {
    let dir = tempdir();
    let key = gen_key(dir.path(), KeyKind::Ed25519, "id_order");
    let ssh_add = exe_path("ssh-add");
    // File order: the allow for ssh-add comes first and decides; others hit the default.
    let config = write_config(
        dir.path(),
        &format!(
            "[policy]\ndefault = \"deny\"\n[[policy.rules]]\nname = \"ssh-add-ok\"\naction = \"allow\"\npeer = {{ exe = [\"{ssh_add}\"] }}\n\
             [[policy.rules]]\nname = \"everyone-else\"\naction = \"deny\"\n"
        ),
    );
    let agent = start_with_config(dir.path(), &config);
    agent.add(&key.private);
    assert_eq!(listed(&agent), vec![key.fingerprint()]);
    assert!(ssh_add_test(&agent, &key));
    // Our raw client is another executable: denied by the default, and not listed to it.
    let sock = agent.sock();
    assert_eq!(
        common::policy::sign_type(sock, &key),
        Some(common::wire::FAILURE)
    );
    assert_eq!(common::wire::list_count(sock).expect("list"), 0);
}
