//! The helper's serve loop: frames from stdin, replies to stdout.
//!
//! The reading thread decodes requests and hands them on: `SIGN` to a fixed pool of worker
//! threads (each owns its token sessions, so the pool size bounds the sessions per token),
//! `LOGIN` and `LIST` to a thread of their own so a slow token scan never holds up signing.
//! Replies are written whole under one lock, each tagged with its request's id, in
//! completion order. End of input (the agent closed the pipe or died) ends the process.

use std::io::{Read, Write};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use crate::module::{Module, ModuleError, WorkerSessions};
use crate::wire::{body_len, ErrorCode, HelperReply, HelperRequest};

/// Writes reply frames; shared by every thread.
struct Out<W: Write> {
    w: Mutex<W>,
}

impl<W: Write> Out<W> {
    fn send(&self, id: u32, reply: &HelperReply) {
        let mut buf = Vec::new();
        reply.encode(id, &mut buf);
        let mut w = self.w.lock().unwrap_or_else(|p| p.into_inner());
        // A failed write means the agent is gone; the reader sees EOF and we exit.
        let _ = w.write_all(&buf).and_then(|()| w.flush());
    }
}

fn error_reply(e: ModuleError) -> HelperReply {
    HelperReply::Error {
        code: e.code,
        message: e.message,
    }
}

type SignJob = (u32, Vec<u8>, Vec<u8>, u32);

/// Serves requests from `input` until it ends, with `workers` signing threads.
pub fn serve<R, W>(module: Module, workers: usize, mut input: R, output: W) -> std::io::Result<()>
where
    R: Read,
    W: Write + Send + 'static,
{
    let module = Arc::new(module);
    let out = Arc::new(Out {
        w: Mutex::new(output),
    });
    let (tx, rx) = mpsc::channel::<SignJob>();
    let rx = Arc::new(Mutex::new(rx));
    for i in 0..workers.max(1) {
        let (module, out, rx) = (module.clone(), out.clone(), rx.clone());
        std::thread::Builder::new()
            .name(format!("pkcs11-worker-{i}"))
            .spawn(move || {
                let mut sessions = WorkerSessions::default();
                loop {
                    let job = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                    let Ok((id, blob, data, flags)) = job else {
                        return;
                    };
                    let reply = match module.sign(&mut sessions, &blob, &data, flags) {
                        Ok(sig) => HelperReply::Signature(sig),
                        Err(e) => error_reply(e),
                    };
                    out.send(id, &reply);
                }
            })?;
    }
    loop {
        let mut header = [0u8; 4];
        match input.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let len = body_len(header).map_err(std::io::Error::other)?;
        let mut body = zeroize::Zeroizing::new(vec![0u8; len]);
        input.read_exact(&mut body)?;
        let (id, request) = match HelperRequest::decode(&body) {
            Ok(r) => r,
            Err(e) => {
                // The id is the first field; answer it when it is there at all.
                let id = body
                    .get(..4)
                    .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                out.send(
                    id,
                    &HelperReply::Error {
                        code: ErrorCode::BadRequest,
                        message: e.to_string(),
                    },
                );
                continue;
            }
        };
        match request {
            HelperRequest::Sign {
                key_blob,
                data,
                flags,
            } => {
                if tx.send((id, key_blob, data, flags)).is_err() {
                    return Ok(());
                }
            }
            control => {
                let (module, out) = (module.clone(), out.clone());
                std::thread::spawn(move || {
                    let result = match &control {
                        HelperRequest::Login { pin, tokens } => module.login(pin, tokens),
                        _ => module.list(),
                    };
                    let reply = match result {
                        Ok(keys) => HelperReply::Keys(keys),
                        Err(e) => error_reply(e),
                    };
                    out.send(id, &reply);
                });
            }
        }
    }
}
