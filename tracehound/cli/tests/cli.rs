//! Runs the `tracehound` binary on the shared vectors and on bad input.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use tracehound_core::canonical::{parse_json, JsValue};

fn vectors() -> JsValue {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/vectors/tracehound-v1.json");
    let text = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("test vectors missing at {} ({e})", path.display()));
    parse_json(&text).expect("vectors parse")
}

fn s<'a>(v: &'a JsValue, k: &str) -> &'a str {
    v.get(k)
        .and_then(JsValue::as_str)
        .unwrap_or_else(|| panic!("no {k}"))
}

fn run(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tracehound"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tracehound");
    {
        let mut pipe = child.stdin.take().expect("stdin");
        if let Some(data) = stdin {
            // The program may exit before reading its input (a usage error, say): a
            // closed pipe is then expected, and the exit status is what the test checks.
            if let Err(e) = pipe.write_all(data) {
                assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "write stdin: {e}");
            }
        }
    }
    child.wait_with_output().expect("wait")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("utf-8 stdout")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A failure: non-zero exit, a message on stderr, no panic.
fn assert_clean_failure(o: &Output, needle: &str) {
    let err = stderr(o);
    assert!(
        !o.status.success(),
        "expected failure, got success; stdout {}",
        stdout(o)
    );
    assert!(err.contains(needle), "stderr {err:?} lacks {needle:?}");
    assert!(!err.contains("panicked"), "{err}");
}

fn write_temp(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

#[test]
fn canonical_and_signature_match_every_vector() {
    let all = vectors();
    let dir = tempfile::tempdir().unwrap();
    let cases = all
        .get("canonical_json")
        .and_then(JsValue::as_array)
        .unwrap();
    for case in cases {
        let name = s(case, "name");
        let file = write_temp(
            dir.path(),
            &format!("{name}.json"),
            s(case, "input_json").as_bytes(),
        );
        let file = file.to_str().unwrap();
        let o = run(&["canonical", file], None);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        assert_eq!(stdout(&o), format!("{}\n", s(case, "canonical")), "{name}");
        for (cat, sig) in case.get("signatures").and_then(JsValue::as_object).unwrap() {
            let cat = cat.as_str().unwrap();
            let o = run(&["signature", "--category", cat, file], None);
            assert!(o.status.success(), "{name}/{cat}: {}", stderr(&o));
            assert_eq!(stdout(&o).trim_end(), sig.as_str().unwrap(), "{name}/{cat}");
        }
    }
}

#[test]
fn reads_standard_input() {
    let o = run(&["canonical"], Some(br#"{"b":2,"a":1}"#));
    assert_eq!(stdout(&o), "{\"a\":1,\"b\":2}\n");
    let o = run(&["signature", "-c", "injection", "-"], Some(br#"{"a":1}"#));
    assert_eq!(
        stdout(&o).trim_end(),
        "injection:015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862"
    );
}

#[test]
fn size_limit_vectors_through_the_cli() {
    let all = vectors();
    for case in all
        .get("canonical_json_errors")
        .and_then(JsValue::as_array)
        .unwrap()
    {
        let Some(input) = case.get("input_json").and_then(JsValue::as_str) else {
            continue;
        };
        let max = case
            .get("maxSize")
            .and_then(JsValue::as_f64)
            .unwrap()
            .to_string();
        let o = run(
            &["canonical", "--max-size", &max, "-"],
            Some(input.as_bytes()),
        );
        if case.get("ok").and_then(JsValue::as_bool).unwrap() {
            assert!(o.status.success(), "{}", stderr(&o));
        } else {
            let err = case.get("error").unwrap();
            assert_clean_failure(&o, s(err, "message"));
            assert_clean_failure(&o, s(err, "code"));
        }
    }
}

#[test]
fn bad_payloads_fail_cleanly() {
    assert_clean_failure(
        &run(&["canonical", "-"], Some(b"{\"a\":")),
        "not a JSON payload",
    );
    assert_clean_failure(
        &run(&["canonical", "-"], Some(b"")),
        "unexpected end of input",
    );
    assert_clean_failure(
        &run(&["canonical", "-"], Some(b"\"\xff\"")),
        "not valid UTF-8",
    );
    assert_clean_failure(
        &run(&["canonical", "-"], Some(b"[1,]")),
        "invalid JSON at byte 3",
    );
    assert_clean_failure(
        &run(&["canonical", "-"], Some(br#"{"a":[{"b":1e999}]}"#)),
        "AGENT_SERIALIZATION_FAILED: Failed to serialize: Infinity value at root.a[0].b - not allowed",
    );
    let deep = "[".repeat(100_000);
    assert_clean_failure(
        &run(&["signature", "-c", "spam"], Some(deep.as_bytes())),
        "nesting too deep",
    );
    assert_clean_failure(
        &run(&["canonical", "/nonexistent/payload.json"], None),
        "reading /nonexistent",
    );
    let o = run(&["signature", "--category", "sqli", "-"], Some(b"{}"));
    assert_clean_failure(&o, "unknown category");
    assert_clean_failure(&o, "injection, ddos, flood, spam, malware, unknown");
    assert_clean_failure(&run(&["signature", "-"], Some(b"{}")), "--category");
    assert_clean_failure(&run(&["nonsense"], None), "unrecognized subcommand");
}

/// The vector chain (`audit_chain` appends, then the two edge records as a separate
/// chain) in v1's export format.
fn exported(all: &JsValue, section: &str) -> (String, Vec<String>) {
    let items = match all.get(section).unwrap() {
        JsValue::Array(a) => a.clone(),
        other => other
            .get("appends")
            .and_then(JsValue::as_array)
            .unwrap()
            .to_vec(),
    };
    let records: Vec<serde_json::Value> = items
        .iter()
        .map(|a| a.get("exported").unwrap().to_serde().unwrap())
        .collect();
    let ids = records
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    (serde_json::Value::Array(records).to_string(), ids)
}

#[test]
fn verify_chain_accepts_v1_exports_and_names_the_first_bad_record() {
    let all = vectors();
    let dir = tempfile::tempdir().unwrap();
    let (text, ids) = exported(&all, "audit_chain");
    let good = write_temp(dir.path(), "chain.json", text.as_bytes());
    let o = run(&["verify-chain", good.to_str().unwrap()], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let last = s(all.get("audit_chain").unwrap(), "final_lastHash");
    assert_eq!(
        stdout(&o).trim_end(),
        format!("ok: {} records verified, last hash {last}", ids.len())
    );

    // Single-character change in record 2's signature.
    let mut records: serde_json::Value = serde_json::from_str(&text).unwrap();
    let sig = records[2]["signature"]
        .as_str()
        .unwrap()
        .replacen(':', ":0", 1);
    records[2]["signature"] = serde_json::Value::from(&sig[..sig.len() - 1]);
    let bad = write_temp(dir.path(), "bad.json", records.to_string().as_bytes());
    let o = run(&["verify-chain", bad.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains(&format!("record 2 (id {:?})", ids[2])),
        "{}",
        stdout(&o)
    );
    assert!(stderr(&o).contains("first bad record: 2"));
    // The same verdicts as JSON, for scripts.
    let o = run(&["verify-chain", "--json", bad.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON verdict");
    assert_eq!(v["ok"], false);
    assert_eq!(v["first_bad_index"], 2);
    assert_eq!(v["length"], ids.len());
    let o = run(&["verify-chain", "--json", good.to_str().unwrap()], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON verdict");
    assert_eq!(v["ok"], true);
    assert_eq!(v["head_hash"], last);
    assert!(v.get("first_bad_index").is_none());

    let (edge, _) = exported(&all, "audit_chain_edge");
    // Each edge record was appended to its own fresh chain: only the first verifies as a
    // chain of one.
    let first: serde_json::Value = serde_json::from_str(&edge).unwrap();
    let one = serde_json::Value::Array(vec![first[0].clone()]).to_string();
    let o = run(&["verify-chain", "-"], Some(one.as_bytes()));
    assert!(o.status.success(), "{}", stderr(&o));

    // Malformed input: named, non-zero, no panic.
    let mut records: serde_json::Value = serde_json::from_str(&text).unwrap();
    records[1]["hash"] = serde_json::Value::from("XYZ");
    let o = run(&["verify-chain", "-"], Some(records.to_string().as_bytes()));
    assert_clean_failure(&o, &format!("record 1 (id {:?}) is malformed", ids[1]));
    assert_clean_failure(&run(&["verify-chain", "-"], Some(b"{}")), "JSON array");
    assert_clean_failure(&run(&["verify-chain", "-"], Some(b"[")), "not valid JSON");
    assert_clean_failure(
        &run(&["verify-chain", "/nonexistent/chain.json"], None),
        "reading",
    );
}

#[test]
fn demo_runs_the_embedded_scenario() {
    let o = run(&["demo"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for needle in [
        "clean",
        "quarantined injection:",
        "ignored (duplicate of injection:",
        "evicted at once",
        "payload_too_large (limit 128 B)",
        "rate_limited (retry after 2000 ms)",
        "\"totalIntercepts\":16",
        "audit chain: 2 records (evictions), verify: ok",
        "export -> import -> verify: ok",
        "detected at record 0",
    ] {
        assert!(out.contains(needle), "demo output lacks {needle:?}:\n{out}");
    }
}

#[test]
fn hash_and_validate_signature_vectors() {
    let all = vectors();
    for case in all.get("hash").and_then(JsValue::as_array).unwrap() {
        let bytes = match s(case, "fn") {
            "hashBuffer(bytes)" => hex_decode(s(case, "input_hex")),
            _ => match case.get("input").and_then(JsValue::as_str) {
                Some(text) => text.as_bytes().to_vec(),
                None => continue, // lone surrogate: not expressible as file bytes
            },
        };
        let o = run(&["hash", "-"], Some(&bytes));
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(stdout(&o).trim_end(), s(case, "sha256"));
    }
    for case in all
        .get("validate_signature")
        .and_then(JsValue::as_array)
        .unwrap()
    {
        let sig = s(case, "signature");
        let valid = case.get("valid").and_then(JsValue::as_bool).unwrap();
        let o = run(&["validate-signature", sig], None);
        assert_eq!(o.status.success(), valid, "{sig}");
        assert_eq!(
            stdout(&o).trim_end(),
            if valid { "valid" } else { "invalid" }
        );
    }
}

fn hex_decode(h: &str) -> Vec<u8> {
    (0..h.len() / 2)
        .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

#[test]
fn proxy_is_wired_to_the_proxy_crate() {
    // The proxy's own arguments are parsed (its required flags are named in the error).
    let o = run(&["proxy"], None);
    assert_clean_failure(&o, "--listen");
    let o = run(&["proxy", "--help"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("--upstream"), "{}", stdout(&o));
}
