//! Issue 2, "Done when" 1 (keys part): OpenSSH's own `ssh-add` and `ssh-keygen` against the
//! agent — add every key type and a certificate, list (`-l`, `-L`), test-sign (`-T`),
//! `ssh-keygen -Y sign`/`-Y verify`, remove one (`-d`) and all (`-D`).

mod common;

use common::keys::fingerprint_of_file;
use common::sshsig::{sig_path, sign_via_agent, verify};
use common::{gen_ca_and_cert, gen_key, tempdir, Agent, KeyFiles, KeyKind};

/// Every plain key type plus an Ed25519 key with its certificate, generated in `dir`.
fn all_keys(dir: &std::path::Path) -> (Vec<KeyFiles>, KeyFiles) {
    let keys = common::keys::gen_all_kinds(dir);
    let (_ca, certified) = gen_ca_and_cert(dir, "id_certified", "root");
    (keys, certified)
}

/// The `(TYPE)` suffix `ssh-add -l` prints.
fn list_type(kind: KeyKind) -> &'static str {
    match kind {
        KeyKind::Ed25519 => "(ED25519)",
        KeyKind::Ecdsa256 | KeyKind::Ecdsa384 | KeyKind::Ecdsa521 => "(ECDSA)",
        KeyKind::Rsa3072 => "(RSA)",
    }
}

fn bits(kind: KeyKind) -> &'static str {
    match kind {
        KeyKind::Ed25519 | KeyKind::Ecdsa256 => "256",
        KeyKind::Ecdsa384 => "384",
        KeyKind::Ecdsa521 => "521",
        KeyKind::Rsa3072 => "3072",
    }
}

#[test]
fn add_every_key_type_and_certificate_then_list_and_test_sign() {
    let dir = tempdir();
    let (keys, certified) = all_keys(dir.path());
    let agent = Agent::start(dir.path());
    assert!(agent.list().is_empty(), "fresh agent lists keys");

    for k in &keys {
        agent.add(&k.private);
    }
    // ssh-add loads `id_certified-cert.pub` next to the key and adds key and certificate.
    let out = agent.ssh_add([&certified.private]);
    out.assert_ok();
    assert!(
        out.stderr.contains("Certificate added"),
        "ssh-add did not add the certificate: {out}"
    );

    // `ssh-add -l`: one line per identity, "BITS FINGERPRINT COMMENT (TYPE)", fingerprints
    // equal to what ssh-keygen computes from the .pub files.
    let listed = agent.list();
    assert_eq!(listed.len(), keys.len() + 2, "listed: {listed:#?}");
    for k in &keys {
        let want = format!(
            "{} {} {} {}",
            bits(k.kind),
            k.fingerprint(),
            k.comment,
            list_type(k.kind)
        );
        assert!(
            listed.contains(&want),
            "missing `{want}` in {listed:#?}\n{}",
            agent.output()
        );
    }
    let cert_fp = fingerprint_of_file(certified.cert.as_ref().expect("cert"));
    assert_eq!(
        cert_fp,
        certified.fingerprint(),
        "a certificate's fingerprint is its key's"
    );
    let with_fp: Vec<_> = listed.iter().filter(|l| l.contains(&cert_fp)).collect();
    assert_eq!(
        with_fp.len(),
        2,
        "key and certificate both listed: {listed:#?}"
    );
    assert!(
        with_fp.iter().any(|l| l.ends_with("(ED25519-CERT)")),
        "certificate not listed as ED25519-CERT: {listed:#?}"
    );
    assert!(
        with_fp.iter().any(|l| l.ends_with("(ED25519)")),
        "plain certified key not listed: {listed:#?}"
    );

    // `ssh-add -L`: the exact public key material, certificate included.
    let public = agent.list_public();
    assert_eq!(public.len(), keys.len() + 2, "{public:#?}");
    let key_part = |line: &str| {
        line.split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    };
    let listed_material: Vec<String> = public.iter().map(|l| key_part(l)).collect();
    let cert_line = std::fs::read_to_string(certified.cert.as_ref().expect("cert")).expect("cert");
    for want in keys
        .iter()
        .chain(std::iter::once(&certified))
        .map(|k| key_part(&k.public_line()))
        .chain(std::iter::once(key_part(&cert_line)))
    {
        assert!(
            listed_material.contains(&want),
            "`ssh-add -L` lacks {want}: {public:#?}"
        );
    }

    // `ssh-add -T`: the agent signs random data, ssh-add verifies with the public key.
    for k in keys.iter().chain(std::iter::once(&certified)) {
        let out = agent.ssh_add([std::ffi::OsStr::new("-T"), k.public.as_os_str()]);
        assert!(
            out.success(),
            "ssh-add -T {} failed: {out}\n{}",
            k.kind.name(),
            agent.output()
        );
    }
    let cert = certified.cert.as_ref().expect("cert");
    let out = agent.ssh_add([std::ffi::OsStr::new("-T"), cert.as_os_str()]);
    assert!(
        out.success(),
        "ssh-add -T certificate: {out}\n{}",
        agent.output()
    );

    // Control: -T must be able to fail — a key that is not in the agent.
    let stranger = gen_key(dir.path(), KeyKind::Ed25519, "stranger");
    agent
        .ssh_add([std::ffi::OsStr::new("-T"), stranger.public.as_os_str()])
        .assert_fail();
}

#[test]
fn sshsig_sign_through_agent_verifies_for_every_key_type() {
    let dir = tempdir();
    let (keys, certified) = all_keys(dir.path());
    let agent = Agent::start(dir.path());
    for k in keys.iter().chain(std::iter::once(&certified)) {
        agent.add(&k.private);
    }

    for k in keys.iter().chain(std::iter::once(&certified)) {
        let name = format!("{}-{}", k.kind.name(), k.comment);
        let msg = dir.path().join(format!("message-{name}"));
        std::fs::write(&msg, format!("signed by {name}\n")).expect("message");
        let out = sign_via_agent(&agent, k, "file", &msg);
        assert!(
            out.success(),
            "-Y sign with {name}: {out}\n{}",
            agent.output()
        );
        let sig = sig_path(&msg);
        let text = std::fs::read_to_string(&sig).expect("signature written");
        assert!(text.starts_with("-----BEGIN SSH SIGNATURE-----"), "{text}");

        let ok = verify(k, "signer@example.com", "file", &msg, &sig);
        assert!(ok.success(), "-Y verify with {name}: {ok}");
        assert!(ok.stdout.contains("Good \"file\" signature"), "{ok}");

        // Controls: the same signature must not verify for other data or another namespace.
        let tampered = dir.path().join(format!("tampered-{name}"));
        std::fs::write(&tampered, format!("not signed by {name}\n")).expect("tampered");
        verify(k, "signer@example.com", "file", &tampered, &sig).assert_fail();
        verify(k, "signer@example.com", "git", &msg, &sig).assert_fail();
    }
}

#[test]
fn rsa_signatures_use_sha2_when_asked() {
    // ssh-keygen -Y sign asks for rsa-sha2-512; the signature must say so (a SHA-1 `ssh-rsa`
    // signature would not verify under OpenSSH's sshsig rules anyway, this makes it explicit).
    let dir = tempdir();
    let rsa = gen_key(dir.path(), KeyKind::Rsa3072, "id_rsa");
    let agent = Agent::start(dir.path());
    agent.add(&rsa.private);
    let msg = dir.path().join("msg");
    std::fs::write(&msg, b"rsa sha2\n").expect("msg");
    sign_via_agent(&agent, &rsa, "file", &msg).assert_ok();
    let out = verify(&rsa, "rsa@example.com", "file", &msg, &sig_path(&msg));
    out.assert_ok();
    assert_eq!(sshsig_algorithm(&sig_path(&msg)), "rsa-sha2-512");
}

/// The signature algorithm inside an armored SSHSIG file.
fn sshsig_algorithm(sig: &std::path::Path) -> String {
    let text = std::fs::read_to_string(sig).expect("read signature");
    let b64: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    let raw = common::keys::b64_decode(&b64).expect("signature base64");
    let mut r = common::keys::Reader::new(&raw);
    r.expect_bytes(b"SSHSIG");
    assert_eq!(r.u32(), 1, "SSHSIG version");
    for _field in ["public key", "namespace", "reserved", "hash algorithm"] {
        r.string();
    }
    let mut sig_blob = common::keys::Reader::new(r.string());
    String::from_utf8_lossy(sig_blob.string()).into_owned()
}

#[test]
fn remove_one_key_then_all() {
    let dir = tempdir();
    let ed = gen_key(dir.path(), KeyKind::Ed25519, "id_ed");
    let ec = gen_key(dir.path(), KeyKind::Ecdsa384, "id_ec");
    let (_ca, certified) = gen_ca_and_cert(dir.path(), "id_cert", "root");
    let agent = Agent::start(dir.path());
    for k in [&ed, &ec, &certified] {
        agent.add(&k.private);
    }
    assert_eq!(agent.list().len(), 4);

    // -d removes the key and, because id_cert-cert.pub exists, its certificate too.
    agent.ssh_add([&certified.private]).assert_ok();
    agent
        .ssh_add(["-d".as_ref(), certified.private.as_os_str()])
        .assert_ok();
    let listed = agent.list();
    assert_eq!(listed.len(), 2, "{listed:#?}");
    assert!(!listed.iter().any(|l| l.contains(&certified.fingerprint())));

    agent
        .ssh_add(["-d".as_ref(), ed.public.as_os_str()])
        .assert_ok();
    let listed = agent.list();
    assert_eq!(listed.len(), 1, "{listed:#?}");
    assert!(listed[0].contains(&ec.fingerprint()), "{listed:#?}");

    // Removing a key that is not there fails.
    agent
        .ssh_add(["-d".as_ref(), ed.public.as_os_str()])
        .assert_fail();

    agent.ssh_add(["-D"]).assert_ok();
    assert!(agent.list().is_empty(), "keys left after -D");
    let out = agent.ssh_add(["-l"]);
    assert!(out.stdout.contains("The agent has no identities."), "{out}");

    // The agent is still usable after removing everything.
    agent.add(&ed.private);
    assert_eq!(agent.list().len(), 1);
}

#[test]
fn git_signs_commits_through_the_agent() {
    // git's SSH signing (`gpg.format=ssh`) with a `key::` signing key calls
    // `ssh-keygen -Y sign -U`, which only uses the agent.
    let dir = tempdir();
    let keys = common::keys::gen_keys(
        dir.path(),
        &[
            (KeyKind::Ed25519, "id_git_ed"),
            (KeyKind::Rsa3072, "id_git_rsa"),
        ],
    );
    let agent = Agent::start(dir.path());
    for k in &keys {
        agent.add(&k.private);
    }
    let repo = dir.path().join("repo");
    let git = |args: &[&str]| {
        common::run(
            agent
                .cmd("git")
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .arg("-C")
                .arg(&repo)
                .args(args),
        )
    };
    std::fs::create_dir(&repo).expect("mkdir repo");
    git(&["init", "-q"]).assert_ok();
    let allowed = dir.path().join("allowed_signers");
    let allowed_text: String = keys
        .iter()
        .map(|k| format!("dev@example.com {}\n", k.public_line()))
        .collect();
    std::fs::write(&allowed, allowed_text).expect("allowed signers");
    let allowed_cfg = format!("gpg.ssh.allowedSignersFile={}", allowed.display());
    for k in &keys {
        let signing_key = format!("user.signingkey=key::{}", k.public_line());
        let out = git(&[
            "-c",
            "user.name=Dev",
            "-c",
            "user.email=dev@example.com",
            "-c",
            "gpg.format=ssh",
            "-c",
            &signing_key,
            "commit",
            "-q",
            "--allow-empty",
            "-S",
            "-m",
            k.kind.name(),
        ]);
        assert!(
            out.success(),
            "signed commit with {}: {out}\n{}",
            k.kind.name(),
            agent.output()
        );
        let verified = git(&[
            "-c",
            "gpg.format=ssh",
            "-c",
            &allowed_cfg,
            "verify-commit",
            "HEAD",
        ]);
        assert!(verified.success(), "{verified}");
        assert!(
            verified.stderr.contains("Good \"git\" signature")
                && verified.stderr.contains(&k.fingerprint()),
            "{verified}"
        );
    }
}
