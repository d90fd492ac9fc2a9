//! Where a client connects: a Unix socket path or a loopback TCP URL.

use std::net::SocketAddr;
use std::path::PathBuf;

/// A parsed connection target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A Unix domain socket at this path.
    Unix(PathBuf),
    /// An `http://HOST:PORT` URL (plaintext HTTP/2; the daemon only listens on loopback).
    Http(String),
}

impl Target {
    /// Parses `unix:PATH`, `unix://PATH`, `http://HOST:PORT`, `HOST:PORT` (an IP socket
    /// address) or a bare filesystem path.
    pub fn parse(target: &str) -> Result<Self, String> {
        let target = target.trim();
        if target.is_empty() {
            return Err("empty target".to_owned());
        }
        if let Some(rest) = target.strip_prefix("unix:") {
            // gRPC's naming: `unix:relative/or/abs` and `unix:///absolute`.
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() {
                return Err("unix: target without a path".to_owned());
            }
            return Ok(Self::Unix(PathBuf::from(path)));
        }
        if target.starts_with("http://") {
            return Ok(Self::Http(target.to_owned()));
        }
        if target.starts_with("https://") {
            return Err(
                "TLS is not supported: tracehoundd listens on a Unix socket or loopback TCP"
                    .to_owned(),
            );
        }
        if target.parse::<SocketAddr>().is_ok() {
            return Ok(Self::Http(format!("http://{target}")));
        }
        if target.contains("://") {
            return Err(format!("unsupported scheme in {target:?}"));
        }
        Ok(Self::Unix(PathBuf::from(target)))
    }
}

#[cfg(test)]
mod tests {
    use super::Target;
    use std::path::PathBuf;

    #[test]
    fn parses_every_form() {
        assert_eq!(
            Target::parse("unix:/run/th.sock"),
            Ok(Target::Unix(PathBuf::from("/run/th.sock")))
        );
        assert_eq!(
            Target::parse("unix:///run/th.sock"),
            Ok(Target::Unix(PathBuf::from("/run/th.sock")))
        );
        assert_eq!(
            Target::parse("rel/th.sock"),
            Ok(Target::Unix(PathBuf::from("rel/th.sock")))
        );
        assert_eq!(
            Target::parse("http://127.0.0.1:7000"),
            Ok(Target::Http("http://127.0.0.1:7000".to_owned()))
        );
        assert_eq!(
            Target::parse("127.0.0.1:7000"),
            Ok(Target::Http("http://127.0.0.1:7000".to_owned()))
        );
        assert!(Target::parse("").is_err());
        assert!(Target::parse("unix:").is_err());
        assert!(Target::parse("https://127.0.0.1:1").is_err());
        assert!(Target::parse("ftp://x").is_err());
    }
}
