//! `secretivex-bench ceiling`: in-process signing throughput with `secretivex-keys` (the
//! agent's own crypto backend), one thread and then one thread per core. No socket and no
//! protocol: this is the most an agent on this machine could sign.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use secretivex_keys::KeyPair;
use secretivex_proto::sign_flags;
use serde::Serialize;

use crate::args::{value_name, CeilingArgs, KeyType};

/// Signatures between two looks at the clock.
const BATCH: u64 = 16;

/// Results of `ceiling`.
#[derive(Debug, Clone, Serialize)]
pub struct Ceiling {
    /// Key type measured.
    pub key_type: KeyType,
    /// Signed data size.
    pub payload_bytes: u32,
    /// Seconds per measurement.
    pub seconds: f64,
    /// Signatures per second on one thread (one core).
    pub signs_per_sec_per_core: f64,
    /// CPU cost of one signature on one core.
    pub us_per_sign: f64,
    /// Threads used for the all-cores figure.
    pub threads: usize,
    /// Signatures per second with `threads` threads.
    pub signs_per_sec_all_cores: f64,
}

impl Ceiling {
    /// A human-readable summary.
    pub fn table(&self) -> String {
        format!(
            "ceiling {}: {:.0} signs/s per core ({:.1} µs/sign), {:.0} signs/s on {} threads\n",
            value_name(&self.key_type),
            self.signs_per_sec_per_core,
            self.us_per_sign,
            self.signs_per_sec_all_cores,
            self.threads
        )
    }
}

/// Generates a key of the requested type and measures signing throughput.
pub fn execute(args: &CeilingArgs) -> anyhow::Result<Ceiling> {
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let key = generate_key(args.key_type, dir.path())?;
    let flags = match args.key_type {
        KeyType::Rsa3072 => sign_flags::RSA_SHA2_256,
        KeyType::Ed25519 | KeyType::EcdsaP256 => 0,
    };
    let payload = vec![0x5a; usize::try_from(args.payload_bytes).unwrap_or(128)];
    // A signature that does not verify would make every figure meaningless.
    let sig = key.sign(&payload, flags).context("signing")?;
    secretivex_keys::verify_signature(key.public_blob(), &payload, &sig)
        .context("the key's own signature does not verify")?;

    let span = Duration::from_secs_f64(args.seconds);
    // Warm caches and CPU frequency before the timed part.
    sign_for(&key, &payload, flags, Duration::from_millis(200))?;
    let (n1, t1) = sign_for(&key, &payload, flags, span)?;
    let threads = args.threads.map(usize::from).unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let all = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| s.spawn(|| sign_for(&key, &payload, flags, span)))
            .collect();
        let mut total = 0u64;
        let mut longest = Duration::ZERO;
        for h in handles {
            let (n, t) = h
                .join()
                .map_err(|_| anyhow::anyhow!("a signing thread panicked"))??;
            total += n;
            longest = longest.max(t);
        }
        anyhow::Ok(total as f64 / longest.as_secs_f64().max(f64::MIN_POSITIVE))
    })?;
    let per_core = n1 as f64 / t1.as_secs_f64().max(f64::MIN_POSITIVE);
    Ok(Ceiling {
        key_type: args.key_type,
        payload_bytes: args.payload_bytes,
        seconds: args.seconds,
        signs_per_sec_per_core: per_core,
        us_per_sign: if per_core > 0.0 { 1e6 / per_core } else { 0.0 },
        threads,
        signs_per_sec_all_cores: all,
    })
}

/// Signs repeatedly for about `span`; returns the count and the exact time taken.
fn sign_for(
    key: &KeyPair,
    payload: &[u8],
    flags: u32,
    span: Duration,
) -> anyhow::Result<(u64, Duration)> {
    let mut data = payload.to_vec();
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < span {
        for _ in 0..BATCH {
            // Distinct data per signature, as an agent would see.
            if let Some(head) = data.get_mut(..8) {
                head.copy_from_slice(&n.to_be_bytes());
            }
            std::hint::black_box(key.sign(&data, flags).context("signing")?);
            n += 1;
        }
    }
    Ok((n, start.elapsed()))
}

/// Generates an unencrypted key with `ssh-keygen` in `dir` and loads it.
fn generate_key(kind: KeyType, dir: &Path) -> anyhow::Result<KeyPair> {
    let path = dir.join("key");
    let type_args: &[&str] = match kind {
        KeyType::Ed25519 => &["-t", "ed25519"],
        KeyType::EcdsaP256 => &["-t", "ecdsa", "-b", "256"],
        KeyType::Rsa3072 => &["-t", "rsa", "-b", "3072"],
    };
    let status = Command::new("ssh-keygen")
        .args(type_args)
        .args(["-q", "-N", "", "-C", "ceiling", "-f"])
        .arg(&path)
        .status()
        .context("running ssh-keygen (is OpenSSH installed?)")?;
    if !status.success() {
        bail!("ssh-keygen failed: {status}");
    }
    let text = std::fs::read_to_string(&path).context("reading the generated key")?;
    let (key, _comment) = KeyPair::from_openssh_file(&text, None).context("loading the key")?;
    Ok(key)
}
