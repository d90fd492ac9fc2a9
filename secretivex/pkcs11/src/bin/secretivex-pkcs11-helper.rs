//! `secretivex-pkcs11-helper MODULE [SESSIONS]`: hosts one PKCS#11 module for the agent,
//! speaking the protocol of `secretivex_pkcs11::wire` on stdin/stdout. Started by the
//! agent, never by hand; exits when its input ends. Diagnostics go to stderr.

use std::path::PathBuf;

use anyhow::Context;

fn main() -> anyhow::Result<()> {
    // The helper holds the PIN and the module's state: no core dumps, no ptrace by
    // other processes of the user, and it dies with the agent.
    let _ = rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable);
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    // The agent may have died before the signal was armed: then the parent is no longer
    // the agent that started us (it says which it is), and we must not run on.
    if let Some(parent) = std::env::var_os("SECRETIVEX_PKCS11_PARENT") {
        let now = rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get());
        if parent.to_str() != Some(now.to_string().as_str()) {
            anyhow::bail!("started by a process that is gone");
        }
    }
    let mut args = std::env::args_os().skip(1);
    let module = PathBuf::from(
        args.next()
            .context("usage: secretivex-pkcs11-helper MODULE [SESSIONS]")?,
    );
    let workers = match args.next() {
        Some(n) => n
            .to_str()
            .and_then(|s| s.parse::<usize>().ok())
            .filter(|n| (1..=256).contains(n))
            .context("SESSIONS must be a number from 1 to 256")?,
        None => 4,
    };
    let m = secretivex_pkcs11::module::Module::new(&module);
    secretivex_pkcs11::helper::serve(m, workers, std::io::stdin().lock(), std::io::stdout())
        .context("helper protocol")
}
