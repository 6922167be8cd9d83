//! The authorization matrix: every route of the API × every kind of caller, from one table.
//!
//! Each request is built so that it succeeds for a caller who may make it; a `2xx` therefore
//! proves a caller is allowed, and `401`/`403`/`404` prove one is refused.

use std::collections::BTreeSet;

use parley::http::routes::{Access, ROUTES};
use parley::services::mail::links::{Purpose, Signer};
use serde_json::{json, Value};

use crate::helpers::{contract_code, spawn_app, Reply, TestApp};

/// Who calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    /// No `Authorization` header.
    Nobody,
    /// A well-formed token that the server never issued.
    BadToken,
    /// The visitor whose chat the path names.
    Owner,
    /// Another visitor, with an open chat of their own.
    OtherVisitor,
    /// A non-admin agent.
    Agent,
    Admin,
}

const CALLERS: [Who; 6] = [
    Who::Nobody,
    Who::BadToken,
    Who::Owner,
    Who::OtherVisitor,
    Who::Agent,
    Who::Admin,
];

/// What a cell's request may use up, so that it gets accounts of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spends {
    Nothing,
    /// The caller's agent session (logout): a fresh login.
    Session,
    /// The caller's agent account (password change): a fresh account.
    Account,
}

/// A request body.
enum Body {
    None,
    Json(Value),
    /// A `multipart/form-data` body with this boundary.
    Multipart(&'static str, Vec<u8>),
}

/// One route: method, path (`{chat}` is the owner's open chat, `{closed_chat}` an earlier
/// one of the owner's, `{visitor}` the owner, `{attachment}` a file in the open chat,
/// `{agent}` another agent, `{webhook}` a webhook of the cell's own, `{canned}` a canned
/// response of the cell's own), a body that makes the request succeed for an allowed caller,
/// and the expected status per caller in the order of [`CALLERS`].
struct Route {
    method: &'static str,
    path: &'static str,
    body: fn(&World) -> Body,
    spends: Spends,
    expect: [u16; 6],
}

fn route(
    method: &'static str,
    path: &'static str,
    body: fn(&World) -> Body,
    expect: [u16; 6],
) -> Route {
    Route {
        method,
        path,
        body,
        spends: Spends::Nothing,
        expect,
    }
}

fn no_body(_: &World) -> Body {
    Body::None
}

fn upload(w: &World) -> Body {
    upload_for(&format!("u{}", w.nonce))
}

/// A small text file as the upload form's `file` field, with this client id.
fn upload_for(client_id: &str) -> Body {
    let boundary = "parley-boundary-7d2f";
    let form = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"client_id\"\r\n\r\n{client_id}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"note.txt\"\r\n\
         Content-Type: text/plain\r\n\r\nhello file\r\n--{boundary}--\r\n"
    );
    Body::Multipart(boundary, form.into_bytes())
}

// The expected statuses of each kind of route, in the order of `CALLERS`:
// nobody, bad token, owner, other visitor, agent, admin.
fn public(ok: u16) -> [u16; 6] {
    [ok, ok, ok, ok, ok, ok]
}
fn visitor_self(ok: u16) -> [u16; 6] {
    [401, 401, ok, ok, 403, 403]
}
fn owner_or_agent(ok: u16) -> [u16; 6] {
    [401, 401, ok, 404, ok, ok]
}
fn owner_only(ok: u16) -> [u16; 6] {
    [401, 401, ok, 404, 403, 403]
}
fn agent_only(ok: u16) -> [u16; 6] {
    [401, 401, 403, 403, ok, ok]
}
fn admin_only(ok: u16) -> [u16; 6] {
    [401, 401, 403, 403, 403, ok]
}

/// The whole API. A route missing here fails `every_route_of_the_api_is_in_the_table`.
fn routes() -> Vec<Route> {
    vec![
        route("GET", "/healthz", no_body, public(200)),
        route("GET", "/metrics", no_body, public(200)),
        route("GET", "/api/v1/config", no_body, public(200)),
        route("GET", "/api/v1/openapi.json", no_body, public(200)),
        route(
            "POST",
            "/api/v1/visitors",
            |_| Body::Json(json!({"name": "New Visitor"})),
            public(201),
        ),
        route("GET", "/api/v1/visitors/me", no_body, visitor_self(200)),
        route(
            "PATCH",
            "/api/v1/visitors/me",
            |_| Body::Json(json!({"name": "Renamed Visitor", "email": "renamed@example.com"})),
            visitor_self(200),
        ),
        route(
            "POST",
            "/api/v1/visitors/me/token",
            no_body,
            visitor_self(200),
        ),
        route(
            "GET",
            "/api/v1/visitors/{visitor}/export",
            no_body,
            admin_only(200),
        ),
        route(
            "DELETE",
            "/api/v1/visitors/{visitor}",
            no_body,
            admin_only(204),
        ),
        // Both visitors have an open chat, so creating one answers it with 200.
        route(
            "POST",
            "/api/v1/chats",
            |_| Body::Json(json!({})),
            visitor_self(200),
        ),
        route("GET", "/api/v1/chats?status=all", no_body, agent_only(200)),
        route("GET", "/api/v1/chats/mine", no_body, visitor_self(200)),
        route("GET", "/api/v1/chats/{chat}", no_body, owner_or_agent(200)),
        route(
            "PATCH",
            "/api/v1/chats/{chat}",
            |_| Body::Json(json!({"status": "closed"})),
            agent_only(200),
        ),
        route(
            "GET",
            "/api/v1/chats/{chat}/messages?after=0",
            no_body,
            owner_or_agent(200),
        ),
        route(
            "POST",
            "/api/v1/chats/{chat}/messages",
            |w| Body::Json(json!({"body": "hello", "client_id": format!("c{}", w.nonce)})),
            owner_or_agent(201),
        ),
        route(
            "POST",
            "/api/v1/chats/{chat}/typing",
            |_| Body::Json(json!({"typing": true})),
            owner_or_agent(204),
        ),
        route(
            "POST",
            "/api/v1/chats/{chat}/read",
            |_| Body::Json(json!({"seq": 1})),
            owner_or_agent(204),
        ),
        route(
            "POST",
            "/api/v1/chats/{closed_chat}/rating",
            |_| Body::Json(json!({"rating": 5})),
            owner_only(201),
        ),
        route(
            "POST",
            "/api/v1/chats/{chat}/attachments",
            upload,
            owner_or_agent(201),
        ),
        route(
            "GET",
            "/api/v1/attachments/{attachment}",
            no_body,
            owner_or_agent(200),
        ),
        route(
            "POST",
            "/api/v1/agents/login",
            |w| Body::Json(json!({"email": w.agent_email, "password": AGENT_PASSWORD})),
            public(200),
        ),
        Route {
            spends: Spends::Session,
            ..route("POST", "/api/v1/agents/logout", no_body, agent_only(204))
        },
        route("GET", "/api/v1/agents/me", no_body, agent_only(200)),
        route(
            "PATCH",
            "/api/v1/agents/me",
            |_| Body::Json(json!({"availability": "online"})),
            agent_only(200),
        ),
        route("GET", "/api/v1/settings", no_body, admin_only(200)),
        route(
            "PUT",
            "/api/v1/settings",
            |_| Body::Json(json!({"away_message": "Back soon"})),
            admin_only(200),
        ),
        Route {
            spends: Spends::Account,
            ..route(
                "POST",
                "/api/v1/agents/me/password",
                |_| {
                    Body::Json(json!({
                        "current_password": AGENT_PASSWORD,
                        "new_password": "another-long-password",
                    }))
                },
                agent_only(204),
            )
        },
        route(
            "PATCH",
            "/api/v1/agents/{agent}",
            |_| Body::Json(json!({"name": "Renamed Agent"})),
            admin_only(200),
        ),
        route(
            "POST",
            "/api/v1/agents",
            |w| {
                Body::Json(json!({
                    "email": format!("new{}@example.com", w.nonce),
                    "name": "New Agent",
                    "password": AGENT_PASSWORD,
                }))
            },
            admin_only(201),
        ),
        route("GET", "/api/v1/agents", no_body, agent_only(200)),
        route("GET", "/api/v1/inbox?after=0", no_body, agent_only(200)),
        route(
            "POST",
            "/api/v1/webhooks",
            |_| {
                Body::Json(
                    json!({"url": "https://hooks.example.invalid/hook", "events": ["chat.created"]}),
                )
            },
            admin_only(201),
        ),
        route("GET", "/api/v1/webhooks", no_body, admin_only(200)),
        route(
            "DELETE",
            "/api/v1/webhooks/{webhook}",
            no_body,
            admin_only(204),
        ),
        route("GET", "/api/v1/canned", no_body, agent_only(200)),
        route(
            "POST",
            "/api/v1/canned",
            |w| Body::Json(json!({"shortcut": format!("new{}", w.nonce), "body": "Hello!"})),
            admin_only(201),
        ),
        route(
            "PATCH",
            "/api/v1/canned/{canned}",
            |_| Body::Json(json!({"body": "Hello again!"})),
            admin_only(200),
        ),
        route(
            "DELETE",
            "/api/v1/canned/{canned}",
            no_body,
            admin_only(204),
        ),
        route("GET", "/api/v1/search?q=first", no_body, agent_only(200)),
        // Email is off in this app (and the chat open): a caller who passes gets `409`.
        route(
            "POST",
            "/api/v1/chats/{chat}/transcript",
            no_body,
            owner_or_agent(409),
        ),
        // A link is its own credential: a bad one is `403` whoever holds it.
        // A link from an email is its own credential: whoever holds it may use it.
        route(
            "POST",
            "/api/v1/visitors/continue",
            |w| Body::Json(json!({"link": w.continue_link})),
            public(200),
        ),
        route(
            "GET",
            "/api/v1/unsubscribe?token={unsubscribe}",
            no_body,
            public(200),
        ),
        route(
            "POST",
            "/api/v1/unsubscribe?token={unsubscribe}",
            no_body,
            public(200),
        ),
        route(
            "PATCH",
            "/api/v1/agents/me",
            |_| Body::Json(json!({"email_notifications": true})),
            agent_only(200),
        ),
        route("GET", "/api/v1/mail", no_body, admin_only(200)),
    ]
}

const AGENT_PASSWORD: &str = "a-long-password";
const BAD_TOKEN: &str = "pv_0000000000000000000000000000000000000000000000000000000000000000";

/// Accounts that live as long as the app: logging in is slow (argon2), visitors are cheap.
struct Accounts {
    admin: String,
    agent: String,
    agent_email: String,
    /// The agent that `{agent}` paths name (neither caller).
    other_agent_id: String,
}

/// Everything one cell's request needs, fresh for the cell.
struct World {
    webhook_id: String,
    canned_id: String,
    owner: String,
    owner_id: String,
    chat_id: String,
    closed_chat_id: String,
    attachment_id: String,
    other: String,
    agent: String,
    admin: String,
    agent_email: String,
    nonce: usize,
    /// The owner's continuity link and unsubscribe token, signed with the server's key.
    continue_link: String,
    unsubscribe_token: String,
}

impl World {
    async fn new(
        app: &TestApp,
        accounts: &Accounts,
        spends: Spends,
        who: Who,
        nonce: usize,
    ) -> Self {
        // The owner's first chat, closed; its second is the open one the paths name.
        let mut owner = app.new_visitor_chat().await;
        app.patch_chat(&accounts.admin, &owner.chat_id, json!({"status": "closed"}))
            .await
            .assert_status(200);
        let closed_chat_id = owner.chat_id.clone();
        owner.chat_id = app.create_chat(&owner.token).await.assert_status(201)["chat"]["id"]
            .as_str()
            .expect("a chat id")
            .to_string();
        app.send(&owner.token, &owner.chat_id, "first", None)
            .await
            .assert_status(201);
        let file = request(
            app,
            "POST",
            &format!("/api/v1/chats/{}/attachments", owner.chat_id),
            Some(&owner.token),
            upload_for(&format!("w{nonce}")),
        )
        .await;
        let attachment_id = file.assert_status(201)["message"]["attachment"]["id"]
            .as_str()
            .expect("an attachment id")
            .to_string();
        let other = app.new_visitor_chat().await;
        let webhook = app
            .call(
                "POST",
                "/api/v1/webhooks",
                Some(&accounts.admin),
                Some(
                    json!({"url": "https://hooks.example.invalid/hook", "events": ["chat.closed"]}),
                ),
            )
            .await;
        let webhook_id = webhook.assert_status(201)["webhook"]["id"]
            .as_str()
            .expect("a webhook id")
            .to_string();
        let canned = app
            .call(
                "POST",
                "/api/v1/canned",
                Some(&accounts.admin),
                Some(json!({"shortcut": format!("cell{nonce}"), "body": "Hi!"})),
            )
            .await;
        let canned_id = canned.assert_status(201)["canned"]["id"]
            .as_str()
            .expect("a canned response id")
            .to_string();
        let (mut agent, mut admin) = (accounts.agent.clone(), accounts.admin.clone());
        match (spends, who) {
            (Spends::Session, Who::Agent) => agent = login(app, &accounts.agent_email).await,
            (Spends::Session, Who::Admin) => admin = app.admin_token().await,
            (Spends::Account, Who::Agent | Who::Admin) => {
                let role = if who == Who::Admin { "admin" } else { "agent" };
                let email = format!("spent{nonce}@example.com");
                app.call(
                    "POST",
                    "/api/v1/agents",
                    Some(&accounts.admin),
                    Some(json!({"email": email, "name": "Spent", "password": AGENT_PASSWORD, "role": role})),
                )
                .await
                .assert_status(201);
                let token = login(app, &email).await;
                if who == Who::Admin {
                    admin = token;
                } else {
                    agent = token;
                }
            }
            _ => {}
        }
        let key: String = app
            .store
            .read(|db| {
                let sql = "SELECT value FROM server_secrets WHERE name = 'mail_links'";
                Ok(db.query_row(sql, &[], |r| r.get(0))?)
            })
            .await
            .expect("the server's link key");
        let signer = Signer::new(key.as_bytes());
        let expires = i64::MAX / 2;
        let continue_link = signer.sign(Purpose::Continue, &owner.visitor_id, expires);
        let unsubscribe_token = signer.sign(Purpose::Unsubscribe, &owner.visitor_id, expires);
        Self {
            continue_link,
            unsubscribe_token,
            webhook_id,
            canned_id,
            owner: owner.token,
            owner_id: owner.visitor_id,
            chat_id: owner.chat_id,
            closed_chat_id,
            attachment_id,
            other: other.token,
            agent,
            admin,
            agent_email: accounts.agent_email.clone(),
            nonce,
        }
    }

    fn token(&self, who: Who) -> Option<&str> {
        match who {
            Who::Nobody => None,
            Who::BadToken => Some(BAD_TOKEN),
            Who::Owner => Some(&self.owner),
            Who::OtherVisitor => Some(&self.other),
            Who::Agent => Some(&self.agent),
            Who::Admin => Some(&self.admin),
        }
    }
}

/// Sends `body` to `path` with an optional token.
async fn request(
    app: &TestApp,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Body,
) -> Reply {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = app.client.request(method, app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request = match body {
        Body::None => request,
        Body::Json(value) => request.json(&value),
        Body::Multipart(boundary, bytes) => request
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(bytes),
    };
    TestApp::reply(request.send().await.expect("the server answers")).await
}

async fn login(app: &TestApp, email: &str) -> String {
    app.login(email, AGENT_PASSWORD).await.assert_status(200)["token"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn accounts(app: &TestApp) -> Accounts {
    let admin = app.admin_token().await;
    let agent_email = "agent@example.com".to_string();
    let (agent, _) = app.new_agent(&admin, &agent_email).await;
    let other = app
        .call(
            "POST",
            "/api/v1/agents",
            Some(&admin),
            Some(
                json!({"email": "other@example.com", "name": "Other", "password": AGENT_PASSWORD}),
            ),
        )
        .await;
    let other_agent_id = other.assert_status(201)["agent"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    Accounts {
        admin,
        agent,
        agent_email,
        other_agent_id,
    }
}

#[tokio::test]
async fn every_route_answers_every_kind_of_caller_as_the_table_says() {
    let app = spawn_app().await;
    let accounts = accounts(&app).await;
    let mut mismatches = Vec::new();
    let mut nonce = 0;
    for route in routes() {
        for (who, expected) in CALLERS.into_iter().zip(route.expect) {
            nonce += 1;
            let world = World::new(&app, &accounts, route.spends, who, nonce).await;
            let path = route
                .path
                .replace("{chat}", &world.chat_id)
                .replace("{closed_chat}", &world.closed_chat_id)
                .replace("{visitor}", &world.owner_id)
                .replace("{attachment}", &world.attachment_id)
                .replace("{agent}", &accounts.other_agent_id)
                .replace("{webhook}", &world.webhook_id)
                .replace("{canned}", &world.canned_id)
                .replace("{unsubscribe}", &world.unsubscribe_token);
            let body = (route.body)(&world);
            let reply = request(&app, route.method, &path, world.token(who), body).await;
            let status = reply.status.as_u16();
            let shape_ok = match contract_code(status) {
                Some(code) => {
                    reply.body["error"]["code"] == code
                        && reply.body["error"]["message"].is_string()
                }
                None => reply.status.is_success(),
            };
            if status != expected || !shape_ok {
                mismatches.push(format!(
                    "{} {} as {who:?}: expected {expected}, got {status} {}",
                    route.method, route.path, reply.body
                ));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} cells differ from the table:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

/// `(METHOD, path)` of every route of the JSON API in the server's route table, paths with
/// `{…}` as `{}`.
fn served_routes() -> BTreeSet<(String, String)> {
    ROUTES
        .iter()
        .filter(|r| r.api)
        .map(|r| (r.verb.as_str().to_string(), normalize(r.path)))
        .collect()
}

/// A path without its query, with every `{…}` segment written `{}`.
fn normalize(path: &str) -> String {
    let path = path.split('?').next().unwrap_or_default();
    path.split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "{}"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn every_route_of_the_api_is_in_the_table() {
    let served = served_routes();
    assert!(
        served.contains(&("POST".into(), "/api/v1/chats/{}/messages".into())),
        "the route parser finds the routes: {served:?}"
    );
    let table: BTreeSet<(String, String)> = routes()
        .iter()
        .map(|r| (r.method.to_string(), normalize(r.path)))
        .collect();
    let missing: Vec<_> = served.difference(&table).collect();
    assert!(
        missing.is_empty(),
        "routes missing from the table: {missing:?}"
    );
    let stale: Vec<_> = table.difference(&served).collect();
    assert!(
        stale.is_empty(),
        "table rows that are not served: {stale:?}"
    );
}

/// The refusals a route's declared access implies, in the order of `CALLERS` (`0` where
/// the caller is allowed).
fn refusals(access: Access) -> [u16; 6] {
    match access {
        Access::Public => public(0),
        Access::Visitor => visitor_self(0),
        Access::OwnerOrAgent => owner_or_agent(0),
        Access::Owner => owner_only(0),
        Access::Agent => agent_only(0),
        Access::Admin => admin_only(0),
    }
}

#[test]
fn the_declared_access_of_each_route_is_what_the_table_expects() {
    let mut disagreements = Vec::new();
    for route in routes() {
        let served = ROUTES.iter().find(|r| {
            r.verb.as_str() == route.method && normalize(r.path) == normalize(route.path)
        });
        let Some(served) = served else { continue };
        // A `409` is an answer past the access check (a rule of the resource refused).
        let expected = route.expect.map(|status| {
            if status < 300 || status == 409 {
                0
            } else {
                status
            }
        });
        if refusals(served.access) != expected {
            disagreements.push(format!(
                "{} {}: declared {:?}",
                route.method, route.path, served.access
            ));
        }
    }
    assert!(disagreements.is_empty(), "{disagreements:#?}");
}

/// The other visitor's answer on a route, its path naming `chat_id` and `attachment_id`.
async fn answer(
    app: &TestApp,
    route: &Route,
    world: &World,
    chat_id: &str,
    attachment_id: &str,
) -> Reply {
    let path = route
        .path
        .replace("{chat}", chat_id)
        .replace("{closed_chat}", chat_id)
        .replace("{attachment}", attachment_id);
    request(
        app,
        route.method,
        &path,
        Some(&world.other),
        (route.body)(world),
    )
    .await
}

#[tokio::test]
async fn a_visitor_cannot_tell_another_visitors_chat_from_a_missing_one() {
    let app = spawn_app().await;
    let accounts = accounts(&app).await;
    let missing = "01900000-0000-7000-8000-000000000000";
    for (nonce, route) in routes()
        .into_iter()
        .filter(|r| {
            r.path.contains("{chat}")
                || r.path.contains("{closed_chat}")
                || r.path.contains("{attachment}")
        })
        .enumerate()
    {
        let world = World::new(&app, &accounts, route.spends, Who::OtherVisitor, nonce).await;
        let foreign = answer(&app, &route, &world, &world.chat_id, &world.attachment_id).await;
        let unknown = answer(&app, &route, &world, missing, missing).await;
        assert_eq!(
            (foreign.status, &foreign.body),
            (unknown.status, &unknown.body),
            "{} {}",
            route.method,
            route.path
        );
        assert!(
            foreign.status.is_client_error(),
            "{} {}",
            route.method,
            route.path
        );
    }
}

#[tokio::test]
async fn a_demoted_admin_loses_admin_rights_at_once() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let created = app
        .call(
            "POST",
            "/api/v1/agents",
            Some(&admin),
            Some(json!({"email": "second@example.com", "name": "Second", "password": AGENT_PASSWORD, "role": "admin"})),
        )
        .await;
    let second_id = created.assert_status(201)["agent"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let second = login(&app, "second@example.com").await;
    // Used once as an admin, so any cache of who this token is holds "admin".
    app.call("GET", "/api/v1/agents/me", Some(&second), None)
        .await
        .assert_status(200);

    app.call(
        "PATCH",
        &format!("/api/v1/agents/{second_id}"),
        Some(&admin),
        Some(json!({"role": "agent"})),
    )
    .await
    .assert_status(200);

    let attempt = app
        .call(
            "POST",
            "/api/v1/agents",
            Some(&second),
            Some(json!({"email": "sneaky@example.com", "name": "Sneaky", "password": AGENT_PASSWORD, "role": "admin"})),
        )
        .await;
    attempt.assert_error(403, "forbidden");
    let me = app
        .call("GET", "/api/v1/agents/me", Some(&second), None)
        .await;
    assert_eq!(me.assert_status(200)["agent"]["role"], "agent");
}
