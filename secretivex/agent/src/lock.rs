//! Agent lock (`ssh-add -x` / `-X`).
//!
//! The passphrase is never stored. PBKDF2-HMAC-SHA256 under a random salt gives a master
//! secret; from it HMAC derives a *verifier* (kept, compared in constant time) and a
//! *sealing key* (never kept: used once to seal the private keys at lock time, derived
//! again from the right passphrase at unlock to open them; see [`crate::vault`]).
//! A wrong passphrase bumps a failure counter
//! whose delay the *calling connection* sleeps before it is answered (see
//! [`LockState::failure_delay`]); the rest of the agent keeps serving.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::{constant_time, hmac, pbkdf2};
use parking_lot::Mutex;
use zeroize::Zeroizing;

use crate::vault::SealingKey;

/// PBKDF2 rounds: about 20-40 ms of one core here, paid off the async threads.
const ROUNDS: u32 = 100_000;
const SALT_LEN: usize = 16;
const HASH_LEN: usize = 32;
/// Each recent failure adds this much to the delay of the next failed attempt...
const DELAY_STEP: Duration = Duration::from_millis(100);
/// ...up to this many steps (10 s), as OpenSSH does.
const MAX_DELAY_STEPS: u32 = 100;

/// Errors of [`LockState`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LockError {
    #[error("an empty passphrase cannot lock the agent")]
    EmptyPassphrase,
    #[error("the agent is already locked")]
    AlreadyLocked,
    #[error("the agent is not locked")]
    NotLocked,
    #[error("wrong passphrase")]
    WrongPassphrase,
    #[error("no randomness available for the salt")]
    Random,
}

/// What is kept of a lock passphrase: its salt and verifier.
pub struct LockHash {
    salt: [u8; SALT_LEN],
    hash: Zeroizing<[u8; HASH_LEN]>,
    rounds: NonZeroU32,
}

/// Verifier and sealing key derived from a passphrase.
struct Derived {
    verifier: Zeroizing<[u8; HASH_LEN]>,
    sealing: Zeroizing<[u8; HASH_LEN]>,
}

fn derive(passphrase: &[u8], salt: &[u8], rounds: NonZeroU32) -> Derived {
    let mut master = Zeroizing::new([0u8; HASH_LEN]);
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        rounds,
        salt,
        passphrase,
        &mut master[..],
    );
    let key = hmac::Key::new(hmac::HMAC_SHA256, &master[..]);
    let expand = |label: &[u8]| {
        let mut out = Zeroizing::new([0u8; HASH_LEN]);
        out.copy_from_slice(hmac::sign(&key, label).as_ref());
        out
    };
    Derived {
        verifier: expand(b"secretivex lock verifier"),
        sealing: expand(b"secretivex lock sealing key"),
    }
}

impl LockHash {
    /// Derives from `passphrase` under a fresh random salt; returns what is kept and the
    /// sealing key for this lock.
    pub fn new(passphrase: &[u8]) -> Result<(LockHash, SealingKey), LockError> {
        Self::with_rounds(passphrase, ROUNDS)
    }

    fn with_rounds(passphrase: &[u8], rounds: u32) -> Result<(LockHash, SealingKey), LockError> {
        let rounds = NonZeroU32::new(rounds).unwrap_or(NonZeroU32::MIN);
        let mut salt = [0u8; SALT_LEN];
        SystemRandom::new()
            .fill(&mut salt)
            .map_err(|_| LockError::Random)?;
        let derived = derive(passphrase, &salt, rounds);
        let sealing = SealingKey::from_bytes(&derived.sealing).map_err(|_| LockError::Random)?;
        Ok((
            LockHash {
                salt,
                hash: derived.verifier,
                rounds,
            },
            sealing,
        ))
    }

    /// Constant-time check of `passphrase`; on success, the sealing key of this lock.
    pub fn verify(&self, passphrase: &[u8]) -> Option<SealingKey> {
        let derived = derive(passphrase, &self.salt, self.rounds);
        constant_time::verify_slices_are_equal(&derived.verifier[..], &self.hash[..]).ok()?;
        SealingKey::from_bytes(&derived.sealing).ok()
    }
}

/// Whether the agent is locked, and the hash that unlocks it.
#[derive(Default)]
pub struct LockState {
    locked: AtomicBool,
    hash: Mutex<Option<LockHash>>,
    failures: AtomicU32,
}

impl LockState {
    /// A new, unlocked state.
    pub fn new() -> LockState {
        LockState::default()
    }

    /// Cheap check used on every request.
    pub fn is_locked(&self) -> bool {
        self.locked.load(Ordering::Acquire)
    }

    /// Locks with an already computed hash (compute it off the async threads).
    pub fn lock_with(&self, hash: LockHash) -> Result<(), LockError> {
        let mut slot = self.hash.lock();
        if slot.is_some() {
            return Err(LockError::AlreadyLocked);
        }
        *slot = Some(hash);
        self.locked.store(true, Ordering::Release);
        Ok(())
    }

    /// Checks the passphrase and unlocks, returning the sealing key of the lock so the
    /// caller can open the sealed keys. Blocking (PBKDF2): call from a blocking thread.
    /// A failure is counted; ask [`failure_delay`](Self::failure_delay) how long the
    /// caller should wait before answering.
    pub fn unlock(&self, passphrase: &[u8]) -> Result<SealingKey, LockError> {
        let sealing = self.check_passphrase(passphrase)?;
        self.finish_unlock();
        Ok(sealing)
    }

    /// Clears the lock (after [`check_passphrase`](Self::check_passphrase) succeeded and
    /// the keys were restored).
    pub fn finish_unlock(&self) {
        let mut slot = self.hash.lock();
        *slot = None;
        self.locked.store(false, Ordering::Release);
    }

    /// Checks the passphrase without unlocking; on success returns the lock's sealing key
    /// and resets the failure count. Blocking (PBKDF2).
    pub fn check_passphrase(&self, passphrase: &[u8]) -> Result<SealingKey, LockError> {
        if passphrase.is_empty() {
            return Err(LockError::EmptyPassphrase);
        }
        let slot = self.hash.lock();
        let Some(hash) = slot.as_ref() else {
            return Err(LockError::NotLocked);
        };
        if let Some(sealing) = hash.verify(passphrase) {
            self.failures.store(0, Ordering::Relaxed);
            Ok(sealing)
        } else {
            let _ = self
                .failures
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                    Some(n.saturating_add(1).min(MAX_DELAY_STEPS))
                });
            Err(LockError::WrongPassphrase)
        }
    }

    /// Delay owed by a connection whose unlock just failed: grows by 0.1 s with every
    /// failure since the last success, capped at 10 s. The counter is agent-wide so that
    /// opening a new connection per guess does not reset it; the sleep is per connection.
    pub fn failure_delay(&self) -> Duration {
        DELAY_STEP.saturating_mul(self.failures.load(Ordering::Relaxed))
    }

    /// Number of failed unlocks since the last success (capped).
    pub fn failures(&self) -> u32 {
        self.failures.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quick(pass: &[u8]) -> LockHash {
        LockHash::with_rounds(pass, 10).unwrap().0
    }

    #[test]
    fn hash_verifies_only_the_right_passphrase() {
        let h = quick(b"correct horse");
        assert!(h.verify(b"correct horse").is_some());
        assert!(h.verify(b"correct hors").is_none());
        assert!(h.verify(b"correct horse ").is_none());
        assert!(h.verify(b"").is_none());
    }

    #[test]
    fn sealing_key_is_derived_again_from_the_right_passphrase() {
        let (hash, sealing) = LockHash::with_rounds(b"pw", 10).unwrap();
        let sealed = sealing.seal(b"key material", b"ctx").unwrap();
        let again = hash.verify(b"pw").unwrap();
        assert_eq!(&again.open(&sealed, b"ctx").unwrap()[..], b"key material");
        // The verifier is not the sealing key: it cannot open what was sealed.
        let verifier: [u8; HASH_LEN] = *hash.hash;
        let fake = SealingKey::from_bytes(&verifier).unwrap();
        assert!(fake.open(&sealed, b"ctx").is_err());
    }

    #[test]
    fn salts_differ_so_hashes_differ() {
        let a = quick(b"same");
        let b = quick(b"same");
        assert_ne!(a.salt, b.salt);
        assert_ne!(a.hash[..], b.hash[..]);
    }

    #[test]
    fn hash_is_not_the_passphrase() {
        let pass = [b'x'; HASH_LEN];
        let h = quick(&pass);
        assert_ne!(h.hash[..], pass[..]);
    }

    #[test]
    fn lock_unlock_cycle_and_failure_delay() {
        let state = LockState::new();
        assert!(!state.is_locked());
        assert_eq!(state.unlock(b"x").unwrap_err(), LockError::NotLocked);
        assert_eq!(state.unlock(b"").unwrap_err(), LockError::EmptyPassphrase);
        state.lock_with(quick(b"secret")).unwrap();
        assert!(state.is_locked());
        assert_eq!(
            state.lock_with(quick(b"other")),
            Err(LockError::AlreadyLocked)
        );
        assert_eq!(
            state.unlock(b"wrong").unwrap_err(),
            LockError::WrongPassphrase
        );
        assert_eq!(state.failure_delay(), Duration::from_millis(100));
        assert_eq!(
            state.unlock(b"wrong").unwrap_err(),
            LockError::WrongPassphrase
        );
        assert_eq!(state.failure_delay(), Duration::from_millis(200));
        assert!(state.is_locked());
        assert!(state.unlock(b"secret").is_ok());
        assert!(!state.is_locked());
        assert_eq!(state.failures(), 0);
    }

    #[test]
    fn failure_delay_is_capped() {
        let state = LockState::new();
        state.lock_with(quick(b"secret")).unwrap();
        for _ in 0..150 {
            let _ = state.unlock(b"nope");
        }
        assert_eq!(state.failures(), MAX_DELAY_STEPS);
        assert_eq!(state.failure_delay(), Duration::from_secs(10));
    }
}
