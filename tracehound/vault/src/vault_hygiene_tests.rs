//! Key material hygiene: no symlinked key files, exactly sized key file buffers.

use super::*;
use crate::keyfile::KEY_LEN;
use std::os::unix::fs::PermissionsExt;

#[test]
fn key_files_are_not_read_through_symlinks() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let v = Vault::open(dir.path().join("v"), 10).unwrap();
    let id = v
        .key_for(&KeyMeta {
            signature: "x:1".into(),
            ..KeyMeta::default()
        })
        .unwrap();
    let real = v.path_of(&id);
    let moved = dir.path().join("elsewhere.key");
    std::fs::rename(&real, &moved).unwrap();
    std::os::unix::fs::symlink(&moved, &real).unwrap();
    assert!(
        v.encrypt(&id, b"", b"p").is_err(),
        "a symlinked key is refused"
    );
}

#[test]
fn encode_is_exactly_sized() {
    let meta = KeyMeta {
        signature: "injection:".to_owned() + &"a".repeat(64),
        sources: (0..40).map(|i| format!("10.0.0.{i}")).collect(),
        scent_ids: (0..40).map(|i| format!("scent-{i}")).collect(),
    };
    let out = keyfile::encode(&KeyId([3; 16]), &[7; KEY_LEN], &meta);
    assert_eq!(out.len(), out.capacity(), "no reallocation freed key bytes");
}
