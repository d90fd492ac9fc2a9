//! Approval windows of `confirm` policy rules.
//!
//! An approval covers a scope — rule × key × peer executable × (for `key+exe+dest`) the
//! destination host key — for the rule's window. Requests in one scope share one prompt
//! (single flight): the first starts it, later ones wait for its answer, and when it
//! approves, requests arriving within the window are served without a prompt. The prompt
//! runs in its own task, holds no signer and no lock, and is killed when `confirm_timeout`
//! passes without an answer (a refusal). Other scopes never wait on it.
//!
//! Refusals (and timeouts) are not remembered: requests already waiting on the refused
//! prompt are refused with it, the next request prompts again. A peer whose executable is
//! unknown gets no window: its approval serves only the requests waiting on that prompt.

use std::collections::HashMap;
use std::ffi::OsString;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::confirm::{self, PromptAnswer};

/// Scopes kept before expired approvals are swept out.
const SWEEP_ABOVE: usize = 1024;

/// What one approval covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ScopeKey {
    /// The deciding rule's name (approvals of one rule do not serve another).
    pub rule: Arc<str>,
    /// SHA-256 of the key's public blob.
    pub key: [u8; 32],
    /// The peer's executable; `None` (unknown) is never given a window.
    pub exe: Option<String>,
    /// The destination host key's SHA-256 for `key+exe+dest` scopes (`None`: no bound
    /// destination, or a `key+exe` scope).
    pub dest: Option<[u8; 32]>,
}

/// The prompt to run when no approval is open.
#[derive(Debug, Clone)]
pub struct Prompt {
    /// The program.
    pub program: OsString,
    /// Its arguments before the prompt text.
    pub args: Vec<OsString>,
    /// The prompt text (last argument).
    pub text: String,
    /// How long the prompt may stay unanswered.
    pub timeout: Duration,
}

/// How an approval request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Approval {
    /// An open window of this scope served it (no prompt).
    Window,
    /// A prompt approved it (this request's, or one it waited on).
    Prompted,
    /// The prompt refused.
    Refused,
    /// The prompt was not answered in time.
    TimedOut,
}

impl Approval {
    /// Whether the request may go on.
    pub fn allows(self) -> bool {
        matches!(self, Approval::Window | Approval::Prompted)
    }
}

#[derive(Debug)]
enum Entry {
    /// Approved until this instant.
    Open(Instant),
    /// A prompt is running; its answer comes on this channel.
    Asking(watch::Receiver<Option<PromptAnswer>>),
}

/// Live approvals and running prompts, by scope.
#[derive(Debug, Default)]
pub struct Approvals {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    scopes: parking_lot::Mutex<HashMap<ScopeKey, Entry>>,
    prompts_started: AtomicU64,
    /// Bumped by [`Approvals::clear`]: a prompt started before a clear opens no window.
    generation: AtomicU64,
}

impl Approvals {
    /// Prompts started since the agent began (for tests and metrics).
    pub fn prompts_started(&self) -> u64 {
        self.inner.prompts_started.load(Ordering::Relaxed)
    }

    /// Scopes with an open window or a running prompt.
    pub fn open_scopes(&self) -> usize {
        let now = Instant::now();
        self.inner
            .scopes
            .lock()
            .values()
            .filter(|e| !matches!(e, Entry::Open(until) if *until <= now))
            .count()
    }

    /// Closes every window (the agent was locked, or the policy changed); running prompts
    /// go on and answer their waiters, but an approval they bring opens no window.
    pub fn clear(&self) {
        let mut scopes = self.inner.scopes.lock();
        self.inner.generation.fetch_add(1, Ordering::Relaxed);
        scopes.retain(|_, entry| matches!(entry, Entry::Asking(_)));
    }

    /// Approves a request in `scope`: through an open window, by waiting on the scope's
    /// running prompt, or by starting one with `prompt`. `window` is how long an approval
    /// lasts (zero: only the requests waiting on the prompt).
    pub async fn approve(
        &self,
        scope: ScopeKey,
        window: Duration,
        prompt: impl FnOnce() -> Prompt,
    ) -> Approval {
        let rx = {
            let mut scopes = self.inner.scopes.lock();
            let now = Instant::now();
            match scopes.get(&scope) {
                Some(Entry::Open(until)) if *until > now => return Approval::Window,
                Some(Entry::Asking(rx)) => rx.clone(),
                _ => {
                    if scopes.len() >= SWEEP_ABOVE {
                        scopes.retain(|_, e| !matches!(e, Entry::Open(until) if *until <= now));
                    }
                    let (tx, rx) = watch::channel(None);
                    scopes.insert(scope.clone(), Entry::Asking(rx.clone()));
                    self.inner.prompts_started.fetch_add(1, Ordering::Relaxed);
                    // Its own task: the prompt goes on (and is answered for every waiter)
                    // even if the request that started it goes away.
                    let inner = self.inner.clone();
                    let generation = inner.generation.load(Ordering::Relaxed);
                    let task = run_prompt(inner, scope, window, generation, prompt(), tx);
                    tokio::spawn(task);
                    rx
                }
            }
        };
        wait(rx).await.map_or(Approval::Refused, as_approval)
    }
}

/// The prompt's answer; `None` when the prompt task vanished (a refusal).
async fn wait(mut rx: watch::Receiver<Option<PromptAnswer>>) -> Option<PromptAnswer> {
    rx.wait_for(Option::is_some).await.ok().and_then(|a| *a)
}

fn as_approval(answer: PromptAnswer) -> Approval {
    match answer {
        PromptAnswer::Allowed => Approval::Prompted,
        PromptAnswer::Refused => Approval::Refused,
        PromptAnswer::TimedOut => Approval::TimedOut,
    }
}

async fn run_prompt(
    approvals: Arc<Inner>,
    scope: ScopeKey,
    window: Duration,
    generation: u64,
    prompt: Prompt,
    tx: watch::Sender<Option<PromptAnswer>>,
) {
    let answer =
        confirm::ask_with_limit(&prompt.program, &prompt.args, &prompt.text, prompt.timeout).await;
    {
        // The scope's entry changes before the waiters hear the answer, so a request that
        // arrives in between finds the window (or prompts again after a refusal).
        let mut scopes = approvals.scopes.lock();
        let keep = answer == PromptAnswer::Allowed
            && !window.is_zero()
            && scope.exe.is_some()
            && approvals.generation.load(Ordering::Relaxed) == generation;
        match Instant::now().checked_add(window).filter(|_| keep) {
            Some(until) => {
                scopes.insert(scope, Entry::Open(until));
            }
            None => {
                scopes.remove(&scope);
            }
        }
    }
    // Nobody listening is fine: the requests went away.
    let _ = tx.send(Some(answer));
}

#[cfg(test)]
#[path = "approval_tests.rs"]
mod tests;
