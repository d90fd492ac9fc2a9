//! The policy on the request path, in-process: sign refusals, list filtering, the shared
//! fast-path answer, unknown facts failing closed, and the audit lines it produces.

use std::sync::Arc;

use secretivex_audit::{AuditHandle, AuditSpec};
use secretivex_keys::KeyPair;
use secretivex_policy::{Policy, PolicySpec};
use secretivex_proto::{AddIdentity, Request, Response, SignRequest};

use crate::handler::{handle, ConnState, Reply};
use crate::peer::Peer;
use crate::test_support::ed25519_wire;
use crate::{Agent, Config};

fn blob_of(seed: u8) -> Vec<u8> {
    KeyPair::from_wire(&ed25519_wire(seed))
        .unwrap()
        .public_blob()
        .to_vec()
}

fn fingerprint_of(seed: u8) -> String {
    KeyPair::from_wire(&ed25519_wire(seed))
        .unwrap()
        .fingerprint()
}

/// Compiles the `[policy]` table of a configuration text (parsed as the agent does).
fn policy(text: &str) -> Arc<Policy> {
    let (file, _) = secretivex_config::parse_str(std::path::Path::new("agent.toml"), text)
        .unwrap_or_else(|e| panic!("{e}"));
    let spec: PolicySpec = file.policy.unwrap_or_default();
    Arc::new(Policy::compile(&spec).unwrap())
}

/// A connection from this test process (its pid, so `/proc` facts are known).
fn conn_from(pid: Option<i32>) -> ConnState {
    ConnState::new(Peer {
        uid: rustix::process::geteuid().as_raw(),
        gid: 0,
        pid,
    })
}

async fn reply(agent: &Arc<Agent>, conn: &mut ConnState, request: Request) -> Reply {
    let mut frame = Vec::new();
    request.encode_frame(&mut frame);
    handle(agent, conn, &frame[4..]).await
}

async fn call(agent: &Arc<Agent>, conn: &mut ConnState, request: Request) -> Response {
    match reply(agent, conn, request).await {
        Reply::Response(r) => r,
        Reply::Shared(frame) => Response::decode(&frame[4..]).unwrap(),
    }
}

async fn agent_with_keys(seeds: &[u8]) -> Arc<Agent> {
    let agent = Agent::try_new(Config {
        signer_threads: 1,
        ..Config::default()
    })
    .unwrap();
    let mut c = conn_from(None);
    for &seed in seeds {
        let add = Request::AddIdentity(AddIdentity {
            key: ed25519_wire(seed),
            comment: format!("key-{seed}"),
            constraints: vec![],
        });
        assert_eq!(call(&agent, &mut c, add).await, Response::Success);
    }
    agent
}

fn sign(seed: u8, data: &[u8]) -> Request {
    Request::Sign(SignRequest {
        key_blob: blob_of(seed),
        data: data.to_vec(),
        flags: 0,
    })
}

fn listed_comments(r: Response) -> Vec<String> {
    match r {
        Response::Identities(ids) => ids.into_iter().map(|i| i.comment).collect(),
        other => panic!("expected identities, got {other:?}"),
    }
}

#[tokio::test]
async fn a_deny_rule_refuses_hides_and_is_audited_without_the_data() {
    let tmp = tempfile::tempdir().unwrap();
    let agent = agent_with_keys(&[1, 2]).await;
    agent.set_policy(policy(&format!(
        "[policy]\n[[policy.rules]]\nname = \"no-one\"\naction = \"deny\"\nkey = {{ fingerprint = [\"{}\"] }}\n",
        fingerprint_of(1)
    )));
    let log = tmp.path().join("audit.jsonl");
    let audit = Arc::new(AuditHandle::open(&AuditSpec::new(&log)).unwrap());
    agent.set_audit(Some(audit.clone()));
    let mut c = conn_from(Some(std::process::id() as i32));

    let data = b"very-secret-signed-data-7f3a";
    assert_eq!(call(&agent, &mut c, sign(1, data)).await, Response::Failure);
    assert!(matches!(
        call(&agent, &mut c, sign(2, data)).await,
        Response::SignResponse(_)
    ));
    let shown = listed_comments(call(&agent, &mut c, Request::RequestIdentities).await);
    assert_eq!(shown, vec!["key-2".to_string()]);

    audit.flush();
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let signs: Vec<_> = lines.iter().filter(|l| l["event"] == "sign").collect();
    assert_eq!(signs.len(), 2, "{text}");
    assert_eq!(signs[0]["decision"], "deny");
    assert_eq!(signs[0]["rule"], "no-one");
    assert_eq!(signs[0]["key_fingerprint"], fingerprint_of(1).as_str());
    assert_eq!(signs[1]["decision"], "allow");
    assert_eq!(signs[1]["rule"], "default");
    let exe = std::env::current_exe().unwrap();
    assert_eq!(signs[1]["peer_exe"], exe.to_str().unwrap());
    let digest = crate::policy_facts::sha256(data);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(signs[1]["data_sha256"], hex.as_str());
    assert!(!text.contains("very-secret"), "{text}");
    assert!(lines.iter().any(|l| l["event"] == "list"), "{text}");
}

#[tokio::test]
async fn policies_that_cannot_deny_answer_with_the_shared_list() {
    let agent = agent_with_keys(&[1, 2]).await;
    let mut c = conn_from(None);
    for text in [
        "[policy]\n",
        "[policy]\ndefault = \"confirm\"\nwindow = \"1m\"\n",
    ] {
        agent.set_policy(policy(text));
        let Reply::Shared(frame) = reply(&agent, &mut c, Request::RequestIdentities).await else {
            panic!("expected the shared answer");
        };
        assert!(Arc::ptr_eq(&frame, &agent.keys.answer_frame()));
    }
    agent.set_policy(policy("[policy]\ndefault = \"deny\"\n"));
    let Reply::Shared(frame) = reply(&agent, &mut c, Request::RequestIdentities).await else {
        panic!("expected an identities answer");
    };
    assert!(!Arc::ptr_eq(&frame, &agent.keys.answer_frame()));
    let shown = listed_comments(Response::decode(&frame[4..]).unwrap());
    assert!(shown.is_empty());
}

#[tokio::test]
async fn an_unknown_executable_fails_closed() {
    let agent = agent_with_keys(&[1]).await;
    // No pid: /proc cannot be read, the executable is unknown.
    let mut unknown = conn_from(None);
    let mut known = conn_from(Some(std::process::id() as i32));
    let me = std::env::current_exe().unwrap();
    let me = me.to_str().unwrap();

    agent.set_policy(policy(&format!(
        "[policy]\ndefault = \"deny\"\n[[policy.rules]]\naction = \"allow\"\npeer = {{ exe = [\"{me}\"] }}\n"
    )));
    assert_eq!(
        call(&agent, &mut unknown, sign(1, b"d")).await,
        Response::Failure
    );
    assert!(matches!(
        call(&agent, &mut known, sign(1, b"d")).await,
        Response::SignResponse(_)
    ));

    agent.set_policy(policy(
        "[policy]\n[[policy.rules]]\naction = \"deny\"\npeer = { exe = [\"/usr/bin/nothing-here\"] }\n",
    ));
    let mut unknown = conn_from(None);
    assert_eq!(
        call(&agent, &mut unknown, sign(1, b"d")).await,
        Response::Failure
    );
    let mut known = conn_from(Some(std::process::id() as i32));
    assert!(matches!(
        call(&agent, &mut known, sign(1, b"d")).await,
        Response::SignResponse(_)
    ));
}

#[tokio::test]
async fn a_policy_prompt_and_an_ssh_add_c_prompt_both_run() {
    let tmp = tempfile::tempdir().unwrap();
    let count = tmp.path().join("count");
    let script = crate::test_support::write_script(
        tmp.path(),
        "yes",
        &format!("echo \"$1\" >> '{}'\necho yes", count.display()),
    );
    let agent = Agent::try_new(Config {
        signer_threads: 1,
        askpass: Some(script.clone()),
        ..Config::default()
    })
    .unwrap();
    let mut c = conn_from(Some(std::process::id() as i32));
    let add = Request::AddIdentity(AddIdentity {
        key: ed25519_wire(1),
        comment: "confirmed".to_string(),
        constraints: vec![secretivex_proto::Constraint::Confirm],
    });
    assert_eq!(call(&agent, &mut c, add).await, Response::Success);
    agent.set_policy(policy(&format!(
        "[policy]\nconfirm_command = [\"{}\"]\n[[policy.rules]]\nname = \"ask\"\naction = \"confirm\"\nwindow = \"10m\"\nscope = \"key+exe\"\n",
        script.display()
    )));
    for _ in 0..2 {
        assert!(matches!(
            call(&agent, &mut c, sign(1, b"d")).await,
            Response::SignResponse(_)
        ));
    }
    let asked = std::fs::read_to_string(&count).unwrap();
    // One policy prompt (the window serves the second request) and one `-c` prompt per use.
    assert_eq!(asked.matches("Rule \"ask\"").count(), 1, "{asked}");
    assert_eq!(
        asked.matches("Allow use of key confirmed?").count(),
        3,
        "{asked}"
    );
}
