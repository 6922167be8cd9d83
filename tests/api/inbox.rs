//! The agents' inbox long poll: held until any chat changes, answered at once on a change.

use std::time::Duration;

use crate::helpers::{act_while_held, spawn_app};

#[tokio::test]
async fn the_inbox_is_woken_by_a_message_in_any_chat() {
    let app = spawn_app().await;
    let agent = app.admin_token().await;
    let quiet = app.new_visitor_chat().await;
    let busy = app.new_visitor_chat().await;
    app.send(&quiet.token, &quiet.chat_id, "earlier", None)
        .await
        .assert_status(201);
    let start = app.inbox(&agent, 0, 0).await;
    let after = start.assert_status(200)["next"].as_i64().unwrap();
    assert!(after > 0);

    let (inbox, sent, held) = act_while_held(
        app.inbox(&agent, after, 20),
        app.send(&busy.token, &busy.chat_id, "new here", None),
    )
    .await;
    sent.assert_status(201);
    let body = inbox.assert_status(200);
    let chats = body["chats"].as_array().unwrap();
    assert_eq!(chats.len(), 1, "only the chat that changed");
    assert_eq!(chats[0]["id"], busy.chat_id.as_str());
    assert_eq!(chats[0]["last_message"]["body"], "new here");
    assert_eq!(body["next"], chats[0]["last_seq"]);
    assert!(held < Duration::from_secs(20), "woken, not timed out");
}

#[tokio::test]
async fn the_inbox_lists_changed_chats_most_recent_first() {
    let app = spawn_app().await;
    let agent = app.admin_token().await;
    let a = app.new_visitor_chat().await;
    let b = app.new_visitor_chat().await;
    app.send(&a.token, &a.chat_id, "1", None)
        .await
        .assert_status(201);
    app.send(&b.token, &b.chat_id, "2", None)
        .await
        .assert_status(201);
    app.send(&a.token, &a.chat_id, "3", None)
        .await
        .assert_status(201);
    let inbox = app.inbox(&agent, 0, 0).await;
    let chats = inbox.assert_status(200)["chats"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(chats[0]["id"], a.chat_id.as_str());
    assert_eq!(chats[1]["id"], b.chat_id.as_str());
    assert_eq!(chats[0]["unread"], 2);
}
