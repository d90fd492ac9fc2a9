//! Unit tests of the key store.
use super::*;
use crate::keyops;
use crate::test_support::ed25519_wire;

fn new_identity(seed: u8, comment: &str, lifetime: Option<Duration>) -> NewIdentity {
    let wire = ed25519_wire(seed);
    let key = KeyPair::from_wire(&wire).unwrap();
    NewIdentity {
        blob: key.public_blob().to_vec(),
        fingerprint: key.fingerprint(),
        key: Arc::new(key),
        private: keyops::sealable_body(&wire),
        comment: comment.to_string(),
        lifetime,
        confirm: false,
        destinations: Vec::new(),
    }
}

fn comments(store: &KeyStore) -> Vec<String> {
    store.snapshot().iter().map(|i| i.comment.clone()).collect()
}

#[test]
fn add_replace_remove_keep_order() {
    let store = KeyStore::new().unwrap();
    assert_eq!(
        store.add(new_identity(1, "a", None), |_| true),
        AddOutcome::Added
    );
    assert_eq!(
        store.add(new_identity(2, "b", None), |_| true),
        AddOutcome::Added
    );
    assert_eq!(
        store.add(new_identity(1, "a2", None), |_| true),
        AddOutcome::Replaced
    );
    assert_eq!(comments(&store), ["a2", "b"]);
    let blob_a = store.snapshot()[0].blob.clone();
    assert!(
        !store.remove(&blob_a, |_| false),
        "invisible keys are not removed"
    );
    assert!(store.remove(&blob_a, |_| true));
    assert!(!store.remove(&blob_a, |_| true));
    assert_eq!(comments(&store), ["b"]);
    assert_eq!(store.remove_all(), 1);
    assert!(store.is_empty());
}

#[test]
fn invisible_existing_key_is_not_replaced() {
    let store = KeyStore::new().unwrap();
    store.add(new_identity(1, "orig", None), |_| true);
    assert_eq!(
        store.add(new_identity(1, "evil", None), |_| false),
        AddOutcome::Refused
    );
    assert_eq!(comments(&store), ["orig"]);
}

#[test]
fn sweep_uses_the_given_clock() {
    let store = KeyStore::new().unwrap();
    store.add(
        new_identity(1, "short", Some(Duration::from_secs(10))),
        |_| true,
    );
    store.add(
        new_identity(2, "long", Some(Duration::from_secs(100))),
        |_| true,
    );
    store.add(new_identity(3, "forever", None), |_| true);
    let now = Instant::now();
    assert_eq!(store.sweep_expired_at(now), 0);
    assert_eq!(store.sweep_expired_at(now + Duration::from_secs(11)), 1);
    assert_eq!(comments(&store), ["long", "forever"]);
    assert_eq!(store.sweep_expired_at(now + Duration::from_secs(1000)), 1);
    assert_eq!(comments(&store), ["forever"]);
}

#[test]
fn answer_frame_lists_all_and_is_rebuilt_after_changes() {
    let store = KeyStore::new().unwrap();
    let empty = store.answer_frame();
    assert_eq!(
        Response::decode(&empty[4..]).unwrap(),
        Response::Identities(vec![])
    );
    store.add(new_identity(1, "a", None), |_| true);
    let one = store.answer_frame();
    assert!(Arc::ptr_eq(&one, &store.answer_frame()));
    let Response::Identities(ids) = Response::decode(&one[4..]).unwrap() else {
        panic!("not an identities answer");
    };
    assert_eq!(ids.len(), 1);
    assert_eq!(ids[0].comment, "a");
    store.remove_all();
    assert_eq!(
        Response::decode(&store.answer_frame()[4..]).unwrap(),
        Response::Identities(vec![])
    );
}

#[test]
fn sealed_store_refuses_adds_and_reopens_only_with_its_key() {
    let store = KeyStore::new().unwrap();
    store.add(new_identity(1, "a", None), |_| true);
    let lock_key = SealingKey::random().unwrap();
    assert_eq!(store.seal_all(&lock_key), 1);
    assert!(store.is_locked());
    assert_eq!(
        store.add(new_identity(2, "b", None), |_| true),
        AddOutcome::Locked
    );
    // The wrong key opens nothing: the identity is dropped rather than kept half-alive.
    let other = SealingKey::random().unwrap();
    let parse = |b: &[u8]| keyops::key_from_sealable_body(b);
    let clone_store = KeyStore::new().unwrap();
    clone_store.add(new_identity(3, "c", None), |_| true);
    clone_store.seal_all(&lock_key);
    assert_eq!(clone_store.unseal_all(&other, parse), 0);
    assert!(clone_store.is_empty());
    // The right key restores the key pair.
    assert_eq!(store.unseal_all(&lock_key, parse), 1);
    assert!(!store.is_locked());
    let id = &store.snapshot()[0];
    let sig = id.key.as_ref().unwrap().sign(b"m", 0).unwrap();
    secretivex_keys::verify_signature(&id.blob, b"m", &sig).unwrap();
}
