//! `tracehound watch`: a live dashboard of the daemon, polling `Stats` every interval.
//!
//! One thread: poll (with a deadline), draw, then wait for a key until the next poll is
//! due. A failed poll drops the connection and marks the screen disconnected; the next
//! interval dials again, so a restarted daemon is picked up without restarting the tool.
//! `q`, Esc, Ctrl-C and SIGTERM/SIGINT/SIGHUP all end it with the terminal restored.

mod state;
mod ui;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::DefaultTerminal;
use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::daemon::{self, Client};
use state::Dashboard;

/// Restores the terminal however the dashboard ends (an error return included; ratatui's
/// panic hook covers panics).
struct RestoreOnDrop;

impl Drop for RestoreOnDrop {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

/// Runs the dashboard until the user quits.
pub fn run(target: &str, interval: Duration, top: u32) -> Result<ExitCode> {
    let rt = daemon::runtime()?;
    let restore = RestoreOnDrop;
    let mut terminal = ratatui::try_init()
        .context("setting up the terminal (watch needs an interactive terminal)")?;
    let result = event_loop(&mut terminal, &rt, target, interval, top);
    drop(restore);
    result.map(|()| ExitCode::SUCCESS)
}

/// A poll's deadline: long enough for a busy daemon, short enough that the keys stay
/// responsive while it is wedged.
fn poll_timeout(interval: Duration) -> Duration {
    (interval * 2).clamp(Duration::from_millis(500), Duration::from_secs(3))
}

fn event_loop(
    terminal: &mut DefaultTerminal,
    rt: &tokio::runtime::Runtime,
    target: &str,
    interval: Duration,
    top: u32,
) -> Result<()> {
    let mut dash = Dashboard::new(target, interval);
    let mut client: Option<Client> = None;
    let mut signals = StopSignals::new(rt)?;
    let timeout = poll_timeout(interval);
    // Draw once before the first poll, so a slow connect shows "connecting".
    terminal
        .draw(|f| ui::draw(f, &dash))
        .context("drawing the dashboard")?;
    let mut next_poll = Instant::now();
    loop {
        if signals.raised(rt) {
            return Ok(());
        }
        if Instant::now() >= next_poll {
            match rt.block_on(poll(&mut client, target, top, timeout)) {
                Ok(stats) => dash.update(stats.into(), Instant::now()),
                Err(why) => {
                    client = None;
                    dash.lost(&why);
                }
            }
            next_poll = Instant::now() + interval;
            terminal
                .draw(|f| ui::draw(f, &dash))
                .context("drawing the dashboard")?;
        }
        let wait = next_poll.saturating_duration_since(Instant::now());
        if event::poll(wait).context("reading terminal events")? {
            match event::read().context("reading terminal events")? {
                Event::Key(key) if is_quit(&key) => return Ok(()),
                Event::Resize(..) => {
                    terminal
                        .draw(|f| ui::draw(f, &dash))
                        .context("drawing the dashboard")?;
                }
                _ => {}
            }
        }
    }
}

/// SIGTERM, SIGINT (from `kill`: in raw mode Ctrl-C arrives as a key) and SIGHUP end the
/// dashboard through the normal path, so the terminal is restored instead of being left
/// in raw mode on the alternate screen.
struct StopSignals {
    term: Signal,
    int: Signal,
    hup: Signal,
}

impl StopSignals {
    fn new(rt: &tokio::runtime::Runtime) -> Result<Self> {
        let _guard = rt.enter();
        Ok(Self {
            term: signal(SignalKind::terminate()).context("listening for SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("listening for SIGINT")?,
            hup: signal(SignalKind::hangup()).context("listening for SIGHUP")?,
        })
    }

    /// Whether one of them arrived. Never blocks: yielding once lets the runtime's driver
    /// deliver a pending signal before the answer is taken.
    fn raised(&mut self, rt: &tokio::runtime::Runtime) -> bool {
        rt.block_on(async {
            tokio::select! {
                biased;
                _ = self.term.recv() => true,
                _ = self.int.recv() => true,
                _ = self.hup.recv() => true,
                () = tokio::task::yield_now() => false,
            }
        })
    }
}

/// One Stats call, dialling first when there is no connection.
async fn poll(
    client: &mut Option<Client>,
    target: &str,
    top: u32,
    timeout: Duration,
) -> Result<tracehound_rpc::pb::StatsReply, String> {
    let connected = match client.take() {
        Some(c) => c,
        None => daemon::try_connect(target, timeout).await?,
    };
    let conn = client.insert(connected);
    daemon::try_call(
        timeout,
        conn.stats(tracehound_rpc::pb::StatsRequest { top }),
    )
    .await
}

fn is_quit(key: &KeyEvent) -> bool {
    key.kind == KeyEventKind::Press
        && match key.code {
            KeyCode::Char('q') | KeyCode::Char('Q') | KeyCode::Esc => true,
            KeyCode::Char('c') => key.modifiers.contains(KeyModifiers::CONTROL),
            _ => false,
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quit_keys() {
        let k = |code, mods| KeyEvent::new(code, mods);
        assert!(is_quit(&k(KeyCode::Char('q'), KeyModifiers::NONE)));
        assert!(is_quit(&k(KeyCode::Esc, KeyModifiers::NONE)));
        assert!(is_quit(&k(KeyCode::Char('c'), KeyModifiers::CONTROL)));
        assert!(!is_quit(&k(KeyCode::Char('c'), KeyModifiers::NONE)));
        assert!(!is_quit(&k(KeyCode::Char('x'), KeyModifiers::NONE)));
    }

    #[test]
    fn poll_deadline_is_bounded() {
        assert_eq!(
            poll_timeout(Duration::from_millis(50)),
            Duration::from_millis(500)
        );
        assert_eq!(poll_timeout(Duration::from_secs(1)), Duration::from_secs(2));
        assert_eq!(
            poll_timeout(Duration::from_secs(60)),
            Duration::from_secs(3)
        );
    }
}
