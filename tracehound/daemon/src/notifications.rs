//! The notification pipeline of the daemon (`[notify]`): the core's emitter wired into
//! the agent's hooks, and a `tracehound-notify` [`Notifier`] subscribed to it that
//! coalesces and delivers to the configured sinks on a thread of its own.

use std::sync::Arc;

use tracehound_core::notify::{NotificationEmitter, NotifyConfig};
use tracehound_notify::Notifier;
use tracehound_rpc::pb;

use crate::config::NotifySection;
use crate::erasure::ErasureParticipant;

/// The emitter (set as `RuntimeHooks.notifications`) and the notifier draining it.
pub struct Notifications {
    emitter: Arc<NotificationEmitter>,
    notifier: Arc<Notifier>,
    section: NotifySection,
    /// The coalescing key's name.
    key: &'static str,
}

impl Notifications {
    /// Starts the pipeline for `section`; `None` when no sink is configured (then the
    /// agent emits nothing at all).
    pub fn start(section: &NotifySection) -> Result<Option<Notifications>, String> {
        if section.sinks.is_empty() {
            return Ok(None);
        }
        let config = section.to_notifier()?;
        let key = config.coalesce.key.as_str();
        let emitter = Arc::new(NotificationEmitter::new(NotifyConfig {
            subscriber_capacity: section.queue_capacity,
            ..NotifyConfig::default()
        }));
        let notifier =
            Notifier::start(config, Some(&emitter)).map_err(|e| format!("notify: {e}"))?;
        Ok(Some(Notifications {
            emitter,
            notifier: Arc::new(notifier),
            section: section.clone(),
            key,
        }))
    }

    /// The emitter the agent's hooks feed.
    pub fn emitter(&self) -> &Arc<NotificationEmitter> {
        &self.emitter
    }

    /// The running notifier (`purge_matching`, `stats`).
    pub fn notifier(&self) -> &Arc<Notifier> {
        &self.notifier
    }

    /// An erasure participant purging the notifier's pending records.
    pub fn participant(&self) -> Arc<dyn ErasureParticipant> {
        Arc::new(Participant(Arc::clone(&self.notifier)))
    }

    /// Stops the notifier, letting it deliver what is queued for the grace period
    /// (blocking: call from a blocking context).
    pub fn shutdown(&self) {
        self.notifier.shutdown();
    }

    /// Events lost before coalescing (the emitter queue was full, or every sink that
    /// wanted them was, so the emitter shed them).
    pub fn dropped(&self) -> u64 {
        self.notifier.stats().input_dropped
    }

    /// Sink and coalescing counters for `Stats`.
    pub fn stats(&self) -> (Vec<pb::NotifySinkStats>, pb::NotifyCoalesceStats) {
        let s = self.notifier.stats();
        let sinks = s
            .sinks
            .into_iter()
            .map(|k| pb::NotifySinkStats {
                name: k.name,
                kind: k.kind.as_str().to_owned(),
                queued: k.queued,
                inflight: k.inflight,
                sent: k.sent,
                retried: k.retried,
                dropped: k.dropped,
                failed: k.failed,
                acked: k.acked,
                purged: k.purged,
            })
            .collect();
        let c = s.coalesce;
        let coalesce = pb::NotifyCoalesceStats {
            window_ms: self.section.coalesce.window_ms,
            key: self.key.to_owned(),
            events_in: c.events_in,
            records_out: c.records_out,
            merged: c.merged,
            overflow: c.overflow,
            open: c.open,
            input_dropped: s.input_dropped,
            shed: s.shed,
        };
        (sinks, coalesce)
    }
}

struct Participant(Arc<Notifier>);

impl ErasureParticipant for Participant {
    fn name(&self) -> &str {
        "notification sinks"
    }

    fn purge_matching(&self, signature: Option<&str>, source: Option<&str>) -> usize {
        self.0.purge_matching(signature, source)
    }

    fn purge_scents(&self, scent_ids: &[String]) -> usize {
        self.0.purge_scent_ids(scent_ids)
    }
}
