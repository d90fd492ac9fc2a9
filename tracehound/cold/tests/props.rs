//! Property tests: any payload survives seal → open byte-identical, and any single
//! altered byte or truncation of the envelope is reported as corrupt.

use proptest::prelude::*;
use sha2::{Digest, Sha256};
use tracehound_cold::{ColdError, ColdStore};

fn store() -> ColdStore {
    ColdStore::new(
        std::sync::Arc::new(object_store::memory::InMemory::new()),
        "p",
        "memory",
    )
}

fn signature(payload: &[u8]) -> String {
    format!("flood:{}", hex::encode(Sha256::digest(payload)))
}

proptest! {
    #[test]
    fn envelope_round_trips(payload in proptest::collection::vec(any::<u8>(), 1..4096), compress_first in any::<bool>()) {
        let s = store();
        let sig = signature(&payload);
        let codec = tracehound_core::codec::GzipCodec::new();
        let stored = if compress_first { codec.encode(&payload).unwrap() } else { payload.clone() };
        let sealed = s.seal(&sig, &stored, compress_first).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(s.put_sealed(&sealed)).unwrap();
        let back = rt.block_on(s.get(&sig)).unwrap();
        prop_assert_eq!(&back.payload, &payload);
        if compress_first {
            prop_assert_eq!(&back.compressed, &stored);
        }
    }

    #[test]
    fn any_altered_byte_or_truncation_is_corrupt(
        payload in proptest::collection::vec(any::<u8>(), 1..512),
        at in any::<prop::sample::Index>(),
        xor in 1u8..=255,
        cut in any::<prop::sample::Index>(),
    ) {
        let s = store();
        let sig = signature(&payload);
        let sealed = s.seal(&sig, &payload, false).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let path = object_store::path::Path::from(s.key_for(&sig).unwrap());
        let mut bad = sealed.envelope.clone();
        let i = at.index(bad.len());
        bad[i] ^= xor;
        let truncated = sealed.envelope[..cut.index(sealed.envelope.len())].to_vec();
        for object in [bad, truncated] {
            rt.block_on(object_store::ObjectStoreExt::put(
                s.object_store().as_ref(), &path, object.into())).unwrap();
            let got = rt.block_on(s.get(&sig));
            prop_assert!(matches!(got, Err(ColdError::Corrupt { .. })), "{:?}", got.map(|e| e.payload.len()));
        }
    }
}
