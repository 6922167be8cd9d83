//! Browser tests: real headless Chromium driven through chromedriver (fantoccini)
//! against the real server — the visitor page, the agent inbox and the widget,
//! found only through the stable hooks of the API contract.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (or `PARLEY_CHROMIUM` /
//! `PARLEY_CHROMEDRIVER`). Without them each test prints a note and passes, except
//! under `CI`, where a missing browser is a failure.

use std::future::Future;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use futures_util::FutureExt;
use serde_json::{json, Value};

use crate::client::ApiClient;
use crate::helpers::{spawn_app, spawn_app_with};
use crate::process::{free_port, Parley};

/// How long a condition may take to come true; generous for a loaded 2-core machine.
pub(crate) const PATIENCE: Duration = Duration::from_secs(20);
/// After a server restart the page's backoff (1 s, 2 s, 4 s …) must run out first.
const RESTART_PATIENCE: Duration = Duration::from_secs(45);
/// A valid 1×1 PNG.
const PIXEL_PNG: [u8; 70] = [
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0x64, 0x60, 0xf8, 0x5f,
    0x0f, 0x00, 0x02, 0x87, 0x01, 0x80, 0xeb, 0x47, 0xba, 0x92, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

// ---------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn a_visitor_writes_and_an_agent_sees_it_live_in_the_inbox() {
    let app = spawn_app().await;
    with_browser(|b| async move {
        let agent = b.client.window().await.expect("current window");
        sign_in(&b, &app).await;

        b.open_window().await;
        visitor_sends(&b, &app.url("/"), "Hello, do you ship to Norway?").await;

        b.client
            .switch_to_window(agent)
            .await
            .expect("back to the agent");
        let chat_id = b.wait_for_chat_item("Hello, do you ship to Norway?").await;
        assert!(!chat_id.is_empty());
        b.eventually(
            "the tab title counts the unread chat",
            r#"return document.title.startsWith("(1)")"#,
        )
        .await;
    })
    .await;
}

#[tokio::test]
async fn the_agent_replies_and_the_visitor_sees_it_live_without_a_reload() {
    let app = spawn_app().await;
    with_browser(|b| async move {
        let visitor = b.client.window().await.expect("current window");
        visitor_sends(&b, &app.url("/"), "Is anyone there?").await;
        // Survives only if the page is never reloaded.
        b.js("window.__stillTheSamePage = true; return null", vec![])
            .await;

        b.open_window().await;
        sign_in(&b, &app).await;
        let chat_id = b.wait_for_chat_item("Is anyone there?").await;
        b.click(&format!(r#"[data-chat-id="{chat_id}"]"#)).await;
        b.wait_for_message("Is anyone there?", true).await;
        send_message(&b, "Yes, how can I help?").await;
        b.wait_for_message("Yes, how can I help?", true).await;

        b.client
            .switch_to_window(visitor)
            .await
            .expect("back to the visitor");
        b.wait_for_message("Yes, how can I help?", true).await;
        let same = b
            .js("return window.__stillTheSamePage === true", vec![])
            .await;
        assert_eq!(same, json!(true), "the visitor page was reloaded");
    })
    .await;
}

#[tokio::test]
async fn a_message_with_markup_is_shown_as_literal_text() {
    let app = spawn_app().await;
    let markup = "<b>x</b><script>alert(1)</script><img src=x onerror=alert(2)>";
    with_browser(|b| async move {
        visitor_sends(&b, &app.url("/"), markup).await;
        assert_markup_is_inert(&b, markup).await;

        b.open_window().await;
        sign_in(&b, &app).await;
        let chat_id = b.wait_for_chat_item("<b>x</b>").await;
        b.click(&format!(r#"[data-chat-id="{chat_id}"]"#)).await;
        b.wait_for_message(markup, true).await;
        assert_markup_is_inert(&b, markup).await;
    })
    .await;
}

#[tokio::test]
async fn a_reload_keeps_the_conversation() {
    let app = spawn_app().await;
    with_browser(|b| async move {
        visitor_sends(&b, &app.url("/"), "First question").await;
        send_message(&b, "Second question").await;
        b.wait_for_message("Second question", true).await;
        let before = b.message_ids().await;

        b.client.refresh().await.expect("reload");
        b.wait_for_message("Second question", true).await;
        assert_eq!(
            b.message_ids().await,
            before,
            "the same messages, in the same order"
        );

        send_message(&b, "Third question").await;
        b.wait_for_message("Third question", true).await;
        let after = b.message_ids().await;
        assert_eq!(after.len(), before.len() + 1);
        assert_eq!(&after[..before.len()], &before[..]);
    })
    .await;
}

#[tokio::test]
async fn both_pages_show_the_latest_page_and_load_earlier_messages_on_request() {
    let app = spawn_app().await;
    with_browser(|b| async move {
        visitor_sends(&b, &app.url("/"), "Opening question").await;
        let admin = app.admin_token().await;
        let chats = app.chats(&admin, "all").await;
        let chat_id = chats.assert_status(200)["chats"][0]["id"]
            .as_str()
            .expect("the visitor's chat")
            .to_owned();
        // 60 messages in all: one page of 50 first, the other 10 on request.
        for i in 1..=59 {
            app.send(&admin, &chat_id, &format!("history {i}"), None)
                .await
                .assert_status(201);
        }
        b.client.refresh().await.expect("reload the visitor page");
        shows_the_latest_page_then_all_60(&b).await;

        b.open_window().await;
        sign_in(&b, &app).await;
        b.wait_for_chat_item("history 59").await;
        b.click(&format!(r#"[data-chat-id="{chat_id}"]"#)).await;
        shows_the_latest_page_then_all_60(&b).await;
    })
    .await;
}

#[tokio::test]
async fn the_widget_works_on_a_page_of_another_origin() {
    let app = spawn_app().await;
    // "localhost" and another port: a different origin (and site) from the server's 127.0.0.1.
    let host_page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Shop</title>\
         <style>button {{ display: none !important; }}</style></head>\
         <body><h1>A shop</h1>\
         <script src=\"{}/widget.js\" data-title=\"Shop support\" defer></script></body></html>",
        app.address
    );
    let host = FixedPage::serve(host_page);
    let host_url = format!("http://localhost:{}/shop", host.port());
    let body = "Hello from the shop's widget";

    with_browser(|b| async move {
        open_widget(&b, &host_url).await;
        send_message(&b, body).await;
        b.wait_for_message(body, true).await;
        b.client
            .enter_parent_frame()
            .await
            .expect("back to the host page");
    })
    .await;

    // The message reached the server, from a visitor whose page is the host page.
    let token = app.admin_token().await;
    let reply = app.chats(&token, "all").await;
    let chats = reply.assert_status(200);
    let chat = chats["chats"]
        .as_array()
        .expect("chats")
        .iter()
        .find(|c| c["last_message"]["body"] == body)
        .unwrap_or_else(|| panic!("no chat with the widget's message in {chats}"));
    assert_eq!(chat["last_message"]["sender"], "visitor", "{chat}");
    assert_eq!(
        chat["visitor"]["page_url"],
        json!(format!("http://localhost:{}/shop", host.port())),
        "the widget tells which page the visitor is on: {chat}"
    );
    drop(host);
}

#[tokio::test]
async fn the_connection_indicator_and_a_queued_send_recover_after_a_server_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = Parley::start_in(dir.path()).await;
    let base = server.address();
    let queued = "Sent while the server was down";

    let server = with_browser(|b| async move {
        visitor_sends(&b, &format!("{base}/"), "Before the outage").await;
        b.wait_for_connection(&["connected"], PATIENCE).await;

        server.kill_9();
        let state = b
            .wait_for_connection(&["reconnecting", "offline"], PATIENCE)
            .await;
        assert_ne!(state, "connected");

        send_message(&b, queued).await;
        let li = b.wait_for_message(queued, false).await;
        assert!(
            li["status"] == "sending" || li["status"] == "queued",
            "while the server is down the message waits: {li}"
        );
        assert!(
            li["id"].is_null(),
            "no server id before the server confirms: {li}"
        );

        server.restart().await;
        let li = b
            .wait_for_message_within(queued, true, RESTART_PATIENCE)
            .await;
        assert_eq!(li["status"], "sent", "{li}");
        b.wait_for_connection(&["connected"], RESTART_PATIENCE)
            .await;
        let copies = b
            .js(
                "return [...document.querySelectorAll('[data-message-id]')]\
                 .filter((el) => el.textContent.includes(arguments[0])).length",
                vec![json!(queued)],
            )
            .await;
        assert_eq!(copies, json!(1), "shown exactly once");
        server
    })
    .await;

    // Exactly once on the server too.
    if let Some(server) = server {
        let api = server.api();
        let token = api.admin_token().await;
        let chats = api.chats(&token, "all").await.body;
        let chat_id = chats["chats"][0]["id"]
            .as_str()
            .expect("the visitor's chat")
            .to_owned();
        let page = api.messages(&token, &chat_id, 0, 500).await.body;
        let count = page["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .filter(|m| m["body"] == queued)
            .count();
        assert_eq!(
            count, 1,
            "the queued message was stored exactly once: {page}"
        );
    }
}

#[tokio::test]
async fn a_visitor_uploads_an_image_and_the_agent_sees_its_preview() {
    let app = spawn_app().await;
    let files = tempfile::tempdir().expect("a temp dir");
    let png = files.path().join("pixel.png");
    std::fs::write(&png, PIXEL_PNG).expect("write the PNG");

    let message_id = with_browser(|b| async move {
        b.client
            .goto(&app.url("/"))
            .await
            .expect("open the visitor page");
        attach_file(&b, &png).await;
        let id = b.wait_for_attachment().await;
        b.wait_for_preview(&id).await;

        b.open_window().await;
        sign_in(&b, &app).await;
        let chat_id = b.wait_for_chat_item("pixel.png").await;
        b.click(&format!(r#"[data-chat-id="{chat_id}"]"#)).await;
        b.wait_for_preview(&id).await;
        (app, id)
    })
    .await;

    // Stored once, as the PNG it is.
    if let Some((app, id)) = message_id {
        let messages = all_messages(&app).await;
        let uploads: Vec<&Value> = messages
            .iter()
            .filter(|m| !m["attachment"].is_null())
            .collect();
        assert_eq!(uploads.len(), 1, "exactly one upload: {messages:?}");
        assert_eq!(uploads[0]["id"], json!(id));
        assert_eq!(uploads[0]["sender"], "visitor");
        assert_eq!(uploads[0]["attachment"]["content_type"], "image/png");
        assert_eq!(uploads[0]["attachment"]["name"], "pixel.png");
        assert_eq!(uploads[0]["attachment"]["size"], PIXEL_PNG.len());
    }
}

#[tokio::test]
async fn a_file_over_the_limit_shows_a_clear_error() {
    let app = spawn_app_with(|c| c.max_upload = 1024).await;
    let files = tempfile::tempdir().expect("a temp dir");
    let big = files.path().join("big.bin");
    std::fs::write(&big, vec![7_u8; 4096]).expect("write the file");

    let app = with_browser(|b| async move {
        // The page checks the size against GET /api/v1/config before it sends anything.
        b.client
            .goto(&app.url("/"))
            .await
            .expect("open the visitor page");
        attach_file(&b, &big).await;
        let error = b.wait_for_upload_error().await;
        assert!(
            error.contains("“big.bin” is too large") && error.contains("1.0 KB"),
            "the error names the file and the limit: {error}"
        );

        // Were the page wrong about the limit, the server's 413 says the same.
        b.client.refresh().await.expect("reload");
        b.js(
            "const real = window.fetch;\
             window.fetch = (url, init) => String(url).endsWith('/api/v1/config')\
               ? Promise.resolve(new Response('{\"max_upload\": 1000000000}',\
                   { headers: { 'Content-Type': 'application/json' } }))\
               : real(url, init);\
             return null",
            vec![],
        )
        .await;
        attach_file(&b, &big).await;
        let error = b.wait_for_upload_error().await;
        assert!(
            error.contains("“big.bin” is too large"),
            "the server's refusal is explained: {error}"
        );
        let retry = b
            .js(
                "return [...document.querySelectorAll('[data-status=failed] button')]\
                 .map((el) => el.textContent)",
                vec![],
            )
            .await;
        assert_eq!(
            retry,
            json!(["Delete"]),
            "no Retry for a file that cannot fit"
        );
        app
    })
    .await;

    if let Some(app) = app {
        let token = app.admin_token().await;
        let chats = app.chats(&token, "all").await;
        assert_eq!(
            chats.assert_status(200)["chats"].as_array().map(Vec::len),
            Some(1),
            "only the second try reached the server (and made the chat): {}",
            chats.body
        );
        let messages = all_messages(&app).await;
        assert!(
            messages.iter().all(|m| m["attachment"].is_null()),
            "nothing was stored: {messages:?}"
        );
    }
}

#[tokio::test]
async fn files_dropped_on_the_conversation_or_pasted_are_sent_one_after_another() {
    let app = spawn_app().await;
    let names = with_browser(|b| async move {
        b.client
            .goto(&app.url("/"))
            .await
            .expect("open the visitor page");
        b.wait_for_css("textarea[name=message]").await;
        // What a drag from the desktop and a paste of a screenshot deliver to the page.
        let shown = b
            .js(
                "const file = (name, text) => new File([text], name, { type: 'text/plain' });\
                 const dt = new DataTransfer();\
                 dt.items.add(file('one.txt', 'first'));\
                 dt.items.add(file('two.txt', 'second'));\
                 const log = document.querySelector('#scroller');\
                 log.dispatchEvent(new DragEvent('dragenter', { bubbles: true, cancelable: true, dataTransfer: dt }));\
                 const shown = !document.querySelector('#dropzone').hidden;\
                 log.dispatchEvent(new DragEvent('drop', { bubbles: true, cancelable: true, dataTransfer: dt }));\
                 const hidden = document.querySelector('#dropzone').hidden;\
                 const clip = new DataTransfer();\
                 clip.items.add(file('three.txt', 'third'));\
                 document.querySelector('textarea[name=message]').dispatchEvent(\
                   new ClipboardEvent('paste', { bubbles: true, cancelable: true, clipboardData: clip }));\
                 return shown && hidden",
                vec![],
            )
            .await;
        assert_eq!(shown, json!(true), "the drop zone shows while a file is over it");
        let names = b
            .eventually(
                "the three files are sent",
                "const names = [...document.querySelectorAll('[data-message-id] .attachment__name')]\
                   .map((e) => e.textContent);\
                 return names.length === 3 ? names : null",
            )
            .await;
        (app, names)
    })
    .await;

    if let Some((app, names)) = names {
        assert_eq!(names, json!(["one.txt", "two.txt", "three.txt"]));
        let stored: Vec<Value> = all_messages(&app)
            .await
            .into_iter()
            .map(|m| m["attachment"]["name"].clone())
            .collect();
        assert_eq!(
            stored,
            vec![json!("one.txt"), json!("two.txt"), json!("three.txt")],
            "stored once each, in order"
        );
    }
}

// ---------------------------------------------------------------------------------
// Steps shared by the tests
// ---------------------------------------------------------------------------------

/// Chooses a file in the composer's file input, as the file picker would.
/// The conversation shows its latest 50 of 60 messages; "load earlier" brings the first 10.
async fn shows_the_latest_page_then_all_60(b: &Browser) {
    b.wait_for_message("history 59", true).await;
    assert_eq!(b.message_ids().await.len(), 50, "the latest page only");
    b.eventually(
        "the load-earlier button shows",
        "return !document.getElementById('load-earlier').hidden",
    )
    .await;
    b.click("#load-earlier").await;
    b.eventually(
        "all 60 messages show and the button goes away",
        "return document.querySelectorAll('[data-message-id]').length === 60 \
           && document.getElementById('load-earlier').hidden",
    )
    .await;
    let first = b
        .js(
            "return document.querySelector('[data-message-id]').textContent",
            vec![],
        )
        .await;
    assert!(
        first
            .as_str()
            .unwrap_or_default()
            .contains("Opening question"),
        "the oldest message comes first: {first}"
    );
}

async fn attach_file(b: &Browser, path: &Path) {
    let input = b.wait_for_css("input[type=file][name=file]").await;
    input
        .send_keys(&path.display().to_string())
        .await
        .expect("choose the file");
}

/// Every message of every chat, as an agent sees them.
async fn all_messages(api: &ApiClient) -> Vec<Value> {
    let token = api.admin_token().await;
    let chats = api.chats(&token, "all").await;
    let mut messages = Vec::new();
    for chat in chats.assert_status(200)["chats"].as_array().expect("chats") {
        let id = chat["id"].as_str().expect("a chat id");
        let page = api.messages(&token, id, 0, 500).await;
        messages.extend(
            page.assert_status(200)["messages"]
                .as_array()
                .expect("messages")
                .iter()
                .cloned(),
        );
    }
    messages
}

/// Opens the page at `url`, clicks the widget's launcher and switches into its chat frame.
pub(crate) async fn open_widget(b: &Browser, url: &str) {
    b.client.goto(url).await.expect("open the host page");
    b.wait_for_css("button[data-parley-launcher]").await;
    b.click("button[data-parley-launcher]").await;
    let widget = b
        .client
        .find(Locator::Css("[data-parley-widget]"))
        .await
        .expect("widget host");
    let frame = widget
        .shadow_root()
        .await
        .expect("the widget's shadow root")
        .find(Locator::Css("iframe"))
        .await
        .expect("the chat iframe");
    frame.enter_frame().await.expect("switch into the iframe");
}

/// Signs in to the agent inbox as the server's first admin.
pub(crate) async fn sign_in(b: &Browser, api: &ApiClient) {
    sign_in_as(b, api, &api.admin_email, &api.admin_password).await;
}

/// Signs in to the agent inbox as the agent with this email and password.
pub(crate) async fn sign_in_as(b: &Browser, api: &ApiClient, email: &str, password: &str) {
    b.client
        .goto(&api.url("/agent"))
        .await
        .expect("open the inbox");
    let email_input = b.wait_for_css("input[name=email]").await;
    email_input.send_keys(email).await.expect("type the email");
    let password_input = b
        .client
        .find(Locator::Css("input[name=password]"))
        .await
        .expect("password field");
    password_input
        .send_keys(&format!("{password}{}", char::from(Key::Enter)))
        .await
        .expect("type the password and press Enter");
    b.eventually(
        "the login form goes away",
        "const f = document.querySelector('input[name=password]'); return !f || f.offsetParent === null",
    )
    .await;
}

/// Opens the visitor page at `url` and sends `text`, until the server has confirmed it.
pub(crate) async fn visitor_sends(b: &Browser, url: &str, text: &str) {
    b.client.goto(url).await.expect("open the visitor page");
    send_message(b, text).await;
    b.wait_for_message(text, true).await;
}

/// Types into the composer and presses Enter. On the visitor page with nobody online, the
/// page asks for an email before the first message: it gets one.
pub(crate) async fn send_message(b: &Browser, text: &str) {
    let composer = b.wait_for_css("textarea[name=message]").await;
    leave_an_email_if_asked(b).await;
    composer
        .send_keys(&format!("{text}{}", char::from(Key::Enter)))
        .await
        .expect("type into the composer");
}

/// On the visitor page: once it knows whether the team is online (a few seconds at most;
/// a page that cannot reach the server goes on without), fills in the email it requires.
pub(crate) async fn leave_an_email_if_asked(b: &Browser) {
    let started = Instant::now();
    loop {
        let state = b
            .js(
                "if (!document.body.classList.contains('visitor')) return 'agent';                 return document.querySelector('main.chat')?.dataset.teamStatus ?? null",
                vec![],
            )
            .await;
        if !state.is_null() || started.elapsed() > Duration::from_secs(5) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.js(
        "const email = document.querySelector('body.visitor input[name=email]');         if (email && email.required && !email.value && email.offsetParent !== null) {           email.value = 'visitor@example.com';         }         return null",
        vec![],
    )
    .await;
}

async fn assert_markup_is_inert(b: &Browser, markup: &str) {
    let found = b
        .js(
            "const els = [...document.querySelectorAll('[data-message-id]')];\
             return {\
               literal: els.some((el) => el.textContent.includes(arguments[0])),\
               elements: els.reduce((n, el) => n + el.querySelectorAll('b, script, img').length, 0)\
             }",
            vec![json!(markup)],
        )
        .await;
    assert_eq!(
        found["literal"],
        json!(true),
        "the markup shows as text: {found}"
    );
    assert_eq!(
        found["elements"],
        json!(0),
        "no element was made from the markup: {found}"
    );
    assert!(
        b.client.get_alert_text().await.is_err(),
        "no alert was opened"
    );
}

// ---------------------------------------------------------------------------------
// The browser
// ---------------------------------------------------------------------------------

pub(crate) struct Browser {
    pub(crate) client: Client,
    _driver: Driver,
    _profile: tempfile::TempDir,
}

/// The chromedriver process; ended when dropped.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        // SIGTERM first: chromedriver then ends the Chromium it started; SIGKILL would orphan it.
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && matches!(self.0.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `body` with a fresh headless Chromium, and closes it however the body ends.
/// Returns the body's value, or None when no browser is installed (outside CI).
pub(crate) async fn with_browser<F, Fut, T>(body: F) -> Option<T>
where
    F: FnOnce(Arc<Browser>) -> Fut,
    Fut: Future<Output = T>,
{
    with_browser_in(None, body).await
}

/// [`with_browser`] with a browser whose preferred languages are `languages` (e.g.
/// `"de-DE,de"`), as `navigator.languages` and `Accept-Language` show them.
pub(crate) async fn with_browser_in<F, Fut, T>(languages: Option<&str>, body: F) -> Option<T>
where
    F: FnOnce(Arc<Browser>) -> Fut,
    Fut: Future<Output = T>,
{
    let browser = Arc::new(Browser::launch(languages).await?);
    let outcome = AssertUnwindSafe(body(Arc::clone(&browser)))
        .catch_unwind()
        .await;
    let _ = browser.client.clone().close().await;
    drop(browser);
    match outcome {
        Ok(value) => Some(value),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

impl Browser {
    async fn launch(languages: Option<&str>) -> Option<Browser> {
        let chromium = tool("PARLEY_CHROMIUM", "/usr/bin/chromium");
        let chromedriver = tool("PARLEY_CHROMEDRIVER", "/usr/bin/chromedriver");
        if !chromium.exists() || !chromedriver.exists() {
            let note = format!(
                "browser tests need {} and {} (apt-get install chromium chromium-driver)",
                chromium.display(),
                chromedriver.display()
            );
            assert!(std::env::var_os("CI").is_none(), "{note}");
            eprintln!("note: skipping a browser test: {note}");
            return None;
        }

        let port = free_port();
        let driver = Driver(
            Command::new(&chromedriver)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start chromedriver"),
        );
        let driver_url = format!("http://127.0.0.1:{port}");
        let status = reqwest::Client::new();
        let started = Instant::now();
        loop {
            let ready = status.get(format!("{driver_url}/status")).send().await;
            if let Ok(res) = ready {
                if res
                    .json::<Value>()
                    .await
                    .is_ok_and(|v| v["value"]["ready"] == json!(true))
                {
                    break;
                }
            }
            assert!(
                started.elapsed() < PATIENCE,
                "chromedriver did not start on port {port}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        let profile = tempfile::tempdir().expect("a browser profile dir");
        let mut args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--no-first-run".to_owned(),
            // Background windows must keep running their polls at full speed.
            "--disable-background-timer-throttling".to_owned(),
            "--disable-renderer-backgrounding".to_owned(),
            "--disable-backgrounding-occluded-windows".to_owned(),
            "--window-size=1200,900".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut options = json!({ "binary": chromium.display().to_string() });
        if let Some(languages) = languages {
            let first = languages.split(',').next().unwrap_or(languages);
            args.push(format!("--lang={first}"));
            options["prefs"] = json!({ "intl": { "accept_languages": languages } });
        }
        options["args"] = json!(args);
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert("goog:chromeOptions".into(), options);
        // Two rustls backends are linked (reqwest's ring, fantoccini's aws-lc-rs): pick one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = ClientBuilder::rustls()
            .expect("TLS roots for the WebDriver client")
            .capabilities(caps)
            .connect(&driver_url)
            .await
            .expect("start a Chromium session");
        Some(Browser {
            client,
            _driver: driver,
            _profile: profile,
        })
    }

    /// Opens a new window and switches to it.
    pub(crate) async fn open_window(&self) -> fantoccini::wd::WindowHandle {
        let window = self.client.new_window(false).await.expect("a new window");
        self.client
            .switch_to_window(window.handle.clone())
            .await
            .expect("switch to it");
        window.handle
    }

    pub(crate) async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .expect("run a script in the page")
    }

    pub(crate) async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .expect(css)
            .click()
            .await
            .expect("click");
    }

    /// Waits until a script returns something truthy, and returns it.
    pub(crate) async fn eventually(&self, what: &str, script: &str) -> Value {
        self.eventually_with(what, script, vec![], PATIENCE).await
    }

    pub(crate) async fn eventually_with(
        &self,
        what: &str,
        script: &str,
        args: Vec<Value>,
        limit: Duration,
    ) -> Value {
        let started = Instant::now();
        loop {
            let value = self
                .client
                .execute(script, args.clone())
                .await
                .unwrap_or(Value::Null);
            let truthy = match &value {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return value;
            }
            assert!(
                started.elapsed() < limit,
                "timed out after {limit:?} waiting until {what}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(crate) async fn wait_for_css(&self, css: &str) -> fantoccini::elements::Element {
        let started = Instant::now();
        loop {
            if let Ok(el) = self.client.find(Locator::Css(css)).await {
                return el;
            }
            assert!(started.elapsed() < PATIENCE, "timed out waiting for {css}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for a rendered message containing `text`; with `confirmed`, one that
    /// carries its server id. Returns {id, status}.
    pub(crate) async fn wait_for_message(&self, text: &str, confirmed: bool) -> Value {
        self.wait_for_message_within(text, confirmed, PATIENCE)
            .await
    }

    async fn wait_for_message_within(&self, text: &str, confirmed: bool, limit: Duration) -> Value {
        let what = format!(
            "a message {text:?} shows{}",
            if confirmed { " with its server id" } else { "" }
        );
        self.eventually_with(
            &what,
            "const [text, confirmed] = arguments;\
             const el = [...document.querySelectorAll('[data-message-id], [data-client-id]')]\
               .find((e) => e.textContent.includes(text) && (!confirmed || e.dataset.messageId));\
             return el ? { id: el.dataset.messageId ?? null, status: el.dataset.status ?? null } : null",
            vec![json!(text), json!(confirmed)],
            limit,
        )
        .await
    }

    /// Waits for a confirmed message with an attachment; returns its id.
    async fn wait_for_attachment(&self) -> String {
        let id = self
            .eventually(
                "a message with an attachment shows with its server id",
                "return [...document.querySelectorAll('[data-message-id]')]\
                   .find((e) => e.querySelector('.attachment'))?.dataset.messageId ?? null",
            )
            .await;
        id.as_str().expect("a message id").to_owned()
    }

    /// Waits until message `id` shows its picture, loaded from a blob: URL.
    async fn wait_for_preview(&self, id: &str) {
        self.eventually_with(
            "the message shows the image from a blob: URL",
            "const img = document.querySelector(`[data-message-id=\"${arguments[0]}\"] img`);\
             return !!img && img.src.startsWith('blob:') && img.complete && img.naturalWidth === 1",
            vec![json!(id)],
            PATIENCE,
        )
        .await;
    }

    /// Waits for a failed upload's error to be visible; returns its text.
    async fn wait_for_upload_error(&self) -> String {
        let text = self
            .eventually(
                "a failed upload shows its error",
                "const el = document.querySelector('[data-status=failed] .msg__error');\
                 return el && el.offsetParent !== null ? el.textContent : null",
            )
            .await;
        text.as_str().unwrap_or_default().to_owned()
    }

    /// Waits for an inbox entry mentioning `text`; returns its chat id.
    pub(crate) async fn wait_for_chat_item(&self, text: &str) -> String {
        let id = self
            .eventually_with(
                &format!("the inbox lists a chat with {text:?}"),
                "return [...document.querySelectorAll('[data-chat-id]')]\
                   .find((e) => e.textContent.includes(arguments[0]))?.dataset.chatId ?? null",
                vec![json!(text)],
                PATIENCE,
            )
            .await;
        id.as_str().expect("a chat id").to_owned()
    }

    pub(crate) async fn message_ids(&self) -> Vec<String> {
        let ids = self
            .js("return [...document.querySelectorAll('[data-message-id]')].map((e) => e.dataset.messageId)", vec![])
            .await;
        serde_json::from_value(ids).expect("a list of ids")
    }

    /// Waits until the visitor page's connection indicator shows one of `states`.
    async fn wait_for_connection(&self, states: &[&str], limit: Duration) -> String {
        let state = self
            .eventually_with(
                &format!("the connection indicator shows one of {states:?}"),
                "const s = document.querySelector('[data-connection]')?.dataset.connection;\
                 return arguments[0].includes(s) ? s : null",
                vec![json!(states)],
                limit,
            )
            .await;
        state.as_str().unwrap_or_default().to_owned()
    }
}

fn tool(env: &str, default: &str) -> PathBuf {
    std::env::var_os(env).map_or_else(|| PathBuf::from(default), PathBuf::from)
}

// ---------------------------------------------------------------------------------
// A host page on another origin
// ---------------------------------------------------------------------------------

/// A one-page HTTP server on its own thread, answering every request with the same
/// HTML; stops when dropped.
pub(crate) struct FixedPage {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl FixedPage {
    pub(crate) fn serve(html: String) -> FixedPage {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the host page");
        let addr = listener.local_addr().expect("its address");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                let html = html.clone();
                // A thread per connection: a browser may open a socket and send nothing on it.
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                    let mut request = Vec::new();
                    let mut buf = [0_u8; 4096];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let response = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n{html}",
                        html.len()
                    );
                    let _ = stream.write_all(response.as_bytes());
                });
            }
        });
        FixedPage { addr, stop }
    }

    pub(crate) fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for FixedPage {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}
