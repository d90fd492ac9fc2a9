//! Parsers for the headers the layer reads: the WAF threat header and the client chain
//! in `X-Forwarded-For` / `Forwarded` (RFC 7239). All take untrusted text and never panic;
//! the property tests in `tests/header_props.rs` feed them arbitrary bytes.

use std::net::{IpAddr, SocketAddr};

use http::header::GetAll;
use http::HeaderValue;
use tracehound_core::types::{Severity, ThreatCategory, ThreatSignal};

use crate::cidr::canonical;

/// What the WAF header of a request said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WafVerdict {
    /// No such header.
    Absent,
    /// At least one value parsed; the most severe one.
    Threat(ThreatSignal),
    /// The header is present but no value parsed.
    Invalid,
}

/// Parses one WAF value `category; severity=high`. Names are matched case-insensitively;
/// a missing severity means `medium`; other parameters are ignored. `None` when the
/// category or severity is not one of v1's names.
///
/// ```
/// use tracehound_core::types::{Severity, ThreatCategory, ThreatSignal};
/// assert_eq!(
///     tracehound_tower::headers::parse_waf_value("Injection; severity=\"high\""),
///     Some(ThreatSignal::new(ThreatCategory::Injection, Severity::High)),
/// );
/// assert_eq!(tracehound_tower::headers::parse_waf_value("teapot"), None);
/// ```
pub fn parse_waf_value(text: &str) -> Option<ThreatSignal> {
    let mut parts = text.split(';');
    let category_text = parts.next()?.trim();
    let category = ThreatCategory::ALL
        .into_iter()
        .find(|c| c.as_str().eq_ignore_ascii_case(category_text))?;
    let mut severity = Severity::Medium;
    for param in parts {
        let Some((key, value)) = param.split_once('=') else {
            continue;
        };
        if !key.trim().eq_ignore_ascii_case("severity") {
            continue;
        }
        let value = unquote(value.trim());
        severity = Severity::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(value))?;
    }
    Some(ThreatSignal::new(category, severity))
}

/// Reads every value of the WAF header (several lines, or comma-separated items) and
/// keeps the most severe signal.
pub fn waf_verdict(values: GetAll<'_, HeaderValue>) -> WafVerdict {
    let mut seen = false;
    let mut best: Option<ThreatSignal> = None;
    for value in values {
        seen = true;
        let Ok(text) = value.to_str() else {
            continue;
        };
        for item in text.split(',') {
            if let Some(signal) = parse_waf_value(item) {
                if best.is_none_or(|b| signal.severity > b.severity) {
                    best = Some(signal);
                }
            }
        }
    }
    match (best, seen) {
        (Some(signal), _) => WafVerdict::Threat(signal),
        (None, true) => WafVerdict::Invalid,
        (None, false) => WafVerdict::Absent,
    }
}

/// The client in an `X-Forwarded-For` chain written by trusted proxies: walking from the
/// right, the first hop that is not trusted (proxies append the address they saw, so only
/// hops right of the first untrusted one are vouched for). If every hop is trusted, the
/// leftmost. An unreadable hop stops the walk at the trusted hop right of it. `None` when
/// the chain names no usable hop (then the immediate peer is the client).
pub fn client_from_x_forwarded_for(
    values: GetAll<'_, HeaderValue>,
    is_trusted: impl Fn(IpAddr) -> bool,
) -> Option<IpAddr> {
    let mut last_trusted = None;
    for value in values.iter().rev() {
        let Ok(text) = value.to_str() else {
            return last_trusted;
        };
        for hop in text.rsplit(',') {
            let hop = hop.trim();
            if hop.is_empty() {
                continue;
            }
            match parse_hop(hop) {
                Some(ip) if is_trusted(ip) => last_trusted = Some(ip),
                Some(ip) => return Some(ip),
                None => return last_trusted,
            }
        }
    }
    last_trusted
}

/// The client in RFC 7239 `Forwarded` elements written by trusted proxies, by the same
/// rightmost-untrusted rule as [`client_from_x_forwarded_for`]. Each element's `for`
/// parameter is the hop; an element without one, or `for=unknown` / an obfuscated name,
/// is an unreadable hop.
pub fn client_from_forwarded(
    values: GetAll<'_, HeaderValue>,
    is_trusted: impl Fn(IpAddr) -> bool,
) -> Option<IpAddr> {
    // Elements are split with quotes respected, which needs a forward scan; the hops are
    // then walked from the right.
    let mut hops: Vec<Option<IpAddr>> = Vec::new();
    for value in values {
        let Ok(text) = value.to_str() else {
            hops.push(None);
            continue;
        };
        for element in split_unquoted(text, ',') {
            if element.trim().is_empty() {
                continue;
            }
            hops.push(forwarded_for(element));
        }
    }
    let mut last_trusted = None;
    for hop in hops.into_iter().rev() {
        match hop {
            Some(ip) if is_trusted(ip) => last_trusted = Some(ip),
            Some(ip) => return Some(ip),
            None => return last_trusted,
        }
    }
    last_trusted
}

/// The address in the `for` parameter of one `Forwarded` element.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    for pair in split_unquoted(element, ';') {
        let Some((key, value)) = pair.split_once('=') else {
            continue;
        };
        if key.trim().eq_ignore_ascii_case("for") {
            return parse_hop(unquote(value.trim()));
        }
    }
    None
}

/// An address, `address:port`, `[v6]` or `[v6]:port`; IPv4-mapped IPv6 becomes IPv4.
fn parse_hop(text: &str) -> Option<IpAddr> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(sock) = text.parse::<SocketAddr>() {
        return Some(canonical(sock.ip()));
    }
    let inner = text.strip_prefix('[')?.strip_suffix(']')?;
    inner.parse::<IpAddr>().ok().map(canonical)
}

/// `"text"` → `text` (backslash escapes are not expanded: addresses contain none).
fn unquote(text: &str) -> &str {
    text.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text)
}

/// Splits on `sep` outside double quotes (a backslash escapes the next character inside
/// quotes, RFC 7230 quoted-pair).
fn split_unquoted(text: &str, sep: char) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let current = rest?;
        let mut quoted = false;
        let mut escaped = false;
        for (i, c) in current.char_indices() {
            if escaped {
                escaped = false;
            } else if quoted && c == '\\' {
                escaped = true;
            } else if c == '"' {
                quoted = !quoted;
            } else if c == sep && !quoted {
                rest = current.get(i + c.len_utf8()..);
                return current.get(..i);
            }
        }
        rest = None;
        Some(current)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::{HeaderMap, FORWARDED};

    fn map(name: &'static str, values: &[&'static str]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for v in values {
            m.append(name, HeaderValue::from_static(v));
        }
        m
    }

    fn trusted(ip: IpAddr) -> bool {
        ip.to_string().starts_with("10.")
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn waf_values() {
        let sig = |c, s| Some(ThreatSignal::new(c, s));
        assert_eq!(
            parse_waf_value("injection; severity=high"),
            sig(ThreatCategory::Injection, Severity::High)
        );
        assert_eq!(
            parse_waf_value(" SPAM "),
            sig(ThreatCategory::Spam, Severity::Medium)
        );
        assert_eq!(
            parse_waf_value("ddos;rule=42; Severity=CRITICAL"),
            sig(ThreatCategory::Ddos, Severity::Critical)
        );
        assert_eq!(parse_waf_value("injection; severity=extreme"), None);
        assert_eq!(parse_waf_value(""), None);
        let m = map(
            "x-waf",
            &["bogus", "spam; severity=low, malware; severity=high"],
        );
        assert_eq!(
            waf_verdict(m.get_all("x-waf")),
            WafVerdict::Threat(ThreatSignal::new(ThreatCategory::Malware, Severity::High))
        );
        let m = map("x-waf", &["bogus"]);
        assert_eq!(waf_verdict(m.get_all("x-waf")), WafVerdict::Invalid);
        assert_eq!(waf_verdict(m.get_all("x-other")), WafVerdict::Absent);
    }

    #[test]
    fn xff_rightmost_untrusted() {
        let m = map("x-forwarded-for", &["6.6.6.6, 1.2.3.4", "10.0.0.2"]);
        let xff =
            |m: &HeaderMap| client_from_x_forwarded_for(m.get_all("x-forwarded-for"), trusted);
        // The spoofed 6.6.6.6 is left of the real client and never reached.
        assert_eq!(xff(&m), Some(ip("1.2.3.4")));
        let m = map("x-forwarded-for", &["10.0.0.9, 10.0.0.2"]);
        assert_eq!(xff(&m), Some(ip("10.0.0.9")));
        let m = map("x-forwarded-for", &["garbage, 10.0.0.2"]);
        assert_eq!(xff(&m), Some(ip("10.0.0.2")));
        let m = map("x-forwarded-for", &["garbage"]);
        assert_eq!(xff(&m), None);
        let m = map("x-forwarded-for", &["[2001:db8::1]:443, 1.2.3.4:80"]);
        assert_eq!(xff(&m), Some(ip("1.2.3.4")));
        let m = map("x-forwarded-for", &["::ffff:1.2.3.4"]);
        assert_eq!(xff(&m), Some(ip("1.2.3.4")));
        assert_eq!(xff(&HeaderMap::new()), None);
    }

    #[test]
    fn forwarded_rightmost_untrusted() {
        let m = map(
            "forwarded",
            &[
                r#"for=6.6.6.6;proto=http, For="[2001:db8:cafe::17]:4711";by=10.0.0.1"#,
                "for=10.0.0.3",
            ],
        );
        let fwd = |m: &HeaderMap| client_from_forwarded(m.get_all(FORWARDED), trusted);
        assert_eq!(fwd(&m), Some(ip("2001:db8:cafe::17")));
        let m = map("forwarded", &["for=unknown, for=10.0.0.3"]);
        assert_eq!(fwd(&m), Some(ip("10.0.0.3")));
        let m = map("forwarded", &[r#"for="a,b";by=x, for=1.2.3.4"#]);
        assert_eq!(fwd(&m), Some(ip("1.2.3.4")));
        let m = map("forwarded", &["proto=https"]);
        assert_eq!(fwd(&m), None);
    }

    #[test]
    fn split_respects_quotes() {
        let parts: Vec<&str> = split_unquoted(r#"a="x,\"y",b,"#, ',').collect();
        assert_eq!(parts, vec![r#"a="x,\"y""#, "b", ""]);
    }
}
