//! Header rewriting between the client and the upstream: hop-by-hop headers are removed
//! in both directions (RFC 9110 §7.6.1), and the client's address is appended to
//! `X-Forwarded-For` and `Forwarded` (RFC 7239) toward the upstream.

use std::net::{IpAddr, SocketAddr};

use http::header::{HeaderMap, HeaderName, HeaderValue, CONNECTION, HOST, TE, TRAILER};
use http::header::{PROXY_AUTHENTICATE, PROXY_AUTHORIZATION, TRANSFER_ENCODING, UPGRADE};

/// `X-Forwarded-For` (not in the `http` crate's constants).
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// RFC 7239 `Forwarded`.
pub const FORWARDED: HeaderName = HeaderName::from_static("forwarded");

/// Connection-scoped headers that a proxy must not pass on, whatever `Connection` says.
const HOP_BY_HOP: [HeaderName; 8] = [
    CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    PROXY_AUTHENTICATE,
    PROXY_AUTHORIZATION,
    TE,
    TRAILER,
    TRANSFER_ENCODING,
];

/// Removes the hop-by-hop headers and every header that `Connection` names.
///
/// `Upgrade` goes too: the proxy does not tunnel protocol switches (WebSocket), so the
/// upstream must not be told the client asked for one.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Headers listed in `Connection` are hop-by-hop for this connection only; collect the
    // names first because removing while iterating the same map is not possible.
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    headers.remove(UPGRADE);
}

/// Appends the peer to `X-Forwarded-For` and a `for=…;proto=http[;host=…]` element to
/// `Forwarded`, keeping what earlier proxies wrote (the upstream decides whom to trust).
pub fn append_forwarded(headers: &mut HeaderMap, peer: SocketAddr, host: Option<&HeaderValue>) {
    let ip = peer.ip();
    let xff = join_list(headers, &X_FORWARDED_FOR, &ip.to_string());
    if let Ok(value) = HeaderValue::from_str(&xff) {
        headers.insert(X_FORWARDED_FOR, value);
    }

    let mut element = format!("for={};proto=http", forwarded_node(ip));
    // The host goes in only when it is a valid RFC 7239 token or quotable without
    // escapes; anything else is left out rather than producing a malformed header.
    if let Some(host) = host.and_then(|h| h.to_str().ok()) {
        if !host.is_empty() && host.bytes().all(is_host_byte) {
            element.push_str(";host=\"");
            element.push_str(host);
            element.push('"');
        }
    }
    let forwarded = join_list(headers, &FORWARDED, &element);
    if let Ok(value) = HeaderValue::from_str(&forwarded) {
        headers.insert(FORWARDED, value);
    }
}

/// The `Host` to send upstream: the client's own `Host`, or for HTTP/2 (which carries it
/// in `:authority`) the request target's authority.
pub fn client_host(headers: &HeaderMap, uri: &http::Uri) -> Option<HeaderValue> {
    if let Some(host) = headers.get(HOST) {
        return Some(host.clone());
    }
    uri.authority()
        .and_then(|authority| HeaderValue::from_str(authority.as_str()).ok())
}

/// Existing values of a list header joined with `", "`, then `last` appended.
fn join_list(headers: &HeaderMap, name: &HeaderName, last: &str) -> String {
    let mut out = String::new();
    for value in headers.get_all(name) {
        if let Ok(text) = value.to_str() {
            let text = text.trim();
            if !text.is_empty() {
                out.push_str(text);
                out.push_str(", ");
            }
        }
    }
    out.push_str(last);
    out
}

/// RFC 7239 §6: IPv6 addresses are bracketed and the node quoted.
fn forwarded_node(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("\"[{v6}]\""),
    }
}

/// Bytes allowed inside the quoted `host=` value without escaping.
fn is_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b".-:[]_~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_fixed_and_connection_named_headers() {
        let mut h = HeaderMap::new();
        h.insert(CONNECTION, HeaderValue::from_static("close, x-secret-hop"));
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        h.insert(UPGRADE, HeaderValue::from_static("websocket"));
        h.insert("x-kept", HeaderValue::from_static("yes"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h.get("x-kept").map(|v| v.as_bytes()), Some(&b"yes"[..]));
    }

    #[test]
    fn appends_to_existing_forwarding_headers() {
        let mut h = HeaderMap::new();
        h.insert(X_FORWARDED_FOR, HeaderValue::from_static("203.0.113.9"));
        let peer: SocketAddr = "[2001:db8::1]:4000"
            .parse()
            .unwrap_or_else(|_| unreachable!());
        let host = HeaderValue::from_static("example.test:8080");
        append_forwarded(&mut h, peer, Some(&host));
        assert_eq!(
            h.get(X_FORWARDED_FOR).map(|v| v.as_bytes()),
            Some(&b"203.0.113.9, 2001:db8::1"[..])
        );
        assert_eq!(
            h.get(FORWARDED).map(|v| v.as_bytes()),
            Some(&b"for=\"[2001:db8::1]\";proto=http;host=\"example.test:8080\""[..])
        );
    }

    #[test]
    fn odd_host_is_left_out_of_forwarded() {
        let mut h = HeaderMap::new();
        let peer: SocketAddr = "10.1.2.3:1".parse().unwrap_or_else(|_| unreachable!());
        let host = HeaderValue::from_static("a\"b");
        append_forwarded(&mut h, peer, Some(&host));
        assert_eq!(
            h.get(FORWARDED).map(|v| v.as_bytes()),
            Some(&b"for=10.1.2.3;proto=http"[..])
        );
    }
}
