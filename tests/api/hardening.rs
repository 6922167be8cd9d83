//! The second security round: each test is one finding of the attack report, and fails
//! without its fix.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{act_while_held, spawn_app, spawn_app_with, TestApp};

/// Sends raw bytes on a new connection and reads until the server answers or closes.
async fn raw_exchange(app: &TestApp, request: &[u8], read_for: Duration) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + read_for;
    while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buffer[..n]);
        if answer.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn behind_the_proxy_a_client_cannot_choose_its_address() {
    let app = spawn_app_with(|c| {
        c.rate_limits = true;
        c.trust_proxy = true;
    })
    .await;
    let mut refused = 0;
    for i in 0..60 {
        // What nginx's `proxy_add_x_forwarded_for` makes of a client's own header: the
        // client's text first, then the address nginx saw.
        let response = app
            .client
            .post(app.url("/api/v1/visitors"))
            .header("X-Forwarded-For", format!("198.51.100.{i}, 203.0.113.7"))
            .header("Forwarded", format!("for=192.0.2.{i}"))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        if response.status() == 429 {
            refused += 1;
        }
    }
    assert!(
        refused > 0,
        "60 visitors from one real address with rotating fake ones were all let in"
    );
}

#[tokio::test]
async fn a_body_that_never_finishes_is_cut_off() {
    let app = spawn_app_with(|c| c.body_idle_timeout = 1).await;
    let started = Instant::now();
    let answer = raw_exchange(
        &app,
        b"POST /api/v1/visitors HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 1000\r\n\r\n{",
        Duration::from_secs(15),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 408"), "answer: {answer:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn one_address_cannot_hold_every_connection_and_health_still_answers() {
    let app = spawn_app_with(|c| c.max_connections_per_ip = 3).await;
    // Three connections that are open and idle (a slow client, say).
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(("127.0.0.1", app.port)).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let request = b"GET /api/v1/config HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let answer = raw_exchange(&app, request, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 429"), "answer: {answer:?}");
    let health = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let answer = raw_exchange(&app, health, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "answer: {answer:?}");
    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let answer = raw_exchange(&app, request, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "answer: {answer:?}");
}

#[tokio::test]
async fn a_held_poll_answers_401_when_its_agent_logs_out() {
    let app = spawn_app().await;
    let agent = app.admin_token().await;
    let logout = app.call("POST", "/api/v1/agents/logout", Some(&agent), None);
    let (reply, logged_out, held) = act_while_held(app.inbox(&agent, 0, 20), logout).await;
    logged_out.assert_status(204);
    reply.assert_error(401, "unauthorized");
    assert!(held < Duration::from_secs(10), "held {held:?}");
}

#[tokio::test]
async fn a_held_poll_answers_401_when_its_agent_is_disabled_or_its_token_rotated() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (agent, agent_id) = app.new_agent(&admin, "held@example.com").await;
    let agent_path = format!("/api/v1/agents/{agent_id}");
    let disable = app.call(
        "PATCH",
        &agent_path,
        Some(&admin),
        Some(json!({"disabled": true})),
    );
    let (reply, disabled, _) = act_while_held(app.inbox(&agent, 0, 20), disable).await;
    disabled.assert_status(200);
    reply.assert_error(401, "unauthorized");

    let chat = app.new_visitor_chat().await;
    let rotate = app.call("POST", "/api/v1/visitors/me/token", Some(&chat.token), None);
    let (reply, rotated, held) =
        act_while_held(app.poll(&chat.token, &chat.chat_id, 0, 20), rotate).await;
    rotated.assert_status(200);
    reply.assert_error(401, "unauthorized");
    assert!(held < Duration::from_secs(10), "held {held:?}");
}

#[tokio::test]
async fn deceptive_names_and_nul_bodies_are_refused() {
    let app = spawn_app().await;
    for name in ["\u{202E}Support Team", "\u{200B}", "Ann\u{2066}x"] {
        app.create_visitor(json!({ "name": name }))
            .await
            .assert_error(422, "invalid");
    }
    let admin = app.admin_token().await;
    app.call(
        "POST",
        "/api/v1/agents",
        Some(&admin),
        Some(json!({"email": "rlo@example.com", "name": "\u{202E}maeT", "password": "a-long-password"})),
    )
    .await
    .assert_error(422, "invalid");
    let chat = app.new_visitor_chat().await;
    app.send(&chat.token, &chat.chat_id, "a\u{0}b", None)
        .await
        .assert_error(422, "invalid");
    app.send(&chat.token, &chat.chat_id, "مرحبا hello", None)
        .await
        .assert_status(201);
}

#[tokio::test]
async fn webhooks_cannot_target_the_local_network_by_default() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://2130706433/",
        "http://0x7f.0.0.1/",
        "http://127.1/",
        "http://[::1]/",
        "http://169.254.169.254/latest/meta-data",
        "http://192.168.1.10/",
    ] {
        app.call(
            "POST",
            "/api/v1/webhooks",
            Some(&admin),
            Some(json!({"url": url, "events": ["chat.created"]})),
        )
        .await
        .assert_error(422, "invalid");
    }
}

#[tokio::test]
async fn the_database_and_its_log_are_private_to_their_owner() {
    let app = spawn_app().await;
    let chat = app.new_visitor_chat().await;
    app.send(&chat.token, &chat.chat_id, "hello", None)
        .await
        .assert_status(201);
    for suffix in ["", "-wal", "-shm"] {
        let mut path = app.db_path.as_os_str().to_owned();
        path.push(suffix);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{path:?} has mode {mode:o}");
    }
}

#[tokio::test]
async fn deleted_chats_leave_the_database_file_and_its_log() {
    let app = spawn_app().await;
    let agent = app.admin_token().await;
    let chat = app.new_visitor_chat().await;
    let marker = "zebra-marker-7f3c-wholly-unique";
    // One word on its own, as the search index keeps words (it shares a word's first
    // letters with the word before it, so the test looks for the rest).
    let word = "quokkaxylophonewhistle";
    let word_tail = &word[4..];
    for _ in 0..20 {
        app.send(
            &chat.token,
            &chat.chat_id,
            &format!("{marker} {word} {}", "x".repeat(500)),
            None,
        )
        .await
        .assert_status(201);
    }
    app.patch_chat(&agent, &chat.chat_id, json!({"status": "closed"}))
        .await
        .assert_status(200);
    let deleted = parley::services::retention::sweep(&app.store, 0)
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    for suffix in ["", "-wal"] {
        let mut path = app.db_path.as_os_str().to_owned();
        path.push(suffix);
        let bytes = std::fs::read(&path).unwrap_or_default();
        for text in [marker, word_tail] {
            let found = bytes.windows(text.len()).any(|w| w == text.as_bytes());
            assert!(!found, "the deleted {text:?} is still in {path:?}");
        }
    }
    let conn = parley::store::open(&app.db_path).unwrap();
    let free: i64 = conn
        .query_row("PRAGMA freelist_count", [], |r| r.get(0))
        .unwrap();
    assert_eq!(free, 0, "the space of the deleted chat was given back");
}

#[tokio::test]
async fn attachments_are_never_kept_in_the_browser_cache() {
    let app = spawn_app().await;
    let chat = app.new_visitor_chat().await;
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(b"secret notes".to_vec()).file_name("notes.txt"),
    );
    let uploaded = app.upload(&chat.token, &chat.chat_id, form).await;
    let url = uploaded.assert_status(201)["message"]["attachment"]["url"]
        .as_str()
        .unwrap()
        .to_string();
    let download = app
        .client
        .get(app.url(&url))
        .bearer_auth(&chat.token)
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), 200);
    assert_eq!(download.headers()["cache-control"], "no-store");
}

#[tokio::test]
async fn a_file_name_that_disguises_its_extension_is_refused() {
    let app = spawn_app().await;
    let chat = app.new_visitor_chat().await;
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(b"MZ not really".to_vec())
            .file_name("invoice\u{202E}fdp.exe"),
    );
    app.upload(&chat.token, &chat.chat_id, form)
        .await
        .assert_error(422, "invalid");
}

#[tokio::test]
async fn a_stolen_session_cannot_guess_the_password_through_a_password_change() {
    let app = spawn_app_with(|c| c.rate_limits = true).await;
    let admin = app.admin_token().await;
    let mut statuses = Vec::new();
    for i in 0..8 {
        let reply = app
            .call(
                "POST",
                "/api/v1/agents/me/password",
                Some(&admin),
                Some(json!({"current_password": format!("guess-number-{i}"), "new_password": "a-new-long-password"})),
            )
            .await;
        statuses.push(reply.status.as_u16());
    }
    assert_eq!(statuses[0], 422, "a wrong guess is refused: {statuses:?}");
    assert!(
        statuses.contains(&429),
        "guesses are slowed down like logins: {statuses:?}"
    );
}
