//! `tracehound proxy` flags: parsing, mapping onto the configuration, and refusals.

use clap::Parser;
use http::StatusCode;
use tracehound_proxy::ProxyArgs;
use tracehound_tower::ForwardedHeader;

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    args: ProxyArgs,
}

fn parse(extra: &[&str]) -> Result<ProxyArgs, clap::Error> {
    let base = [
        "proxy",
        "--listen",
        "127.0.0.1:8080",
        "--upstream",
        "http://127.0.0.1:3000",
    ];
    Cli::try_parse_from(base.iter().chain(extra)).map(|cli| cli.args)
}

#[test]
fn flags_map_onto_the_layer_and_agent_settings() {
    let args = parse(&[
        "--trusted-proxy",
        "10.0.0.0/8",
        "--trusted-proxy",
        "::1",
        "--forwarded-header",
        "forwarded",
        "--waf-header",
        "X-Waf-Verdict",
        "--max-body-bytes",
        "4096",
        "--quarantine-status",
        "451",
        "--rate-limit",
        "7",
        "--rate-window-ms",
        "1000",
        "--rate-block-ms",
        "0",
        "--detector-url",
        "http://127.0.0.1:9/judge",
        "--detector-timeout-ms",
        "25",
    ])
    .expect("valid flags");
    let config = args.to_config().expect("valid settings");
    assert_eq!(config.listen.port(), 8080);
    assert_eq!(config.upstream, "http://127.0.0.1:3000");
    assert_eq!(config.layer.trusted_proxies.len(), 2);
    assert!(config.layer.is_trusted("10.9.8.7".parse().expect("ip")));
    assert!(config.layer.is_trusted("::1".parse().expect("ip")));
    assert!(!config.layer.is_trusted("127.0.0.1".parse().expect("ip")));
    assert_eq!(config.layer.forwarded_header, ForwardedHeader::Forwarded);
    assert_eq!(config.layer.waf_header.as_str(), "x-waf-verdict");
    assert_eq!(config.layer.max_body_bytes, 4096);
    assert_eq!(
        config.layer.quarantine_status,
        StatusCode::from_u16(451).expect("status")
    );
    assert_eq!(config.layer.detector_timeout_ms, 25);
    assert_eq!(config.agent.rate_limit.max_requests, 7);
    assert_eq!(config.agent.rate_limit.window_ms, 1000);
    assert_eq!(config.agent.rate_limit.block_duration_ms, 0);
    assert_eq!(
        config.detector_url.as_deref(),
        Some("http://127.0.0.1:9/judge")
    );
}

#[test]
fn bad_values_are_refused() {
    assert!(parse(&["--trusted-proxy", "10.0.0.0/40"]).is_err());
    assert!(parse(&["--trusted-proxy", "not-an-ip"]).is_err());
    for flags in [
        &["--waf-header", "bad header"][..],
        &["--quarantine-status", "200"],
        &["--quarantine-status", "99"],
        &["--max-body-bytes", "0"],
        &["--forwarded-header", "via"],
        &["--busy-poll-us", "10001"],
    ] {
        let args = parse(flags).expect("parses");
        assert!(args.to_config().is_err(), "{flags:?} accepted");
    }
}

#[test]
fn busy_polling_follows_the_host_unless_the_flag_says_otherwise() {
    use tracehound_proxy::{HostFacts, DEFAULT_BUSY_POLL};
    let vm = HostFacts {
        cpu_quota: None,
        virtual_machine: true,
        guest_halt_polling: false,
    };
    let limited = HostFacts {
        cpu_quota: Some(1.5),
        ..vm.clone()
    };
    let metal = HostFacts {
        virtual_machine: false,
        ..vm.clone()
    };
    let args = parse(&[]).expect("parses");
    let on = |host: &HostFacts| args.to_config_on(host).expect("valid").busy_poll;
    assert_eq!(on(&vm), Some(DEFAULT_BUSY_POLL));
    assert_eq!(on(&limited), None);
    assert_eq!(on(&metal), None);
    let forced = parse(&["--busy-poll-us", "50"]).expect("parses");
    assert_eq!(
        forced.to_config_on(&metal).expect("valid").busy_poll,
        Some(std::time::Duration::from_micros(50)),
        "the flag wins"
    );
    let off = parse(&["--busy-poll-us", "0"]).expect("parses");
    assert_eq!(off.to_config_on(&vm).expect("valid").busy_poll, None);

    let zero = parse(&["--busy-poll-us", "0"]).expect("parses");
    assert_eq!(zero.to_config().expect("valid").busy_poll, None);
    let on = parse(&["--busy-poll-us", "250"]).expect("parses");
    assert_eq!(
        on.to_config().expect("valid").busy_poll,
        Some(std::time::Duration::from_micros(250))
    );

    // Not a tuning flag: it is kept next to --config.
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("proxy.toml");
    std::fs::write(&path, "[rate_limit]\nmax_requests = 3\n").expect("write");
    let path_text = path.to_str().expect("utf-8 path");
    let config = parse(&["--config", path_text, "--busy-poll-us", "100"])
        .expect("parses")
        .to_config()
        .expect("valid");
    assert_eq!(
        config.busy_poll,
        Some(std::time::Duration::from_micros(100))
    );
    assert_eq!(config.agent.rate_limit.max_requests, 3);
}

#[test]
fn a_config_file_replaces_the_tuning_flags() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("proxy.toml");
    std::fs::write(
        &path,
        "detector_url = \"http://127.0.0.1:9/j\"\n[layer]\ntrusted_proxies = [\"192.0.2.0/24\"]\n[rate_limit]\nmax_requests = 3\n",
    )
    .expect("write");
    let path_text = path.to_str().expect("utf-8 path");
    let config = parse(&["--config", path_text])
        .expect("parses")
        .to_config()
        .expect("valid file");
    assert_eq!(config.agent.rate_limit.max_requests, 3);
    assert!(config.layer.is_trusted("192.0.2.9".parse().expect("ip")));
    assert_eq!(config.detector_url.as_deref(), Some("http://127.0.0.1:9/j"));

    // A tuning flag next to --config is refused rather than silently losing to the file.
    assert!(parse(&["--config", path_text, "--rate-limit", "5"]).is_err());

    std::fs::write(&path, "[layer]\nmax_body = 1\n").expect("write");
    let error = parse(&["--config", path_text])
        .expect("parses")
        .to_config()
        .expect_err("unknown key refused");
    let message = error.to_string();
    assert!(
        message.contains("proxy.toml") && message.contains("line 2"),
        "{message}"
    );
}
