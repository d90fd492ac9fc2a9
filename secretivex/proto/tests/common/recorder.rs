//! A Unix-socket agent stand-in that records request bodies and answers each
//! with a caller-chosen reply, so real OpenSSH clients run to completion.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use secretivex_proto::{frame, msg, Request};

/// Chooses the reply body (type byte and contents) for a request body.
pub type ReplyFn = Arc<dyn Fn(&[u8]) -> Vec<u8> + Send + Sync>;

/// Answers as an agent without keys would: an empty list, FAILURE for signing,
/// extensions and unknown numbers (RFC 9987 §5.1), SUCCESS otherwise.
pub fn keyless_reply(body: &[u8]) -> Vec<u8> {
    match Request::decode(body) {
        Ok(Request::RequestIdentities) => vec![msg::IDENTITIES_ANSWER, 0, 0, 0, 0],
        Ok(Request::Sign(_) | Request::Extension(_) | Request::Unknown { .. }) => {
            vec![msg::FAILURE]
        }
        _ => vec![msg::SUCCESS],
    }
}

/// The listening stand-in.
pub struct Recorder {
    /// Socket path to give clients as `SSH_AUTH_SOCK`.
    pub path: PathBuf,
    frames: Arc<Mutex<Vec<Vec<u8>>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Recorder {
    /// Listens on `dir/agent.sock`.
    pub fn start(dir: &Path, reply: ReplyFn) -> Recorder {
        let path = dir.join("agent.sock");
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).expect("bind recorder socket");
        let frames = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (f, s) = (frames.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            // Connections are served one at a time, in accept order, so when the
            // wake-up connection from `finish` is seen every earlier one is done.
            for stream in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    serve(stream, &f, &*reply);
                }
            }
        });
        Recorder {
            path,
            frames,
            stop,
            thread: Some(thread),
        }
    }

    /// Stops listening and returns the recorded request bodies in order.
    pub fn finish(mut self) -> Vec<Vec<u8>> {
        self.stop.store(true, Ordering::SeqCst);
        drop(UnixStream::connect(&self.path));
        if let Some(t) = self.thread.take() {
            t.join().expect("recorder thread");
        }
        let _ = std::fs::remove_file(&self.path);
        std::mem::take(&mut *self.frames.lock().unwrap())
    }
}

fn serve(mut stream: UnixStream, frames: &Mutex<Vec<Vec<u8>>>, reply: &dyn Fn(&[u8]) -> Vec<u8>) {
    loop {
        let mut header = [0u8; 4];
        if stream.read_exact(&mut header).is_err() {
            return;
        }
        let len = frame::body_len(header).expect("client sent a valid header");
        let mut body = vec![0u8; len];
        stream.read_exact(&mut body).expect("frame body");
        let answer = reply(&body);
        frames.lock().unwrap().push(body);
        let mut out = Vec::new();
        frame::encode_frame(answer[0], &answer[1..], &mut out);
        if stream.write_all(&out).is_err() {
            return;
        }
    }
}
