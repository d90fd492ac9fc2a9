//! One client connection: read frames, answer each, in order. Requests are handled one
//! after the other, so replies leave in request order even when a client pipelines.
//!
//! A bad frame header (length 0 or over 256 KiB) closes this connection: the stream
//! cannot be resynchronised. A body that does not decode gets FAILURE and the connection
//! goes on, since the framing is intact.
//!
//! The read and write buffers live as long as the connection and are reused; bytes of
//! frames that carry secrets (keys, passphrases, PINs) are wiped as soon as the frame has
//! been handled.

use std::sync::Arc;

use std::os::fd::OwnedFd;

use secretivex_proto::{frame, msg};
use zeroize::Zeroize;

use crate::client_socket::ClientSocket;
use crate::handler::{self, ConnState, Reply};
use crate::peer::Peer;
use crate::Agent;

/// Free buffer space offered to each read. A sign request is a few hundred bytes, so one
/// read usually brings in a whole one; bigger frames grow the buffer by doubling. Kept
/// small because with a connection per request the allocation is paid per request
/// (an 8 KiB first buffer showed up in profiles as malloc bin handling).
const READ_CHUNK: usize = 1024;
/// A connection whose buffer grew past this for one big frame gives the memory back.
const KEEP_CAPACITY: usize = 64 * 1024;

/// Message types whose body holds secret material.
fn carries_secret(msg_type: Option<u8>) -> bool {
    matches!(
        msg_type,
        Some(
            msg::ADD_IDENTITY
                | msg::ADD_ID_CONSTRAINED
                | msg::ADD_SMARTCARD_KEY
                | msg::ADD_SMARTCARD_KEY_CONSTRAINED
                | msg::REMOVE_SMARTCARD_KEY
                | msg::LOCK
                | msg::UNLOCK
        )
    )
}

/// Serves the accepted, non-blocking socket `fd` until the client closes it, sends a bad
/// frame or stays idle too long.
pub(crate) async fn serve_connection(agent: Arc<Agent>, fd: OwnedFd, peer: Peer) {
    // Unconsumed input: at most one partial frame plus one read chunk.
    let mut input: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let stream = ClientSocket::new(fd);
    let secret_seen = serve_frames(&agent, stream, peer, &mut input).await;
    // Wiping costs a pass over the whole buffer, noticeable with a connection per
    // request: skip it when no secret-carrying frame was handled and nothing is left
    // unread (a partial frame might be the start of a secret one).
    if secret_seen || !input.is_empty() {
        wipe(&mut input);
    }
}

/// The read-answer loop. Returns whether a secret-carrying frame passed through `input`.
async fn serve_frames(
    agent: &Arc<Agent>,
    mut stream: ClientSocket,
    peer: Peer,
    input: &mut Vec<u8>,
) -> bool {
    let mut conn = ConnState::new(peer);
    let mut out: Vec<u8> = Vec::new();
    let mut secret_seen = false;
    let idle_timeout = agent.config.idle_timeout;
    loop {
        // Answer every complete frame already buffered.
        while let Some(header) = input.first_chunk::<4>().copied() {
            let len = match frame::body_len(header) {
                Ok(len) => len,
                Err(e) => {
                    tracing::warn!(uid = peer.uid, error = %e, "bad frame header; closing connection");
                    wipe(input);
                    return secret_seen;
                }
            };
            let Some(end) = len.checked_add(4).filter(|&end| end <= input.len()) else {
                break; // incomplete body: read more
            };
            let Some(body) = input.get(4..end) else {
                break;
            };
            let secret = carries_secret(body.first().copied());
            secret_seen |= secret;
            // Boxed: the handler's future is most of a connection task's size; boxed, both
            // allocations stay small enough for the allocator's per-thread cache (measured
            // with a connection per request, where the task is allocated per request).
            let reply = Box::pin(handler::handle(agent, &mut conn, body)).await;
            if let Some(consumed) = input.get_mut(..end) {
                if secret {
                    consumed.zeroize();
                }
            }
            let shifted = input.len() > end;
            input.drain(..end);
            if shifted {
                // `drain` moved the following bytes down and left stale copies of them
                // behind the new end; they may belong to a secret frame: wipe them.
                let spare = input.spare_capacity_mut();
                let stale = end.min(spare.len());
                if let Some(stale) = spare.get_mut(..stale) {
                    stale.zeroize();
                }
            }
            let written = match reply {
                Reply::Shared(frame) => stream.write_all(&frame).await,
                Reply::Response(response) => {
                    out.clear();
                    response.encode_frame(&mut out);
                    stream.write_all(&out).await
                }
            };
            if let Err(e) = written {
                tracing::debug!(error = %e, "write failed; closing connection");
                wipe(input);
                return secret_seen;
            }
        }
        if input.is_empty() && input.capacity() > KEEP_CAPACITY {
            wipe(input);
            *input = Vec::with_capacity(READ_CHUNK);
        }
        reserve_wiping(input, READ_CHUNK);
        let read = match idle_timeout {
            // Boxed: a timer is large and would otherwise sit in every connection's task.
            Some(limit) => {
                match Box::pin(tokio::time::timeout(limit, stream.read_buf(input))).await {
                    Ok(read) => read,
                    Err(_) => {
                        tracing::debug!(uid = peer.uid, "idle timeout; closing connection");
                        return secret_seen;
                    }
                }
            }
            None => stream.read_buf(input).await,
        };
        match read {
            Ok(0) => break, // closed by the client (possibly inside a frame)
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(error = %e, "read failed; closing connection");
                break;
            }
        }
    }
    secret_seen
}

/// Makes room for `more` bytes. Growing moves the buffer, so the old allocation (which
/// may hold part of a secret frame) is wiped instead of freed as is.
fn reserve_wiping(buf: &mut Vec<u8>, more: usize) {
    if buf.capacity() - buf.len() >= more {
        return;
    }
    let wanted = buf
        .len()
        .saturating_add(more)
        .max(buf.capacity().saturating_mul(2));
    let mut bigger = Vec::with_capacity(wanted);
    bigger.extend_from_slice(buf);
    wipe(buf);
    *buf = bigger;
}

/// Zeroes the whole allocation, including bytes left in spare capacity by `drain`.
fn wipe(buf: &mut Vec<u8>) {
    buf.zeroize();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;
    use secretivex_proto::{Response, MAX_FRAME_LEN};
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
    use tokio::net::UnixStream;

    fn start() -> (UnixStream, tokio::task::JoinHandle<()>) {
        let agent = Agent::try_new(Config {
            signer_threads: 1,
            ..Config::default()
        })
        .unwrap();
        let (client, server) = UnixStream::pair().unwrap();
        // `into_std` leaves the socket non-blocking, as `accept` hands it over.
        let server = OwnedFd::from(server.into_std().unwrap());
        let peer = Peer {
            uid: 0,
            gid: 0,
            pid: None,
        };
        (client, tokio::spawn(serve_connection(agent, server, peer)))
    }

    async fn read_reply(stream: &mut (impl AsyncRead + Unpin)) -> Option<Response> {
        let mut header = [0u8; 4];
        stream.read_exact(&mut header).await.ok()?;
        let len = u32::from_be_bytes(header) as usize;
        let mut body = vec![0u8; len];
        stream.read_exact(&mut body).await.ok()?;
        Some(Response::decode(&body).unwrap())
    }

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut f = (body.len() as u32).to_be_bytes().to_vec();
        f.extend_from_slice(body);
        f
    }

    #[tokio::test]
    async fn pipelined_requests_are_answered_in_order_despite_bad_bodies() {
        let (mut client, task) = start();
        let mut batch = Vec::new();
        batch.extend(frame(&[200])); // unknown type
        batch.extend(frame(&[msg::REQUEST_IDENTITIES]));
        batch.extend(frame(&[msg::SIGN_REQUEST, 0, 0, 0, 50])); // truncated body
        batch.extend(frame(&[msg::REQUEST_IDENTITIES, 1, 2, 3])); // trailing bytes
        let mut query = Vec::new();
        secretivex_proto::Request::Extension(secretivex_proto::ExtensionRequest::Query)
            .encode_frame(&mut query);
        batch.extend(query);
        client.write_all(&batch).await.unwrap();
        assert_eq!(read_reply(&mut client).await, Some(Response::Failure));
        assert_eq!(
            read_reply(&mut client).await,
            Some(Response::Identities(vec![]))
        );
        assert_eq!(read_reply(&mut client).await, Some(Response::Failure));
        assert_eq!(read_reply(&mut client).await, Some(Response::Failure));
        assert!(matches!(
            read_reply(&mut client).await,
            Some(Response::ExtensionResponse { .. })
        ));
        drop(client);
        task.await.unwrap();
    }

    #[tokio::test]
    async fn oversized_frame_closes_only_that_connection() {
        let (mut client, task) = start();
        let too_long = (MAX_FRAME_LEN as u32 + 1).to_be_bytes();
        client.write_all(&too_long).await.unwrap();
        task.await.unwrap();
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty(), "no reply to an oversized frame");

        // A fresh connection is served normally.
        let (mut other, task) = start();
        other
            .write_all(&frame(&[msg::REQUEST_IDENTITIES]))
            .await
            .unwrap();
        assert_eq!(
            read_reply(&mut other).await,
            Some(Response::Identities(vec![]))
        );
        drop(other);
        task.await.unwrap();
    }

    #[tokio::test]
    async fn zero_length_frame_closes_the_connection() {
        let (mut client, task) = start();
        client.write_all(&[0, 0, 0, 0]).await.unwrap();
        task.await.unwrap();
        assert_eq!(read_reply(&mut client).await, None);
    }

    #[tokio::test]
    async fn frame_cut_short_ends_the_connection() {
        let (mut client, task) = start();
        client
            .write_all(&[0, 0, 0, 10, msg::SIGN_REQUEST])
            .await
            .unwrap();
        client.shutdown().await.unwrap();
        task.await.unwrap();
        assert_eq!(read_reply(&mut client).await, None);
    }

    #[tokio::test]
    async fn frame_split_across_writes_is_reassembled() {
        let (mut client, task) = start();
        let f = frame(&[msg::REQUEST_IDENTITIES]);
        for byte in &f {
            client.write_all(&[*byte]).await.unwrap();
            tokio::task::yield_now().await;
        }
        assert_eq!(
            read_reply(&mut client).await,
            Some(Response::Identities(vec![]))
        );
        drop(client);
        task.await.unwrap();
    }

    #[test]
    fn secret_carrying_types() {
        assert!(carries_secret(Some(msg::ADD_IDENTITY)));
        assert!(carries_secret(Some(msg::UNLOCK)));
        assert!(!carries_secret(Some(msg::SIGN_REQUEST)));
        assert!(!carries_secret(None));
    }

    #[tokio::test]
    async fn largest_allowed_frame_is_read_and_answered() {
        let (mut client, task) = start();
        let mut body = vec![0u8; MAX_FRAME_LEN];
        body[0] = 250; // private-use type: FAILURE, connection goes on
        client.write_all(&frame(&body)).await.unwrap();
        assert_eq!(read_reply(&mut client).await, Some(Response::Failure));
        client
            .write_all(&frame(&[msg::REQUEST_IDENTITIES]))
            .await
            .unwrap();
        assert_eq!(
            read_reply(&mut client).await,
            Some(Response::Identities(vec![]))
        );
        drop(client);
        task.await.unwrap();
    }
}
