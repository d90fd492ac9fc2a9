//! `tracehound cold`: cold storage through the daemon (verified retrieval of metadata,
//! evacuation), and the cold-storage and cost lines of `tracehound stats`.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{ArgGroup, Subcommand};
use serde::Serialize;
use tracehound_core::hash::validate_signature;
use tracehound_rpc::pb;

use crate::daemon::{self, CALL_TIMEOUT};
use crate::text;

/// `tracehound cold ...`.
#[derive(Debug, Subcommand)]
pub enum ColdCommand {
    /// Verify the cold object stored for SIGNATURE and print its metadata (never its
    /// bytes). Exit 1 when there is none, 2 when it is corrupt, 3 when it was erased (its
    /// key destroyed: the object can never be read again).
    Get {
        /// The evidence signature, `category:sha256hex`.
        signature: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Move quarantined evidence to cold storage (each move is an audited evacuation) and
    /// wait until it is written.
    #[command(group(ArgGroup::new("which").required(true).multiple(true)
        .args(["signature", "severity", "category", "all"])))]
    Evacuate {
        /// One piece of evidence.
        #[arg(long, conflicts_with_all = ["severity", "category", "all"])]
        signature: Option<String>,
        /// Everything of this severity (low, medium, high, critical); combines with
        /// `--category`.
        #[arg(long, conflicts_with = "all")]
        severity: Option<String>,
        /// Everything of this category (injection, ddos, ...); combines with `--severity`.
        #[arg(long, conflicts_with = "all")]
        category: Option<String>,
        /// Everything held.
        #[arg(long)]
        all: bool,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

/// The evacuator's counters and the store's contents, as `Stats` reports them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ColdStatsView {
    pub store: String,
    pub queued: u64,
    pub enqueued: u64,
    pub from_evictions: u64,
    pub explicit: u64,
    pub objects_written: u64,
    pub bytes_written: u64,
    pub retries: u64,
    pub failures: u64,
    pub dropped: u64,
    pub stored_objects: u64,
    pub stored_bytes: u64,
}

impl From<pb::ColdStats> for ColdStatsView {
    fn from(c: pb::ColdStats) -> Self {
        ColdStatsView {
            store: c.store,
            queued: c.queued,
            enqueued: c.enqueued,
            from_evictions: c.from_evictions,
            explicit: c.explicit,
            objects_written: c.objects_written,
            bytes_written: c.bytes_written,
            retries: c.retries,
            failures: c.failures,
            dropped: c.dropped,
            stored_objects: c.stored_objects,
            stored_bytes: c.stored_bytes,
        }
    }
}

/// The lifecycle policy's runs since the daemon started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LifecycleView {
    pub runs: u64,
    pub evacuated: u64,
    pub neutralized: u64,
    pub deleted_from_cold: u64,
    pub deleted_bytes: u64,
    pub deferred: u64,
    pub failures: u64,
    pub last_run_ms: u64,
    pub last_error: String,
}

impl From<pb::LifecycleStats> for LifecycleView {
    fn from(l: pb::LifecycleStats) -> Self {
        LifecycleView {
            runs: l.runs,
            evacuated: l.evacuated,
            neutralized: l.neutralized,
            deleted_from_cold: l.deleted_from_cold,
            deleted_bytes: l.deleted_bytes,
            deferred: l.deferred,
            failures: l.failures,
            last_run_ms: l.last_run_ms,
            last_error: l.last_error,
        }
    }
}

/// One category's cost: held in memory and stored in cold storage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CostView {
    pub memory_count: u64,
    pub memory_bytes: u64,
    pub cold_count: u64,
    pub cold_bytes: u64,
}

/// `cost_by_category` of a `StatsReply`, categories in name order.
pub fn cost_view(
    map: impl IntoIterator<Item = (String, pb::CategoryCost)>,
) -> BTreeMap<String, CostView> {
    map.into_iter()
        .map(|(k, c)| {
            (
                k,
                CostView {
                    memory_count: c.memory_count,
                    memory_bytes: c.memory_bytes,
                    cold_count: c.cold_count,
                    cold_bytes: c.cold_bytes,
                },
            )
        })
        .collect()
}

/// The cold-storage and cost lines of `tracehound stats`.
pub fn write_stats(
    out: &mut impl Write,
    cold: Option<&ColdStatsView>,
    cost: &BTreeMap<String, CostView>,
    lifecycle: Option<&LifecycleView>,
) -> std::io::Result<()> {
    if let Some(l) = lifecycle {
        writeln!(
            out,
            "lifecycle           {} runs (last {}): {} evacuated, {} neutralized, {} deleted \
             from cold ({}), {} deferred, {} failures",
            l.runs,
            text::timestamp_ms(l.last_run_ms as f64),
            l.evacuated,
            l.neutralized,
            l.deleted_from_cold,
            text::bytes(l.deleted_bytes),
            l.deferred,
            l.failures
        )?;
        if !l.last_error.is_empty() {
            writeln!(out, "  last error        {}", l.last_error)?;
        }
    }
    if let Some(c) = cold {
        writeln!(
            out,
            "cold storage        {} objects, {} in {}",
            c.stored_objects,
            text::bytes(c.stored_bytes),
            c.store
        )?;
        writeln!(
            out,
            "  evacuation        {} queued, {} written ({}), {} from evictions, {} explicit, \
             {} retries, {} failures, {} dropped",
            c.queued,
            c.objects_written,
            text::bytes(c.bytes_written),
            c.from_evictions,
            c.explicit,
            c.retries,
            c.failures,
            c.dropped
        )?;
    }
    if !cost.is_empty() {
        writeln!(out, "cost by category")?;
        writeln!(
            out,
            "  {:<12} {:>10} {:>12} {:>10} {:>12}",
            "category", "in memory", "bytes", "in cold", "bytes"
        )?;
        for (category, c) in cost {
            writeln!(
                out,
                "  {:<12} {:>10} {:>12} {:>10} {:>12}",
                category,
                c.memory_count,
                text::bytes(c.memory_bytes),
                c.cold_count,
                text::bytes(c.cold_bytes)
            )?;
        }
    }
    Ok(())
}

/// Runs one `cold` subcommand.
pub fn run(command: ColdCommand, target: &str) -> Result<ExitCode> {
    match command {
        ColdCommand::Get { signature, json } => get(target, &signature, json),
        ColdCommand::Evacuate {
            signature,
            severity,
            category,
            all,
            json,
        } => {
            let request = pb::EvacuateRequest {
                signature: signature.unwrap_or_default(),
                severity: severity.unwrap_or_default(),
                category: category.unwrap_or_default(),
                all,
                wait: true,
            };
            evacuate(target, request, json)
        }
    }
}

/// The metadata `cold get` prints.
#[derive(Debug, Serialize)]
struct ColdObjectView {
    signature: String,
    found: bool,
    verified: bool,
    /// Stored, but its key was destroyed by an erasure.
    erased: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    corrupt_reason: String,
    hash: String,
    size: u64,
    compressed_size: u64,
    object_size: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    severity: String,
    key: String,
    store: String,
}

fn print_json(value: &impl Serialize) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value).context("encoding JSON")?;
    writeln!(out).context("writing to standard output")?;
    Ok(())
}

fn get(target: &str, signature: &str, json: bool) -> Result<ExitCode> {
    if !validate_signature(signature) {
        bail!("{signature:?} is not a signature (expected category:<64 lowercase hex>)");
    }
    let rt = daemon::runtime()?;
    let r = rt.block_on(async {
        let mut client = daemon::connect(target, CALL_TIMEOUT).await?;
        let request = pb::ColdRetrieveRequest {
            signature: signature.to_owned(),
        };
        daemon::call(target, CALL_TIMEOUT, client.cold_retrieve(request)).await
    })?;
    let view = ColdObjectView {
        signature: r.signature,
        found: r.found,
        verified: r.verified,
        erased: r.erased,
        corrupt_reason: r.corrupt_reason,
        hash: r.hash,
        size: r.size,
        compressed_size: r.compressed_size,
        object_size: r.object_size,
        severity: r.severity,
        key: r.key,
        store: r.store,
    };
    if json {
        print_json(&view)?;
    } else if view.found {
        let mut out = std::io::stdout().lock();
        let state = if view.verified {
            "verified".to_owned()
        } else if view.erased {
            "erased".to_owned()
        } else {
            format!("CORRUPT: {}", view.corrupt_reason)
        };
        writeln!(out, "signature        {}", view.signature)?;
        writeln!(out, "status           {state}")?;
        writeln!(out, "hash             {}", view.hash)?;
        if view.verified {
            writeln!(
                out,
                "size             {} bytes ({} compressed, object {} bytes)",
                view.size, view.compressed_size, view.object_size
            )?;
        }
        if !view.severity.is_empty() {
            writeln!(out, "severity         {}", view.severity)?;
        }
        writeln!(out, "key              {}", view.key)?;
        writeln!(out, "store            {}", view.store)?;
    }
    if !view.found {
        eprintln!("tracehound: no cold object under {signature} at {target}");
        Ok(ExitCode::FAILURE)
    } else if view.erased {
        eprintln!("tracehound: the cold object for {signature} was erased (its key is destroyed)");
        Ok(ExitCode::from(3))
    } else if !view.verified {
        eprintln!(
            "tracehound: the cold object for {signature} is corrupt: {}",
            view.corrupt_reason
        );
        Ok(ExitCode::from(2))
    } else {
        Ok(ExitCode::SUCCESS)
    }
}

fn evacuate(target: &str, request: pb::EvacuateRequest, json: bool) -> Result<ExitCode> {
    if !request.signature.is_empty() && !validate_signature(&request.signature) {
        bail!(
            "{:?} is not a signature (expected category:<64 lowercase hex>)",
            request.signature
        );
    }
    let rt = daemon::runtime()?;
    let r = rt.block_on(async {
        let mut client = daemon::connect(target, CALL_TIMEOUT).await?;
        // Waiting for the writes can take longer than a quick call.
        daemon::call(target, CALL_TIMEOUT * 6, client.evacuate(request)).await
    })?;
    let cold = r.cold.map(ColdStatsView::from).unwrap_or_default();
    if json {
        #[derive(Serialize)]
        struct Evacuated {
            signature: String,
            record_id: String,
            size: u64,
            timestamp_ms: f64,
        }
        #[derive(Serialize)]
        struct View {
            destination: String,
            evacuated: Vec<Evacuated>,
            left_in_quarantine: u64,
            cold: ColdStatsView,
        }
        print_json(&View {
            destination: r.destination,
            evacuated: r
                .evacuated
                .into_iter()
                .map(|e| Evacuated {
                    signature: e.signature,
                    record_id: e.record_id,
                    size: e.size,
                    timestamp_ms: e.timestamp_ms,
                })
                .collect(),
            left_in_quarantine: r.left_in_quarantine,
            cold,
        })?;
    } else {
        let mut out = std::io::stdout().lock();
        for e in &r.evacuated {
            writeln!(
                out,
                "evacuated {}  {}  audit record {}",
                e.signature,
                text::bytes(e.size),
                e.record_id
            )?;
        }
        writeln!(
            out,
            "{} evacuated to {}; {} left in the quarantine (queue full); {} write failures so far",
            r.evacuated.len(),
            r.destination,
            r.left_in_quarantine,
            cold.failures
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
