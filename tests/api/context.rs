//! The visitor's context: sent by its page with `POST /chats` and `PATCH /visitors/me`, the
//! browser and OS from the User-Agent, shown to agents in every chat object and never to
//! other visitors; bad values refused.

use reqwest::header::USER_AGENT;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, Reply, TestApp};

const FIREFOX: &str =
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:128.0) Gecko/20100101 Firefox/128.0";
const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
                      (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";

async fn send_as(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    user_agent: &str,
    body: Value,
) -> Reply {
    let response = app
        .client
        .request(method, app.url(path))
        .bearer_auth(token)
        .header(USER_AGENT, user_agent)
        .json(&body)
        .send()
        .await
        .unwrap();
    Reply::from_response(response).await
}

#[tokio::test]
async fn the_visitors_latest_context_is_shown_to_agents_in_every_chat_object() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (visitor, _) = app.new_visitor().await;
    let context = json!({"page_url": "https://shop.example/cart?item=7",
                         "referrer": "https://search.example/?q=shoes",
                         "locale": "de-DE", "timezone": "Europe/Berlin"});
    let opened = send_as(
        &app,
        reqwest::Method::POST,
        "/api/v1/chats",
        &visitor,
        FIREFOX,
        json!({ "context": context }),
    )
    .await;
    let chat = opened.assert_status(201)["chat"].clone();
    assert_eq!(
        chat["visitor"]["context"],
        Value::Null,
        "a visitor's own chat objects leave the context out"
    );
    let chat_id = chat["id"].as_str().unwrap();

    let seen = app.chat(&admin, chat_id).await["visitor"]["context"].clone();
    for field in ["page_url", "referrer", "locale", "timezone"] {
        assert_eq!(seen[field], context[field], "{field}");
    }
    assert_eq!(seen["browser"], "Firefox 128.0");
    assert_eq!(seen["os"].as_str().unwrap().split(' ').next(), Some("Mac"));
    assert_eq!(seen["user_agent"], FIREFOX);
    assert!(seen["updated_at"].as_str().unwrap().ends_with('Z'));

    // A navigation: the page changes, the rest stays, the browser is the latest request's.
    let moved = send_as(
        &app,
        reqwest::Method::PATCH,
        "/api/v1/visitors/me",
        &visitor,
        CHROME,
        json!({"context": {"page_url": "https://shop.example/checkout", "referrer": ""}}),
    )
    .await;
    assert_eq!(
        moved.assert_status(200)["visitor"]["context"]["page_url"],
        "https://shop.example/checkout",
        "the visitor's own record shows what it sent"
    );
    let seen = app.chat(&admin, chat_id).await["visitor"]["context"].clone();
    assert_eq!(seen["page_url"], "https://shop.example/checkout");
    assert_eq!(seen["referrer"], context["referrer"]);
    assert_eq!(seen["locale"], "de-DE");
    assert_eq!(seen["browser"], "Chrome 120.0.0.0");
    assert_eq!(seen["os"], "Windows 10");

    // The list, the inbox and a poll carry it too; the visitor's poll does not.
    let listed = app.chats(&admin, "open").await;
    assert_eq!(
        listed.assert_status(200)["chats"][0]["visitor"]["context"]["page_url"],
        "https://shop.example/checkout"
    );
    let inbox = app.inbox(&admin, 0, 0).await;
    assert_eq!(
        inbox.assert_status(200)["chats"].as_array().map(Vec::len),
        Some(0),
        "no message yet"
    );
    app.send(&visitor, chat_id, "hello", None)
        .await
        .assert_status(201);
    let inbox = app.inbox(&admin, 0, 0).await;
    assert_eq!(
        inbox.assert_status(200)["chats"][0]["visitor"]["context"]["locale"],
        "de-DE"
    );
    let theirs = app.poll(&visitor, chat_id, 0, 0).await;
    assert_eq!(
        theirs.assert_status(200)["chat"]["visitor"]["context"],
        Value::Null
    );
    let ours = app.poll(&admin, chat_id, 0, 0).await;
    assert_eq!(
        ours.assert_status(200)["chat"]["visitor"]["context"]["os"],
        "Windows 10"
    );
}

#[tokio::test]
async fn opening_a_chat_without_a_body_still_records_the_browser() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (visitor, _) = app.new_visitor().await;
    let response = app
        .client
        .post(app.url("/api/v1/chats"))
        .bearer_auth(&visitor)
        .header(USER_AGENT, FIREFOX)
        .send()
        .await
        .unwrap();
    let chat = Reply::from_response(response).await.assert_status(201)["chat"].clone();
    let seen = app.chat(&admin, chat["id"].as_str().unwrap()).await;
    assert_eq!(seen["visitor"]["context"]["browser"], "Firefox 128.0");
    assert_eq!(seen["visitor"]["context"]["page_url"], Value::Null);
}

#[tokio::test]
async fn bad_context_is_refused_and_stores_nothing() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let chat = app.new_visitor_chat().await;
    let long = format!("https://a.example/{}", "x".repeat(2048));
    let invalid = [
        json!({"page_url": "javascript:alert(1)"}),
        json!({"page_url": "ftp://a.example/file"}),
        json!({"page_url": long}),
        json!({"referrer": "data:text/html,<b>x</b>"}),
        json!({"locale": "x"}),
        json!({"locale": "en_US"}),
        json!({"locale": "en-".repeat(12)}),
        json!({"timezone": "Europe/Berlin; DROP TABLE"}),
        json!({"timezone": "Z".repeat(65)}),
    ];
    for context in invalid {
        for (method, path) in [
            (reqwest::Method::POST, "/api/v1/chats"),
            (reqwest::Method::PATCH, "/api/v1/visitors/me"),
        ] {
            send_as(
                &app,
                method,
                path,
                &chat.token,
                FIREFOX,
                json!({ "context": context.clone() }),
            )
            .await
            .assert_error(422, "invalid");
        }
    }
    for malformed in [
        json!({"context": "https://a.example/"}),
        json!({"context": {"page_url": 5}}),
    ] {
        send_as(
            &app,
            reqwest::Method::PATCH,
            "/api/v1/visitors/me",
            &chat.token,
            FIREFOX,
            malformed,
        )
        .await
        .assert_error(400, "bad_request");
    }
    // The context of the chat's first POST (no User-Agent: reqwest sends none) is all there is.
    let seen = app.chat(&admin, &chat.chat_id).await;
    assert_eq!(seen["visitor"]["context"], Value::Null);
}
