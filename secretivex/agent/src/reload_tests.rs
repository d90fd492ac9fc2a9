//! In-process reload tests: a refused reload keeps the very same policy and keys; a
//! first-use key is listed without a prompt and unlocked by one prompt however many
//! signatures ask at once.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use secretivex_config::{Env, Request};

use super::{prepare, Reloader};
use crate::test_support::write_script;
use crate::{pending, Agent, Config};

fn request(file: &Path, home: &Path) -> Request {
    Request {
        config_flag: Some(file.to_path_buf()),
        env: Env::from_pairs([("HOME", home.to_str().unwrap())]),
        ..Request::default()
    }
}

/// `ssh-keygen -t ed25519` into `dir/name`, with `passphrase` (empty: none).
fn keygen(dir: &Path, name: &str, passphrase: &str) -> PathBuf {
    let path = dir.join(name);
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-C", name, "-N", passphrase, "-f"])
        .arg(&path)
        .status()
        .expect("ssh-keygen must be installed (openssh-client)");
    assert!(status.success());
    path
}

fn public_blob(private: &Path) -> Vec<u8> {
    let text = std::fs::read_to_string(private).unwrap();
    secretivex_keys::OpensshKeyFile::parse(&text)
        .unwrap()
        .public_blob()
        .to_vec()
}

fn listed(agent: &Agent) -> usize {
    let frame = agent.keys.answer_frame();
    match secretivex_proto::Response::decode(&frame[4..]).unwrap() {
        secretivex_proto::Response::Identities(ids) => ids.len(),
        other => panic!("not an identities answer: {other:?}"),
    }
}

#[tokio::test]
async fn refused_reload_keeps_the_same_policy_and_keys_and_a_good_one_swaps_them() {
    let dir = tempfile::tempdir().unwrap();
    let a = keygen(dir.path(), "id_a", "");
    let file = dir.path().join("agent.toml");
    let good = format!(
        "[[keys]]\npath = \"{}\"\n\n[policy]\ndefault = \"allow\"\n",
        a.display()
    );
    std::fs::write(&file, &good).unwrap();
    let agent = Agent::try_new(Config::default()).unwrap();
    let req = request(&file, dir.path());
    let reloader = Reloader::new(agent.clone(), req.clone(), Vec::new());
    reloader
        .apply(prepare(&req, &[], &[], None, true).unwrap())
        .unwrap();
    let policy_before = Arc::clone(&agent.policy());
    assert_eq!(agent.keys.len(), 1);

    std::fs::write(
        &file,
        format!("{good}\n[[policy.rules]]\naction = \"sometimes\"\n"),
    )
    .unwrap();
    let err = reloader.reload().await.unwrap_err().to_string();
    assert!(err.contains("policy.rules[0].action"), "{err}");
    assert!(
        Arc::ptr_eq(&policy_before, &agent.policy()),
        "policy replaced by a refused reload"
    );
    assert_eq!(agent.keys.len(), 1);

    std::fs::write(&file, &good).unwrap();
    let change = reloader.reload().await.unwrap();
    assert_eq!((change.added, change.removed, change.kept), (0, 0, 1));
    assert!(
        !Arc::ptr_eq(&policy_before, &agent.policy()),
        "a good reload swaps the policy"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_use_key_is_listed_then_unlocked_by_one_prompt() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "id_enc", "first use secret");
    let prompts = dir.path().join("prompts");
    let askpass = write_script(
        dir.path(),
        "askpass",
        &format!(
            "echo asked >> '{}'\nsleep 0.2\necho 'first use secret'",
            prompts.display()
        ),
    );
    let file = dir.path().join("agent.toml");
    std::fs::write(
        &file,
        format!(
            "[[keys]]\npath = \"{}\"\nunlock = \"first-use\"\n",
            key.display()
        ),
    )
    .unwrap();
    let config = Config {
        askpass: Some(askpass),
        ..Config::default()
    };
    let agent = Agent::try_new(config).unwrap();
    let req = request(&file, dir.path());
    let reloader = Reloader::new(agent.clone(), req.clone(), Vec::new());
    reloader
        .apply(prepare(&req, &[], &[], None, true).unwrap())
        .unwrap();
    assert_eq!(listed(&agent), 1, "the pending key is listed");
    assert_eq!(agent.keys.len(), 0, "but not loaded");
    assert!(!prompts.exists(), "no prompt before the first use");

    let blob = public_blob(&key);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (agent, blob) = (agent.clone(), blob.clone());
            tokio::spawn(async move { pending::unlock_for_sign(&agent, &blob).await })
        })
        .collect();
    for t in tasks {
        assert!(t.await.unwrap(), "first-use unlock failed");
    }
    let asked = std::fs::read_to_string(&prompts).unwrap();
    assert_eq!(
        asked.lines().count(),
        1,
        "one prompt for concurrent first uses"
    );
    assert_eq!(listed(&agent), 1, "listed once, now as a loaded key");
    let id = agent.keys.find(&blob).expect("loaded");
    let sig = id.key.as_ref().unwrap().sign(b"m", 0).unwrap();
    secretivex_keys::verify_signature(&blob, b"m", &sig).unwrap();

    // A reload keeps the unlocked key without asking again.
    reloader.reload().await.unwrap();
    assert!(agent.keys.find(&blob).is_some());
    assert_eq!(
        std::fs::read_to_string(&prompts).unwrap().lines().count(),
        1
    );
    // An unknown blob is not a pending key.
    assert!(!pending::unlock_for_sign(&agent, b"nope").await);
}

#[tokio::test]
async fn wrong_first_use_passphrase_leaves_the_key_pending() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "id_enc", "right");
    let askpass = write_script(dir.path(), "askpass", "echo wrong");
    let file = dir.path().join("agent.toml");
    std::fs::write(
        &file,
        format!(
            "[[keys]]\npath = \"{}\"\nunlock = \"first-use\"\n",
            key.display()
        ),
    )
    .unwrap();
    let agent = Agent::try_new(Config {
        askpass: Some(askpass),
        ..Config::default()
    })
    .unwrap();
    let req = request(&file, dir.path());
    let reloader = Reloader::new(agent.clone(), req.clone(), Vec::new());
    reloader
        .apply(prepare(&req, &[], &[], None, true).unwrap())
        .unwrap();
    let blob = public_blob(&key);
    assert!(!pending::unlock_for_sign(&agent, &blob).await);
    assert!(agent.keys.find(&blob).is_none());
    assert!(
        agent.keys.pending_key(&blob).is_some(),
        "still pending: a later use asks again"
    );
}

#[tokio::test]
async fn a_vanished_default_file_is_refused_not_taken_for_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let conf_dir = dir.path().join("secretivex");
    std::fs::create_dir(&conf_dir).unwrap();
    let file = conf_dir.join("agent.toml");
    std::fs::write(&file, "[policy]\ndefault = \"deny\"\n").unwrap();
    let agent = Agent::try_new(Config::default()).unwrap();
    let req = Request {
        env: Env::from_pairs([
            ("HOME", dir.path().to_str().unwrap()),
            ("XDG_CONFIG_HOME", dir.path().to_str().unwrap()),
        ]),
        ..Request::default()
    };
    let reloader = Reloader::new(agent.clone(), req.clone(), Vec::new());
    reloader
        .apply(prepare(&req, &[], &[], None, true).unwrap())
        .unwrap();
    let policy_before = Arc::clone(&agent.policy());
    assert!(policy_before.can_deny());

    std::fs::remove_file(&file).unwrap();
    let err = reloader.reload().await.unwrap_err().to_string();
    assert!(err.contains("is gone"), "{err}");
    assert!(
        Arc::ptr_eq(&policy_before, &agent.policy()),
        "a vanished file dropped the policy"
    );

    // Back again (an editor's rename), it reloads as usual.
    std::fs::write(&file, "[policy]\ndefault = \"allow\"\n").unwrap();
    reloader.reload().await.unwrap();
    assert!(!agent.policy().can_deny());
}
