//! Unit tests of the PKCS#11 store that need no token (the token tests are in
//! `tests/pkcs11.rs`).

use super::*;
use crate::metrics::Metrics;
use crate::pkcs11_helper::ModuleFile;

#[test]
fn default_allow_list_is_ssh_agents() {
    let allow = parse_allow_list(DEFAULT_ALLOW).unwrap();
    let allowed = |p: &str| allow.iter().any(|g| g.matches(p));
    assert!(allowed("/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"));
    assert!(allowed("/usr/lib64/opensc-pkcs11.so"));
    assert!(allowed("/usr/local/lib/libykcs11.so"));
    assert!(!allowed("/tmp/evil.so"));
    assert!(!allowed("/home/user/usr/lib/x.so"));
    assert!(parse_allow_list("/opt/*,").unwrap().len() == 1);
    assert!(parse_allow_list("/opt/\\").is_err());
}

#[test]
fn store_series_show_up_in_the_metrics_output() {
    let m = Metrics::new();
    m.store_signed(
        "pkcs11",
        "ecdsa-p256",
        Duration::from_millis(1),
        Duration::from_millis(2),
    );
    m.store_failed("pkcs11", "unavailable");
    m.store_refreshed("pkcs11");
    m.store_restarted("pkcs11");
    let text = m.render();
    for line in [
        "secretivex_agent_signs_total{key_type=\"ecdsa-p256\",store=\"pkcs11\"} 1",
        "secretivex_agent_store_errors_total{store=\"pkcs11\",reason=\"unavailable\"} 1",
        "secretivex_agent_store_refreshes_total{store=\"pkcs11\"} 1",
        "secretivex_agent_store_helper_restarts_total{store=\"pkcs11\"} 1",
        "secretivex_agent_store_sign_latency_seconds_count{store=\"pkcs11\"} 1",
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
    assert_eq!(m.snapshot().signs, 1);
}

fn test_agent() -> Arc<crate::Agent> {
    crate::Agent::try_new(crate::Config {
        signer_threads: 1,
        ..crate::Config::default()
    })
    .unwrap()
}

fn ed25519_blob(fill: u8) -> Vec<u8> {
    let mut b = Vec::new();
    for part in [&b"ssh-ed25519"[..], &[fill; 32][..]] {
        b.extend_from_slice(&(part.len() as u32).to_be_bytes());
        b.extend_from_slice(part);
    }
    b
}

/// A provider registered without a helper (the supervisor is not started).
fn register(agent: &crate::Agent, id: &str) -> Arc<Provider> {
    let p = Arc::new(Provider {
        id: id.to_string(),
        module: PathBuf::from(id),
        file: ModuleFile::for_tests(),
        pin: Zeroizing::new(b"1234".to_vec()),
        tokens: Vec::new(),
        constraints: ModuleConstraints::default(),
        expires: None,
        settings: Pkcs11Settings::default(),
        helper: Mutex::new(None),
        permits: Semaphore::new(1),
        stopped: AtomicBool::new(false),
        wake: Notify::new(),
    });
    agent
        .pkcs11
        .providers
        .lock()
        .insert(id.to_string(), p.clone());
    p
}

fn token_keys() -> Vec<TokenKey> {
    vec![TokenKey {
        blob: ed25519_blob(7),
        label: "pkcs11:test".into(),
        token: "serial/label".into(),
    }]
}

#[test]
fn a_list_reply_after_removal_does_not_bring_keys_back() {
    let agent = test_agent();
    let p = register(&agent, "/m.so");
    assert_eq!(sync_if_current(&agent, &p, &token_keys()), Some(1));
    assert_eq!(agent.keys.external_count("/m.so"), 1);
    // ssh-add -e while a LIST is in flight; its reply arrives afterwards.
    assert_eq!(remove_module(&agent, "/m.so"), Ok(1));
    assert!(p.stopped.load(Ordering::Acquire));
    assert_eq!(sync_if_current(&agent, &p, &token_keys()), None);
    assert_eq!(agent.keys.external_count("/m.so"), 0);
}

#[test]
fn a_stale_provider_neither_syncs_nor_removes_the_module_added_again() {
    let agent = test_agent();
    let old = register(&agent, "/m.so");
    assert_eq!(remove_module(&agent, "/m.so"), Ok(0));
    let new = register(&agent, "/m.so");
    assert_eq!(sync_if_current(&agent, &new, &token_keys()), Some(1));
    // The old supervisor wakes up late: its reply, its expiry and its drop are ignored.
    assert_eq!(sync_if_current(&agent, &old, &token_keys()), None);
    assert_eq!(withdraw_if_current(&agent, &old), 0);
    remove_provider(&agent, &old);
    assert_eq!(agent.pkcs11.modules(), ["/m.so"]);
    assert_eq!(agent.keys.external_count("/m.so"), 1);
    assert!(!new.stopped.load(Ordering::Acquire));
    // The current one is removed by identity.
    remove_provider(&agent, &new);
    assert!(agent.pkcs11.modules().is_empty());
    assert_eq!(agent.keys.external_count("/m.so"), 0);
}

#[test]
fn re_added_module_replaces_the_identities_of_the_old_one() {
    let agent = test_agent();
    let old = register(&agent, "/m.so");
    sync_if_current(&agent, &old, &token_keys());
    let serial = agent.keys.find(&ed25519_blob(7)).unwrap().serial;
    // Same path, same key, but a new provider (say, added again with -c): the identity
    // must point at the new provider, not keep the old handle.
    agent.pkcs11.providers.lock().remove("/m.so");
    let new = register(&agent, "/m.so");
    sync_if_current(&agent, &new, &token_keys());
    let id = agent.keys.find(&ed25519_blob(7)).unwrap();
    assert_ne!(id.serial, serial);
    let instance = id.external.as_ref().unwrap().instance();
    assert_eq!(instance, Arc::as_ptr(&new) as *const () as usize);
}

#[test]
fn module_files_must_be_regular_unshared_and_owned() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("lib.so");
    std::fs::write(&lib, b"not really a module").unwrap();
    std::fs::set_permissions(&lib, std::fs::Permissions::from_mode(0o644)).unwrap();
    let file = ModuleFile::check(&lib).unwrap();
    file.recheck(&lib).unwrap();
    // Group- or world-writable: refused.
    std::fs::set_permissions(&lib, std::fs::Permissions::from_mode(0o666)).unwrap();
    assert!(ModuleFile::check(&lib).unwrap_err().contains("writable"));
    assert!(file.recheck(&lib).is_err());
    // A symlink as the final component: refused (O_NOFOLLOW).
    std::fs::set_permissions(&lib, std::fs::Permissions::from_mode(0o644)).unwrap();
    let link = dir.path().join("link.so");
    std::os::unix::fs::symlink(&lib, &link).unwrap();
    assert!(ModuleFile::check(&link).is_err());
    // A directory: refused.
    assert!(ModuleFile::check(dir.path()).is_err());
    // Replaced by another file at the same path: the re-check notices.
    let other = dir.path().join("other.so");
    std::fs::write(&other, b"another module").unwrap();
    std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::rename(&other, &lib).unwrap();
    assert!(file.recheck(&lib).unwrap_err().contains("replaced"));
}

#[test]
fn helper_environment_keeps_only_what_modules_need() {
    use std::ffi::OsString;
    let vars = [
        "PATH",
        "SOFTHSM2_CONF",
        "OPENSC_CONF",
        "LC_ALL",
        "P11_KIT_DEBUG",
        "SSH_AUTH_SOCK",
        "NOTIFY_SOCKET",
        "LISTEN_FDS",
        "LISTEN_PID",
        "SECRETIVEX_CONFIG",
        "AWS_SECRET",
    ]
    .map(|k| (OsString::from(k), OsString::from("x")));
    let kept: Vec<_> = crate::pkcs11_helper::helper_env(vars.into_iter())
        .into_iter()
        .map(|(k, _)| k.into_string().unwrap())
        .collect();
    assert_eq!(
        kept,
        [
            "PATH",
            "SOFTHSM2_CONF",
            "OPENSC_CONF",
            "LC_ALL",
            "P11_KIT_DEBUG"
        ]
    );
}
