//! What an operator relies on: backups, security headers, the CLI.

use std::process::Command;

use crate::helpers::{seqs, spawn_app, spawn_app_with};
use crate::process::{free_port, Parley};

#[tokio::test]
async fn a_backup_taken_while_the_server_runs_restores_every_message() {
    let app = spawn_app().await;
    let chat = app.new_visitor_chat().await;
    for i in 0..20 {
        app.send(&chat.token, &chat.chat_id, &format!("m{i}"), None)
            .await
            .assert_status(201);
    }
    let backup = app.dir.path().join("backup.db");
    let backup_path = backup.to_str().unwrap();
    let (ok, out) = cli(&app, &["backup", backup_path]);
    assert!(ok, "{out}");
    // Writing over an existing file is refused.
    let (again, _) = cli(&app, &["backup", backup_path]);
    assert!(!again);

    // Restore: start a server on the copy; the same visitor sees the same conversation.
    let restored_db = backup.clone();
    let restored = spawn_app_with(move |c| c.db = restored_db).await;
    let poll = restored.poll(&chat.token, &chat.chat_id, 0, 0).await;
    assert_eq!(seqs(poll.assert_status(200)).len(), 20);
    assert_eq!(poll.body["messages"][19]["body"], "m19");
}

#[tokio::test]
async fn the_agent_inbox_can_never_be_framed_and_pages_forbid_inline_script() {
    let app = spawn_app().await;
    let agent = app.client.get(app.url("/agent")).send().await.unwrap();
    assert_eq!(agent.status(), 200);
    let csp = agent.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(agent.headers()["x-frame-options"], "DENY");
    assert_eq!(agent.headers()["x-content-type-options"], "nosniff");
    assert!(agent.headers().contains_key("referrer-policy"));

    let visitor = app.client.get(app.url("/")).send().await.unwrap();
    let csp = visitor.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(csp.contains("frame-ancestors *"), "{csp}");
}

#[tokio::test]
async fn the_visitor_page_may_be_framed_only_by_the_allowed_origins() {
    let app = spawn_app_with(|c| c.allowed_origins = "https://shop.example".into()).await;
    let visitor = app.client.get(app.url("/")).send().await.unwrap();
    let csp = visitor.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(
        csp.contains("frame-ancestors 'self' https://shop.example"),
        "{csp}"
    );
}

#[tokio::test]
async fn the_api_sends_no_cors_grant_to_foreign_origins() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/api/v1/chats/mine"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(!response
        .headers()
        .contains_key("access-control-allow-origin"));
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
}

#[tokio::test]
async fn assets_have_types_etags_and_revalidate() {
    let app = spawn_app().await;
    let widget = app.client.get(app.url("/widget.js")).send().await.unwrap();
    assert_eq!(widget.status(), 200);
    assert!(widget.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    let etag = widget.headers()["etag"].clone();
    let again = app
        .client
        .get(app.url("/widget.js"))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    let compressed = app
        .client
        .get(app.url("/widget.js"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(compressed.headers()["content-encoding"], "gzip");
    // A small answer goes out as it is: compressing ~1 KB costs more than it saves.
    let small = app
        .client
        .get(app.url("/healthz"))
        .header("accept-encoding", "gzip, deflate, br, zstd")
        .send()
        .await
        .unwrap();
    assert_eq!(small.status(), 200);
    assert!(small.headers().get("content-encoding").is_none());
    assert!(small.json::<serde_json::Value>().await.is_ok());
}

#[tokio::test]
async fn the_cli_adds_an_agent_who_can_then_log_in() {
    let app = spawn_app().await;
    let (ok, out) = cli(
        &app,
        &[
            "agent",
            "add",
            "--email",
            "cli@example.com",
            "--name",
            "Cli",
        ],
    );
    assert!(ok, "{out}");
    app.login("cli@example.com", "cli-chosen-password")
        .await
        .assert_status(200);
}

/// Runs the binary's command line on the app's database (SQLite file or PostgreSQL).
pub(crate) fn cli(app: &crate::helpers::TestApp, args: &[&str]) -> (bool, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_parley"));
    command.arg("--db").arg(&app.db_path);
    if let Some(url) = &app.database_url {
        command.arg("--database-url").arg(url);
    }
    let output = command
        .args(args)
        .env("PARLEY_AGENT_PASSWORD", "cli-chosen-password")
        .output()
        .expect("the binary runs");
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

#[tokio::test]
async fn an_agent_disabled_by_the_cli_is_locked_out_of_the_running_server() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (agent, _) = app.new_agent(&admin, "smith@example.com").await;
    let (ok, listing) = cli(&app, &["agent", "list"]);
    assert!(
        ok && listing.contains("smith@example.com") && listing.contains("active"),
        "{listing}"
    );
    let (ok, out) = cli(&app, &["agent", "disable", "smith@example.com"]);
    assert!(ok, "{out}");
    // The server's session cache forgets within seconds; poll until it does.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let me = app
            .call("GET", "/api/v1/agents/me", Some(&agent), None)
            .await;
        if me.status.as_u16() == 401 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still signed in");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    app.login("smith@example.com", "a-long-password")
        .await
        .assert_error(401, "unauthorized");
    let (ok, out) = cli(&app, &["agent", "disable", "admin@example.com"]);
    assert!(!ok && out.contains("last active admin"), "{out}");
}

#[tokio::test]
async fn the_cli_resets_a_password() {
    let app = spawn_app().await;
    let (ok, out) = cli(&app, &["agent", "reset-password", "admin@example.com"]);
    assert!(ok, "{out}");
    app.login(&app.admin_email, &app.admin_password)
        .await
        .assert_error(401, "unauthorized");
    app.login(&app.admin_email, "cli-chosen-password")
        .await
        .assert_status(200);
}

#[tokio::test]
async fn the_cli_exports_a_readable_transcript_and_json_and_prints_stats() {
    let app = spawn_app().await;
    let chat = app.new_visitor_chat().await;
    let agent = app.admin_token().await;
    app.send(&chat.token, &chat.chat_id, "Where is my order?", None)
        .await
        .assert_status(201);
    app.send(&agent, &chat.chat_id, "On its way.\nTracking: 123", None)
        .await
        .assert_status(201);
    let (ok, text) = cli(&app, &["chats", "export", &chat.chat_id]);
    assert!(ok, "{text}");
    assert!(
        text.contains("Where is my order?") && text.contains("  Tracking: 123"),
        "{text}"
    );
    assert!(text.contains("Admin (agent)"), "{text}");
    let (ok, json) = cli(
        &app,
        &["chats", "export", &chat.chat_id, "--format", "json"],
    );
    assert!(ok);
    let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed["messages"].as_array().unwrap().len(), 2);
    assert_eq!(parsed["chat"]["id"], chat.chat_id.as_str());
    let (ok, stats) = cli(&app, &["stats"]);
    assert!(ok);
    let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(stats["messages"], 2);
    assert_eq!(stats["open_chats"], 1);
    assert!(stats["database_bytes"].as_i64().unwrap() > 0);
    let (ok, out) = cli(&app, &["chats", "export", "no-such-chat"]);
    assert!(!ok && out.contains("no chat"), "{out}");
}

#[tokio::test]
async fn retention_deletes_only_chats_closed_long_enough_ago() {
    let app = spawn_app().await;
    let agent = app.admin_token().await;
    let old = app.new_visitor_chat().await;
    let open = app.new_visitor_chat().await;
    app.send(&old.token, &old.chat_id, "bye", None)
        .await
        .assert_status(201);
    app.send(&open.token, &open.chat_id, "still here", None)
        .await
        .assert_status(201);
    app.patch_chat(
        &agent,
        &old.chat_id,
        serde_json::json!({"status": "closed"}),
    )
    .await
    .assert_status(200);

    let kept = parley::services::retention::sweep(&app.store, 1)
        .await
        .unwrap();
    assert_eq!(kept, 0, "closed less than a day ago");
    let deleted = parley::services::retention::sweep(&app.store, 0)
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    app.call(
        "GET",
        &format!("/api/v1/chats/{}", old.chat_id),
        Some(&agent),
        None,
    )
    .await
    .assert_error(404, "not_found");
    let poll = app.poll(&open.token, &open.chat_id, 0, 0).await;
    assert_eq!(poll.assert_status(200)["messages"][0]["body"], "still here");
    let conn = rusqlite::Connection::open(&app.db_path).unwrap();
    let orphans: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM messages WHERE chat_id = ?1",
            [&old.chat_id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(orphans, 0);
}

#[tokio::test]
async fn the_request_log_names_method_path_and_status_but_never_a_query_or_token() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let mut server = Parley::start_logging(
        free_port(),
        &dir.path().join("parley.db"),
        &dir.path().join("parley.log"),
        "info",
    );
    server.wait_healthy(&client).await;
    let base = server.address();
    let refused = client
        .get(format!(
            "{base}/api/v1/chats/some-chat/messages?after=0&secret=hunter2"
        ))
        .bearer_auth("pv_not-a-real-token")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    // The log line is written after the response; give it a moment before stopping.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut log = server.log_text();
    while !log.contains("/messages\"") && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        log = server.log_text();
    }
    server.kill_9();
    assert!(log.contains("\"GET /healthz\" 200"), "{log}");
    assert!(
        log.contains("127.0.0.1 \"GET /api/v1/chats/some-chat/messages\" 401"),
        "{log}"
    );
    assert!(
        !log.contains("hunter2") && !log.contains("after=0"),
        "{log}"
    );
    assert!(!log.contains("pv_not-a-real-token"), "{log}");
}
