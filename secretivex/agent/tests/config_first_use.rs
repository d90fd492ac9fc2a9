//! `unlock = "first-use"`: an encrypted key is listed at start-up from its public part,
//! without a prompt; the first signature asks askpass once and loads it.

mod common;

use std::ffi::OsStr;

use common::config::write_file;
use common::keys::gen_key_with_passphrase;
use common::{tempdir, AgentBuilder, AgentImpl, KeyKind};

#[test]
fn first_use_key_is_listed_without_prompt_and_unlocked_by_the_first_signature() {
    let dir = tempdir();
    let passphrase = "first use passphrase";
    let key = gen_key_with_passphrase(dir.path(), KeyKind::Ed25519, "id_later", passphrase);
    let start = gen_key_with_passphrase(dir.path(), KeyKind::Ed25519, "id_now", passphrase);
    let prompts = dir.path().join("prompts");
    let askpass = dir.path().join("askpass");
    common::cmd::write_script(
        &askpass,
        &format!(
            "echo \"$1\" >> '{}'\necho '{passphrase}'",
            prompts.display()
        ),
    );
    let file = write_file(
        dir.path(),
        "agent.toml",
        &format!(
            "[[keys]]\npath = \"{}\"\nunlock = \"first-use\"\n\n[[keys]]\npath = \"{}\"\nunlock = \"start\"\n",
            key.private.display(),
            start.private.display()
        ),
    );
    let agent = AgentBuilder::with_impl(AgentImpl::SecretiveX, dir.path())
        .args([OsStr::new("--config"), file.as_os_str()])
        .askpass(&askpass)
        .start();
    let asked = || std::fs::read_to_string(&prompts).unwrap_or_default();

    // Listed at once; only the "start" key asked for its passphrase.
    let listed = agent.list();
    assert_eq!(listed.len(), 2, "{listed:#?}\n{}", agent.output());
    assert!(
        listed.iter().any(|l| l.contains(&key.fingerprint())),
        "{listed:#?}"
    );
    assert_eq!(asked().lines().count(), 1, "{}", asked());
    assert!(asked().contains("id_now"), "{}", asked());

    // The first signature prompts and signs; later ones do not prompt again.
    for _ in 0..3 {
        agent
            .ssh_add(["-T".as_ref(), key.public.as_os_str()])
            .assert_ok();
    }
    assert_eq!(asked().lines().count(), 2, "{}", asked());
    assert!(asked().contains("id_later"), "{}", asked());
    assert_eq!(agent.list().len(), 2, "the unlocked key is listed once");
}

#[test]
fn first_use_key_with_a_wrong_answer_is_not_signed_with() {
    let dir = tempdir();
    let key = gen_key_with_passphrase(dir.path(), KeyKind::Ed25519, "id_later", "right");
    let askpass = dir.path().join("askpass");
    common::cmd::write_script(&askpass, "echo wrong");
    let file = write_file(
        dir.path(),
        "agent.toml",
        &format!(
            "[[keys]]\npath = \"{}\"\nunlock = \"first-use\"\n",
            key.private.display()
        ),
    );
    let agent = AgentBuilder::with_impl(AgentImpl::SecretiveX, dir.path())
        .args([OsStr::new("--config"), file.as_os_str()])
        .askpass(&askpass)
        .start();
    assert_eq!(agent.list().len(), 1);
    let out = agent.ssh_add(["-T".as_ref(), key.public.as_os_str()]);
    assert!(!out.success(), "signed with a wrong passphrase: {out}");
    assert_eq!(agent.list().len(), 1, "still listed, still pending");
}
