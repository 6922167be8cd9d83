//! Sending messages: validation, idempotent retries by client_id, the cursor and paging.

use serde_json::json;

use crate::helpers::{seqs, spawn_app};

#[tokio::test]
async fn a_sent_message_is_stored_verbatim_and_read_back_in_order() {
    let app = spawn_app().await;
    let chat = app.new_visitor_chat().await;
    let agent = app.admin_token().await;
    let sent = app
        .send(
            &chat.token,
            &chat.chat_id,
            "  <b>hi</b> & <script>x</script>\n",
            None,
        )
        .await;
    let message = sent.assert_status(201)["message"].clone();
    assert_eq!(message["sender"], "visitor");
    assert_eq!(message["body"], "  <b>hi</b> & <script>x</script>\n");
    assert_eq!(message["author"]["id"], chat.visitor_id.as_str());
    assert!(message["client_id"].is_null());
    let reply = app.send(&agent, &chat.chat_id, "hello", None).await;
    assert_eq!(reply.assert_status(201)["message"]["sender"], "agent");

    let poll = app.poll(&chat.token, &chat.chat_id, 0, 0).await;
    let body = poll.assert_status(200);
    let got = seqs(body);
    assert_eq!(got.len(), 2);
    assert!(got[0] < got[1]);
    assert_eq!(body["next"], got[1]);
    assert_eq!(body["has_more"], false);
    assert_eq!(body["messages"][0]["body"], message["body"]);
    assert_eq!(body["messages"][1]["author"]["name"], "Admin");
}

#[tokio::test]
async fn a_repeated_client_id_creates_nothing_new() {
    let app = spawn_app().await;
    let chat = app.new_visitor_chat().await;
    let first = app
        .send(&chat.token, &chat.chat_id, "once", Some("retry-1"))
        .await;
    let original = first.assert_status(201)["message"].clone();
    let again = app
        .send(&chat.token, &chat.chat_id, "once", Some("retry-1"))
        .await;
    assert_eq!(again.assert_status(200)["message"], original);
    // The same key from another author in the chat is a different message.
    let agent = app.admin_token().await;
    app.send(&agent, &chat.chat_id, "mine", Some("retry-1"))
        .await
        .assert_status(201);
    let poll = app.poll(&chat.token, &chat.chat_id, 0, 0).await;
    assert_eq!(seqs(&poll.body).len(), 2);
}

#[tokio::test]
async fn a_repeat_after_the_chat_closed_returns_the_original_and_leaves_it_closed() {
    let app = spawn_app().await;
    let chat = app.new_visitor_chat().await;
    let original = app
        .send(&chat.token, &chat.chat_id, "once", Some("retry-2"))
        .await
        .assert_status(201)["message"]
        .clone();
    let admin = app.admin_token().await;
    app.patch_chat(&admin, &chat.chat_id, json!({"status": "closed"}))
        .await
        .assert_status(200);
    let closed = app.poll(&chat.token, &chat.chat_id, 0, 0).await;

    // A new message from the visitor would reopen the chat; the retry of an old one must not.
    let again = app
        .send(&chat.token, &chat.chat_id, "once", Some("retry-2"))
        .await;
    assert_eq!(again.assert_status(200)["message"], original);
    let after = app.poll(&chat.token, &chat.chat_id, 0, 0).await;
    assert_eq!(after.body["chat"]["status"], "closed");
    assert_eq!(seqs(&after.body), seqs(&closed.body), "nothing was stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn repeats_sent_at_once_store_one_message_and_all_get_it() {
    let app = std::sync::Arc::new(spawn_app().await);
    let chat = app.new_visitor_chat().await;
    // Sent together, several of them share one of the writer's transactions.
    let sends: Vec<_> = (0..16)
        .map(|_| {
            let (app, token, chat_id) = (app.clone(), chat.token.clone(), chat.chat_id.clone());
            tokio::spawn(async move { app.send(&token, &chat_id, "once", Some("burst")).await })
        })
        .collect();
    let mut created = 0;
    let mut ids = std::collections::BTreeSet::new();
    for send in sends {
        let reply = send.await.unwrap();
        match reply.status.as_u16() {
            201 => created += 1,
            200 => {}
            other => panic!("a repeat was answered {other}: {:?}", reply.body),
        }
        ids.insert(reply.body["message"]["id"].as_str().unwrap().to_string());
    }
    assert_eq!(created, 1, "one send created the message");
    assert_eq!(ids.len(), 1, "every send got the same message");
    let poll = app.poll(&chat.token, &chat.chat_id, 0, 0).await;
    assert_eq!(seqs(&poll.body).len(), 1);
}

#[tokio::test]
async fn bodies_and_client_ids_outside_the_rules_are_invalid() {
    let app = spawn_app().await;
    let chat = app.new_visitor_chat().await;
    for body in ["", "   ", "\n\t"] {
        app.send(&chat.token, &chat.chat_id, body, None)
            .await
            .assert_error(422, "invalid");
    }
    let too_long = "é".repeat(4001);
    app.send(&chat.token, &chat.chat_id, &too_long, None)
        .await
        .assert_error(422, "invalid");
    let longest = "é".repeat(4000);
    app.send(&chat.token, &chat.chat_id, &longest, None)
        .await
        .assert_status(201);
    for client_id in ["", "has space", "ü", &"x".repeat(65)] {
        app.send(&chat.token, &chat.chat_id, "hi", Some(client_id))
            .await
            .assert_error(422, "invalid");
    }
    let poll = app.poll(&chat.token, &chat.chat_id, 0, 0).await;
    assert_eq!(seqs(&poll.body).len(), 1, "refused sends stored nothing");
}

#[tokio::test]
async fn limit_pages_forward_with_has_more_and_next() {
    let app = spawn_app().await;
    let chat = app.new_visitor_chat().await;
    for i in 0..5 {
        app.send(&chat.token, &chat.chat_id, &format!("m{i}"), None)
            .await
            .assert_status(201);
    }
    let path = |after: i64| {
        format!(
            "/api/v1/chats/{}/messages?after={after}&limit=2",
            chat.chat_id
        )
    };
    let mut after = 0;
    let mut bodies = Vec::new();
    loop {
        let page = app.call("GET", &path(after), Some(&chat.token), None).await;
        let body = page.assert_status(200).clone();
        for m in body["messages"].as_array().unwrap() {
            bodies.push(m["body"].as_str().unwrap().to_string());
        }
        after = body["next"].as_i64().unwrap();
        if !body["has_more"].as_bool().unwrap() {
            break;
        }
    }
    assert_eq!(bodies, ["m0", "m1", "m2", "m3", "m4"]);
    let empty = app.call("GET", &path(after), Some(&chat.token), None).await;
    assert_eq!(empty.body["next"], after);
    assert!(seqs(&empty.body).is_empty());
}

#[tokio::test]
async fn before_pages_history_backwards() {
    let app = spawn_app().await;
    let chat = app.new_visitor_chat().await;
    let mut last = 0;
    for i in 0..5 {
        let sent = app
            .send(&chat.token, &chat.chat_id, &format!("m{i}"), None)
            .await;
        last = sent.body["message"]["seq"].as_i64().unwrap();
    }
    let path = format!(
        "/api/v1/chats/{}/messages?before={}&limit=2",
        chat.chat_id,
        last + 1
    );
    let page = app.call("GET", &path, Some(&chat.token), None).await;
    let body = page.assert_status(200);
    let bodies: Vec<_> = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].clone())
        .collect();
    assert_eq!(bodies, [json!("m3"), json!("m4")]);
    assert_eq!(body["has_more"], true);
}

#[tokio::test]
async fn read_markers_only_move_forward_and_are_clamped_to_the_last_seq() {
    let app = spawn_app().await;
    let chat = app.new_visitor_chat().await;
    let agent = app.admin_token().await;
    let mut last = 0;
    for body in ["a", "b"] {
        let sent = app.send(&chat.token, &chat.chat_id, body, None).await;
        last = sent.body["message"]["seq"].as_i64().unwrap();
    }
    let read = format!("/api/v1/chats/{}/read", chat.chat_id);
    app.call(
        "POST",
        &read,
        Some(&agent),
        Some(json!({"seq": last + 1000})),
    )
    .await
    .assert_status(204);
    app.call("POST", &read, Some(&agent), Some(json!({"seq": 1})))
        .await
        .assert_status(204);
    let poll = app.poll(&chat.token, &chat.chat_id, last, 0).await;
    assert_eq!(poll.body["read"]["agent"], last);
    assert_eq!(poll.body["read"]["visitor"], 0);
    assert_eq!(poll.body["chat"]["unread"], 0);
    app.call("POST", &read, Some(&agent), Some(json!({"seq": -1})))
        .await
        .assert_error(422, "invalid");
}

#[tokio::test]
async fn typing_is_reported_to_the_other_side() {
    let app = spawn_app().await;
    let chat = app.new_visitor_chat().await;
    let agent = app.admin_token().await;
    let typing = format!("/api/v1/chats/{}/typing", chat.chat_id);
    app.call("POST", &typing, Some(&agent), Some(json!({"typing": true})))
        .await
        .assert_status(204);
    let poll = app.poll(&chat.token, &chat.chat_id, 0, 0).await;
    assert_eq!(
        poll.body["typing"],
        json!({"visitor": false, "agent": true})
    );
    app.call(
        "POST",
        &typing,
        Some(&agent),
        Some(json!({"typing": false})),
    )
    .await
    .assert_status(204);
    let poll = app.poll(&chat.token, &chat.chat_id, 0, 0).await;
    assert_eq!(poll.body["typing"]["agent"], false);
}
