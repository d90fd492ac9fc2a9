//! The bytes of one audit line and the hash that chains it to the next.
//!
//! A line is one JSON object followed by `\n`. Its last field, `prev`, is the lowercase hex
//! SHA-256 of the previous line's bytes (the whole JSON object, without its `\n`); the first
//! line of a log carries [`GENESIS`]. `seq` counts every line of the log from 1.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::time::rfc3339_ms;
use crate::{Decision, Event, Outcome};

/// `prev` of the very first line of a log: 64 zeros.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// SHA-256 of one line's bytes (without its newline): the next line's `prev`.
pub(crate) type LineHash = [u8; 32];

/// The hash the next line must carry as `prev`.
pub(crate) fn line_hash(line: &[u8]) -> LineHash {
    Sha256::digest(line).into()
}

/// `hash` as lowercase hex, without allocating.
pub(crate) fn hex32(hash: &[u8; 32]) -> [u8; 64] {
    let mut out = [0u8; 64];
    // Encoding 32 bytes into 64 always fits.
    let _ = hex::encode_to_slice(hash, &mut out);
    out
}

/// Where the chain stands: the last line's `seq` (0 before the first line) and the hash the
/// next line must carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Chain {
    pub(crate) seq: u64,
    pub(crate) prev: [u8; 32],
}

impl Chain {
    /// The chain of an empty log.
    pub(crate) const GENESIS: Chain = Chain {
        seq: 0,
        prev: [0; 32],
    };
}

/// What a line says, before it is chained.
#[derive(Debug)]
pub(crate) enum Entry<'a> {
    /// One decision of the agent.
    Decision(&'a Decision),
    /// Decisions lost before they were written (queue full, or a failed write).
    Dropped { count: u64 },
    /// Rotated files removed by `keep`; the log now starts at `resume_seq`, whose `prev` is
    /// `resume_prev`. Lets `verify` tell a pruned start from a deleted one.
    Pruned {
        removed: &'a [String],
        resume_seq: u64,
        resume_prev: [u8; 32],
    },
    /// Bytes of an incomplete last line (a crash mid-write) cut off when the log was reopened.
    TornTail { bytes: u64 },
}

#[derive(Serialize)]
struct DecisionLine<'a> {
    time: &'a str,
    seq: u64,
    event: Event,
    decision: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<&'a str>,
    peer_uid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    peer_pid: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    peer_exe: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_fingerprint: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dest_host_key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dest_user: Option<&'a str>,
    forwarded: bool,
    latency_us: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    data_sha256: Option<&'a str>,
    prev: &'a str,
}

#[derive(Serialize)]
struct DroppedLine<'a> {
    time: &'a str,
    seq: u64,
    event: &'static str,
    dropped: u64,
    prev: &'a str,
}

#[derive(Serialize)]
struct PrunedLine<'a> {
    time: &'a str,
    seq: u64,
    event: &'static str,
    removed: &'a [String],
    resume_seq: u64,
    resume_prev: &'a str,
    prev: &'a str,
}

#[derive(Serialize)]
struct TornLine<'a> {
    time: &'a str,
    seq: u64,
    event: &'static str,
    torn_bytes: u64,
    prev: &'a str,
}

/// Appends `entry` as line number `chain.seq + 1` to `buf` (with its newline) and advances
/// `chain`. `now` stamps lines that are not decisions.
pub(crate) fn encode(
    buf: &mut Vec<u8>,
    chain: &mut Chain,
    entry: &Entry<'_>,
    now: std::time::SystemTime,
) {
    let start = buf.len();
    let seq = chain.seq + 1;
    let prev_hex = hex32(&chain.prev);
    let prev = as_str(&prev_hex);
    let result = match entry {
        Entry::Decision(d) => {
            let time = rfc3339_ms(d.time);
            let data = d.data_sha256.as_ref().map(hex32);
            let line = DecisionLine {
                time: as_str(&time),
                seq,
                event: d.event,
                decision: d.outcome,
                rule: d.rule.as_deref(),
                peer_uid: d.peer_uid,
                peer_pid: d.peer_pid,
                peer_exe: d.peer_exe.as_deref(),
                key_fingerprint: d.key_fingerprint.as_deref(),
                dest_host_key: d.dest_host_key.as_deref(),
                dest_user: d.dest_user.as_deref(),
                forwarded: d.forwarded,
                latency_us: u64::try_from(d.latency.as_micros()).unwrap_or(u64::MAX),
                data_sha256: data.as_ref().map(|h| as_str(h)),
                prev,
            };
            serde_json::to_writer(&mut *buf, &line)
        }
        Entry::Dropped { count } => {
            let time = rfc3339_ms(now);
            let line = DroppedLine {
                time: as_str(&time),
                seq,
                event: "dropped",
                dropped: *count,
                prev,
            };
            serde_json::to_writer(&mut *buf, &line)
        }
        Entry::Pruned {
            removed,
            resume_seq,
            resume_prev,
        } => {
            let time = rfc3339_ms(now);
            let resume_hex = hex32(resume_prev);
            let line = PrunedLine {
                time: as_str(&time),
                seq,
                event: "pruned",
                removed,
                resume_seq: *resume_seq,
                resume_prev: as_str(&resume_hex),
                prev,
            };
            serde_json::to_writer(&mut *buf, &line)
        }
        Entry::TornTail { bytes } => {
            let time = rfc3339_ms(now);
            let line = TornLine {
                time: as_str(&time),
                seq,
                event: "torn_tail",
                torn_bytes: *bytes,
                prev,
            };
            serde_json::to_writer(&mut *buf, &line)
        }
    };
    // Serializing plain structs of strings and integers into a Vec cannot fail; should it
    // ever, the partial bytes are removed so the buffer keeps whole lines only.
    if result.is_err() {
        buf.truncate(start);
        return;
    }
    chain.prev = line_hash(buf.get(start..).unwrap_or_default());
    chain.seq = seq;
    buf.push(b'\n');
}

/// Views ASCII bytes (hex digits, timestamps) as `str`.
fn as_str(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or_default()
}

/// The fields of a line that the chain and its verification need; the rest is ignored so that
/// lines from newer writers still verify.
#[derive(Debug, Deserialize)]
pub(crate) struct LineHead {
    pub(crate) seq: u64,
    pub(crate) prev: String,
    #[serde(default)]
    pub(crate) event: Option<String>,
    #[serde(default)]
    pub(crate) resume_seq: Option<u64>,
    #[serde(default)]
    pub(crate) resume_prev: Option<String>,
}

impl LineHead {
    /// Parses one line (without its newline).
    pub(crate) fn parse(line: &[u8]) -> Result<LineHead, String> {
        let head: LineHead = serde_json::from_slice(line).map_err(|e| e.to_string())?;
        // Verification and the writer count on `seq + 1` and `seq - 1` existing.
        if head.seq == 0 || head.seq == u64::MAX {
            return Err("seq must be between 1 and 2^64 - 2".to_owned());
        }
        if matches!(head.resume_seq, Some(0 | u64::MAX)) {
            return Err("resume_seq must be between 1 and 2^64 - 2".to_owned());
        }
        Ok(head)
    }

    /// `prev` as bytes, when it is 64 hex digits.
    pub(crate) fn prev_hash(&self) -> Option<[u8; 32]> {
        parse_hex32(&self.prev)
    }
}

/// 64 hex digits as 32 bytes.
pub(crate) fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn decision() -> Decision {
        Decision {
            time: UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
            event: Event::Sign,
            peer_uid: 1000,
            peer_pid: Some(4242),
            peer_exe: Some("/usr/bin/ssh".into()),
            key_fingerprint: Some("SHA256:abc".into()),
            dest_host_key: Some("SHA256:host".into()),
            dest_user: Some("git\nuser".into()),
            forwarded: true,
            outcome: Outcome::ConfirmAllow,
            rule: Some("ci".into()),
            latency: Duration::from_micros(41),
            data_sha256: Some([0xab; 32]),
        }
    }

    #[test]
    fn decision_line_has_every_field_in_order() {
        let mut buf = Vec::new();
        let mut chain = Chain::GENESIS;
        encode(
            &mut buf,
            &mut chain,
            &Entry::Decision(&decision()),
            UNIX_EPOCH,
        );
        let text = String::from_utf8(buf.clone()).unwrap();
        let expected = format!(
            "{{\"time\":\"2023-11-14T22:13:20.123Z\",\"seq\":1,\"event\":\"sign\",\
             \"decision\":\"confirm_allow\",\"rule\":\"ci\",\"peer_uid\":1000,\"peer_pid\":4242,\
             \"peer_exe\":\"/usr/bin/ssh\",\"key_fingerprint\":\"SHA256:abc\",\
             \"dest_host_key\":\"SHA256:host\",\"dest_user\":\"git\\nuser\",\"forwarded\":true,\
             \"latency_us\":41,\"data_sha256\":\"{}\",\"prev\":\"{GENESIS}\"}}\n",
            "ab".repeat(32)
        );
        assert_eq!(text, expected);
        // The newline inside a value is escaped: one decision stays one line.
        assert_eq!(text.matches('\n').count(), 1);
        assert_eq!(chain.seq, 1);
        assert_eq!(chain.prev, line_hash(&buf[..buf.len() - 1]));
    }

    #[test]
    fn unknown_fields_are_left_out() {
        let mut d = decision();
        d.peer_pid = None;
        d.peer_exe = None;
        d.key_fingerprint = None;
        d.dest_host_key = None;
        d.dest_user = None;
        d.rule = None;
        d.data_sha256 = None;
        let mut buf = Vec::new();
        let mut chain = Chain::GENESIS;
        encode(&mut buf, &mut chain, &Entry::Decision(&d), UNIX_EPOCH);
        let text = String::from_utf8(buf).unwrap();
        for absent in [
            "peer_pid",
            "peer_exe",
            "key_fingerprint",
            "dest_",
            "rule",
            "data_sha256",
        ] {
            assert!(!text.contains(absent), "{absent} in {text}");
        }
    }

    #[test]
    fn each_line_chains_to_the_previous_bytes() {
        let mut buf = Vec::new();
        let mut chain = Chain::GENESIS;
        encode(
            &mut buf,
            &mut chain,
            &Entry::Decision(&decision()),
            UNIX_EPOCH,
        );
        encode(
            &mut buf,
            &mut chain,
            &Entry::Dropped { count: 7 },
            UNIX_EPOCH,
        );
        let removed = vec!["a.1".to_owned()];
        encode(
            &mut buf,
            &mut chain,
            &Entry::Pruned {
                removed: &removed,
                resume_seq: 9,
                resume_prev: [1; 32],
            },
            UNIX_EPOCH,
        );
        encode(
            &mut buf,
            &mut chain,
            &Entry::TornTail { bytes: 3 },
            UNIX_EPOCH,
        );
        let lines: Vec<&[u8]> = buf
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(lines.len(), 4);
        let mut prev = [0u8; 32];
        for (i, line) in lines.iter().enumerate() {
            let head = LineHead::parse(line).unwrap();
            assert_eq!(head.seq, i as u64 + 1);
            assert_eq!(head.prev_hash(), Some(prev));
            prev = line_hash(line);
        }
        assert_eq!(chain.prev, prev);
        let pruned = LineHead::parse(lines[2]).unwrap();
        assert_eq!(pruned.event.as_deref(), Some("pruned"));
        assert_eq!(pruned.resume_seq, Some(9));
        assert_eq!(
            pruned.resume_prev.as_deref(),
            Some("01".repeat(32).as_str())
        );
        let dropped: serde_json::Value = serde_json::from_slice(lines[1]).unwrap();
        assert_eq!(dropped["dropped"], 7);
    }

    #[test]
    fn heads_reject_what_cannot_chain() {
        assert!(LineHead::parse(b"not json").is_err());
        assert!(LineHead::parse(br#"{"prev":"00"}"#).is_err());
        assert!(LineHead::parse(br#"{"seq":0,"prev":"00"}"#).is_err());
        let head = LineHead::parse(br#"{"seq":3,"prev":"zz","extra":1}"#).unwrap();
        assert_eq!(head.prev_hash(), None);
    }
}
