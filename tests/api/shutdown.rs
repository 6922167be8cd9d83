//! SIGTERM: held polls answer at once and in-flight writes finish before the server exits.

use std::time::Duration;

use crate::helpers::{act_while_held, spawn_app};

#[tokio::test]
async fn stopping_the_server_answers_held_polls_at_once_and_keeps_what_was_committed() {
    let app = spawn_app().await;
    let chat = app.new_visitor_chat().await;
    app.send(&chat.token, &chat.chat_id, "kept", None)
        .await
        .assert_status(201);
    let after = 1_000_000;
    let (poll, (), held) = act_while_held(
        app.poll(&chat.token, &chat.chat_id, after, 20),
        app.stopper.stop(),
    )
    .await;
    poll.assert_status(200);
    assert!(
        held < Duration::from_secs(10),
        "the held poll was answered at once"
    );

    let conn = rusqlite::Connection::open(&app.db_path).unwrap();
    let count: i64 = conn
        .query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 1);
}
