//! Where an object lives: the key layout derived from an evidence signature.
//!
//! `{prefix}/{category}/{hash[0..2]}/{hash}.thcs`, e.g.
//! `tracehound/evidence/injection/9f/9f86…0f00.thcs`. The prefix defaults to v1's
//! (`tracehound/evidence`), the extension is v1's THCS envelope's. The category level lets
//! lifecycle work list one category; the two-hex-digit level keeps directories of the
//! local store to at most 256 entries per level. The signature can be rebuilt from the
//! key, so listing needs no index.

use object_store::path::Path;

use crate::ColdError;

/// The default key prefix (v1's S3 adapter prefix, without the trailing slash).
pub const DEFAULT_PREFIX: &str = "tracehound/evidence";
/// Object name extension (the THCS envelope).
pub const EXTENSION: &str = "thcs";
/// Longest category name accepted in a signature.
const MAX_CATEGORY_LEN: usize = 32;

/// A checked evidence signature, split into its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignatureParts<'a> {
    /// The threat category (`injection`, ...).
    pub category: &'a str,
    /// The lowercase hex SHA-256 of the uncompressed canonical payload.
    pub hash: &'a str,
}

/// Splits and checks `"{category}:{hash}"`: category of 1–32 `[a-z0-9_-]`, hash of 64
/// lowercase hex digits. Anything else cannot name an object (and cannot escape the
/// prefix through `..` or `/`).
pub fn parse_signature(signature: &str) -> Result<SignatureParts<'_>, ColdError> {
    let invalid = |reason| ColdError::InvalidSignature { reason };
    let (category, hash) = signature
        .split_once(':')
        .ok_or_else(|| invalid("missing ':' between category and hash"))?;
    if category.is_empty() || category.len() > MAX_CATEGORY_LEN {
        return Err(invalid("category must be 1 to 32 characters"));
    }
    if !category
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return Err(invalid(
            "category must be lowercase letters, digits, '_' or '-'",
        ));
    }
    if hash.len() != 64 || !hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(invalid("hash must be 64 lowercase hex digits"));
    }
    Ok(SignatureParts { category, hash })
}

/// The object key for `signature` under `prefix`.
pub fn object_path(prefix: &Path, signature: &str) -> Result<Path, ColdError> {
    let SignatureParts { category, hash } = parse_signature(signature)?;
    let shard = hash.get(..2).unwrap_or(hash);
    Ok(prefix
        .clone()
        .join(category)
        .join(shard)
        .join(format!("{hash}.{EXTENSION}")))
}

/// The signature an object key under `prefix` stands for, if it follows the layout
/// (staging files, foreign objects and misplaced shards give `None`).
pub fn signature_of(prefix: &Path, key: &Path) -> Option<String> {
    let mut parts = key.prefix_match(prefix)?;
    let category = parts.next()?;
    let shard = parts.next()?;
    let file = parts.next()?;
    if parts.next().is_some() {
        return None;
    }
    let hash = file.as_ref().strip_suffix(".thcs")?;
    let signature = format!("{}:{hash}", category.as_ref());
    parse_signature(&signature).ok()?;
    (hash.get(..2) == Some(shard.as_ref())).then_some(signature)
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    #[test]
    fn key_layout_round_trips() {
        let prefix = Path::from(DEFAULT_PREFIX);
        let sig = format!("injection:{H}");
        let key = object_path(&prefix, &sig).unwrap();
        assert_eq!(
            key.as_ref(),
            format!("tracehound/evidence/injection/2c/{H}.thcs")
        );
        assert_eq!(signature_of(&prefix, &key), Some(sig));
        let elsewhere = Path::from(format!("other/injection/2c/{H}.thcs"));
        assert_eq!(signature_of(&prefix, &elsewhere), None);
        let wrong_shard = Path::from(format!("tracehound/evidence/injection/ff/{H}.thcs"));
        assert_eq!(signature_of(&prefix, &wrong_shard), None);
    }

    #[test]
    fn bad_signatures_are_rejected() {
        for bad in [
            String::new(),
            H.to_owned(),
            format!(":{H}"),
            format!("../x:{H}"),
            format!("Injection:{H}"),
            format!("a/b:{H}"),
            "injection:abc".to_owned(),
            format!("injection:{}", H.to_uppercase()),
            format!("{}:{H}", "a".repeat(33)),
        ] {
            assert!(
                matches!(
                    parse_signature(&bad),
                    Err(ColdError::InvalidSignature { .. })
                ),
                "{bad:?} accepted"
            );
        }
    }
}
