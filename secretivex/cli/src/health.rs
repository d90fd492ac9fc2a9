//! `secretivex health`: keys an agent should not be serving.
//!
//! * unsupported: OpenSSH or SecretiveX will not use them — unknown types, DSA (SHA-1 only,
//!   removed in OpenSSH 10), RSA below 2048 or above 8192 bits;
//! * weak: RSA below 3072 bits (under 128-bit security);
//! * duplicate: the same key blob listed more than once;
//! * with `--probe`, unusable: the agent refuses to sign with the key, signs an RSA key only
//!   with SHA-1 (`ssh-rsa`), or returns a signature that does not verify.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use anyhow::Result;

use secretivex_proto::sign_flags;

use crate::client::{AgentClient, ClientError};
use crate::keyinfo::{list_keys, KeyInfo};
use crate::list::line;
use crate::Outcome;

/// RSA moduli below this are refused (and by SecretiveX at add time).
pub const RSA_UNSUPPORTED_BELOW: u32 = 2048;
/// RSA moduli below this are reported as weak.
pub const RSA_WEAK_BELOW: u32 = 3072;
/// Largest RSA modulus SecretiveX signs with.
pub const RSA_MAX: u32 = 8192;

/// How bad a finding is, worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// OpenSSH or SecretiveX will not use the key.
    Unsupported,
    /// The agent does not produce a usable signature with it (`--probe`).
    Unusable,
    /// Usable but below today's strength.
    Weak,
    /// Listed more than once.
    Duplicate,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Unsupported => "unsupported",
            Severity::Unusable => "unusable",
            Severity::Weak => "weak",
            Severity::Duplicate => "duplicate",
        })
    }
}

/// One problem with one listed key (`index` into the listing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    /// Position of the key in the agent's listing.
    pub index: usize,
    /// Human-readable explanation.
    pub reason: String,
}

/// All problems of a listing, in listing order.
pub fn analyse(keys: &[KeyInfo]) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut seen: HashMap<&[u8], usize> = HashMap::new();
    for (index, key) in keys.iter().enumerate() {
        if let Some((severity, reason)) = judge(key) {
            findings.push(Finding {
                severity,
                index,
                reason,
            });
        }
        let count = seen.entry(key.blob.as_slice()).or_insert(0);
        *count += 1;
        if *count == 2 {
            findings.push(Finding {
                severity: Severity::Duplicate,
                index,
                reason: "the same key is listed more than once".into(),
            });
        }
    }
    findings
}

fn judge(key: &KeyInfo) -> Option<(Severity, String)> {
    use Severity::*;
    match (key.base_type(), key.bits) {
        ("ssh-ed25519", _)
        | ("ecdsa-sha2-nistp256", _)
        | ("ecdsa-sha2-nistp384", _)
        | ("ecdsa-sha2-nistp521", _)
        | ("sk-ssh-ed25519@openssh.com", _)
        | ("sk-ecdsa-sha2-nistp256@openssh.com", _) => None,
        ("ssh-rsa", Some(b)) if b < RSA_UNSUPPORTED_BELOW => Some((
            Unsupported,
            format!("RSA key of {b} bits; at least {RSA_UNSUPPORTED_BELOW} are required"),
        )),
        ("ssh-rsa", Some(b)) if b > RSA_MAX => Some((
            Unsupported,
            format!("RSA key of {b} bits; at most {RSA_MAX} are supported"),
        )),
        ("ssh-rsa", Some(b)) if b < RSA_WEAK_BELOW => Some((
            Weak,
            format!("RSA key of {b} bits; use {RSA_WEAK_BELOW} or more, or Ed25519"),
        )),
        ("ssh-rsa", Some(_)) => None,
        ("ssh-rsa", None) => Some((Unsupported, "RSA key whose modulus cannot be read".into())),
        ("ssh-dss", _) => Some((
            Unsupported,
            "DSA signs only with SHA-1 and was removed from OpenSSH 10".into(),
        )),
        (other, _) => Some((Unsupported, format!("unknown key type {other}"))),
    }
}

/// The message signed by `--probe`.
const PROBE_DATA: &[u8] = b"secretivex health probe";

/// What a probe signature says about a key; `None` when it is fine.
fn judge_probe(key: &KeyInfo, result: Result<Vec<u8>, ClientError>) -> Option<String> {
    let signature = match result {
        Ok(sig) => sig,
        Err(ClientError::Refused) => return Some("the agent refused to sign with it".into()),
        Err(e) => return Some(format!("signing failed: {e}")),
    };
    let algorithm = secretivex_keys::key_type_of_blob(&signature).unwrap_or_default();
    if key.base_type() == "ssh-rsa" && algorithm == "ssh-rsa" {
        return Some("the agent signs this RSA key only with SHA-1 (ssh-rsa)".into());
    }
    match secretivex_keys::verify_signature(&key.blob, PROBE_DATA, &signature) {
        Ok(()) => None,
        Err(e) => Some(format!("the agent's signature does not verify: {e}")),
    }
}

/// Signs [`PROBE_DATA`] with every key whose type can be checked (RSA asking for SHA-512).
fn probe(client: &mut AgentClient, keys: &[KeyInfo], findings: &mut Vec<Finding>) {
    for (index, key) in keys.iter().enumerate() {
        if judge(key).is_some_and(|(s, _)| s == Severity::Unsupported) {
            continue;
        }
        let flags = if key.base_type() == "ssh-rsa" {
            sign_flags::RSA_SHA2_512
        } else {
            0
        };
        if let Some(reason) = judge_probe(key, client.sign(&key.blob, PROBE_DATA, flags)) {
            findings.push(Finding {
                severity: Severity::Unusable,
                index,
                reason,
            });
        }
    }
    findings.sort_by_key(|f| f.index);
}

/// Prints every finding and a summary; `Negative` when anything was found.
pub fn run(socket: &Path, with_probe: bool) -> Result<Outcome> {
    let mut client = AgentClient::connect(socket, None)?;
    let keys = list_keys(&mut client)?;
    let mut findings = analyse(&keys);
    if with_probe {
        probe(&mut client, &keys, &mut findings);
    }
    for f in &findings {
        if let Some(k) = keys.get(f.index) {
            println!("{}: {}: {}", f.severity, line(k), f.reason);
        }
    }
    match findings.len() {
        0 => {
            println!("{} keys, no problems", keys.len());
            Ok(Outcome::Ok)
        }
        n => {
            println!("{} keys, {n} problems", keys.len());
            Ok(Outcome::Negative)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyinfo::testkeys::{dsa_blob, ed25519_blob, rsa_blob};
    use secretivex_proto::Identity;

    fn keys(blobs: Vec<Vec<u8>>) -> Vec<KeyInfo> {
        blobs
            .into_iter()
            .map(|key_blob| {
                KeyInfo::of(&Identity {
                    key_blob,
                    comment: "k".into(),
                })
            })
            .collect()
    }

    fn severities(blobs: Vec<Vec<u8>>) -> Vec<(Severity, usize)> {
        analyse(&keys(blobs))
            .into_iter()
            .map(|f| (f.severity, f.index))
            .collect()
    }

    #[test]
    fn healthy_keys_have_no_findings() {
        assert!(severities(vec![ed25519_blob(1), rsa_blob(3072, 1), rsa_blob(4096, 2)]).is_empty());
    }

    #[test]
    fn rsa_size_thresholds() {
        assert_eq!(
            severities(vec![
                rsa_blob(1024, 1),
                rsa_blob(2048, 2),
                rsa_blob(3064, 3),
                rsa_blob(3072, 4),
                rsa_blob(8200, 5),
            ]),
            vec![
                (Severity::Unsupported, 0),
                (Severity::Weak, 1),
                (Severity::Weak, 2),
                (Severity::Unsupported, 4),
            ]
        );
    }

    #[test]
    fn dsa_and_unknown_types_are_unsupported() {
        let mut unknown = Vec::new();
        crate::keyinfo::testkeys::string(&mut unknown, b"ssh-foo@example.com");
        assert_eq!(
            severities(vec![dsa_blob(), unknown]),
            vec![(Severity::Unsupported, 0), (Severity::Unsupported, 1)]
        );
    }

    #[test]
    fn duplicates_are_reported_once_per_key() {
        assert_eq!(
            severities(vec![
                ed25519_blob(1),
                ed25519_blob(2),
                ed25519_blob(1),
                ed25519_blob(1),
            ]),
            vec![(Severity::Duplicate, 2)]
        );
    }

    fn sig(alg: &str) -> Vec<u8> {
        let mut blob = Vec::new();
        crate::keyinfo::testkeys::string(&mut blob, alg.as_bytes());
        crate::keyinfo::testkeys::string(&mut blob, &[0; 64]);
        blob
    }

    #[test]
    fn probe_results_are_judged() {
        let rsa = &keys(vec![rsa_blob(3072, 1)])[0];
        let ed = &keys(vec![ed25519_blob(1)])[0];
        assert!(judge_probe(rsa, Err(ClientError::Refused))
            .unwrap()
            .contains("refused"));
        assert!(judge_probe(rsa, Ok(sig("ssh-rsa")))
            .unwrap()
            .contains("SHA-1"));
        // A well-formed but wrong signature does not verify.
        assert!(judge_probe(rsa, Ok(sig("rsa-sha2-512")))
            .unwrap()
            .contains("does not verify"));
        assert!(judge_probe(ed, Ok(sig("ssh-ed25519")))
            .unwrap()
            .contains("does not verify"));
        assert!(judge_probe(ed, Err(ClientError::Closed))
            .unwrap()
            .contains("signing failed"));
    }
}
