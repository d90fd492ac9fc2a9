//! Decodes what the real `ssh` client sends to an agent while it logs in to a
//! real `sshd` (run in inetd mode through `ProxyCommand`, so no port is opened):
//! the `session-bind@openssh.com` extension and the sign request whose data is a
//! host-bound publickey `USERAUTH_REQUEST`. The recorder lists one key and
//! refuses to sign, so the login fails after the interesting frames are sent.

mod common;

use std::process::{Command, Stdio};
use std::sync::Arc;

use common::openssh::{keygen, pub_blob};
use common::recorder::Recorder;
use secretivex_proto::{
    msg, parse_userauth_request, ExtensionRequest, Identity, Request, Response,
};

#[test]
fn session_bind_and_userauth_from_real_ssh() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let user = String::from_utf8(Command::new("id").arg("-un").output().expect("id").stdout)
        .expect("user name")
        .trim()
        .to_owned();
    let key = keygen(d, "client", &["-t", "ed25519"]);
    let host = keygen(d, "hostkey", &["-t", "ed25519"]);
    let key_blob = pub_blob(&key.with_extension("pub"));
    let host_blob = pub_blob(&host.with_extension("pub"));
    std::fs::copy(key.with_extension("pub"), d.join("authorized_keys")).unwrap();
    let config = d.join("sshd_config");
    std::fs::write(
        &config,
        format!(
            "HostKey {host}\nAuthorizedKeysFile {dir}/authorized_keys\nStrictModes no\n\
             PidFile none\nUsePAM no\nPermitRootLogin prohibit-password\nLogLevel ERROR\n",
            host = host.display(),
            dir = d.display(),
        ),
    )
    .unwrap();

    // sshd run by root needs its privilege-separation directory, which Debian
    // creates only when the service starts; create it as the service would. (A
    // non-root sshd does not use it, and then creating it fails harmlessly.)
    let privsep = std::path::Path::new("/run/sshd");
    if !privsep.exists() {
        let _ = std::fs::create_dir_all(privsep);
    }

    let listed = key_blob.clone();
    let rec = Recorder::start(
        d,
        Arc::new(move |body: &[u8]| match Request::decode(body) {
            Ok(Request::RequestIdentities) => {
                let mut out = Vec::new();
                Response::Identities(vec![Identity {
                    key_blob: listed.clone(),
                    comment: "test".into(),
                }])
                .encode_body(&mut out);
                out
            }
            // Accept the bind so ssh uses the host-bound method, refuse to sign.
            Ok(Request::Extension(ExtensionRequest::SessionBind(_))) => vec![msg::SUCCESS],
            _ => vec![msg::FAILURE],
        }),
    );
    let out = Command::new("ssh")
        .args(["-F", "/dev/null", "-o", "BatchMode=yes"])
        .arg("-o")
        .arg(format!(
            "ProxyCommand=/usr/sbin/sshd -i -f {}",
            config.display()
        ))
        .arg("-o")
        .arg(format!("IdentityAgent={}", rec.path.display()))
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            d.join("known_hosts").display()
        ))
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "PasswordAuthentication=no",
            "-o",
            "KbdInteractiveAuthentication=no",
            "-o",
            "IdentitiesOnly=no",
        ])
        .arg(format!("{user}@secretivex-test"))
        .arg("true")
        .stdin(Stdio::null())
        .output()
        .expect("ssh is installed");
    let frames = rec.finish();
    let reqs: Vec<Request> = frames
        .iter()
        .map(|b| {
            let r = Request::decode(b).expect("decode ssh frame");
            let mut again = Vec::new();
            r.encode_body(&mut again);
            assert_eq!(&again, b, "re-encoding differs for {r:?}");
            r
        })
        .collect();
    let stderr = String::from_utf8_lossy(&out.stderr);

    let bind = reqs
        .iter()
        .find_map(|r| match r {
            Request::Extension(ExtensionRequest::SessionBind(b)) => Some(b),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no session-bind in {reqs:?}; ssh said {stderr}"));
    assert_eq!(bind.host_key, host_blob);
    assert!(!bind.is_forwarding);
    assert!(!bind.session_id.is_empty() && !bind.signature.is_empty());

    let sign = reqs
        .iter()
        .find_map(|r| match r {
            Request::Sign(s) => Some(s),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no sign request in {reqs:?}; ssh said {stderr}"));
    assert_eq!(sign.key_blob, key_blob);
    let ua = parse_userauth_request(&sign.data)
        .unwrap_or_else(|| panic!("sign data is not a userauth request"));
    assert_eq!(ua.user, user);
    assert_eq!(ua.service, "ssh-connection");
    assert_eq!(ua.method, "publickey-hostbound-v00@openssh.com");
    assert_eq!(ua.algorithm, "ssh-ed25519");
    assert_eq!(ua.key_blob, key_blob);
    assert_eq!(ua.server_host_key.as_deref(), Some(host_blob.as_slice()));
    assert_eq!(ua.session_id, bind.session_id);
}
