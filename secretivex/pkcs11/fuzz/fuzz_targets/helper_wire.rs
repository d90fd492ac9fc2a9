//! Feeds arbitrary bytes to both decoders of the agent ↔ helper protocol, as frame bodies
//! and as a stream of length-prefixed frames. Nothing may panic, and whatever decodes must
//! survive an encode → decode round trip unchanged.

#![no_main]

use libfuzzer_sys::fuzz_target;
use secretivex_pkcs11::wire::{body_len, HelperReply, HelperRequest};

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while rest.len() >= 4 {
        let header = [rest[0], rest[1], rest[2], rest[3]];
        let Ok(n) = body_len(header) else { break };
        let Some(body) = rest.get(4..4 + n) else {
            break;
        };
        check(body);
        rest = &rest[4 + n..];
    }
    check(data);
});

fn check(body: &[u8]) {
    if let Ok((id, req)) = HelperRequest::decode(body) {
        let mut out = Vec::new();
        req.encode(id, &mut out);
        assert_eq!(HelperRequest::decode(&out[4..]), Ok((id, req)));
    }
    if let Ok((id, reply)) = HelperReply::decode(body) {
        let mut out = Vec::new();
        reply.encode(id, &mut out);
        assert_eq!(HelperReply::decode(&out[4..]), Ok((id, reply)));
    }
}
