//! Secrets must not outlive their use in the agent's memory: a removed key's private bytes and
//! the lock passphrase (kept only as a KDF hash) are searched for in the live process through
//! `/proc/PID/mem` (root can read it even though the agent is not dumpable).

mod common;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use common::cmd::{running_as_root, write_script};
use common::keys::{add_identity_fields, Reader};
use common::{gen_key, tempdir, Agent, AgentBuilder, AgentImpl, KeyFiles, KeyKind};

/// Counts occurrences of `needle` in the readable, private memory of process `pid`.
fn occurrences_in_memory(pid: u32, needle: &[u8]) -> usize {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).expect("read maps");
    let mut mem = File::open(format!("/proc/{pid}/mem")).expect("open /proc/PID/mem");
    let mut found = 0;
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
            continue;
        };
        let name = fields.nth(3).unwrap_or("");
        // Readable and writable: heap, stacks, anonymous and data mappings. Read-only file
        // mappings (the binary, libraries) cannot hold runtime secrets.
        if !perms.starts_with("rw") || name.starts_with("[v") {
            continue;
        }
        let Some((start, end)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (u64::from_str_radix(start, 16), u64::from_str_radix(end, 16))
        else {
            continue;
        };
        let mut buf = vec![0u8; usize::try_from(end - start).expect("region size")];
        if mem.seek(SeekFrom::Start(start)).is_err() || mem.read_exact(&mut buf).is_err() {
            continue;
        }
        found += buf.windows(needle.len()).filter(|w| *w == needle).count();
    }
    found
}

/// The 32-byte Ed25519 seed of an unencrypted key file.
fn ed25519_seed(key: &KeyFiles) -> Vec<u8> {
    let fields = add_identity_fields(key);
    let mut r = Reader::new(&fields);
    assert_eq!(r.string(), b"ssh-ed25519");
    r.string(); // public
    let secret = r.string(); // seed ‖ public
    secret[..32].to_vec()
}

fn start(dir: &Path) -> Agent {
    assert!(
        running_as_root(),
        "reading /proc/PID/mem of the agent needs root"
    );
    AgentBuilder::with_impl(AgentImpl::SecretiveX, dir).start()
}

#[test]
fn removed_key_leaves_no_private_bytes_in_memory() {
    let dir = tempdir();
    let key = gen_key(dir.path(), KeyKind::Ed25519, "id");
    let seed = ed25519_seed(&key);
    let agent = start(dir.path());
    agent.add(&key.private);
    agent
        .ssh_add(["-T".as_ref(), key.public.as_os_str()])
        .assert_ok();
    // Control: the search finds the seed while the key is loaded (else it proves nothing).
    assert!(
        occurrences_in_memory(agent.pid(), &seed) > 0,
        "control failed: the loaded key's seed is not visible in memory"
    );
    agent.ssh_add(["-D"]).assert_ok();
    assert!(agent.list().is_empty());
    let left = occurrences_in_memory(agent.pid(), &seed);
    assert_eq!(
        left, 0,
        "{left} copies of a removed key's seed remain in memory"
    );
}

#[test]
fn lock_passphrase_is_not_kept_in_memory() {
    let dir = tempdir();
    let key = gen_key(dir.path(), KeyKind::Ed25519, "id");
    let agent = start(dir.path());
    agent.add(&key.private);
    let passphrase = "Lock-Passphrase-3d9c1e7a-Unique";
    let askpass = dir.path().join("askpass");
    write_script(&askpass, &format!("echo {passphrase}"));
    agent.ssh_add_with_askpass(&askpass, &["-x"]).assert_ok();
    assert!(agent.list().is_empty(), "not locked");
    let left = occurrences_in_memory(agent.pid(), passphrase.as_bytes());
    assert_eq!(
        left, 0,
        "the lock passphrase is in the agent's memory {left} times"
    );
}

#[test]
fn expired_key_leaves_no_private_bytes_in_memory() {
    let dir = tempdir();
    let key = gen_key(dir.path(), KeyKind::Ed25519, "id");
    let seed = ed25519_seed(&key);
    let agent = start(dir.path());
    agent
        .ssh_add(["-t".as_ref(), "1".as_ref(), key.private.as_os_str()])
        .assert_ok();
    let gone = common::poll(100, std::time::Duration::from_millis(100), || {
        agent.list().is_empty().then_some(())
    });
    assert!(gone.is_some(), "key with a 1 s lifetime never expired");
    let left = occurrences_in_memory(agent.pid(), &seed);
    assert_eq!(
        left, 0,
        "{left} copies of an expired key's seed remain in memory"
    );
}

#[test]
fn locked_agent_holds_no_plaintext_private_key() {
    let dir = tempdir();
    let key = gen_key(dir.path(), KeyKind::Ed25519, "id");
    let seed = ed25519_seed(&key);
    let agent = start(dir.path());
    agent.add(&key.private);
    assert!(
        occurrences_in_memory(agent.pid(), &seed) > 0,
        "control: seed visible"
    );
    let askpass = dir.path().join("askpass");
    write_script(&askpass, "echo lock-me");
    let with_askpass = |flag: &str| agent.ssh_add_with_askpass(&askpass, &[flag]);
    with_askpass("-x").assert_ok();
    let left = occurrences_in_memory(agent.pid(), &seed);
    assert_eq!(
        left, 0,
        "{left} plaintext copies of a key's seed while locked"
    );
    with_askpass("-X").assert_ok();
    agent
        .ssh_add(["-T".as_ref(), key.public.as_os_str()])
        .assert_ok();
}
