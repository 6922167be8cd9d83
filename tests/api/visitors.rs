//! Visitors: creation, their details, and token rotation.

use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn an_anonymous_visitor_gets_a_token_shown_once_and_stored_only_as_a_hash() {
    let app = spawn_app().await;
    let reply = app.create_visitor(json!({})).await;
    let body = reply.assert_status(201);
    let token = body["token"].as_str().unwrap();
    assert!(token.len() >= 40);
    assert!(body["visitor"]["name"].is_null());
    assert!(body["visitor"]["created_at"]
        .as_str()
        .unwrap()
        .ends_with('Z'));

    let conn = rusqlite::Connection::open(&app.db_path).unwrap();
    let stored: Vec<u8> = conn
        .query_row("SELECT hash FROM tokens WHERE kind = 'visitor'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(stored.len(), 32);
    assert_ne!(stored, token.as_bytes());
    let plain: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM tokens WHERE hash = ?1",
            [token],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(plain, 0);
}

#[tokio::test]
async fn a_visitor_may_give_a_name_and_email() {
    let app = spawn_app().await;
    let reply = app
        .create_visitor(json!({"name": " Ann ", "email": "Ann@Example.com", "page_url": "https://shop.example/p"}))
        .await;
    let visitor = &reply.assert_status(201)["visitor"];
    assert_eq!(visitor["name"], "Ann");
    assert_eq!(visitor["email"], "ann@example.com");
    assert_eq!(visitor["page_url"], "https://shop.example/p");
}

#[tokio::test]
async fn an_invalid_email_is_refused_as_invalid() {
    let app = spawn_app().await;
    app.create_visitor(json!({"email": "not-an-email"}))
        .await
        .assert_error(422, "invalid");
}

#[tokio::test]
async fn a_visitor_can_update_its_contact_details() {
    let app = spawn_app().await;
    let (token, _) = app.new_visitor().await;
    let reply = app
        .call(
            "PATCH",
            "/api/v1/visitors/me",
            Some(&token),
            Some(json!({"name": "Bob"})),
        )
        .await;
    assert_eq!(reply.assert_status(200)["visitor"]["name"], "Bob");
    let me = app
        .call("GET", "/api/v1/visitors/me", Some(&token), None)
        .await;
    assert_eq!(me.assert_status(200)["visitor"]["name"], "Bob");
}
