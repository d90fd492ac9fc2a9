//! `[notify]`: notification sinks (`[[notify.sinks]]`) and threat coalescing
//! (`[notify.coalesce]`). Restart required: a reload keeps the running sinks (their
//! queues, counters and HEC channels survive), and reports `notify` as restart-only.
//!
//! Secrets (webhook HMAC secret, HEC token, Elasticsearch API key, Datadog API key,
//! OCSF bearer token) come from exactly one of `secret`, `secret_file` or `secret_env`.
//! They are zeroized on drop, print as `<redacted>` in `Debug`, and are resolved (file
//! read, variable looked up) only when the daemon starts the notifier.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use tracehound_core::notify::EventType;
use tracehound_notify::{CoalesceConfig, CoalesceKey, NotifierConfig, SinkConfig, SinkKind};
use zeroize::Zeroizing;

/// A secret string from the TOML file: zeroized on drop, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| Secret(Zeroizing::new(s)))
    }
}

/// `[notify]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifySection {
    /// Events the core's emitter holds for the notifier before it drops (counted).
    pub queue_capacity: usize,
    /// How often events are collected and coalescing windows closed, in ms.
    pub poll_interval_ms: u64,
    /// At shutdown, how long sinks may keep delivering what is queued, in ms.
    pub shutdown_grace_ms: u64,
    /// `[notify.coalesce]`.
    pub coalesce: CoalesceSection,
    /// `[[notify.sinks]]`.
    pub sinks: Vec<SinkSection>,
}

impl Default for NotifySection {
    fn default() -> Self {
        NotifySection {
            queue_capacity: 8192,
            poll_interval_ms: 20,
            shutdown_grace_ms: 2000,
            coalesce: CoalesceSection::default(),
            sinks: Vec::new(),
        }
    }
}

/// The coalescing key as written in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
pub enum KeyName {
    /// `"signature"`.
    #[default]
    #[serde(rename = "signature")]
    Signature,
    /// `"source"`.
    #[serde(rename = "source")]
    Source,
    /// `"source+category"`.
    #[serde(rename = "source+category")]
    SourceCategory,
}

/// `[notify.coalesce]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CoalesceSection {
    /// Window in ms; 0 = one record per event.
    pub window_ms: u64,
    /// `signature`, `source` or `source+category`.
    pub key: KeyName,
    /// Most keys open at once (past it events pass through, counted as overflow).
    pub max_keys: usize,
    /// Distinct signatures kept per record.
    pub sample: usize,
}

impl Default for CoalesceSection {
    fn default() -> Self {
        let d = CoalesceConfig::default();
        CoalesceSection {
            window_ms: d.window_ms,
            key: KeyName::Signature,
            max_keys: d.max_keys,
            sample: d.sample,
        }
    }
}

/// Sink kinds as written in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KindName {
    /// v1's signed webhook.
    Webhook,
    /// Splunk HEC.
    SplunkHec,
    /// Elasticsearch `_bulk`.
    Elasticsearch,
    /// Datadog Logs.
    Datadog,
    /// OCSF Detection Finding over HTTP.
    OcsfHttp,
}

impl KindName {
    fn kind(self) -> SinkKind {
        match self {
            KindName::Webhook => SinkKind::Webhook,
            KindName::SplunkHec => SinkKind::SplunkHec,
            KindName::Elasticsearch => SinkKind::Elasticsearch,
            KindName::Datadog => SinkKind::Datadog,
            KindName::OcsfHttp => SinkKind::OcsfHttp,
        }
    }
}

/// One `[[notify.sinks]]` entry. `Debug` prints the URL without userinfo or query and
/// header names without values.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SinkSection {
    /// Name in stats and logs (default: the kind and its position).
    pub name: Option<String>,
    /// `webhook`, `splunk_hec`, `elasticsearch`, `datadog` or `ocsf_http` (required).
    pub kind: Option<KindName>,
    /// Full URL (webhook, ocsf_http) or base URL (splunk_hec, elasticsearch, datadog).
    pub url: String,
    /// Event types (v1 names); empty = all.
    pub events: Vec<String>,
    /// Records waiting before drops start.
    pub queue_capacity: usize,
    /// Attempts per request.
    pub max_attempts: u32,
    /// Per attempt, in ms.
    pub timeout_ms: u64,
    /// First retry delay, doubling per attempt, in ms.
    pub retry_base_ms: u64,
    /// Cap on the retry delay, in ms.
    pub retry_max_ms: u64,
    /// Records per request (splunk_hec, elasticsearch, datadog).
    pub batch_max: usize,
    /// The secret itself (prefer `secret_file` or `secret_env`).
    pub secret: Option<Secret>,
    /// A file holding the secret (trailing newline ignored).
    pub secret_file: Option<PathBuf>,
    /// An environment variable holding the secret.
    pub secret_env: Option<String>,
    /// Extra request headers (webhook, elasticsearch, ocsf_http).
    pub headers: BTreeMap<String, String>,
    /// Elasticsearch index / HEC index.
    pub index: Option<String>,
    /// HEC sourcetype.
    pub sourcetype: Option<String>,
    /// HEC host / Datadog hostname.
    pub host: Option<String>,
    /// Datadog service.
    pub service: Option<String>,
    /// Datadog ddtags.
    pub tags: Option<String>,
    /// HEC: wait for indexer acknowledgement.
    pub ack: bool,
    /// HEC: ack poll interval, in ms.
    pub ack_poll_ms: u64,
    /// HEC: how long to wait for an ack before resending, in ms.
    pub ack_timeout_ms: u64,
}

impl fmt::Debug for SinkSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<&str> = self.headers.keys().map(String::as_str).collect();
        f.debug_struct("SinkSection")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("url", &tracehound_notify::redact_url(&self.url))
            .field("events", &self.events)
            .field("queue_capacity", &self.queue_capacity)
            .field("batch_max", &self.batch_max)
            .field("secret", &self.secret)
            .field("secret_file", &self.secret_file)
            .field("secret_env", &self.secret_env)
            .field("header_names", &headers)
            .field("index", &self.index)
            .field("ack", &self.ack)
            .finish_non_exhaustive()
    }
}

/// The host of an `http(s)://` URL (brackets of an IPv6 literal removed), and whether
/// the authority carries userinfo.
fn url_host(url: &str) -> (&str, bool) {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let userinfo = authority.contains('@');
    let hostport = authority.rsplit('@').next().unwrap_or(authority);
    let host = if let Some(v6) = hostport.strip_prefix('[') {
        v6.split(']').next().unwrap_or(v6)
    } else {
        hostport.split(':').next().unwrap_or(hostport)
    };
    (host, userinfo)
}

/// `localhost` or a loopback IP literal.
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl Default for SinkSection {
    fn default() -> Self {
        let d = SinkConfig::new("", SinkKind::Webhook, "");
        SinkSection {
            name: None,
            kind: None,
            url: String::new(),
            events: Vec::new(),
            queue_capacity: d.queue_capacity,
            max_attempts: d.max_attempts,
            timeout_ms: d.timeout.as_millis() as u64,
            retry_base_ms: d.retry_base.as_millis() as u64,
            retry_max_ms: d.retry_max.as_millis() as u64,
            batch_max: d.batch_max,
            secret: None,
            secret_file: None,
            secret_env: None,
            headers: BTreeMap::new(),
            index: None,
            sourcetype: None,
            host: None,
            service: None,
            tags: None,
            ack: d.hec_ack,
            ack_poll_ms: d.ack_poll.as_millis() as u64,
            ack_timeout_ms: d.ack_timeout.as_millis() as u64,
        }
    }
}

/// Longest accepted duration (a day): anything longer is a typo, not a policy.
const MAX_MS: u64 = 86_400_000;
/// Largest queue accepted.
const MAX_CAPACITY: usize = 1 << 24;
/// Most records per request for any kind: a bigger batch only makes one request (and
/// one retry of it) larger.
const MAX_BATCH: usize = 5000;
/// Most entries Datadog's Logs intake takes per request.
const MAX_BATCH_DATADOG: usize = 1000;
/// Most signatures a coalesced record samples (each one is carried in every record).
const MAX_SAMPLE: usize = 64;
/// Most coalescing keys open at once (each holds a record in memory).
const MAX_KEYS: usize = 1_000_000;
/// Longest shutdown grace: shutdown blocks the daemon's exit for up to this long.
const MAX_GRACE_MS: u64 = 60_000;

impl SinkSection {
    fn display_name(&self, i: usize) -> String {
        self.name.clone().unwrap_or_else(|| {
            let kind = self.kind.map_or("sink", |k| k.kind().as_str());
            format!("{kind}-{i}")
        })
    }

    fn validate(&self) -> Result<(), String> {
        let Some(kind) = self.kind else {
            return Err(
                "`kind` is required: webhook, splunk_hec, elasticsearch, datadog or ocsf_http"
                    .into(),
            );
        };
        let kind = kind.kind();
        if !(self.url.starts_with("http://") || self.url.starts_with("https://"))
            || self
                .url
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err("`url` must be an http:// or https:// URL".into());
        }
        let (host, userinfo) = url_host(&self.url);
        if userinfo {
            return Err(
                "`url` must not carry credentials (user:password@): use `secret_file`, \
                 `secret_env` or `secret`"
                    .into(),
            );
        }
        if host.is_empty() {
            return Err("`url` has no host".into());
        }
        for e in &self.events {
            if EventType::parse(e).is_none() {
                let names: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
                return Err(format!(
                    "unknown event `{e}` in `events` (one of {})",
                    names.join(", ")
                ));
            }
        }
        if self.queue_capacity == 0 || self.queue_capacity > MAX_CAPACITY {
            return Err(format!(
                "`queue_capacity` must be within 1..={MAX_CAPACITY}"
            ));
        }
        let batch_cap = if kind == SinkKind::Datadog {
            MAX_BATCH_DATADOG
        } else {
            MAX_BATCH
        };
        if self.batch_max == 0 || self.batch_max > batch_cap {
            return Err(format!(
                "`batch_max` must be within 1..={batch_cap} for {}",
                kind.as_str()
            ));
        }
        if self.max_attempts == 0 || self.max_attempts > 100 {
            return Err("`max_attempts` must be within 1..=100".into());
        }
        for (field, v) in [
            ("timeout_ms", self.timeout_ms),
            ("retry_base_ms", self.retry_base_ms),
            ("retry_max_ms", self.retry_max_ms),
            ("ack_poll_ms", self.ack_poll_ms),
            ("ack_timeout_ms", self.ack_timeout_ms),
        ] {
            if v == 0 || v > MAX_MS {
                return Err(format!("`{field}` must be within 1..={MAX_MS}"));
            }
        }
        let sources = [
            self.secret.is_some(),
            self.secret_file.is_some(),
            self.secret_env.is_some(),
        ]
        .iter()
        .filter(|&&b| b)
        .count();
        if sources > 1 {
            return Err("set only one of `secret`, `secret_file` and `secret_env`".into());
        }
        if sources == 0 && kind.requires_secret() {
            let what = if kind == SinkKind::SplunkHec {
                "HEC token"
            } else {
                "Datadog API key"
            };
            return Err(format!(
                "the {what} is required: set `secret_file`, `secret_env` or `secret`"
            ));
        }
        // A secret (or a configured header, which may be one) sent in clear text is
        // readable on the path: only a loopback receiver may be plain http.
        let carries_secret = sources > 0 || !self.headers.is_empty();
        if carries_secret && self.url.starts_with("http://") && !is_loopback(host) {
            return Err(
                "`url` must be https:// for a sink with a secret or headers (plain http:// \
                 only to a loopback host)"
                    .into(),
            );
        }
        Ok(())
    }

    /// The secret, read from wherever it is configured.
    fn resolve_secret(&self, i: usize) -> Result<Option<Zeroizing<String>>, String> {
        if let Some(s) = &self.secret {
            return Ok(Some(s.0.clone()));
        }
        if let Some(path) = &self.secret_file {
            let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                format!(
                    "notify.sinks[{i}].secret_file: cannot read {}: {e}",
                    path.display()
                )
            })?);
            let trimmed = text.trim_end_matches(['\r', '\n']);
            if trimmed.is_empty() {
                return Err(format!(
                    "notify.sinks[{i}].secret_file: {} is empty",
                    path.display()
                ));
            }
            return Ok(Some(Zeroizing::new(trimmed.to_owned())));
        }
        if let Some(var) = &self.secret_env {
            return match std::env::var(var) {
                Ok(v) if !v.is_empty() => Ok(Some(Zeroizing::new(v))),
                _ => Err(format!(
                    "notify.sinks[{i}].secret_env: environment variable {var} is not set"
                )),
            };
        }
        Ok(None)
    }
}

impl NotifySection {
    /// Range checks; the dotted field and the reason.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.queue_capacity == 0 || self.queue_capacity > MAX_CAPACITY {
            return Err((
                "notify.queue_capacity",
                format!("must be within 1..={MAX_CAPACITY}"),
            ));
        }
        if self.poll_interval_ms == 0 || self.poll_interval_ms > MAX_MS {
            return Err((
                "notify.poll_interval_ms",
                format!("must be within 1..={MAX_MS}"),
            ));
        }
        if self.shutdown_grace_ms == 0 || self.shutdown_grace_ms > MAX_GRACE_MS {
            return Err((
                "notify.shutdown_grace_ms",
                format!("must be within 1..={MAX_GRACE_MS}"),
            ));
        }
        if self.coalesce.window_ms > MAX_MS {
            return Err(("notify.coalesce.window_ms", format!("at most {MAX_MS}")));
        }
        for (field, v, max) in [
            ("notify.coalesce.max_keys", self.coalesce.max_keys, MAX_KEYS),
            ("notify.coalesce.sample", self.coalesce.sample, MAX_SAMPLE),
        ] {
            if v == 0 || v > max {
                return Err((field, format!("must be within 1..={max}")));
            }
        }
        let mut names = std::collections::HashSet::new();
        for (i, s) in self.sinks.iter().enumerate() {
            let name = s.display_name(i);
            s.validate()
                .map_err(|m| ("notify.sinks", format!("sink {i} (`{name}`): {m}")))?;
            if !names.insert(name.clone()) {
                return Err(("notify.sinks", format!("sink {i}: duplicate name `{name}`")));
            }
        }
        Ok(())
    }

    /// The notifier's configuration, with secrets resolved. Errors name the field.
    pub fn to_notifier(&self) -> Result<NotifierConfig, String> {
        let mut sinks = Vec::with_capacity(self.sinks.len());
        for (i, s) in self.sinks.iter().enumerate() {
            let kind = s
                .kind
                .map(KindName::kind)
                .ok_or_else(|| format!("notify.sinks[{i}].kind is required"))?;
            let mut c = SinkConfig::new(s.display_name(i), kind, s.url.clone());
            c.events = s
                .events
                .iter()
                .filter_map(|e| EventType::parse(e))
                .collect();
            c.queue_capacity = s.queue_capacity;
            c.max_attempts = s.max_attempts;
            c.timeout = Duration::from_millis(s.timeout_ms);
            c.retry_base = Duration::from_millis(s.retry_base_ms);
            c.retry_max = Duration::from_millis(s.retry_max_ms);
            c.batch_max = s.batch_max;
            c.secret = s.resolve_secret(i)?;
            c.headers = s
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            c.index = s.index.clone();
            c.sourcetype = s.sourcetype.clone();
            c.host = s.host.clone();
            c.service = s.service.clone();
            c.tags = s.tags.clone();
            c.hec_ack = s.ack;
            c.ack_poll = Duration::from_millis(s.ack_poll_ms);
            c.ack_timeout = Duration::from_millis(s.ack_timeout_ms);
            sinks.push(c);
        }
        let key = match self.coalesce.key {
            KeyName::Signature => CoalesceKey::Signature,
            KeyName::Source => CoalesceKey::Source,
            KeyName::SourceCategory => CoalesceKey::SourceCategory,
        };
        Ok(NotifierConfig {
            coalesce: CoalesceConfig {
                window_ms: self.coalesce.window_ms,
                key,
                max_keys: self.coalesce.max_keys,
                sample: self.coalesce.sample,
            },
            sinks,
            input_capacity: self.queue_capacity,
            poll_interval: Duration::from_millis(self.poll_interval_ms),
            shutdown_grace: Duration::from_millis(self.shutdown_grace_ms),
        })
    }
}

#[cfg(test)]
#[path = "notify_tests.rs"]
mod tests;
