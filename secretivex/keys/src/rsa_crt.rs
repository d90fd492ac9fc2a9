//! The two RSA CRT exponents OpenSSH does not store: `dP = d mod (p−1)`, `dQ = d mod (q−1)`.
//!
//! OpenSSH's key formats carry `n, e, d, iqmp, p, q` and recompute the exponents on load;
//! `aws-lc-rs` needs them supplied. This runs once per key, at add time, with `crypto-bigint`'s
//! constant-time arithmetic (its division loop count depends only on the bit length of the
//! divisor, which is about half the public modulus length, not on secret values). Results
//! are returned in `Zeroizing` buffers and the named fixed-size integers are wiped before
//! returning; copies the compiler makes when moving them on the stack are not covered.

use crypto_bigint::{Encoding, NonZero, U8192};
use zeroize::{Zeroize, Zeroizing};

use crate::KeyError;

/// Bytes in a [`U8192`]: RSA keys are capped at 8192 bits, so `d`, `p`, `q` all fit.
const WIDTH: usize = 8192 / 8;

/// Loads a big-endian magnitude of at most [`WIDTH`] bytes.
fn load(magnitude: &[u8]) -> Result<U8192, KeyError> {
    let m = crate::sshbuf::strip_leading_zeros(magnitude);
    let offset = WIDTH
        .checked_sub(m.len())
        .ok_or(KeyError::Malformed("RSA component longer than 8192 bits"))?;
    let mut padded = Zeroizing::new([0u8; WIDTH]);
    padded
        .get_mut(offset..)
        .ok_or(KeyError::Malformed("RSA component length"))?
        .copy_from_slice(m);
    Ok(U8192::from_be_slice(padded.as_slice()))
}

/// `d mod (prime − 1)` as a big-endian magnitude without leading zeros.
fn exponent(d: &U8192, prime: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    // Refuse 0 and 1 up front: 0 − 1 would wrap around instead of failing.
    if crate::sshbuf::bit_len(prime) < 2 {
        return Err(KeyError::InconsistentKey("RSA prime factor is 0 or 1"));
    }
    let mut prime = load(prime)?;
    let mut prime_minus_one = prime.wrapping_sub(&U8192::ONE);
    prime.zeroize();
    let divisor = Option::<NonZero<U8192>>::from(NonZero::new(prime_minus_one))
        .ok_or(KeyError::InconsistentKey("RSA prime factor is 0 or 1"))?;
    prime_minus_one.zeroize();
    let mut rem = d.rem(&divisor);
    // `NonZero` does not implement `Zeroize`; move the value out to wipe it.
    let mut divisor_value = *divisor.as_ref();
    divisor_value.zeroize();
    let bytes = Zeroizing::new(rem.to_be_bytes());
    rem.zeroize();
    Ok(Zeroizing::new(
        crate::sshbuf::strip_leading_zeros(bytes.as_slice()).to_vec(),
    ))
}

/// A secret big-endian magnitude, wiped on drop.
pub(crate) type Secret = Zeroizing<Vec<u8>>;

/// The CRT exponents `(dP, dQ)` of an RSA key given `d`, `p` and `q`.
pub(crate) fn crt_exponents(d: &[u8], p: &[u8], q: &[u8]) -> Result<(Secret, Secret), KeyError> {
    let mut d = load(d)?;
    let result = exponent(&d, p).and_then(|dp| Ok((dp, exponent(&d, q)?)));
    d.zeroize();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_values() {
        // d = 1000, p = 11, q = 13: 1000 mod 10 = 0, 1000 mod 12 = 4.
        let (dp, dq) = crt_exponents(&[0x03, 0xe8], &[11], &[13]).unwrap();
        assert_eq!(dp.as_slice(), &[] as &[u8]);
        assert_eq!(dq.as_slice(), &[4]);
        // Leading zeros in the inputs are ignored: 1001 mod 16 = 9.
        let (dp, _) = crt_exponents(&[0, 0x03, 0xe9], &[0, 17], &[3]).unwrap();
        assert_eq!(dp.as_slice(), &[9]);
    }

    #[test]
    fn degenerate_primes_and_oversize_are_refused() {
        assert!(crt_exponents(&[5], &[1], &[3]).is_err());
        assert!(crt_exponents(&[5], &[], &[3]).is_err());
        assert!(crt_exponents(&[1u8; WIDTH + 1], &[7], &[3]).is_err());
    }
}
