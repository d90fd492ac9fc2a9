//! Feeds arbitrary bytes through frame splitting, `Request::decode`,
//! `Response::decode` and the userauth parser. Nothing may panic, and whatever
//! decodes must survive an encode → decode round trip unchanged.

#![no_main]

use libfuzzer_sys::fuzz_target;
use secretivex_proto::{frame, Request, Response, UserauthRequest};

fuzz_target!(|data: &[u8]| {
    // As a stream of frames, the way the agent reads a socket.
    let mut buf = data;
    while let Ok(Some(split)) = frame::split_frame(buf) {
        check_body(split.body);
        buf = split.rest;
    }
    // As a bare body, so the decoders see inputs without a valid header too.
    check_body(data);
});

fn check_body(body: &[u8]) {
    if let Ok(req) = Request::decode(body) {
        let mut out = Vec::new();
        req.encode_frame(&mut out);
        let again = reframe(&out);
        assert_eq!(Request::decode(again).as_ref(), Ok(&req));
    }
    if let Ok(resp) = Response::decode(body) {
        let mut out = Vec::new();
        resp.encode_frame(&mut out);
        let again = reframe(&out);
        assert_eq!(Response::decode(again).as_ref(), Ok(&resp));
    }
    if let Ok(ua) = UserauthRequest::parse(body) {
        assert_eq!(UserauthRequest::parse(&ua.encode()).as_ref(), Ok(&ua));
    }
}

/// Checks the length prefix an encoder wrote and returns the body. (Not via
/// `split_frame`: a lossily decoded comment can re-encode longer than the
/// 256 KiB cap, which is legal for the encoder.)
fn reframe(frame_bytes: &[u8]) -> &[u8] {
    let (header, body) = frame_bytes
        .split_first_chunk::<4>()
        .expect("encoder wrote a header");
    assert_eq!(u32::from_be_bytes(*header) as usize, body.len());
    body
}
