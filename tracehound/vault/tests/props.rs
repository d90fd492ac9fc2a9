//! Properties of the vault's AEAD: every single-byte change of a ciphertext or of its
//! associated data is refused, and a destroyed key reads as erased.

use proptest::prelude::*;
use tracehound_vault::{KeyMeta, Vault, VaultError};

fn meta(sig: &str) -> KeyMeta {
    KeyMeta {
        signature: sig.into(),
        sources: vec!["192.0.2.7".into()],
        scent_ids: vec!["scent-1".into()],
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_flipped_byte_fails_authentication(
        plaintext in proptest::collection::vec(any::<u8>(), 0..512),
        aad in proptest::collection::vec(any::<u8>(), 0..64),
        pos in any::<prop::sample::Index>(),
        flip in 1u8..=255,
        in_aad in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let v = Vault::open(dir.path().join("v"), 8).unwrap();
        let id = v.key_for(&meta("spam:x")).unwrap();
        let sealed = v.encrypt(&id, &aad, &plaintext).unwrap();
        prop_assert_eq!(v.decrypt(&id, &aad, &sealed).unwrap(), plaintext.clone());
        let (mut sealed2, mut aad2) = (sealed.clone(), aad.clone());
        if in_aad && !aad2.is_empty() {
            let i = pos.index(aad2.len());
            aad2[i] ^= flip;
        } else {
            let i = pos.index(sealed2.len());
            sealed2[i] ^= flip;
        }
        let tampered = matches!(
            v.decrypt(&id, &aad2, &sealed2),
            Err(VaultError::Tampered { .. })
        );
        prop_assert!(tampered);
        // Truncated ciphertexts are refused too.
        let cut = pos.index(sealed.len());
        let truncated = matches!(
            v.decrypt(&id, &aad, &sealed[..cut]),
            Err(VaultError::Tampered { .. })
        );
        prop_assert!(truncated);
        prop_assert!(v.destroy(&id).unwrap());
        let erased = matches!(v.decrypt(&id, &aad, &sealed), Err(VaultError::Erased { .. }));
        prop_assert!(erased);
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Every file under `dir` holding `needle`.
fn holding(dir: &std::path::Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(holding(&p, needle));
        } else if std::fs::read(&p).is_ok_and(|b| contains(&b, needle)) {
            out.push(p);
        }
    }
    out
}

/// The key bytes (at their place in the key file: after magic, version and id) are
/// found on disk before destroy and nowhere after: the file's blocks were overwritten in
/// place (a hard link made beforehand still sees the same inode, now zeros), then
/// unlinked.
#[test]
fn destroyed_key_files_leave_no_key_bytes_behind() {
    let dir = tempfile::tempdir().unwrap();
    let vdir = dir.path().join("v");
    let v = Vault::open(&vdir, 8).unwrap();
    let id = v.key_for(&meta("spam:y")).unwrap();
    let path = vdir.join(format!("{id}.key"));
    let before = std::fs::read(&path).unwrap();
    assert!(before.len() > 53);
    let key = before[21..53].to_vec();
    assert_eq!(&before[5..21], &id.0, "layout: the key follows the id");
    let link = dir.path().join("same-inode");
    std::fs::hard_link(&path, &link).unwrap();
    assert_eq!(holding(dir.path(), &key).len(), 2, "the scan sees the key");
    assert!(v.destroy(&id).unwrap());
    assert!(!path.exists());
    assert_eq!(std::fs::read_dir(&vdir).unwrap().count(), 0);
    assert_eq!(holding(dir.path(), &key), Vec::<std::path::PathBuf>::new());
    let shredded = std::fs::read(&link).unwrap();
    assert_eq!(shredded.len(), before.len());
    assert!(shredded.iter().all(|&b| b == 0), "overwritten in place");
    // Reopening finds nothing for the erased source.
    drop(v);
    let v = Vault::open(&vdir, 8).unwrap();
    assert!(v.find_source("192.0.2.7").is_empty());
    assert_eq!(v.stats().keys, 0);
}
