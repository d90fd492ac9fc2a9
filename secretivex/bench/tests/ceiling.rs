//! `secretivex-bench ceiling` generates a key of each type, signs with the agent's backend
//! and reports per-core and all-core figures.

mod common;

use std::process::Command;

#[test]
fn ceiling_reports_every_key_type() {
    let dir = tempfile::tempdir().unwrap();
    for kind in ["ed25519", "ecdsa-p256", "rsa-3072"] {
        let json = dir.path().join(format!("{kind}.json"));
        let out = Command::new(common::bench_bin())
            .args([
                "ceiling",
                "--key-type",
                kind,
                "--seconds",
                "0.2",
                "--threads",
                "2",
            ])
            .arg("--json")
            .arg(&json)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{kind}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("ceiling {kind}:")));
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        assert_eq!(v["key_type"], kind);
        assert_eq!(v["threads"], 2);
        assert!(v["signs_per_sec_per_core"].as_f64().unwrap() > 0.0, "{v}");
        assert!(v["signs_per_sec_all_cores"].as_f64().unwrap() > 0.0, "{v}");
        assert!(v["us_per_sign"].as_f64().unwrap() > 0.0, "{v}");
    }
}
