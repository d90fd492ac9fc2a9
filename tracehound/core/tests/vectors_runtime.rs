//! v1 vectors for the lane queue and the fail-safe (`../shared/vectors/tracehound-v1.json`,
//! keys `lane_queue`, `fail_safe`).

mod vectors_support;

use std::sync::{Arc, Mutex};

use serde_json::Value;
use tracehound_core::fail_safe::{FailSafe, FailSafeConfig, FailSafeEvent, PanicLevel};
use tracehound_core::lane_queue::{LaneConfig, LaneCounts, LaneQueue, OverflowPolicy};
use tracehound_core::types::Severity;

fn section(name: &str) -> Value {
    vectors_support::serde_section(name)
}

fn severity(s: &str) -> Severity {
    match s {
        "critical" => Severity::Critical,
        "high" => Severity::High,
        "medium" => Severity::Medium,
        "low" => Severity::Low,
        other => panic!("unknown severity {other}"),
    }
}

fn counts(v: &Value) -> LaneCounts {
    let n = |k: &str| v[k].as_u64().unwrap() as usize;
    LaneCounts {
        critical: n("critical"),
        high: n("high"),
        medium: n("medium"),
        low: n("low"),
    }
}

fn exceeds(c: &LaneCounts, cfg: &LaneConfig) -> bool {
    c.critical > cfg.critical || c.high > cfg.high || c.medium > cfg.medium || c.low > cfg.low
}

/// The vector records v1's `drop_lowest`, which overfills (the high lane reaches 3 with
/// maxSize 1). Issue 3 asks for that fixed, so this test runs the same script and checks:
/// - every step is accepted, as in v1, and no lane ever exceeds its bound;
/// - steps before v1's first overfill match v1 exactly;
/// - at an overflow, the victim is the full lane's oldest entry (v1 took it from the
///   lowest non-empty lane instead: `l1` at `h2`, `m1` at `h3`), so `l1` and `m1`
///   survive and `h1`, `h2` are the dropped ones;
/// - final `dropped` and `processed` equal v1's (2 and 4 drops/dequeues either way).
#[test]
fn lane_queue_vector_with_drop_lowest_overfill_fixed() {
    let v = section("lane_queue");
    assert_eq!(v["overflow"], "drop_lowest");
    let lanes = &v["lanes"];
    let n = |k: &str| lanes[k].as_u64().unwrap() as usize;
    let cfg = LaneConfig {
        critical: n("critical"),
        high: n("high"),
        medium: n("medium"),
        low: n("low"),
        overflow: OverflowPolicy::DropLowest,
    };
    let q: LaneQueue<String> = LaneQueue::new(cfg);
    // Fixed behaviour per step (critical, high, medium, low); see the doc comment.
    let fixed = [
        (0, 0, 0, 1),
        (0, 1, 0, 1),
        (0, 1, 0, 1),
        (1, 1, 0, 1),
        (1, 1, 1, 1),
        (1, 1, 1, 1),
    ];
    let steps = v["enqueue"].as_array().unwrap();
    assert_eq!(steps.len(), fixed.len());
    let mut v1_overfilled = false;
    for (step, want) in steps.iter().zip(fixed) {
        let id = step["id"].as_str().unwrap().to_string();
        let accepted = q.enqueue(severity(step["severity"].as_str().unwrap()), id.clone());
        assert_eq!(accepted, step["enqueued"].as_bool().unwrap(), "{id}");
        let got = q.stats().counts;
        assert!(!exceeds(&got, &cfg), "{id}: {got:?} exceeds {cfg:?}");
        let v1 = counts(&step["counts"]);
        v1_overfilled |= exceeds(&v1, &cfg);
        if !v1_overfilled {
            assert_eq!(got, v1, "{id}: before v1's overflow the behaviour is v1's");
        }
        let (critical, high, medium, low) = want;
        assert_eq!(
            got,
            LaneCounts {
                critical,
                high,
                medium,
                low
            },
            "{id}"
        );
    }
    assert!(v1_overfilled, "the vector documents v1's overfill");

    let mut order = Vec::new();
    while let Some((_, id)) = q.dequeue() {
        order.push(id);
    }
    let v1_order: Vec<&str> = v["dequeue_order"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    assert_eq!(v1_order, ["c1", "h1", "h2", "h3"]);
    // Priority order, FIFO within a lane; h1 and h2 were the overflow victims.
    assert_eq!(order, ["c1", "h3", "m1", "l1"]);
    let stats = q.stats();
    assert_eq!(stats.counts, counts(&v["stats"]["counts"]));
    assert_eq!(stats.dropped, v["stats"]["dropped"].as_u64().unwrap());
    assert_eq!(stats.processed, v["stats"]["processed"].as_u64().unwrap());
}

fn thresholds_match(v: &Value, t: &tracehound_core::fail_safe::Thresholds) {
    assert_eq!(v["warning"].as_f64().unwrap(), t.warning);
    assert_eq!(v["critical"].as_f64().unwrap(), t.critical);
    assert_eq!(v["emergency"].as_f64().unwrap(), t.emergency);
}

fn args(call: &str) -> Vec<&str> {
    let inner = call.split_once('(').unwrap().1.strip_suffix(')').unwrap();
    inner
        .split(',')
        .map(|a| a.trim().trim_matches('\''))
        .collect()
}

#[test]
fn fail_safe_vector() {
    let v = section("fail_safe");
    let cfg = FailSafeConfig::default();
    thresholds_match(&v["defaults"]["memory"], &cfg.memory);
    thresholds_match(&v["defaults"]["quarantine"], &cfg.quarantine);
    thresholds_match(&v["defaults"]["errorRate"], &cfg.error_rate);

    let now = v["events"][0]["timestamp"].as_u64().unwrap();
    let fs = FailSafe::new(cfg);
    let seen: Arc<Mutex<Vec<FailSafeEvent>>> = Arc::default();
    let sink = Arc::clone(&seen);
    fs.on_any(move |e| sink.lock().unwrap().push(e.clone()));
    let critical_only = Arc::new(Mutex::new(0));
    let c = Arc::clone(&critical_only);
    fs.on(PanicLevel::Critical, move |_| *c.lock().unwrap() += 1);

    for call in v["calls"].as_array().unwrap() {
        let call = call.as_str().unwrap();
        let a = args(call);
        let num = |i: usize| a[i].parse::<f64>().unwrap();
        match call.split_once('(').unwrap().0 {
            "checkQuarantine" => drop(fs.check_quarantine(num(0), num(1), now)),
            "checkMemory" => drop(fs.check_memory(num(0), num(1), now)),
            "checkErrorRate" => drop(fs.check_error_rate(num(0), now)),
            "panic" => {
                let level = match a[0] {
                    "warning" => PanicLevel::Warning,
                    "critical" => PanicLevel::Critical,
                    "emergency" => PanicLevel::Emergency,
                    l => panic!("unknown level {l}"),
                };
                drop(fs.panic(level, a.get(1).copied(), now));
            }
            other => panic!("unknown call {other}"),
        }
    }

    let want = v["events"].as_array().unwrap();
    let got = seen.lock().unwrap().clone();
    assert_eq!(
        got.len(),
        want.len(),
        "calls below every threshold produce no event"
    );
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g.level.as_str(), w["level"].as_str().unwrap());
        assert_eq!(g.reason.as_str(), w["reason"].as_str().unwrap());
        assert_eq!(g.timestamp, w["timestamp"].as_u64().unwrap());
        let ctx = &w["context"];
        assert_eq!(
            g.context.current,
            ctx.get("current").and_then(Value::as_f64),
            "{w}"
        );
        assert_eq!(
            g.context.threshold,
            ctx.get("threshold").and_then(Value::as_f64),
            "{w}"
        );
        assert_eq!(
            g.context.details.as_deref(),
            ctx.get("details").and_then(Value::as_str),
            "{w}"
        );
    }
    let criticals = want.iter().filter(|w| w["level"] == "critical").count();
    assert_eq!(
        *critical_only.lock().unwrap(),
        criticals,
        "level callbacks see only their level"
    );
    assert_eq!(fs.history().len(), want.len());
    assert_eq!(fs.last_panic().map(|e| e.reason.as_str()), Some("manual"));
}
