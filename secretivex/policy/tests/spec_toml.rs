//! The `[policy]` table read through `toml`: good files parse, bad values fail inside
//! `Deserialize` with the line and the field.

use secretivex_policy::{Action, PolicySpec, Scope};
use std::time::Duration;

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    policy: PolicySpec,
}

fn parse(text: &str) -> Result<PolicySpec, String> {
    toml::from_str::<File>(text)
        .map(|file| file.policy)
        .map_err(|e| e.to_string())
}

const FP: &str = "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU";

#[test]
fn the_documented_example_parses() {
    let text = format!(
        r#"
[policy]
default = "allow"
confirm_command = ["/usr/lib/openssh/ssh-askpass"]
confirm_timeout = "30s"

[[policy.rules]]
name = "no-prod-from-ci"
action = "confirm"
forwarded = true
window = "15m"
scope = "key+exe+dest"
key = {{ fingerprint = ["{FP}"], comment = ["deploy-*"] }}
peer = {{ uid = [1000], exe = ["/usr/bin/ssh"], name = ["ansible*"] }}
dest = {{ host_key = ["{FP}"], user = ["root"] }}
"#
    );
    let spec = parse(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(spec.default, Action::Allow);
    assert_eq!(
        spec.confirm_timeout.map(|d| d.get()),
        Some(Duration::from_secs(30))
    );
    let rule = spec.rules.first().unwrap_or_else(|| panic!("no rule"));
    assert_eq!(rule.name.as_deref(), Some("no-prod-from-ci"));
    assert_eq!(rule.action, Action::Confirm);
    assert_eq!(rule.forwarded, Some(true));
    assert_eq!(rule.window.map(|d| d.get()), Some(Duration::from_secs(900)));
    assert_eq!(rule.scope, Some(Scope::KeyExeDest));
    assert_eq!(rule.key.fingerprint.len(), 1);
    assert_eq!(rule.peer.uid, vec![1000]);
    assert_eq!(rule.dest.user.first().map(|g| g.as_str()), Some("root"));
}

#[test]
fn an_empty_table_is_allow_all() {
    let spec = parse("[policy]\n").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(spec, PolicySpec::default());
}

/// Each bad value is reported with its line and names the offending value or field.
#[test]
fn bad_values_name_line_and_field() {
    let cases: &[(&str, &str, &str)] = &[
        ("[policy]\ndefault = \"maybe\"\n", "line 2", "maybe"),
        ("[policy]\nconfirm_timeout = \"30\"\n", "line 2", "unit"),
        (
            "[policy]\nconfirm_command = []\n",
            "line 2",
            "empty command",
        ),
        ("[policy]\ncolour = 1\n", "line 2", "colour"),
        (
            "[policy]\n[[policy.rules]]\naction = \"deny\"\nkey = { fingerprint = [\"MD5:aa\"] }\n",
            "line 4",
            "SHA256:",
        ),
        (
            "[policy]\n[[policy.rules]]\naction = \"deny\"\npeer = { exe = [\"\"] }\n",
            "line 4",
            "empty pattern",
        ),
        (
            "[policy]\n[[policy.rules]]\naction = \"deny\"\npeer = { pid = [1] }\n",
            "line 4",
            "pid",
        ),
        (
            "[policy]\n[[policy.rules]]\naction = \"deny\"\nwindow = \"5m\"\n",
            "line 2",
            "window",
        ),
        (
            "[policy]\n[[policy.rules]]\naction = \"confirm\"\nscope = \"key\"\n",
            "line 4",
            "key+exe",
        ),
        (
            "[policy]\n[[policy.rules]]\naction = \"allow\"\nhost = \"x\"\n",
            "line 4",
            "host",
        ),
        (
            "[policy]\n[[policy.rules]]\nname = \"x\"\n",
            "line 2",
            "action",
        ),
    ];
    for (text, line, word) in cases {
        let message = match parse(text) {
            Ok(spec) => panic!("accepted {text:?} as {spec:?}"),
            Err(message) => message,
        };
        assert!(message.contains(line), "{text:?}: {message}");
        assert!(message.contains(word), "{text:?}: {message}");
    }
}

#[test]
fn serializes_back_to_the_same_spec() {
    let text = format!(
        "[policy]\ndefault = \"deny\"\nconfirm_timeout = \"1m30s\"\n[[policy.rules]]\naction = \"confirm\"\nwindow = \"1h\"\nscope = \"key+exe\"\nkey = {{ fingerprint = [\"{FP}\"] }}\n"
    );
    let spec = parse(&text).unwrap_or_else(|e| panic!("{e}"));
    #[derive(serde::Serialize)]
    struct Out<'a> {
        policy: &'a PolicySpec,
    }
    let written = toml::to_string(&Out { policy: &spec }).unwrap_or_else(|e| panic!("{e}"));
    let again = parse(&written).unwrap_or_else(|e| panic!("{e}\n{written}"));
    assert_eq!(again, spec);
}
