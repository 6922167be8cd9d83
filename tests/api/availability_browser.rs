//! Browser tests of availability: with nobody online the visitor page still lets the
//! visitor write, asks for an email first and says when the team is back; an agent's
//! online/away switch changes what a visitor sees within a minute.

use std::time::Duration;

use fantoccini::key::Key;
use fantoccini::Locator;
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::browser::{
    open_widget, send_message, sign_in, with_browser, Browser, FixedPage, PATIENCE,
};
use crate::helpers::spawn_app;

/// Waits until the visitor page's status line holds `text`; returns the line.
async fn wait_for_status(b: &Browser, text: &str, limit: Duration) -> String {
    let line = b
        .eventually_with(
            &format!("the visitor page says {text:?}"),
            "const el = document.getElementById('team-status');\
             return el && !el.hidden && el.textContent.includes(arguments[0]) ? el.textContent : null",
            vec![json!(text)],
            limit,
        )
        .await;
    line.as_str().unwrap_or_default().to_owned()
}

async fn type_into(b: &Browser, css: &str, text: &str) {
    b.client
        .find(Locator::Css(css))
        .await
        .expect(css)
        .send_keys(text)
        .await
        .expect("type");
}

#[tokio::test]
async fn with_nobody_online_the_page_asks_for_an_email_before_the_first_message_and_says_when_we_are_back(
) {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    // Closed now: the only opening is one minute the day after tomorrow (UTC).
    let later = OffsetDateTime::now_utc() + time::Duration::days(2);
    let day = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        [later.weekday().number_days_from_monday() as usize];
    app.call(
        "PUT",
        "/api/v1/settings",
        Some(&admin),
        Some(json!({
            "business_hours": {"timezone": "UTC",
                               "weekly": [{"day": day, "open": "12:00", "close": "12:01"}]},
            "away_message": "Gone fishing.",
        })),
    )
    .await
    .assert_status(200);

    let api = app.api.clone();
    with_browser(|b| async move {
        b.client.goto(&api.url("/")).await.expect("open the visitor page");
        let line = wait_for_status(&b, "Gone fishing.", PATIENCE).await;
        assert!(line.contains("We'll be back"), "{line}");
        // The weekday as the browser writes it, in its own time zone.
        let weekday = b
            .js(
                "return new Intl.DateTimeFormat(undefined, {weekday: 'long'})\
                   .format(new Date(arguments[0]))",
                vec![json!(format!(
                    "{:04}-{:02}-{:02}T12:00:00Z",
                    later.year(),
                    u8::from(later.month()),
                    later.day()
                ))],
            )
            .await;
        assert!(line.contains(weekday.as_str().unwrap()), "{line} / {weekday}");

        // The email is asked for, and required.
        let required = b
            .eventually(
                "the email field shows, required",
                "const e = document.querySelector('input[name=email]');\
                 return e && e.offsetParent !== null && e.required",
            )
            .await;
        assert_eq!(required, json!(true));

        // A first message without it waits in the composer; nothing is sent.
        type_into(&b, "textarea[name=message]", "Do you ship to Oslo?").await;
        type_into(&b, "textarea[name=message]", &char::from(Key::Enter).to_string()).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let state = b
            .js(
                "return {value: document.querySelector('textarea[name=message]').value,\
                         messages: document.querySelectorAll('[data-message-id], [data-client-id]').length,\
                         focus: document.activeElement?.name ?? null}",
                vec![],
            )
            .await;
        assert_eq!(
            state,
            json!({"value": "Do you ship to Oslo?", "messages": 0, "focus": "email"})
        );

        // The draft survives a reload.
        tokio::time::sleep(Duration::from_millis(500)).await;
        b.client.refresh().await.expect("reload");
        let kept = b
            .eventually(
                "the draft is back in the composer",
                "return document.querySelector('textarea[name=message]')?.value || null",
            )
            .await;
        assert_eq!(kept, json!("Do you ship to Oslo?"));
        wait_for_status(&b, "Gone fishing.", PATIENCE).await;

        // With the email, Enter in the email field sends the waiting message.
        type_into(
            &b,
            "input[name=email]",
            &format!("oslo@example.com{}", char::from(Key::Enter)),
        )
        .await;
        b.wait_for_message("Do you ship to Oslo?", true).await;
    })
    .await;

    if let Some(chats) = Some(app.chats(&admin, "open").await) {
        let chat = &chats.assert_status(200)["chats"][0];
        assert_eq!(chat["visitor"]["email"], "oslo@example.com");
        assert_eq!(chat["last_message"]["body"], "Do you ship to Oslo?");
        let context = &chat["visitor"]["context"];
        assert!(
            context["page_url"]
                .as_str()
                .unwrap_or_default()
                .starts_with("http://127.0.0.1"),
            "{context}"
        );
        assert!(context["browser"].as_str().is_some(), "{context}");
        assert!(context["timezone"].as_str().is_some(), "{context}");
    }
}

#[tokio::test]
async fn an_agents_switch_changes_what_the_visitor_sees_within_a_minute() {
    let app = spawn_app().await;
    let api = app.api.clone();
    with_browser(|b| async move {
        let visitor = b.client.window().await.expect("current window");
        // The page reads the team's status every second here (30 s by default).
        b.client
            .goto(&api.url("/?status_every=1"))
            .await
            .expect("open the visitor page");
        wait_for_status(&b, "away", PATIENCE).await;

        // An agent opens the inbox: its polls make it present.
        let agent = b.open_window().await;
        sign_in(&b, &api).await;
        let switch = b
            .eventually(
                "the availability switch shows, on",
                "const s = document.querySelector('input[name=availability]');\
                 return s && s.offsetParent !== null ? {checked: s.checked} : null",
            )
            .await;
        assert_eq!(switch, json!({"checked": true}));
        b.client.switch_to_window(visitor.clone()).await.expect("to the visitor");
        wait_for_status(&b, "We're online", Duration::from_secs(70)).await;

        // Away: the visitor sees it within the minute.
        b.client.switch_to_window(agent).await.expect("to the agent");
        b.click("input[name=availability]").await;
        let now: Value = b
            .eventually(
                "the switch says away",
                "return document.querySelector('label.availability')?.dataset.availability === 'away'",
            )
            .await;
        assert_eq!(now, json!(true));
        b.client.switch_to_window(visitor).await.expect("to the visitor");
        wait_for_status(&b, "away", Duration::from_secs(70)).await;
    })
    .await;
    let admin = app.admin_token().await;
    let me = app
        .call("GET", "/api/v1/agents/me", Some(&admin), None)
        .await;
    assert_eq!(me.assert_status(200)["agent"]["availability"], "away");
}

#[tokio::test]
async fn the_widget_tells_the_agents_where_the_visitor_navigates_in_a_single_page_app() {
    let app = spawn_app().await;
    let host_page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Shop</title></head>\
         <body><h1>A shop</h1>\
         <script src=\"{}/widget.js\" defer></script></body></html>",
        app.address
    );
    let host = FixedPage::serve(host_page);
    let host_url = format!("http://localhost:{}/shop", host.port());
    let cart_url = format!("http://localhost:{}/shop/cart?item=7", host.port());
    let admin = app.admin_token().await;
    let api = app.api.clone();

    let body = "Where is my parcel?";
    with_browser(|b| async move {
        open_widget(&b, &host_url).await;
        send_message(&b, body).await;
        b.wait_for_message(body, true).await;
        b.client
            .enter_parent_frame()
            .await
            .expect("back to the host page");

        // The shop moves to its cart without a reload.
        b.js(
            "history.pushState({}, '', '/shop/cart?item=7'); return null",
            vec![],
        )
        .await;
        let started = std::time::Instant::now();
        loop {
            let chats = api.chats(&admin, "open").await;
            let page =
                chats.assert_status(200)["chats"][0]["visitor"]["context"]["page_url"].clone();
            if page == json!(cart_url) {
                break;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "the context still says {page}, not {cart_url}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
    .await;
    drop(host);
}
