//! `[[pkcs11]]` modules of the configuration, loaded at start-up: the PIN comes from the
//! table's `pin_file` or, without one, from askpass; a module whose token is not there yet
//! is tried again every few seconds until it loads; a PIN the token refuses, or any other
//! login failure (which may have counted a PIN try), is never tried again (an error in
//! the log says so).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use secretivex_config::Pkcs11Spec;
use zeroize::Zeroizing;

use crate::pkcs11_store::{add_module, ModuleConstraints, Origin as AddOrigin, Pkcs11Error};
use crate::Agent;

/// How often a configured module whose token is absent is tried again.
const RETRY: Duration = Duration::from_secs(5);

/// Reads a PIN file: its first line, without the line end.
pub fn read_pin_file(path: &Path) -> std::io::Result<Zeroizing<Vec<u8>>> {
    let text = Zeroizing::new(std::fs::read(path)?);
    let line = text.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    Ok(Zeroizing::new(line.to_vec()))
}

/// Starts loading every configured module in the background.
pub fn start(agent: &Arc<Agent>, specs: Vec<Pkcs11Spec>) {
    for spec in specs {
        let agent = agent.clone();
        tokio::spawn(async move { load(agent, spec).await });
    }
}

async fn load(agent: Arc<Agent>, spec: Pkcs11Spec) {
    let module = spec.module.to_string_lossy().into_owned();
    let askpass = crate::confirm::askpass_program(agent.config.askpass.as_deref());
    let pin_file = spec.pin_file.clone();
    let prompt = format!("Enter PIN for PKCS#11 module {module}: ");
    let pin = tokio::task::spawn_blocking(move || match pin_file {
        Some(f) => read_pin_file(&f).map_err(|e| format!("pin_file {}: {e}", f.display())),
        None => crate::askpass::read_passphrase(&askpass, &prompt).map_err(|e| e.to_string()),
    })
    .await;
    let pin = match pin {
        Ok(Ok(pin)) => pin,
        Ok(Err(e)) => {
            tracing::error!(%module, error = %e, "no PIN for configured PKCS#11 module; not loading it");
            return;
        }
        Err(_) => return,
    };
    let constraints = ModuleConstraints {
        lifetime: spec.lifetime.map(|l| l.get()),
        confirm: spec.confirm,
        destinations: Vec::new(),
    };
    let mut warned = false;
    loop {
        match add_module(
            &agent,
            &module,
            pin.clone(),
            constraints.clone(),
            AddOrigin::Config,
        )
        .await
        {
            Ok(n) => {
                tracing::info!(%module, keys = n, "configured PKCS#11 module loaded");
                return;
            }
            Err(e @ Pkcs11Error::Login { code, .. }) if code.is_fatal_login() => {
                tracing::error!(%module, error = %e, "configured PKCS#11 module refused its PIN; not trying it again");
                return;
            }
            Err(
                e @ (Pkcs11Error::AlreadyLoaded(_)
                | Pkcs11Error::Path(..)
                | Pkcs11Error::NotAllowed(_)),
            ) => {
                tracing::error!(%module, error = %e, "configured PKCS#11 module not loaded");
                return;
            }
            Err(e) => {
                if !warned {
                    tracing::warn!(%module, error = %e, "configured PKCS#11 module not ready; retrying every {RETRY:?}");
                    warned = true;
                }
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}
