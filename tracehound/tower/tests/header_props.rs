//! Property tests for the header parsers: arbitrary input never panics, and generated
//! chains give the rightmost-untrusted answer of a straightforward model.

use std::net::{IpAddr, Ipv4Addr};

use http::{HeaderMap, HeaderValue};
use proptest::prelude::*;
use tracehound_core::types::{Severity, ThreatCategory, ThreatSignal};
use tracehound_tower::headers::{
    client_from_forwarded, client_from_x_forwarded_for, parse_waf_value, waf_verdict, WafVerdict,
};

fn map_of(name: &'static str, values: &[Vec<u8>]) -> HeaderMap {
    let mut m = HeaderMap::new();
    for v in values {
        if let Ok(v) = HeaderValue::from_bytes(v) {
            m.append(name, v);
        }
    }
    m
}

/// The model: walk from the right, skip trusted hops, answer the first untrusted one;
/// all trusted → the leftmost.
fn model(chain: &[(Ipv4Addr, bool)]) -> Option<IpAddr> {
    let mut last = None;
    for (ip, trusted) in chain.iter().rev() {
        if *trusted {
            last = Some(IpAddr::V4(*ip));
        } else {
            return Some(IpAddr::V4(*ip));
        }
    }
    last
}

fn chain_strategy() -> impl Strategy<Value = Vec<(Ipv4Addr, bool)>> {
    prop::collection::vec((any::<u32>().prop_map(Ipv4Addr::from), any::<bool>()), 0..8)
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(values in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..4)) {
        let m = map_of("x", &values);
        let _ = client_from_x_forwarded_for(m.get_all("x"), |ip| ip.is_loopback());
        let _ = client_from_forwarded(m.get_all("x"), |ip| ip.is_loopback());
        let _ = waf_verdict(m.get_all("x"));
    }

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,80}") {
        let _ = parse_waf_value(&text);
        if let Ok(v) = HeaderValue::from_str(&text) {
            let mut m = HeaderMap::new();
            m.append("x", v);
            let _ = client_from_x_forwarded_for(m.get_all("x"), |_| true);
            let _ = client_from_forwarded(m.get_all("x"), |_| false);
        }
    }

    #[test]
    fn xff_matches_the_model(chain in chain_strategy(), split in 0usize..8, pad in " {0,2}") {
        // The chain may be spread over two header lines.
        let texts: Vec<String> = chain.iter().map(|(ip, _)| format!("{pad}{ip}{pad}")).collect();
        let cut = split.min(texts.len());
        let lines: Vec<Vec<u8>> = [texts[..cut].join(","), texts[cut..].join(",")]
            .into_iter()
            .filter(|l| !l.is_empty())
            .map(String::into_bytes)
            .collect();
        let m = map_of("x-forwarded-for", &lines);
        let trusted = |ip: IpAddr| chain.iter().any(|(c, t)| *t && IpAddr::V4(*c) == ip)
            && !chain.iter().any(|(c, t)| !*t && IpAddr::V4(*c) == ip);
        // Duplicate addresses with mixed trust make the model ambiguous: skip them.
        prop_assume!(chain.iter().all(|(ip, t)| trusted(IpAddr::V4(*ip)) == *t));
        prop_assert_eq!(client_from_x_forwarded_for(m.get_all("x-forwarded-for"), trusted), model(&chain));
    }

    #[test]
    fn forwarded_matches_the_model(chain in chain_strategy(), quoted in any::<bool>()) {
        let text = chain
            .iter()
            .map(|(ip, _)| if quoted { format!("for=\"{ip}:80\";proto=http") } else { format!("proto=https;For={ip}") })
            .collect::<Vec<_>>()
            .join(", ");
        let m = map_of("forwarded", &[text.into_bytes()]);
        let trusted = |ip: IpAddr| chain.iter().any(|(c, t)| *t && IpAddr::V4(*c) == ip);
        prop_assume!(chain.iter().all(|(ip, t)| trusted(IpAddr::V4(*ip)) == *t));
        prop_assert_eq!(client_from_forwarded(m.get_all("forwarded"), trusted), model(&chain));
    }

    #[test]
    fn waf_values_parse_in_any_case_and_spacing(
        c in 0usize..6, s in 0usize..4, upper in any::<bool>(), sp in " {0,3}", extra in any::<bool>()
    ) {
        let category = ThreatCategory::ALL[c];
        let severity = Severity::ALL[s];
        let case = |t: &str| if upper { t.to_uppercase() } else { t.to_owned() };
        let text = format!(
            "{sp}{}{sp};{}{sp}severity{sp}={sp}{}{sp}",
            case(category.as_str()),
            if extra { "rule=942100;" } else { "" },
            case(severity.as_str()),
        );
        let expected = ThreatSignal::new(category, severity);
        prop_assert_eq!(parse_waf_value(&text), Some(expected));
        let m = map_of("w", &[text.into_bytes()]);
        prop_assert_eq!(waf_verdict(m.get_all("w")), WafVerdict::Threat(expected));
    }
}
