//! The one-shot commands that ask a running daemon: status, stats, inspect,
//! verify-chain and snapshot.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use tracehound_core::hash::{sha256_hex, validate_signature};
use tracehound_rpc::pb;

use crate::daemon::{self, CALL_TIMEOUT};
use crate::model::{ChainView, InspectView, StatsView, StatusView};
use crate::text;

fn print_json(value: &impl serde::Serialize) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value).context("encoding JSON")?;
    writeln!(out).context("writing to standard output")?;
    Ok(())
}

/// `tracehound status`: reachable or not, in one line or one JSON object.
pub fn status(target: &str, json: bool) -> Result<ExitCode> {
    let rt = daemon::runtime()?;
    let answer: Result<StatsView> = rt.block_on(async {
        let mut client = daemon::connect(target, CALL_TIMEOUT).await?;
        Ok(daemon::stats(&mut client, target, 1).await?.into())
    });
    match (answer, json) {
        (Ok(stats), true) => {
            print_json(&StatusView::up(target, &stats))?;
            Ok(ExitCode::SUCCESS)
        }
        (Ok(s), false) => {
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "tracehoundd at {target}: up {}, config generation {}, {} intercepts, \
                 audit chain {} records, head {}",
                text::duration_ms(s.uptime_ms),
                s.config_generation,
                s.total_intercepts,
                s.audit.length,
                s.audit.head_hash
            )?;
            Ok(ExitCode::SUCCESS)
        }
        (Err(e), true) => {
            // Scripts get a parseable answer for "down" too, and the exit code.
            print_json(&StatusView::down(target, format!("{e:#}")))?;
            eprintln!("tracehound: error: {e:#}");
            Ok(ExitCode::FAILURE)
        }
        (Err(e), false) => Err(e),
    }
}

/// `tracehound stats`.
pub fn stats(target: &str, json: bool, top: u32) -> Result<ExitCode> {
    let rt = daemon::runtime()?;
    let stats: StatsView = rt
        .block_on(async {
            let mut client = daemon::connect(target, CALL_TIMEOUT).await?;
            daemon::stats(&mut client, target, top).await
        })?
        .into();
    if json {
        print_json(&stats)?;
    } else {
        write_stats(&mut std::io::stdout().lock(), target, &stats)
            .context("writing to standard output")?;
    }
    Ok(ExitCode::SUCCESS)
}

fn write_stats(out: &mut impl Write, target: &str, s: &StatsView) -> std::io::Result<()> {
    writeln!(
        out,
        "tracehoundd at {target}: up {}, config generation {} ({} reload failures)",
        text::duration_ms(s.uptime_ms),
        s.config_generation,
        s.reload_failures
    )?;
    writeln!(out, "intercepts          {}", s.total_intercepts)?;
    for (kind, n) in s.results() {
        writeln!(out, "  {kind:<18}{n}")?;
    }
    let q = &s.quarantine;
    writeln!(
        out,
        "quarantine          {} / {} items, {} / {}, pressure {}",
        q.count,
        q.max_count,
        text::bytes(q.bytes),
        text::bytes(q.max_bytes),
        q.pressure_name()
    )?;
    let by: Vec<String> = q
        .by_severity()
        .into_iter()
        .map(|(sev, n)| format!("{sev} {n}"))
        .collect();
    writeln!(out, "  by severity       {}", by.join(", "))?;
    writeln!(
        out,
        "audit chain         {} records, head {}",
        s.audit.length, s.audit.head_hash
    )?;
    if let Some(l) = &s.ledger {
        writeln!(
            out,
            "audit ledger        {} entries, {} durable, {} pending, fsync {} ({} syncs, {} \
             failures), checkpoint at {}",
            l.entries, l.acknowledged, l.pending, l.fsync, l.syncs, l.failures, l.checkpoint_size
        )?;
    }
    crate::cold::write_stats(
        out,
        s.cold.as_ref(),
        &s.cost_by_category,
        s.lifecycle.as_ref(),
    )?;
    writeln!(
        out,
        "rate limiter        {} sources tracked, {} blocked",
        s.rate_limited_sources_active, s.rate_limited_sources_blocked
    )?;
    writeln!(
        out,
        "notifications       {} dropped",
        s.notifications_dropped
    )?;
    write_notify(out, s)?;
    if !s.top_sources.is_empty() {
        writeln!(out, "top sources")?;
        writeln!(
            out,
            "  {:<40} {:>10} {:>8}  blocked",
            "source", "intercepts", "threats"
        )?;
        for src in &s.top_sources {
            writeln!(
                out,
                "  {:<40} {:>10} {:>8}  {}",
                src.source,
                src.intercepts,
                src.threats,
                if src.blocked { "yes" } else { "no" }
            )?;
        }
    }
    if !s.recent_threats.is_empty() {
        writeln!(out, "recent threats")?;
        for t in &s.recent_threats {
            writeln!(
                out,
                "  {}  {} {}  {}  captured {}",
                t.signature,
                t.category,
                t.severity,
                text::bytes(t.size),
                text::timestamp_ms(t.captured_ms)
            )?;
        }
    }
    Ok(())
}

/// The notification sinks and coalescing counters (nothing without `[notify]` sinks).
fn write_notify(out: &mut impl Write, s: &StatsView) -> std::io::Result<()> {
    if let Some(c) = &s.notify_coalesce {
        writeln!(
            out,
            "  coalescing        window {} by {}: {} events -> {} records ({} merged, {} \
             open, {} overflow)",
            text::duration_ms(c.window_ms),
            c.key,
            c.events_in,
            c.records_out,
            c.merged,
            c.open,
            c.overflow
        )?;
        if c.input_dropped > 0 {
            writeln!(
                out,
                "  notifier intake   {} events dropped ({} shed at the source: every sink \
                 that wanted them was full)",
                c.input_dropped, c.shed
            )?;
        }
    }
    for k in &s.notify_sinks {
        let acked = if k.kind == "splunk_hec" {
            format!(", {} acked", k.acked)
        } else {
            String::new()
        };
        writeln!(
            out,
            "  sink {} ({}): {} sent{acked}, {} queued, {} in flight, {} retried, {} dropped, \
             {} failed, {} purged",
            k.name, k.kind, k.sent, k.queued, k.inflight, k.retried, k.dropped, k.failed, k.purged
        )?;
    }
    Ok(())
}

/// `tracehound inspect SIGNATURE`: exit 1 when the daemon holds no such evidence.
pub fn inspect(target: &str, signature: &str, json: bool) -> Result<ExitCode> {
    // A typo is reported as such, not as "no evidence".
    if !validate_signature(signature) {
        bail!("{signature:?} is not a signature (expected category:<64 lowercase hex>)");
    }
    let rt = daemon::runtime()?;
    let reply = rt.block_on(async {
        let mut client = daemon::connect(target, CALL_TIMEOUT).await?;
        daemon::call(
            target,
            CALL_TIMEOUT,
            client.inspect(pb::InspectRequest {
                signature: signature.to_owned(),
            }),
        )
        .await
    })?;
    let view = InspectView::new(signature, reply);
    if json {
        print_json(&view)?;
    } else if view.found {
        let mut out = std::io::stdout().lock();
        writeln!(out, "signature  {}", view.signature)?;
        writeln!(out, "category   {}", view.category)?;
        writeln!(out, "severity   {}", view.severity)?;
        writeln!(
            out,
            "size       {} bytes (stored {} bytes)",
            view.size, view.stored_bytes
        )?;
        writeln!(out, "hash       {}", view.hash)?;
        writeln!(out, "captured   {}", text::timestamp_ms(view.captured_ms))?;
        writeln!(
            out,
            "disposed   {}",
            if view.disposed { "yes" } else { "no" }
        )?;
    }
    if view.found {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("tracehound: no evidence under {signature} at {target}");
        Ok(ExitCode::FAILURE)
    }
}

/// `tracehound verify-chain` without a file: the daemon recomputes its chain.
pub fn verify_chain(target: &str, json: bool) -> Result<ExitCode> {
    let rt = daemon::runtime()?;
    let reply = rt.block_on(async {
        let mut client = daemon::connect(target, CALL_TIMEOUT).await?;
        // Recomputing a long chain takes a while: allow more than a quick call.
        daemon::call(
            target,
            CALL_TIMEOUT * 6,
            client.verify_chain(pb::VerifyChainRequest {}),
        )
        .await
    })?;
    print_chain(
        &ChainView::from(reply),
        &format!("tracehoundd at {target}"),
        json,
    )
}

/// Prints a verification result and returns exit 1 for a broken chain.
pub fn print_chain(view: &ChainView, name: &str, json: bool) -> Result<ExitCode> {
    if json {
        print_json(view)?;
    } else {
        let mut out = std::io::stdout().lock();
        if view.ok {
            writeln!(
                out,
                "ok: {} records verified, last hash {}",
                view.length, view.head_hash
            )?;
        } else {
            writeln!(
                out,
                "BROKEN: record {}: {}",
                view.first_bad_index.unwrap_or_default(),
                view.error.as_deref().unwrap_or("does not verify")
            )?;
        }
        match &view.ledger {
            Some(l) if l.ok => writeln!(
                out,
                "ledger ok: {} entries verified from genesis, tree head {}, last hash {}",
                l.entries, l.root_hash, l.head_hash
            )?,
            Some(l) => writeln!(
                out,
                "ledger BROKEN: {}",
                l.error.as_deref().unwrap_or("does not verify")
            )?,
            None => {}
        }
    }
    if let Some(l) = view.ledger.as_ref().filter(|l| !l.ok) {
        eprintln!(
            "tracehound: the audit ledger of {name} does not verify: {}",
            l.error.as_deref().unwrap_or_default()
        );
        return Ok(ExitCode::FAILURE);
    }
    if view.ok {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "tracehound: audit chain of {name} does not verify (first bad record: {})",
            view.first_bad_index.unwrap_or_default()
        );
        Ok(ExitCode::FAILURE)
    }
}

/// `tracehound snapshot`: the JSON is checked against the daemon's SHA-256 before it is
/// printed or written, so a truncated answer is never saved as a snapshot.
pub fn snapshot(target: &str, output: Option<&Path>, json: bool) -> Result<ExitCode> {
    let rt = daemon::runtime()?;
    let reply = rt.block_on(async {
        let mut client = daemon::connect(target, CALL_TIMEOUT).await?;
        daemon::call(
            target,
            CALL_TIMEOUT,
            client.snapshot(pb::SnapshotRequest {}),
        )
        .await
    })?;
    let computed = sha256_hex(reply.json.as_bytes());
    if computed != reply.sha256 {
        bail!(
            "snapshot from {target} does not match its SHA-256 (sent {}, computed {computed})",
            reply.sha256
        );
    }
    if json {
        let snapshot: serde_json::Value =
            serde_json::from_str(&reply.json).context("the daemon's snapshot is not JSON")?;
        let envelope = serde_json::json!({
            "sha256": reply.sha256,
            "taken_at_ms": reply.taken_at_ms,
            "snapshot": snapshot,
        });
        match output {
            Some(path) => write_file(path, &serde_json::to_string_pretty(&envelope)?)?,
            None => print_json(&envelope)?,
        }
    } else {
        match output {
            Some(path) => {
                write_file(path, &reply.json)?;
                eprintln!(
                    "wrote {} bytes to {} (sha256 {})",
                    reply.json.len(),
                    path.display(),
                    reply.sha256
                );
            }
            None => {
                let mut out = std::io::stdout().lock();
                writeln!(out, "{}", reply.json).context("writing to standard output")?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn write_file(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_text_shows_notification_sinks_and_coalescing() {
        let view = StatsView::from(pb::StatsReply {
            notify_sinks: vec![pb::NotifySinkStats {
                name: "siem".into(),
                kind: "splunk_hec".into(),
                sent: 9,
                acked: 8,
                dropped: 3,
                ..Default::default()
            }],
            notify_coalesce: Some(pb::NotifyCoalesceStats {
                window_ms: 10_000,
                key: "signature".into(),
                events_in: 1000,
                records_out: 2,
                merged: 998,
                input_dropped: 70,
                shed: 64,
                ..Default::default()
            }),
            ..Default::default()
        });
        let mut out = Vec::new();
        assert!(write_stats(&mut out, "unix:x", &view).is_ok());
        let text = String::from_utf8_lossy(&out);
        for needle in [
            "sink siem (splunk_hec): 9 sent, 8 acked",
            "3 dropped",
            "by signature: 1000 events -> 2 records (998 merged",
            "70 events dropped (64 shed at the source",
        ] {
            assert!(text.contains(needle), "{needle} missing from {text}");
        }
        let json = serde_json::to_value(&view).unwrap_or_default();
        assert_eq!(json["notify_sinks"][0]["acked"], 8);
        assert_eq!(json["notify_coalesce"]["merged"], 998);
    }

    #[test]
    fn stats_text_names_every_part() {
        let view = StatsView::from(pb::StatsReply {
            total_intercepts: 7,
            quarantined: 2,
            clean: 5,
            audit: Some(pb::AuditHead {
                length: 3,
                head_hash: "feed".into(),
            }),
            top_sources: vec![pb::SourceCount {
                source: "10.0.0.1".into(),
                intercepts: 7,
                threats: 2,
                blocked: true,
            }],
            ..Default::default()
        });
        let mut out = Vec::new();
        assert!(write_stats(&mut out, "unix:x", &view).is_ok());
        let text = String::from_utf8_lossy(&out);
        for needle in [
            "intercepts          7",
            "quarantined",
            "head feed",
            "10.0.0.1",
            "yes",
        ] {
            assert!(text.contains(needle), "{needle} missing from {text}");
        }
    }
}
