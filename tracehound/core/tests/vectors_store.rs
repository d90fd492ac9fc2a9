//! v1 vectors for the store side of the core: `audit_chain`, `audit_chain_edge`,
//! `rate_limiter`, `quarantine`, `evidence_factory` (../shared/vectors/tracehound-v1.json).

mod vectors_support;

use std::sync::Arc;

use serde_json::Value;
use tracehound_core::audit::{AuditChain, ChainFault, ChainHash, RecordKind};
use tracehound_core::evidence::{EvidenceFactory, HotPathCodec};
use tracehound_core::quarantine::{
    InsertOutcome, QuarantineConfig, QuarantineStats, QuarantineStore,
};
use tracehound_core::rate_limit::{RateLimitConfig, RateLimitDecision, RateLimiter};
use tracehound_core::types::{Severity, ThreatCategory, ThreatSignal};

fn vectors() -> Value {
    vectors_support::serde_sections(&[
        "audit_chain",
        "audit_chain_edge",
        "rate_limiter",
        "quarantine",
        "evidence_factory",
    ])
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not a string in {v}"))
}

fn f(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number in {v}"))
}

fn u(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is not an unsigned integer in {v}"))
}

/// Appends one vector record and checks hash input and exported form.
fn append_and_check(chain: &mut AuditChain, case: &Value) {
    let rec = &case["input_record"];
    let kind = if rec.get("status").is_some() {
        RecordKind::Neutralization
    } else {
        RecordKind::Evacuation
    };
    let (id, sig, ts) = (s(rec, "id"), s(rec, "signature"), f(rec, "timestamp"));
    assert_eq!(
        AuditChain::hash_input(id, sig, ts, &chain.last_hash()),
        s(case, "hash_input"),
        "hash input of {id}"
    );
    let prev = chain.last_hash();
    let hash = chain.append(kind, id, sig, ts);
    let exp = &case["exported"];
    assert_eq!(hash.to_hex(), s(exp, "hash"), "hash of {id}");
    assert_eq!(prev.to_hex(), s(exp, "previousHash"));
    assert_eq!(kind.as_str(), s(exp, "type"));
    let view = chain.get(chain.len() - 1).unwrap();
    assert_eq!(
        (view.id, view.signature, view.timestamp),
        (s(exp, "id"), s(exp, "signature"), f(exp, "timestamp"))
    );
}

/// Our JSON export, parsed, must equal the vector's exported objects value for value.
fn assert_export_matches(chain: &AuditChain, exported: &[Value]) {
    let ours: Value = serde_json::from_str(&chain.export_json()).unwrap();
    assert_eq!(ours.as_array().unwrap().as_slice(), exported);
    let back = AuditChain::import_json(&chain.export_json()).unwrap();
    assert_eq!(back.export(), chain.export());
    assert_eq!(back.verify(), Ok(()));
}

#[test]
fn audit_chain_vectors() {
    let v = vectors();
    let ac = &v["audit_chain"];
    assert_eq!(ChainHash::GENESIS.to_hex(), s(ac, "genesis_hash"));
    let mut chain = AuditChain::new();
    let appends = ac["appends"].as_array().unwrap();
    for case in appends {
        append_and_check(&mut chain, case);
    }
    assert_eq!(chain.last_hash().to_hex(), s(ac, "final_lastHash"));
    assert_eq!(chain.len() as u64, u(ac, "length"));
    assert_eq!(chain.verify().is_ok(), ac["verify"].as_bool().unwrap());
    let exported: Vec<Value> = appends.iter().map(|c| c["exported"].clone()).collect();
    assert_export_matches(&chain, &exported);

    // v1 mutates exported[1].timestamp and verify() turns false.
    let mut recs = chain.export();
    recs[1].timestamp += 1.0;
    let err = AuditChain::import(recs).verify().unwrap_err();
    assert!(!ac["verify_after_tamper"].as_bool().unwrap());
    assert_eq!((err.index, err.fault), (1, ChainFault::HashMismatch));
    // Exporting never shares state with the chain (v1's shallow-copy bug is gone).
    assert_eq!(chain.verify(), Ok(()));
}

#[test]
fn audit_chain_edge_vectors() {
    let v = vectors();
    for case in v["audit_chain_edge"].as_array().unwrap() {
        let mut chain = AuditChain::new();
        append_and_check(&mut chain, case);
        assert_export_matches(&chain, std::slice::from_ref(&case["exported"]));
    }
}

#[test]
fn v1_export_text_imports_and_verifies() {
    let v = vectors();
    let exported: Vec<Value> = v["audit_chain"]["appends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["exported"].clone())
        .collect();
    // Pretty-printed, as a v1 user would write it with JSON.stringify(x, null, 2).
    let text = serde_json::to_string_pretty(&exported).unwrap();
    let chain = AuditChain::import_json(&text).unwrap();
    assert_eq!(chain.verify(), Ok(()));
    assert_eq!(
        chain.last_hash().to_hex(),
        s(&v["audit_chain"], "final_lastHash")
    );
    let tampered = text.replacen("1700000000500", "1700000000501", 1);
    let err = AuditChain::import_json(&tampered)
        .unwrap()
        .verify()
        .unwrap_err();
    assert_eq!(err.index, 2);
}

#[test]
fn rate_limiter_vectors() {
    let v = vectors();
    for case in v["rate_limiter"].as_array().unwrap() {
        let c = &case["config"];
        let cfg = RateLimitConfig {
            window_ms: u(c, "windowMs"),
            max_requests: usize::try_from(u(c, "maxRequests")).unwrap(),
            block_duration_ms: u(c, "blockDurationMs"),
            ..RateLimitConfig::default()
        };
        let rl = RateLimiter::new(cfg).unwrap();
        let mut checked = 0;
        for step in case["steps"].as_array().unwrap() {
            if let Some(now) = step.get("now") {
                let now = now.as_u64().unwrap();
                let got = rl.check(s(step, "source"), now);
                let want = &step["result"];
                match got {
                    RateLimitDecision::Allowed => {
                        assert!(want["allowed"].as_bool().unwrap(), "at {now}: {want}")
                    }
                    RateLimitDecision::Rejected {
                        blocked,
                        retry_after_ms,
                        reason,
                    } => {
                        assert!(!want["allowed"].as_bool().unwrap(), "at {now}: {want}");
                        assert_eq!(blocked, want["blocked"].as_bool().unwrap(), "at {now}");
                        assert_eq!(retry_after_ms, u(want, "retryAfter"), "at {now}");
                        assert_eq!(reason.message(), s(want, "reason"), "at {now}");
                    }
                }
                checked += 1;
            } else if let Some(stats) = step.get("stats") {
                let got = rl.stats(30_000);
                assert_eq!(got.sources as u64, u(stats, "sources"));
                assert_eq!(got.blocked as u64, u(stats, "blocked"));
                assert_eq!(got.total_checks, u(stats, "totalChecks"));
                assert_eq!(got.total_rejections, u(stats, "totalRejections"));
            } else {
                assert_eq!(rl.cleanup(30_000) as u64, u(step, "cleaned"));
                let after = &step["stats_after"];
                let got = rl.stats(30_000);
                assert_eq!(got.sources as u64, u(after, "sources"));
                assert_eq!(got.total_checks, u(after, "totalChecks"));
                assert_eq!(got.total_rejections, u(after, "totalRejections"));
            }
        }
        assert_eq!(checked, 15);
    }
}

fn stats_match(got: QuarantineStats, want: &Value) {
    assert_eq!(got.count as u64, u(want, "count"));
    assert_eq!(got.bytes as u64, u(want, "bytes"));
    let bs = &want["bySeverity"];
    for sev in Severity::ALL {
        assert_eq!(
            got.by_severity.get(sev) as u64,
            u(bs, sev.as_str()),
            "{sev} in {want}"
        );
    }
}

#[test]
fn quarantine_vectors() {
    let v = vectors();
    let factory = EvidenceFactory::new();
    for case in v["quarantine"].as_array().unwrap() {
        let name = s(case, "name");
        let c = &case["config"];
        let cfg = QuarantineConfig {
            max_count: usize::try_from(u(c, "maxCount")).unwrap(),
            max_bytes: usize::try_from(u(c, "maxBytes")).unwrap(),
        };
        let mut q = QuarantineStore::new(cfg);
        let mut all_evicted = Vec::new();
        for (i, step) in case["steps"].as_array().unwrap().iter().enumerate() {
            let ins = &step["insert"];
            let payload: Value = serde_json::from_str(s(ins, "payload_json")).unwrap();
            let threat = ThreatSignal {
                category: ThreatCategory::Injection,
                severity: s(ins, "severity").parse().unwrap(),
            };
            let ev = factory
                .create_from(&payload, threat, f(ins, "captured"), 1_000_000_000)
                .unwrap();
            assert_eq!(ev.signature(), s(ins, "signature"), "{name} step {i}");
            if let Some(size) = ins["size"].as_u64() {
                assert_eq!(ev.size() as u64, size);
            }
            let handle = ev.handle();
            let outcome = q.insert(ev, 1_700_000_000_000.0);
            let evicted: Vec<String> = match &outcome {
                InsertOutcome::Inserted {
                    evicted,
                    self_evicted,
                    ..
                } => {
                    assert_eq!(s(step, "result"), "inserted", "{name} step {i}");
                    assert_eq!(
                        *self_evicted,
                        step["new_evidence_disposed"].as_bool().unwrap()
                    );
                    evicted.iter().map(|h| h.signature().to_owned()).collect()
                }
                InsertOutcome::Duplicate { existing, rejected } => {
                    assert_eq!(s(step, "result"), "duplicate", "{name} step {i}");
                    assert_eq!(existing.signature(), rejected.signature());
                    Vec::new()
                }
            };
            assert_eq!(
                handle.is_disposed(),
                step["new_evidence_disposed"].as_bool().unwrap(),
                "{name} step {i}"
            );
            drop(outcome);
            let want: Vec<&str> = step["evicted_signatures"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap())
                .collect();
            assert_eq!(evicted, want, "{name} step {i}");
            all_evicted.extend(evicted);
            if let Some(rem) = step.get("remaining") {
                let want: Vec<&str> = rem
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_str().unwrap())
                    .collect();
                let got: Vec<String> = q
                    .insertion_order()
                    .iter()
                    .map(|h| h.signature().to_owned())
                    .collect();
                assert_eq!(got, want, "{name} step {i}");
            }
            stats_match(q.stats(), &step["stats"]);
        }
        // Every eviction was audited, in order, and the chain verifies.
        let audited: Vec<String> = q.audit().iter().map(|r| r.signature.to_owned()).collect();
        assert_eq!(audited, all_evicted, "{name}");
        assert!(q
            .audit()
            .iter()
            .all(|r| r.kind == RecordKind::Neutralization));
        assert_eq!(q.audit().verify(), Ok(()));
    }
}

fn b64(text: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("bad base64"),
    };
    let clean: Vec<u8> = text.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::new();
    for chunk in clean.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= u32::from(val(c)) << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

#[test]
fn evidence_factory_vectors() {
    let v = vectors();
    let cases = v["evidence_factory"].as_array().unwrap();
    let cold = tracehound_core::codec::cold_path_codec();
    let plain = cases
        .iter()
        .find(|c| s(c, "codec") == "none")
        .expect("a no-codec case");
    let canonical = b64(s(plain, "evidence_bytes_b64"));
    for case in cases {
        let codec = s(case, "codec");
        let factory = if codec == "none" {
            EvidenceFactory::new()
        } else {
            let hot: Arc<dyn HotPathCodec> = Arc::new(tracehound_core::codec::hot_path_codec());
            EvidenceFactory::with_codec(hot)
        };
        let payload: Value = serde_json::from_str(s(case, "scent_payload_json")).unwrap();
        let t = &case["threat"];
        let threat = ThreatSignal {
            category: s(t, "category").parse().unwrap(),
            severity: s(t, "severity").parse().unwrap(),
        };
        let ev = factory
            .create_from(&payload, threat, f(case, "evidence_captured"), 1_000_000)
            .unwrap();
        assert!(case["ok"].as_bool().unwrap());
        assert_eq!(ev.signature(), s(case, "signature"));
        assert_eq!(ev.hash(), s(case, "hash"));
        assert_eq!(ev.compressed(), case["compressed"].as_bool().unwrap());
        assert_eq!(ev.captured(), f(case, "evidence_captured"));
        assert_eq!(ev.severity(), Severity::Critical);
        assert_eq!(ev.size(), ev.bytes().len());
        let vector_bytes = b64(s(case, "evidence_bytes_b64"));
        if ev.compressed() {
            // gzip bytes are zlib-specific (spec §11.4): compare what they decode to.
            assert_eq!(cold.decode(ev.bytes()).unwrap(), canonical);
            assert_eq!(cold.decode(&vector_bytes).unwrap(), canonical);
        } else {
            assert_eq!(ev.bytes(), vector_bytes.as_slice());
            assert_eq!(ev.size() as u64, u(case, "size"));
        }
    }
}
