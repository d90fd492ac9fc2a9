//! Sink settings and the HTTP request each kind sends (pure; the worker does the I/O).

use std::fmt;
use std::time::Duration;

use tracehound_core::notify::EventType;
use tracehound_core::webhook::{RetryPolicy, WebhookConfig};
use zeroize::Zeroizing;

use crate::format::datadog::{self, DatadogFields};
use crate::format::hec::{self, HecFields};
use crate::format::{ecs, ocsf, webhook};
use crate::record::Record;

/// Where records go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SinkKind {
    /// v1's signed webhook; `url` is the full target.
    Webhook,
    /// Splunk HEC; `url` is the collector's base (`https://splunk:8088`).
    SplunkHec,
    /// Elasticsearch `_bulk`; `url` is the cluster's base.
    Elasticsearch,
    /// Datadog Logs; `url` is the intake's base (`https://http-intake.logs.datadoghq.com`).
    Datadog,
    /// OCSF Detection Finding JSON; `url` is the full target.
    OcsfHttp,
}

impl SinkKind {
    /// Every kind.
    pub const ALL: [SinkKind; 5] = [
        SinkKind::Webhook,
        SinkKind::SplunkHec,
        SinkKind::Elasticsearch,
        SinkKind::Datadog,
        SinkKind::OcsfHttp,
    ];

    /// The config name.
    pub fn as_str(self) -> &'static str {
        match self {
            SinkKind::Webhook => "webhook",
            SinkKind::SplunkHec => "splunk_hec",
            SinkKind::Elasticsearch => "elasticsearch",
            SinkKind::Datadog => "datadog",
            SinkKind::OcsfHttp => "ocsf_http",
        }
    }

    /// Parses a config name.
    pub fn parse(name: &str) -> Option<SinkKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Whether this kind needs a secret (HEC token, Datadog API key).
    pub fn requires_secret(self) -> bool {
        matches!(self, SinkKind::SplunkHec | SinkKind::Datadog)
    }

    /// Whether one request may carry several records.
    pub fn batches(self) -> bool {
        matches!(
            self,
            SinkKind::SplunkHec | SinkKind::Elasticsearch | SinkKind::Datadog
        )
    }
}

/// One sink's settings.
#[derive(Clone)]
pub struct SinkConfig {
    /// Name in stats and logs.
    pub name: String,
    /// Kind.
    pub kind: SinkKind,
    /// Target URL (see [`SinkKind`]).
    pub url: String,
    /// Event types delivered; empty = all.
    pub events: Vec<EventType>,
    /// Records waiting before drops start.
    pub queue_capacity: usize,
    /// Attempts per request (1 = no retry).
    pub max_attempts: u32,
    /// Per attempt: connect, send and read the reply.
    pub timeout: Duration,
    /// First retry delay; doubles per attempt.
    pub retry_base: Duration,
    /// Cap on the retry delay.
    pub retry_max: Duration,
    /// Most records per request (kinds that batch).
    pub batch_max: usize,
    /// Webhook HMAC secret, HEC token, Elasticsearch API key, Datadog API key or OCSF
    /// bearer token. Zeroized on drop, never printed.
    pub secret: Option<Zeroizing<String>>,
    /// Extra headers (webhook and OCSF).
    pub headers: Vec<(String, String)>,
    /// Elasticsearch index or HEC index.
    pub index: Option<String>,
    /// HEC `sourcetype`.
    pub sourcetype: Option<String>,
    /// `host` (HEC) / `hostname` (Datadog).
    pub host: Option<String>,
    /// Datadog `service`.
    pub service: Option<String>,
    /// Datadog `ddtags`.
    pub tags: Option<String>,
    /// HEC: wait for indexer acknowledgement.
    pub hec_ack: bool,
    /// HEC: how often to poll for acks.
    pub ack_poll: Duration,
    /// HEC: how long to wait for an ack before sending again.
    pub ack_timeout: Duration,
}

impl fmt::Debug for SinkConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SinkConfig")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("url", &redact_url(&self.url))
            .field("events", &self.events)
            .field("headers", &HeaderNames(&self.headers))
            .field("queue_capacity", &self.queue_capacity)
            .field("max_attempts", &self.max_attempts)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl SinkConfig {
    /// A sink with defaults: 1024 queued, 5 attempts, 5 s timeout, 0.5–30 s back-off,
    /// 100 records per batch, HEC acks on (1 s poll, 60 s timeout).
    pub fn new(name: impl Into<String>, kind: SinkKind, url: impl Into<String>) -> SinkConfig {
        SinkConfig {
            name: name.into(),
            kind,
            url: url.into(),
            events: Vec::new(),
            queue_capacity: 1024,
            max_attempts: 5,
            timeout: Duration::from_secs(5),
            retry_base: Duration::from_millis(500),
            retry_max: Duration::from_secs(30),
            batch_max: 100,
            secret: None,
            headers: Vec::new(),
            index: None,
            sourcetype: None,
            host: None,
            service: None,
            tags: None,
            hec_ack: true,
            ack_poll: Duration::from_secs(1),
            ack_timeout: Duration::from_secs(60),
        }
    }

    /// Whether this sink wants events of `t`.
    pub fn wants(&self, t: EventType) -> bool {
        self.events.is_empty() || self.events.contains(&t)
    }

    /// Records per request for this sink.
    pub fn batch_limit(&self) -> usize {
        if self.kind.batches() {
            self.batch_max.max(1)
        } else {
            1
        }
    }
}

/// One HTTP request, fully built.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// Absolute URL.
    pub url: String,
    /// Headers in order (may hold secrets: never log them).
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpRequest")
            .field("url", &redact_url(&self.url))
            .field("headers", &HeaderNames(&self.headers))
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// `url` fit for logs and `Debug`: userinfo and the query (either may carry a
/// credential) become `<redacted>`; scheme, host, port and path stay.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let host = match authority.rfind('@') {
        Some(i) => format!("<redacted>@{}", &authority[i + 1..]),
        None => authority.to_owned(),
    };
    let tail = match tail.find('?') {
        Some(i) => format!("{}?<redacted>", &tail[..i]),
        None => tail.to_owned(),
    };
    format!("{scheme}{host}{tail}")
}

/// Prints header names with every value redacted.
struct HeaderNames<'a>(&'a [(String, String)]);

impl fmt::Debug for HeaderNames<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(n, _)| (n, "<redacted>")))
            .finish()
    }
}

fn join(base: &str, path: &str) -> String {
    format!("{}{path}", base.trim_end_matches('/'))
}

/// Builds requests for one sink; holds the per-sink state that formats need.
pub struct RequestBuilder {
    config: SinkConfig,
    webhook: Option<WebhookConfig>,
    /// HEC channel id (one per sink per run).
    channel: String,
}

impl fmt::Debug for RequestBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The webhook settings repeat the URL, headers and secret: not printed.
        f.debug_struct("RequestBuilder")
            .field("config", &self.config)
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

impl RequestBuilder {
    /// A builder for `config`.
    pub fn new(config: SinkConfig) -> RequestBuilder {
        let webhook = (config.kind == SinkKind::Webhook).then(|| WebhookConfig {
            url: config.url.clone(),
            events: Vec::new(),
            headers: config.headers.clone(),
            secret: config
                .secret
                .as_ref()
                .map(|s| Zeroizing::new(s.as_bytes().to_vec())),
            retry: RetryPolicy::default(),
        });
        RequestBuilder {
            config,
            webhook,
            channel: uuid::Uuid::now_v7().to_string(),
        }
    }

    /// The sink's settings.
    pub fn config(&self) -> &SinkConfig {
        &self.config
    }

    /// The HEC channel id.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    fn secret(&self) -> Option<&str> {
        self.config.secret.as_deref().map(String::as_str)
    }

    fn hec_headers(&self) -> Vec<(String, String)> {
        let mut h = vec![("Content-Type".into(), "application/json".into())];
        if let Some(t) = self.secret() {
            h.push(("Authorization".into(), format!("Splunk {t}")));
        }
        h.push((hec::CHANNEL_HEADER.into(), self.channel.clone()));
        h
    }

    /// The request delivering `records` (1 for kinds that do not batch).
    pub fn build(&self, records: &[&Record]) -> HttpRequest {
        let c = &self.config;
        match c.kind {
            SinkKind::Webhook => match (&self.webhook, records.first()) {
                (Some(hook), Some(r)) => {
                    let req = webhook::request(hook, r);
                    HttpRequest {
                        url: req.url,
                        headers: req.headers,
                        body: req.body.into_bytes(),
                    }
                }
                // Callers never pass an empty batch; an empty body is the harmless answer.
                _ => HttpRequest {
                    url: c.url.clone(),
                    headers: Vec::new(),
                    body: Vec::new(),
                },
            },
            SinkKind::OcsfHttp => {
                let body = match records {
                    [one] => ocsf::finding(one),
                    many => {
                        serde_json::Value::Array(many.iter().map(|r| ocsf::finding(r)).collect())
                    }
                };
                let mut headers = vec![("Content-Type".into(), "application/json".into())];
                if let Some(t) = self.secret() {
                    headers.push(("Authorization".into(), format!("Bearer {t}")));
                }
                headers.extend(c.headers.iter().cloned());
                HttpRequest {
                    url: c.url.clone(),
                    headers,
                    body: body.to_string().into_bytes(),
                }
            }
            SinkKind::SplunkHec => HttpRequest {
                url: join(&c.url, hec::EVENT_PATH),
                headers: self.hec_headers(),
                body: hec::body(
                    records,
                    &HecFields {
                        index: c.index.clone(),
                        sourcetype: c.sourcetype.clone(),
                        host: c.host.clone(),
                    },
                )
                .into_bytes(),
            },
            SinkKind::Elasticsearch => {
                let mut headers = vec![("Content-Type".into(), "application/x-ndjson".into())];
                if let Some(k) = self.secret() {
                    headers.push(("Authorization".into(), format!("ApiKey {k}")));
                }
                headers.extend(c.headers.iter().cloned());
                let index = c.index.as_deref().unwrap_or("tracehound-events");
                HttpRequest {
                    url: join(&c.url, "/_bulk"),
                    headers,
                    body: ecs::bulk_body(records, index).into_bytes(),
                }
            }
            SinkKind::Datadog => {
                let mut headers = vec![("Content-Type".into(), "application/json".into())];
                if let Some(k) = self.secret() {
                    headers.push((datadog::KEY_HEADER.into(), k.to_owned()));
                }
                HttpRequest {
                    url: join(&c.url, datadog::PATH),
                    headers,
                    body: datadog::body(
                        records,
                        &DatadogFields {
                            service: c.service.clone(),
                            tags: c.tags.clone(),
                            host: c.host.clone(),
                        },
                    )
                    .into_bytes(),
                }
            }
        }
    }

    /// The HEC ack poll for `ids`.
    pub fn hec_ack(&self, ids: &[u64]) -> HttpRequest {
        HttpRequest {
            url: format!(
                "{}?channel={}",
                join(&self.config.url, hec::ACK_PATH),
                self.channel
            ),
            headers: self.hec_headers(),
            body: hec::ack_body(ids).into_bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::fixtures::records;

    fn header<'a>(r: &'a HttpRequest, name: &str) -> Option<&'a str> {
        r.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn urls_and_auth_headers_per_kind() {
        let (q, _) = records();
        let mut c = SinkConfig::new("h", SinkKind::SplunkHec, "http://127.0.0.1:8088/");
        c.secret = Some(Zeroizing::new("tok".into()));
        let b = RequestBuilder::new(c.clone());
        let r = b.build(&[&q]);
        assert_eq!(r.url, "http://127.0.0.1:8088/services/collector/event");
        assert_eq!(header(&r, "Authorization"), Some("Splunk tok"));
        assert_eq!(header(&r, "X-Splunk-Request-Channel"), Some(b.channel()));
        let a = b.hec_ack(&[3]);
        assert!(a
            .url
            .starts_with("http://127.0.0.1:8088/services/collector/ack?channel="));

        c.kind = SinkKind::Datadog;
        let r = RequestBuilder::new(c.clone()).build(&[&q]);
        assert_eq!(r.url, "http://127.0.0.1:8088/api/v2/logs");
        assert_eq!(header(&r, "DD-API-KEY"), Some("tok"));

        c.kind = SinkKind::Elasticsearch;
        let r = RequestBuilder::new(c.clone()).build(&[&q]);
        assert_eq!(r.url, "http://127.0.0.1:8088/_bulk");
        assert_eq!(header(&r, "Authorization"), Some("ApiKey tok"));
        assert_eq!(header(&r, "Content-Type"), Some("application/x-ndjson"));

        c.kind = SinkKind::OcsfHttp;
        c.url = "http://127.0.0.1:1/findings".into();
        let r = RequestBuilder::new(c.clone()).build(&[&q]);
        assert_eq!(r.url, "http://127.0.0.1:1/findings");
        assert_eq!(header(&r, "Authorization"), Some("Bearer tok"));
        assert!(!format!("{c:?}{r:?}").contains("tok\""));
        assert_eq!(c.batch_limit(), 1);
    }

    #[test]
    fn debug_never_prints_secrets_header_values_userinfo_or_queries() {
        assert_eq!(
            redact_url("https://u:pw@h.example:8/p/q?key=k1#f"),
            "https://<redacted>@h.example:8/p/q?<redacted>"
        );
        assert_eq!(redact_url("http://h/p"), "http://h/p");
        assert_eq!(redact_url("http://a@b"), "http://<redacted>@b");
        let (q, _) = records();
        for kind in [
            SinkKind::Webhook,
            SinkKind::SplunkHec,
            SinkKind::Elasticsearch,
            SinkKind::Datadog,
            SinkKind::OcsfHttp,
        ] {
            let mut c = SinkConfig::new("s", kind, "https://usr:pw0@h.example/x?tok=qs1");
            c.secret = Some(Zeroizing::new("sec-rt".into()));
            c.headers = vec![("X-Auth".into(), "hdr-val".into())];
            let b = RequestBuilder::new(c.clone());
            let r = b.build(&[&q]);
            let printed = format!("{c:?} {b:?} {r:?}");
            for secret in ["sec-rt", "hdr-val", "usr", "pw0", "qs1"] {
                assert!(!printed.contains(secret), "{kind:?}: {secret} in {printed}");
            }
            assert!(printed.contains("X-Auth"), "{printed}");
        }
    }
}
