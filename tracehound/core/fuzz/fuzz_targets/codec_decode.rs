//! Fuzz the decoders that read untrusted bytes: one-shot gzip decode (capped), the
//! push decoder fed in two chunks, THCS envelope unpack + integrity decode, the IPC
//! frame parser and hound message decoder. None may panic or exceed its caps.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tracehound_core::codec::{
    decode_with_integrity, unpack_envelope, GzipCodec, GzipConfig, GzipDecoder,
};
use tracehound_core::ipc::{decode_hound_message, try_parse_frame, FrameParser, MAX_MESSAGE_SIZE};

/// Decode cap: small enough that bombs are cut off quickly, large enough to matter.
const CAP: u64 = 256 << 10;

/// One codec for the whole run, so its pooled zlib states are reused as in production.
fn codec() -> &'static GzipCodec {
    static CODEC: OnceLock<GzipCodec> = OnceLock::new();
    CODEC.get_or_init(|| {
        GzipCodec::with_config(GzipConfig {
            max_decoded_size: CAP,
            ..GzipConfig::default()
        })
    })
}

fuzz_target!(|data: &[u8]| {
    let codec = codec();
    let one_shot = codec.decode(data);
    if let Ok(out) = &one_shot {
        assert!(out.len() as u64 <= CAP);
        // Anything we accept must survive a round trip (small outputs only: encoding
        // large ones would dominate the run).
        if out.len() <= 16 << 10 {
            let again = codec.encode(out).expect("encode");
            assert_eq!(&codec.decode(&again).expect("decode own output"), out);
        }
    }

    // Streaming: split at a data-dependent point; same verdict as one-shot.
    let split = data
        .first()
        .map_or(0, |b| usize::from(*b) % (data.len() + 1));
    let mut d = GzipDecoder::new(CAP);
    let mut total = 0u64;
    let mut sink = |c: &[u8]| {
        total += c.len() as u64;
        Ok(())
    };
    let streamed = d
        .push(&data[..split], &mut sink)
        .and_then(|()| d.push(&data[split..], &mut sink))
        .and_then(|()| d.finish());
    assert!(total <= CAP);
    assert_eq!(streamed.is_ok(), one_shot.is_ok());

    if let Ok(payload) = unpack_envelope(data) {
        let _ = decode_with_integrity(codec, &payload);
    }

    let _ = try_parse_frame(data);
    let _ = decode_hound_message(data);
    let mut p = FrameParser::new();
    for chunk in data.chunks(split.max(1)) {
        match p.feed(chunk) {
            Ok(frames) => {
                for f in frames {
                    assert!(f.len() <= MAX_MESSAGE_SIZE);
                    let _ = decode_hound_message(&f);
                }
            }
            Err(_) => break,
        }
    }
    assert!(p.buffered_bytes() <= MAX_MESSAGE_SIZE + 4);
});
