//! Crash-test helper: opens the ledger in DIR with the `EveryAppend` fsync policy and
//! appends audit records as fast as it can, printing each acknowledged index to stdout
//! (flushed) as soon as `append` returns. Tests SIGKILL it mid-append and check that every
//! printed index survived. Runs until killed, or until COUNT appends if given.
//!
//! Usage: `ledger-crash-writer DIR [MAX_SEGMENT_BYTES] [COUNT]`

use std::io::Write;

use anyhow::{bail, Context};
use tracehound_core::audit::RecordKind;
use tracehound_ledger::{FsyncPolicy, Ledger, LedgerConfig, NewRecord};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next() else {
        bail!("usage: ledger-crash-writer DIR [MAX_SEGMENT_BYTES] [COUNT]");
    };
    let max_segment_bytes = match args.next() {
        Some(s) => s.parse().context("MAX_SEGMENT_BYTES must be a number")?,
        None => LedgerConfig::default().max_segment_bytes,
    };
    let count: Option<u64> = args
        .next()
        .map(|s| s.parse())
        .transpose()
        .context("COUNT must be a number")?;
    let config = LedgerConfig {
        max_segment_bytes,
        fsync: FsyncPolicy::EveryAppend,
    };
    let (mut ledger, report) =
        Ledger::open(&dir, config).with_context(|| format!("opening {dir}"))?;
    eprintln!("opened: {report:?}");
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut n = 0u64;
    while count.is_none_or(|c| n < c) {
        let index = ledger.len();
        // Varying sizes so frames straddle page boundaries differently.
        let id = format!("crash-{index}-{}", "x".repeat((index % 97) as usize));
        let signature = format!("injection:{index:064x}");
        let receipt = ledger.append(&NewRecord {
            kind: RecordKind::Neutralization,
            id: &id,
            signature: &signature,
            timestamp: 1_700_000_000_000.0 + index as f64,
        })?;
        if !receipt.acknowledged {
            bail!("append under EveryAppend returned unacknowledged");
        }
        writeln!(out, "{}", receipt.index).context("writing to stdout")?;
        out.flush().context("flushing stdout")?;
        n += 1;
    }
    Ok(())
}
