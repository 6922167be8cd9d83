//! Takes the README's screenshots of the dark palette: starts the real app on a temporary
//! database, writes a short conversation through the API, and photographs the visitor page
//! and the agent inbox in headless Chromium (via chromedriver).
//!
//! ```sh
//! cargo run --example screenshots            # writes docs/screenshots/*-dark.png
//! ```

use std::process::{Command, Stdio};
use std::time::Duration;

use fantoccini::{ClientBuilder, Locator};
use parley::config::Config;
use parley::http::server::Application;
use serde_json::{json, Value};

const ADMIN_EMAIL: &str = "ana@example.com";
const ADMIN_PASSWORD: &str = "a-long-password";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("parley.db");
    let mut config = Config::parse_from([
        "parley",
        "--addr",
        "127.0.0.1:0",
        "--db",
        db.to_str().ok_or("a UTF-8 temp path")?,
        "--admin-email",
        ADMIN_EMAIL,
        "--admin-password",
        ADMIN_PASSWORD,
    ])?;
    config.rate_limits = false;
    let app = Application::build(config).await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());

    let http = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, token: Option<&str>, body: Value| {
        let mut request = http.request(method, format!("{base}{path}")).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { request.send().await?.json::<Value>().await }
    };
    use reqwest::Method;
    let login = call(
        Method::POST,
        "/api/v1/agents/login",
        None,
        json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}),
    )
    .await?;
    let agent = login["token"].as_str().ok_or("an agent token")?.to_owned();
    call(
        Method::PATCH,
        "/api/v1/agents/me",
        Some(&agent),
        json!({"availability": "online"}),
    )
    .await?;
    let visitor = call(
        Method::POST,
        "/api/v1/visitors",
        None,
        json!({"name": "Lena Fischer", "email": "lena@example.com"}),
    )
    .await?;
    let visitor_token = visitor["token"]
        .as_str()
        .ok_or("a visitor token")?
        .to_owned();
    let chat = call(
        Method::POST,
        "/api/v1/chats",
        Some(&visitor_token),
        json!({}),
    )
    .await?;
    let chat_id = chat["chat"]["id"].as_str().ok_or("a chat id")?.to_owned();
    let say = |token: &str, body: &str, private: bool| {
        call(
            Method::POST,
            &format!("/api/v1/chats/{chat_id}/messages"),
            Some(token),
            json!({"body": body, "private": private}),
        )
    };
    say(
        &visitor_token,
        "Hi! My order #4821 hasn't arrived yet.",
        false,
    )
    .await?;
    say(
        &agent,
        "Sorry to hear that, Lena. Let me check with the courier.",
        false,
    )
    .await?;
    say(
        &agent,
        "Courier says Tuesday; offer a discount code if she asks.",
        true,
    )
    .await?;
    say(
        &agent,
        "It arrives on Tuesday. Anything else I can do?",
        false,
    )
    .await?;
    say(&visitor_token, "No, that's all. Thank you!", false).await?;
    call(
        Method::PATCH,
        &format!("/api/v1/chats/{chat_id}"),
        Some(&agent),
        json!({"labels": ["shipping", "vip"]}),
    )
    .await?;

    let port = 9515 + (std::process::id() % 1000) as u16;
    let mut driver = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let profile = tempfile::tempdir()?;
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu",
            "--hide-scrollbars", "--window-size=1200,760",
            "--disable-background-networking", "--disable-component-update",
            format!("--user-data-dir={}", profile.path().display())]}),
    );
    let _ = rustls::crypto::ring::default_provider().install_default();
    let browser = ClientBuilder::rustls()?
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await?;
    std::fs::create_dir_all("docs/screenshots")?;

    // The visitor page, as the widget shows it with data-theme="dark".
    browser.goto(&format!("{base}/?theme=dark")).await?;
    let session =
        json!({"token": visitor_token, "visitor": visitor["visitor"], "chat_id": chat_id});
    browser
        .execute(
            "localStorage.setItem('parley.visitor', JSON.stringify(arguments[0])); return null",
            vec![session],
        )
        .await?;
    browser.set_window_size(420, 700).await?;
    browser.goto(&format!("{base}/?theme=dark")).await?;
    browser
        .wait()
        .for_element(Locator::Css("[data-message-id]"))
        .await?;
    tokio::time::sleep(Duration::from_millis(800)).await;
    std::fs::write(
        "docs/screenshots/visitor-dark.png",
        browser.screenshot().await?,
    )?;

    // The inbox with the chat open, in the dark palette.
    browser.set_window_size(1200, 760).await?;
    browser.goto(&format!("{base}/agent")).await?;
    browser
        .find(Locator::Css("input[name=email]"))
        .await?
        .send_keys(ADMIN_EMAIL)
        .await?;
    browser
        .find(Locator::Css("input[name=password]"))
        .await?
        .send_keys(&format!("{ADMIN_PASSWORD}\u{E007}"))
        .await?;
    let item = format!(r#"#chat-list [data-chat-id="{chat_id}"]"#);
    browser
        .wait()
        .for_element(Locator::Css(&item))
        .await?
        .click()
        .await?;
    browser
        .wait()
        .for_element(Locator::Css("[data-private=\"true\"]"))
        .await?;
    browser
        .execute(
            "document.documentElement.dataset.theme = 'dark'; return null",
            vec![],
        )
        .await?;
    tokio::time::sleep(Duration::from_millis(800)).await;
    std::fs::write(
        "docs/screenshots/agent-dark.png",
        browser.screenshot().await?,
    )?;

    browser.close().await?;
    let _ = driver.kill();
    let _ = driver.wait();
    println!("wrote docs/screenshots/visitor-dark.png and docs/screenshots/agent-dark.png");
    Ok(())
}
