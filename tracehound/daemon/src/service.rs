//! The gRPC service: each method is a thin shell over [`Engine`].

use std::pin::Pin;
use std::sync::Arc;

use futures_util::future::{self, Either};
use futures_util::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};
use tracehound_rpc::pb;

use crate::audit_log::{AuditLog, ProveError};
use crate::engine::Engine;
use crate::report;

/// Replies of one batch stream that may wait for the ledger at once (`fsync = "every"`):
/// requests keep being intercepted while earlier replies wait for their sync, so one
/// stream feeds a whole group commit instead of one sync per round trip.
const ACK_PIPELINE: usize = 256;

/// Implements `tracehound.v1.Tracehound`.
#[derive(Clone)]
pub struct TracehoundService {
    engine: Arc<Engine>,
}

impl TracehoundService {
    /// A service over `engine`.
    pub fn new(engine: Arc<Engine>) -> Self {
        TracehoundService { engine }
    }
}

type ReplyStream = Pin<Box<dyn Stream<Item = Result<pb::InterceptReply, Status>> + Send>>;

fn no_ledger() -> Status {
    Status::failed_precondition(
        "tracehoundd runs without an audit ledger (add a [ledger] section to its config)",
    )
}

/// Runs `f` on the engine's audit log on the blocking pool (it may wait for a sync or
/// read the disk, which must not stall a runtime worker).
async fn on_ledger<T: Send + 'static>(
    engine: &Arc<Engine>,
    f: impl FnOnce(&AuditLog) -> Result<T, Status> + Send + 'static,
) -> Result<T, Status> {
    if engine.audit_log().is_none() {
        return Err(no_ledger());
    }
    let engine = Arc::clone(engine);
    tokio::task::spawn_blocking(move || match engine.audit_log() {
        Some(log) => f(log),
        None => Err(no_ledger()),
    })
    .await
    .map_err(|e| Status::internal(format!("ledger task failed: {e}")))?
}

/// Waits for the reply's audit records to be durable when it has to. Borrows the engine:
/// a unary call then touches no shared reference count.
async fn acknowledged(
    engine: &Engine,
    (mut reply, wait): (pb::InterceptReply, Option<u64>),
) -> pb::InterceptReply {
    if let (Some(target), Some(log)) = (wait, engine.audit_log()) {
        log.acknowledge(target, &mut reply).await;
    }
    reply
}

#[tonic::async_trait]
impl pb::tracehound_server::Tracehound for TracehoundService {
    async fn intercept(
        &self,
        request: Request<pb::InterceptRequest>,
    ) -> Result<Response<pb::InterceptReply>, Status> {
        let answer = report::intercept(&self.engine, request.into_inner());
        Ok(Response::new(acknowledged(&self.engine, answer).await))
    }

    type InterceptBatchStream = ReplyStream;

    async fn intercept_batch(
        &self,
        request: Request<Streaming<pb::InterceptRequest>>,
    ) -> Result<Response<Self::InterceptBatchStream>, Status> {
        let engine = Arc::clone(&self.engine);
        let requests = request.into_inner();
        if engine.audit_log().is_some_and(AuditLog::acknowledges) {
            // Intercept in request order (`map` runs as `buffered` pulls), then let up to
            // ACK_PIPELINE replies wait for their sync together; `buffered` yields them in
            // order.
            let replies = requests
                .map(move |item| match item {
                    Ok(req) => {
                        let answer = report::intercept(&engine, req);
                        let engine = Arc::clone(&engine);
                        Either::Left(async move { Ok(acknowledged(&engine, answer).await) })
                    }
                    Err(status) => Either::Right(future::ready(Err(status))),
                })
                .buffered(ACK_PIPELINE);
            return Ok(Response::new(Box::pin(replies)));
        }
        // Answer inline as requests arrive: no task or channel per stream, replies keep
        // request order, and tonic coalesces whatever is ready into one write.
        let replies = requests.map(move |item| item.map(|req| report::intercept(&engine, req).0));
        Ok(Response::new(Box::pin(replies)))
    }

    async fn stats(
        &self,
        request: Request<pb::StatsRequest>,
    ) -> Result<Response<pb::StatsReply>, Status> {
        Ok(Response::new(report::stats(
            &self.engine,
            request.into_inner().top,
        )))
    }

    async fn inspect(
        &self,
        request: Request<pb::InspectRequest>,
    ) -> Result<Response<pb::InspectReply>, Status> {
        Ok(Response::new(report::inspect(
            &self.engine,
            &request.into_inner().signature,
        )))
    }

    async fn verify_chain(
        &self,
        _request: Request<pb::VerifyChainRequest>,
    ) -> Result<Response<pb::VerifyChainReply>, Status> {
        let engine = Arc::clone(&self.engine);
        // With a ledger this re-reads every segment: keep it off the runtime's workers.
        let reply = tokio::task::spawn_blocking(move || report::verify_chain(&engine))
            .await
            .map_err(|e| Status::internal(format!("verification task failed: {e}")))?;
        Ok(Response::new(reply))
    }

    async fn snapshot(
        &self,
        _request: Request<pb::SnapshotRequest>,
    ) -> Result<Response<pb::SnapshotReply>, Status> {
        Ok(Response::new(report::snapshot(&self.engine)))
    }

    async fn audit_prove(
        &self,
        request: Request<pb::AuditProveRequest>,
    ) -> Result<Response<pb::AuditProveReply>, Status> {
        let r = request.into_inner();
        let consistency = r.consistency.then_some((r.first_size, r.second_size));
        let reply = on_ledger(&self.engine, move |log| {
            log.prove(r.index, consistency).map_err(|e| match e {
                ProveError::OutOfRange(m) => Status::out_of_range(m),
                ProveError::Ledger(e) => Status::internal(format!("audit ledger: {e}")),
            })
        })
        .await?;
        Ok(Response::new(reply))
    }

    async fn cold_retrieve(
        &self,
        request: Request<pb::ColdRetrieveRequest>,
    ) -> Result<Response<pb::ColdRetrieveReply>, Status> {
        let signature = request.into_inner().signature;
        Ok(Response::new(
            crate::cold_rpc::retrieve(&self.engine, &signature).await?,
        ))
    }

    async fn evacuate(
        &self,
        request: Request<pb::EvacuateRequest>,
    ) -> Result<Response<pb::EvacuateReply>, Status> {
        Ok(Response::new(
            crate::cold_rpc::evacuate(&self.engine, request.into_inner()).await?,
        ))
    }

    async fn run_lifecycle(
        &self,
        _request: Request<pb::RunLifecycleRequest>,
    ) -> Result<Response<pb::RunLifecycleReply>, Status> {
        match crate::lifecycle_task::run_once(&self.engine, true).await {
            Ok(Some(r)) => Ok(Response::new(pb::RunLifecycleReply {
                evacuated: r.evacuated,
                neutralized: r.neutralized,
                deleted_from_cold: r.deleted_from_cold,
                deleted_bytes: r.deleted_bytes,
                deferred: r.deferred,
                failures: r.failures,
                error: r.error,
                memory_bytes_before: r.totals.memory_before,
                memory_bytes_after: r.totals.memory_after,
                cold_bytes_before: r.totals.cold_before,
                cold_bytes_after: r.totals.cold_after,
                orphan_keys_destroyed: r.orphan_keys_destroyed,
            })),
            Ok(None) => Err(Status::failed_precondition(
                "tracehoundd runs without a lifecycle policy (add a [lifecycle] section)",
            )),
            Err(e) => Err(Status::unavailable(e.to_string())),
        }
    }

    async fn erase(
        &self,
        request: Request<pb::EraseRequest>,
    ) -> Result<Response<pb::EraseReply>, Status> {
        let selector = crate::erasure::Selector::from_request(request.into_inner())
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let report = crate::erasure::run::erase(&self.engine, selector).await;
        Ok(Response::new(report.into_reply()))
    }

    async fn audit_checkpoint(
        &self,
        _request: Request<pb::AuditCheckpointRequest>,
    ) -> Result<Response<pb::AuditCheckpointReply>, Status> {
        let log = self.engine.audit_log().ok_or_else(no_ledger)?;
        let reply = log
            .checkpoint()
            .ok_or_else(|| Status::unavailable("no checkpoint has been signed yet"))?;
        Ok(Response::new(reply))
    }

    async fn export_snapshot(
        &self,
        _request: Request<pb::ExportSnapshotRequest>,
    ) -> Result<Response<pb::ExportSnapshotReply>, Status> {
        let engine = Arc::clone(&self.engine);
        // Locks the quarantine and reads the ledger's tree: off the runtime's workers.
        let reply =
            tokio::task::spawn_blocking(move || crate::snapshot_export::export_snapshot(&engine))
                .await
                .map_err(|e| Status::internal(format!("export task failed: {e}")))?
                .map_err(crate::snapshot_export::ExportError::into_status)?;
        Ok(Response::new(reply))
    }

    async fn incident_record(
        &self,
        request: Request<pb::IncidentRecordRequest>,
    ) -> Result<Response<pb::IncidentRecordReply>, Status> {
        use crate::audit_log::IncidentRecordError as E;
        let log = self.engine.audit_log().ok_or_else(no_ledger)?;
        let signature = request.into_inner().signature;
        let now = self.engine.agent().clock().now_ms() as f64;
        let reply = log
            .record_incident(&signature, now)
            .await
            .map_err(|e| match e {
                E::NotFound(_) => Status::not_found(e.to_string()),
                E::Evidence(_) => Status::failed_precondition(e.to_string()),
                E::Unavailable(_) | E::Ledger(_) => Status::unavailable(e.to_string()),
                E::Internal(_) => Status::internal(e.to_string()),
            })?;
        Ok(Response::new(reply))
    }
}
