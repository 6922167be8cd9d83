//! Private notes: an agent's message for the agents only. The visitor never sees one, in any
//! answer, and no number it is shown moves for one; agents see notes in order with the rest.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{act_while_held, seqs, spawn_app, spawn_app_with, Reply, TestApp};
use crate::operations::cli;
use crate::webhooks::{create_webhook, Receiver};

/// Long enough that a poll answering early must have been woken, not timed out.
const WAIT: u64 = 20;

/// Sends an agent's private note.
pub(crate) async fn send_note(app: &TestApp, token: &str, chat_id: &str, body: &str) -> Reply {
    app.call(
        "POST",
        &format!("/api/v1/chats/{chat_id}/messages"),
        Some(token),
        Some(json!({"body": body, "private": true})),
    )
    .await
}

fn seq_of(reply: &Reply) -> i64 {
    reply.body["message"]["seq"].as_i64().unwrap()
}

fn bodies(answer: &Value) -> Vec<&str> {
    answer["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn agents_see_private_notes_in_order_with_the_rest() {
    let app = spawn_app().await;
    let chat = app.new_visitor_chat().await;
    let agent = app.admin_token().await;
    app.send(&chat.token, &chat.chat_id, "Where is my order?", None)
        .await
        .assert_status(201);
    let note = send_note(&app, &agent, &chat.chat_id, "Order 42 is stuck in customs").await;
    let note_message = note.assert_status(201)["message"].clone();
    assert_eq!(note_message["private"], true);
    assert_eq!(note_message["sender"], "agent");
    app.send(&agent, &chat.chat_id, "It is on its way.", None)
        .await
        .assert_status(201);

    let page = app.messages(&agent, &chat.chat_id, 0, 100).await;
    let page = page.assert_status(200);
    assert_eq!(
        bodies(page),
        [
            "Where is my order?",
            "Order 42 is stuck in customs",
            "It is on its way."
        ]
    );
    let flags: Vec<&Value> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["private"])
        .collect();
    assert_eq!(flags, [&json!(false), &json!(true), &json!(false)]);
    let all = seqs(page);
    assert!(all.windows(2).all(|w| w[0] < w[1]), "{all:?}");
    assert_eq!(page["messages"][1], note_message);

    // The agents' views of the chat count the note as its latest activity.
    let shown = app.chat(&agent, &chat.chat_id).await;
    assert_eq!(shown["last_seq"], all[2]);
    let note_last = send_note(&app, &agent, &chat.chat_id, "Follow up tomorrow").await;
    let note_seq = seq_of(&note_last);
    let shown = app.chat(&agent, &chat.chat_id).await;
    assert_eq!(shown["last_seq"], note_seq);
    assert_eq!(shown["last_message"]["private"], true);
    let inbox = app.inbox(&agent, all[2], 0).await;
    let inbox = inbox.assert_status(200);
    assert_eq!(
        inbox["chats"][0]["last_message"]["body"],
        "Follow up tomorrow"
    );
    let listed = app.chats(&agent, "open").await;
    assert_eq!(listed.body["chats"][0]["last_seq"], note_seq);
}

#[tokio::test]
async fn a_visitor_never_sees_a_private_note() {
    let app = spawn_app().await;
    let chat = app.new_visitor_chat().await;
    let agent = app.admin_token().await;
    let hello = app.send(&chat.token, &chat.chat_id, "hello", None).await;
    let hello_seq = seq_of(&hello);
    let reply = app.send(&agent, &chat.chat_id, "hi there", None).await;
    let reply = reply.assert_status(201)["message"].clone();
    let reply_seq = reply["seq"].as_i64().unwrap();
    let note = send_note(&app, &agent, &chat.chat_id, "secret: angry customer").await;
    let note_seq = seq_of(&note);
    assert!(note_seq > reply_seq);
    // The agent has read everything, the note included.
    app.call(
        "POST",
        &format!("/api/v1/chats/{}/read", chat.chat_id),
        Some(&agent),
        Some(json!({"seq": note_seq})),
    )
    .await
    .assert_status(204);

    let assert_visitor_view = |chat_json: &Value, context: &str| {
        assert_eq!(chat_json["last_seq"], reply_seq, "{context}: {chat_json}");
        assert_eq!(chat_json["last_message"], reply, "{context}");
        assert_eq!(
            chat_json["last_message_at"], reply["created_at"],
            "{context}"
        );
        assert_eq!(chat_json["unread_by_visitor"], 1, "{context}");
        assert!(
            !chat_json.to_string().contains("secret"),
            "{context}: {chat_json}"
        );
    };

    // Its poll and its history pages.
    let poll = app.poll(&chat.token, &chat.chat_id, 0, 0).await;
    let poll = poll.assert_status(200);
    assert_eq!(seqs(poll), [hello_seq, reply_seq]);
    assert_eq!(poll["next"], reply_seq);
    assert_visitor_view(&poll["chat"], "poll");
    assert_eq!(
        poll["read"]["agent"], reply_seq,
        "read markers stop at its last"
    );
    let after_reply = app.poll(&chat.token, &chat.chat_id, reply_seq, 0).await;
    let after_reply = after_reply.assert_status(200);
    assert!(seqs(after_reply).is_empty());
    assert_eq!(after_reply["next"], reply_seq);
    for before in [note_seq + 1, note_seq, i64::from(i32::MAX)] {
        let path = format!(
            "/api/v1/chats/{}/messages?before={before}&limit=10",
            chat.chat_id
        );
        let page = app.call("GET", &path, Some(&chat.token), None).await;
        let page = page.assert_status(200);
        assert_eq!(seqs(page), [hello_seq, reply_seq], "before={before}");
        assert_visitor_view(&page["chat"], "page");
    }
    let one = app
        .call(
            "GET",
            &format!(
                "/api/v1/chats/{}/messages?before={}&limit=1",
                chat.chat_id,
                note_seq + 1
            ),
            Some(&chat.token),
            None,
        )
        .await;
    assert_eq!(seqs(one.assert_status(200)), [reply_seq]);
    assert_eq!(one.body["has_more"], true);

    // Every other way it sees its chat.
    assert_visitor_view(&app.chat(&chat.token, &chat.chat_id).await, "get");
    let mine = app
        .call("GET", "/api/v1/chats/mine", Some(&chat.token), None)
        .await;
    assert_visitor_view(&mine.assert_status(200)["chat"], "mine");
    let open = app.create_chat(&chat.token).await;
    assert_visitor_view(&open.assert_status(200)["chat"], "open chat");

    // The agent still sees the note as the latest.
    let agents_view = app.chat(&agent, &chat.chat_id).await;
    assert_eq!(agents_view["last_seq"], note_seq);
    assert_eq!(agents_view["read"], Value::Null, "read markers go in polls");

    // Marking read past the note stops at the visitor's last message: nothing it is shown
    // points at the note.
    app.call(
        "POST",
        &format!("/api/v1/chats/{}/read", chat.chat_id),
        Some(&chat.token),
        Some(json!({"seq": note_seq})),
    )
    .await
    .assert_status(204);
    let poll = app.poll(&chat.token, &chat.chat_id, reply_seq, 0).await;
    let poll = poll.assert_status(200);
    assert_eq!(poll["read"]["visitor"], reply_seq);
    assert_eq!(poll["chat"]["unread_by_visitor"], 0);
    let agent_poll = app.poll(&agent, &chat.chat_id, note_seq, 0).await;
    assert_eq!(agent_poll.assert_status(200)["read"]["visitor"], reply_seq);
}

#[tokio::test]
async fn a_note_alone_moves_nothing_the_visitor_sees() {
    let app = spawn_app().await;
    let chat = app.new_visitor_chat().await;
    let agent = app.admin_token().await;
    let before = app.chat(&chat.token, &chat.chat_id).await;
    send_note(&app, &agent, &chat.chat_id, "first contact, be nice")
        .await
        .assert_status(201);
    let after = app.chat(&chat.token, &chat.chat_id).await;
    assert_eq!(after, before);
    assert_eq!(after["last_seq"], 0);
    assert_eq!(after["last_message"], Value::Null);
    assert_eq!(after["last_message_at"], Value::Null);
    assert_eq!(after["unread_by_visitor"], 0);
    let poll = app.poll(&chat.token, &chat.chat_id, 0, 0).await;
    let poll = poll.assert_status(200);
    assert!(seqs(poll).is_empty());
    assert_eq!(poll["next"], 0);
    assert_eq!(poll["chat"]["last_seq"], 0);
}

#[tokio::test]
async fn a_held_visitor_poll_is_not_answered_with_a_note() {
    let app = spawn_app_with(|c| c.poll_timeout = 2).await;
    let chat = app.new_visitor_chat().await;
    let agent = app.admin_token().await;
    let (poll, sent, held) = act_while_held(
        app.poll(&chat.token, &chat.chat_id, 0, 2),
        send_note(&app, &agent, &chat.chat_id, "do not show this"),
    )
    .await;
    sent.assert_status(201);
    let body = poll.assert_status(200);
    assert!(seqs(body).is_empty(), "{body}");
    assert_eq!(body["next"], 0);
    assert!(!body.to_string().contains("do not show"));
    assert!(
        held >= Duration::from_millis(1900),
        "kept waiting after the note, for its whole wait: {held:?}"
    );
    assert!(held < Duration::from_secs(10), "but no longer: {held:?}");
}

#[tokio::test]
async fn a_visitor_poll_woken_by_a_note_still_gets_the_next_real_message() {
    let app = spawn_app().await;
    let chat = app.new_visitor_chat().await;
    let agent = app.admin_token().await;
    let first = app.send(&chat.token, &chat.chat_id, "hello", None).await;
    let after = seq_of(&first);
    let (poll, sent, held) =
        act_while_held(app.poll(&chat.token, &chat.chat_id, after, WAIT), async {
            send_note(&app, &agent, &chat.chat_id, "checking the order")
                .await
                .assert_status(201);
            tokio::time::sleep(Duration::from_millis(400)).await;
            app.send(&agent, &chat.chat_id, "Found it!", None).await
        })
        .await;
    let message = sent.assert_status(201)["message"].clone();
    let body = poll.assert_status(200);
    assert_eq!(body["messages"], json!([message]));
    assert_eq!(body["next"], message["seq"]);
    assert_eq!(body["chat"]["last_message"], message);
    assert!(held >= Duration::from_millis(650), "{held:?}");
    assert!(held < Duration::from_secs(WAIT), "woken, not timed out");

    // And typing, after a note, still answers a held visitor poll at once.
    let next = message["seq"].as_i64().unwrap();
    let typing_path = format!("/api/v1/chats/{}/typing", chat.chat_id);
    let (poll, typed, held) =
        act_while_held(app.poll(&chat.token, &chat.chat_id, next, WAIT), async {
            send_note(&app, &agent, &chat.chat_id, "another note")
                .await
                .assert_status(201);
            tokio::time::sleep(Duration::from_millis(300)).await;
            app.call(
                "POST",
                &typing_path,
                Some(&agent),
                Some(json!({"typing": true})),
            )
            .await
        })
        .await;
    typed.assert_status(204);
    let body = poll.assert_status(200);
    assert!(seqs(body).is_empty());
    assert_eq!(body["typing"]["agent"], true);
    assert_eq!(body["next"], next);
    assert_eq!(body["chat"]["last_seq"], next);
    assert!(held < Duration::from_secs(WAIT), "woken, not timed out");
}

#[tokio::test]
async fn a_held_agent_poll_is_answered_with_the_note() {
    let app = spawn_app().await;
    let chat = app.new_visitor_chat().await;
    let agent = app.admin_token().await;
    let first = app.send(&chat.token, &chat.chat_id, "hello", None).await;
    let after = seq_of(&first);
    let (poll, sent, held) = act_while_held(
        app.poll(&agent, &chat.chat_id, after, WAIT),
        send_note(&app, &agent, &chat.chat_id, "for the team"),
    )
    .await;
    let note = sent.assert_status(201)["message"].clone();
    let body = poll.assert_status(200);
    assert_eq!(body["messages"], json!([note]));
    assert_eq!(body["chat"]["last_seq"], note["seq"]);
    assert!(held < Duration::from_secs(WAIT));
}

#[tokio::test]
async fn a_visitor_may_not_write_a_private_note() {
    let app = spawn_app().await;
    let chat = app.new_visitor_chat().await;
    let path = format!("/api/v1/chats/{}/messages", chat.chat_id);
    for body in [
        json!({"body": "let me in", "private": true}),
        json!({"body": "", "private": true}),
    ] {
        app.call("POST", &path, Some(&chat.token), Some(body))
            .await
            .assert_error(403, "forbidden");
    }
    // `false` is the default, and harmless.
    let sent = app
        .call(
            "POST",
            &path,
            Some(&chat.token),
            Some(json!({"body": "hello", "private": false})),
        )
        .await;
    assert_eq!(sent.assert_status(201)["message"]["private"], false);
    app.call(
        "POST",
        &path,
        Some(&chat.token),
        Some(json!({"body": "hello", "private": "yes"})),
    )
    .await
    .assert_error(400, "bad_request");
    let agent = app.admin_token().await;
    let page = app.messages(&agent, &chat.chat_id, 0, 10).await;
    assert_eq!(seqs(page.assert_status(200)).len(), 1);
}

#[tokio::test]
async fn a_note_in_a_closed_chat_leaves_it_closed() {
    let app = spawn_app().await;
    let chat = app.new_visitor_chat().await;
    let agent = app.admin_token().await;
    app.patch_chat(&agent, &chat.chat_id, json!({"status": "closed"}))
        .await
        .assert_status(200);
    send_note(&app, &agent, &chat.chat_id, "closed: spam")
        .await
        .assert_status(201);
    let shown = app.chat(&agent, &chat.chat_id).await;
    assert_eq!(shown["status"], "closed");
    let visitors = app.chat(&chat.token, &chat.chat_id).await;
    assert_eq!(visitors["last_message"]["event"], "closed");
}

#[tokio::test]
async fn webhooks_carry_private_notes_marked_private() {
    let app = spawn_app_with(|c| {
        c.webhook_retry_base_ms = 10;
        c.webhook_allow_private = true;
    })
    .await;
    let admin = app.admin_token().await;
    let receiver = Receiver::start(0).await;
    create_webhook(&app, &admin, &receiver.url, &["message.created"]).await;
    let chat = app.new_visitor_chat().await;
    app.send(&chat.token, &chat.chat_id, "hello", None)
        .await
        .assert_status(201);
    send_note(&app, &admin, &chat.chat_id, "VIP")
        .await
        .assert_status(201);
    let delivered = receiver.wait_for(2).await;
    let messages: Vec<Value> = delivered
        .iter()
        .map(|r| r.json()["message"].clone())
        .collect();
    assert_eq!(messages[0]["body"], "hello");
    assert_eq!(messages[0]["private"], false);
    assert_eq!(messages[1]["body"], "VIP");
    assert_eq!(messages[1]["private"], true);
}

#[tokio::test]
async fn a_transfer_note_is_private_and_follows_the_assigned_message() {
    let app = spawn_app_with(|c| {
        c.webhook_retry_base_ms = 10;
        c.webhook_allow_private = true;
    })
    .await;
    let admin = app.admin_token().await;
    let receiver = Receiver::start(0).await;
    create_webhook(&app, &admin, &receiver.url, &["message.created"]).await;
    let (_, smith) = app.new_agent(&admin, "smith@example.com").await;
    let chat = app.new_visitor_chat().await;
    let hello = app.send(&chat.token, &chat.chat_id, "hello", None).await;
    let hello_seq = seq_of(&hello);

    let moved = app
        .patch_chat(
            &admin,
            &chat.chat_id,
            json!({"assignee_id": smith, "note": "Wants a refund; be quick"}),
        )
        .await;
    let moved = moved.assert_status(200)["chat"].clone();
    assert_eq!(moved["assignee"]["id"], smith.as_str());
    assert_eq!(moved["last_message"]["body"], "Wants a refund; be quick");

    let page = app.messages(&admin, &chat.chat_id, hello_seq, 10).await;
    let page = page.assert_status(200);
    let messages = page["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2, "{page}");
    assert_eq!(messages[0]["sender"], "system");
    assert_eq!(messages[0]["event"], "assigned");
    assert_eq!(messages[0]["private"], false);
    assert_eq!(messages[1]["sender"], "agent");
    assert_eq!(messages[1]["private"], true);
    assert_eq!(messages[1]["body"], "Wants a refund; be quick");
    assert_eq!(
        messages[1]["author"], messages[0]["author"],
        "the acting agent"
    );
    assert_eq!(
        messages[1]["seq"].as_i64().unwrap(),
        messages[0]["seq"].as_i64().unwrap() + 1,
        "right after it, in one transaction"
    );
    assert_eq!(moved["last_seq"], messages[1]["seq"]);

    // The visitor sees the transfer, not the note.
    let visitors = app.poll(&chat.token, &chat.chat_id, hello_seq, 0).await;
    let visitors = visitors.assert_status(200);
    assert_eq!(seqs(visitors), [messages[0]["seq"].as_i64().unwrap()]);
    assert_eq!(visitors["chat"]["last_message"]["event"], "assigned");

    // Webhooks get the note like any message.
    let delivered = receiver.wait_for(2).await;
    let note = delivered[1].json();
    assert_eq!(note["message"]["private"], true);
    assert_eq!(note["message"]["body"], "Wants a refund; be quick");

    // A repeated transfer changes nothing and adds no note.
    app.patch_chat(
        &admin,
        &chat.chat_id,
        json!({"assignee_id": smith, "note": "Wants a refund; be quick"}),
    )
    .await
    .assert_status(200);
    let again = app.messages(&admin, &chat.chat_id, hello_seq, 10).await;
    assert_eq!(seqs(again.assert_status(200)).len(), 2);

    // A note goes with a transfer, and follows a message body's rules.
    for body in [
        json!({"note": "no transfer"}),
        json!({"status": "closed", "note": "no transfer"}),
        json!({"assignee_id": null, "note": " "}),
        json!({"assignee_id": null, "note": "x".repeat(4001)}),
    ] {
        app.patch_chat(&admin, &chat.chat_id, body)
            .await
            .assert_error(422, "invalid");
    }
    let unchanged = app.chat(&admin, &chat.chat_id).await;
    assert_eq!(unchanged["status"], "open");
    assert_eq!(unchanged["assignee"]["id"], smith.as_str());
}

#[tokio::test]
async fn the_cli_export_marks_private_notes() {
    let app = spawn_app().await;
    let chat = app.new_visitor_chat().await;
    let agent = app.admin_token().await;
    app.send(&chat.token, &chat.chat_id, "hello", None)
        .await
        .assert_status(201);
    send_note(&app, &agent, &chat.chat_id, "regular customer")
        .await
        .assert_status(201);
    let (ok, text) = cli(&app, &["chats", "export", &chat.chat_id]);
    assert!(ok, "{text}");
    assert!(text.contains("(agent, private note):"), "{text}");
    assert!(text.contains("  regular customer"), "{text}");
    let (ok, json_text) = cli(
        &app,
        &["chats", "export", &chat.chat_id, "--format", "json"],
    );
    assert!(ok, "{json_text}");
    let exported: Value = serde_json::from_str(&json_text).unwrap();
    assert_eq!(exported["messages"][1]["private"], true);
}
