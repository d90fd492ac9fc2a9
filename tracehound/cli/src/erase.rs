//! `tracehound erase`: erasure (GDPR) through the daemon, by source, signature or scent id.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::{ArgGroup, Args};
use serde::Serialize;
use tracehound_rpc::pb;

use crate::daemon;

/// An erasure waits for the evacuation queue to drain and for key files to be synced:
/// allow more than an ordinary call.
const ERASE_TIMEOUT: Duration = Duration::from_secs(90);

/// `tracehound erase (--source ADDR | --signature SIG | --scent-id ID) [--json]`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("target").required(true).args(["source", "signature", "scent_id"])))]
pub struct EraseArgs {
    /// Everything this source sent (and the source in the daemon's tables).
    #[arg(long, value_name = "ADDR")]
    pub source: Option<String>,
    /// One piece of evidence, `category:sha256hex`.
    #[arg(long, value_name = "SIG")]
    pub signature: Option<String>,
    /// The evidence one scent produced (the id given to Intercept).
    #[arg(long, value_name = "ID")]
    pub scent_id: Option<String>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// What the daemon erased, as printed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EraseView {
    pub signatures: Vec<String>,
    pub quarantine_removed: u64,
    pub cold_deleted: u64,
    pub keys_destroyed: u64,
    pub notifications_purged: u64,
    pub audit_indexes: Vec<u64>,
    pub ledger_durable: bool,
    pub errors: Vec<String>,
    /// False: the daemon's index dropped links, a source or scent-id erasure may have
    /// missed evidence.
    pub coverage_complete: bool,
}

impl From<pb::EraseReply> for EraseView {
    fn from(r: pb::EraseReply) -> Self {
        EraseView {
            signatures: r.signatures,
            quarantine_removed: r.quarantine_removed,
            cold_deleted: r.cold_deleted,
            keys_destroyed: r.keys_destroyed,
            notifications_purged: r.notifications_purged,
            audit_indexes: r.audit_indexes,
            ledger_durable: r.ledger_durable,
            errors: r.errors,
            coverage_complete: r.coverage_complete,
        }
    }
}

fn request(args: &EraseArgs) -> pb::EraseRequest {
    use pb::erase_request::Target;
    let target = match (&args.source, &args.signature, &args.scent_id) {
        (Some(s), _, _) => Target::Source(s.clone()),
        (_, Some(s), _) => Target::Signature(s.clone()),
        (_, _, Some(s)) => Target::ScentId(s.clone()),
        // clap's group makes one of them required.
        (None, None, None) => Target::Source(String::new()),
    };
    pb::EraseRequest {
        target: Some(target),
    }
}

/// Runs `tracehound erase`. Exit 0 when the erasure ran without failed steps (finding
/// nothing is not a failure), 1 when a step failed or, for a source or scent-id erasure,
/// when the daemon reports incomplete index coverage.
pub fn run(args: EraseArgs, target: &str) -> Result<ExitCode> {
    let req = request(&args);
    let by_link = args.signature.is_none();
    let rt = daemon::runtime()?;
    let reply = rt.block_on(async {
        let mut client = daemon::connect(target, daemon::CALL_TIMEOUT).await?;
        daemon::call(target, ERASE_TIMEOUT, client.erase(req)).await
    })?;
    let view = EraseView::from(reply);
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer(&mut out, &view)?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "erased {} signature(s): {} quarantined, {} cold objects, {} keys destroyed, \
             {} pending notifications",
            view.signatures.len(),
            view.quarantine_removed,
            view.cold_deleted,
            view.keys_destroyed,
            view.notifications_purged
        )?;
        for (sig, index) in view.signatures.iter().zip(&view.audit_indexes) {
            writeln!(out, "  {sig}  audit record {index}")?;
        }
        if view.ledger_durable {
            writeln!(out, "audit records durable in the ledger")?;
        }
        for e in &view.errors {
            writeln!(out, "failed: {e}")?;
        }
        if !view.coverage_complete && by_link {
            writeln!(
                out,
                "incomplete: the daemon's erasure index dropped links for capacity; \
                 evidence may remain findable by signature"
            )?;
        }
    }
    Ok(if succeeded(&view, by_link) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Whether the erasure counts as done: no failed step and — fail closed — for a source
/// or scent-id erasure (`by_link`), complete index coverage.
fn succeeded(view: &EraseView, by_link: bool) -> bool {
    view.errors.is_empty() && (view.coverage_complete || !by_link)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct T {
        #[command(flatten)]
        args: EraseArgs,
    }

    #[test]
    fn incomplete_coverage_fails_a_source_or_scent_erasure_only() {
        let done = EraseView {
            coverage_complete: true,
            ..EraseView::default()
        };
        assert!(succeeded(&done, true) && succeeded(&done, false));
        let partial = EraseView::default();
        assert!(!succeeded(&partial, true), "fail closed");
        assert!(succeeded(&partial, false), "a signature needs no index");
        let failed = EraseView {
            coverage_complete: true,
            errors: vec!["cold storage".into()],
            ..EraseView::default()
        };
        assert!(!succeeded(&failed, false));
        let reply = pb::EraseReply {
            coverage_complete: false,
            ..Default::default()
        };
        assert!(!EraseView::from(reply).coverage_complete);
    }

    #[test]
    fn exactly_one_selector_is_required() {
        assert!(T::try_parse_from(["t"]).is_err());
        assert!(T::try_parse_from(["t", "--source", "a", "--scent-id", "b"]).is_err());
        let t = T::try_parse_from(["t", "--scent-id", "s-1", "--json"]).unwrap();
        assert!(t.args.json);
        assert_eq!(
            request(&t.args).target,
            Some(pb::erase_request::Target::ScentId("s-1".into()))
        );
    }
}
