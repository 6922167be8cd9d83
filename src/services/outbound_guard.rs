//! Keeps webhook deliveries away from the server's own network (SSRF).
//!
//! A webhook URL is chosen by a user, and the server fetches it. Without a guard,
//! `http://169.254.169.254/…` reads cloud credentials and `http://127.0.0.1:…` reaches
//! admin ports. The guard works at two moments:
//!
//! * [`check_url`] when a webhook is saved **and before every delivery**: scheme, no
//!   credentials, and IP-literal hosts. reqwest never calls a resolver for an IP-literal
//!   host (`http://10.0.0.1/`), so the resolver below cannot catch those: delivery code must
//!   call [`check_url`] before each request.
//! * [`GuardedResolver`], installed by [`client_builder`], when a host *name* is resolved at
//!   delivery time, so a name that pointed to a public address when saved and to
//!   `127.0.0.1` now (DNS rebinding) is still refused.
//!
//! `allow_private` turns both off for installations that post to their own intranet.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;

/// Why a webhook target is refused. The messages are shown to the user who set the URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    #[error("URL scheme must be http or https, not {0:?}")]
    UnsupportedScheme(String),
    #[error("URL must not contain a user name or password")]
    Credentials,
    #[error("URL must have a host")]
    MissingHost,
    #[error("{0} is not a public address")]
    NonPublicAddress(IpAddr),
    #[error("host {0:?} is local to the server")]
    LocalHost(String),
    #[error("host {0:?} resolves to no public address")]
    NoPublicAddress(String),
    #[error("could not resolve host {host:?}: {reason}")]
    Resolve { host: String, reason: String },
}

/// True when `ip` is a globally reachable unicast address: not loopback, private, shared
/// (CGNAT), link-local, unspecified, broadcast, multicast, documentation, benchmarking or
/// otherwise reserved, also when wrapped in IPv6 (mapped `::ffff:a.b.c.d`, compatible
/// `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`, 6to4 `2002:aabb:ccdd::`).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let reserved = a == 0 // "this network", includes 0.0.0.0
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 169 && b == 254) // link-local, cloud metadata
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 168)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // TEST-NET-1
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // TEST-NET-2
        || (a == 203 && b == 0 && c == 113) // TEST-NET-3
        || a >= 224; // multicast, reserved, broadcast
    !reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    // Forms that carry an IPv4 address: judge the address they lead to.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_public_v4(embedded_v4(&segments[6..8]));
    }
    if segments[0] == 0x2002 {
        return is_public_v4(embedded_v4(&segments[1..3]));
    }
    // Everything globally routed today is in 2000::/3; outside it are `::`, `::1`, the
    // deprecated IPv4-compatible `::a.b.c.d`, local-use NAT64 64:ff9b:1::/48, discard
    // 100::/64, ULA fc00::/7, link-local fe80::/10, site-local fec0::/10, multicast ff00::/8.
    if segments[0] & 0xe000 != 0x2000 {
        return false;
    }
    let reserved = match segments[0] {
        // 2001::/23 IETF protocol assignments (Teredo among them) and 2001:db8::/32
        // documentation.
        0x2001 => segments[1] < 0x0200 || segments[1] == 0x0db8,
        // 3fff::/20 documentation.
        0x3ff0..=0x3fff => true,
        // 5f00::/16 SRv6 segment identifiers.
        0x5f00 => true,
        _ => false,
    };
    !reserved
}

fn embedded_v4(segments: &[u16]) -> Ipv4Addr {
    let high = segments.first().copied().unwrap_or_default();
    let low = segments.get(1).copied().unwrap_or_default();
    Ipv4Addr::from((u32::from(high) << 16) | u32::from(low))
}

/// Parses and checks a webhook URL: http or https, no user info, a host, and when the host
/// is an IP literal, a public one (unless `allow_private`). Names under `localhost` are
/// refused too; other names are checked when resolved, by [`GuardedResolver`].
///
/// WHATWG parsing turns `http://2130706433/`, `http://0x7f.0.0.1/` and `http://127.1/`
/// into `127.0.0.1`, so those spellings are caught as the address they are.
///
/// Call this before **every** delivery, not only when saving: reqwest connects to IP
/// literals without asking the resolver.
pub fn check_url(url: &str, allow_private: bool) -> Result<Url, TargetError> {
    let parsed = Url::parse(url.trim()).map_err(|e| TargetError::InvalidUrl(e.to_string()))?;
    check_parsed(&parsed, allow_private)?;
    Ok(parsed)
}

/// [`check_url`] for a URL that is already parsed.
pub fn check_parsed(url: &Url, allow_private: bool) -> Result<(), TargetError> {
    match url.scheme() {
        "http" | "https" => {}
        other => return Err(TargetError::UnsupportedScheme(other.to_owned())),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(TargetError::Credentials);
    }
    let host = url.host_str().unwrap_or_default();
    if host.is_empty() {
        return Err(TargetError::MissingHost);
    }
    // WHATWG parsing has already turned every IPv4 spelling (`2130706433`, `0x7f.1`, …)
    // into dotted decimal and put IPv6 literals in brackets.
    let ip = if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        match v6.parse::<Ipv6Addr>() {
            Ok(v6) => IpAddr::V6(v6),
            Err(_) => return Err(TargetError::InvalidUrl(format!("bad IPv6 host {host}"))),
        }
    } else if let Ok(v4) = host.parse::<Ipv4Addr>() {
        IpAddr::V4(v4)
    } else {
        if !allow_private && is_localhost_name(host) {
            return Err(TargetError::LocalHost(host.to_owned()));
        }
        return Ok(());
    };
    if allow_private || is_public(ip) {
        Ok(())
    } else {
        Err(TargetError::NonPublicAddress(ip))
    }
}

/// `localhost` and its subdomains never leave the machine (RFC 6761).
fn is_localhost_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// A reqwest resolver that drops non-public addresses from every lookup, and fails the
/// lookup when none remain, so a connection can only go to a public address.
#[derive(Debug, Clone, Copy, Default)]
pub struct GuardedResolver {
    allow_private: bool,
}

impl GuardedResolver {
    /// With `allow_private`, every resolved address is kept.
    pub fn new(allow_private: bool) -> Self {
        Self { allow_private }
    }

    /// Resolves `host` with the system resolver and keeps what the policy allows.
    pub async fn lookup(&self, host: &str) -> Result<Vec<SocketAddr>, TargetError> {
        if !self.allow_private && is_localhost_name(host) {
            return Err(TargetError::LocalHost(host.to_owned()));
        }
        // Port 0: reqwest puts the URL's port in.
        let resolved =
            tokio::net::lookup_host((host, 0))
                .await
                .map_err(|e| TargetError::Resolve {
                    host: host.to_owned(),
                    reason: e.to_string(),
                })?;
        let addrs: Vec<SocketAddr> = resolved
            .filter(|addr| self.allow_private || is_public(addr.ip()))
            .collect();
        if addrs.is_empty() {
            return Err(TargetError::NoPublicAddress(host.to_owned()));
        }
        Ok(addrs)
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let resolver = *self;
        Box::pin(async move {
            let addrs = resolver.lookup(name.as_str()).await?;
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// A client builder for webhook delivery: resolves through [`GuardedResolver`], follows no
/// redirects (a `302 Location: http://127.0.0.1/` would bypass [`check_url`]) and uses no
/// proxy from the environment (the proxy, not us, would resolve and reach the target).
/// Callers add their own timeouts and user agent.
pub fn client_builder(allow_private: bool) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver::new(allow_private)))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::str::FromStr;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn private_and_reserved_addresses_are_not_public() {
        for s in [
            "0.0.0.0",
            "0.1.2.3",
            "127.0.0.1",
            "127.255.255.254",
            "10.0.0.1",
            "10.255.255.255",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.255",
            "169.254.169.254",
            "169.254.0.1",
            "192.0.0.8",
            "192.0.2.1",
            "198.51.100.1",
            "203.0.113.1",
            "198.18.0.1",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "::8.8.8.8",
            "64:ff9b::10.0.0.1",
            "64:ff9b::127.0.0.1",
            "64:ff9b:1::8.8.8.8",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
            "ff0e::1",
            "100::1",
            "2001:db8::1",
            "2001::1",
            "3fff::1",
        ] {
            assert!(!is_public(ip(s)), "{s} must not be public");
        }
    }

    #[test]
    fn public_addresses_are_public() {
        for s in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.215.14",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.255.255",
            "172.32.0.1",
            "169.253.1.1",
            "192.169.0.1",
            "223.255.255.254",
            "::ffff:8.8.8.8",
            "64:ff9b::8.8.8.8",
            "2002:0808:0808::1",
            "2606:4700:4700::1111",
            "2a00:1450:4001:82a::200e",
        ] {
            assert!(is_public(ip(s)), "{s} must be public");
        }
    }

    #[test]
    fn encoded_loopback_forms_are_refused() {
        for url in [
            "http://127.0.0.1/hook",
            "http://2130706433/hook",
            "http://0x7f.0.0.1/hook",
            "http://0x7f000001/hook",
            "http://0177.0.0.1/hook",
            "http://127.1/hook",
            "http://[::1]/hook",
            "http://[::ffff:127.0.0.1]/hook",
            "http://[::ffff:7f00:1]/hook",
            "http://[0:0:0:0:0:0:0:1]:8080/hook",
            "http://0.0.0.0/",
            "http://0/",
            "https://169.254.169.254/latest/meta-data/",
            "http://[fe80::1%25eth0]/",
            "http://10.0.0.1./",
        ] {
            match check_url(url, false) {
                Err(TargetError::NonPublicAddress(_)) | Err(TargetError::InvalidUrl(_)) => {}
                other => panic!("{url} must be refused, got {other:?}"),
            }
        }
        // The decoded address is what is reported.
        assert_eq!(
            check_url("http://2130706433/", false),
            Err(TargetError::NonPublicAddress(ip("127.0.0.1")))
        );
        assert_eq!(
            check_url("http://0x7f.0.0.1/", false),
            Err(TargetError::NonPublicAddress(ip("127.0.0.1")))
        );
        assert_eq!(
            check_url("http://127.1/", false),
            Err(TargetError::NonPublicAddress(ip("127.0.0.1")))
        );
        assert_eq!(
            check_url("http://[::1]/", false),
            Err(TargetError::NonPublicAddress(ip("::1")))
        );
    }

    #[test]
    fn localhost_names_are_refused() {
        for url in [
            "http://localhost/",
            "http://LOCALHOST:8080/",
            "http://localhost./",
            "http://api.localhost/",
        ] {
            assert!(
                matches!(check_url(url, false), Err(TargetError::LocalHost(_))),
                "{url}"
            );
            assert!(check_url(url, true).is_ok(), "{url}");
        }
    }

    #[test]
    fn url_shape_rules() {
        assert_eq!(
            check_url("ftp://example.com/", false),
            Err(TargetError::UnsupportedScheme("ftp".into()))
        );
        assert!(matches!(
            check_url("file:///etc/passwd", false),
            Err(TargetError::UnsupportedScheme(_))
        ));
        assert!(matches!(
            check_url("gopher://example.com/", false),
            Err(TargetError::UnsupportedScheme(_))
        ));
        assert_eq!(
            check_url("https://user:pw@example.com/", false),
            Err(TargetError::Credentials)
        );
        assert_eq!(
            check_url("https://user@example.com/", false),
            Err(TargetError::Credentials)
        );
        assert_eq!(
            check_url("https://:pw@example.com/", false),
            Err(TargetError::Credentials)
        );
        assert!(matches!(
            check_url("not a url", false),
            Err(TargetError::InvalidUrl(_))
        ));
        assert!(matches!(
            check_url("http://", false),
            Err(TargetError::InvalidUrl(_)) | Err(TargetError::MissingHost)
        ));
        // The credentials check must not leak them in the message.
        let message = check_url("https://u:secret@example.com/", false)
            .unwrap_err()
            .to_string();
        assert!(!message.contains("secret"));
    }

    #[test]
    fn public_targets_pass() {
        for url in [
            "https://example.com/hooks/parley",
            "http://hooks.example.org:8080/x?y=1",
            "https://8.8.8.8/",
            "https://[2606:4700:4700::1111]/",
            "  https://example.com/  ",
        ] {
            assert!(check_url(url, false).is_ok(), "{url}");
        }
        assert_eq!(
            check_url("https://example.com/a", false).unwrap().as_str(),
            "https://example.com/a"
        );
    }

    #[test]
    fn allow_private_lets_private_pass() {
        for url in [
            "http://127.0.0.1:9000/",
            "http://10.1.2.3/",
            "http://[::1]/",
            "http://2130706433/",
            "http://169.254.169.254/",
        ] {
            assert!(check_url(url, true).is_ok(), "{url}");
        }
        // Shape rules still hold.
        assert_eq!(
            check_url("http://u:p@10.1.2.3/", true),
            Err(TargetError::Credentials)
        );
    }

    #[tokio::test]
    async fn resolver_refuses_localhost() {
        let resolver = GuardedResolver::new(false);
        let result = resolver.resolve(Name::from_str("localhost").unwrap()).await;
        let err = result.err().unwrap();
        assert!(err.downcast_ref::<TargetError>().is_some(), "{err}");
    }

    #[tokio::test]
    async fn resolver_allows_localhost_when_private_allowed() {
        let resolver = GuardedResolver::new(true);
        let addrs: Vec<SocketAddr> = resolver
            .resolve(Name::from_str("localhost").unwrap())
            .await
            .unwrap()
            .collect();
        assert!(!addrs.is_empty());
        assert!(addrs.iter().all(|a| a.ip().is_loopback()));
    }

    #[tokio::test]
    async fn resolver_filters_by_address_not_only_name() {
        // "127.0.0.1" resolves (as a numeric name) to loopback: the filter, not the name
        // check, must refuse it.
        let err = GuardedResolver::new(false)
            .lookup("127.0.0.1")
            .await
            .unwrap_err();
        assert_eq!(err, TargetError::NoPublicAddress("127.0.0.1".into()));
    }

    /// A one-shot HTTP server on 127.0.0.1 that answers every request with `response`.
    async fn local_server(response: &'static str) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            }
        });
        port
    }

    const OK: &str = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";

    #[tokio::test]
    async fn client_refuses_names_that_resolve_inside() {
        let port = local_server(OK).await;
        let client = client_builder(false).build().unwrap();
        let err = client
            .get(format!("http://localhost:{port}/"))
            .send()
            .await
            .unwrap_err();
        assert!(err.is_connect() || err.is_request(), "{err:?}");
        let mut source: Option<&dyn std::error::Error> = Some(&err);
        let mut found = false;
        while let Some(e) = source {
            found |= e.downcast_ref::<TargetError>().is_some();
            source = e.source();
        }
        assert!(found, "the guard must be the reason: {err:?}");

        let client = client_builder(true).build().unwrap();
        let response = client
            .get(format!("http://localhost:{port}/"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }

    #[tokio::test]
    async fn client_does_not_follow_redirects() {
        let port = local_server(
            "HTTP/1.1 302 Found\r\nlocation: http://169.254.169.254/\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        )
        .await;
        let client = client_builder(true).build().unwrap();
        let response = client
            .get(format!("http://127.0.0.1:{port}/"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 302);
    }
}
