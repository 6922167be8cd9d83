//! The continuity link of a visitor's email, opened in a fresh browser (real Chromium):
//! the page becomes that visitor and shows the same chat.

use std::time::Duration;

use serde_json::{json, Value};

use crate::browser::with_browser;
use crate::helpers::{spawn_app_with, TestApp};
use crate::smtp::{link, SmtpSink};

const ARRIVES: Duration = Duration::from_secs(20);

/// The app with email on through `sink`, its links pointing at itself (the default).
async fn mail_app(sink: &SmtpSink) -> TestApp {
    let url = sink.url();
    spawn_app_with(move |config| {
        config.smtp_url = Some(url);
        config.notify_after = 1;
    })
    .await
}

#[tokio::test]
async fn the_continuity_link_opens_the_same_chat_in_a_fresh_browser() {
    let sink = SmtpSink::start();
    let app = mail_app(&sink).await;
    let admin = app.admin_token().await;
    let reply = app
        .create_visitor(json!({ "name": "Ann", "email": "ann@example.com" }))
        .await;
    let token = reply.assert_status(201)["token"]
        .as_str()
        .unwrap()
        .to_string();
    let chat_id = app.create_chat(&token).await.assert_status(201)["chat"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.send(&token, &chat_id, "Is my order on its way?", None)
        .await
        .assert_status(201);
    app.send(&admin, &chat_id, "Yes, it ships tomorrow.", None)
        .await
        .assert_status(201);
    let mail = sink.wait_for("ann@example.com", 1, ARRIVES).await.remove(0);
    let continue_link = link(&mail, &app.url("/?continue=")).expect("a continuity link");

    let expected_chat = chat_id.clone();
    with_browser(|b| async move {
        b.client.goto(&continue_link).await.expect("open the link");
        b.wait_for_message("Yes, it ships tomorrow.", true).await;
        b.wait_for_message("Is my order on its way?", true).await;
        let state = b
            .js(
                "const s = JSON.parse(localStorage.getItem('parley.visitor'));\
                 return {search: location.search, chat: s.chat_id, token: s.token,\
                         email: document.querySelector('input[name=email]').value}",
                vec![],
            )
            .await;
        assert_eq!(
            state["search"], "",
            "the link left the address bar: {state}"
        );
        assert_eq!(state["chat"], expected_chat.as_str(), "{state}");
        assert_eq!(state["email"], "ann@example.com", "{state}");
        assert_ne!(
            state["token"],
            Value::from(token.clone()),
            "a token of its own"
        );

        // The visitor writes on in the same chat, from this browser.
        crate::browser::send_message(&b, "Thanks, see you!").await;
        b.wait_for_message("Thanks, see you!", true).await;
    })
    .await;
    let page = app.messages(&admin, &chat_id, 0, 50).await;
    let bodies: Vec<String> = page.assert_status(200)["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["body"].as_str().map(str::to_string))
        .collect();
    assert!(bodies.iter().any(|b| b == "Thanks, see you!"), "{bodies:?}");
}

#[tokio::test]
async fn a_tampered_continuity_link_says_so_and_starts_nothing() {
    let sink = SmtpSink::start();
    let app = mail_app(&sink).await;
    let forged = app.url("/?continue=0190a0a0-0000-7000-8000-000000000000.9999999999.00&chat=x");
    with_browser(|b| async move {
        b.client.goto(&forged).await.expect("open the link");
        b.eventually(
            "the page says the link is not valid",
            "const t = document.getElementById('toast'); \
             return !t.hidden && t.textContent.includes('expired')",
        )
        .await;
        let state = b
            .js(
                "return {search: location.search, session: localStorage.getItem('parley.visitor')}",
                vec![],
            )
            .await;
        assert_eq!(state["search"], "", "{state}");
        assert_eq!(state["session"], Value::Null, "{state}");
    })
    .await;
}

#[tokio::test]
async fn an_agent_turns_its_email_off_in_the_inbox() {
    let app = crate::helpers::spawn_app().await;
    let admin = app.admin_token().await;
    let api = app.api.clone();
    with_browser(|b| async move {
        crate::browser::sign_in(&b, &api).await;
        b.eventually(
            "the email button shows mail is on",
            "return document.getElementById('email-btn').getAttribute('aria-pressed') === 'true'",
        )
        .await;
        b.click("#email-btn").await;
        b.eventually(
            "the email button shows mail is off",
            "return document.getElementById('email-btn').getAttribute('aria-pressed') === 'false'",
        )
        .await;
    })
    .await;
    let me = app
        .call("GET", "/api/v1/agents/me", Some(&admin), None)
        .await;
    assert_eq!(me.assert_status(200)["agent"]["email_notifications"], false);
}
