//! The gRPC service: each method is a thin shell over [`Engine`].

use std::pin::Pin;
use std::sync::Arc;

use futures_util::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};
use tracehound_rpc::pb;

use crate::engine::Engine;
use crate::report;

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

#[tonic::async_trait]
impl pb::tracehound_server::Tracehound for TracehoundService {
    async fn intercept(
        &self,
        request: Request<pb::InterceptRequest>,
    ) -> Result<Response<pb::InterceptReply>, Status> {
        Ok(Response::new(report::intercept(
            &self.engine,
            request.into_inner(),
        )))
    }

    type InterceptBatchStream = ReplyStream;

    async fn intercept_batch(
        &self,
        request: Request<Streaming<pb::InterceptRequest>>,
    ) -> Result<Response<Self::InterceptBatchStream>, Status> {
        let engine = Arc::clone(&self.engine);
        // Answer inline as requests arrive: no task or channel per stream, replies keep
        // request order, and tonic coalesces whatever is ready into one write.
        let replies = request
            .into_inner()
            .map(move |item| item.map(|req| report::intercept(&engine, req)));
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
        Ok(Response::new(report::verify_chain(&self.engine)))
    }

    async fn snapshot(
        &self,
        _request: Request<pb::SnapshotRequest>,
    ) -> Result<Response<pb::SnapshotReply>, Status> {
        Ok(Response::new(report::snapshot(&self.engine)))
    }
}
