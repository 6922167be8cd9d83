//! The message long poll: held until a message, typing or read change arrives, race-free,
//! bounded by the server's timeout, and cleaned up when a client goes away.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{act_while_held, seqs, spawn_app, spawn_app_with};

/// Long enough that a poll answering with data must have been woken, not timed out.
const WAIT: u64 = 20;

#[tokio::test]
async fn a_held_poll_is_answered_by_a_new_message() {
    let app = spawn_app().await;
    let chat = app.new_visitor_chat().await;
    let agent = app.admin_token().await;
    let (poll, sent, held) = act_while_held(
        app.poll(&chat.token, &chat.chat_id, 0, WAIT),
        app.send(&agent, &chat.chat_id, "wake up", None),
    )
    .await;
    sent.assert_status(201);
    let body = poll.assert_status(200);
    assert_eq!(body["messages"][0]["body"], "wake up");
    assert!(held < Duration::from_secs(WAIT), "woken, not timed out");
}

#[tokio::test]
async fn a_held_poll_is_answered_by_typing() {
    let app = spawn_app().await;
    let chat = app.new_visitor_chat().await;
    let agent = app.admin_token().await;
    let typing_path = format!("/api/v1/chats/{}/typing", chat.chat_id);
    let (poll, typed, held) = act_while_held(
        app.poll(&chat.token, &chat.chat_id, 0, WAIT),
        app.call(
            "POST",
            &typing_path,
            Some(&agent),
            Some(json!({"typing": true})),
        ),
    )
    .await;
    typed.assert_status(204);
    let body = poll.assert_status(200);
    assert!(seqs(body).is_empty());
    assert_eq!(body["typing"]["agent"], true);
    assert_eq!(body["next"], 0);
    assert!(held < Duration::from_secs(WAIT), "woken, not timed out");
}

#[tokio::test]
async fn a_held_poll_is_answered_by_a_status_change() {
    let app = spawn_app().await;
    let chat = app.new_visitor_chat().await;
    let agent = app.admin_token().await;
    let (poll, closed, _) = act_while_held(
        app.poll(&chat.token, &chat.chat_id, 0, WAIT),
        app.patch_chat(&agent, &chat.chat_id, json!({"status": "closed"})),
    )
    .await;
    closed.assert_status(200);
    let body = poll.assert_status(200);
    assert_eq!(body["messages"][0]["event"], "closed");
    assert_eq!(body["chat"]["status"], "closed");
}

#[tokio::test]
async fn a_held_poll_is_answered_by_a_read_marker() {
    let app = spawn_app().await;
    let chat = app.new_visitor_chat().await;
    let agent = app.admin_token().await;
    let sent = app.send(&chat.token, &chat.chat_id, "hi", None).await;
    let seq = sent.body["message"]["seq"].as_i64().unwrap();
    let read_path = format!("/api/v1/chats/{}/read", chat.chat_id);
    let (poll, marked, held) = act_while_held(
        app.poll(&chat.token, &chat.chat_id, seq, WAIT),
        app.call("POST", &read_path, Some(&agent), Some(json!({"seq": seq}))),
    )
    .await;
    marked.assert_status(204);
    assert_eq!(poll.assert_status(200)["read"]["agent"], seq);
    assert!(held < Duration::from_secs(WAIT), "woken, not timed out");
}

#[tokio::test]
async fn a_poll_with_nothing_new_times_out_empty_at_the_server_maximum() {
    let app = spawn_app_with(|c| c.poll_timeout = 1).await;
    let chat = app.new_visitor_chat().await;
    let started = Instant::now();
    let poll = app.poll(&chat.token, &chat.chat_id, 0, 600).await;
    let body = poll.assert_status(200);
    assert!(seqs(body).is_empty());
    assert_eq!(body["next"], 0);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "the poll was held"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "wait is clamped to the maximum"
    );
}

#[tokio::test]
async fn a_poll_behind_the_cursor_answers_at_once_without_waiting() {
    let app = spawn_app().await;
    let chat = app.new_visitor_chat().await;
    app.send(&chat.token, &chat.chat_id, "already here", None)
        .await
        .assert_status(201);
    let started = Instant::now();
    let poll = app.poll(&chat.token, &chat.chat_id, 0, WAIT).await;
    assert_eq!(
        poll.assert_status(200)["messages"][0]["body"],
        "already here"
    );
    assert!(started.elapsed() < Duration::from_secs(WAIT));
}

#[tokio::test]
async fn an_abandoned_poll_leaves_no_waiter_behind() {
    let app = spawn_app_with(|c| c.poll_timeout = 1).await;
    let chat = app.new_visitor_chat().await;
    let url = app.url(&format!("/api/v1/chats/{}/messages?wait=1", chat.chat_id));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let abandoned = client.get(url).bearer_auth(&chat.token).send().await;
    assert!(abandoned.is_err(), "the client gave up");
    // Once the server's wait ends, the chat's hub entry is gone.
    let hub = app.stopper.hub();
    let deadline = Instant::now() + Duration::from_secs(10);
    while hub.watched_chats() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(hub.watched_chats(), 0);
}

#[tokio::test]
async fn a_poll_quoting_an_older_state_answers_at_once_with_the_new_typing() {
    let app = spawn_app().await;
    let chat = app.new_visitor_chat().await;
    let agent = app.admin_token().await;
    let first = app.poll(&chat.token, &chat.chat_id, 0, 0).await;
    let known = first.assert_status(200)["state"].as_u64().unwrap();
    // The agent starts typing while the visitor has no poll open.
    app.call(
        "POST",
        &format!("/api/v1/chats/{}/typing", chat.chat_id),
        Some(&agent),
        Some(json!({"typing": true})),
    )
    .await
    .assert_status(204);
    let path = |state: u64, wait: u64| {
        format!(
            "/api/v1/chats/{}/messages?after=0&wait={wait}&state={state}",
            chat.chat_id
        )
    };
    let started = Instant::now();
    let next = app
        .call("GET", &path(known, WAIT), Some(&chat.token), None)
        .await;
    let body = next.assert_status(200);
    assert_eq!(body["typing"]["agent"], true);
    assert!(
        started.elapsed() < Duration::from_secs(WAIT),
        "answered at once"
    );
    let current = body["state"].as_u64().unwrap();
    assert_ne!(current, known);
    // Quoting the current state, the poll is held again.
    let started = Instant::now();
    app.call("GET", &path(current, 1), Some(&chat.token), None)
        .await
        .assert_status(200);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "held until the wait ended"
    );
}

#[tokio::test]
async fn a_woken_poll_answers_with_the_chat_as_of_the_new_message() {
    let app = spawn_app().await;
    let chat = app.new_visitor_chat().await;
    let agent = app.admin_token().await;
    let first = app.send(&chat.token, &chat.chat_id, "one", None).await;
    let after = first.assert_status(201)["message"]["seq"].as_i64().unwrap();
    // The agent's poll waits right behind the new message, so its writer hands it over.
    let (poll, sent, _) = act_while_held(
        app.poll(&agent, &chat.chat_id, after, WAIT),
        app.send(&chat.token, &chat.chat_id, "two", None),
    )
    .await;
    let message = sent.assert_status(201)["message"].clone();
    let body = poll.assert_status(200);
    assert_eq!(body["messages"].as_array().unwrap().len(), 1);
    assert_eq!(body["messages"][0], message);
    assert_eq!(body["next"], message["seq"]);
    assert_eq!(body["has_more"], false);
    assert_eq!(body["chat"]["last_seq"], message["seq"]);
    assert_eq!(body["chat"]["last_message"]["id"], message["id"]);
    assert_eq!(body["chat"]["unread"], 2);
    // The same answer as a fresh read of the database gives.
    let fresh = app.poll(&agent, &chat.chat_id, after, 0).await;
    assert_eq!(fresh.body["messages"], body["messages"]);
    assert_eq!(fresh.body["chat"], body["chat"]);
    assert_eq!(fresh.body["read"], body["read"]);

    // And the other way: an agent's reply handed to the visitor's waiting poll.
    let after = message["seq"].as_i64().unwrap();
    let (poll, sent, _) = act_while_held(
        app.poll(&chat.token, &chat.chat_id, after, WAIT),
        app.send(&agent, &chat.chat_id, "three", None),
    )
    .await;
    let reply = sent.assert_status(201)["message"].clone();
    let body = poll.assert_status(200);
    assert_eq!(body["messages"][0], reply);
    assert_eq!(body["chat"]["last_seq"], reply["seq"]);
    assert_eq!(body["chat"]["last_message_at"], reply["created_at"]);
    assert_eq!(body["chat"]["unread_by_visitor"], 1);
    let fresh = app.poll(&chat.token, &chat.chat_id, after, 0).await;
    assert_eq!(fresh.body["messages"], body["messages"]);
    assert_eq!(fresh.body["chat"], body["chat"]);
    assert_eq!(fresh.body["read"], body["read"]);
}
