//! Secure ids: a UUIDv7 and 8 random hex digits (spec §6).
//!
//! v1 builds them from `uuid@10`'s `v7()` (48-bit ms time, version 7, a 32-bit sequence
//! counter per RFC 9562 §6.2 method 1 that starts at a random 31-bit value in each new
//! millisecond and is incremented for every further id in the same millisecond, variant
//! `10`, the rest random) and `crypto.randomBytes(4)`.
//!
//! Randomness comes from the thread's CSPRNG (`rand::thread_rng`: ChaCha, seeded from the
//! OS and reseeded periodically), not from a system call per id. The v7 state (last
//! millisecond and counter) is per thread as well, so no lock is shared between threads:
//! ids made by one thread strictly increase; ids from different threads are ordered by
//! millisecond.

use std::cell::Cell;

use rand::RngCore;

/// Length of a secure id: 36 (UUID) + 1 + 8.
pub const SECURE_ID_LEN: usize = 45;

thread_local! {
    /// `(last millisecond, sequence counter)` of this thread's latest UUIDv7.
    static V7_STATE: Cell<(u64, u32)> = const { Cell::new((0, 0)) };
}

/// The next `(millisecond, counter)` after `state` at time `now_ms`, as `uuid@10` does: a
/// later millisecond starts a fresh random 31-bit counter; the same or an earlier one
/// (clock stepped back) keeps the last millisecond and increments the counter, moving to
/// the next millisecond when the 32-bit counter wraps. Strictly increasing either way.
fn v7_step(state: (u64, u32), now_ms: u64, random31: u32) -> (u64, u32) {
    let (ms, seq) = state;
    if now_ms > ms {
        return (now_ms, random31 & 0x7fff_ffff);
    }
    let seq = seq.wrapping_add(1);
    if seq == 0 {
        (ms.saturating_add(1), 0)
    } else {
        (ms, seq)
    }
}

/// The 16 UUID bytes for `(ms, seq)` and 6 further random bytes (`uuid@10`'s layout:
/// 48-bit time, `0111` + counter bits 31..20, `10` + counter bits 19..6, counter bits 5..0
/// + 2 random bits, 40 random bits).
fn v7_bytes(ms: u64, seq: u32, random: &[u8; 6]) -> [u8; 16] {
    let mut b = [0u8; 16];
    let [_, _, t0, t1, t2, t3, t4, t5] = ms.to_be_bytes();
    let [r0, r1, r2, r3, r4, r5] = *random;
    b[..6].copy_from_slice(&[t0, t1, t2, t3, t4, t5]);
    b[6] = 0x70 | ((seq >> 28) & 0x0f) as u8;
    b[7] = (seq >> 20) as u8;
    b[8] = 0x80 | ((seq >> 14) & 0x3f) as u8;
    b[9] = (seq >> 6) as u8;
    b[10] = ((seq << 2) as u8) | (r0 & 0x03);
    b[11..].copy_from_slice(&[r1, r2, r3, r4, r5]);
    b
}

fn system_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Writes a new secure id into `buf` without allocating and returns it as `&str` (the
/// quarantine's eviction path makes one per evicted item).
pub fn write_secure_id(buf: &mut [u8; SECURE_ID_LEN]) -> &str {
    // 4 bytes: a fresh counter; 6: the UUID's random tail; 4: the suffix.
    let mut random = [0u8; 14];
    rand::thread_rng().fill_bytes(&mut random);
    let [c0, c1, c2, c3, u0, u1, u2, u3, u4, u5, s0, s1, s2, s3] = random;
    let now = system_now_ms();
    let (ms, seq) = V7_STATE.with(|state| {
        let next = v7_step(state.get(), now, u32::from_be_bytes([c0, c1, c2, c3]));
        state.set(next);
        next
    });
    let uuid = uuid::Uuid::from_bytes(v7_bytes(ms, seq, &[u0, u1, u2, u3, u4, u5]));
    let (uuid_part, rest) = buf.split_at_mut(36);
    uuid.hyphenated().encode_lower(uuid_part);
    let suffix = crate::hexfmt::hex4(&[s0, s1, s2, s3]);
    if let Some((dash, tail)) = rest.split_first_mut() {
        *dash = b'-';
        tail.copy_from_slice(&suffix);
    }
    // Every byte written above is ASCII.
    std::str::from_utf8(buf).unwrap_or("")
}

/// A new id `{uuidv7}-{8 lowercase hex}`, e.g. `018bcfe5-6800-733c-8b71-81aa855932cb-5b7f69b3`.
pub fn generate_secure_id() -> String {
    let mut buf = [0u8; SECURE_ID_LEN];
    write_secure_id(&mut buf).to_owned()
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
    fn generated_ids_are_valid_distinct_and_increasing() {
        let ids: Vec<String> = (0..10_000).map(|_| generate_secure_id()).collect();
        for id in &ids {
            assert!(is_valid_secure_id(id), "{id}");
            assert_eq!(id, &id.to_lowercase());
        }
        // One thread: the UUID parts strictly increase (time, then counter).
        for w in ids.windows(2) {
            assert!(w[0][..36] < w[1][..36], "{} !< {}", w[0], w[1]);
        }
    }

    #[test]
    fn ids_carry_the_current_millisecond() {
        let before = system_now_ms();
        let id = generate_secure_id();
        let after = system_now_ms();
        let hex: String = id[..13].chars().filter(|&c| c != '-').collect();
        let ms = u64::from_str_radix(&hex, 16).unwrap();
        // The counter may carry into a later millisecond only after 2^32 ids.
        assert!(
            before <= ms && ms <= after.max(before),
            "{before} {ms} {after}"
        );
        let uuid = uuid::Uuid::parse_str(&id[..36]).unwrap();
        assert_eq!(uuid.get_version_num(), 7);
        assert_eq!(uuid.get_variant(), uuid::Variant::RFC4122);
    }

    #[test]
    fn counter_follows_uuid_v10() {
        // New millisecond: counter is the random value's low 31 bits.
        assert_eq!(v7_step((5, 9), 6, 0xffff_ffff), (6, 0x7fff_ffff));
        // Same millisecond, or the clock stepped back: increment.
        assert_eq!(v7_step((6, 41), 6, 7), (6, 42));
        assert_eq!(v7_step((6, 41), 2, 7), (6, 42));
        // Wrap: the next millisecond with counter 0.
        assert_eq!(v7_step((6, u32::MAX), 6, 7), (7, 0));
    }

    #[test]
    fn layout_places_time_version_counter_and_variant() {
        let b = v7_bytes(0x0123_4567_89ab, 0xfedc_ba98, &[0xff, 1, 2, 3, 4, 5]);
        let u = uuid::Uuid::from_bytes(b).hyphenated().to_string();
        // Counter 0xfedcba98: 0111 + f, ed; 10 + bits 19..14 (0x32) = b2; bits 13..6 = ea;
        // bits 5..0 (0x18) << 2 | 3 = 63.
        assert_eq!(u, "01234567-89ab-7fed-b2ea-630102030405");
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
