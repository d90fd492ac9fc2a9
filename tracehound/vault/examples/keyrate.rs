//! Rough cost of the vault's durable operations on this machine's filesystem: creating a
//! key (file written, fsynced, renamed, directory fsynced), sealing 4 KiB, destroying a key.
//!
//! `cargo run --release -p tracehound-vault --example keyrate [-- N [DIR]]`

use std::time::Instant;

use tracehound_vault::{KeyMeta, Vault};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(Ok(200), |a| a.parse())?;
    let tmp = tempfile::tempdir()?;
    let dir = args
        .next()
        .map_or_else(|| tmp.path().join("vault"), std::path::PathBuf::from);
    let vault = Vault::open(&dir, n + 1)?;
    let t = Instant::now();
    let ids = (0..n)
        .map(|i| {
            vault.key_for(&KeyMeta {
                signature: format!("spam:{i:064x}"),
                sources: vec![format!("192.0.2.{}", i % 250)],
                scent_ids: vec![format!("scent-{i}")],
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let created = t.elapsed();
    let plaintext = vec![7u8; 4096];
    let t = Instant::now();
    for id in &ids {
        vault.encrypt(id, b"aad", &plaintext)?;
    }
    let sealed = t.elapsed();
    let t = Instant::now();
    for id in &ids {
        vault.destroy(id)?;
    }
    let destroyed = t.elapsed();
    let per = |d: std::time::Duration| d.as_secs_f64() * 1e6 / n as f64;
    println!(
        "{n} keys in {}: create {:.0} µs/key, seal 4 KiB {:.0} µs, destroy {:.0} µs/key",
        dir.display(),
        per(created),
        per(sealed),
        per(destroyed)
    );
    Ok(())
}
