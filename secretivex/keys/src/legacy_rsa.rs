//! Legacy `ssh-rsa` signatures (RSASSA-PKCS1-v1_5 with SHA-1), the only `unsafe` code of
//! this crate.
//!
//! OpenSSH clients still ask an agent for them when they set neither RSA flag: `ssh-add -T`
//! of OpenSSH 9.x does, and so do clients talking to servers without `rsa-sha2-*`.
//! `aws-lc-rs` signs PKCS#1 v1.5 with SHA-2 only, so this module goes one level down to
//! AWS-LC's C API through `aws-lc-sys` — the same library build `aws-lc-rs` links, so no
//! second crypto implementation enters the process.
//!
//! The AWS-LC `RSA` object is built once, with its CRT parameters, when the key is added,
//! and freed when the [`LegacyRsaKey`] is dropped. Signing does not rebuild it.

use std::os::raw::c_uint;
use std::ptr::{self, NonNull};

use aws_lc_rs::digest;
use aws_lc_sys::{
    BN_bin2bn, BN_clear_free, NID_sha1, RSA_free, RSA_new_private_key, RSA_sign, RSA_size, BIGNUM,
    RSA,
};

use crate::KeyError;

/// A big number owned by this module, wiped and freed on drop.
struct Bn(NonNull<BIGNUM>);

impl Bn {
    /// Copies a big-endian magnitude into a new AWS-LC `BIGNUM`.
    fn from_be(bytes: &[u8]) -> Result<Bn, KeyError> {
        // SAFETY: `bytes` is a live slice of `bytes.len()` readable bytes for the whole call;
        // AWS-LC only reads it. A null `ret` asks AWS-LC to allocate a fresh `BIGNUM`, which
        // is ours from here on and freed once in `Drop`.
        let bn = unsafe { BN_bin2bn(bytes.as_ptr(), bytes.len(), ptr::null_mut()) };
        NonNull::new(bn).map(Bn).ok_or(KeyError::InconsistentKey(
            "AWS-LC could not load an RSA component",
        ))
    }

    fn as_ptr(&self) -> *const BIGNUM {
        self.0.as_ptr()
    }
}

impl Drop for Bn {
    fn drop(&mut self) {
        // SAFETY: the pointer came non-null from `BN_bin2bn`, is owned by this value alone
        // and is freed exactly once, here. `BN_clear_free` wipes the digits before freeing.
        unsafe { BN_clear_free(self.0.as_ptr()) }
    }
}

/// The big-endian components of an RSA private key, CRT parameters included.
pub(crate) struct RsaComponents<'a> {
    pub(crate) n: &'a [u8],
    pub(crate) e: &'a [u8],
    pub(crate) d: &'a [u8],
    pub(crate) p: &'a [u8],
    pub(crate) q: &'a [u8],
    pub(crate) dp: &'a [u8],
    pub(crate) dq: &'a [u8],
    pub(crate) iqmp: &'a [u8],
}

/// An AWS-LC `RSA` private key that makes legacy `ssh-rsa` signatures.
pub(crate) struct LegacyRsaKey {
    rsa: NonNull<RSA>,
}

// SAFETY (Send): the `RSA` object is owned by this value alone (nothing else holds the
// pointer or a reference count), and AWS-LC objects carry no thread affinity: it may be
// used and freed from any thread.
unsafe impl Send for LegacyRsaKey {}

// SAFETY (Sync): `&LegacyRsaKey` only allows `RSA_sign` and `RSA_size`. AWS-LC's
// `openssl/rsa.h` (aws-lc-sys 0.47.0) documents that an `RSA` object may be used
// concurrently by non-mutating functions as long as no thread calls a mutating one, and
// lists the "Signing / Verification" functions, `RSA_sign` among them, as "non-mutating for
// thread-safety purposes and may be used concurrently" (its lazily built Montgomery and
// blinding caches are guarded by the object's internal lock); `RSA_size` takes a `const
// RSA *`, which the same header defines as non-mutating. The only mutating call, `RSA_free`,
// happens in `Drop`, which has `&mut self` and therefore no concurrent user.
unsafe impl Sync for LegacyRsaKey {}

impl LegacyRsaKey {
    /// Builds the key once. AWS-LC copies the components and runs `RSA_check_key` on them
    /// (`n = p·q`, `d·e ≡ 1`, the CRT values); an inconsistent set is refused.
    pub(crate) fn new(c: &RsaComponents<'_>) -> Result<LegacyRsaKey, KeyError> {
        let n = Bn::from_be(c.n)?;
        let e = Bn::from_be(c.e)?;
        let d = Bn::from_be(c.d)?;
        let p = Bn::from_be(c.p)?;
        let q = Bn::from_be(c.q)?;
        let dp = Bn::from_be(c.dp)?;
        let dq = Bn::from_be(c.dq)?;
        let iqmp = Bn::from_be(c.iqmp)?;
        // SAFETY: all eight pointers are valid, non-null `BIGNUM`s alive for the call
        // (owned by the `Bn`s above, which outlive it). AWS-LC duplicates them into the new
        // key and does not keep the pointers; they are wiped and freed by `Bn::drop`. A
        // non-null result is a new object owned by the returned value.
        let rsa = unsafe {
            RSA_new_private_key(
                n.as_ptr(),
                e.as_ptr(),
                d.as_ptr(),
                p.as_ptr(),
                q.as_ptr(),
                dp.as_ptr(),
                dq.as_ptr(),
                iqmp.as_ptr(),
            )
        };
        NonNull::new(rsa)
            .map(|rsa| LegacyRsaKey { rsa })
            .ok_or(KeyError::InconsistentKey("RSA components are inconsistent"))
    }

    /// Signs `data` with RSASSA-PKCS1-v1_5 and SHA-1; returns the raw signature, as long as
    /// the modulus.
    pub(crate) fn sign_sha1(&self, data: &[u8]) -> Result<Vec<u8>, KeyError> {
        let hash = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, data);
        let hash = hash.as_ref();
        // SAFETY: `self.rsa` is a live key owned by `self` (freed only in `Drop`);
        // `RSA_size` takes a const pointer and does not mutate it.
        let size = unsafe { RSA_size(self.rsa.as_ptr()) };
        let size = usize::try_from(size).map_err(|_| KeyError::SigningFailed)?;
        if size == 0 {
            return Err(KeyError::SigningFailed);
        }
        let mut signature = vec![0u8; size];
        let mut written: c_uint = 0;
        // SAFETY: `hash` is valid for `hash.len()` bytes; `signature` has `RSA_size` bytes,
        // the most `RSA_sign` writes (rsa.h); `written` is a valid out-pointer; `self.rsa`
        // is live for the call. `RSA_sign` takes a non-const pointer but is documented as
        // non-mutating and safe to call concurrently (see the `Sync` argument above).
        let ok = unsafe {
            RSA_sign(
                NID_sha1,
                hash.as_ptr(),
                hash.len(),
                signature.as_mut_ptr(),
                &mut written,
                self.rsa.as_ptr(),
            )
        };
        let written = usize::try_from(written).map_err(|_| KeyError::SigningFailed)?;
        if ok != 1 || written != size {
            return Err(KeyError::SigningFailed);
        }
        Ok(signature)
    }
}

impl Drop for LegacyRsaKey {
    fn drop(&mut self) {
        // SAFETY: `self.rsa` came non-null from `RSA_new_private_key`, we hold its only
        // reference, and it is freed exactly once, here. AWS-LC frees the key's numbers
        // through `OPENSSL_free`, which zeroes each allocation before releasing it.
        unsafe { RSA_free(self.rsa.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inconsistent_or_empty_components_are_refused() {
        let c = RsaComponents {
            n: &[0xff; 4],
            e: &[3],
            d: &[1],
            p: &[5],
            q: &[7],
            dp: &[1],
            dq: &[1],
            iqmp: &[1],
        };
        assert!(matches!(
            LegacyRsaKey::new(&c),
            Err(KeyError::InconsistentKey(_))
        ));
        let empty = RsaComponents {
            n: &[],
            e: &[],
            d: &[],
            p: &[],
            q: &[],
            dp: &[],
            dq: &[],
            iqmp: &[],
        };
        assert!(LegacyRsaKey::new(&empty).is_err());
    }
}
