//! Identity verification: a host site vouches for its logged-in user with an HMAC of the
//! user's id; that id then finds the same visitor (and its chats) from any browser, and
//! nothing else can claim it.

use parley::services::auth::new_token;
use parley::services::identity::sign;
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, TestApp};

pub(crate) const SECRET: &str = "test-identity-secret-0123456789";

pub(crate) async fn identified_app(required: bool) -> TestApp {
    spawn_app_with(|config| {
        config.identity_secret = Some(SECRET.into());
        config.identity_required = required;
    })
    .await
}

/// `POST /api/v1/visitors` as the host site's user `id`, signed with the right secret.
pub(crate) async fn identify(app: &TestApp, id: &str, extra: Value) -> (u16, Value) {
    let mut body = json!({"external_id": id, "identity_hash": sign(SECRET, id)});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    let reply = app.create_visitor(body).await;
    (reply.status.as_u16(), reply.body)
}

fn token(body: &Value) -> String {
    body["token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_signed_user_id_finds_the_same_visitor_and_its_chat_from_a_second_browser() {
    let app = identified_app(false).await;
    let (status, first) = identify(
        &app,
        "42",
        json!({"name": "Ann", "email": "ann@example.com"}),
    )
    .await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["visitor"]["external_id"], "42");
    let laptop = token(&first);
    let chat = app.create_chat(&laptop).await;
    let chat_id = chat.assert_status(201)["chat"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.send(&laptop, &chat_id, "hello from my laptop", None)
        .await
        .assert_status(201);

    // The same user on a phone: the same visitor, a token of its own, the same chat.
    let (status, second) = identify(&app, "42", json!({"name": "Ann B."})).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["visitor"]["id"], first["visitor"]["id"]);
    assert_eq!(second["visitor"]["name"], "Ann B.", "the name is updated");
    assert_eq!(second["visitor"]["email"], "ann@example.com");
    let phone = token(&second);
    assert_ne!(phone, laptop);
    let mine = app
        .call("GET", "/api/v1/chats/mine", Some(&phone), None)
        .await;
    assert_eq!(mine.assert_status(200)["chat"]["id"], chat_id.as_str());
    let history = app.messages(&phone, &chat_id, 0, 100).await;
    assert_eq!(
        history.assert_status(200)["messages"][0]["body"],
        "hello from my laptop"
    );
    // Both devices keep working.
    app.call("GET", "/api/v1/visitors/me", Some(&laptop), None)
        .await
        .assert_status(200);
    // The agents see whom the site vouched for.
    let admin = app.admin_token().await;
    assert_eq!(
        app.chat(&admin, &chat_id).await["visitor"]["external_id"],
        "42"
    );
}

#[tokio::test]
async fn a_wrong_or_missing_hash_is_refused() {
    let app = identified_app(false).await;
    let refusals = [
        json!({"external_id": "42", "identity_hash": sign(SECRET, "43")}),
        json!({"external_id": "42", "identity_hash": sign("another-secret-of-some-length", "42")}),
        json!({"external_id": "42", "identity_hash": "not hex"}),
        json!({"external_id": "42", "identity_hash": ""}),
        json!({"external_id": "42"}),
    ];
    for body in refusals {
        app.create_visitor(body.clone())
            .await
            .assert_error(401, "unauthorized");
    }
    let long = "x".repeat(257);
    let invalid = [
        json!({"identity_hash": sign(SECRET, "42")}),
        json!({"external_id": long, "identity_hash": sign(SECRET, &long)}),
        json!({"external_id": "", "identity_hash": sign(SECRET, "")}),
    ];
    for body in invalid {
        app.create_visitor(body).await.assert_error(422, "invalid");
    }
    let longest = "x".repeat(256);
    let (status, _) = identify(&app, &longest, json!({})).await;
    assert_eq!(status, 201);
    // Anonymous visitors are still welcome when identity is not required.
    app.create_visitor(json!({})).await.assert_status(201);
}

#[tokio::test]
async fn a_changed_user_id_never_reveals_the_other_users_chats() {
    let app = identified_app(false).await;
    let (_, user42) = identify(&app, "42", json!({})).await;
    let token42 = token(&user42);
    let chat = app.create_chat(&token42).await;
    let chat42 = chat.assert_status(201)["chat"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.send(&token42, &chat42, "forty-two's secret", None)
        .await
        .assert_status(201);

    // The browser's user becomes 43, still holding the token minted for 42: the site's new
    // signature is for 43, and that is all the answer is about.
    let reply = app
        .client
        .post(app.url("/api/v1/visitors"))
        .bearer_auth(&token42)
        .json(&json!({"external_id": "43", "identity_hash": sign(SECRET, "43")}))
        .send()
        .await
        .unwrap();
    let user43 = TestApp::reply(reply).await;
    let body43 = user43.assert_status(201).clone();
    assert_ne!(body43["visitor"]["id"], user42["visitor"]["id"]);
    let token43 = token(&body43);
    app.call("GET", "/api/v1/chats/mine", Some(&token43), None)
        .await
        .assert_error(404, "not_found");
    app.call(
        "GET",
        &format!("/api/v1/chats/{chat42}"),
        Some(&token43),
        None,
    )
    .await
    .assert_error(404, "not_found");
    app.messages(&token43, &chat42, 0, 100)
        .await
        .assert_error(404, "not_found");
    let own = app.create_chat(&token43).await;
    assert_ne!(own.assert_status(201)["chat"]["id"], chat42.as_str());
    // 42 is still 42, and only 42.
    let (status, again) = identify(&app, "42", json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(again["visitor"]["id"], user42["visitor"]["id"]);
}

/// A visitor without an external id, with a token and an open chat, written straight into
/// the database (as one made before identity became required would be).
async fn unverified_visitor_with_chat(app: &TestApp) -> (String, String) {
    let token = new_token("visitor");
    let (visitor_id, chat_id) = (parley::domain::new_id(), parley::domain::new_id());
    let (v, c, hash) = (visitor_id.clone(), chat_id.clone(), token.hash);
    app.store
        .write(move |db| {
            let now = parley::domain::now();
            let visitor = parley::domain::Visitor {
                id: v.clone(),
                name: None,
                email: None,
                page_url: None,
                created_at: now.clone(),
                context: None,
                external_id: None,
            };
            parley::store::visitors::insert(db, &visitor)?;
            parley::store::tokens::insert(db, &hash, "visitor", &v, &now, None)?;
            parley::store::chats::insert(db, &c, &v, &now)?;
            Ok(())
        })
        .await
        .unwrap();
    (token.token, chat_id)
}

#[tokio::test]
async fn when_identity_is_required_only_verified_visitors_get_in() {
    let app = identified_app(true).await;
    for body in [
        json!({}),
        json!({"name": "Anon"}),
        json!({"external_id": "42", "identity_hash": sign(SECRET, "43")}),
        json!({"external_id": "42"}),
    ] {
        app.create_visitor(body)
            .await
            .assert_error(401, "unauthorized");
    }
    // An empty body too.
    let empty = app
        .client
        .post(app.url("/api/v1/visitors"))
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status(), 401);

    // A token of an unverified visitor works nowhere: no message gets in (Chatwoot #9493).
    let (unverified, chat_id) = unverified_visitor_with_chat(&app).await;
    app.call("GET", "/api/v1/visitors/me", Some(&unverified), None)
        .await
        .assert_error(401, "unauthorized");
    app.create_chat(&unverified)
        .await
        .assert_error(401, "unauthorized");
    app.send(&unverified, &chat_id, "let me in", None)
        .await
        .assert_error(401, "unauthorized");
    app.poll(&unverified, &chat_id, 0, 0)
        .await
        .assert_error(401, "unauthorized");
    let admin = app.admin_token().await;
    let history = app.messages(&admin, &chat_id, 0, 100).await;
    assert_eq!(history.assert_status(200)["messages"], json!([]));

    // A verified visitor chats as usual.
    let (status, verified) = identify(&app, "42", json!({})).await;
    assert_eq!(status, 201);
    let verified = token(&verified);
    let chat = app.create_chat(&verified).await;
    let chat_id = chat.assert_status(201)["chat"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.send(&verified, &chat_id, "hello", None)
        .await
        .assert_status(201);
}

#[tokio::test]
async fn without_a_secret_identity_fields_are_invalid() {
    let app = crate::helpers::spawn_app().await;
    let reply = app
        .create_visitor(json!({"external_id": "42", "identity_hash": sign(SECRET, "42")}))
        .await;
    reply.assert_error(422, "invalid");
    let message = reply.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("not configured"), "{message}");
    app.create_visitor(json!({"name": "Anon"}))
        .await
        .assert_status(201);
}

#[tokio::test]
async fn a_server_that_requires_identity_needs_a_secret_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::helpers::test_config(&dir.path().join("parley.db"));
    config.identity_required = true;
    let built = parley::http::server::Application::build(config).await;
    let error = built.err().expect("no secret, no start").to_string();
    assert!(error.contains("identity"), "{error}");
}

#[tokio::test]
async fn two_devices_identifying_at_once_get_one_visitor() {
    let app = identified_app(false).await;
    let ((first, a), (second, b)) = tokio::join!(
        identify(&app, "77", json!({})),
        identify(&app, "77", json!({}))
    );
    let mut statuses = [first, second];
    statuses.sort();
    assert_eq!(statuses, [200, 201]);
    assert_eq!(a["visitor"]["id"], b["visitor"]["id"]);
}
