//! What handlers take from a request besides its body: the authenticated [`Caller`], the
//! bearer token's hash, and the client's address.

use std::net::IpAddr;

use actix_web::http::header::{self, HeaderMap};
use actix_web::{dev::Payload, web, FromRequest, HttpMessage, HttpRequest};
use futures_util::future::LocalBoxFuture;

use crate::config::Config;
use crate::domain::Caller;
use crate::http::client_addr::{self, ProxyPolicy};
use crate::http::error::ApiError;
use crate::services::auth::{hash_token, Sessions};
use crate::services::presence::Presence;

/// The bearer token in a request's headers, if it has a well-formed one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && token.len() <= 128)
        .then_some(token)
}

/// The hash of a held request's bearer token, taken out of its headers before the handler
/// runs (see `held_request`): a parked poll keeps 32 bytes instead of a header map.
#[derive(Clone, Copy)]
pub struct HeldToken(pub [u8; 32]);

/// The hash of the bearer token in these headers, if they have a well-formed one: what the
/// sessions are looked up by.
pub fn hashed_bearer(headers: &HeaderMap) -> Option<[u8; 32]> {
    bearer(headers).map(hash_token)
}

/// The hash of the request's bearer token, if it has a well-formed one.
fn bearer_hash(req: &HttpRequest) -> Option<[u8; 32]> {
    if let Some(held) = req.extensions().get::<HeldToken>() {
        return Some(held.0);
    }
    hashed_bearer(req.headers())
}

/// The hash of the request's bearer token, or `401`.
pub fn token_hash(req: &HttpRequest) -> Result<[u8; 32], ApiError> {
    bearer_hash(req).ok_or(ApiError::Unauthorized)
}

/// Every protected handler takes a `Caller`: a request without a live token gets `401`.
/// An agent's request also counts towards its presence (the inbox's long poll keeps an open
/// inbox present).
impl FromRequest for Caller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let sessions = req.app_data::<web::Data<Sessions>>().cloned();
        let presence = req.app_data::<web::Data<Presence>>().cloned();
        let hash = bearer_hash(req);
        Box::pin(async move {
            let (Some(sessions), Some(hash)) = (sessions, hash) else {
                return Err(ApiError::Unauthorized);
            };
            let caller = sessions.authenticate(hash).await?;
            if let (Caller::Agent { id, .. }, Some(presence)) = (&caller, presence) {
                presence.seen(id);
            }
            Ok(caller)
        })
    }
}

/// The request's `User-Agent`, if it is text.
pub fn user_agent(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::USER_AGENT)?.to_str().ok()?;
    Some(value.to_string())
}

/// The client's address: the peer, or with `trust_proxy` the address the outermost trusted
/// proxy saw (see [`client_addr`]), never one the client wrote itself.
pub fn client_ip(req: &HttpRequest) -> IpAddr {
    let policy = req
        .app_data::<web::Data<Config>>()
        .filter(|config| config.trust_proxy)
        .map_or_else(ProxyPolicy::default, |config| ProxyPolicy {
            trusted_hops: config.proxy_hops,
            use_forwarded: config.trust_forwarded,
        });
    client_addr::client_ip(req.peer_addr().map(|a| a.ip()), req.headers(), &policy)
}
