//! The HTTP/1.1 client: hyper-util's pooled client over hyper-rustls (https with the
//! system's roots via rustls + aws-lc-rs, or plain http).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::sink::HttpRequest;

/// Largest reply body read (HEC and `_bulk` replies are parsed; others ignored).
const MAX_REPLY: usize = 256 * 1024;

/// One sink's pooled client.
pub(crate) type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A client trusting the system's root certificates. Missing or unreadable roots leave
/// an empty store: plain http still works, https then fails its handshake (counted as
/// failed deliveries, never a panic).
pub(crate) fn client() -> Result<HttpClient, rustls::Error> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        // A bad system certificate is skipped, not fatal.
        let _ = roots.add(cert);
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(2)
        .build(https))
}

/// Why an attempt got no usable reply.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SendError {
    /// The URL or a header could not be encoded.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// Connect, write or read failed.
    #[error("transport: {0}")]
    Transport(String),
    /// No reply within the timeout.
    #[error("timed out")]
    Timeout,
}

/// Sends `req` as a POST; returns the status and the reply body. A body longer than
/// [`MAX_REPLY`] or one that fails to read is a [`SendError::Transport`].
pub(crate) async fn post(
    client: &HttpClient,
    req: &HttpRequest,
    timeout: Duration,
) -> Result<(u16, Bytes), SendError> {
    let mut builder = http::Request::post(req.url.as_str());
    for (name, value) in &req.headers {
        let mut value = http::HeaderValue::from_str(value)
            .map_err(|_| SendError::Invalid(format!("header {name} has an invalid value")))?;
        // Authorization, API keys and configured headers may carry credentials:
        // sensitive values are never printed by `http`'s Debug (nor HPACK-indexed).
        if !name.eq_ignore_ascii_case("content-type") {
            value.set_sensitive(true);
        }
        builder = builder.header(name.as_str(), value);
    }
    let request = builder
        .body(Full::new(Bytes::from(req.body.clone())))
        .map_err(|e| SendError::Invalid(e.to_string()))?;
    let exchange = async {
        let reply = client
            .request(request)
            .await
            .map_err(|e| SendError::Transport(e.to_string()))?;
        let status = reply.status().as_u16();
        // A reply that cannot be read whole is a failed attempt, never an empty body:
        // an empty body would skip the `_bulk` `errors` check and the HEC ackId and
        // count the batch as delivered.
        let body = Limited::new(reply.into_body(), MAX_REPLY)
            .collect()
            .await
            .map(|c| c.to_bytes())
            .map_err(|e| SendError::Transport(format!("reading the reply: {e}")))?;
        Ok((status, body))
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .unwrap_or(Err(SendError::Timeout))
}
