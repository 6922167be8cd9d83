//! The client's IP address when the server may sit behind reverse proxies.
//!
//! Each proxy *appends* the address it received the request from to `X-Forwarded-For`
//! (or adds a `for=` element to `Forwarded`); whatever the client sent itself stays on the
//! left. So only the right-most entries, one per proxy we run, can be believed. actix's
//! `realip_remote_addr()` takes the left-most entry, which lets any client choose the
//! address that rate limits and logs see; [`client_ip`] counts from the right instead.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use actix_web::http::header::{HeaderMap, HeaderName, FORWARDED, X_FORWARDED_FOR};

/// How far the forwarding headers can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProxyPolicy {
    /// How many reverse proxies we run in front of the server, each of which appends one
    /// entry. 0 means the server faces clients directly: headers are ignored.
    pub trusted_hops: usize,
    /// Read the RFC 7239 `Forwarded` header (its `for=` parameters) *instead of*
    /// `X-Forwarded-For`. Only set this when every trusted proxy writes `Forwarded`.
    pub use_forwarded: bool,
}

/// The client's address under `policy`.
///
/// With `trusted_hops = N > 0` it is the N-th entry from the right of the forwarding list,
/// i.e. the address that the outermost trusted proxy saw. A list shorter than N yields its
/// left-most entry. A missing list, or a chosen entry that is not an IP address (`unknown`,
/// an obfuscated `_name`, garbage) yields the TCP peer. IPv4-mapped IPv6 addresses are
/// returned as IPv4 so one client has one key. Without a peer the result is `0.0.0.0`.
pub fn client_ip(peer: Option<IpAddr>, headers: &HeaderMap, policy: &ProxyPolicy) -> IpAddr {
    let peer = peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ip| ip.to_canonical());
    if policy.trusted_hops == 0 {
        return peer;
    }
    let entries = if policy.use_forwarded {
        forwarded_for_entries(headers)
    } else {
        x_forwarded_for_entries(headers)
    };
    let Some(entries) = entries else {
        return peer;
    };
    if entries.is_empty() {
        return peer;
    }
    // Fewer entries than hops: the request did not pass through all proxies (or a proxy
    // replaced the header); the left-most entry is then the best there is.
    let index = entries.len().saturating_sub(policy.trusted_hops);
    entries
        .get(index)
        .and_then(|entry| entry.as_deref())
        .and_then(parse_node)
        .map_or(peer, |ip| ip.to_canonical())
}

/// All `X-Forwarded-For` lines joined in order, split on commas. `None` when a line is not
/// visible ASCII: such a header cannot have come from our proxy intact.
fn x_forwarded_for_entries(headers: &HeaderMap) -> Option<Vec<Option<String>>> {
    let mut entries = Vec::new();
    for line in header_lines(headers, &X_FORWARDED_FOR)? {
        entries.extend(line.split(',').map(|entry| Some(entry.trim().to_owned())));
    }
    Some(entries)
}

/// One entry per `Forwarded` element (all lines joined): its `for=` value, or `None` for an
/// element without one (it still counts as a hop).
fn forwarded_for_entries(headers: &HeaderMap) -> Option<Vec<Option<String>>> {
    let mut entries = Vec::new();
    for line in header_lines(headers, &FORWARDED)? {
        for element in split_unquoted(line, ',') {
            let node = split_unquoted(element, ';').into_iter().find_map(|pair| {
                let (name, value) = pair.split_once('=')?;
                name.trim()
                    .eq_ignore_ascii_case("for")
                    .then(|| unquote(value.trim()))
            });
            entries.push(node);
        }
    }
    Some(entries)
}

fn header_lines<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<Vec<&'a str>> {
    headers
        .get_all(name)
        .map(|value| value.to_str().ok())
        .collect()
}

/// Splits on `separator` outside double-quoted strings (RFC 7230 quoted-string, with
/// backslash escapes), so `for="[::1]:80;x"` stays one pair.
fn split_unquoted(s: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if in_quotes && c == '\\' {
            escaped = true;
        } else if c == '"' {
            in_quotes = !in_quotes;
        } else if c == separator && !in_quotes {
            parts.push(&s[start..i]);
            start = i + c.len_utf8();
        }
    }
    parts.push(&s[start..]);
    parts
}

fn unquote(value: &str) -> String {
    match value
        .strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'))
    {
        Some(inner) => {
            let mut out = String::with_capacity(inner.len());
            let mut escaped = false;
            for c in inner.chars() {
                if !escaped && c == '\\' {
                    escaped = true;
                } else {
                    out.push(c);
                    escaped = false;
                }
            }
            out
        }
        None => value.to_owned(),
    }
}

/// `1.2.3.4`, `1.2.3.4:80`, `2001:db8::1`, `[2001:db8::1]` or `[2001:db8::1]:80`.
fn parse_node(node: &str) -> Option<IpAddr> {
    let node = node.trim();
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(addr) = node.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    // `[v6]` without a port; RFC 7239 also allows an obfuscated port (`[v6]:_abc`) and
    // only the address matters here.
    let inner = node.strip_prefix('[')?;
    let (address, rest) = inner.split_once(']')?;
    let port_ok = rest.is_empty() || rest.strip_prefix(':').is_some_and(|port| !port.is_empty());
    if !port_ok {
        return None;
    }
    address.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    const PEER: &str = "10.0.0.2";

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn hops(n: usize) -> ProxyPolicy {
        ProxyPolicy {
            trusted_hops: n,
            use_forwarded: false,
        }
    }

    fn forwarded(n: usize) -> ProxyPolicy {
        ProxyPolicy {
            trusted_hops: n,
            use_forwarded: true,
        }
    }

    #[test]
    fn zero_hops_ignores_headers() {
        let h = headers(&[("x-forwarded-for", "1.1.1.1")]);
        assert_eq!(client_ip(Some(ip(PEER)), &h, &hops(0)), ip(PEER));
    }

    #[test]
    fn no_peer_is_unspecified() {
        let h = HeaderMap::new();
        assert_eq!(client_ip(None, &h, &hops(0)), ip("0.0.0.0"));
        assert_eq!(client_ip(None, &h, &hops(1)), ip("0.0.0.0"));
    }

    #[test]
    fn one_hop_ignores_spoofed_left_entries() {
        // The client sent "6.6.6.6, 7.7.7.7"; our proxy appended what it saw.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 7.7.7.7, 203.0.113.9")]);
        assert_eq!(client_ip(Some(ip(PEER)), &h, &hops(1)), ip("203.0.113.9"));
    }

    #[test]
    fn header_lines_are_joined_in_order() {
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "203.0.113.9, 198.51.100.7"),
        ]);
        assert_eq!(client_ip(Some(ip(PEER)), &h, &hops(1)), ip("198.51.100.7"));
        assert_eq!(client_ip(Some(ip(PEER)), &h, &hops(2)), ip("203.0.113.9"));
        assert_eq!(client_ip(Some(ip(PEER)), &h, &hops(3)), ip("6.6.6.6"));
    }

    #[test]
    fn two_hops_take_second_from_right() {
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.9, 192.0.2.1")]);
        assert_eq!(client_ip(Some(ip(PEER)), &h, &hops(2)), ip("203.0.113.9"));
    }

    #[test]
    fn fewer_entries_than_hops_take_left_most() {
        let h = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(client_ip(Some(ip(PEER)), &h, &hops(3)), ip("203.0.113.9"));
    }

    #[test]
    fn missing_header_falls_back_to_peer() {
        assert_eq!(
            client_ip(Some(ip(PEER)), &HeaderMap::new(), &hops(1)),
            ip(PEER)
        );
    }

    #[test]
    fn garbage_falls_back_to_peer() {
        for value in [
            "6.6.6.6, unknown",
            "6.6.6.6, not-an-ip",
            "6.6.6.6, ",
            "6.6.6.6, 1.2.3.4.5",
            "6.6.6.6, [::1",
            "6.6.6.6, [::1]x",
            "6.6.6.6, 300.1.1.1",
        ] {
            let h = headers(&[("x-forwarded-for", value)]);
            assert_eq!(client_ip(Some(ip(PEER)), &h, &hops(1)), ip(PEER), "{value}");
        }
    }

    #[test]
    fn non_ascii_header_falls_back_to_peer() {
        let mut h = HeaderMap::new();
        h.append(
            X_FORWARDED_FOR,
            HeaderValue::from_bytes(b"1.1.1.1, \xff").unwrap(),
        );
        assert_eq!(client_ip(Some(ip(PEER)), &h, &hops(1)), ip(PEER));
    }

    #[test]
    fn ports_are_allowed() {
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.9:4711")]);
        assert_eq!(client_ip(Some(ip(PEER)), &h, &hops(1)), ip("203.0.113.9"));
        let h = headers(&[("x-forwarded-for", "[2001:db8::7]:4711")]);
        assert_eq!(client_ip(Some(ip(PEER)), &h, &hops(1)), ip("2001:db8::7"));
    }

    #[test]
    fn ipv6_entries() {
        let h = headers(&[("x-forwarded-for", "::1, 2001:db8::1, [2001:db8::2]")]);
        assert_eq!(client_ip(Some(ip(PEER)), &h, &hops(1)), ip("2001:db8::2"));
        assert_eq!(client_ip(Some(ip(PEER)), &h, &hops(2)), ip("2001:db8::1"));
        assert_eq!(client_ip(Some(ip(PEER)), &h, &hops(3)), ip("::1"));
    }

    #[test]
    fn mapped_addresses_become_ipv4() {
        let h = headers(&[("x-forwarded-for", "::ffff:203.0.113.9")]);
        assert_eq!(client_ip(Some(ip(PEER)), &h, &hops(1)), ip("203.0.113.9"));
        let peer = ip("::ffff:10.0.0.2");
        assert_eq!(client_ip(Some(peer), &HeaderMap::new(), &hops(0)), ip(PEER));
    }

    #[test]
    fn forwarded_is_ignored_unless_enabled() {
        let h = headers(&[("forwarded", "for=203.0.113.9")]);
        assert_eq!(client_ip(Some(ip(PEER)), &h, &hops(1)), ip(PEER));
        assert_eq!(
            client_ip(Some(ip(PEER)), &h, &forwarded(1)),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn forwarded_replaces_x_forwarded_for_when_enabled() {
        let h = headers(&[
            ("x-forwarded-for", "198.51.100.7"),
            ("forwarded", "for=203.0.113.9"),
        ]);
        assert_eq!(
            client_ip(Some(ip(PEER)), &h, &forwarded(1)),
            ip("203.0.113.9")
        );
        let h = headers(&[("x-forwarded-for", "198.51.100.7")]);
        assert_eq!(client_ip(Some(ip(PEER)), &h, &forwarded(1)), ip(PEER));
    }

    #[test]
    fn forwarded_right_most_rule() {
        let h = headers(&[
            (
                "forwarded",
                "for=6.6.6.6;proto=https, For=\"[2001:db8:cafe::17]:4711\"",
            ),
            ("forwarded", "for=192.0.2.43;by=203.0.113.60;proto=http"),
        ]);
        assert_eq!(
            client_ip(Some(ip(PEER)), &h, &forwarded(1)),
            ip("192.0.2.43")
        );
        assert_eq!(
            client_ip(Some(ip(PEER)), &h, &forwarded(2)),
            ip("2001:db8:cafe::17")
        );
        assert_eq!(client_ip(Some(ip(PEER)), &h, &forwarded(3)), ip("6.6.6.6"));
        assert_eq!(client_ip(Some(ip(PEER)), &h, &forwarded(9)), ip("6.6.6.6"));
    }

    #[test]
    fn forwarded_quoted_separators_and_garbage() {
        // A quoted comma must not create an extra element the client controls.
        let h = headers(&[("forwarded", "for=\"6.6.6.6,7.7.7.7\";proto=http")]);
        assert_eq!(client_ip(Some(ip(PEER)), &h, &forwarded(1)), ip(PEER));
        for value in ["for=unknown", "for=_hidden", "proto=https", "for=\"[::1\""] {
            let h = headers(&[("forwarded", value)]);
            assert_eq!(
                client_ip(Some(ip(PEER)), &h, &forwarded(1)),
                ip(PEER),
                "{value}"
            );
        }
        let h = headers(&[("forwarded", "for=\"[2001:db8::9]:_port\"")]);
        assert_eq!(
            client_ip(Some(ip(PEER)), &h, &forwarded(1)),
            ip("2001:db8::9")
        );
    }
}
