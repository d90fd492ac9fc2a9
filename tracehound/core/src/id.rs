//! Secure ids: a UUIDv7 and 8 random hex digits (spec §6).

use rand::RngCore;

/// Length of a secure id: 36 (UUID) + 1 + 8.
pub const SECURE_ID_LEN: usize = 45;

/// A new id `{uuidv7}-{8 lowercase hex}`, e.g. `018bcfe5-6800-733c-8b71-81aa855932cb-5b7f69b3`.
///
/// The UUID carries the current millisecond time and a monotonic counter (ids from one
/// process sort by creation); the suffix is 4 bytes from the thread's CSPRNG.
pub fn generate_secure_id() -> String {
    let uuid = uuid::Uuid::now_v7();
    let mut suffix = [0u8; 4];
    rand::thread_rng().fill_bytes(&mut suffix);
    let mut id = String::with_capacity(SECURE_ID_LEN);
    id.push_str(
        uuid.hyphenated()
            .encode_lower(&mut uuid::Uuid::encode_buffer()),
    );
    id.push('-');
    id.push_str(&hex::encode(suffix));
    id
}

/// v1 `isValidSecureId`: 45 characters; the first five `-`-separated parts form a UUID
/// with version 7 and variant `8..b`; the sixth part is 8 hex digits. Case-insensitive.
pub fn is_valid_secure_id(id: &str) -> bool {
    if id.len() != SECURE_ID_LEN {
        return false;
    }
    let parts: Vec<&str> = id.split('-').collect();
    let [a, b, c, d, e, suffix] = parts.as_slice() else {
        return false;
    };
    let hex_len = |s: &str, n: usize| s.len() == n && s.bytes().all(|x| x.is_ascii_hexdigit());
    hex_len(a, 8)
        && hex_len(b, 4)
        && hex_len(c, 4)
        && c.starts_with('7')
        && hex_len(d, 4)
        && d.starts_with(['8', '9', 'a', 'b', 'A', 'B'])
        && hex_len(e, 12)
        && hex_len(suffix, 8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_valid_and_distinct() {
        let ids: Vec<String> = (0..1000).map(|_| generate_secure_id()).collect();
        for id in &ids {
            assert!(is_valid_secure_id(id), "{id}");
            assert_eq!(id, &id.to_lowercase());
        }
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), ids.len());
    }

    #[test]
    fn rejects_malformed() {
        assert!(!is_valid_secure_id(""));
        assert!(!is_valid_secure_id(
            "0190a6b2-7c3e-7abc-8def-0123456789ab-deadbeef-"
        ));
        assert!(!is_valid_secure_id(
            "0190a6b27c3e-7abc-8def-0123456789ab-deadbeef-0"
        ));
        assert!(!is_valid_secure_id(
            "0190a6b2-7c3e-7abc-8def-0123456789ab-déadbee"
        ));
    }
}
