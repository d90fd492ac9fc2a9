//! Encrypted cold objects (`THCE`) sealed under a real key vault: round trip on a local
//! store, every byte tampered fails, an erased key reads as `Erased`, and v1 objects
//! written before the vault was configured stay readable.

mod common;

use std::sync::Arc;

use proptest::prelude::*;
use sha2::{Digest, Sha256};
use tracehound_cold::sealed::{key_id_of, open_encrypted, seal_encrypted, HEADER_LEN};
use tracehound_cold::{ColdError, ColdStore, EvidenceSealer, SealerError};
use tracehound_core::codec::GzipCodec;
use tracehound_core::types::Severity;
use tracehound_vault::{KeyId, KeyMeta, Vault, VaultError};

/// The vault as a sealer (the daemon's adapter adds its erasure index on top).
#[derive(Debug)]
struct VaultSealer(Vault);

fn map(e: VaultError) -> SealerError {
    match e {
        VaultError::Erased { .. } => SealerError::Erased,
        VaultError::Tampered { .. } => SealerError::Tampered,
        other => SealerError::Failed(other.to_string()),
    }
}

impl EvidenceSealer for VaultSealer {
    fn key_for(&self, signature: &str) -> Result<[u8; 16], SealerError> {
        let meta = KeyMeta {
            signature: signature.into(),
            sources: vec!["198.51.100.4".into()],
            scent_ids: vec![],
        };
        self.0.key_for(&meta).map(|k| k.0).map_err(map)
    }
    fn encrypt(&self, k: &[u8; 16], aad: &[u8], p: &[u8]) -> Result<Vec<u8>, SealerError> {
        self.0.encrypt(&KeyId(*k), aad, p).map_err(map)
    }
    fn decrypt(&self, k: &[u8; 16], aad: &[u8], s: &[u8]) -> Result<Vec<u8>, SealerError> {
        self.0.decrypt(&KeyId(*k), aad, s).map_err(map)
    }
    fn discard(&self, signature: &str) -> Result<(), SealerError> {
        match self.0.find_signature(signature) {
            Some(id) => self.0.destroy(&id).map(|_| ()).map_err(map),
            None => Ok(()),
        }
    }
}

fn vault(dir: &std::path::Path) -> Arc<VaultSealer> {
    Arc::new(VaultSealer(Vault::open(dir.join("vault"), 1000).unwrap()))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn sealed_objects_round_trip_hide_the_payload_and_read_as_erased_once_shredded() {
    let dir = tempfile::tempdir().unwrap();
    let sealer = vault(dir.path());
    let store = ColdStore::local(dir.path().join("cold"), "p").unwrap();
    // Written before the vault: a v1 object, still readable afterwards.
    let old = common::evidence(1, Severity::High, 10);
    store.put(&old).await.unwrap();
    assert!(store.set_sealer(Arc::clone(&sealer) as Arc<dyn EvidenceSealer>));
    assert!(!store.set_sealer(Arc::clone(&sealer) as Arc<dyn EvidenceSealer>));
    for ev in [
        common::evidence(2, Severity::Low, 300),
        common::compressed_evidence(3, Severity::Low, 300),
    ] {
        let sig = ev.signature().to_owned();
        store.put(&ev).await.unwrap();
        let raw = store.get_raw(&sig).await.unwrap();
        assert_eq!(&raw[..4], b"THCE");
        assert!(
            !contains(&raw, b"203.0.113.9"),
            "payload visible in the object"
        );
        let back = store.get(&sig).await.unwrap();
        assert_eq!(hex::encode(Sha256::digest(&back.payload)), back.hash());
        assert!(contains(&back.payload, b"203.0.113.9"));
        let key = KeyId(key_id_of(&raw).unwrap());
        assert!(sealer.0.destroy(&key).unwrap());
        let err = store.get(&sig).await.unwrap_err();
        assert!(matches!(err, ColdError::Erased { .. }), "{err}");
    }
    assert_eq!(store.get(old.signature()).await.unwrap().hash(), old.hash());
    // Deleting a sealed object discards its key (no key, no metadata left behind).
    let ev = common::evidence(5, Severity::Low, 5);
    store.put(&ev).await.unwrap();
    assert!(sealer.0.find_signature(ev.signature()).is_some());
    store.delete(ev.signature()).await.unwrap();
    assert!(sealer.0.find_signature(ev.signature()).is_none());
    assert!(sealer.0.find_source("198.51.100.4").is_empty());
    // A sealed object without the vault is refused, not misread.
    let plain = ColdStore::local(dir.path().join("cold"), "p").unwrap();
    let ev = common::evidence(4, Severity::Low, 5);
    store.put(&ev).await.unwrap();
    assert!(matches!(
        plain.get(ev.signature()).await,
        Err(ColdError::Config { .. })
    ));
}

#[test]
fn erased_signatures_cannot_be_sealed() {
    #[derive(Debug)]
    struct Refusing;
    impl EvidenceSealer for Refusing {
        fn key_for(&self, _: &str) -> Result<[u8; 16], SealerError> {
            Err(SealerError::Erased)
        }
        fn encrypt(&self, _: &[u8; 16], _: &[u8], _: &[u8]) -> Result<Vec<u8>, SealerError> {
            Err(SealerError::Erased)
        }
        fn decrypt(&self, _: &[u8; 16], _: &[u8], _: &[u8]) -> Result<Vec<u8>, SealerError> {
            Err(SealerError::Erased)
        }
    }
    let ev = common::evidence(9, Severity::Low, 1);
    let err = seal_encrypted(
        &GzipCodec::new(),
        &Refusing,
        ev.signature(),
        ev.bytes(),
        false,
    )
    .unwrap_err();
    assert!(matches!(err, ColdError::Erased { .. }), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Changing any one byte of a sealed object (header, nonce, ciphertext or tag), or
    /// truncating or extending it, or opening it under another signature, is refused as
    /// corrupt; it is never returned as evidence.
    #[test]
    fn tampering_any_byte_is_refused(
        n in 0u64..1000,
        pad in 0usize..400,
        pos in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let sealer = vault(dir.path());
        let codec = GzipCodec::new();
        let ev = common::evidence(n, Severity::Medium, pad);
        let sig = ev.signature();
        let sealed = seal_encrypted(&codec, sealer.as_ref(), sig, ev.bytes(), false).unwrap();
        let obj = sealed.envelope;
        prop_assert!(obj.len() > HEADER_LEN);
        prop_assert!(open_encrypted(&codec, Some(sealer.as_ref()), sig, &obj).is_ok());
        let mut bad = obj.clone();
        let i = pos.index(bad.len());
        bad[i] ^= flip;
        let r = open_encrypted(&codec, Some(sealer.as_ref()), sig, &bad);
        // Flipping the magic makes it "not THCE"; a changed key id names a key the vault
        // never issued (erased); everything else fails authentication or a check.
        let refused = matches!(r, Err(ColdError::Corrupt { .. } | ColdError::Erased { .. }));
        prop_assert!(refused, "byte {} accepted: {:?}", i, r.map(|e| e.signature));
        let r = open_encrypted(&codec, Some(sealer.as_ref()), sig, &obj[..i]);
        let corrupt = matches!(r, Err(ColdError::Corrupt { .. }));
        prop_assert!(corrupt);
        let mut longer = obj.clone();
        longer.push(0);
        let r = open_encrypted(&codec, Some(sealer.as_ref()), sig, &longer);
        let corrupt = matches!(r, Err(ColdError::Corrupt { .. }));
        prop_assert!(corrupt);
        let other = format!("spam:{}", sig.split_once(':').unwrap().1);
        let r = open_encrypted(&codec, Some(sealer.as_ref()), &other, &obj);
        let corrupt = matches!(r, Err(ColdError::Corrupt { .. }));
        prop_assert!(corrupt);
    }
}

/// Refuses one signature (an erasure tombstone).
#[derive(Debug)]
struct Refuse(String);

impl tracehound_cold::WriteFilter for Refuse {
    fn refuses(&self, signature: &str) -> bool {
        signature == self.0
    }
}

/// The evacuator checks the write filter just before writing, with or without a sealer:
/// a refused evidence is never stored (and its fresh key is discarded), the other one is.
#[tokio::test]
async fn the_write_filter_stops_refused_evidence_with_and_without_a_vault() {
    use tracehound_cold::{EvacuationConfig, Evacuator};
    use tracehound_core::quarantine::Quarantine;
    for sealed in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let store = ColdStore::local(dir.path().join("cold"), "ev").unwrap();
        let v = vault(dir.path());
        if sealed {
            assert!(store.set_sealer(Arc::clone(&v) as _));
        }
        let (refused, kept) = (
            common::evidence(1, Severity::High, 64),
            common::evidence(2, Severity::High, 64),
        );
        let (sig_r, sig_k) = (refused.signature().to_owned(), kept.signature().to_owned());
        assert!(store.set_write_filter(Arc::new(Refuse(sig_r.clone()))));
        assert!(
            !store.set_write_filter(Arc::new(Refuse(String::new()))),
            "set once"
        );
        let evac = Evacuator::start(
            store.clone(),
            EvacuationConfig::default(),
            &tokio::runtime::Handle::current(),
        );
        let q = Quarantine::new(Default::default());
        q.insert(refused, 0.0);
        q.insert(kept, 0.0);
        evac.evacuate(&q, &sig_r, 1.0).unwrap();
        evac.evacuate(&q, &sig_k, 2.0).unwrap();
        evac.wait_idle().await;
        assert!(!store.contains(&sig_r).await.unwrap(), "sealed={sealed}");
        assert!(store.contains(&sig_k).await.unwrap(), "sealed={sealed}");
        let s = evac.stats();
        assert_eq!((s.objects_written, s.failures), (1, 1), "sealed={sealed}");
        if sealed {
            assert!(v.0.find_signature(&sig_r).is_none(), "no orphan key");
            assert!(v.0.find_signature(&sig_k).is_some());
        }
        evac.shutdown().await;
    }
}
