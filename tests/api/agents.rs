//! Agents over HTTP: login and logout, sessions, creating, disabling and promoting agents,
//! password changes and the last-admin rule.

use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn the_first_admin_comes_from_the_environment_and_can_log_in() {
    let app = spawn_app().await;
    let reply = app.login(&app.admin_email, &app.admin_password).await;
    let body = reply.assert_status(200);
    assert_eq!(body["agent"]["role"], "admin");
    assert!(body["token"].as_str().unwrap().len() >= 40);
    let token = body["token"].as_str().unwrap();
    let me = app
        .call("GET", "/api/v1/agents/me", Some(token), None)
        .await;
    assert_eq!(me.assert_status(200)["agent"]["email"], app.admin_email);
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_get_the_same_answer() {
    let app = spawn_app().await;
    let wrong = app.login(&app.admin_email, "wrong-password-here").await;
    let unknown = app.login("nobody@example.com", "wrong-password-here").await;
    wrong.assert_error(401, "unauthorized");
    unknown.assert_error(401, "unauthorized");
    assert_eq!(wrong.body, unknown.body);
}

#[tokio::test]
async fn logout_stops_the_token_at_once() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    app.call("POST", "/api/v1/agents/logout", Some(&token), None)
        .await
        .assert_status(204);
    app.call("GET", "/api/v1/agents/me", Some(&token), None)
        .await
        .assert_error(401, "unauthorized");
}

#[tokio::test]
async fn an_admin_adds_agents_and_an_agent_cannot() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (agent, _) = app.new_agent(&admin, "smith@example.com").await;
    let reply = app
        .call(
            "POST",
            "/api/v1/agents",
            Some(&agent),
            Some(json!({"email": "x@example.com", "name": "X", "password": "a-long-password"})),
        )
        .await;
    reply.assert_error(403, "forbidden");
    let list = app.call("GET", "/api/v1/agents", Some(&agent), None).await;
    assert_eq!(
        list.assert_status(200)["agents"].as_array().unwrap().len(),
        2
    );
}

#[tokio::test]
async fn a_duplicate_email_conflicts_and_a_short_password_is_invalid() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let duplicate = app
        .call(
            "POST",
            "/api/v1/agents",
            Some(&admin),
            Some(json!({"email": "ADMIN@example.com", "name": "A", "password": "a-long-password"})),
        )
        .await;
    duplicate.assert_error(409, "conflict");
    let short = app
        .call(
            "POST",
            "/api/v1/agents",
            Some(&admin),
            Some(json!({"email": "b@example.com", "name": "B", "password": "short"})),
        )
        .await;
    short.assert_error(422, "invalid");
}

#[tokio::test]
async fn a_visitor_token_is_not_an_agent_token() {
    let app = spawn_app().await;
    let (visitor, _) = app.new_visitor().await;
    app.call("GET", "/api/v1/agents/me", Some(&visitor), None)
        .await
        .assert_error(403, "forbidden");
    app.call("GET", "/api/v1/chats", Some(&visitor), None)
        .await
        .assert_error(403, "forbidden");
    app.inbox(&visitor, 0, 0)
        .await
        .assert_error(403, "forbidden");
}
