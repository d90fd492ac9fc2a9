//! Evaluation order, fail-closed handling of unknown facts, list filtering and compile
//! errors, with unit cases and a property test over small random policies.

use proptest::prelude::*;
use secretivex_policy::{Fingerprint, Outcome, Policy, PolicyError, PolicySpec, Request, Scope};
use std::time::Duration;

#[derive(serde::Deserialize)]
struct File {
    policy: PolicySpec,
}

fn policy(text: &str) -> Policy {
    let spec = toml::from_str::<File>(text)
        .unwrap_or_else(|e| panic!("{e}"))
        .policy;
    Policy::compile(&spec).unwrap_or_else(|e| panic!("{e}"))
}

fn compile_error(text: &str) -> String {
    let spec = toml::from_str::<File>(text)
        .unwrap_or_else(|e| panic!("{e}"))
        .policy;
    match Policy::compile(&spec) {
        Ok(_) => panic!("compiled {text}"),
        Err(PolicyError::Invalid { field, message }) => format!("{field}: {message}"),
    }
}

const KEY_A: [u8; 32] = [1; 32];
const KEY_B: [u8; 32] = [2; 32];
const HOST_X: [u8; 32] = [3; 32];
const HOST_Y: [u8; 32] = [4; 32];

fn fp(digest: &[u8; 32]) -> String {
    Fingerprint::from_digest(digest).to_string()
}

fn request<'a>(key: &'a [u8; 32]) -> Request<'a> {
    Request {
        key_digest: Some(key),
        key_comment: Some("alice@laptop"),
        peer_uid: Some(1000),
        peer_exe: Some("/usr/bin/ssh"),
        peer_name: Some("ssh"),
        dest_host_key: Some(&HOST_X),
        dest_user: Some("git"),
        forwarded: Some(false),
    }
}

#[test]
fn the_first_matching_rule_decides_in_file_order() {
    let p = policy(&format!(
        r#"[policy]
default = "deny"
[[policy.rules]]
name = "a-allowed"
action = "allow"
key = {{ fingerprint = ["{}"] }}
[[policy.rules]]
name = "ssh-denied"
action = "deny"
peer = {{ exe = ["/usr/bin/ssh"] }}
[[policy.rules]]
action = "allow"
"#,
        fp(&KEY_A)
    ));
    let a = p.decide(&request(&KEY_A));
    assert_eq!(
        (a.outcome, &*a.rule, a.rule_index),
        (Outcome::Allow, "a-allowed", Some(0))
    );
    let b = p.decide(&request(&KEY_B));
    assert_eq!((b.outcome, &*b.rule), (Outcome::Deny, "ssh-denied"));
    let mut other = request(&KEY_B);
    other.peer_exe = Some("/usr/bin/ssh-add");
    let c = p.decide(&other);
    assert_eq!((c.outcome, &*c.rule), (Outcome::Allow, "rules[2]"));
}

#[test]
fn the_default_decides_when_no_rule_matches() {
    let p = policy("[policy]\ndefault = \"deny\"\n[[policy.rules]]\naction = \"allow\"\npeer = { name = [\"git\"] }\n");
    let r = p.decide(&request(&KEY_A));
    assert_eq!(
        (r.outcome, &*r.rule, r.rule_index),
        (Outcome::Deny, "default", None)
    );
    assert!(!p.may_list(&request(&KEY_A)));
}

#[test]
fn unknown_facts_match_deny_and_confirm_but_not_allow() {
    let p = policy(
        "[policy]\ndefault = \"deny\"\n\
         [[policy.rules]]\nname = \"ssh-ok\"\naction = \"allow\"\npeer = { exe = [\"/usr/bin/ssh\"] }\n",
    );
    let mut unknown_exe = request(&KEY_A);
    unknown_exe.peer_exe = None;
    assert_eq!(p.decide(&unknown_exe).outcome, Outcome::Deny);
    assert_eq!(p.decide(&request(&KEY_A)).outcome, Outcome::Allow);

    let p = policy(
        "[policy]\n[[policy.rules]]\nname = \"no-root\"\naction = \"deny\"\ndest = { user = [\"root\"] }\n",
    );
    let mut unknown_user = request(&KEY_A);
    unknown_user.dest_user = None;
    assert_eq!(&*p.decide(&unknown_user).rule, "no-root");
    // Listing does not know the user yet: the key may still be used for "git".
    assert!(p.may_list(&unknown_user));
    assert_eq!(p.decide(&request(&KEY_A)).outcome, Outcome::Allow);

    let p = policy(
        "[policy]\n[[policy.rules]]\naction = \"confirm\"\nwindow = \"15m\"\nscope = \"key+exe\"\ndest = { host_key = [\"SHA256:AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM\"] }\n",
    );
    let mut no_bind = request(&KEY_A);
    no_bind.dest_host_key = None;
    let expected = Outcome::Confirm {
        window: Duration::from_secs(900),
        scope: Scope::KeyExe,
    };
    assert_eq!(p.decide(&no_bind).outcome, expected);
    assert_eq!(p.decide(&request(&KEY_A)).outcome, expected);
    let mut other_host = request(&KEY_A);
    other_host.dest_host_key = Some(&HOST_Y);
    assert_eq!(p.decide(&other_host).outcome, Outcome::Allow);
}

#[test]
fn an_unknown_confirm_gives_way_to_a_later_deny() {
    let p = policy(
        "[policy]\ndefault = \"deny\"\n[[policy.rules]]\nname = \"ask\"\naction = \"confirm\"\ndest = { user = [\"git\"] }\n[[policy.rules]]\nname = \"ssh\"\naction = \"allow\"\npeer = { exe = [\"/usr/bin/ssh\"] }\n",
    );
    let mut unknown_user = request(&KEY_A);
    unknown_user.dest_user = None;
    // The user could be "git" (confirm) or not (then "ssh" allows): confirm by "ask".
    let r = p.decide(&unknown_user);
    assert_eq!((&*r.rule, r.rule_index), ("ask", Some(0)));
    assert!(matches!(r.outcome, Outcome::Confirm { .. }));
    // Not ssh either: the user could be anything, and without "git" the default denies.
    unknown_user.peer_exe = Some("/usr/bin/scp");
    let r = p.decide(&unknown_user);
    assert_eq!((r.outcome, &*r.rule), (Outcome::Deny, "default"));
    assert!(p.may_list(&unknown_user));
}

#[test]
fn forwarded_conditions() {
    let p = policy("[policy]\n[[policy.rules]]\naction = \"deny\"\nforwarded = true\n");
    let mut fwd = request(&KEY_A);
    fwd.forwarded = Some(true);
    assert_eq!(p.decide(&fwd).outcome, Outcome::Deny);
    assert!(!p.may_list(&fwd));
    assert_eq!(p.decide(&request(&KEY_A)).outcome, Outcome::Allow);
    assert!(p.may_list(&request(&KEY_A)));
}

#[test]
fn comment_and_uid_and_name_conditions() {
    let p = policy(
        "[policy]\n[[policy.rules]]\naction = \"deny\"\nkey = { comment = [\"alice@*\"] }\npeer = { uid = [0, 1000], name = [\"ss?\"] }\n",
    );
    assert_eq!(p.decide(&request(&KEY_A)).outcome, Outcome::Deny);
    let mut bob = request(&KEY_A);
    bob.key_comment = Some("bob@laptop");
    assert_eq!(p.decide(&bob).outcome, Outcome::Allow);
    let mut uid = request(&KEY_A);
    uid.peer_uid = Some(1001);
    assert_eq!(p.decide(&uid).outcome, Outcome::Allow);
    let needs = p.needs();
    assert!(needs.key_comment && needs.peer_name && !needs.peer_exe && !needs.dest_user);
}

#[test]
fn fast_path_predicates() {
    let all = Policy::allow_all();
    assert!(all.allows_everything() && !all.can_deny());
    let confirm = policy("[policy]\ndefault = \"confirm\"\nwindow = \"1m\"\n");
    assert!(!confirm.allows_everything() && !confirm.can_deny());
    assert!(confirm.may_list(&request(&KEY_A)));
    let deny = policy("[policy]\n[[policy.rules]]\naction = \"deny\"\nforwarded = true\n");
    assert!(!deny.allows_everything() && deny.can_deny());
}

#[test]
fn compile_errors_name_the_field() {
    let dup = compile_error(
        "[policy]\n[[policy.rules]]\nname = \"x\"\naction = \"deny\"\n[[policy.rules]]\nname = \"x\"\naction = \"allow\"\n",
    );
    assert!(dup.starts_with("rules[1].name: duplicate"), "{dup}");
    let reserved =
        compile_error("[policy]\n[[policy.rules]]\nname = \"default\"\naction = \"deny\"\n");
    assert!(reserved.starts_with("rules[0].name"), "{reserved}");
    let unnamed_clash = compile_error(
        "[policy]\n[[policy.rules]]\naction = \"deny\"\n[[policy.rules]]\nname = \"rules[0]\"\naction = \"allow\"\n",
    );
    assert!(
        unnamed_clash.starts_with("rules[1].name"),
        "{unnamed_clash}"
    );
    let window = compile_error("[policy]\ndefault = \"allow\"\nwindow = \"1m\"\n");
    assert!(window.starts_with("window"), "{window}");
}

#[test]
fn explain_names_the_deciding_rule_and_each_condition() {
    let p = policy(&format!(
        "[policy]\n[[policy.rules]]\nname = \"first\"\naction = \"allow\"\npeer = {{ exe = [\"/usr/bin/git\"] }}\n\
         [[policy.rules]]\nname = \"second\"\naction = \"deny\"\nkey = {{ fingerprint = [\"{}\"] }}\ndest = {{ user = [\"root\"] }}\n\
         [[policy.rules]]\nname = \"third\"\naction = \"deny\"\n",
        fp(&KEY_A)
    ));
    let mut req = request(&KEY_A);
    req.dest_user = None;
    let e = p.explain(&req);
    assert_eq!(&*e.decision.rule, "second");
    let names: Vec<(&str, bool, bool)> = e
        .rules
        .iter()
        .map(|r| (&*r.name, r.decides, r.reached))
        .collect();
    assert_eq!(
        names,
        vec![
            ("first", false, true),
            ("second", true, true),
            ("third", false, false),
            ("default", false, false)
        ]
    );
    let text = e.to_string();
    assert!(text.starts_with("decision: deny by \"second\""), "{text}");
    assert!(
        text.contains("peer.exe: no match (/usr/bin/ssh vs [/usr/bin/git])"),
        "{text}"
    );
    assert!(
        text.contains("dest.user: unknown ((unknown) vs [root]); unknown holds for deny/confirm"),
        "{text}"
    );
    let json = serde_json::to_value(&e).unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(json["decision"]["rule"], "second");
    assert_eq!(json["decision"]["action"], "deny");
    assert_eq!(json["rules"][1]["conditions"][1]["result"], "unknown");
}

// ---- property: decisions with unknown facts are never wider than with the facts known ----

const EXES: [&str; 3] = ["/usr/bin/ssh", "/usr/bin/ssh-add", "/opt/x"];
const USERS: [&str; 2] = ["root", "git"];
const KEYS: [[u8; 32]; 2] = [KEY_A, KEY_B];
const HOSTS: [[u8; 32]; 2] = [HOST_X, HOST_Y];

fn rule_text() -> impl Strategy<Value = String> {
    (
        prop_oneof![Just("allow"), Just("deny"), Just("confirm")],
        proptest::option::of(any::<bool>()),
        proptest::option::of(0usize..2),
        proptest::option::of(prop_oneof![
            Just("/usr/bin/ssh"),
            Just("/usr/bin/ssh*"),
            Just("*")
        ]),
        proptest::option::of(0usize..2),
        proptest::option::of(prop_oneof![Just("root"), Just("g*")]),
    )
        .prop_map(|(action, fwd, key, exe, host, user)| {
            let mut text = format!("[[policy.rules]]\naction = \"{action}\"\n");
            if let Some(f) = fwd {
                text += &format!("forwarded = {f}\n");
            }
            if let Some(k) = key {
                text += &format!("key = {{ fingerprint = [\"{}\"] }}\n", fp(&KEYS[k]));
            }
            if let Some(e) = exe {
                text += &format!("peer = {{ exe = [\"{e}\"] }}\n");
            }
            match (host, user) {
                (Some(h), Some(u)) => {
                    text += &format!(
                        "dest = {{ host_key = [\"{}\"], user = [\"{u}\"] }}\n",
                        fp(&HOSTS[h])
                    )
                }
                (Some(h), None) => {
                    text += &format!("dest = {{ host_key = [\"{}\"] }}\n", fp(&HOSTS[h]))
                }
                (None, Some(u)) => text += &format!("dest = {{ user = [\"{u}\"] }}\n"),
                (None, None) => {}
            }
            text
        })
}

fn policy_text() -> impl Strategy<Value = String> {
    (
        prop_oneof![Just("allow"), Just("deny"), Just("confirm")],
        proptest::collection::vec(rule_text(), 0..5),
    )
        .prop_map(|(default, rules)| {
            format!("[policy]\ndefault = \"{default}\"\n{}", rules.concat())
        })
}

/// A request's facts as indices into the small universes; `None` is unknown.
type Facts = (
    usize,
    Option<bool>,
    Option<usize>,
    Option<usize>,
    Option<usize>,
);

fn build<'a>(f: &Facts) -> Request<'a> {
    Request {
        key_digest: KEYS.get(f.0),
        key_comment: Some("c"),
        peer_uid: Some(1000),
        peer_exe: f.2.and_then(|i| EXES.get(i).copied()),
        peer_name: Some("n"),
        dest_host_key: f.3.and_then(|i| HOSTS.get(i)),
        dest_user: f.4.and_then(|i| USERS.get(i).copied()),
        forwarded: f.1,
    }
}

fn completions(f: &Facts) -> Vec<Facts> {
    let fwd: Vec<Option<bool>> = f.1.map_or(vec![Some(false), Some(true)], |v| vec![Some(v)]);
    let exe: Vec<Option<usize>> =
        f.2.map_or((0..EXES.len()).map(Some).collect(), |v| vec![Some(v)]);
    let host: Vec<Option<usize>> =
        f.3.map_or((0..HOSTS.len()).map(Some).collect(), |v| vec![Some(v)]);
    let user: Vec<Option<usize>> =
        f.4.map_or((0..USERS.len()).map(Some).collect(), |v| vec![Some(v)]);
    let mut out = Vec::new();
    for a in &fwd {
        for b in &exe {
            for c in &host {
                for d in &user {
                    out.push((f.0, *a, *b, *c, *d));
                }
            }
        }
    }
    out
}

/// How permissive an outcome is: deny < confirm < allow.
fn rank(outcome: Outcome) -> u8 {
    match outcome {
        Outcome::Deny => 0,
        Outcome::Confirm { .. } => 1,
        Outcome::Allow => 2,
    }
}

proptest! {
    #[test]
    fn unknown_facts_never_widen_access(
        text in policy_text(),
        key in 0usize..2,
        fwd in proptest::option::of(any::<bool>()),
        exe in proptest::option::of(0usize..3),
        host in proptest::option::of(0usize..2),
        user in proptest::option::of(0usize..2),
    ) {
        let p = policy(&text);
        let partial: Facts = (key, fwd, exe, host, user);
        let decided = rank(p.decide(&build(&partial)).outcome);
        let all = completions(&partial);
        let known: Vec<u8> = all.iter().map(|c| rank(p.decide(&build(c)).outcome)).collect();
        // Sign: never more permissive than any way the unknown facts could turn out.
        prop_assert!(known.iter().all(|k| decided <= *k), "{text}\n{partial:?} {decided} {known:?}");
        // List: a key is hidden only if every completion denies.
        if !p.may_list(&build(&partial)) {
            prop_assert!(known.iter().all(|k| *k == 0), "{text}\n{partial:?} {known:?}");
        }
        // With every fact known, listing is exactly "not denied".
        for c in &all {
            let full = build(c);
            prop_assert_eq!(p.may_list(&full), p.decide(&full).outcome != Outcome::Deny);
        }
    }
}
