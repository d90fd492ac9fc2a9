//! v1 vectors for the codec, THCS envelope, IPC framing and webhook format
//! (`../shared/vectors/tracehound-v1.json`, keys `gzip`, `integrity_envelope`,
//! `integrity_envelope_failures`, `ipc`, `webhook`).

// v1's `meta.lcg32` generator, shared with the codec bench.
#[path = "../benches/support/mod.rs"]
mod bench_support;
mod vectors_support;

use base64::Engine as _;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tracehound_core::codec::{
    decode_with_integrity, encode_with_integrity, object_key, pack_envelope, unpack_envelope,
    unpack_verified, verify, CodecError, EncodedPayload, GzipCodec, DEFAULT_KEY_PREFIX,
    HEADER_SIZE,
};
use tracehound_core::ipc::{
    decode_hound_message, encode_frame, encode_hound_message, try_parse_frame, FrameParser,
    HoundMessage, HoundState, MAX_MESSAGE_SIZE,
};
use tracehound_core::notify::{
    threat_detected_payload, EventBody, EventType, NotificationEmitter, NotifyConfig, ThreatFacts,
};
use tracehound_core::types::{Severity, ThreatCategory};
use tracehound_core::webhook::{sign, verify_signature, WebhookConfig};

fn section(name: &str) -> Value {
    vectors_support::serde_section(name)
}

fn b64(s: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s.as_str().expect("base64 string"))
        .expect("valid base64")
}

fn hexv(s: &Value) -> Vec<u8> {
    hex::decode(s.as_str().expect("hex string")).expect("valid hex")
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// meta.cyc37: character i is "a..z0..9 "[i mod 37].
fn cyc37(len: usize) -> Vec<u8> {
    let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789 ";
    (0..len).map(|i| alphabet[i % 37]).collect()
}

fn vector_input(case: &Value) -> Vec<u8> {
    if let Some(i) = case.get("input_b64") {
        return b64(i);
    }
    let name = case["name"].as_str().unwrap();
    let len = case["input_len"].as_u64().unwrap() as usize;
    let input = if name.starts_with("cyc37") {
        cyc37(len)
    } else if let Some(rest) = name.strip_prefix("lcg32_seed") {
        let seed: u32 = rest.split('_').next().unwrap().parse().unwrap();
        bench_support::lcg32(seed, len)
    } else {
        panic!("don't know how to regenerate input of {name}");
    };
    assert_eq!(
        sha256_hex(&input),
        case["input_sha256"].as_str().unwrap(),
        "{name}: regenerated input"
    );
    input
}

#[test]
fn gzip_vectors_decode_v1_bytes_and_round_trip() {
    let codec = GzipCodec::new();
    let cases = section("gzip");
    let cases = cases.as_array().unwrap();
    assert_eq!(cases.len(), 8);
    let mut identical = 0;
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let input = vector_input(case);
        assert_eq!(
            input.len() as u64,
            case["input_len"].as_u64().unwrap(),
            "{name}"
        );

        // (a) v1's bytes decode to the input, where the vector carries them.
        if let Some(g) = case.get("gzip_b64") {
            let v1 = b64(g);
            assert_eq!(
                v1.len() as u64,
                case["gzip_len"].as_u64().unwrap(),
                "{name}"
            );
            assert_eq!(
                sha256_hex(&v1),
                case["gzip_sha256"].as_str().unwrap(),
                "{name}"
            );
            assert_eq!(codec.decode(&v1).unwrap(), input, "{name}: decode v1 bytes");
        }

        // (b) our output: same header fields as v1 (level 6, MTIME 0, OS Unix on Linux),
        // same trailer (CRC-32 and ISIZE are defined by the input), and round trips.
        let ours = codec.encode(&input).unwrap();
        let header = hexv(&case["header_hex"]);
        let trailer = hexv(&case["trailer_hex"]);
        assert_eq!(&ours[..9], &header[..9], "{name}: header");
        if cfg!(target_os = "linux") {
            assert_eq!(ours[9], header[9], "{name}: OS byte");
        }
        assert_eq!(&ours[ours.len() - 8..], &trailer[..], "{name}: trailer");
        assert_eq!(codec.decode(&ours).unwrap(), input, "{name}: round trip");
        if sha256_hex(&ours) == case["gzip_sha256"].as_str().unwrap() {
            identical += 1;
        }
    }
    // Compressed bytes are opaque (spec §11.4); report, don't require, byte equality.
    println!("gzip: {identical}/8 outputs byte-identical to v1 (zlib-rs vs Node's zlib)");
    let s = codec.stats();
    assert_eq!(s.encode_count, 8);
    assert!(s.decode_count >= 14);
}

fn v1_payload(encoded: &Value) -> EncodedPayload {
    EncodedPayload {
        compressed: b64(&encoded["compressed_b64"]),
        hash: encoded["hash"].as_str().unwrap().to_string(),
        original_size: encoded["originalSize"].as_u64().unwrap(),
        compressed_size: encoded["compressedSize"].as_u64().unwrap(),
    }
}

#[test]
fn integrity_envelope_vectors_are_bit_exact() {
    let codec = GzipCodec::new();
    let cases = section("integrity_envelope");
    let cases = cases.as_array().unwrap();
    assert_eq!(cases.len(), 4);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let input = b64(&case["input_b64"]);
        let v1 = v1_payload(&case["encoded"]);
        assert_eq!(
            case["envelope_header_size"].as_u64().unwrap() as usize,
            HEADER_SIZE
        );

        // Packing v1's payload gives v1's envelope, byte for byte, and back.
        let envelope = hexv(&case["envelope_hex"]);
        assert_eq!(pack_envelope(&v1).unwrap(), envelope, "{name}: pack");
        assert_eq!(unpack_envelope(&envelope).unwrap(), v1, "{name}: unpack");
        assert!(verify(&v1), "{name}: verify");
        assert_eq!(unpack_verified(&envelope).unwrap(), v1, "{name}");
        assert_eq!(
            decode_with_integrity(&codec, &v1).unwrap(),
            input,
            "{name}: decode"
        );
        assert_eq!(
            object_key(DEFAULT_KEY_PREFIX, name),
            case["s3_key_default_prefix"].as_str().unwrap()
        );

        // Our own envelope: hash over our compressed bytes, sizes, and a round trip.
        let ours = encode_with_integrity(&codec, &input).unwrap();
        assert_eq!(ours.hash, sha256_hex(&ours.compressed));
        assert_eq!(ours.original_size, v1.original_size);
        assert_eq!(ours.compressed_size, ours.compressed.len() as u64);
        let packed = pack_envelope(&ours).unwrap();
        assert_eq!(
            &packed[..10],
            &envelope[..10],
            "{name}: magic, version, originalSize"
        );
        assert_eq!(
            decode_with_integrity(&codec, &unpack_verified(&packed).unwrap()).unwrap(),
            input
        );
    }
}

#[test]
fn integrity_envelope_failure_vectors() {
    let codec = GzipCodec::new();
    let hello = section("integrity_envelope");
    let good = hexv(&hello[1]["envelope_hex"]);
    assert_eq!(hello[1]["name"], "hello");
    let cases = section("integrity_envelope_failures");
    let cases = cases.as_array().unwrap();
    assert_eq!(cases.len(), 6);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let mut bytes = good.clone();
        match name {
            "short_77_bytes" => bytes.truncate(77),
            "bad_magic" => bytes[0] ^= 0xff,
            "version_2" => bytes[5] = 2,
            "extra_trailing_byte" => bytes.push(0),
            "compressed_byte_flipped" => {
                let i = HEADER_SIZE + 12;
                bytes[i] ^= 0x01;
            }
            "originalSize_field_changed" => bytes[9] = bytes[9].wrapping_add(1),
            other => panic!("unknown failure case {other}"),
        }
        let unpacked = unpack_envelope(&bytes);
        if case.get("unpack").is_some() {
            assert!(case["unpack"].is_null());
            let err = unpacked.expect_err(name);
            assert!(
                matches!(err, CodecError::InvalidEnvelope { .. }),
                "{name}: {err:?}"
            );
            assert_eq!(err.code(), "DECODE_FAILED");
            continue;
        }
        assert_eq!(case["unpack_ok"], true, "{name}");
        let payload = unpacked.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            verify(&payload),
            case["verify"].as_bool().unwrap(),
            "{name}: verify"
        );
        // Decoding with integrity refuses both: the flipped byte fails the hash, and —
        // a deliberate fix over v1 — a changed originalSize fails the size check.
        let err = decode_with_integrity(&codec, &payload).expect_err(name);
        assert_eq!(err.code(), "INTEGRITY_VIOLATION", "{name}: {err}");
        if !case["verify"].as_bool().unwrap() {
            assert!(unpack_verified(&bytes).is_err());
        }
    }
}

fn message_from_vector(m: &Value) -> HoundMessage {
    match m["type"].as_str().unwrap() {
        "status" => HoundMessage::Status {
            state: match m["state"].as_str().unwrap() {
                "processing" => HoundState::Processing,
                "complete" => HoundState::Complete,
                "error" => HoundState::Error,
                s => panic!("unknown state {s}"),
            },
            error: m.get("error").map(|e| e.as_str().unwrap().to_string()),
        },
        "metrics" => HoundMessage::Metrics {
            processing_time: m["processingTime"].as_f64().unwrap(),
            memory_used: m["memoryUsed"].as_f64().unwrap(),
        },
        t => panic!("unknown type {t}"),
    }
}

#[test]
fn ipc_vectors() {
    let ipc = section("ipc");
    for f in ipc["frames"].as_array().unwrap() {
        let msg = message_from_vector(&f["message"]);
        let frame = hexv(&f["frame_hex"]);
        assert_eq!(encode_hound_message(&msg).unwrap(), frame, "{msg:?}");
        let (payload, used) = try_parse_frame(&frame).unwrap().unwrap();
        assert_eq!(used, frame.len());
        assert_eq!(decode_hound_message(payload).unwrap(), msg);
    }
    for f in ipc["raw_frames"].as_array().unwrap() {
        let payload = hexv(&f["payload_hex"]);
        let frame = hexv(&f["frame_hex"]);
        assert_eq!(encode_frame(&payload).unwrap(), frame);
        assert_eq!(
            try_parse_frame(&frame).unwrap(),
            Some((&payload[..], frame.len()))
        );
    }
    for d in ipc["decode"].as_array().unwrap() {
        let payload = hexv(&d["payload_hex"]);
        let got = decode_hound_message(&payload);
        if d["ok"].as_bool().unwrap() {
            assert_eq!(got.unwrap(), message_from_vector(&d["message"]));
        } else {
            assert_eq!(got.unwrap_err().to_string(), d["error"].as_str().unwrap());
        }
    }
    assert_eq!(
        ipc["limits"]["max_payload_bytes"].as_u64().unwrap() as usize,
        MAX_MESSAGE_SIZE
    );
    let too_big = vec![0u8; MAX_MESSAGE_SIZE + 1];
    assert_eq!(
        format!("throws: {}", encode_frame(&too_big).unwrap_err()),
        ipc["encode_1048577"].as_str().unwrap()
    );
    assert!(encode_frame(&too_big[..MAX_MESSAGE_SIZE]).is_ok());
    let bad = [0x00, 0x10, 0x00, 0x01, 0xaa];
    assert_eq!(
        format!("throws: {}", try_parse_frame(&bad).unwrap_err()),
        ipc["parse_length_0x00100001"].as_str().unwrap()
    );
    assert!(ipc["parse_partial_3_bytes"].is_null());
    assert_eq!(try_parse_frame(&[0, 0, 0]).unwrap(), None);
    assert!(ipc["parse_partial_body"].is_null());
    assert_eq!(try_parse_frame(&[0, 0, 0, 5, 1, 2]).unwrap(), None);

    // The streaming parser yields the same payloads fed one byte at a time.
    let mut stream = Vec::new();
    for f in ipc["frames"].as_array().unwrap() {
        stream.extend(hexv(&f["frame_hex"]));
    }
    let mut parser = FrameParser::new();
    let mut got = Vec::new();
    for b in &stream {
        got.extend(parser.feed(std::slice::from_ref(b)).unwrap());
    }
    assert_eq!(got.len(), ipc["frames"].as_array().unwrap().len());
    assert_eq!(parser.buffered_bytes(), 0);
    let mut parser = FrameParser::new();
    assert!(parser.feed(&bad).is_err());
    assert!(parser.is_failed());
    assert!(
        parser.feed(&[0, 0, 0, 0]).is_err(),
        "a parser that lost framing stays failed"
    );
    parser.reset();
    assert_eq!(parser.feed(&[0, 0, 0, 0]).unwrap(), vec![Vec::<u8>::new()]);
}

#[test]
fn webhook_vector() {
    let w = section("webhook");
    let req = &w["request"];
    let emitter = NotificationEmitter::new(NotifyConfig::default());
    let mut config = WebhookConfig::new(req["url"].as_str().unwrap());
    config.secret = Some(zeroize::Zeroizing::new(
        w["secret"].as_str().unwrap().as_bytes().to_vec(),
    ));
    config.headers = vec![("X-Env".into(), "test".into())];
    emitter.register_webhook(config).unwrap();
    let payload =
        threat_detected_payload("s1", ThreatCategory::Injection, Severity::High, "10.0.0.1");
    let event = emitter.emit(EventType::ThreatDetected, payload, 1_700_000_000_000);
    assert_eq!(event.id(), "evt-1");

    let (_, built) = emitter.next_webhook_request().expect("one delivery queued");
    assert_eq!(built.url, req["url"].as_str().unwrap());
    assert_eq!(built.method, req["method"].as_str().unwrap());
    assert_eq!(built.body, req["body"].as_str().unwrap());
    let want: Vec<(String, String)> = req["headers"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    assert_eq!(built.headers, want, "headers and their order");
    let expected = w["expected_signature"].as_str().unwrap();
    assert_eq!(
        sign(
            w["secret"].as_str().unwrap().as_bytes(),
            built.body.as_bytes()
        ),
        expected
    );
    assert!(verify_signature(
        b"top-secret",
        built.body.as_bytes(),
        expected
    ));
    assert!(!verify_signature(
        b"top-secreT",
        built.body.as_bytes(),
        expected
    ));
    assert!(emitter.next_webhook_request().is_none());
}

/// The intercept path emits facts and renders the payload later: the rendered webhook
/// must be byte-identical to v1's vector all the same.
#[test]
fn webhook_vector_from_a_lazily_rendered_event() {
    let w = section("webhook");
    let req = &w["request"];
    let emitter = NotificationEmitter::new(NotifyConfig::default());
    let mut config = WebhookConfig::new(req["url"].as_str().unwrap());
    config.secret = Some(zeroize::Zeroizing::new(
        w["secret"].as_str().unwrap().as_bytes().to_vec(),
    ));
    config.headers = vec![("X-Env".into(), "test".into())];
    emitter.register_webhook(config).unwrap();
    let body = EventBody::Threat(ThreatFacts::new(
        "s1",
        ThreatCategory::Injection,
        Severity::High,
        "10.0.0.1",
    ));
    let event = emitter.emit_body(EventType::ThreatDetected, body, 1_700_000_000_000);
    let (_, built) = emitter.next_webhook_request().expect("one delivery queued");
    assert_eq!(built.body, req["body"].as_str().unwrap());
    assert_eq!(event.id(), "evt-1");
    assert_eq!(event.payload_str("source"), Some("10.0.0.1"));
}
