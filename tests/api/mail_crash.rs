//! Email across a `kill -9` of the real binary (SQLite; CI skips `crash::` modules on the
//! PostgreSQL pass): mail queued, and mail only scheduled, when the server dies goes out
//! once after the restart.

use std::time::Duration;

use serde_json::Value;

use crate::client::{ApiClient, ADMIN_EMAIL};
use crate::process::Parley;
use crate::smtp::SmtpSink;

async fn outbox(api: &ApiClient, admin: &str) -> Vec<Value> {
    let reply = api.call("GET", "/api/v1/mail", Some(admin), None).await;
    reply.assert_status(200)["mail"].as_array().unwrap().clone()
}

#[tokio::test]
async fn mail_queued_or_scheduled_at_a_kill_9_goes_out_once_after_the_restart() {
    let mut sink = SmtpSink::down();
    let dir = tempfile::tempdir().unwrap();
    let smtp_url = sink.url();
    let mut parley = Parley::start_in_with_env(
        dir.path(),
        &[
            ("PARLEY_SMTP_URL", smtp_url.as_str()),
            ("PARLEY_NOTIFY_AFTER", "1"),
            ("PARLEY_MAIL_RETRY_BASE_MS", "200"),
            ("PARLEY_RATE_LIMITS", "false"),
        ],
    )
    .await;
    let api = parley.api();
    let admin = api.admin_token().await;

    // Three notifications queued and failing against the SMTP server that is down.
    let mut bodies = Vec::new();
    for i in 0..3 {
        let chat = api.new_visitor_chat().await;
        let body = format!("queued before the kill {i}");
        api.send(&chat.token, &chat.chat_id, &body, None)
            .await
            .assert_status(201);
        bodies.push(body);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let listed = outbox(&api, &admin).await;
        let tried = listed
            .iter()
            .filter(|m| m["status"] == "pending" && m["attempts"].as_i64() >= Some(1))
            .count();
        if tried == 3 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{listed:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // And one only scheduled: the server dies before it is due.
    let late = api.new_visitor_chat().await;
    let body = "scheduled at the kill".to_string();
    api.send(&late.token, &late.chat_id, &body, None)
        .await
        .assert_status(201);
    bodies.push(body);

    parley.kill_9();
    sink.up();
    parley.restart().await;

    sink.wait_for(ADMIN_EMAIL, 4, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mails = sink.mails_to(ADMIN_EMAIL);
    assert_eq!(mails.len(), 4, "{mails:?}");
    for body in &bodies {
        let carrying = mails
            .iter()
            .filter(|m| {
                m["text"]
                    .as_str()
                    .is_some_and(|t| t.contains(body.as_str()))
            })
            .count();
        assert_eq!(carrying, 1, "{body}");
    }
    let listed = outbox(&api, &admin).await;
    assert!(listed.iter().all(|m| m["status"] == "sent"), "{listed:?}");
}
