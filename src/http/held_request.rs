//! What a request costs while its handler waits: a parked long poll keeps its request alive
//! for up to 25 seconds, and 10,000 of them at once are the normal load.
//!
//! actix-http parses every request into a header map made with room for 16 headers (a
//! table of 32 slots of ~200 bytes each, 6.4 kB), whatever the request carried. A poll
//! carries three or four headers, and they land in random slots across that table, so most
//! of its pages are touched and resident. [`compact`], the middleware of the routes that
//! hold requests, swaps the map for one sized to what arrived before the handler runs.
//!
//! A browser's poll carries a dozen headers (User-Agent, Accept-*, Referer, `sec-ch-ua*`,
//! `Sec-Fetch-*`…), ~700 bytes that nothing reads once the outer middleware has run (the
//! compression middleware reads Accept-Encoding before it calls the route). A held `GET`
//! keeps only [`KEPT_WHILE_HELD`]; anything else that reads a header must run outside. Its
//! token, the one header the handler reads, moves to a [`HeldToken`] (its hash, 32 bytes):
//! even a map of one header is a table of four ~200-byte slots, and most polls carry no
//! other header that is kept, so most parked polls hold no map at all.

use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderMap, HeaderName, FORWARDED, X_FORWARDED_FOR};
use actix_web::http::Method;
use actix_web::HttpMessage;

use crate::http::extract::{hashed_bearer, HeldToken};

/// What a held `GET` still reads from its headers once its token has moved to a
/// [`HeldToken`]: when it ends, the client's address behind a proxy (the request log,
/// `request_metrics`).
const KEPT_WHILE_HELD: [HeaderName; 2] = [X_FORWARDED_FOR, FORWARDED];

/// Middleware (`wrap_fn`) for a route that holds its requests: moves the token of a `GET`
/// out of its headers and trims them, or compacts them (other methods: their bodies need
/// Content-Type and Content-Length), then calls the route.
pub fn compact<S, B>(mut req: ServiceRequest, route: &S) -> S::Future
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    if req.method() == Method::GET {
        if let Some(hash) = hashed_bearer(req.headers()) {
            req.extensions_mut().insert(HeldToken(hash));
        }
        keep_only(req.headers_mut(), &KEPT_WHILE_HELD);
    } else {
        compact_headers(req.headers_mut());
    }
    route.call(req)
}

/// Replaces `headers` with a map of only the `kept` names (every value of each), sized to
/// them: with none of them, an empty map, which allocates nothing.
fn keep_only(headers: &mut HeaderMap, kept: &[HeaderName]) {
    let present = kept
        .iter()
        .filter(|name| headers.contains_key(*name))
        .count();
    let mut trimmed = HeaderMap::with_capacity(present);
    for name in kept {
        for value in headers.get_all(name) {
            trimmed.append(name.clone(), value.clone());
        }
    }
    *headers = trimmed;
}

/// Replaces `headers` with an equal map sized to its contents (the values are shared
/// `Bytes`, so nothing but the table is copied). Leaves maps with little spare room alone.
pub fn compact_headers(headers: &mut HeaderMap) {
    if headers.capacity() <= 2 * headers.len_keys().max(2) {
        return;
    }
    let mut compact = HeaderMap::with_capacity(headers.len_keys());
    for (name, value) in headers.iter() {
        compact.append(name.clone(), value.clone());
    }
    *headers = compact;
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::{HeaderName, HeaderValue, ACCEPT, AUTHORIZATION, HOST};

    use super::*;

    #[test]
    fn compacting_keeps_every_header_and_value_in_order_and_frees_the_spare_room() {
        let mut headers = HeaderMap::with_capacity(16);
        headers.append(HOST, HeaderValue::from_static("127.0.0.1:8080"));
        headers.append(AUTHORIZATION, HeaderValue::from_static("Bearer pv_x"));
        headers.append(ACCEPT, HeaderValue::from_static("text/html"));
        headers.append(ACCEPT, HeaderValue::from_static("*/*"));
        let before: Vec<(HeaderName, HeaderValue)> = headers
            .iter()
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect();
        compact_headers(&mut headers);
        assert!(headers.capacity() < 16, "capacity {}", headers.capacity());
        assert_eq!(headers.len(), 4);
        assert_eq!(headers.len_keys(), 3);
        let accept: Vec<&HeaderValue> = headers.get_all(ACCEPT).collect();
        assert_eq!(accept, ["text/html", "*/*"]);
        for (name, value) in &before {
            assert!(headers.get_all(name).any(|v| v == value), "{name} lost");
        }
    }

    #[test]
    fn a_held_get_keeps_its_forwarding_headers_only() {
        let mut headers = HeaderMap::with_capacity(16);
        headers.append(HOST, HeaderValue::from_static("127.0.0.1:8080"));
        headers.append(AUTHORIZATION, HeaderValue::from_static("Bearer pv_x"));
        headers.append(ACCEPT, HeaderValue::from_static("*/*"));
        headers.append(X_FORWARDED_FOR, HeaderValue::from_static("192.0.2.1"));
        headers.append(X_FORWARDED_FOR, HeaderValue::from_static("198.51.100.2"));
        keep_only(&mut headers, &KEPT_WHILE_HELD);
        assert_eq!(headers.len(), 2);
        let forwarded: Vec<&HeaderValue> = headers.get_all(X_FORWARDED_FOR).collect();
        assert_eq!(forwarded, ["192.0.2.1", "198.51.100.2"]);
        assert!(headers.get(HOST).is_none() && headers.get(ACCEPT).is_none());
        assert!(headers.get(AUTHORIZATION).is_none());
        assert!(headers.capacity() < 16, "capacity {}", headers.capacity());
    }

    #[test]
    fn a_held_get_without_forwarding_headers_keeps_an_empty_map_with_no_table() {
        let mut headers = HeaderMap::with_capacity(16);
        headers.append(HOST, HeaderValue::from_static("127.0.0.1:8080"));
        headers.append(AUTHORIZATION, HeaderValue::from_static("Bearer pv_x"));
        keep_only(&mut headers, &KEPT_WHILE_HELD);
        assert!(headers.is_empty());
        assert_eq!(headers.capacity(), 0);
    }

    #[test]
    fn a_map_without_spare_room_is_left_as_it_is() {
        let mut headers = HeaderMap::with_capacity(2);
        headers.append(HOST, HeaderValue::from_static("example.com"));
        headers.append(ACCEPT, HeaderValue::from_static("*/*"));
        let capacity = headers.capacity();
        compact_headers(&mut headers);
        assert_eq!(headers.capacity(), capacity);
        assert_eq!(headers.len(), 2);
    }
}
