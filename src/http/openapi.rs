//! The OpenAPI 3.1 description of the JSON API, served at `GET /api/v1/openapi.json`.
//!
//! Each operation comes from the `#[utoipa::path]` annotation on its handler: its parameters,
//! body, answers and the errors only it can give. What a route gets from the layers it shares
//! with others is added here from [`ROUTES`], so no annotation can forget it or disagree with
//! the router: who may call it (the security requirement, `401`, `403`), the extractors'
//! `400`, `413` and `415`, the body deadline's `408`, the connection cap's `429` and the
//! shutdown's `503`. A unit test holds the table and the document to the same operations.

use std::sync::OnceLock;

use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, Header, Ref, RefOr, Response, ResponseBuilder};
use utoipa::OpenApi;

use crate::http::api::{
    agents, attachments, canned, chats, docs, health, inbox, mail, messages, metrics, ratings,
    search, settings, visitors, webhooks,
};
use crate::http::conn_limit::HEALTH_PATH;
use crate::http::routes::{Access, Route, Verb, ROUTES};
use crate::http::schemas::ErrorBody;

/// The security scheme of visitor tokens (`pv_…`), from `POST /api/v1/visitors`.
pub const VISITOR_TOKEN: &str = "visitor_token";
/// The security scheme of agent tokens (`pa_…`), from `POST /api/v1/agents/login`.
pub const AGENT_TOKEN: &str = "agent_token";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Parley",
        description = "The HTTP API of Parley, a self-hosted customer-support chat server. \
            Request and response bodies are JSON, except file uploads (multipart) and downloads. \
            Every error is a non-2xx status with `{\"error\": {\"code\", \"message\"}}`. \
            Ids are UUID strings; timestamps are RFC 3339 UTC with milliseconds. \
            Prose reference: docs/API.md.",
        license(name = "MIT", identifier = "MIT"),
    ),
    paths(
        health::healthz,
        metrics::scrape,
        settings::client_config,
        settings::get_settings,
        settings::put_settings,
        docs::openapi_json,
        visitors::create_visitor,
        visitors::get_me,
        visitors::update_me,
        visitors::rotate_token,
        mail::continue_visitor,
        mail::unsubscribe_page,
        mail::unsubscribe,
        mail::send_transcript,
        mail::list_mail,
        visitors::export_visitor,
        visitors::delete_visitor,
        chats::create_chat,
        chats::list_chats,
        chats::my_chat,
        chats::get_chat,
        chats::update_chat,
        ratings::rate_chat,
        messages::send_message,
        messages::list_messages,
        messages::set_typing,
        messages::mark_read,
        attachments::upload_attachment,
        attachments::download_attachment,
        agents::login,
        agents::logout,
        agents::me,
        agents::update_me,
        agents::change_password,
        agents::update_agent,
        agents::create_agent,
        agents::list_agents,
        inbox::poll_inbox,
        webhooks::create_webhook,
        webhooks::list_webhooks,
        webhooks::delete_webhook,
        canned::list_canned,
        canned::create_canned,
        canned::update_canned,
        canned::delete_canned,
        search::search_messages,
    ),
    components(schemas(
        ErrorBody,
        visitors::VisitorContact,
        visitors::NewVisitorRequest,
        chats::NewChat
    )),
    tags(
        (name = "visitors", description = "Customers: anonymous or named, each with its own token."),
        (name = "chats", description = "Conversations between one visitor and the agents."),
        (name = "messages", description = "Sending, the long poll, typing and read markers."),
        (name = "attachments", description = "Files sent in a chat."),
        (name = "agents", description = "Support staff: login, sessions, accounts."),
        (name = "inbox", description = "The agents' live list of chats."),
        (name = "webhooks", description = "Outgoing webhooks (admins)."),
        (name = "canned", description = "Canned responses: agents read them, admins write them."),
        (name = "search", description = "Full-text search over every chat's messages (agents)."),
        (name = "settings", description = "The team's settings: business hours, away message, pre-chat form (admins)."),
        (name = "server", description = "Health, metrics, client settings and this document."),
    )
)]
struct ApiDoc;

/// The document, built once.
pub fn json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        // A document of plain maps and strings always serializes.
        serde_json::to_string(&document()).unwrap_or_else(|_| "{}".into())
    })
}

/// The annotated operations, completed from the route table.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        VISITOR_TOKEN,
        SecurityScheme::Http(
            HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("pv_…")
            .description(Some(
                "A visitor token: `token` of `POST /api/v1/visitors`. A visitor acts on itself \
                 and its own chats.",
            ))
            .build(),
        ),
    );
    components.add_security_scheme(
        AGENT_TOKEN,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("pa_…")
                .description(Some(
                    "An agent token: `token` of `POST /api/v1/agents/login`. Some operations need \
                 an agent whose role is `admin`.",
                ))
                .build(),
        ),
    );
    for (name, response) in shared_responses() {
        components
            .responses
            .insert(name.to_string(), RefOr::T(response));
    }
    for route in ROUTES.iter().filter(|route| route.api) {
        if let Some(operation) = operation_mut(&mut doc, route.path, route.verb) {
            complete(operation, route);
        }
    }
    doc
}

/// The operation of `verb` at `path`, if the document has it.
pub fn operation_mut<'a>(
    doc: &'a mut utoipa::openapi::OpenApi,
    path: &str,
    verb: Verb,
) -> Option<&'a mut Operation> {
    let item = doc.paths.paths.get_mut(path)?;
    match verb {
        Verb::Get => item.get.as_mut(),
        Verb::Post => item.post.as_mut(),
        Verb::Put => item.put.as_mut(),
        Verb::Patch => item.patch.as_mut(),
        Verb::Delete => item.delete.as_mut(),
    }
}

/// Adds what `route` gets from the shared layers; the annotation's own answers stay.
fn complete(operation: &mut Operation, route: &Route) {
    let schemes: &[&str] = match route.access {
        Access::Public => &[],
        Access::Visitor | Access::Owner => &[VISITOR_TOKEN],
        Access::OwnerOrAgent => &[VISITOR_TOKEN, AGENT_TOKEN],
        Access::Agent | Access::Admin => &[AGENT_TOKEN],
    };
    if !schemes.is_empty() {
        // Any one of them will do.
        operation.security = Some(
            schemes
                .iter()
                .map(|scheme| SecurityRequirement::new(*scheme, Vec::<String>::new()))
                .collect(),
        );
    }
    let mut shared: Vec<(&str, &str)> = Vec::new();
    if route.access != Access::Public {
        // The token is checked first, and the session lookup may meet a stopping store.
        shared.push(("401", "Unauthorized"));
        shared.push(("503", "Unavailable"));
    }
    if matches!(
        route.access,
        Access::Visitor | Access::Owner | Access::Agent | Access::Admin
    ) {
        shared.push(("403", "Forbidden"));
    }
    let has_query = operation
        .parameters
        .iter()
        .flatten()
        .any(|p| matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Query));
    if has_query {
        shared.push(("400", "BadRequest"));
    }
    if operation.request_body.is_some() {
        shared.extend([
            ("400", "BadRequest"),
            ("408", "RequestTimeout"),
            ("413", "PayloadTooLarge"),
            ("415", "UnsupportedMediaType"),
        ]);
    }
    if route.path != HEALTH_PATH {
        shared.push(("429", "RateLimited"));
    }
    for (status, name) in shared {
        operation
            .responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
    }
}

/// The reusable answers [`complete`] refers to.
fn shared_responses() -> Vec<(&'static str, Response)> {
    let retry_after = header(
        utoipa::openapi::schema::Type::Integer,
        "Seconds to wait before trying again.",
    );
    vec![
        (
            "BadRequest",
            error_response(
                "`bad_request`: malformed JSON, wrong types, missing fields, or bad query \
                 parameters.",
            ),
        ),
        (
            "Unauthorized",
            with_header(
                error_response("`unauthorized`: a missing, unknown, expired or revoked token."),
                "WWW-Authenticate",
                header(utoipa::openapi::schema::Type::String, "`Bearer`"),
            ),
        ),
        (
            "Forbidden",
            error_response("`forbidden`: a valid token whose role may not do this."),
        ),
        (
            "RequestTimeout",
            error_response("`request_timeout`: the request body arrived too slowly."),
        ),
        (
            "PayloadTooLarge",
            error_response(
                "`payload_too_large`: the body is over its limit (64 KiB for JSON, \
                 `--max-upload` for files).",
            ),
        ),
        (
            "UnsupportedMediaType",
            error_response(
                "`unsupported_media_type`: the body is not of the documented content type.",
            ),
        ),
        (
            "RateLimited",
            with_header(
                error_response(
                    "`rate_limited`: too many requests (or connections) from this token or \
                     address.",
                ),
                "Retry-After",
                retry_after,
            ),
        ),
        (
            "Unavailable",
            error_response("`unavailable`: the server is shutting down."),
        ),
    ]
}

fn error_response(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            Content::new(Some(Ref::from_schema_name("ErrorBody"))),
        )
        .build()
}

fn header(schema_type: utoipa::openapi::schema::Type, description: &str) -> Header {
    let mut header = Header::new(utoipa::openapi::ObjectBuilder::new().schema_type(schema_type));
    header.description = Some(description.to_string());
    header
}

fn with_header(mut response: Response, name: &str, header: Header) -> Response {
    response.headers.insert(name.to_string(), header);
    response
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeSet;

    use actix_web::ResponseError;
    use serde_json::Value;

    use super::*;
    use crate::domain::{Chat, ChatStatus, Message, ReadMarkers, Sender, Typing, Visitor};
    use crate::http::error::ApiError;
    use crate::services::messages::PollAnswer;
    use crate::store::webhooks::Webhook;

    fn doc_json() -> Value {
        serde_json::from_str(json()).unwrap()
    }

    fn keys(value: &Value) -> BTreeSet<String> {
        value.as_object().unwrap().keys().cloned().collect()
    }

    fn schema_properties(doc: &Value, name: &str) -> BTreeSet<String> {
        keys(&doc["components"]["schemas"][name]["properties"])
    }

    #[test]
    fn the_document_and_the_route_table_name_the_same_operations() {
        let mut doc = document();
        for route in ROUTES.iter().filter(|r| r.api) {
            assert!(
                operation_mut(&mut doc, route.path, route.verb).is_some(),
                "{} {} is served but not documented",
                route.verb.as_str(),
                route.path
            );
        }
        for (path, item) in &doc.paths.paths {
            let methods = [
                ("GET", item.get.is_some()),
                ("POST", item.post.is_some()),
                ("PATCH", item.patch.is_some()),
                ("DELETE", item.delete.is_some()),
                ("PUT", item.put.is_some()),
            ];
            for (method, present) in methods {
                if present {
                    assert!(
                        ROUTES
                            .iter()
                            .any(|r| r.api && r.path == path && r.verb.as_str() == method),
                        "{method} {path} is documented but not an API route"
                    );
                }
            }
        }
    }

    #[test]
    fn the_document_is_openapi_3_1() {
        let doc = doc_json();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        let schemes = &doc["components"]["securitySchemes"];
        assert_eq!(schemes[VISITOR_TOKEN]["scheme"], "bearer");
        assert_eq!(schemes[AGENT_TOKEN]["scheme"], "bearer");
    }

    fn sample_chat() -> Chat {
        Chat {
            id: "c".into(),
            status: ChatStatus::Open,
            visitor: Visitor {
                id: "v".into(),
                name: None,
                email: None,
                page_url: None,
                created_at: "t".into(),
                context: None,
                external_id: None,
            },
            assignee: None,
            created_at: "t".into(),
            last_seq: 1,
            last_message_at: None,
            last_message: None,
            unread: 0,
            unread_by_visitor: 0,
            labels: Vec::new(),
            mentioned: false,
            rating: None,
            read: ReadMarkers::default(),
        }
    }

    #[test]
    fn the_poll_answer_schema_has_the_keys_a_poll_answer_has() {
        let message = Message {
            id: "m".into(),
            seq: 1,
            chat_id: "c".into(),
            sender: Sender::Agent,
            author: None,
            body: "hi".into(),
            client_id: None,
            event: None,
            attachment: None,
            private: false,
            created_at: "t".into(),
        };
        let answer = PollAnswer {
            messages: vec![message],
            next: 1,
            has_more: false,
            chat: sample_chat(),
            typing: Typing::default(),
            read: ReadMarkers::default(),
            state: 0,
        };
        let doc = doc_json();
        let served = serde_json::to_value(&answer).unwrap();
        assert_eq!(keys(&served), schema_properties(&doc, "PollAnswer"));
        let required: BTreeSet<String> = doc["components"]["schemas"]["PollAnswer"]["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        assert_eq!(required, keys(&served));
        // The objects inside carry every key their schema names, nulls included.
        for (name, value) in [
            ("Chat", &served["chat"]),
            ("Message", &served["messages"][0]),
            ("Visitor", &served["chat"]["visitor"]),
        ] {
            assert_eq!(keys(value), schema_properties(&doc, name), "{name}");
        }
    }

    #[test]
    fn the_webhook_schema_has_the_keys_a_webhook_has() {
        let webhook = Webhook {
            id: "w".into(),
            url: "https://example.com/hook".into(),
            events: vec!["chat.created".into()],
            created_at: "t".into(),
            disabled: false,
        };
        let served = serde_json::to_value(&webhook).unwrap();
        assert_eq!(keys(&served), schema_properties(&doc_json(), "Webhook"));
    }

    #[test]
    fn the_webhook_events_are_the_ones_the_server_knows() {
        let doc = doc_json();
        let documented = &doc["components"]["schemas"]["WebhookEvent"]["enum"];
        assert_eq!(
            documented,
            &serde_json::json!(crate::services::webhooks::EVENTS)
        );
    }

    #[test]
    fn every_error_code_of_the_server_is_in_the_error_schema() {
        let doc = doc_json();
        let documented: Vec<&str> = doc["components"]["schemas"]["ErrorCode"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let errors = [
            ApiError::bad_request("x"),
            ApiError::Unauthorized,
            ApiError::Forbidden("x"),
            ApiError::NotFound,
            ApiError::MethodNotAllowed,
            ApiError::Conflict("x".into()),
            ApiError::PayloadTooLarge("x".into()),
            ApiError::UnsupportedMediaType("x".into()),
            ApiError::invalid("x"),
            ApiError::RateLimited { retry_after: 1 },
            ApiError::Unavailable,
            ApiError::InsufficientStorage("x".into()),
            ApiError::RequestTimeout,
            ApiError::Internal("x".into()),
        ];
        for error in errors {
            assert!(
                documented.contains(&error.code()),
                "{} ({}) is not documented",
                error.code(),
                error.status_code()
            );
        }
        assert_eq!(documented.len(), 14, "{documented:?}");
    }
}
