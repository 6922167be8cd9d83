//! Abuse limits and session revocation.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn creating_visitors_in_a_burst_from_one_address_is_rate_limited() {
    let app = spawn_app_with(|c| c.rate_limits = true).await;
    let mut limited = None;
    for _ in 0..100 {
        let reply = app.create_visitor(json!({})).await;
        if reply.status.as_u16() == 429 {
            limited = Some(reply);
            break;
        }
        reply.assert_status(201);
    }
    let reply = limited.expect("a burst of 100 visitors is limited");
    reply.assert_error(429, "rate_limited");
    let retry_after: u64 = reply.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after));
}

#[tokio::test]
async fn a_visitor_sending_too_fast_is_rate_limited_and_nothing_is_stored() {
    let app = spawn_app_with(|c| c.rate_limits = true).await;
    let chat = app.new_visitor_chat().await;
    let mut sent = 0;
    let mut limited = false;
    for i in 0..200 {
        let reply = app
            .send(&chat.token, &chat.chat_id, &format!("m{i}"), None)
            .await;
        match reply.status.as_u16() {
            201 => sent += 1,
            429 => {
                reply.assert_error(429, "rate_limited");
                limited = true;
                break;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(limited, "200 quick sends are limited");
    let poll = app.poll(&chat.token, &chat.chat_id, 0, 0).await;
    assert_eq!(poll.body["messages"].as_array().unwrap().len(), sent);
}

#[tokio::test]
async fn logins_slow_down_after_repeated_failures_for_an_account() {
    let app = spawn_app_with(|c| c.rate_limits = true).await;
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(
            app.login(&app.admin_email, "wrong-password-x")
                .await
                .status
                .as_u16(),
        );
    }
    assert_eq!(&statuses[..5], &[401; 5]);
    assert!(statuses[5..].contains(&429), "{statuses:?}");
    // Even the right password waits while the account is backing off.
    app.login(&app.admin_email, &app.admin_password)
        .await
        .assert_error(429, "rate_limited");
}

#[tokio::test]
async fn a_newer_poll_from_the_same_token_answers_the_oldest_beyond_the_cap() {
    let app = spawn_app_with(|c| c.max_polls_per_token = 1).await;
    let chat = app.new_visitor_chat().await;
    let started = Instant::now();
    let first = app.poll(&chat.token, &chat.chat_id, 0, 20);
    let second = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        tokio::time::timeout(
            Duration::from_secs(2),
            app.poll(&chat.token, &chat.chat_id, 0, 2),
        )
        .await
    };
    let (first, _) = tokio::join!(first, second);
    first.assert_status(200);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the older poll was answered early"
    );
}

#[tokio::test]
async fn disabling_an_agent_revokes_its_sessions_at_once() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (agent, agent_id) = app.new_agent(&admin, "smith@example.com").await;
    app.call("GET", "/api/v1/agents/me", Some(&agent), None)
        .await
        .assert_status(200);
    let reply = app
        .call(
            "PATCH",
            &format!("/api/v1/agents/{agent_id}"),
            Some(&admin),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(reply.assert_status(200)["agent"]["disabled"], true);
    app.call("GET", "/api/v1/agents/me", Some(&agent), None)
        .await
        .assert_error(401, "unauthorized");
    app.login("smith@example.com", "a-long-password")
        .await
        .assert_error(401, "unauthorized");
}

#[tokio::test]
async fn the_last_admin_cannot_be_disabled() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let me = app
        .call("GET", "/api/v1/agents/me", Some(&admin), None)
        .await;
    let id = me.body["agent"]["id"].as_str().unwrap().to_string();
    app.call(
        "PATCH",
        &format!("/api/v1/agents/{id}"),
        Some(&admin),
        Some(json!({"disabled": true})),
    )
    .await
    .assert_error(409, "conflict");
}

#[tokio::test]
async fn changing_a_password_revokes_the_other_sessions_but_not_this_one() {
    let app = spawn_app().await;
    let this = app.admin_token().await;
    let other = app.admin_token().await;
    let change =
        |current: &str, new: &str| json!({"current_password": current, "new_password": new});
    app.call(
        "POST",
        "/api/v1/agents/me/password",
        Some(&this),
        Some(change("wrong-one-here", "another-long-one")),
    )
    .await
    .assert_error(422, "invalid");
    app.call(
        "POST",
        "/api/v1/agents/me/password",
        Some(&this),
        Some(change(&app.admin_password, "another-long-one")),
    )
    .await
    .assert_status(204);
    app.call("GET", "/api/v1/agents/me", Some(&this), None)
        .await
        .assert_status(200);
    app.call("GET", "/api/v1/agents/me", Some(&other), None)
        .await
        .assert_error(401, "unauthorized");
    app.login(&app.admin_email, "another-long-one")
        .await
        .assert_status(200);
    app.login(&app.admin_email, &app.admin_password)
        .await
        .assert_error(401, "unauthorized");
}

#[tokio::test]
async fn a_rotated_visitor_token_replaces_the_old_one() {
    let app = spawn_app().await;
    let chat = app.new_visitor_chat().await;
    let reply = app
        .call("POST", "/api/v1/visitors/me/token", Some(&chat.token), None)
        .await;
    let fresh = reply.assert_status(200)["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(fresh, chat.token);
    app.call("GET", "/api/v1/chats/mine", Some(&chat.token), None)
        .await
        .assert_error(401, "unauthorized");
    let mine = app
        .call("GET", "/api/v1/chats/mine", Some(&fresh), None)
        .await;
    assert_eq!(mine.assert_status(200)["chat"]["id"], chat.chat_id.as_str());
}

#[tokio::test]
async fn an_expired_agent_session_is_unauthorized() {
    let app = spawn_app_with(|c| c.session_days = 0).await;
    let token = app.admin_token().await;
    app.call("GET", "/api/v1/agents/me", Some(&token), None)
        .await
        .assert_error(401, "unauthorized");
}
