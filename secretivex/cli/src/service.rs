//! `secretivex service install|uninstall`: the agent as a systemd user service with socket
//! activation.
//!
//! The unit templates live in `secretivex/agent/dist/systemd/` and are compiled in, so the
//! installed units always match this build. `install` fills in the agent's absolute path and
//! the configuration file, writes both units (atomically, with a marker line that
//! `uninstall` looks for), creates an empty configuration file if there is none (the unit
//! names it with `--config`, and the agent refuses a named file that is missing), then asks
//! `systemctl --user` to reload and enable the socket. Without a user manager (containers,
//! SSH sessions without lingering) the files are still written and the missing step is
//! printed for the user to run.

mod systemctl;
mod units;

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::Outcome;
use systemctl::Systemctl;
use units::{UnitFiles, SERVICE_NAME, SOCKET_NAME};

/// Subcommands of `secretivex service`.
#[derive(Debug, Subcommand)]
pub enum ServiceCmd {
    /// Write the systemd user units (socket + service), then reload systemd and enable the
    /// socket. Exit 1 when the units were written but could not be enabled.
    Install(InstallArgs),
    /// Stop and disable the units and remove the files `install` wrote (the configuration
    /// file is kept).
    Uninstall(UninstallArgs),
}

/// Options of `service install`.
#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Unit directory (default: $XDG_CONFIG_HOME/systemd/user, or ~/.config/systemd/user).
    /// Units written elsewhere are not enabled: the user manager does not read them.
    #[arg(long, alias = "prefix", value_name = "DIR")]
    pub unit_dir: Option<PathBuf>,
    /// The agent executable (default: `secretivex-agent` next to this program, else on PATH).
    #[arg(long, value_name = "PATH")]
    pub agent_path: Option<PathBuf>,
    /// Configuration file the service runs with (default:
    /// $XDG_CONFIG_HOME/secretivex/agent.toml); created empty when missing.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Only write the files; do not run systemctl.
    #[arg(long)]
    pub no_enable: bool,
}

/// Options of `service uninstall`.
#[derive(Debug, Args)]
pub struct UninstallArgs {
    /// Unit directory the units were installed to (default as for `install`).
    #[arg(long, alias = "prefix", value_name = "DIR")]
    pub unit_dir: Option<PathBuf>,
    /// Remove unit files of these names even without the marker `install` writes.
    #[arg(long)]
    pub force: bool,
    /// Only remove the files; do not run systemctl.
    #[arg(long)]
    pub no_disable: bool,
}

/// Runs the subcommand.
pub fn run(cmd: ServiceCmd) -> anyhow::Result<Outcome> {
    let env = Env::from_process();
    let mut out = std::io::stdout().lock();
    match cmd {
        ServiceCmd::Install(args) => install(&args, &env, &mut out),
        ServiceCmd::Uninstall(args) => uninstall(&args, &env, &mut out),
    }
}

/// The environment the paths are resolved from (read once, passed down for clarity).
struct Env {
    xdg_config_home: Option<PathBuf>,
    home: Option<PathBuf>,
    xdg_runtime_dir: Option<PathBuf>,
    systemctl: Systemctl,
}

impl Env {
    fn from_process() -> Self {
        // Empty values count as unset, as the XDG base directory spec says; so do relative
        // ones (the spec: "all paths … must be absolute", others are to be ignored).
        let absolute = |name: &str| {
            std::env::var_os(name)
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
        };
        Env {
            xdg_config_home: absolute("XDG_CONFIG_HOME"),
            home: absolute("HOME"),
            xdg_runtime_dir: absolute("XDG_RUNTIME_DIR"),
            systemctl: Systemctl::from_env(),
        }
    }

    /// `$XDG_CONFIG_HOME`, else `$HOME/.config`.
    fn config_home(&self) -> anyhow::Result<PathBuf> {
        match (&self.xdg_config_home, &self.home) {
            (Some(dir), _) => Ok(dir.clone()),
            (None, Some(home)) => Ok(home.join(".config")),
            (None, None) => anyhow::bail!("neither XDG_CONFIG_HOME nor HOME is set"),
        }
    }

    /// Where the user manager reads user units from (the first directory of its search path
    /// that belongs to the user).
    fn default_unit_dir(&self) -> anyhow::Result<PathBuf> {
        Ok(self.config_home()?.join("systemd").join("user"))
    }

    fn default_config(&self) -> anyhow::Result<PathBuf> {
        Ok(self.config_home()?.join("secretivex").join("agent.toml"))
    }
}

fn install(
    args: &InstallArgs,
    env: &Env,
    out: &mut impl std::io::Write,
) -> anyhow::Result<Outcome> {
    let default_dir = env.default_unit_dir()?;
    let unit_dir = args.unit_dir.clone().unwrap_or_else(|| default_dir.clone());
    let unit_dir = absolute(&unit_dir)?;
    let agent = match &args.agent_path {
        Some(p) => absolute(p)?,
        None => find_agent()?,
    };
    check_executable(&agent)?;
    let config = match &args.config {
        Some(p) => absolute(p)?,
        None => env.default_config()?,
    };

    let units = UnitFiles::render(&agent, &config)?;
    std::fs::create_dir_all(&unit_dir)
        .with_context(|| format!("create unit directory {}", unit_dir.display()))?;
    for (name, text) in units.files() {
        let path = unit_dir.join(name);
        units::write_atomically(&path, text)?;
        writeln!(out, "wrote {}", path.display())?;
    }
    if ensure_config(&config)? {
        writeln!(
            out,
            "created {} (empty: the agent runs with its built-in defaults until you edit it)",
            config.display()
        )?;
    }

    let mut outcome = Outcome::Ok;
    if args.no_enable {
        writeln!(out, "not enabled (--no-enable); to start it:")?;
        write_manual_steps(out)?;
    } else if !same_dir(&unit_dir, &default_dir) {
        writeln!(
            out,
            "not enabled: {} is not the user manager's unit directory ({}); link or copy the \
             units there, then run:",
            unit_dir.display(),
            default_dir.display()
        )?;
        write_manual_steps(out)?;
    } else {
        let steps: [&[&str]; 2] = [&["daemon-reload"], &["enable", "--now", SOCKET_NAME]];
        for step in steps {
            if let Err(e) = env.systemctl.user(step) {
                writeln!(out, "{e}")?;
                writeln!(out, "the units are written but not enabled; once a user manager runs (`loginctl enable-linger` keeps one running without a login), run:")?;
                write_manual_steps(out)?;
                outcome = Outcome::Negative;
                break;
            }
            writeln!(out, "ran {}", env.systemctl.describe(step))?;
        }
    }
    write_socket_hint(out, env)?;
    Ok(outcome)
}

fn uninstall(
    args: &UninstallArgs,
    env: &Env,
    out: &mut impl std::io::Write,
) -> anyhow::Result<Outcome> {
    let default_dir = env.default_unit_dir()?;
    let unit_dir = absolute(&args.unit_dir.clone().unwrap_or_else(|| default_dir.clone()))?;
    let present: Vec<PathBuf> = [SOCKET_NAME, SERVICE_NAME]
        .iter()
        .map(|name| unit_dir.join(name))
        .filter(|p| p.symlink_metadata().is_ok())
        .collect();
    if present.is_empty() {
        writeln!(out, "nothing to remove in {}", unit_dir.display())?;
        return Ok(Outcome::Ok);
    }
    // Check every file before touching any, so a refusal leaves everything as it was.
    if !args.force {
        for path in &present {
            if !units::is_ours(path)? {
                anyhow::bail!(
                    "{} was not written by `secretivex service install`; remove it yourself or \
                     pass --force",
                    path.display()
                );
            }
        }
    }

    let mut outcome = Outcome::Ok;
    let manage = !args.no_disable && same_dir(&unit_dir, &default_dir);
    if manage {
        let stop = ["disable", "--now", SOCKET_NAME, SERVICE_NAME];
        match env.systemctl.user(&stop) {
            Ok(()) => writeln!(out, "ran {}", env.systemctl.describe(&stop))?,
            Err(e) => {
                writeln!(out, "{e}")?;
                writeln!(
                    out,
                    "removing the files anyway; a running agent keeps running until stopped"
                )?;
                outcome = Outcome::Negative;
            }
        }
    }
    for path in &present {
        std::fs::remove_file(path).with_context(|| format!("remove {}", path.display()))?;
        writeln!(out, "removed {}", path.display())?;
    }
    if manage && outcome == Outcome::Ok {
        let reload = ["daemon-reload"];
        match env.systemctl.user(&reload) {
            Ok(()) => writeln!(out, "ran {}", env.systemctl.describe(&reload))?,
            Err(e) => {
                writeln!(out, "{e}")?;
                outcome = Outcome::Negative;
            }
        }
    }
    Ok(outcome)
}

/// Prints the systemctl commands that enable the units, for the user to run by hand.
fn write_manual_steps(out: &mut impl std::io::Write) -> std::io::Result<()> {
    writeln!(out, "    systemctl --user daemon-reload")?;
    writeln!(out, "    systemctl --user enable --now {SOCKET_NAME}")
}

/// The `SSH_AUTH_SOCK` line for the user's shell profile.
fn write_socket_hint(out: &mut impl std::io::Write, env: &Env) -> std::io::Result<()> {
    writeln!(out, "point SSH clients at the agent (e.g. in ~/.profile):")?;
    writeln!(
        out,
        "    export SSH_AUTH_SOCK=\"$XDG_RUNTIME_DIR/secretivex/agent.sock\""
    )?;
    if let Some(dir) = &env.xdg_runtime_dir {
        writeln!(
            out,
            "    (here: {})",
            dir.join("secretivex").join("agent.sock").display()
        )?;
    }
    writeln!(
        out,
        "confirmation and passphrase prompts need the session's display in the user manager: \
         systemctl --user import-environment DISPLAY WAYLAND_DISPLAY"
    )
}

/// Creates an empty configuration file (with comments only) when none exists; returns whether
/// it did. The unit passes `--config FILE`, and the agent refuses a named file that is missing.
fn ensure_config(path: &Path) -> anyhow::Result<bool> {
    if path.exists() {
        return Ok(false);
    }
    if let Some(dir) = path.parent() {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("create {}", dir.display()))?;
    }
    units::write_new_private(path, units::STARTER_CONFIG)?;
    Ok(true)
}

/// `secretivex-agent` next to this program (an installed or built pair), else on `PATH`.
fn find_agent() -> anyhow::Result<PathBuf> {
    const NAME: &str = "secretivex-agent";
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(NAME)))
        .filter(|p| is_executable(p));
    if let Some(p) = beside {
        return Ok(p);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(NAME))
        .find(|p| p.is_absolute() && is_executable(p))
        .ok_or_else(|| {
            anyhow::anyhow!("{NAME} not found next to this program or on PATH; pass --agent-path")
        })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn check_executable(path: &Path) -> anyhow::Result<()> {
    if is_executable(path) {
        Ok(())
    } else {
        anyhow::bail!("agent {} is not an executable file", path.display())
    }
}

/// `path` made absolute against the current directory (units need absolute paths).
fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    Ok(std::env::current_dir()
        .context("current directory")?
        .join(path))
}

/// Whether two directories are the same (after resolving symlinks when both exist).
fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}
