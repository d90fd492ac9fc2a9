//! Round trips, corruption and lifecycle operations against the local directory store
//! and a real S3-compatible server (moto on loopback).

mod common;

use std::collections::BTreeSet;

use futures_util::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use sha2::{Digest, Sha256};
use tracehound_cold::{ColdError, ColdStore};
use tracehound_core::types::Severity;

use common::{compressed_evidence, evidence, start_moto};

/// put → get for plain and compressed evidence: payload byte-identical, verified, raw
/// object equals the envelope written; list and delete see exactly what was put.
async fn round_trip(store: &ColdStore) {
    let plain = evidence(1, Severity::High, 3000);
    let packed = compressed_evidence(2, Severity::Low, 3000);
    let r1 = store.put(&plain).await.unwrap();
    let r2 = store.put(&packed).await.unwrap();
    assert_eq!(r1.key, store.key_for(plain.signature()).unwrap());
    assert!(r1.key.ends_with(".thcs") && r1.key.starts_with("tracehound/evidence/injection/"));

    let back = store.get(plain.signature()).await.unwrap();
    assert_eq!(back.payload, plain.bytes(), "plain payload byte-identical");
    assert_eq!(hex::encode(Sha256::digest(&back.payload)), plain.hash());
    assert_eq!(back.object_len, r1.bytes);
    let sealed = store.seal(plain.signature(), plain.bytes(), false).unwrap();
    assert_eq!(
        store.get_raw(plain.signature()).await.unwrap(),
        sealed.envelope
    );

    let back = store.get(packed.signature()).await.unwrap();
    assert_eq!(
        back.compressed,
        packed.bytes(),
        "stored gzip byte-identical"
    );
    assert_eq!(hex::encode(Sha256::digest(&back.payload)), packed.hash());
    assert_eq!(back.object_len, r2.bytes);

    let listed: BTreeSet<String> = store
        .list(None)
        .unwrap()
        .map_ok(|o| o.signature)
        .try_collect()
        .await
        .unwrap();
    let expected: BTreeSet<String> = [plain.signature(), packed.signature()]
        .map(str::to_owned)
        .into();
    assert_eq!(listed, expected);
    assert_eq!(
        store
            .list(Some("spam"))
            .unwrap()
            .try_collect::<Vec<_>>()
            .await
            .unwrap(),
        vec![]
    );

    assert!(store.contains(plain.signature()).await.unwrap());
    store.delete(plain.signature()).await.unwrap();
    store.delete(plain.signature()).await.unwrap(); // idempotent
    assert!(!store.contains(plain.signature()).await.unwrap());
    assert!(matches!(
        store.get(plain.signature()).await,
        Err(ColdError::NotFound { .. })
    ));
    assert!(matches!(
        store.get("injection:../../etc/passwd").await,
        Err(ColdError::InvalidSignature { .. })
    ));
}

fn corrupt_reason(r: Result<tracehound_cold::ColdEvidence, ColdError>, sig: &str) -> String {
    match r {
        Err(ColdError::Corrupt { signature, reason }) => {
            assert_eq!(signature, sig);
            reason
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[tokio::test]
async fn local_store_round_trip_is_byte_identical_and_verified() {
    let dir = tempfile::tempdir().unwrap();
    let store = ColdStore::local(dir.path().join("cold"), "tracehound/evidence").unwrap();
    round_trip(&store).await;
}

#[tokio::test]
async fn local_store_reports_flipped_and_truncated_objects_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let store = ColdStore::local(dir.path(), "tracehound/evidence").unwrap();
    let ev = evidence(7, Severity::Critical, 500);
    let sig = ev.signature().to_owned();
    let receipt = store.put(&ev).await.unwrap();
    let file = dir.path().join(&receipt.key);
    let good = std::fs::read(&file).unwrap();
    assert_eq!(store.get(&sig).await.unwrap().payload, ev.bytes());

    // One flipped bit in the gzip body: the envelope's hash no longer matches.
    let mut bad = good.clone();
    *bad.last_mut().unwrap() ^= 0x01;
    std::fs::write(&file, &bad).unwrap();
    let reason = corrupt_reason(store.get(&sig).await, &sig);
    assert!(reason.contains("hash mismatch"), "{reason}");

    // A flipped byte in the header's size field.
    let mut bad = good.clone();
    bad[9] ^= 0x40;
    std::fs::write(&file, &bad).unwrap();
    corrupt_reason(store.get(&sig).await, &sig);

    // Truncated: the length no longer matches the header.
    std::fs::write(&file, &good[..good.len() - 10]).unwrap();
    let reason = corrupt_reason(store.get(&sig).await, &sig);
    assert!(reason.contains("length"), "{reason}");
    std::fs::write(&file, &good[..40]).unwrap();
    corrupt_reason(store.get(&sig).await, &sig);

    // A valid envelope of other evidence copied under this key.
    let other = evidence(8, Severity::Critical, 500);
    let other_receipt = store.put(&other).await.unwrap();
    std::fs::copy(dir.path().join(other_receipt.key), &file).unwrap();
    let reason = corrupt_reason(store.get(&sig).await, &sig);
    assert!(reason.contains("signature"), "{reason}");

    // Rewriting the evidence repairs it.
    store.put(&ev).await.unwrap();
    assert_eq!(store.get(&sig).await.unwrap().payload, ev.bytes());
}

#[tokio::test]
async fn s3_round_trip_is_byte_identical_and_verified() {
    let Some(moto) = start_moto() else { return };
    let store = moto.store("th-roundtrip");
    assert_eq!(store.description(), "s3://th-roundtrip/tracehound/evidence");
    round_trip(&store).await;
}

#[tokio::test]
async fn s3_store_reports_overwritten_objects_as_corrupt() {
    let Some(moto) = start_moto() else { return };
    let store = moto.store("th-corrupt");
    let ev = evidence(9, Severity::Medium, 2000);
    let sig = ev.signature().to_owned();
    let receipt = store.put(&ev).await.unwrap();
    let good = store.get_raw(&sig).await.unwrap();
    let key = Path::from(receipt.key.as_str());
    let raw = store.object_store();

    let mut flipped = good.clone();
    flipped[100] ^= 0xff;
    for (bad, what) in [
        (flipped, "flipped byte"),
        (good[..good.len() / 2].to_vec(), "truncated"),
        (b"not an envelope at all".to_vec(), "garbage"),
    ] {
        raw.put(&key, PutPayload::from(bad)).await.unwrap();
        let reason = corrupt_reason(store.get(&sig).await, &sig);
        assert!(!reason.is_empty(), "{what}");
    }
    store.put(&ev).await.unwrap();
    assert_eq!(store.get(&sig).await.unwrap().payload, ev.bytes());
}

#[tokio::test]
async fn oversized_objects_are_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = ColdStore::local(dir.path(), "p")
        .unwrap()
        .with_max_object_bytes(100);
    let ev = evidence(1, Severity::Low, 1000);
    store.put(&ev).await.unwrap();
    let reason = corrupt_reason(store.get(ev.signature()).await, ev.signature());
    assert!(reason.contains("limit"), "{reason}");
}

#[test]
fn s3_config_checks_and_redacts() {
    let mut config = tracehound_cold::S3Config {
        bucket: "b".into(),
        endpoint: Some("http://127.0.0.1:9".into()),
        secret_access_key: Some("very-secret".into()),
        ..Default::default()
    };
    assert!(matches!(
        ColdStore::s3(&config, "p"),
        Err(ColdError::Config { .. })
    ));
    assert!(!format!("{config:?}").contains("very-secret"));
    config.allow_http = true;
    config.bucket.clear();
    assert!(matches!(
        ColdStore::s3(&config, "p"),
        Err(ColdError::Config { .. })
    ));
}

#[test]
fn config_parses_from_toml() {
    let c: tracehound_cold::ColdConfig = toml::from_str(
        r#"
        [s3]
        bucket = "ev"
        region = "auto"
        endpoint = "https://acct.r2.cloudflarestorage.com"
        [evacuation]
        queue_capacity = 8
        "#,
    )
    .unwrap();
    assert_eq!(c.s3.as_ref().map(|s| s.bucket.as_str()), Some("ev"));
    assert_eq!(
        (c.evacuation.queue_capacity, c.evacuation.max_attempts),
        (8, 5)
    );
    assert_eq!(c.prefix, "tracehound/evidence");
    assert!(toml::from_str::<tracehound_cold::ColdConfig>("[local]\npath='x'\nbogus=1").is_err());
    let both: tracehound_cold::ColdConfig =
        toml::from_str("[local]\npath='x'\n[s3]\nbucket='b'").unwrap();
    assert!(matches!(
        ColdStore::from_config(&both),
        Err(ColdError::Config { .. })
    ));
}
