//! Chats: a visitor's one open chat, the agents' list and filters, assigning, closing and
//! reopening, each change recorded as a system message.

use serde_json::json;

use crate::helpers::{seqs, spawn_app};

#[tokio::test]
async fn creating_a_chat_twice_returns_the_same_open_chat() {
    let app = spawn_app().await;
    let (token, visitor_id) = app.new_visitor().await;
    let first = app.create_chat(&token).await;
    let chat = &first.assert_status(201)["chat"];
    assert_eq!(chat["status"], "open");
    assert_eq!(chat["visitor"]["id"], visitor_id.as_str());
    assert_eq!(chat["last_seq"], 0);
    let second = app.create_chat(&token).await;
    assert_eq!(second.assert_status(200)["chat"]["id"], chat["id"]);
}

#[tokio::test]
async fn my_chat_is_not_found_before_one_exists() {
    let app = spawn_app().await;
    let (token, _) = app.new_visitor().await;
    app.call("GET", "/api/v1/chats/mine", Some(&token), None)
        .await
        .assert_error(404, "not_found");
    let chat = app.new_visitor_chat().await;
    let mine = app
        .call("GET", "/api/v1/chats/mine", Some(&chat.token), None)
        .await;
    assert_eq!(mine.assert_status(200)["chat"]["id"], chat.chat_id.as_str());
}

#[tokio::test]
async fn a_visitor_cannot_see_another_visitors_chat() {
    let app = spawn_app().await;
    let alice = app.new_visitor_chat().await;
    let bob = app.new_visitor_chat().await;
    let path = format!("/api/v1/chats/{}", alice.chat_id);
    app.call("GET", &path, Some(&bob.token), None)
        .await
        .assert_error(404, "not_found");
    app.poll(&bob.token, &alice.chat_id, 0, 0)
        .await
        .assert_error(404, "not_found");
    app.send(&bob.token, &alice.chat_id, "hi", None)
        .await
        .assert_error(404, "not_found");
    app.call(
        "POST",
        &format!("{path}/typing"),
        Some(&bob.token),
        Some(json!({"typing": true})),
    )
    .await
    .assert_error(404, "not_found");
    app.call(
        "POST",
        &format!("{path}/read"),
        Some(&bob.token),
        Some(json!({"seq": 1})),
    )
    .await
    .assert_error(404, "not_found");
    // The same answer as for a chat that does not exist.
    app.call("GET", "/api/v1/chats/no-such-chat", Some(&bob.token), None)
        .await
        .assert_error(404, "not_found");
}

#[tokio::test]
async fn requests_without_a_valid_token_are_unauthorized() {
    let app = spawn_app().await;
    let chat = app.new_visitor_chat().await;
    let path = format!("/api/v1/chats/{}", chat.chat_id);
    app.call("GET", &path, None, None)
        .await
        .assert_error(401, "unauthorized");
    app.call("GET", &path, Some("pv_not-a-real-token"), None)
        .await
        .assert_error(401, "unauthorized");
    app.call("POST", "/api/v1/chats", None, None)
        .await
        .assert_error(401, "unauthorized");
}

#[tokio::test]
async fn agents_list_chats_by_status_most_recent_first() {
    let app = spawn_app().await;
    let agent = app.admin_token().await;
    let older = app.new_visitor_chat().await;
    let newer = app.new_visitor_chat().await;
    app.send(&older.token, &older.chat_id, "first", None)
        .await
        .assert_status(201);
    app.send(&newer.token, &newer.chat_id, "second", None)
        .await
        .assert_status(201);
    let list = app.call("GET", "/api/v1/chats", Some(&agent), None).await;
    let chats = list.assert_status(200)["chats"].as_array().unwrap().clone();
    assert_eq!(chats.len(), 2);
    assert_eq!(chats[0]["id"], newer.chat_id.as_str());
    assert_eq!(chats[0]["last_message"]["body"], "second");
    assert_eq!(chats[0]["unread"], 1);

    app.patch_chat(&agent, &older.chat_id, json!({"status": "closed"}))
        .await
        .assert_status(200);
    let open = app
        .call("GET", "/api/v1/chats?status=open", Some(&agent), None)
        .await;
    assert_eq!(open.body["chats"].as_array().unwrap().len(), 1);
    let closed = app
        .call("GET", "/api/v1/chats?status=closed", Some(&agent), None)
        .await;
    assert_eq!(closed.body["chats"][0]["id"], older.chat_id.as_str());
    let all = app
        .call("GET", "/api/v1/chats?status=all", Some(&agent), None)
        .await;
    assert_eq!(all.body["chats"].as_array().unwrap().len(), 2);
    app.call("GET", "/api/v1/chats?status=bogus", Some(&agent), None)
        .await
        .assert_error(400, "bad_request");
}

#[tokio::test]
async fn each_effective_change_of_a_chat_appends_a_system_message() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (_, smith_id) = app.new_agent(&admin, "smith@example.com").await;
    let chat = app.new_visitor_chat().await;

    let closed = app
        .patch_chat(&admin, &chat.chat_id, json!({"status": "closed"}))
        .await;
    assert_eq!(closed.assert_status(200)["chat"]["status"], "closed");
    // Closing again changes nothing, so it records nothing.
    app.patch_chat(&admin, &chat.chat_id, json!({"status": "closed"}))
        .await
        .assert_status(200);
    app.patch_chat(&admin, &chat.chat_id, json!({"status": "open"}))
        .await
        .assert_status(200);
    let assigned = app
        .patch_chat(&admin, &chat.chat_id, json!({"assignee_id": smith_id}))
        .await;
    assert_eq!(
        assigned.assert_status(200)["chat"]["assignee"]["id"],
        smith_id.as_str()
    );
    let unassigned = app
        .patch_chat(&admin, &chat.chat_id, json!({"assignee_id": null}))
        .await;
    assert!(unassigned.assert_status(200)["chat"]["assignee"].is_null());

    let poll = app.poll(&chat.token, &chat.chat_id, 0, 0).await;
    let events: Vec<_> = poll.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["sender"].as_str().unwrap().to_string(),
                m["event"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected: Vec<_> = ["closed", "reopened", "assigned", "assigned"]
        .iter()
        .map(|e| ("system".to_string(), e.to_string()))
        .collect();
    assert_eq!(events, expected);
    assert!(poll.body["messages"][2]["body"]
        .as_str()
        .unwrap()
        .contains("Agent Smith"));
}

#[tokio::test]
async fn a_patch_with_a_bad_status_or_unknown_assignee_is_invalid() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let chat = app.new_visitor_chat().await;
    app.patch_chat(&admin, &chat.chat_id, json!({"status": "archived"}))
        .await
        .assert_error(422, "invalid");
    app.patch_chat(&admin, &chat.chat_id, json!({"assignee_id": "nobody"}))
        .await
        .assert_error(422, "invalid");
    app.patch_chat(&chat.token, &chat.chat_id, json!({"status": "closed"}))
        .await
        .assert_error(403, "forbidden");
    let poll = app.poll(&chat.token, &chat.chat_id, 0, 0).await;
    assert!(
        seqs(&poll.body).is_empty(),
        "a refused change records nothing"
    );
}

#[tokio::test]
async fn a_visitor_writing_into_a_closed_chat_reopens_it() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let chat = app.new_visitor_chat().await;
    app.patch_chat(&admin, &chat.chat_id, json!({"status": "closed"}))
        .await
        .assert_status(200);
    app.send(&chat.token, &chat.chat_id, "are you there?", None)
        .await
        .assert_status(201);
    let poll = app.poll(&chat.token, &chat.chat_id, 0, 0).await;
    let body = poll.assert_status(200);
    assert_eq!(body["chat"]["status"], "open");
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(messages[1]["event"], "reopened");
    assert_eq!(messages[2]["body"], "are you there?");
}

#[tokio::test]
async fn the_mine_filter_shows_only_chats_assigned_to_the_caller() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (_, admin_id) = {
        let me = app
            .call("GET", "/api/v1/agents/me", Some(&admin), None)
            .await;
        ((), me.body["agent"]["id"].as_str().unwrap().to_string())
    };
    let mine = app.new_visitor_chat().await;
    let other = app.new_visitor_chat().await;
    app.send(&other.token, &other.chat_id, "x", None)
        .await
        .assert_status(201);
    app.patch_chat(&admin, &mine.chat_id, json!({"assignee_id": admin_id}))
        .await
        .assert_status(200);
    let list = app
        .call("GET", "/api/v1/chats?assignee=me", Some(&admin), None)
        .await;
    let chats = list.assert_status(200)["chats"].as_array().unwrap().clone();
    assert_eq!(chats.len(), 1);
    assert_eq!(chats[0]["id"], mine.chat_id.as_str());
}
