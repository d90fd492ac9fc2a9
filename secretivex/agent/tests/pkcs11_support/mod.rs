//! SoftHSM2 tokens for the PKCS#11 tests: each test gets its own `SOFTHSM2_CONF` and token
//! directory under its temp dir, a token with RSA-2048, P-256, P-384 and Ed25519 keys made by
//! `pkcs11-tool`, and agents (ours or OpenSSH's) that see that token.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::common::cmd::{require_tool, run, write_script};
use crate::common::{AgentBuilder, AgentImpl, CmdOutput};

/// The user PIN of every test token.
pub const PIN: &str = "314159";
const SO_PIN: &str = "27182818";
/// The token label.
pub const LABEL: &str = "sx-test";

/// Where Debian and Ubuntu put the SoftHSM2 module.
const MODULES: [&str; 2] = [
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
];

/// A private SoftHSM2 installation: config file and token directory.
pub struct SoftHsm {
    pub conf: PathBuf,
    pub tokens: PathBuf,
    pub module: PathBuf,
    dir: PathBuf,
}

impl SoftHsm {
    /// Writes `dir/softhsm2.conf` with its token directory `dir/tokens`.
    #[track_caller]
    pub fn new(dir: &Path) -> SoftHsm {
        require_tool("softhsm2-util");
        require_tool("pkcs11-tool");
        let module = MODULES
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .unwrap_or_else(|| {
                panic!("SoftHSM2 module not found at {MODULES:?}: run scripts/install-test-deps")
            });
        let tokens = dir.join("tokens");
        std::fs::create_dir_all(&tokens).expect("token dir");
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .expect("softhsm2.conf");
        SoftHsm {
            conf,
            tokens,
            module,
            dir: dir.to_path_buf(),
        }
    }

    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SOFTHSM2_CONF", &self.conf);
        c
    }

    /// Initializes the token and makes its keys: RSA-2048 (id 01), P-256 (02), P-384 (05),
    /// Ed25519 (03).
    #[track_caller]
    /// Initializes a second, empty token labelled `label` whose user PIN is `pin`.
    pub fn init_other_token(&self, label: &str, pin: &str) {
        run(self.cmd("softhsm2-util").args([
            "--init-token",
            "--free",
            "--label",
            label,
            "--pin",
            pin,
            "--so-pin",
            SO_PIN,
        ]))
        .assert_ok();
    }

    pub fn init_token_with_keys(&self) {
        run(self.cmd("softhsm2-util").args([
            "--init-token",
            "--free",
            "--label",
            LABEL,
            "--pin",
            PIN,
            "--so-pin",
            SO_PIN,
        ]))
        .assert_ok();
        for (kind, id, label) in [
            ("rsa:2048", "01", "rsa"),
            ("EC:prime256v1", "02", "p256"),
            ("EC:secp384r1", "05", "p384"),
            ("EC:edwards25519", "03", "ed25519"),
        ] {
            let out = run(self
                .cmd("pkcs11-tool")
                .arg("--module")
                .arg(&self.module)
                .args([
                    "--login",
                    "--pin",
                    PIN,
                    "--token-label",
                    LABEL,
                    "--keypairgen",
                    "--key-type",
                    kind,
                    "--id",
                    id,
                    "--label",
                    label,
                ]));
            out.assert_ok();
        }
    }

    /// Imports a P-256 key made by openssl as a private key object plus its self-signed
    /// X.509 certificate (id 04), with no public key object, as PIV cards hold keys.
    /// Returns the key's OpenSSH public line.
    #[track_caller]
    pub fn import_key_with_certificate(&self) -> String {
        let d = &self.dir;
        let (pem, key_der, cert_der, pub_pem) = (
            d.join("c.pem"),
            d.join("c.key.der"),
            d.join("c.cert.der"),
            d.join("c.pub.pem"),
        );
        run(Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
            ])
            .arg(&pem))
        .assert_ok();
        run(Command::new("openssl")
            .args(["pkey", "-outform", "DER", "-in"])
            .arg(&pem)
            .arg("-out")
            .arg(&key_der))
        .assert_ok();
        run(Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&pem)
            .arg("-out")
            .arg(&pub_pem))
        .assert_ok();
        run(Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-new",
                "-subj",
                "/CN=sx-test",
                "-days",
                "1",
                "-outform",
                "DER",
                "-key",
            ])
            .arg(&pem)
            .arg("-out")
            .arg(&cert_der))
        .assert_ok();
        for (file, kind) in [(&key_der, "privkey"), (&cert_der, "cert")] {
            run(self
                .cmd("pkcs11-tool")
                .arg("--module")
                .arg(&self.module)
                .args([
                    "--login",
                    "--pin",
                    PIN,
                    "--token-label",
                    LABEL,
                    "--write-object",
                ])
                .arg(file)
                .args(["--type", kind, "--id", "04", "--label", "certified"]))
            .assert_ok();
        }
        let out = run(Command::new("ssh-keygen")
            .args(["-i", "-m", "PKCS8", "-f"])
            .arg(&pub_pem));
        out.assert_ok();
        out.stdout.trim().to_string()
    }

    /// Deletes the token (its directory goes).
    #[track_caller]
    pub fn delete_token(&self) {
        run(self
            .cmd("softhsm2-util")
            .args(["--delete-token", "--token", LABEL]))
        .assert_ok();
    }

    /// Copies the token directory aside (to re-create the same token later).
    #[track_caller]
    pub fn backup(&self) -> PathBuf {
        let to = self.dir.join("tokens.bak");
        run(Command::new("cp").arg("-a").arg(&self.tokens).arg(&to)).assert_ok();
        to
    }

    /// Re-creates the token from a backup made by [`SoftHsm::backup`].
    #[track_caller]
    pub fn restore(&self, backup: &Path) {
        let _ = std::fs::remove_dir_all(&self.tokens);
        run(Command::new("cp").arg("-a").arg(backup).arg(&self.tokens)).assert_ok();
    }

    /// An agent of `imp` that sees this token: ours gets the helper and may be given more
    /// arguments; OpenSSH's is allowed the module with `-P`.
    pub fn agent(&self, imp: AgentImpl, dir: &Path, extra: &[&str]) -> AgentBuilder {
        let b = AgentBuilder::with_impl(imp, dir).env("SOFTHSM2_CONF", &self.conf);
        match imp {
            AgentImpl::SecretiveX => {
                let mut args: Vec<&OsStr> =
                    vec![OsStr::new("--pkcs11-helper"), helper().as_os_str()];
                args.extend(extra.iter().map(OsStr::new));
                b.args(args)
            }
            AgentImpl::OpenSsh => b.args(["-P", "/usr/lib*/*"]),
        }
    }

    /// The askpass script answering `pin` (written on first use).
    pub fn pin_script(&self, pin: &str) -> PathBuf {
        let script = self.dir.join(format!("askpin-{pin}"));
        if !script.exists() {
            write_script(&script, &format!("echo {pin}"));
        }
        script
    }

    /// `ssh-add -s MODULE` with `pin` given through askpass.
    pub fn ssh_add_s(&self, agent: &crate::common::Agent, pin: &str) -> CmdOutput {
        self.ssh_add_s_with(agent, pin, &[])
    }

    /// `ssh-add EXTRA... -s MODULE` with `pin` given through askpass.
    pub fn ssh_add_s_with(
        &self,
        agent: &crate::common::Agent,
        pin: &str,
        extra: &[&str],
    ) -> CmdOutput {
        let script = self.pin_script(pin);
        let module = self.module.to_string_lossy().into_owned();
        let mut args = extra.to_vec();
        args.extend(["-s", module.as_str()]);
        agent.ssh_add_with_askpass(&script, &args)
    }
}

/// `secretivex-pkcs11-helper`, built next to the agent binary (built here when missing).
pub fn helper() -> &'static Path {
    static HELPER: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    HELPER.get_or_init(|| {
        let agent = PathBuf::from(env!("CARGO_BIN_EXE_secretivex-agent"));
        let path = agent.with_file_name("secretivex-pkcs11-helper");
        if !path.exists() {
            // `cargo test -p secretivex-agent` does not build other packages' binaries.
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let status = Command::new(cargo)
                .args([
                    "build",
                    "-p",
                    "secretivex-pkcs11",
                    "--bin",
                    "secretivex-pkcs11-helper",
                ])
                .status()
                .expect("run cargo build for the helper");
            assert!(status.success(), "building secretivex-pkcs11-helper failed");
        }
        assert!(path.exists(), "{} missing", path.display());
        path
    })
}

/// One SIGN_REQUEST on an open connection: the signature blob, or `None` on FAILURE.
pub fn sign(
    s: &mut UnixStream,
    blob: &[u8],
    data: &[u8],
    flags: u32,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut body = vec![13u8];
    for part in [blob, data] {
        body.extend_from_slice(&(part.len() as u32).to_be_bytes());
        body.extend_from_slice(part);
    }
    body.extend_from_slice(&flags.to_be_bytes());
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    s.write_all(&frame)?;
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let mut reply = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut reply)?;
    match reply.split_first() {
        Some((14, rest)) if rest.len() >= 4 => Ok(Some(rest[4..].to_vec())),
        _ => Ok(None),
    }
}

/// Public blobs of the agent's identities with comments starting with `pkcs11:`.
pub fn token_blobs(sock: &Path) -> Vec<(Vec<u8>, String)> {
    let mut s = crate::common::wire::connect(sock).expect("connect");
    crate::common::wire::identities_on(&mut s)
        .expect("list")
        .into_iter()
        .filter(|(_, c)| c.starts_with("pkcs11:"))
        .collect()
}

/// Process ids of the children of `pid` whose name starts with `secretivex-pkc`.
pub fn helper_pids(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(child) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let comm = stat
            .get(stat.find('(').map_or(0, |i| i + 1)..close)
            .unwrap_or("");
        let ppid = stat[close + 1..]
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) && comm.starts_with("secretivex-pkc") {
            out.push(child);
        }
    }
    out
}

/// The agent's metrics page, over its Unix socket.
pub fn scrape(sock: &std::path::Path) -> String {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(sock).expect("connect to metrics");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .expect("send");
    let mut page = String::new();
    s.read_to_string(&mut page).expect("read metrics");
    page
}

/// The value of the series named exactly `series` (0 when absent).
pub fn metric(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// An SSH `string`.
pub fn ssh_string(b: &[u8]) -> Vec<u8> {
    let mut v = (b.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(b);
    v
}

/// `kill -KILL PID`.
pub fn kill_process(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {pid} failed");
}

/// Counts of a load run.
#[derive(Default)]
pub struct Tally {
    pub ok: AtomicU64,
    pub failed: AtomicU64,
    pub verified: AtomicU64,
}

/// `clients` threads signing with `blob` over their own connections until `stop`; every
/// 16th signature of each client is verified. Failures are counted, not asserted here.
pub fn load(
    sock: PathBuf,
    blob: Vec<u8>,
    clients: usize,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..clients)
        .map(|c| {
            let (sock, blob, stop, tally) =
                (sock.clone(), blob.clone(), stop.clone(), tally.clone());
            std::thread::spawn(move || {
                let mut s = crate::common::wire::connect(&sock).expect("connect");
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let data = format!("client {c} request {n}").into_bytes();
                    match sign(&mut s, &blob, &data, 0) {
                        Ok(Some(sig)) => {
                            if n.is_multiple_of(16) {
                                secretivex_keys::verify_signature(&blob, &data, &sig)
                                    .expect("token signature does not verify");
                                tally.verified.fetch_add(1, Ordering::Relaxed);
                            }
                            tally.ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(None) => {
                            tally.failed.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => panic!("client {c}: connection failed: {e}"),
                    }
                    n += 1;
                }
            })
        })
        .collect()
}

pub fn blob_of(sock: &std::path::Path, key_type: &str) -> Vec<u8> {
    token_blobs(sock)
        .into_iter()
        .map(|(b, _)| b)
        .find(|b| b.get(4..4 + key_type.len()) == Some(key_type.as_bytes()))
        .unwrap_or_else(|| panic!("no {key_type} token key listed"))
}
