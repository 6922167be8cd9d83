//! What an operator relies on: backups, security headers, the CLI.

use std::process::Command;

use crate::helpers::{seqs, spawn_app, spawn_app_with};

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
    let output = Command::new(env!("CARGO_BIN_EXE_parley"))
        .args([
            "--db",
            app.db_path.to_str().unwrap(),
            "backup",
            backup.to_str().unwrap(),
        ])
        .output()
        .expect("the binary runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Writing over an existing file is refused.
    let again = Command::new(env!("CARGO_BIN_EXE_parley"))
        .args([
            "--db",
            app.db_path.to_str().unwrap(),
            "backup",
            backup.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!again.status.success());

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
}

#[tokio::test]
async fn the_cli_adds_an_agent_who_can_then_log_in() {
    let app = spawn_app().await;
    let output = Command::new(env!("CARGO_BIN_EXE_parley"))
        .args([
            "--db",
            app.db_path.to_str().unwrap(),
            "agent",
            "add",
            "--email",
            "cli@example.com",
            "--name",
            "Cli",
        ])
        .env("PARLEY_AGENT_PASSWORD", "from-the-cli-123")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    app.login("cli@example.com", "from-the-cli-123")
        .await
        .assert_status(200);
}
