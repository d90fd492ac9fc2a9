//! When the notifier tells the emitter to shed a type at the source.
//!
//! Shedding is only right when the notifier would have dropped the event anyway. A type
//! that is not coalesced goes from the coalescer straight to the sinks, so once every
//! sink that wants it is full it can be refused at once. A coalesced event of a new key
//! opens a window instead, and its record meets the sinks only when the window closes,
//! `window_ms` later, when a slow sink may have room again: refusing it at the first full
//! queue would lose that key's notification outright. So a coalesced type is refused
//! only once every sink for it has stayed full for a whole window (a record opened now
//! would close into the same full queues), or at once while the coalescer is out of
//! keys (new keys pass through uncoalesced, straight into the full queues). What is lost
//! then is a merge into a window already open: that record's `count` misses the event,
//! which `shed` counts instead.

use tracehound_core::notify::EventType;

use crate::coalesce::coalescable;

/// For each event type, since when every sink that wants it has been full.
#[derive(Debug, Default)]
pub(crate) struct Saturation {
    since: [Option<u64>; EventType::ALL.len()],
}

/// What the coalescer would do with new events now.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Coalescing {
    /// The window; 0 = off.
    pub(crate) window_ms: u64,
    /// Every key slot is taken: new keys pass through.
    pub(crate) out_of_keys: bool,
}

impl Saturation {
    /// Records the sinks' state at `now_ms` — `all_full(t)` is `None` when no sink wants
    /// `t`, else whether every sink that wants it is full — and returns the types to
    /// refuse.
    pub(crate) fn update(
        &mut self,
        now_ms: u64,
        coalescing: Coalescing,
        all_full: impl Fn(EventType) -> Option<bool>,
    ) -> Vec<EventType> {
        let mut refused = Vec::new();
        for (t, since) in EventType::ALL.into_iter().zip(self.since.iter_mut()) {
            if all_full(t) != Some(true) {
                *since = None;
                continue;
            }
            let since = *since.get_or_insert(now_ms);
            let held_in_windows =
                coalescing.window_ms > 0 && coalescable(t) && !coalescing.out_of_keys;
            let hold = if held_in_windows {
                coalescing.window_ms
            } else {
                0
            };
            if now_ms.saturating_sub(since) >= hold {
                refused.push(t);
            }
        }
        refused
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Coalescing = Coalescing {
        window_ms: 10_000,
        out_of_keys: false,
    };

    fn full_for(types: &'static [EventType]) -> impl Fn(EventType) -> Option<bool> {
        move |t| Some(types.contains(&t))
    }

    #[test]
    fn an_uncoalesced_type_is_refused_at_the_first_full_step() {
        let mut s = Saturation::default();
        let full = full_for(&[EventType::SystemPanic]);
        assert_eq!(s.update(5, WINDOW, &full), vec![EventType::SystemPanic]);
        let off = Coalescing {
            window_ms: 0,
            out_of_keys: false,
        };
        let mut s = Saturation::default();
        let threats = full_for(&[EventType::ThreatDetected]);
        assert_eq!(s.update(5, off, threats), vec![EventType::ThreatDetected]);
    }

    #[test]
    fn a_coalesced_type_is_refused_only_after_a_whole_window_full() {
        let mut s = Saturation::default();
        let full = full_for(&[EventType::ThreatDetected]);
        assert!(s.update(1_000, WINDOW, &full).is_empty());
        assert!(s.update(10_999, WINDOW, &full).is_empty());
        assert_eq!(
            s.update(11_000, WINDOW, &full),
            vec![EventType::ThreatDetected]
        );
        // Room again resets the clock.
        assert!(s.update(11_020, WINDOW, |_| Some(false)).is_empty());
        assert!(s.update(11_040, WINDOW, &full).is_empty());
        assert!(s.update(21_039, WINDOW, &full).is_empty());
        assert_eq!(
            s.update(21_040, WINDOW, &full),
            vec![EventType::ThreatDetected]
        );
    }

    #[test]
    fn out_of_keys_refuses_a_coalesced_type_at_once() {
        let mut s = Saturation::default();
        let full = full_for(&[EventType::EvidenceEvicted]);
        let out = Coalescing {
            out_of_keys: true,
            ..WINDOW
        };
        assert_eq!(s.update(7, out, &full), vec![EventType::EvidenceEvicted]);
    }

    #[test]
    fn a_type_no_sink_wants_is_never_refused() {
        let mut s = Saturation::default();
        assert!(s.update(0, WINDOW, |_| None).is_empty());
        assert!(s.update(100_000, WINDOW, |_| None).is_empty());
    }
}
