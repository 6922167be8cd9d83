//! A visitor's data: the export (GDPR Art. 15) has all of it; the erasure (Art. 17) leaves
//! none of it — not in the API, the search, the tokens, nor on disk — and tells webhooks.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{act_while_held, spawn_app_with, TestApp, VisitorChat};
use crate::operations::cli;
use crate::webhooks::{create_webhook, Receiver};

const EMAIL: &str = "erase-me-7c1d@example.com";
/// A word on its own, as the search index keeps words (see `hardening`).
const WORD: &str = "quokkaerasurewhistle";
const FILE_TEXT: &str = "attachment-marker-55aa-only-here";

async fn app() -> TestApp {
    spawn_app_with(|config| {
        config.webhook_allow_private = true;
        config.webhook_retry_base_ms = 10;
    })
    .await
}

/// A named visitor with two chats: the first closed and rated, with a private note; the
/// second open, with a file. Returns the visitor and its open chat, and the closed chat.
async fn visitor_with_history(app: &TestApp, admin: &str) -> (VisitorChat, String) {
    let created = app
        .create_visitor(json!({"name": "Erin Erased", "email": EMAIL}))
        .await;
    let body = created.assert_status(201);
    let token = body["token"].as_str().unwrap().to_string();
    let visitor_id = body["visitor"]["id"].as_str().unwrap().to_string();
    let first = app.create_chat(&token).await.assert_status(201)["chat"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    for i in 0..5 {
        app.send(
            &token,
            &first,
            &format!("{WORD} number {i} {}", "x".repeat(300)),
            None,
        )
        .await
        .assert_status(201);
    }
    app.send(admin, &first, "We will help.", None)
        .await
        .assert_status(201);
    app.call(
        "POST",
        &format!("/api/v1/chats/{first}/messages"),
        Some(admin),
        Some(json!({"body": "note: VIP customer", "private": true})),
    )
    .await
    .assert_status(201);
    app.patch_chat(admin, &first, json!({"status": "closed"}))
        .await
        .assert_status(200);
    app.call(
        "POST",
        &format!("/api/v1/chats/{first}/rating"),
        Some(&token),
        Some(json!({"rating": 4, "comment": "fine"})),
    )
    .await
    .assert_status(201);
    let second = app.create_chat(&token).await.assert_status(201)["chat"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(FILE_TEXT.as_bytes().to_vec()).file_name("notes.txt"),
    );
    app.upload(&token, &second, form).await.assert_status(201);
    (
        VisitorChat {
            token,
            visitor_id,
            chat_id: second,
        },
        first,
    )
}

fn bodies(chat: &Value) -> Vec<&str> {
    chat["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn an_admin_exports_everything_about_a_visitor() {
    let app = app().await;
    let admin = app.admin_token().await;
    let (visitor, closed) = visitor_with_history(&app, &admin).await;
    let reply = app
        .call(
            "GET",
            &format!("/api/v1/visitors/{}/export", visitor.visitor_id),
            Some(&admin),
            None,
        )
        .await;
    let export = reply.assert_status(200);
    assert_eq!(export["visitor"]["email"], EMAIL);
    assert_eq!(export["visitor"]["name"], "Erin Erased");
    let chats = export["chats"].as_array().unwrap();
    assert_eq!(chats.len(), 2);
    assert_eq!(chats[0]["chat"]["id"], closed.as_str());
    assert_eq!(
        chats[0]["chat"]["rating"],
        json!({"rating": 4, "comment": "fine"})
    );
    let first = bodies(&chats[0]);
    assert!(
        first.iter().filter(|b| b.contains(WORD)).count() == 5,
        "{first:?}"
    );
    assert!(first.contains(&"We will help."));
    let note = chats[0]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["body"] == "note: VIP customer")
        .expect("the private note is exported");
    assert_eq!(note["private"], true);
    let file = chats[1]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|m| m["attachment"]["url"].as_str())
        .expect("the file is exported by its URL");
    let download = app
        .client
        .get(app.url(file))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(download.text().await.unwrap(), FILE_TEXT);

    let missing = "01900000-0000-7000-8000-000000000000";
    app.call(
        "GET",
        &format!("/api/v1/visitors/{missing}/export"),
        Some(&admin),
        None,
    )
    .await
    .assert_error(404, "not_found");
    let (agent, _) = app.new_agent(&admin, "agent@example.com").await;
    app.call(
        "GET",
        &format!("/api/v1/visitors/{}/export", visitor.visitor_id),
        Some(&agent),
        None,
    )
    .await
    .assert_error(403, "forbidden");
}

#[tokio::test]
async fn an_erased_visitor_leaves_no_trace_in_the_api_and_webhooks_hear_of_it() {
    let app = app().await;
    let admin = app.admin_token().await;
    let receiver = Receiver::start(0).await;
    create_webhook(
        &app,
        &admin,
        &receiver.url,
        &["visitor.deleted", "chat.created"],
    )
    .await;
    let (visitor, closed) = visitor_with_history(&app, &admin).await;
    let file_url = app
        .messages(&admin, &visitor.chat_id, 0, 100)
        .await
        .assert_status(200)["messages"][0]["attachment"]["url"]
        .as_str()
        .unwrap()
        .to_string();
    let other = app.new_visitor_chat().await;
    app.send(&other.token, &other.chat_id, "someone else's words", None)
        .await
        .assert_status(201);

    // The visitor's poll is held while it is erased: it ends at once, refused.
    let path = format!("/api/v1/visitors/{}", visitor.visitor_id);
    let poll = app.poll(&visitor.token, &visitor.chat_id, 1_000_000, 20);
    let (held, erased, took) =
        act_while_held(poll, app.call("DELETE", &path, Some(&admin), None)).await;
    assert_eq!(erased.status, 204, "{}", erased.body);
    held.assert_error(401, "unauthorized");
    assert!(
        took < Duration::from_secs(10),
        "the held poll ended at once ({took:?})"
    );

    // Nothing of it answers any more.
    for chat in [&visitor.chat_id, &closed] {
        app.call("GET", &format!("/api/v1/chats/{chat}"), Some(&admin), None)
            .await
            .assert_error(404, "not_found");
    }
    app.call("GET", &format!("{path}/export"), Some(&admin), None)
        .await
        .assert_error(404, "not_found");
    app.call("DELETE", &path, Some(&admin), None)
        .await
        .assert_error(404, "not_found");
    app.call("GET", &file_url, Some(&admin), None)
        .await
        .assert_error(404, "not_found");
    app.call("GET", "/api/v1/visitors/me", Some(&visitor.token), None)
        .await
        .assert_error(401, "unauthorized");
    app.create_chat(&visitor.token)
        .await
        .assert_error(401, "unauthorized");
    let search = app
        .call(
            "GET",
            &format!("/api/v1/search?q={WORD}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(search.assert_status(200)["results"], json!([]));
    let listed = app.chats(&admin, "all").await;
    let ids: Vec<&str> = listed.assert_status(200)["chats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [other.chat_id.as_str()],
        "only the other visitor's chat is left"
    );
    let stats = app.call("GET", "/metrics", None, None).await;
    assert_eq!(stats.status, 200);

    // The webhook names only ids.
    let started = Instant::now();
    let deleted = loop {
        let found = receiver
            .delivered()
            .into_iter()
            .find(|r| r.event == "visitor.deleted");
        if let Some(found) = found {
            break found.json();
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no visitor.deleted arrived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(deleted["visitor_id"], visitor.visitor_id.as_str());
    let mut chat_ids: Vec<&str> = deleted["chat_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    chat_ids.sort();
    let mut expected = vec![visitor.chat_id.as_str(), closed.as_str()];
    expected.sort();
    assert_eq!(chat_ids, expected);
    assert!(!deleted.to_string().contains(EMAIL));
}

/// SQLite only (PostgreSQL keeps dead rows until its vacuum, outside Parley's control):
/// skip it on the PostgreSQL pass.
#[tokio::test]
async fn sqlite_erasure_leaves_nothing_in_the_database_file_or_its_wal() {
    // It reads the SQLite file itself: CI's PostgreSQL pass skips it by name.
    let app = app().await;
    let admin = app.admin_token().await;
    let receiver = Receiver::start(0).await;
    // Queued payloads carry the visitor's email and words too.
    create_webhook(
        &app,
        &admin,
        &receiver.url,
        &["chat.created", "message.created", "chat.closed"],
    )
    .await;
    let (visitor, _) = visitor_with_history(&app, &admin).await;
    let on_disk = |text: &str| {
        ["", "-wal"].iter().any(|suffix| {
            let mut path = app.db_path.as_os_str().to_owned();
            path.push(suffix);
            let bytes = std::fs::read(&path).unwrap_or_default();
            bytes.windows(text.len()).any(|w| w == text.as_bytes())
        })
    };
    assert!(
        on_disk(EMAIL) && on_disk(FILE_TEXT),
        "the test looks in the right place"
    );
    app.call(
        "DELETE",
        &format!("/api/v1/visitors/{}", visitor.visitor_id),
        Some(&admin),
        None,
    )
    .await
    .assert_status(204);
    // The search index shares a word's first letters with the word before it: look for
    // the rest.
    let word_tail = &WORD[4..];
    for suffix in ["", "-wal"] {
        let mut path = app.db_path.as_os_str().to_owned();
        path.push(suffix);
        let bytes = std::fs::read(&path).unwrap_or_default();
        for text in [EMAIL, word_tail, "Erin Erased", FILE_TEXT, "VIP customer"] {
            let found = bytes.windows(text.len()).any(|w| w == text.as_bytes());
            assert!(!found, "the erased {text:?} is still in {path:?}");
        }
    }
}

#[tokio::test]
async fn the_cli_exports_and_erases_a_visitor() {
    let app = app().await;
    let admin = app.admin_token().await;
    let (visitor, closed) = visitor_with_history(&app, &admin).await;
    // Used once, so the running server has the session cached.
    app.call("GET", "/api/v1/visitors/me", Some(&visitor.token), None)
        .await
        .assert_status(200);

    let (ok, text) = cli(&app, &["visitor", "export", &visitor.visitor_id]);
    assert!(ok, "{text}");
    let export: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(export["visitor"]["email"], EMAIL);
    assert_eq!(export["chats"].as_array().unwrap().len(), 2);
    assert_eq!(export["chats"][0]["chat"]["id"], closed.as_str());

    let (ok, text) = cli(&app, &["visitor", "delete", &visitor.visitor_id]);
    assert!(ok, "{text}");
    assert!(text.contains("erased"), "{text}");
    assert!(
        !text.contains(EMAIL),
        "the audit line names ids only: {text}"
    );
    app.call(
        "GET",
        &format!("/api/v1/chats/{closed}"),
        Some(&admin),
        None,
    )
    .await
    .assert_error(404, "not_found");
    // The running server drops the cached session within seconds.
    let started = Instant::now();
    loop {
        let me = app
            .call("GET", "/api/v1/visitors/me", Some(&visitor.token), None)
            .await;
        if me.status == 401 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the token still works"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (ok, text) = cli(&app, &["visitor", "export", &visitor.visitor_id]);
    assert!(!ok && text.contains("no visitor"), "{text}");
}

/// Two instances on one PostgreSQL database (`None` when PostgreSQL is missing).
async fn two_instances() -> Option<(TestApp, TestApp)> {
    let url = crate::pg::cluster()?.fresh_database();
    let a = spawn_app_with(|c| c.database_url = Some(url.clone())).await;
    let b = spawn_app_with(|c| c.database_url = Some(url.clone())).await;
    Some((a, b))
}

#[tokio::test]
async fn an_erasure_on_one_instance_ends_the_visitors_poll_on_another_at_once() {
    let Some((a, b)) = two_instances().await else {
        return;
    };
    let admin = a.admin_token().await;
    let chat = a.new_visitor_chat().await;
    b.call("GET", "/api/v1/visitors/me", Some(&chat.token), None)
        .await
        .assert_status(200);
    let path = format!("/api/v1/visitors/{}", chat.visitor_id);
    let (poll, erased, held) = act_while_held(
        b.poll(&chat.token, &chat.chat_id, 0, 20),
        a.call("DELETE", &path, Some(&admin), None),
    )
    .await;
    erased.assert_status(204);
    poll.assert_error(401, "unauthorized");
    assert!(held < Duration::from_secs(20), "ended, not timed out");
    b.call("GET", "/api/v1/visitors/me", Some(&chat.token), None)
        .await
        .assert_error(401, "unauthorized");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_from_the_cli_ends_the_visitors_held_poll_on_postgresql() {
    let Some((a, _b)) = two_instances().await else {
        return;
    };
    let chat = a.new_visitor_chat().await;
    let visitor_id = chat.visitor_id.clone();
    let erase = async {
        let app = &a;
        tokio::task::block_in_place(|| cli(app, &["visitor", "delete", &visitor_id]))
    };
    let (poll, (ok, text), held) =
        act_while_held(a.poll(&chat.token, &chat.chat_id, 0, 20), erase).await;
    assert!(ok, "{text}");
    poll.assert_error(401, "unauthorized");
    assert!(held < Duration::from_secs(20), "ended, not timed out");
}
