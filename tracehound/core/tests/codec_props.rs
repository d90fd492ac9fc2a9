//! Property and unit tests of the codec and IPC framing: round trips, bounded decoding of
//! hostile input, streaming equivalence, and no panics on arbitrary bytes.

use proptest::prelude::*;
use tracehound_core::codec::{
    decode_with_integrity, encode_with_integrity, pack_envelope, unpack_envelope, CodecError,
    GzipCodec, GzipConfig, GzipDecoder,
};
use tracehound_core::ipc::{decode_hound_message, encode_frame, FrameParser, MAX_MESSAGE_SIZE};

fn small_cap_codec(cap: u64) -> GzipCodec {
    GzipCodec::with_config(GzipConfig {
        max_decoded_size: cap,
        ..GzipConfig::default()
    })
}

/// Decodes with the push decoder, splitting the input at `cuts`.
fn decode_in_chunks(input: &[u8], cuts: &[usize], cap: u64) -> Result<Vec<u8>, CodecError> {
    let mut d = GzipDecoder::new(cap);
    let mut out = Vec::new();
    let mut sink = |c: &[u8]| {
        out.extend_from_slice(c);
        Ok(())
    };
    let mut pos = 0;
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    cuts.sort_unstable();
    for c in cuts {
        d.push(&input[pos..c.max(pos)], &mut sink)?;
        pos = c.max(pos);
    }
    d.push(&input[pos..], &mut sink)?;
    d.finish()?;
    Ok(out)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn round_trip_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let codec = GzipCodec::new();
        let z = codec.encode(&data).unwrap();
        prop_assert_eq!(codec.decode(&z).unwrap(), data.clone());
        let env = encode_with_integrity(&codec, &data).unwrap();
        let packed = pack_envelope(&env).unwrap();
        let back = unpack_envelope(&packed).unwrap();
        prop_assert_eq!(decode_with_integrity(&codec, &back).unwrap(), data);
    }

    #[test]
    fn streaming_decode_equals_one_shot(
        data in proptest::collection::vec(any::<u8>(), 0..8192),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let codec = GzipCodec::new();
        let z = codec.encode(&data).unwrap();
        prop_assert_eq!(decode_in_chunks(&z, &cuts, u64::MAX).unwrap(), data);
    }

    #[test]
    fn decoder_never_panics_on_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let codec = small_cap_codec(1 << 16);
        if let Ok(out) = codec.decode(&data) {
            prop_assert!(out.len() <= 1 << 16);
        }
        let _ = decode_in_chunks(&data, &[data.len() / 2], 1 << 16);
        let _ = unpack_envelope(&data);
        let _ = decode_hound_message(&data);
        let mut p = FrameParser::new();
        let _ = p.feed(&data);
        prop_assert!(p.buffered_bytes() <= MAX_MESSAGE_SIZE + 4);
    }

    #[test]
    fn mutated_gzip_is_rejected_or_decodes_within_cap(
        data in proptest::collection::vec(any::<u8>(), 1..1024),
        pos in any::<usize>(),
        flip in 1u8..=255,
    ) {
        let codec = small_cap_codec(4096);
        let mut z = codec.encode(&data).unwrap();
        let i = pos % z.len();
        z[i] ^= flip;
        // A change may go unnoticed only where it cannot change the output: the flags,
        // MTIME, XFL and OS bytes (gzip ignores MTIME/XFL/OS; FTEXT is a hint), padding
        // bits (after a stored block's 3-bit header, or after the end-of-block code in
        // the body's last byte). Anything else is caught by inflate, CRC-32 or ISIZE. So
        // a decode that succeeds must give back exactly the original bytes.
        match codec.decode(&z) {
            Ok(out) => {
                prop_assert_eq!(out, data, "change at byte {} altered the output", i);
            }
            Err(e) => prop_assert_eq!(e.code(), "DECODE_FAILED"),
        }
    }

    #[test]
    fn truncated_gzip_is_an_error(data in proptest::collection::vec(any::<u8>(), 0..1024), cut in any::<usize>()) {
        let codec = GzipCodec::new();
        let z = codec.encode(&data).unwrap();
        let cut = cut % z.len();
        prop_assert!(codec.decode(&z[..cut]).is_err());
    }

    #[test]
    fn frame_parser_is_split_invariant(
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8),
        cuts in proptest::collection::vec(any::<usize>(), 0..16),
    ) {
        let mut stream = Vec::new();
        for p in &payloads {
            stream.extend(encode_frame(p).unwrap());
        }
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
        cuts.sort_unstable();
        let mut parser = FrameParser::new();
        let mut got = Vec::new();
        let mut pos = 0;
        for c in cuts.into_iter().chain([stream.len()]) {
            got.extend(parser.feed(&stream[pos..c.max(pos)]).unwrap());
            pos = c.max(pos);
        }
        prop_assert_eq!(got, payloads);
        prop_assert_eq!(parser.buffered_bytes(), 0);
    }
}

#[test]
fn gzip_bomb_stops_at_the_cap() {
    // 4 MiB of zeros compresses ~1000:1; with a 1 MiB cap decoding must fail early.
    let codec = GzipCodec::new();
    let mut enc = codec.encoder();
    let mut bomb = Vec::new();
    let chunk = vec![0u8; 1 << 20];
    let mut sink = |c: &[u8]| {
        bomb.extend_from_slice(c);
        Ok(())
    };
    for _ in 0..4 {
        enc.push(&chunk, &mut sink).unwrap();
    }
    enc.finish(&mut sink).unwrap();
    assert!(bomb.len() < 16 * 1024, "bomb is {} bytes", bomb.len());

    let capped = small_cap_codec(1 << 20);
    assert_eq!(
        capped.decode(&bomb).unwrap_err(),
        CodecError::OutputTooLarge { limit: 1 << 20 }
    );
    // The streaming decoder stops too, having handed out no more than the cap.
    let mut d = GzipDecoder::new(1 << 20);
    let mut seen = 0usize;
    let r = d.push(&bomb, &mut |c: &[u8]| {
        seen += c.len();
        Ok(())
    });
    assert!(matches!(r, Err(CodecError::OutputTooLarge { .. })));
    assert!(seen <= 1 << 20);
    // With a large enough cap the same bytes decode in full.
    assert_eq!(GzipCodec::new().decode(&bomb).unwrap().len(), 4 << 20);
}

#[test]
fn concatenated_members_and_zero_padding_follow_node() {
    let codec = GzipCodec::new();
    let mut two = codec.encode(b"hello ").unwrap();
    two.extend(codec.encode(b"world").unwrap());
    assert_eq!(codec.decode(&two).unwrap(), b"hello world");
    let mut padded = codec.encode(b"pad").unwrap();
    padded.extend([0, 0, 0, 0]);
    assert_eq!(codec.decode(&padded).unwrap(), b"pad");
    let mut garbage = codec.encode(b"x").unwrap();
    garbage.extend(b"junk");
    assert!(
        codec.decode(&garbage).is_err(),
        "non-zero trailing bytes must be a gzip member"
    );
    assert!(codec.decode(&[]).is_err(), "empty input is truncated gzip");
}

#[test]
fn header_fields_are_skipped_and_header_crc_checked() {
    // FEXTRA + FNAME + FCOMMENT + FHCRC around the body of an ordinary member.
    let codec = GzipCodec::new();
    let plain = codec.encode(b"header test").unwrap();
    let body = &plain[10..];
    let mut h = vec![0x1f, 0x8b, 8, 0x02 | 0x04 | 0x08 | 0x10, 0, 0, 0, 0, 0, 3];
    h.extend([3, 0, b'a', b'b', b'c']);
    h.extend(b"name.txt\0");
    h.extend(b"a comment\0");
    let crc = crc32(&h);
    let mut good = h.clone();
    good.extend(((crc & 0xffff) as u16).to_le_bytes());
    good.extend(body);
    assert_eq!(codec.decode(&good).unwrap(), b"header test");
    let mut bad = h;
    bad.extend((((crc & 0xffff) as u16) ^ 1).to_le_bytes());
    bad.extend(body);
    assert!(codec.decode(&bad).is_err());
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = flate2::Crc::new();
    crc.update(data);
    crc.sum()
}

#[test]
fn streaming_codec_over_read_and_write() {
    let codec = GzipCodec::new();
    let input: Vec<u8> = (0..60_000u32)
        .flat_map(|i| format!("{{\"k{i}\":\"v{}\"}},", i % 977).into_bytes())
        .collect();
    let mut z = Vec::new();
    let (n_in, n_out) = codec.encode_stream(&input[..], &mut z).unwrap();
    assert_eq!(n_in, input.len() as u64);
    assert_eq!(n_out, z.len() as u64);
    assert_eq!(codec.decode_with_limit(&z, u64::MAX).unwrap(), input);
    let mut back = Vec::new();
    assert_eq!(
        codec.decode_stream(&z[..], &mut back).unwrap(),
        input.len() as u64
    );
    assert_eq!(back, input);
    let s = codec.stats();
    assert_eq!(s.encode_count, 1);
    assert_eq!(s.decode_count, 2);
    assert_eq!(s.total_input_bytes, input.len() as u64);
    assert!(s.compression_ratio > 0.0 && s.compression_ratio < 1.0);
}

#[test]
fn hot_path_codec_encodes_for_evidence() {
    use tracehound_core::evidence::HotPathCodec;
    let hot = tracehound_core::codec::hot_path_codec();
    let z = HotPathCodec::encode(&hot, b"evidence").unwrap();
    assert_eq!(GzipCodec::new().decode(&z).unwrap(), b"evidence");
    assert_eq!(hot.stats().encode_count, 1);
    // The hot path trades ratio for speed; the default codec keeps v1's level.
    assert_eq!(hot.level(), tracehound_core::codec::HOT_PATH_LEVEL);
    assert_eq!(GzipCodec::new().config().level, 6);
    // Level 1 output is standard gzip: a plain reader (flate2's) decodes it.
    let text = br#"{"k":"v","k1":"v1","k2":"v2","k3":"v3","k4":"v4"}"#.repeat(20);
    let z = hot.encode(&text).unwrap();
    let mut plain = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&z[..]), &mut plain).unwrap();
    assert_eq!(plain, text);
    assert!(z.len() < text.len() / 4);
}

#[test]
fn codec_errors_carry_v1_codes() {
    use tracehound_core::error::TracehoundError;
    let codec = GzipCodec::new();
    let e = codec.decode(b"not gzip").unwrap_err();
    assert_eq!(e.code(), "DECODE_FAILED");
    let t: TracehoundError = e.into();
    assert_eq!(t.code(), "CODEC_DECODE_FAILED");
    let mut env = encode_with_integrity(&codec, b"x").unwrap();
    env.compressed[12] ^= 1;
    let e = decode_with_integrity(&codec, &env).unwrap_err();
    assert_eq!(e.code(), "INTEGRITY_VIOLATION");
    let t: TracehoundError = e.into();
    assert_eq!(t.code(), "CODEC_INTEGRITY_FAILED");
}

#[test]
fn codec_is_shared_across_threads() {
    let codec = std::sync::Arc::new(GzipCodec::new());
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let codec = std::sync::Arc::clone(&codec);
            std::thread::spawn(move || {
                for i in 0..200u32 {
                    let data = format!("thread {t} item {i}").repeat(i as usize % 7 + 1);
                    let z = codec.encode(data.as_bytes()).unwrap();
                    assert_eq!(codec.decode(&z).unwrap(), data.as_bytes());
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(codec.stats().encode_count, 800);
    assert_eq!(codec.stats().decode_count, 800);
}

#[test]
fn thcs_pack_refuses_what_v1_would_write_malformed() {
    use tracehound_core::codec::EncodedPayload;
    let codec = GzipCodec::new();
    let good = encode_with_integrity(&codec, b"abc").unwrap();
    let mut short_hash = good.clone();
    short_hash.hash.pop();
    assert!(matches!(
        pack_envelope(&short_hash),
        Err(CodecError::InvalidEnvelope { .. })
    ));
    let mut wrong_size = good.clone();
    wrong_size.compressed_size += 1;
    assert!(pack_envelope(&wrong_size).is_err());
    let huge = EncodedPayload {
        original_size: u64::from(u32::MAX) + 1,
        ..good.clone()
    };
    assert!(pack_envelope(&huge).is_err());
    // A non-UTF-8 hash field unpacks (as v1) but never verifies.
    let mut bytes = pack_envelope(&good).unwrap();
    bytes[14] = 0xff;
    let p = unpack_envelope(&bytes).unwrap();
    assert!(!tracehound_core::codec::verify(&p));
    assert!(tracehound_core::codec::unpack_verified(&bytes).is_err());
}
