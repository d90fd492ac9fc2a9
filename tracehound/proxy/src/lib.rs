//! Tracehound as a reverse proxy: hyper in front of an upstream, the tower layer inside

/// Command-line arguments of `tracehound proxy` (placeholder until the proxy lands).
#[derive(Debug, clap::Args)]
pub struct ProxyArgs {
    /// Address to listen on.
    #[arg(long)]
    pub listen: std::net::SocketAddr,
    /// Upstream base URL.
    #[arg(long)]
    pub upstream: String,
}

/// Runs the proxy until it is stopped (blocking; builds its own runtime).
pub fn run(args: ProxyArgs) -> anyhow::Result<()> {
    anyhow::bail!("the proxy is not built yet ({args:?})")
}
