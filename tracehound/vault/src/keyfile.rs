//! The key file format: one file per key, `{key id hex}.key`, mode 0600.
//!
//! All integers big-endian:
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 4 | magic `THVK` |
//! | 4 | 1 | version = 1 |
//! | 5 | 16 | key id (must match the file name) |
//! | 21 | 32 | the AES-256-GCM key |
//! | 53 | 2+n | evidence signature (u16 length, UTF-8) |
//! | … | 2 | number of sources, then each as u16 length + UTF-8 |
//! | … | 2 | number of scent ids, then each as u16 length + UTF-8 |
//!
//! Trailing bytes are an error. The metadata is what an erasure request names (a source
//! address, a scent id, a signature), so it is kept only here, next to the key, and goes
//! when the key goes.

use std::fmt;

use zeroize::Zeroizing;

/// Longest signature, source or scent id stored (bytes).
pub const MAX_FIELD_LEN: usize = 1024;
/// Most sources remembered per key; later ones are not recorded (and counted).
pub const MAX_SOURCES_PER_KEY: usize = 64;
/// Most scent ids remembered per key; later ones are not recorded (and counted).
pub const MAX_SCENTS_PER_KEY: usize = 64;

const MAGIC: &[u8; 4] = b"THVK";
const VERSION: u8 = 1;
pub(crate) const KEY_LEN: usize = 32;

/// A random 128-bit key identifier.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 16]);

impl KeyId {
    /// Lowercase hex (the file name stem).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 32 lowercase hex digits.
    pub fn from_hex(s: &str) -> Option<KeyId> {
        if s.len() != 32 || s.bytes().any(|b| b.is_ascii_uppercase()) {
            return None;
        }
        let mut out = [0u8; 16];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(KeyId(out))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.to_hex())
    }
}

/// Who and what a key belongs to: what erasure requests are matched against.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct KeyMeta {
    /// The evidence signature (`category:sha256hex`).
    pub signature: String,
    /// Sources whose intercepts produced this evidence.
    pub sources: Vec<String>,
    /// Scent ids of those intercepts.
    pub scent_ids: Vec<String>,
}

impl fmt::Debug for KeyMeta {
    // Sources and scent ids are personal data: count them, never print them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyMeta")
            .field("signature", &self.signature)
            .field("sources", &self.sources.len())
            .field("scent_ids", &self.scent_ids.len())
            .finish()
    }
}

impl KeyMeta {
    /// Adds what `other` knows that `self` does not, within the per-key caps. Returns
    /// `(changed, not_recorded)`.
    pub(crate) fn merge(&mut self, other: &KeyMeta) -> (bool, usize) {
        let mut changed = false;
        let mut dropped = 0;
        for (mine, theirs, cap) in [
            (&mut self.sources, &other.sources, MAX_SOURCES_PER_KEY),
            (&mut self.scent_ids, &other.scent_ids, MAX_SCENTS_PER_KEY),
        ] {
            for v in theirs {
                if v.is_empty() || v.len() > MAX_FIELD_LEN || mine.contains(v) {
                    continue;
                }
                if mine.len() >= cap {
                    dropped += 1;
                    continue;
                }
                mine.push(v.clone());
                changed = true;
            }
        }
        (changed, dropped)
    }
}

/// A decoded key file.
pub(crate) struct KeyFile {
    pub id: KeyId,
    pub key: Zeroizing<[u8; KEY_LEN]>,
    pub meta: KeyMeta,
}

/// Serialises a key file (the buffer is zeroized when dropped: it holds the key).
pub(crate) fn encode(id: &KeyId, key: &[u8; KEY_LEN], meta: &KeyMeta) -> Zeroizing<Vec<u8>> {
    // Exact size: growing the buffer would free the old one (holding the key) unzeroized.
    let field = |s: &str| 2 + s.len().min(MAX_FIELD_LEN);
    let list_len = |list: &[String]| {
        2 + list
            .iter()
            .take(usize::from(u16::MAX))
            .map(|s| field(s))
            .sum::<usize>()
    };
    let len = MAGIC.len()
        + 1
        + id.0.len()
        + key.len()
        + field(&meta.signature)
        + list_len(&meta.sources)
        + list_len(&meta.scent_ids);
    let mut out = Zeroizing::new(Vec::with_capacity(len));
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&id.0);
    out.extend_from_slice(key);
    put_str(&mut out, &meta.signature);
    for list in [&meta.sources, &meta.scent_ids] {
        let n = list.len().min(usize::from(u16::MAX));
        out.extend_from_slice(&(n as u16).to_be_bytes());
        for s in list.iter().take(n) {
            put_str(&mut out, s);
        }
    }
    debug_assert_eq!(out.len(), len, "the key file buffer never reallocates");
    out
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Callers cap fields at MAX_FIELD_LEN, far below u16::MAX.
    let bytes = s.as_bytes();
    let n = bytes.len().min(MAX_FIELD_LEN);
    out.extend_from_slice(&(n as u16).to_be_bytes());
    out.extend_from_slice(bytes.get(..n).unwrap_or_default());
}

/// Parses a key file; the reason on failure names the field.
pub(crate) fn decode(bytes: &[u8]) -> Result<KeyFile, &'static str> {
    let mut r = Reader { bytes, pos: 0 };
    if r.take(4)? != MAGIC {
        return Err("bad magic");
    }
    if r.take(1)? != [VERSION] {
        return Err("unsupported version");
    }
    let mut id = [0u8; 16];
    id.copy_from_slice(r.take(16)?);
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    key.copy_from_slice(r.take(KEY_LEN)?);
    let signature = r.string()?;
    if signature.is_empty() {
        return Err("empty signature");
    }
    let mut lists = [Vec::new(), Vec::new()];
    for (list, cap) in lists
        .iter_mut()
        .zip([MAX_SOURCES_PER_KEY, MAX_SCENTS_PER_KEY])
    {
        let n = usize::from(r.u16()?);
        if n > cap {
            return Err("too many metadata entries");
        }
        for _ in 0..n {
            list.push(r.string()?);
        }
    }
    if r.pos != bytes.len() {
        return Err("trailing bytes");
    }
    let [sources, scent_ids] = lists;
    Ok(KeyFile {
        id: KeyId(id),
        key,
        meta: KeyMeta {
            signature,
            sources,
            scent_ids,
        },
    })
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        let end = self.pos.checked_add(n).ok_or("truncated")?;
        let out = self.bytes.get(self.pos..end).ok_or("truncated")?;
        self.pos = end;
        Ok(out)
    }

    fn u16(&mut self) -> Result<u16, &'static str> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn string(&mut self) -> Result<String, &'static str> {
        let n = usize::from(self.u16()?);
        if n > MAX_FIELD_LEN {
            return Err("field too long");
        }
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| "field is not UTF-8")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (KeyId, [u8; 32], KeyMeta) {
        (
            KeyId([7; 16]),
            [9; 32],
            KeyMeta {
                signature: "spam:ab".into(),
                sources: vec!["10.0.0.1".into(), "10.0.0.2".into()],
                scent_ids: vec!["s-1".into()],
            },
        )
    }

    #[test]
    fn round_trips() {
        let (id, key, meta) = sample();
        let bytes = encode(&id, &key, &meta);
        let back = decode(&bytes).unwrap();
        assert_eq!((back.id, *back.key, back.meta), (id, key, meta));
    }

    #[test]
    fn every_truncation_and_trailing_byte_is_refused() {
        let (id, key, meta) = sample();
        let bytes = encode(&id, &key, &meta);
        for n in 0..bytes.len() {
            assert!(decode(&bytes[..n]).is_err(), "prefix {n}");
        }
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert_eq!(decode(&longer).err(), Some("trailing bytes"));
    }

    #[test]
    fn merge_caps_and_dedups() {
        let mut m = KeyMeta {
            signature: "x:y".into(),
            ..KeyMeta::default()
        };
        let many = KeyMeta {
            signature: "x:y".into(),
            sources: (0..MAX_SOURCES_PER_KEY + 3)
                .map(|i| format!("s{i}"))
                .collect(),
            scent_ids: vec!["a".into(), "a".into()],
        };
        assert_eq!(m.merge(&many), (true, 3));
        assert_eq!(
            (m.sources.len(), m.scent_ids.len()),
            (MAX_SOURCES_PER_KEY, 1)
        );
        assert_eq!(m.merge(&many), (false, 3));
        assert!(format!("{m:?}").contains("sources: 64"));
    }

    #[test]
    fn key_ids_parse_only_lowercase_hex() {
        let id = KeyId([0xab; 16]);
        assert_eq!(KeyId::from_hex(&id.to_hex()), Some(id));
        assert_eq!(KeyId::from_hex(&id.to_hex().to_uppercase()), None);
        assert_eq!(KeyId::from_hex("abc"), None);
    }
}
