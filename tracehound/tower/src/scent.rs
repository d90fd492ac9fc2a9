//! Building the [`Scent`] of a request. A clean scent carries a `null` payload: the core
//! never reads the payload of a clean scent, so the request's content is only copied into
//! JSON when a detector or the WAF flagged it.

use std::net::{IpAddr, Ipv4Addr};

use base64::Engine as _;
use http::request::Parts;
use http::HeaderName;
use serde_json::{Map, Value};
use tracehound_core::agent::Agent;
use tracehound_core::id::generate_secure_id;
use tracehound_core::types::{Scent, ThreatSignal};

use crate::cidr::mask;

/// The rate-limit key of a client: the address, or for IPv6 its network of
/// `ipv6_prefix` bits (`2001:db8:1:2::/64`).
pub(crate) fn source_key(client: IpAddr, ipv6_prefix: u8) -> String {
    match client {
        IpAddr::V4(v4) => ipv4_text(v4),
        IpAddr::V6(_) if ipv6_prefix >= 128 => client.to_string(),
        IpAddr::V6(_) => format!("{}/{}", mask(client, ipv6_prefix), ipv6_prefix),
    }
}

/// `a.b.c.d` without the formatting machinery (which cost more than the whole core
/// intercept on the clean path).
fn ipv4_text(ip: Ipv4Addr) -> String {
    let mut text = String::with_capacity(15);
    for (i, octet) in ip.octets().into_iter().enumerate() {
        if i > 0 {
            text.push('.');
        }
        if octet >= 100 {
            text.push(char::from(b'0' + octet / 100));
        }
        if octet >= 10 {
            text.push(char::from(b'0' + octet / 10 % 10));
        }
        text.push(char::from(b'0' + octet % 10));
    }
    text
}

/// A scent for `agent`. A clean scent has an empty id and a `null` payload: the core reads
/// neither on the clean path (the id only names the scent in an `error` result, which the
/// layer passes through anyway), and a secure id per request would cost more than the
/// intercept itself. With a `threat`, the id is a v1 secure id and the payload is v1's
/// adapter shape:
/// `{method, path, query?, headers: {selected}, body | bodyBase64, bodyTruncated?}` with
/// the body cut at `body_limit` bytes (text when it is UTF-8, base64 otherwise).
pub(crate) fn build_scent(
    agent: &Agent,
    source: String,
    threat: Option<ThreatSignal>,
    request: Option<(&Parts, &[HeaderName], &[u8], usize)>,
) -> Scent {
    let timestamp = agent.clock().now_ms() as f64;
    let payload = match (threat, request) {
        (Some(_), Some((parts, selected, body, limit))) => payload(parts, selected, body, limit),
        _ => Value::Null,
    };
    Scent {
        id: if threat.is_some() {
            generate_secure_id()
        } else {
            String::new()
        },
        timestamp,
        source,
        payload,
        threat,
        identity: None,
    }
}

fn payload(parts: &Parts, selected: &[HeaderName], body: &[u8], limit: usize) -> Value {
    let mut map = Map::new();
    map.insert("method".into(), Value::from(parts.method.as_str()));
    map.insert("path".into(), Value::from(parts.uri.path()));
    if let Some(query) = parts.uri.query() {
        map.insert("query".into(), Value::from(query));
    }
    let mut headers = Map::new();
    for name in selected {
        let mut joined: Option<String> = None;
        for value in parts.headers.get_all(name) {
            let text = String::from_utf8_lossy(value.as_bytes());
            match &mut joined {
                None => joined = Some(text.into_owned()),
                Some(j) => {
                    j.push_str(", ");
                    j.push_str(&text);
                }
            }
        }
        if let Some(j) = joined {
            headers.insert(name.as_str().to_owned(), Value::from(j));
        }
    }
    map.insert("headers".into(), Value::Object(headers));
    let cut = body.get(..limit).unwrap_or(body);
    if !cut.is_empty() {
        match utf8_prefix(cut, cut.len() < body.len()) {
            Some(text) => map.insert("body".into(), Value::from(text)),
            None => map.insert(
                "bodyBase64".into(),
                Value::from(base64::engine::general_purpose::STANDARD.encode(cut)),
            ),
        };
    }
    if cut.len() < body.len() {
        map.insert("bodyTruncated".into(), Value::Bool(true));
    }
    Value::Object(map)
}

/// `bytes` as text if it is UTF-8; when `cut` (the body continues), a character split by
/// the cut is dropped rather than making the whole prefix binary.
fn utf8_prefix(bytes: &[u8], cut: bool) -> Option<&str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Some(text),
        Err(e) if cut && e.error_len().is_none() => {
            std::str::from_utf8(bytes.get(..e.valid_up_to())?).ok()
        }
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_text_matches_display() {
        for bits in [
            0u32,
            1,
            9,
            10,
            99,
            100,
            255,
            0x0a00_0001,
            0xffff_ffff,
            0xc0a8_640a,
        ] {
            let ip = Ipv4Addr::from(bits);
            assert_eq!(ipv4_text(ip), ip.to_string());
        }
        for a in 0..=255u8 {
            let ip = Ipv4Addr::new(a, 255 - a, a / 3, a.wrapping_mul(7));
            assert_eq!(ipv4_text(ip), ip.to_string());
        }
    }

    #[test]
    fn source_keys_aggregate_ipv6() {
        assert_eq!(source_key("1.2.3.4".parse().unwrap(), 64), "1.2.3.4");
        assert_eq!(
            source_key("2001:db8:1:2:3:4:5:6".parse().unwrap(), 64),
            "2001:db8:1:2::/64"
        );
        assert_eq!(source_key("::1".parse().unwrap(), 128), "::1");
    }

    #[test]
    fn payload_shape() {
        let req = http::Request::builder()
            .method("POST")
            .uri("/login?x=1")
            .header("user-agent", "ua")
            .header("cookie", "secret")
            .body(())
            .unwrap();
        let (parts, ()) = req.into_parts();
        let selected = [http::header::USER_AGENT, http::header::CONTENT_TYPE];
        let v = payload(&parts, &selected, "héllo".as_bytes(), 2);
        assert_eq!(
            v,
            serde_json::json!({"method": "POST", "path": "/login", "query": "x=1",
                "headers": {"user-agent": "ua"}, "body": "h", "bodyTruncated": true})
        );
        let v = payload(&parts, &selected, &[0xff, 0, 1], 10);
        assert_eq!(v["bodyBase64"], "/wAB");
        assert!(v.get("bodyTruncated").is_none());
    }
}
