//! What a request costs while its handler waits: a parked long poll keeps its request alive
//! for up to 25 seconds, and 10,000 of them at once are the normal load.
//!
//! actix-http parses every request into a header map made with room for 16 headers (a
//! table of 32 slots of ~200 bytes each, 6.4 kB), whatever the request carried. A poll
//! carries three or four headers, and they land in random slots across that table, so most
//! of its pages are touched and resident. [`compact`], the middleware of the routes that
//! hold requests, swaps the map for one sized to what arrived before the handler runs.

use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::header::HeaderMap;

/// Middleware (`wrap_fn`) for a route that holds its requests: compacts the header map, then
/// calls the route.
pub fn compact<S, B>(mut req: ServiceRequest, route: &S) -> S::Future
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    compact_headers(req.headers_mut());
    route.call(req)
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
