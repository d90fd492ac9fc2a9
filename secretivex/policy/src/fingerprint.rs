//! `SHA256:<base64>` key fingerprints, as `ssh-keygen -l` prints them.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A SHA-256 key fingerprint in OpenSSH's spelling: `SHA256:` and the unpadded base64 of
/// the 32-byte digest (trailing `=` padding is accepted and dropped). Parsing fails
/// inside `Deserialize`, so a TOML error names the line and the field.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint {
    text: String,
    digest: [u8; 32],
}

/// Why a fingerprint string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FingerprintError {
    /// It does not start with `SHA256:` (MD5 fingerprints are not accepted).
    #[error("a fingerprint starts with \"SHA256:\" (as `ssh-keygen -l` prints it)")]
    Prefix,
    /// The part after `SHA256:` is not base64 of a 32-byte digest.
    #[error("not the base64 of a 32-byte SHA-256 digest")]
    Digest,
}

impl Fingerprint {
    /// The fingerprint of a 32-byte SHA-256 digest.
    pub fn from_digest(digest: &[u8; 32]) -> Fingerprint {
        let encoded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest);
        Fingerprint {
            text: format!("SHA256:{encoded}"),
            digest: *digest,
        }
    }

    /// The canonical text, `SHA256:` and 43 base64 characters.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The SHA-256 digest.
    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }
}

impl FromStr for Fingerprint {
    type Err = FingerprintError;

    fn from_str(text: &str) -> Result<Fingerprint, FingerprintError> {
        let encoded = text
            .strip_prefix("SHA256:")
            .ok_or(FingerprintError::Prefix)?;
        let encoded = encoded.trim_end_matches('=');
        let digest = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(encoded)
            .map_err(|_| FingerprintError::Digest)?;
        let digest: [u8; 32] = digest.try_into().map_err(|_| FingerprintError::Digest)?;
        Ok(Fingerprint::from_digest(&digest))
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Fingerprint {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Fingerprint {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Fingerprint, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU";

    #[test]
    fn accepts_openssh_spelling_and_padding() {
        let plain: Fingerprint = GOOD.parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plain.as_str(), GOOD);
        let padded: Result<Fingerprint, _> = format!("{GOOD}=").parse();
        assert_eq!(padded, Ok(plain));
    }

    #[test]
    fn refuses_other_spellings() {
        assert_eq!(
            "MD5:aa:bb".parse::<Fingerprint>(),
            Err(FingerprintError::Prefix)
        );
        assert_eq!(
            "sha256:47DEQ".parse::<Fingerprint>(),
            Err(FingerprintError::Prefix)
        );
        assert_eq!(
            "SHA256:".parse::<Fingerprint>(),
            Err(FingerprintError::Digest)
        );
        assert_eq!(
            "SHA256:abc".parse::<Fingerprint>(),
            Err(FingerprintError::Digest)
        );
        assert_eq!(
            "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuF!".parse::<Fingerprint>(),
            Err(FingerprintError::Digest)
        );
    }

    proptest::proptest! {
        #[test]
        fn digest_round_trips(digest in proptest::array::uniform32(0u8..)) {
            let fp = Fingerprint::from_digest(&digest);
            proptest::prop_assert_eq!(fp.as_str().parse::<Fingerprint>(), Ok(fp.clone()));
        }
    }
}
