//! Every route of the server as data: the router is built from [`ROUTES`], the request
//! metrics label requests by its patterns, the OpenAPI document (`http::openapi`) takes each
//! route's callers from it, and the authorization and OpenAPI tests walk it.

use actix_web::guard::{Guard, GuardContext};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::Method;
use actix_web::{web, HttpResponse, ResponseError};

use crate::http::api::{
    agents, attachments, canned, chats, docs, health, inbox, mail, messages, metrics, ratings,
    search, settings, visitors, webhooks,
};
use crate::http::error::ApiError;
use crate::http::{assets, held_request};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, no token.
    Public,
    /// Visitors only, acting on themselves.
    Visitor,
    /// The visitor the chat belongs to, or any agent.
    OwnerOrAgent,
    /// Only the visitor the chat belongs to (agents: `403`).
    Owner,
    Agent,
    Admin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Verb {
    pub fn method(self) -> Method {
        match self {
            Verb::Get => Method::GET,
            Verb::Post => Method::POST,
            Verb::Put => Method::PUT,
            Verb::Patch => Method::PATCH,
            Verb::Delete => Method::DELETE,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
            Verb::Put => "PUT",
            Verb::Patch => "PATCH",
            Verb::Delete => "DELETE",
        }
    }
}

/// A route matches its verb through this guard, not actix's method guard: that one records
/// each method it tries in the request's extensions (a table, a box and a list, for actix's
/// own `405`, which [`configure`] replaces), three allocations per request that a parked
/// poll holds for its whole wait.
impl Guard for Verb {
    fn check(&self, ctx: &GuardContext<'_>) -> bool {
        ctx.head().method == self.method()
    }
}

/// One route: method, path pattern (actix syntax), who may call it, whether it holds its
/// requests open (a long poll), and its handler.
pub struct Route {
    pub verb: Verb,
    pub path: &'static str,
    pub access: Access,
    pub holds: bool,
    /// Part of the JSON API (documented in `docs/API.md`), not the web UI.
    pub api: bool,
    pub handler: fn() -> actix_web::Route,
}

const fn api(
    verb: Verb,
    path: &'static str,
    access: Access,
    handler: fn() -> actix_web::Route,
) -> Route {
    Route {
        verb,
        path,
        access,
        holds: false,
        api: true,
        handler,
    }
}

const fn held(mut route: Route) -> Route {
    route.holds = true;
    route
}

const fn page(path: &'static str, handler: fn() -> actix_web::Route) -> Route {
    Route {
        verb: Verb::Get,
        path,
        access: Access::Public,
        holds: false,
        api: false,
        handler,
    }
}

use Access::*;
use Verb::*;

/// The whole server. Order matters where patterns overlap: a literal segment
/// (`/chats/mine`, `/agents/me`) comes before the `{id}` that would also match it.
/// It is also the order in which the router and [`pattern_of`] try them.
pub const ROUTES: &[Route] = &[
    // The hot routes first: the router tries routes in this order, and a pattern with
    // `{id}` costs a regex match per try.
    api(Post, "/api/v1/chats/{id}/messages", OwnerOrAgent, || {
        web::route().to(messages::send_message)
    }),
    held(api(
        Get,
        "/api/v1/chats/{id}/messages",
        OwnerOrAgent,
        || web::route().to(messages::list_messages),
    )),
    held(api(Get, "/api/v1/inbox", Agent, || {
        web::route().to(inbox::poll_inbox)
    })),
    api(Get, "/healthz", Public, || web::route().to(health::healthz)),
    api(Get, "/metrics", Public, || web::route().to(metrics::scrape)),
    api(Get, "/api/v1/config", Public, || {
        web::route().to(settings::client_config)
    }),
    api(Get, "/api/v1/settings", Admin, || {
        web::route().to(settings::get_settings)
    }),
    api(Put, "/api/v1/settings", Admin, || {
        web::route().to(settings::put_settings)
    }),
    api(Get, "/api/v1/openapi.json", Public, || {
        web::route().to(docs::openapi_json)
    }),
    api(Post, "/api/v1/visitors", Public, || {
        web::route().to(visitors::create_visitor)
    }),
    api(Get, "/api/v1/visitors/me", Visitor, || {
        web::route().to(visitors::get_me)
    }),
    api(Patch, "/api/v1/visitors/me", Visitor, || {
        web::route().to(visitors::update_me)
    }),
    api(Post, "/api/v1/visitors/me/token", Visitor, || {
        web::route().to(visitors::rotate_token)
    }),
    api(Post, "/api/v1/visitors/continue", Public, || {
        web::route().to(mail::continue_visitor)
    }),
    api(Get, "/api/v1/unsubscribe", Public, || {
        web::route().to(mail::unsubscribe_page)
    }),
    api(Post, "/api/v1/unsubscribe", Public, || {
        web::route().to(mail::unsubscribe)
    }),
    api(Get, "/api/v1/visitors/{id}/export", Admin, || {
        web::route().to(visitors::export_visitor)
    }),
    api(Delete, "/api/v1/visitors/{id}", Admin, || {
        web::route().to(visitors::delete_visitor)
    }),
    api(Post, "/api/v1/chats", Visitor, || {
        web::route().to(chats::create_chat)
    }),
    api(Get, "/api/v1/chats", Agent, || {
        web::route().to(chats::list_chats)
    }),
    api(Get, "/api/v1/chats/mine", Visitor, || {
        web::route().to(chats::my_chat)
    }),
    api(Get, "/api/v1/chats/{id}", OwnerOrAgent, || {
        web::route().to(chats::get_chat)
    }),
    api(Patch, "/api/v1/chats/{id}", Agent, || {
        web::route().to(chats::update_chat)
    }),
    api(Post, "/api/v1/chats/{id}/typing", OwnerOrAgent, || {
        web::route().to(messages::set_typing)
    }),
    api(Post, "/api/v1/chats/{id}/read", OwnerOrAgent, || {
        web::route().to(messages::mark_read)
    }),
    api(Post, "/api/v1/chats/{id}/transcript", OwnerOrAgent, || {
        web::route().to(mail::send_transcript)
    }),
    api(Post, "/api/v1/chats/{id}/rating", Owner, || {
        web::route().to(ratings::rate_chat)
    }),
    api(Post, "/api/v1/chats/{id}/attachments", OwnerOrAgent, || {
        web::route().to(attachments::upload_attachment)
    }),
    api(Get, "/api/v1/attachments/{id}", OwnerOrAgent, || {
        web::route().to(attachments::download_attachment)
    }),
    api(Post, "/api/v1/agents/login", Public, || {
        web::route().to(agents::login)
    }),
    api(Post, "/api/v1/agents/logout", Agent, || {
        web::route().to(agents::logout)
    }),
    api(Get, "/api/v1/agents/me", Agent, || {
        web::route().to(agents::me)
    }),
    api(Patch, "/api/v1/agents/me", Agent, || {
        web::route().to(agents::update_me)
    }),
    api(Post, "/api/v1/agents/me/password", Agent, || {
        web::route().to(agents::change_password)
    }),
    api(Patch, "/api/v1/agents/{id}", Admin, || {
        web::route().to(agents::update_agent)
    }),
    api(Post, "/api/v1/agents", Admin, || {
        web::route().to(agents::create_agent)
    }),
    api(Get, "/api/v1/agents", Agent, || {
        web::route().to(agents::list_agents)
    }),
    api(Post, "/api/v1/webhooks", Admin, || {
        web::route().to(webhooks::create_webhook)
    }),
    api(Get, "/api/v1/webhooks", Admin, || {
        web::route().to(webhooks::list_webhooks)
    }),
    api(Delete, "/api/v1/webhooks/{id}", Admin, || {
        web::route().to(webhooks::delete_webhook)
    }),
    api(Get, "/api/v1/canned", Agent, || {
        web::route().to(canned::list_canned)
    }),
    api(Post, "/api/v1/canned", Admin, || {
        web::route().to(canned::create_canned)
    }),
    api(Patch, "/api/v1/canned/{id}", Admin, || {
        web::route().to(canned::update_canned)
    }),
    api(Delete, "/api/v1/canned/{id}", Admin, || {
        web::route().to(canned::delete_canned)
    }),
    api(Get, "/api/v1/search", Agent, || {
        web::route().to(search::search_messages)
    }),
    api(Get, "/api/v1/mail", Admin, || {
        web::route().to(mail::list_mail)
    }),
    page("/", || web::route().to(assets::visitor_page)),
    page("/agent", || web::route().to(assets::agent_page)),
    page("/api/docs", || web::route().to(assets::docs_page)),
    page("/widget.js", || web::route().to(assets::widget)),
    page("/static/{path:.*}", || web::route().to(assets::static_file)),
];

/// Mounts every route: one resource per path, with each of its methods, so a method the
/// path does not take gets `405` with the `Allow` header that lists the ones it takes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let mut mounted: Vec<&str> = Vec::new();
    for route in ROUTES {
        if mounted.contains(&route.path) {
            continue;
        }
        mounted.push(route.path);
        let same_path = ROUTES.iter().filter(|r| r.path == route.path);
        let mut resource = web::resource(route.path);
        for r in same_path.clone() {
            resource = resource.route((r.handler)().guard(r.verb));
        }
        let allow: Vec<&str> = same_path.clone().map(|r| r.verb.as_str()).collect();
        let allow = allow.join(", ");
        resource = resource.default_service(web::to(move || {
            let allow = allow.clone();
            async move { method_not_allowed(&allow) }
        }));
        if same_path.clone().any(|r| r.holds) {
            // The long poll holds its requests (see `held_request`).
            cfg.service(resource.wrap_fn(held_request::compact));
        } else {
            cfg.service(resource);
        }
    }
}

/// `405` for a method the path does not take (RFC 9110 asks for `Allow`).
fn method_not_allowed(allow: &str) -> HttpResponse {
    let mut response = ApiError::MethodNotAllowed.error_response();
    if let Ok(value) = HeaderValue::from_str(allow) {
        response.headers_mut().insert(header::ALLOW, value);
    }
    response
}

/// The pattern of the route that serves `path`, or `None`. Matched segment by segment
/// against the table, without allocating (the router's regexes would cost a second match
/// per request).
pub fn pattern_of(path: &str) -> Option<&'static str> {
    ROUTES
        .iter()
        .map(|route| route.path)
        .find(|pattern| matches(pattern, path))
}

fn matches(pattern: &str, path: &str) -> bool {
    let mut parts = pattern.trim_start_matches('/').split('/');
    let mut segments = path.trim_start_matches('/').split('/');
    loop {
        match (parts.next(), segments.next()) {
            (None, None) => return true,
            (Some(part), Some(_)) if part.starts_with('{') && part.ends_with(":.*}") => {
                return true
            }
            (Some(part), Some(segment)) => {
                let fits = if part.starts_with('{') {
                    !segment.is_empty()
                } else {
                    part == segment
                };
                if !fits {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_their_route_patterns_and_nothing_else() {
        assert_eq!(
            pattern_of("/api/v1/chats/abc/messages"),
            Some("/api/v1/chats/{id}/messages")
        );
        assert_eq!(pattern_of("/api/v1/chats/mine"), Some("/api/v1/chats/mine"));
        assert_eq!(pattern_of("/api/v1/agents/me"), Some("/api/v1/agents/me"));
        assert_eq!(pattern_of("/api/v1/agents/x1"), Some("/api/v1/agents/{id}"));
        assert_eq!(pattern_of("/static/js/app.js"), Some("/static/{path:.*}"));
        assert_eq!(pattern_of("/"), Some("/"));
        assert_eq!(pattern_of("/api/v1/chats/a/b/c/d"), None);
        assert_eq!(pattern_of("/api/v1/chats//messages"), None);
        assert_eq!(pattern_of("/wp-admin.php"), None);
    }

    #[test]
    fn each_path_and_method_appears_once() {
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[i + 1..] {
                assert!(
                    !(a.path == b.path && a.verb == b.verb),
                    "{} {} twice",
                    a.verb.as_str(),
                    a.path
                );
            }
        }
    }
}
