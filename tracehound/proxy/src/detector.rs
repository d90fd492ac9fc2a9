//! Detection by an HTTP endpoint: every request's metadata and inspected body prefix are
//! POSTed as JSON to `--detector-url`, and the answer is the threat signal. The call has
//! a deadline; on timeout or any error the request passes (fail-open) and is counted
//! here and in the layer's stats. The wire format is documented in [`wire`].

mod client;
pub mod wire;

pub use client::{CallError, DetectorStats, HttpDetector};

use tracehound_tower::{Detector, DetectorError, DetectorFuture, RequestView};

use wire::DetectorQuery;

impl Detector for HttpDetector {
    fn inspect<'a>(&'a self, request: &'a RequestView<'a>) -> DetectorFuture<'a> {
        Box::pin(async move {
            let uri = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
            let client = request.client().to_string();
            let query = DetectorQuery::new(
                request.method().as_str(),
                uri,
                &client,
                request.headers(),
                request.body_prefix(),
                request.body_truncated(),
            );
            self.ask(&query).await.map_err(|error| match error {
                CallError::Timeout(_) | CallError::Request(_) => {
                    DetectorError::Unavailable(error.to_string())
                }
                CallError::Status(_) | CallError::Body(_) | CallError::Answer(_) => {
                    DetectorError::InvalidAnswer(error.to_string())
                }
                CallError::Encode(_) => DetectorError::Other(Box::new(error)),
            })
        })
    }
}
