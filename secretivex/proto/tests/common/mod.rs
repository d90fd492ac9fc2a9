//! Hand-written SSH wire builders for tests, independent of the crate's encoder
//! so that encoder and decoder are each checked against an outside reference.

#![allow(dead_code)]

/// An SSH `string`.
pub fn s(bytes: &[u8]) -> Vec<u8> {
    let mut v = (bytes.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(bytes);
    v
}

/// A `uint32`.
pub fn u32b(v: u32) -> Vec<u8> {
    v.to_be_bytes().to_vec()
}

/// Concatenates parts.
pub fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// An `mpint` from a positive magnitude without leading zeros.
pub fn mpint(mag: &[u8]) -> Vec<u8> {
    if mag.first().is_some_and(|b| b & 0x80 != 0) {
        let mut v = vec![0];
        v.extend_from_slice(mag);
        s(&v)
    } else {
        s(mag)
    }
}

/// A public key blob `string type, string data`.
pub fn blob(kind: &str, data: &[u8]) -> Vec<u8> {
    cat(&[&s(kind.as_bytes()), &s(data)])
}

pub const ED_PK: [u8; 32] = [0x11; 32];

/// OpenSSH's 64-byte Ed25519 private key: seed ‖ public.
pub fn ed_sk() -> Vec<u8> {
    let mut v = vec![0x22; 32];
    v.extend_from_slice(&ED_PK);
    v
}

/// The wire form of an Ed25519 private key (after the message type).
pub fn ed25519_wire() -> Vec<u8> {
    cat(&[&s(b"ssh-ed25519"), &s(&ED_PK), &s(&ed_sk())])
}

/// An uncompressed P-256 point (not on the curve: format only).
pub fn p256_point() -> Vec<u8> {
    let mut p = vec![0x04];
    p.extend_from_slice(&[0x33; 64]);
    p
}

/// The wire form of a P-256 private key with the given scalar magnitude.
pub fn p256_wire(curve: &str, point: &[u8], scalar: &[u8]) -> Vec<u8> {
    cat(&[
        &s(b"ecdsa-sha2-nistp256"),
        &s(curve.as_bytes()),
        &s(point),
        &mpint(scalar),
    ])
}

/// An Ed25519 certificate blob (format only: type name then filler).
pub fn ed_cert_blob() -> Vec<u8> {
    cat(&[
        &s(b"ssh-ed25519-cert-v01@openssh.com"),
        &s(&[0x99; 32]),
        &[1, 2, 3],
    ])
}

/// A hop: `string user, string hostname, string reserved, (string key, bool)*`.
pub fn hop(user: &str, host: &str, keys: &[(&[u8], bool)]) -> Vec<u8> {
    let mut v = cat(&[&s(user.as_bytes()), &s(host.as_bytes()), &s(b"")]);
    for (k, ca) in keys {
        v.extend(s(k));
        v.push(u8::from(*ca));
    }
    v
}

/// One destination constraint, already wrapped as a string.
pub fn dest(from: &[u8], to: &[u8], reserved: &[u8]) -> Vec<u8> {
    s(&cat(&[&s(from), &s(to), &s(reserved)]))
}

/// The restrict-destination extension constraint with the given wrapped entries.
pub fn restrict(entries: &[Vec<u8>]) -> Vec<u8> {
    cat(&[
        &[255],
        &s(b"restrict-destination-v00@openssh.com"),
        &s(&entries.concat()),
    ])
}

/// A valid destination constraint from the origin to `host` with one key.
pub fn simple_dest(user: &str, host: &str) -> Vec<u8> {
    let hk = blob("ssh-ed25519", &[0x55; 32]);
    dest(&hop("", "", &[]), &hop(user, host, &[(&hk, false)]), b"")
}

pub mod openssh;
pub mod recorder;
