//! The client loop: one tokio task per simulated client, issuing requests until the run
//! stops, timing each from before its connect (if any) to the last byte of the reply.

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use secretivex_proto::{Request, Response, SignRequest};
use tokio::time::{Instant, Sleep};

use crate::args::{ConnectMode, Mode};
use crate::conn::{self, Conn, OpError};
use crate::stats::{Counters, Latencies};

/// How many distinct error messages a run keeps for its report.
const MAX_ERROR_SAMPLES: usize = 8;

/// The key requests sign with, as the agent listed it.
#[derive(Debug, Clone)]
pub struct TargetKey {
    /// Public key (or certificate) blob, sent in sign requests and used to verify.
    pub blob: Vec<u8>,
    /// Sign flags (RSA hash selection; 0 otherwise).
    pub flags: u32,
}

/// When the run ends.
#[derive(Debug)]
pub enum Stop {
    /// No request starts at or after this instant.
    Deadline(Instant),
    /// This many requests remain, shared by all clients.
    Budget(AtomicU64),
}

impl Stop {
    /// Claims the right to start one more request; false once the run is over.
    fn take(&self) -> bool {
        match self {
            Stop::Deadline(at) => Instant::now() < *at,
            Stop::Budget(left) => left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok(),
        }
    }
}

/// Everything the clients share: parameters, the stop rule and the result sinks.
#[derive(Debug)]
pub struct Plan {
    /// Agent socket.
    pub socket: PathBuf,
    /// Request type.
    pub mode: Mode,
    /// Connection use.
    pub connect: ConnectMode,
    /// Bound on one connect, back-off included.
    pub connect_timeout: Duration,
    /// Bound on one request/reply exchange.
    pub request_timeout: Duration,
    /// Key for sign requests (and for checking list answers); `None` only in list mode
    /// against an agent without keys.
    pub key: Option<TargetKey>,
    /// Size of the data to sign.
    pub payload_bytes: usize,
    /// Check sampled replies.
    pub verify: bool,
    /// Check a client's first reply of each kind, then every Nth.
    pub verify_every: u64,
    /// When to stop.
    pub stop: Stop,
    /// Latency of every successful request.
    pub latencies: Latencies,
    /// First distinct error messages, for the report.
    pub errors: Mutex<Vec<String>>,
}

impl Plan {
    fn note_error(&self, err: &OpError) {
        let mut errors = self.errors.lock();
        if errors.len() < MAX_ERROR_SAMPLES {
            let text = err.to_string();
            if !errors.contains(&text) {
                errors.push(text);
            }
        }
    }
}

/// A sign-request frame built once per client; only a per-request tag inside the data
/// changes, so requests are distinct without re-encoding or allocating.
struct SignFrame {
    frame: Vec<u8>,
    data_at: usize,
    data_len: usize,
}

impl SignFrame {
    fn new(key: &TargetKey, payload_bytes: usize, client: usize) -> SignFrame {
        let data: Vec<u8> = (0..payload_bytes)
            .map(|i| b'a'.wrapping_add(u8::try_from((i + client) % 26).unwrap_or(0)))
            .collect();
        let mut frame = Vec::new();
        Request::Sign(SignRequest {
            key_blob: key.blob.clone(),
            data,
            flags: key.flags,
        })
        .encode_frame(&mut frame);
        // The frame ends with `string data ‖ uint32 flags`.
        let data_at = frame.len().saturating_sub(4 + payload_bytes);
        SignFrame {
            frame,
            data_at,
            data_len: payload_bytes,
        }
    }

    /// Writes a tag unique to (client, seq) over the first 8 bytes of the data.
    fn set_tag(&mut self, client: usize, seq: u64) {
        let tag = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (client as u64).rotate_left(32);
        if let Some(dst) = self.frame.get_mut(self.data_at..self.data_at + 8) {
            dst.copy_from_slice(&tag.to_be_bytes());
        }
    }

    fn data(&self) -> &[u8] {
        self.frame
            .get(self.data_at..self.data_at + self.data_len)
            .unwrap_or_default()
    }
}

/// What a reply must be for the request to count as a success.
enum Expect<'a> {
    /// An identities answer; with `Some(blob)`, one that lists it.
    List(Option<&'a [u8]>),
    /// A signature; with `Some((blob, data))`, one that verifies.
    Sign(Option<(&'a [u8], &'a [u8])>),
}

/// Runs one client until the plan stops it, and returns its counters.
pub async fn run_client(id: usize, start_at: Instant, plan: &Plan) -> Counters {
    tokio::time::sleep_until(start_at).await;
    let mut counts = Counters::default();
    let mut conn: Option<Conn> = None;
    let mut sign = plan
        .key
        .as_ref()
        .map(|k| SignFrame::new(k, plan.payload_bytes, id));
    let mut list_frame = Vec::new();
    Request::RequestIdentities.encode_frame(&mut list_frame);
    // Reply buffer, reused across requests and connections.
    let mut rbuf = Vec::with_capacity(1024);
    let (mut signs, mut lists, mut seq) = (0u64, 0u64, 0u64);
    // One request timer per client, pushed forward before each request: moving a
    // registered timer's deadline later is an atomic update, where a fresh timeout per
    // request would be inserted into and removed from the timer wheel every time.
    let timer = tokio::time::sleep(plan.request_timeout);
    tokio::pin!(timer);

    while plan.stop.take() {
        let want_sign = match plan.mode {
            Mode::Sign => true,
            Mode::List => false,
            Mode::Mixed => seq % 2 == 1,
        };
        seq += 1;
        let nth = if want_sign { &mut signs } else { &mut lists };
        let check = plan.verify && *nth % plan.verify_every == 0;
        *nth += 1;
        let key_blob = plan.key.as_ref().map(|k| k.blob.as_slice());

        let started = Instant::now();
        let result = match (want_sign, sign.as_mut()) {
            (true, Some(sf)) => {
                sf.set_tag(id, seq);
                let expect = Expect::Sign(key_blob.filter(|_| check).map(|b| (b, sf.data())));
                let req = Exchange {
                    request: &sf.frame,
                    rbuf: &mut rbuf,
                    timer: timer.as_mut(),
                };
                one_request(plan, &mut conn, &mut counts, req, expect).await
            }
            // Sign mode always has a key (checked before the run); list otherwise.
            _ => {
                let expect = Expect::List(key_blob.filter(|_| check));
                let req = Exchange {
                    request: &list_frame,
                    rbuf: &mut rbuf,
                    timer: timer.as_mut(),
                };
                one_request(plan, &mut conn, &mut counts, req, expect).await
            }
        };
        match result {
            Ok(verified) => {
                let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                plan.latencies.record(id, micros);
                counts.ops += 1;
                if want_sign {
                    counts.sign_ops += 1;
                } else {
                    counts.list_ops += 1;
                }
                if verified {
                    counts.verified += 1;
                }
            }
            Err(err) => {
                counts.count_failure(&err);
                plan.note_error(&err);
                // After a timeout or a broken frame the stream may be out of step.
                if matches!(
                    err,
                    OpError::RequestTimeout | OpError::Io(_) | OpError::Protocol(_)
                ) {
                    conn = None;
                }
            }
        }
        if plan.connect == ConnectMode::PerRequest {
            conn = None;
        }
    }
    counts
}

/// One request's frame, the client's reply buffer and its request timer.
struct Exchange<'a> {
    request: &'a [u8],
    rbuf: &'a mut Vec<u8>,
    timer: Pin<&'a mut Sleep>,
}

/// Connects if needed, sends the request and checks the reply. Returns whether the reply
/// was verified (as opposed to accepted unchecked).
async fn one_request(
    plan: &Plan,
    conn: &mut Option<Conn>,
    counts: &mut Counters,
    exchange: Exchange<'_>,
    expect: Expect<'_>,
) -> Result<bool, OpError> {
    let Exchange {
        request,
        rbuf,
        mut timer,
    } = exchange;
    let c = match conn {
        Some(c) => c,
        None => {
            let fresh = conn::connect(
                &plan.socket,
                plan.connect_timeout,
                &mut counts.connect_retries,
            )
            .await?;
            counts.connects += 1;
            conn.insert(fresh)
        }
    };
    timer.as_mut().reset(Instant::now() + plan.request_timeout);
    let body = tokio::select! {
        biased;
        reply = c.roundtrip(request, rbuf) => reply?,
        () = &mut timer => return Err(OpError::RequestTimeout),
    };
    check_reply(body, expect)
}

/// Decodes a reply body and checks it against what the request expects.
fn check_reply(body: &[u8], expect: Expect<'_>) -> Result<bool, OpError> {
    let reply = Response::decode(body).map_err(|e| OpError::Protocol(e.to_string()))?;
    match (reply, expect) {
        (Response::Failure, _) => Err(OpError::AgentFailure),
        (Response::SignResponse(_), Expect::Sign(None)) => Ok(false),
        (Response::SignResponse(sig), Expect::Sign(Some((blob, data)))) => {
            secretivex_keys::verify_signature(blob, data, &sig)
                .map(|()| true)
                .map_err(|e| OpError::Verify(e.to_string()))
        }
        (Response::Identities(_), Expect::List(None)) => Ok(false),
        (Response::Identities(ids), Expect::List(Some(blob))) => {
            if ids.iter().any(|i| i.key_blob == blob) {
                Ok(true)
            } else {
                Err(OpError::Verify("key missing from identities answer".into()))
            }
        }
        (other, _) => Err(OpError::Protocol(format!(
            "unexpected reply type {}",
            other.msg_type()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> TargetKey {
        TargetKey {
            blob: b"\0\0\0\x0bssh-ed25519\0\0\0\x20aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_vec(),
            flags: 0,
        }
    }

    #[test]
    fn sign_frame_tags_change_only_the_data() {
        let k = key();
        let mut sf = SignFrame::new(&k, 32, 7);
        let decoded = |f: &[u8]| match Request::decode(f.get(4..).unwrap()).unwrap() {
            Request::Sign(s) => s,
            other => panic!("{other:?}"),
        };
        sf.set_tag(7, 1);
        let a = decoded(&sf.frame);
        assert_eq!(a.data, sf.data());
        sf.set_tag(7, 2);
        let b = decoded(&sf.frame);
        assert_eq!(a.key_blob, k.blob);
        assert_eq!(b.key_blob, k.blob);
        assert_eq!(a.data.len(), 32);
        assert_ne!(a.data, b.data);
        assert_eq!(a.data[8..], b.data[8..]);
    }

    #[test]
    fn replies_are_classified() {
        let mut body = Vec::new();
        Response::Failure.encode_body(&mut body);
        assert!(matches!(
            check_reply(&body, Expect::Sign(None)),
            Err(OpError::AgentFailure)
        ));
        body.clear();
        Response::Identities(vec![]).encode_body(&mut body);
        assert!(matches!(check_reply(&body, Expect::List(None)), Ok(false)));
        assert!(matches!(
            check_reply(&body, Expect::List(Some(b"k"))),
            Err(OpError::Verify(_))
        ));
        assert!(matches!(
            check_reply(&body, Expect::Sign(None)),
            Err(OpError::Protocol(_))
        ));
        body.clear();
        Response::SignResponse(b"garbage".to_vec()).encode_body(&mut body);
        assert!(matches!(check_reply(&body, Expect::Sign(None)), Ok(false)));
        let k = key();
        assert!(matches!(
            check_reply(&body, Expect::Sign(Some((&k.blob, b"data")))),
            Err(OpError::Verify(_))
        ));
        assert!(matches!(
            check_reply(&[99], Expect::Sign(None)),
            Err(OpError::Protocol(_))
        ));
    }

    #[test]
    fn budget_stops_after_n_takes() {
        let stop = Stop::Budget(AtomicU64::new(3));
        assert_eq!((0..10).filter(|_| stop.take()).count(), 3);
    }
}
