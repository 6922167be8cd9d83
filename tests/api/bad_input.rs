//! Malformed input of every kind gets a clear error in the contract's shape, never a 5xx.

use crate::helpers::spawn_app;

#[tokio::test]
async fn malformed_json_and_wrong_types_are_bad_requests() {
    let app = spawn_app().await;
    let chat = app.new_visitor_chat().await;
    let url = app.url(&format!("/api/v1/chats/{}/messages", chat.chat_id));
    for body in [
        "{",
        "not json",
        "[]",
        r#"{"body": 5}"#,
        r#"{"body": "x", "client_id": 7}"#,
        r#"{}"#,
    ] {
        let response = app
            .client
            .post(&url)
            .bearer_auth(&chat.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        crate::helpers::TestApp::reply(response)
            .await
            .assert_error(400, "bad_request");
    }
}

#[tokio::test]
async fn a_non_json_content_type_is_unsupported() {
    let app = spawn_app().await;
    let chat = app.new_visitor_chat().await;
    let response = app
        .client
        .post(app.url(&format!("/api/v1/chats/{}/messages", chat.chat_id)))
        .bearer_auth(&chat.token)
        .header("content-type", "text/plain")
        .body(r#"{"body": "hi"}"#)
        .send()
        .await
        .unwrap();
    crate::helpers::TestApp::reply(response)
        .await
        .assert_error(415, "unsupported_media_type");
}

#[tokio::test]
async fn an_oversized_body_is_payload_too_large() {
    let app = spawn_app().await;
    let chat = app.new_visitor_chat().await;
    let huge = format!(r#"{{"body": "{}"}}"#, "x".repeat(200_000));
    let response = app
        .client
        .post(app.url(&format!("/api/v1/chats/{}/messages", chat.chat_id)))
        .bearer_auth(&chat.token)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    crate::helpers::TestApp::reply(response)
        .await
        .assert_error(413, "payload_too_large");
}

#[tokio::test]
async fn bad_query_parameters_are_bad_requests() {
    let app = spawn_app().await;
    let chat = app.new_visitor_chat().await;
    for query in [
        "after=abc",
        "after=-1",
        "wait=-3",
        "wait=nan",
        "limit=0",
        "limit=x",
        "after=99999999999999999999999",
    ] {
        let path = format!("/api/v1/chats/{}/messages?{query}", chat.chat_id);
        app.call("GET", &path, Some(&chat.token), None)
            .await
            .assert_error(400, "bad_request");
    }
}

#[tokio::test]
async fn unknown_paths_and_methods_answer_in_the_error_shape() {
    let app = spawn_app().await;
    app.call("GET", "/api/v1/nothing-here", None, None)
        .await
        .assert_error(404, "not_found");
    app.call("DELETE", "/api/v1/chats", None, None)
        .await
        .assert_error(405, "method_not_allowed");
    let health = app.call("GET", "/healthz", None, None).await;
    assert_eq!(health.assert_status(200)["status"], "ok");
}

#[tokio::test]
async fn odd_bearer_headers_are_unauthorized_not_errors() {
    let app = spawn_app().await;
    let chat = app.new_visitor_chat().await;
    // The held routes take the token out of the headers before their handlers run.
    let held_poll = format!("/api/v1/chats/{}/messages?wait=1", chat.chat_id);
    for path in ["/api/v1/chats/mine", &held_poll, "/api/v1/inbox?wait=1"] {
        for value in [
            "Bearer",
            "Bearer ",
            "Basic abc",
            "bearer x y",
            "Bearer pv_not-a-real-token",
            &format!("Bearer {}", "a".repeat(5000)),
        ] {
            let response = app
                .client
                .get(app.url(path))
                .header("authorization", value)
                .send()
                .await
                .unwrap();
            crate::helpers::TestApp::reply(response)
                .await
                .assert_error(401, "unauthorized");
        }
        app.call("GET", path, None, None)
            .await
            .assert_error(401, "unauthorized");
    }
    // A valid token with a lower-case scheme still opens the held route.
    let response = app
        .client
        .get(app.url(&format!("/api/v1/chats/{}/messages", chat.chat_id)))
        .header("authorization", format!("bearer {}", chat.token))
        .send()
        .await
        .unwrap();
    crate::helpers::TestApp::reply(response)
        .await
        .assert_status(200);
}
