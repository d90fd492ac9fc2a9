//! `secretivex wait-ready`: for scripts that start an agent and must not race it.

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::client::AgentClient;
use crate::Outcome;

const POLL_EVERY: Duration = Duration::from_millis(50);
/// Bounds one attempt so a wedged agent cannot hold us past the deadline for long.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);

/// Polls until the agent answers a list request (`Ok`) or `timeout_secs` pass (`Negative`).
pub fn run(socket: &Path, timeout_secs: f64) -> Result<Outcome> {
    let Ok(timeout) = Duration::try_from_secs_f64(timeout_secs) else {
        bail!("--timeout must be a non-negative number of seconds");
    };
    // A timeout too large to add to the clock means "wait forever".
    let deadline = Instant::now().checked_add(timeout);
    let mut last_error;
    loop {
        match AgentClient::connect(socket, Some(ATTEMPT_TIMEOUT)).and_then(|mut c| c.identities()) {
            Ok(_) => {
                println!("agent at {} is ready", socket.display());
                return Ok(Outcome::Ok);
            }
            Err(e) => last_error = e.to_string(),
        }
        let pause = match deadline {
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => POLL_EVERY.min(left),
                _ => break,
            },
            None => POLL_EVERY,
        };
        thread::sleep(pause);
    }
    eprintln!(
        "secretivex: agent at {} not ready after {timeout_secs} s: {last_error}",
        socket.display()
    );
    Ok(Outcome::Negative)
}
