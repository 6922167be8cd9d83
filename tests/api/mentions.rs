//! `@mentions` in private notes: the mentioned agent sees `mentioned: true` on the chat in
//! its inbox poll (which the note wakes), its chat list and the chat itself, until it reads
//! the chat; nobody else does, and a visitor never does.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp};
use crate::notes::send_note;

/// A new agent (`handle@example.com`) and its token.
async fn agent(app: &TestApp, admin: &str, handle: &str) -> (String, String) {
    app.new_agent(admin, &format!("{handle}@example.com")).await
}

fn mentioned_in(inbox: &Value, chat_id: &str) -> Option<bool> {
    inbox["chats"]
        .as_array()?
        .iter()
        .find(|c| c["id"] == chat_id)
        .map(|c| c["mentioned"] == json!(true))
}

#[tokio::test]
async fn a_mention_in_a_note_wakes_the_mentioned_agents_inbox_and_flags_the_chat() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (ana, _) = agent(&app, &admin, "ana").await;
    let (bo, _) = agent(&app, &admin, "bo").await;
    let chat = app.new_visitor_chat().await;
    app.send(&chat.token, &chat.chat_id, "My parcel is lost", None)
        .await
        .assert_status(201);
    let head = app.inbox(&ana, 0, 0).await.assert_status(200)["next"]
        .as_i64()
        .unwrap();

    // Ana's inbox poll is held; the admin's note names her and wakes it.
    let (answer, ()) = tokio::join!(app.inbox(&ana, head, 20), async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        send_note(
            &app,
            &admin,
            &chat.chat_id,
            "@ana can you check the courier?",
        )
        .await
        .assert_status(201);
    });
    let answer = answer.assert_status(200);
    assert_eq!(mentioned_in(answer, &chat.chat_id), Some(true));

    // Only Ana: Bo's inbox and the admin's own show the chat unflagged.
    let bo_inbox = app.inbox(&bo, head, 0).await;
    assert_eq!(
        mentioned_in(bo_inbox.assert_status(200), &chat.chat_id),
        Some(false)
    );
    let admin_inbox = app.inbox(&admin, head, 0).await;
    assert_eq!(
        mentioned_in(admin_inbox.assert_status(200), &chat.chat_id),
        Some(false)
    );

    // The chat list and the chat itself say so too, to Ana alone.
    let listed = app.chats(&ana, "open").await;
    assert_eq!(
        mentioned_in(listed.assert_status(200), &chat.chat_id),
        Some(true)
    );
    assert_eq!(app.chat(&ana, &chat.chat_id).await["mentioned"], true);
    assert_eq!(app.chat(&bo, &chat.chat_id).await["mentioned"], false);

    // The visitor never sees a flag (nor the note).
    assert_eq!(
        app.chat(&chat.token, &chat.chat_id).await["mentioned"],
        false
    );

    // Ana reads the chat: the mention is done.
    let last_seq = app.chat(&ana, &chat.chat_id).await["last_seq"]
        .as_i64()
        .unwrap();
    app.call(
        "POST",
        &format!("/api/v1/chats/{}/read", chat.chat_id),
        Some(&ana),
        Some(json!({ "seq": last_seq })),
    )
    .await
    .assert_status(204);
    assert_eq!(app.chat(&ana, &chat.chat_id).await["mentioned"], false);
}

#[tokio::test]
async fn only_notes_mention_and_only_other_agents_by_handle_or_name() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (ana, _) = agent(&app, &admin, "ana").await;
    let (cy, _) = agent(&app, &admin, "cy").await;
    let chat = app.new_visitor_chat().await;

    // A reply to the visitor is not a note: nobody is mentioned.
    app.send(&admin, &chat.chat_id, "Thanks @ana will look", None)
        .await
        .assert_status(201);
    assert_eq!(app.chat(&ana, &chat.chat_id).await["mentioned"], false);

    // An email address is not a mention, and neither is an unknown handle.
    send_note(
        &app,
        &admin,
        &chat.chat_id,
        "write to ana@example.com or @nobody",
    )
    .await
    .assert_status(201);
    assert_eq!(app.chat(&ana, &chat.chat_id).await["mentioned"], false);

    // The name without spaces works as well as the handle ("Agent Smith" is every test
    // agent's name, so it names them all).
    send_note(&app, &cy, &chat.chat_id, "@AgentSmith, over to you").await;
    assert_eq!(app.chat(&ana, &chat.chat_id).await["mentioned"], true);
    // The author is not notified of its own note.
    assert_eq!(app.chat(&cy, &chat.chat_id).await["mentioned"], false);
}

#[tokio::test]
async fn a_transfer_note_mentions_too() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (ana, ana_id) = agent(&app, &admin, "ana").await;
    let (bo, _) = agent(&app, &admin, "bo").await;
    let chat = app.new_visitor_chat().await;
    app.patch_chat(
        &admin,
        &chat.chat_id,
        json!({"assignee_id": ana_id, "note": "VIP customer, loop in @bo"}),
    )
    .await
    .assert_status(200);
    assert_eq!(app.chat(&bo, &chat.chat_id).await["mentioned"], true);
    assert_eq!(app.chat(&ana, &chat.chat_id).await["mentioned"], false);
}
