//! Email against a real SMTP server (`smtp::SmtpSink`): notifications to agents and
//! visitors after `--notify-after`, the continuity and unsubscribe links, transcripts, the
//! outbox's retries while the SMTP server is down, and HTML escaping.

use std::time::Duration;

use serde_json::{json, Value};

use crate::client::ADMIN_EMAIL;
use crate::helpers::{spawn_app_with, TestApp};
use crate::smtp::{header, link, SmtpSink};

/// Long enough for a notification due after 1 s, on a loaded machine.
const ARRIVES: Duration = Duration::from_secs(20);
const PUBLIC_URL: &str = "https://chat.example.com";

/// The app with email on through `sink`, notifying after 1 s, retrying every 200 ms.
async fn mail_app(sink: &SmtpSink) -> TestApp {
    let url = sink.url();
    spawn_app_with(move |config| {
        config.smtp_url = Some(url);
        config.public_url = Some(PUBLIC_URL.into());
        config.mail_from = Some("Support <support@example.com>".into());
        config.notify_after = 1;
        config.mail_retry_base_ms = 200;
    })
    .await
}

/// A visitor with this email and an open chat: (token, visitor id, chat id).
async fn visitor_with_email(app: &TestApp, email: &str) -> (String, String, String) {
    let reply = app.create_visitor(json!({ "email": email })).await;
    let body = reply.assert_status(201);
    let token = body["token"].as_str().unwrap().to_string();
    let visitor_id = body["visitor"]["id"].as_str().unwrap().to_string();
    let chat = app.create_chat(&token).await;
    let chat_id = chat.assert_status(201)["chat"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    (token, visitor_id, chat_id)
}

/// The outbox as `GET /api/v1/mail` shows it to the admin.
async fn outbox(app: &TestApp, admin: &str) -> Vec<Value> {
    let reply = app.call("GET", "/api/v1/mail", Some(admin), None).await;
    reply.assert_status(200)["mail"].as_array().unwrap().clone()
}

fn text(mail: &Value) -> &str {
    mail["text"].as_str().unwrap_or_default()
}

fn html(mail: &Value) -> &str {
    mail["html"].as_str().unwrap_or_default()
}

/// Sends `body` into a fresh chat and waits for the admin's mail about it: after this,
/// every notification due before it has been settled too.
async fn flush(app: &TestApp, sink: &SmtpSink, body: &str) {
    let marker = app.new_visitor_chat().await;
    app.send(&marker.token, &marker.chat_id, body, None)
        .await
        .assert_status(201);
    let deadline = tokio::time::Instant::now() + ARRIVES;
    while !sink
        .mails_to(ADMIN_EMAIL)
        .iter()
        .any(|m| text(m).contains(body))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{body} was not mailed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_agent_is_emailed_once_about_messages_nobody_read() {
    let sink = SmtpSink::start();
    let app = mail_app(&sink).await;
    let chat = app.new_visitor_chat().await;
    app.send(&chat.token, &chat.chat_id, "Do you ship to Norway?", None)
        .await
        .assert_status(201);
    app.send(&chat.token, &chat.chat_id, "And to Iceland?", None)
        .await
        .assert_status(201);

    let mails = sink.wait_for(ADMIN_EMAIL, 1, ARRIVES).await;
    let mail = &mails[0];
    assert!(text(mail).contains("Do you ship to Norway?"), "{mail}");
    assert!(text(mail).contains("And to Iceland?"), "{mail}");
    let inbox_link = format!("{PUBLIC_URL}/agent#chat={}", chat.chat_id);
    assert!(text(mail).contains(&inbox_link), "{mail}");
    assert!(html(mail).contains(&inbox_link), "{mail}");
    assert_eq!(mail["subject"], "2 new messages from A visitor");
    assert!(header(mail, "From")
        .unwrap()
        .contains("support@example.com"));
    let message_id = header(mail, "Message-ID").expect("a Message-ID");
    assert!(message_id.ends_with("@example.com>"), "{message_id}");
    assert!(header(mail, "Date").is_some());
    // Agent mail has nothing to unsubscribe from: the agent turns it off in the inbox.
    assert!(header(mail, "List-Unsubscribe").is_none());

    // One mail for the burst, and no second one for the same messages.
    flush(&app, &sink, "a later chat").await;
    let about_chat: Vec<Value> = sink
        .mails_to(ADMIN_EMAIL)
        .into_iter()
        .filter(|m| text(m).contains(&inbox_link))
        .collect();
    assert_eq!(about_chat.len(), 1, "{about_chat:?}");
}

#[tokio::test]
async fn no_agent_is_emailed_when_an_agent_read_the_messages_first() {
    let sink = SmtpSink::start();
    let app = mail_app(&sink).await;
    let admin = app.admin_token().await;
    let chat = app.new_visitor_chat().await;
    let sent = app
        .send(&chat.token, &chat.chat_id, "read me quickly", None)
        .await;
    let seq = sent.assert_status(201)["message"]["seq"].as_i64().unwrap();
    app.call(
        "POST",
        &format!("/api/v1/chats/{}/read", chat.chat_id),
        Some(&admin),
        Some(json!({ "seq": seq })),
    )
    .await
    .assert_status(204);

    flush(&app, &sink, "the marker chat").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mails = sink.mails_to(ADMIN_EMAIL);
    assert!(
        mails.iter().all(|m| !text(m).contains("read me quickly")),
        "{mails:?}"
    );
}

#[tokio::test]
async fn only_agents_with_notifications_on_get_mail_and_an_assignee_alone() {
    let sink = SmtpSink::start();
    let app = mail_app(&sink).await;
    let admin = app.admin_token().await;
    let (quiet, quiet_id) = app.new_agent(&admin, "quiet@example.com").await;
    let (_, helper_id) = app.new_agent(&admin, "helper@example.com").await;

    // The agent itself turns its mail off.
    let reply = app
        .call(
            "PATCH",
            "/api/v1/agents/me",
            Some(&quiet),
            Some(json!({ "email_notifications": false })),
        )
        .await;
    assert_eq!(
        reply.assert_status(200)["agent"]["email_notifications"],
        false
    );
    let me = app
        .call("GET", "/api/v1/agents/me", Some(&admin), None)
        .await;
    assert_eq!(me.assert_status(200)["agent"]["email_notifications"], true);
    // Only booleans.
    app.call(
        "PATCH",
        "/api/v1/agents/me",
        Some(&quiet),
        Some(json!({ "email_notifications": "no" })),
    )
    .await
    .assert_status(400);

    // Unassigned: every agent with notifications on.
    let open = app.new_visitor_chat().await;
    app.send(&open.token, &open.chat_id, "anyone there?", None)
        .await
        .assert_status(201);
    sink.wait_for(ADMIN_EMAIL, 1, ARRIVES).await;
    sink.wait_for("helper@example.com", 1, ARRIVES).await;

    // Assigned to the helper: the helper alone.
    let assigned = app.new_visitor_chat().await;
    app.patch_chat(
        &admin,
        &assigned.chat_id,
        json!({ "assignee_id": helper_id }),
    )
    .await
    .assert_status(200);
    app.send(&assigned.token, &assigned.chat_id, "for the helper", None)
        .await
        .assert_status(201);
    let helper_mails = sink.wait_for("helper@example.com", 2, ARRIVES).await;
    assert!(helper_mails
        .iter()
        .any(|m| text(m).contains("for the helper")));

    // Assigned to the quiet agent: nobody.
    let quiet_chat = app.new_visitor_chat().await;
    app.patch_chat(
        &admin,
        &quiet_chat.chat_id,
        json!({ "assignee_id": quiet_id }),
    )
    .await
    .assert_status(200);
    app.send(
        &quiet_chat.token,
        &quiet_chat.chat_id,
        "for the quiet one",
        None,
    )
    .await
    .assert_status(201);

    flush(&app, &sink, "the last marker").await;
    assert!(sink.mails_to("quiet@example.com").is_empty());
    assert!(sink
        .mails()
        .iter()
        .all(|m| !text(m).contains("for the quiet one")));
    assert!(sink
        .mails_to(ADMIN_EMAIL)
        .iter()
        .all(|m| !text(m).contains("for the helper")));
}

#[tokio::test]
async fn a_visitor_is_emailed_unread_replies_with_a_link_that_reopens_the_chat() {
    let sink = SmtpSink::start();
    let app = mail_app(&sink).await;
    let admin = app.admin_token().await;
    let (token, visitor_id, chat_id) = visitor_with_email(&app, "ann@example.com").await;
    app.send(&token, &chat_id, "Where is my parcel?", None)
        .await
        .assert_status(201);
    app.send(&admin, &chat_id, "It left the warehouse today.", None)
        .await
        .assert_status(201);
    app.call(
        "POST",
        &format!("/api/v1/chats/{chat_id}/messages"),
        Some(&admin),
        Some(json!({ "body": "SECRET NOTE: customer is grumpy", "private": true })),
    )
    .await
    .assert_status(201);

    let mails = sink.wait_for("ann@example.com", 1, ARRIVES).await;
    let mail = &mails[0];
    assert!(
        text(mail).contains("It left the warehouse today."),
        "{mail}"
    );
    for part in [text(mail), html(mail), mail["subject"].as_str().unwrap()] {
        assert!(
            !part.contains("SECRET NOTE"),
            "a private note was mailed: {mail}"
        );
    }

    // The continuity link opens the same chat for whoever holds it.
    let continue_link = link(mail, &format!("{PUBLIC_URL}/?continue=")).expect("a link");
    assert!(
        continue_link.contains(&format!("chat={chat_id}")),
        "{continue_link}"
    );
    let reply = app
        .call(
            "POST",
            "/api/v1/visitors/continue",
            None,
            Some(json!({ "link": continue_link })),
        )
        .await;
    let body = reply.assert_status(200);
    assert_eq!(body["visitor"]["id"], visitor_id.as_str());
    let fresh = body["token"].as_str().unwrap().to_string();
    assert_ne!(fresh, token);
    assert_eq!(app.chat(&fresh, &chat_id).await["id"], chat_id.as_str());
    let page = app.messages(&fresh, &chat_id, 0, 50).await;
    let bodies: Vec<&str> = page.assert_status(200)["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["body"].as_str())
        .collect();
    assert!(
        bodies.contains(&"It left the warehouse today."),
        "{bodies:?}"
    );
    // The old token still works: continuing elsewhere ends nothing.
    app.chat(&token, &chat_id).await;

    // A tampered link is refused.
    let mut tampered = continue_link.clone();
    let at = tampered.find("&chat=").unwrap() - 1;
    let flipped = if &tampered[at..=at] == "0" { "1" } else { "0" };
    tampered.replace_range(at..=at, flipped);
    for bad in [
        tampered.as_str(),
        "pv_not-a-link",
        "",
        "https://x/?continue=a.1.00",
    ] {
        app.call(
            "POST",
            "/api/v1/visitors/continue",
            None,
            Some(json!({ "link": bad })),
        )
        .await
        .assert_error(403, "forbidden");
    }

    // One-click unsubscribe (RFC 8058), from the headers.
    let unsubscribe = header(mail, "List-Unsubscribe").expect("List-Unsubscribe");
    assert_eq!(
        header(mail, "List-Unsubscribe-Post"),
        Some("List-Unsubscribe=One-Click")
    );
    let url = unsubscribe.trim_matches(['<', '>']);
    let path = url.strip_prefix(PUBLIC_URL).expect("a link to this server");
    let page = app.call("GET", path, None, None).await;
    page.assert_status(200);
    // Opening the link changes nothing; the page's button posts.
    app.send(&admin, &chat_id, "Still subscribed?", None)
        .await
        .assert_status(201);
    let mails = sink.wait_for("ann@example.com", 2, ARRIVES).await;
    assert!(mails.iter().any(|m| text(m).contains("Still subscribed?")));
    let reply = app.call("POST", path, None, None).await;
    assert_eq!(reply.assert_status(200)["unsubscribed"], true);
    app.call("POST", "/api/v1/unsubscribe?token=v.1.00", None, None)
        .await
        .assert_error(403, "forbidden");
    // A tampered link gets no confirm page either.
    app.call("GET", "/api/v1/unsubscribe?token=v.1.00", None, None)
        .await
        .assert_error(403, "forbidden");

    app.send(&admin, &chat_id, "After the unsubscribe", None)
        .await
        .assert_status(201);
    flush(&app, &sink, "visitor mail marker").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(sink.mails_to("ann@example.com").len(), 2);
    let listed = outbox(&app, &admin).await;
    let to_ann = listed
        .iter()
        .filter(|m| m["recipient"] == "ann@example.com")
        .count();
    assert_eq!(to_ann, 2, "{listed:?}");
}

#[tokio::test]
async fn a_visitor_who_read_the_reply_gets_no_mail() {
    let sink = SmtpSink::start();
    let app = mail_app(&sink).await;
    let admin = app.admin_token().await;
    let (token, _, chat_id) = visitor_with_email(&app, "reader@example.com").await;
    let sent = app.send(&admin, &chat_id, "Quick answer", None).await;
    let seq = sent.assert_status(201)["message"]["seq"].as_i64().unwrap();
    app.call(
        "POST",
        &format!("/api/v1/chats/{chat_id}/read"),
        Some(&token),
        Some(json!({ "seq": seq })),
    )
    .await
    .assert_status(204);
    flush(&app, &sink, "reader marker").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(sink.mails_to("reader@example.com").is_empty());
}

#[tokio::test]
async fn user_text_in_mail_html_is_escaped() {
    let sink = SmtpSink::start();
    let app = mail_app(&sink).await;
    let reply = app
        .create_visitor(json!({ "name": "<b>Eve</b>", "email": "eve@example.com" }))
        .await;
    let token = reply.assert_status(201)["token"]
        .as_str()
        .unwrap()
        .to_string();
    let chat_id = app.create_chat(&token).await.assert_status(201)["chat"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let evil = "<script>alert('x')</script><img src=x onerror=alert(1)>";
    app.send(&token, &chat_id, evil, None)
        .await
        .assert_status(201);

    let mail = sink.wait_for(ADMIN_EMAIL, 1, ARRIVES).await.remove(0);
    let html = html(&mail);
    for raw in ["<script", "<img", "<b>Eve"] {
        assert!(!html.contains(raw), "{raw} in the HTML: {html}");
    }
    assert!(html.contains("&lt;script&gt;"), "{html}");
    assert!(html.contains("&lt;b&gt;Eve&lt;/b&gt;"), "{html}");
    // The text part is the text as written.
    assert!(text(&mail).contains(evil));
}

#[tokio::test]
async fn with_the_smtp_server_down_then_up_every_mail_arrives_exactly_once() {
    let mut sink = SmtpSink::down();
    let app = mail_app(&sink).await;
    let admin = app.admin_token().await;
    let mut chats = Vec::new();
    for i in 0..3 {
        let chat = app.new_visitor_chat().await;
        app.send(&chat.token, &chat.chat_id, &format!("while down {i}"), None)
            .await
            .assert_status(201);
        chats.push(chat.chat_id);
    }
    // Queued, and tried at least twice against a closed port.
    let deadline = tokio::time::Instant::now() + ARRIVES;
    loop {
        let listed = outbox(&app, &admin).await;
        let retried = listed
            .iter()
            .filter(|m| m["status"] == "pending" && m["attempts"].as_i64() >= Some(2))
            .count();
        if retried == 3 {
            assert!(
                listed.iter().all(|m| m["last_error"].is_string()),
                "{listed:?}"
            );
            assert!(listed.iter().all(|m| m["kind"] == "agent_notification"));
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{listed:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    sink.up();
    let mails = sink.wait_for(ADMIN_EMAIL, 3, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mails_after = sink.mails_to(ADMIN_EMAIL);
    assert_eq!(mails_after.len(), 3, "{mails_after:?}");
    for chat_id in &chats {
        let about = mails
            .iter()
            .filter(|m| text(m).contains(&format!("#chat={chat_id}")))
            .count();
        assert_eq!(about, 1, "{chat_id}");
    }
    let listed = outbox(&app, &admin).await;
    assert!(listed.iter().all(|m| m["status"] == "sent"), "{listed:?}");
    assert!(
        listed.iter().all(|m| m["last_error"].is_null()),
        "{listed:?}"
    );

    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    for outcome in ["queued", "sent", "retry"] {
        let line = format!("parley_mail_total{{outcome=\"{outcome}\"}}");
        assert!(metrics.contains(&line), "{outcome} missing");
    }
}

#[tokio::test]
async fn a_closed_chat_transcript_is_emailed_on_request_once() {
    let sink = SmtpSink::start();
    let app = mail_app(&sink).await;
    let admin = app.admin_token().await;
    let (token, _, chat_id) = visitor_with_email(&app, "tess@example.com").await;
    app.send(&token, &chat_id, "My question", None)
        .await
        .assert_status(201);
    app.send(&admin, &chat_id, "Our answer", None)
        .await
        .assert_status(201);
    app.call(
        "POST",
        &format!("/api/v1/chats/{chat_id}/messages"),
        Some(&admin),
        Some(json!({ "body": "PRIVATE: refund approved", "private": true })),
    )
    .await
    .assert_status(201);
    let path = format!("/api/v1/chats/{chat_id}/transcript");

    app.call("POST", &path, Some(&token), None)
        .await
        .assert_error(409, "conflict");
    app.patch_chat(&admin, &chat_id, json!({ "status": "closed" }))
        .await
        .assert_status(200);
    app.call("POST", &path, Some(&token), None)
        .await
        .assert_status(202);
    app.call("POST", &path, Some(&token), None)
        .await
        .assert_error(409, "conflict");

    let mails = sink.wait_for("tess@example.com", 1, ARRIVES).await;
    let transcript = mails
        .iter()
        .find(|m| m["subject"].as_str().unwrap().starts_with("Transcript"))
        .expect("the transcript");
    assert!(text(transcript).contains("My question"));
    assert!(text(transcript).contains("Our answer"));
    assert!(!text(transcript).contains("PRIVATE") && !html(transcript).contains("PRIVATE"));
    assert!(header(transcript, "List-Unsubscribe").is_some());

    // A visitor without an email.
    let anonymous = app.new_visitor_chat().await;
    app.send(&anonymous.token, &anonymous.chat_id, "hi", None)
        .await
        .assert_status(201);
    app.patch_chat(&admin, &anonymous.chat_id, json!({ "status": "closed" }))
        .await
        .assert_status(200);
    let path = format!("/api/v1/chats/{}/transcript", anonymous.chat_id);
    app.call("POST", &path, Some(&anonymous.token), None)
        .await
        .assert_error(422, "invalid");
}

#[tokio::test]
async fn without_an_smtp_url_nothing_is_queued() {
    let app = spawn_app_with(|config| config.notify_after = 1).await;
    let admin = app.admin_token().await;
    let chat = app.new_visitor_chat().await;
    app.send(&chat.token, &chat.chat_id, "no mail for this", None)
        .await
        .assert_status(201);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(outbox(&app, &admin).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_notification_is_mailed_once_by_one_of_several_postgresql_instances() {
    const CHATS: usize = 12;
    let Some(cluster) = crate::pg::cluster() else {
        return;
    };
    let database = cluster.fresh_database();
    let sink = SmtpSink::start();
    let mut instances = Vec::new();
    for _ in 0..2 {
        let (url, database) = (sink.url(), database.clone());
        instances.push(
            spawn_app_with(move |config| {
                config.database_url = Some(database);
                config.smtp_url = Some(url);
                config.notify_after = 1;
            })
            .await,
        );
    }
    let mut chats = Vec::new();
    for n in 0..CHATS {
        let app = &instances[n % 2];
        let chat = app.new_visitor_chat().await;
        app.send(&chat.token, &chat.chat_id, &format!("to both {n}"), None)
            .await
            .assert_status(201);
        chats.push(chat.chat_id);
    }
    sink.wait_for(ADMIN_EMAIL, CHATS, Duration::from_secs(60))
        .await;
    // Whatever else would come, comes within a few worker rounds.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mails = sink.mails_to(ADMIN_EMAIL);
    assert_eq!(mails.len(), CHATS, "a notification was mailed twice");
    for chat_id in &chats {
        let about = mails
            .iter()
            .filter(|m| text(m).contains(&format!("#chat={chat_id}")))
            .count();
        assert_eq!(about, 1, "{chat_id}");
    }
}

#[tokio::test]
async fn a_mentioned_agent_is_emailed_the_note_unless_its_notifications_are_off() {
    let sink = SmtpSink::start();
    let app = mail_app(&sink).await;
    let admin = app.admin_token().await;
    app.new_agent(&admin, "ana@example.com").await;
    let (bo, _) = app.new_agent(&admin, "bo@example.com").await;
    app.call(
        "PATCH",
        "/api/v1/agents/me",
        Some(&bo),
        Some(json!({"email_notifications": false})),
    )
    .await
    .assert_status(200);
    let chat = app.new_visitor_chat().await;
    app.call(
        "POST",
        &format!("/api/v1/chats/{}/messages", chat.chat_id),
        Some(&admin),
        Some(json!({"body": "@ana @bo the <b>refund</b> is yours", "private": true})),
    )
    .await
    .assert_status(201);

    let mails = sink.wait_for("ana@example.com", 1, ARRIVES).await;
    let mail = &mails[0];
    assert!(
        mail["subject"]
            .as_str()
            .unwrap()
            .contains("mentioned you in the chat with A visitor"),
        "{mail}"
    );
    assert!(
        text(mail).contains("@ana @bo the <b>refund</b> is yours"),
        "{mail}"
    );
    assert!(
        html(mail).contains("the &lt;b&gt;refund&lt;/b&gt;"),
        "{mail}"
    );
    let inbox_link = format!("{PUBLIC_URL}/agent#chat={}", chat.chat_id);
    assert!(text(mail).contains(&inbox_link), "{mail}");

    // Bo turned mail off; the visitor never hears of the note.
    flush(&app, &sink, "after the mention").await;
    let mentions_to = |to: &str| {
        sink.mails_to(to)
            .iter()
            .filter(|m| {
                m["subject"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("mentioned you")
            })
            .count()
    };
    assert_eq!(mentions_to("bo@example.com"), 0);
    assert_eq!(mentions_to("ana@example.com"), 1);
}
