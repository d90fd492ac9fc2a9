//! Approval windows with real prompt scripts: single flight, windows, refusals, timeouts.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::*;

fn scope(rule: &str, key: u8, exe: Option<&str>) -> ScopeKey {
    ScopeKey {
        rule: rule.into(),
        key: [key; 32],
        exe: exe.map(str::to_owned),
        dest: None,
    }
}

/// A prompt script that appends a line to `count`, then answers with `answer_body`.
fn counting_script(dir: &Path, name: &str, answer_body: &str) -> (PathBuf, PathBuf) {
    let count = dir.join(format!("{name}.count"));
    let body = format!("echo x >> '{}'\n{answer_body}", count.display());
    (crate::test_support::write_script(dir, name, &body), count)
}

fn prompts(count: &Path) -> usize {
    std::fs::read_to_string(count).map_or(0, |s| s.lines().count())
}

fn prompt(program: &Path, timeout: Duration) -> impl FnOnce() -> Prompt {
    let program = program.as_os_str().to_owned();
    move || Prompt {
        program,
        args: Vec::new(),
        text: "Allow?".to_owned(),
        timeout,
    }
}

const LONG: Duration = Duration::from_secs(600);

#[tokio::test]
async fn an_approval_opens_a_window_for_its_scope_only() {
    let tmp = tempfile::tempdir().unwrap();
    let (yes, count) = counting_script(tmp.path(), "yes", "echo yes");
    let approvals = Approvals::default();
    let window = Duration::from_secs(600);
    let s = scope("r", 1, Some("/usr/bin/ssh"));
    assert_eq!(
        approvals
            .approve(s.clone(), window, prompt(&yes, LONG))
            .await,
        Approval::Prompted
    );
    assert_eq!(
        approvals
            .approve(s.clone(), window, prompt(&yes, LONG))
            .await,
        Approval::Window
    );
    assert_eq!(prompts(&count), 1);
    // Another key, program or rule is another scope.
    for other in [
        scope("r", 2, Some("/usr/bin/ssh")),
        scope("r", 1, Some("/usr/bin/scp")),
        scope("q", 1, Some("/usr/bin/ssh")),
    ] {
        assert_eq!(
            approvals.approve(other, window, prompt(&yes, LONG)).await,
            Approval::Prompted
        );
    }
    assert_eq!(prompts(&count), 4);
    assert_eq!(approvals.prompts_started(), 4);
    // Locking closes the windows.
    approvals.clear();
    assert_eq!(
        approvals.approve(s, window, prompt(&yes, LONG)).await,
        Approval::Prompted
    );
    assert_eq!(prompts(&count), 5);
}

#[tokio::test]
async fn no_window_without_a_duration_or_a_known_program() {
    let tmp = tempfile::tempdir().unwrap();
    let (yes, count) = counting_script(tmp.path(), "yes", "exit 0");
    let approvals = Approvals::default();
    let known = scope("r", 1, Some("/usr/bin/ssh"));
    let unknown = scope("r", 1, None);
    for _ in 0..2 {
        let a = approvals
            .approve(known.clone(), Duration::ZERO, prompt(&yes, LONG))
            .await;
        assert_eq!(a, Approval::Prompted);
        let b = approvals
            .approve(unknown.clone(), LONG, prompt(&yes, LONG))
            .await;
        assert_eq!(b, Approval::Prompted);
    }
    assert_eq!(prompts(&count), 4);
    assert_eq!(approvals.open_scopes(), 0);
}

#[tokio::test]
async fn refusals_are_not_remembered() {
    let tmp = tempfile::tempdir().unwrap();
    let (no, count) = counting_script(tmp.path(), "no", "echo no");
    let approvals = Approvals::default();
    let s = scope("r", 1, Some("/usr/bin/ssh"));
    for _ in 0..3 {
        assert_eq!(
            approvals.approve(s.clone(), LONG, prompt(&no, LONG)).await,
            Approval::Refused
        );
    }
    assert_eq!(prompts(&count), 3);
}

#[tokio::test]
async fn concurrent_requests_share_one_prompt_and_other_scopes_go_on() {
    let tmp = tempfile::tempdir().unwrap();
    let release = tmp.path().join("release");
    let (wait, count) = counting_script(
        tmp.path(),
        "wait",
        &format!(
            "while [ ! -e '{}' ]; do sleep 0.02; done",
            release.display()
        ),
    );
    let (yes, other_count) = counting_script(tmp.path(), "yes", "exit 0");
    let approvals = Arc::new(Approvals::default());
    let s = scope("r", 1, Some("/usr/bin/ssh"));
    let mut waiters = tokio::task::JoinSet::new();
    for _ in 0..200 {
        let (a, s, p) = (approvals.clone(), s.clone(), prompt(&wait, LONG));
        waiters.spawn(async move { a.approve(s, LONG, p).await });
    }
    // The prompt is up (its script has counted itself) ...
    while prompts(&count) == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // ... and another scope is served meanwhile, with its own prompt.
    let other = approvals
        .approve(
            scope("r", 2, Some("/usr/bin/ssh")),
            LONG,
            prompt(&yes, LONG),
        )
        .await;
    assert_eq!(other, Approval::Prompted);
    assert_eq!(prompts(&other_count), 1);
    // None of the 200 has been answered while their prompt is pending.
    assert!(waiters.try_join_next().is_none());
    std::fs::write(&release, b"").unwrap();
    let mut answers = Vec::new();
    while let Some(answer) = waiters.join_next().await {
        answers.push(answer.unwrap());
    }
    assert_eq!(answers.len(), 200);
    assert!(answers.iter().all(|a| a.allows()), "{answers:?}");
    assert_eq!(prompts(&count), 1);
    assert_eq!(
        approvals.approve(s, LONG, prompt(&wait, LONG)).await,
        Approval::Window
    );
    assert_eq!(prompts(&count), 1);
}

#[tokio::test]
async fn an_unanswered_prompt_times_out_for_every_waiter() {
    let tmp = tempfile::tempdir().unwrap();
    let (hang, count) = counting_script(tmp.path(), "hang", "exec sleep 600");
    let approvals = Arc::new(Approvals::default());
    let s = scope("r", 1, Some("/usr/bin/ssh"));
    let limit = Duration::from_millis(300);
    let mut waiters = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (a, s, p) = (approvals.clone(), s.clone(), prompt(&hang, limit));
        waiters.spawn(async move { a.approve(s, LONG, p).await });
    }
    while let Some(answer) = waiters.join_next().await {
        assert_eq!(answer.unwrap(), Approval::TimedOut);
    }
    assert_eq!(prompts(&count), 1);
    // Not remembered: the next request prompts again.
    assert_eq!(
        approvals.approve(s, LONG, prompt(&hang, limit)).await,
        Approval::TimedOut
    );
    assert_eq!(prompts(&count), 2);
}
