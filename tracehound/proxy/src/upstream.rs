//! The upstream base URL and how a client's request target maps onto it.

use http::uri::{Authority, PathAndQuery, Scheme, Uri};

use crate::error::ConfigError;

/// A parsed `http://host[:port][/base]` upstream. Only plain HTTP/1.1 upstreams are
/// supported: the proxy sits next to the service it protects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    authority: Authority,
    /// Base path without a trailing slash ("" for the root).
    base: String,
    /// `host:port` to connect to (port 80 filled in when the URL has none).
    connect_addr: String,
}

impl Upstream {
    /// Parses `url`; anything but an absolute `http://` URL without a query is refused.
    pub fn parse(url: &str) -> Result<Upstream, ConfigError> {
        let bad = |reason: &str| ConfigError::Upstream {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let uri: Uri = url.parse().map_err(|_| bad("not a URL"))?;
        match uri.scheme() {
            Some(s) if *s == Scheme::HTTP => {}
            Some(_) => return Err(bad("only http:// upstreams are supported")),
            None => return Err(bad("the URL needs a scheme (http://host:port)")),
        }
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| bad("the URL needs a host"))?;
        if authority.as_str().contains('@') {
            return Err(bad("credentials in the URL are not supported"));
        }
        if uri.query().is_some() {
            return Err(bad("the URL must not carry a query"));
        }
        let base = uri.path().trim_end_matches('/').to_owned();
        let connect_addr = match authority.port_u16() {
            Some(_) => authority.as_str().to_owned(),
            None => format!("{}:80", authority.as_str()),
        };
        Ok(Upstream {
            authority,
            base,
            connect_addr,
        })
    }

    /// The upstream's `host:port`.
    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// The `host:port` to open connections to.
    pub fn connect_addr(&self) -> &str {
        &self.connect_addr
    }

    /// The upstream URI for a client's request target (its path and query appended to
    /// the base path), absolute: the form a pooled client routes by.
    pub fn target(&self, client: &Uri) -> Result<Uri, http::Error> {
        Uri::builder()
            .scheme(Scheme::HTTP)
            .authority(self.authority.clone())
            .path_and_query(self.path_and_query(client)?)
            .build()
    }

    /// The same target in origin form (`/base/path?query`), as sent on a connection
    /// that is already open to the upstream.
    pub fn origin_target(&self, client: &Uri) -> Result<Uri, http::Error> {
        Ok(Uri::from(self.path_and_query(client)?))
    }

    fn path_and_query(&self, client: &Uri) -> Result<PathAndQuery, http::Error> {
        match client.path_and_query() {
            // Common case: the client's own (shared, reference-counted) target as is.
            Some(pq) if self.base.is_empty() => Ok(pq.clone()),
            pq => {
                let pq = pq.map_or("/", PathAndQuery::as_str);
                Ok(PathAndQuery::try_from(format!("{}{}", self.base, pq))?)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_targets_onto_the_base() {
        let up = Upstream::parse("http://127.0.0.1:9000/api/").expect("valid");
        let client: Uri = "/v1/items?x=1".parse().expect("valid");
        assert_eq!(
            up.target(&client).expect("valid").to_string(),
            "http://127.0.0.1:9000/api/v1/items?x=1"
        );
        let root = Upstream::parse("http://localhost:8080").expect("valid");
        let h2_style: Uri = "http://front.test/a?b".parse().expect("valid");
        assert_eq!(
            root.target(&h2_style).expect("valid").to_string(),
            "http://localhost:8080/a?b"
        );
        assert_eq!(
            up.origin_target(&client).expect("valid").to_string(),
            "/api/v1/items?x=1"
        );
        assert_eq!(
            root.origin_target(&h2_style).expect("valid").to_string(),
            "/a?b"
        );
        assert_eq!(up.connect_addr(), "127.0.0.1:9000");
        assert_eq!(root.connect_addr(), "localhost:8080");
        let no_port = Upstream::parse("http://[::1]").expect("valid");
        assert_eq!(no_port.connect_addr(), "[::1]:80");
    }

    #[test]
    fn refuses_unsupported_urls() {
        for url in [
            "https://x:1",
            "x:1",
            "/path",
            "http://u:p@x:1",
            "http://x:1/?q",
            "",
        ] {
            assert!(Upstream::parse(url).is_err(), "{url}");
        }
    }
}
