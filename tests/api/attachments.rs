//! Attachments: upload by multipart, type from the bytes, safe downloads, idempotent
//! retries and the size limit.

use reqwest::multipart::{Form, Part};

use crate::helpers::{spawn_app, spawn_app_with, Reply, TestApp};

const PNG: &[u8] = &[
    0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0x0D, b'I', b'H', b'D', b'R',
];

async fn upload(app: &TestApp, token: &str, chat_id: &str, form: Form) -> Reply {
    app.upload(token, chat_id, form).await
}

fn file(name: &str, bytes: &[u8], claimed_type: &str) -> Form {
    Form::new().part(
        "file",
        Part::bytes(bytes.to_vec())
            .file_name(name.to_string())
            .mime_str(claimed_type)
            .unwrap(),
    )
}

#[tokio::test]
async fn an_uploaded_file_becomes_a_message_whose_url_downloads_it() {
    let app = spawn_app().await;
    let chat = app.new_visitor_chat().await;
    let reply = upload(
        &app,
        &chat.token,
        &chat.chat_id,
        file("shot.png", PNG, "image/png"),
    )
    .await;
    let message = reply.assert_status(201)["message"].clone();
    let attachment = &message["attachment"];
    assert_eq!(attachment["name"], "shot.png");
    assert_eq!(attachment["size"], PNG.len());
    assert_eq!(attachment["content_type"], "image/png");
    assert_eq!(message["body"], "shot.png");

    let url = app.url(attachment["url"].as_str().unwrap());
    let download = app
        .client
        .get(&url)
        .bearer_auth(&chat.token)
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), 200);
    assert_eq!(download.headers()["content-type"], "image/png");
    assert_eq!(download.headers()["x-content-type-options"], "nosniff");
    assert!(download.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("inline"));
    assert_eq!(download.bytes().await.unwrap().as_ref(), PNG);

    // The message reaches pollers like any other, attachment included.
    let poll = app.poll(&chat.token, &chat.chat_id, 0, 0).await;
    assert_eq!(
        poll.body["messages"][0]["attachment"]["id"],
        attachment["id"]
    );
}

#[tokio::test]
async fn the_type_comes_from_the_bytes_not_from_the_client() {
    let app = spawn_app().await;
    let chat = app.new_visitor_chat().await;
    let html = b"<html><script>alert(1)</script></html>";
    let reply = upload(
        &app,
        &chat.token,
        &chat.chat_id,
        file("page.png", html, "image/png"),
    )
    .await;
    let attachment = reply.assert_status(201)["message"]["attachment"].clone();
    assert_eq!(
        attachment["content_type"], "text/html",
        "detected, not the claimed image/png"
    );
    let download = app
        .client
        .get(app.url(attachment["url"].as_str().unwrap()))
        .bearer_auth(&chat.token)
        .send()
        .await
        .unwrap();
    // Anything not a raster image downloads, sandboxed.
    assert!(download.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    assert!(download.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("sandbox"));
}

#[tokio::test]
async fn a_file_over_the_limit_is_payload_too_large_and_stores_nothing() {
    let app = spawn_app_with(|c| c.max_upload = 1024).await;
    let chat = app.new_visitor_chat().await;
    let big = vec![b'x'; 4096];
    upload(
        &app,
        &chat.token,
        &chat.chat_id,
        file("big.txt", &big, "text/plain"),
    )
    .await
    .assert_error(413, "payload_too_large");
    let poll = app.poll(&chat.token, &chat.chat_id, 0, 0).await;
    assert!(poll.body["messages"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn only_the_chats_visitor_and_agents_can_download() {
    let app = spawn_app().await;
    let chat = app.new_visitor_chat().await;
    let stranger = app.new_visitor_chat().await;
    let agent = app.admin_token().await;
    let reply = upload(
        &app,
        &chat.token,
        &chat.chat_id,
        file("a.txt", b"secret", "text/plain"),
    )
    .await;
    let url = app.url(
        reply.assert_status(201)["message"]["attachment"]["url"]
            .as_str()
            .unwrap(),
    );
    let get = |token: Option<String>| {
        let mut request = app.client.get(&url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(get(Some(agent)).await, 200);
    assert_eq!(get(Some(stranger.token.clone())).await, 404);
    assert_eq!(get(None).await, 401);
    // Nor can a stranger upload into the chat.
    upload(
        &app,
        &stranger.token,
        &chat.chat_id,
        file("x.txt", b"x", "text/plain"),
    )
    .await
    .assert_error(404, "not_found");
}

#[tokio::test]
async fn a_repeated_upload_client_id_creates_nothing_new() {
    let app = spawn_app().await;
    let chat = app.new_visitor_chat().await;
    let form = || {
        file("a.txt", b"hello", "text/plain")
            .text("client_id", "up-1")
            .text("body", "see file")
    };
    let first = upload(&app, &chat.token, &chat.chat_id, form()).await;
    let original = first.assert_status(201)["message"].clone();
    assert_eq!(original["body"], "see file");
    let again = upload(&app, &chat.token, &chat.chat_id, form()).await;
    assert_eq!(again.assert_status(200)["message"]["id"], original["id"]);
}

#[tokio::test]
async fn uploads_that_are_not_multipart_or_lack_a_file_are_refused() {
    let app = spawn_app().await;
    let chat = app.new_visitor_chat().await;
    let response = app
        .client
        .post(app.url(&format!("/api/v1/chats/{}/attachments", chat.chat_id)))
        .bearer_auth(&chat.token)
        .json(&serde_json::json!({"file": "x"}))
        .send()
        .await
        .unwrap();
    TestApp::reply(response)
        .await
        .assert_error(415, "unsupported_media_type");
    upload(
        &app,
        &chat.token,
        &chat.chat_id,
        Form::new().text("body", "no file"),
    )
    .await
    .assert_error(422, "invalid");
    upload(
        &app,
        &chat.token,
        &chat.chat_id,
        file("empty.txt", b"", "text/plain"),
    )
    .await
    .assert_error(422, "invalid");
}

#[tokio::test]
async fn a_multi_megabyte_file_is_stored_and_downloaded_byte_for_byte() {
    let app = spawn_app().await;
    let chat = app.new_visitor_chat().await;
    // Many 64 KiB chunks plus a ragged tail, in a pattern that shows misplaced chunks.
    let bytes: Vec<u8> = (0..3 * 1024 * 1024 + 12_345_u32)
        .map(|i| i.wrapping_mul(2_654_435_761).rotate_left(7) as u8)
        .collect();
    let reply = upload(
        &app,
        &chat.token,
        &chat.chat_id,
        file("dump.bin", &bytes, "application/octet-stream"),
    )
    .await;
    let attachment = reply.assert_status(201)["message"]["attachment"].clone();
    assert_eq!(attachment["size"], bytes.len());
    assert_eq!(attachment["content_type"], "application/octet-stream");

    let download = app
        .client
        .get(app.url(attachment["url"].as_str().unwrap()))
        .bearer_auth(&chat.token)
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), 200);
    let downloaded = download.bytes().await.unwrap();
    assert!(downloaded.as_ref() == bytes, "the download differs");
}

#[tokio::test]
async fn long_text_is_text_even_when_the_sniffed_head_cuts_a_character() {
    let app = spawn_app().await;
    let chat = app.new_visitor_chat().await;
    // The type is told from the first 8 KiB; one ASCII letter makes that end mid-"é".
    let text = format!("a{}", "é".repeat(5_000));
    let reply = upload(
        &app,
        &chat.token,
        &chat.chat_id,
        file("long.txt", text.as_bytes(), "application/octet-stream"),
    )
    .await;
    let attachment = &reply.assert_status(201)["message"]["attachment"];
    assert_eq!(attachment["content_type"], "text/plain; charset=utf-8");
    assert_eq!(attachment["size"], text.len());
}
