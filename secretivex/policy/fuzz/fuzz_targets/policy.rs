//! Feeds arbitrary text through the `[policy]` parser (fingerprints, globs, durations,
//! actions, scopes), compiles what parses, and evaluates it against requests built from
//! the same bytes. Nothing may panic; with every fact known, a key is listed exactly when
//! signing with it is not denied; a parsed policy survives serialize → parse unchanged.

#![no_main]

use libfuzzer_sys::fuzz_target;
use secretivex_policy::{Fingerprint, Glob, HumanDuration, Outcome, Policy, PolicySpec, Request};

#[derive(serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct File {
    policy: PolicySpec,
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The validated scalar types on their own.
    let _ = text.parse::<HumanDuration>();
    let _ = text.parse::<Fingerprint>();
    if let Ok(glob) = text.parse::<Glob>() {
        let _ = glob.matches(text);
        let _ = glob.matches("/usr/bin/ssh");
    }
    let Ok(file) = toml::from_str::<File>(text) else {
        return;
    };
    if let Ok(written) = toml::to_string(&file) {
        let again = toml::from_str::<File>(&written).map(|f| f.policy);
        assert_eq!(again.as_ref().ok(), Some(&file.policy), "{written}");
    }
    let Ok(policy) = Policy::compile(&file.policy) else {
        return;
    };
    let digest = [data.len() as u8; 32];
    let words: Vec<&str> = text
        .split(|c: char| c == '"' || c.is_whitespace())
        .collect();
    let pick = |i: usize| words.get(i % words.len().max(1)).copied();
    for (i, forwarded) in [(0, false), (1, true), (2, false)] {
        let known = Request {
            key_digest: Some(&digest),
            key_comment: pick(i),
            peer_uid: Some(i as u32),
            peer_exe: pick(i + 1),
            peer_name: pick(i + 2),
            dest_host_key: Some(&digest),
            dest_user: pick(i + 3),
            forwarded: Some(forwarded),
        };
        if known.key_comment.is_some()
            && known.peer_exe.is_some()
            && known.peer_name.is_some()
            && known.dest_user.is_some()
        {
            let denied = policy.decide(&known).outcome == Outcome::Deny;
            assert_eq!(policy.may_list(&known), !denied);
        }
        let unknown = Request {
            key_digest: Some(&digest),
            ..Request::default()
        };
        let _ = policy.decide(&unknown);
        let _ = policy.may_list(&unknown);
        let _ = policy.explain(&known).to_string();
    }
});
