//! The admins' texts per language: a greeting beside the away message, their versions by
//! language in the settings, and `GET /api/v1/config` answering them in the visitor's language
//! (`?lang=`, else `Accept-Language` by q-value, else the defaults).

use serde_json::{json, Value};

use crate::helpers::{spawn_app, Reply, TestApp};

async fn put(app: &TestApp, token: &str, body: Value) -> Reply {
    app.call("PUT", "/api/v1/settings", Some(token), Some(body))
        .await
}

async fn settings(app: &TestApp, token: &str) -> Value {
    app.call("GET", "/api/v1/settings", Some(token), None)
        .await
        .assert_status(200)["settings"]
        .clone()
}

/// The public config as a visitor asks it: with `query` (say `?lang=de`) and an
/// `Accept-Language` header.
async fn config(app: &TestApp, query: &str, accept_language: Option<&str>) -> Value {
    let mut request = app.http.get(app.url(&format!("/api/v1/config{query}")));
    if let Some(accept) = accept_language {
        request = request.header("Accept-Language", accept);
    }
    let reply = Reply::from_response(request.send().await.expect("the server answers")).await;
    reply.assert_status(200).clone()
}

/// `[text_lang, away_message, greeting]` of the config.
async fn texts(app: &TestApp, query: &str, accept_language: Option<&str>) -> Value {
    let c = config(app, query, accept_language).await;
    json!([c["text_lang"], c["away_message"], c["greeting"]])
}

/// Default texts in English, German ones both, French only a greeting.
async fn app_with_texts() -> TestApp {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    put(
        &app,
        &admin,
        json!({
            "away_message": "We are away.",
            "greeting": "Hello! How can we help?",
            "translations": {
                "de": {"away_message": "Wir sind weg.", "greeting": "Hallo! Wie können wir helfen?"},
                "fr": {"greeting": "Bonjour !"},
            },
        }),
    )
    .await
    .assert_status(200);
    app
}

#[tokio::test]
async fn admins_write_a_greeting_and_texts_per_language_and_read_them_back() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let reply = put(
        &app,
        &admin,
        json!({
            "greeting": "  Hello!  ",
            "translations": {
                "de": {"away_message": " Weg. ", "greeting": "Hallo!"},
                "pt": {"greeting": "Olá!", "away_message": null},
                "fr": {"greeting": "   "},
            },
        }),
    )
    .await;
    let stored = reply.assert_status(200)["settings"].clone();
    assert_eq!(stored["greeting"], "Hello!");
    assert_eq!(stored["away_message"], Value::Null);
    assert_eq!(
        stored["translations"],
        json!({"de": {"away_message": "Weg.", "greeting": "Hallo!"},
               "pt": {"away_message": null, "greeting": "Olá!"}}),
        "trimmed, and a language left without text is dropped"
    );
    assert_eq!(settings(&app, &admin).await, stored);
}

#[tokio::test]
async fn a_put_replaces_only_the_fields_it_sends_and_translations_as_a_whole() {
    let app = app_with_texts().await;
    let admin = app.admin_token().await;
    let before = settings(&app, &admin).await;

    let reply = put(&app, &admin, json!({"away_message": "Back at nine."})).await;
    let after = reply.assert_status(200)["settings"].clone();
    assert_eq!(after["away_message"], "Back at nine.");
    assert_eq!(after["greeting"], before["greeting"]);
    assert_eq!(after["translations"], before["translations"]);

    let reply = put(
        &app,
        &admin,
        json!({"translations": {"es": {"greeting": "¡Hola!"}}}),
    )
    .await;
    let after = reply.assert_status(200)["settings"].clone();
    assert_eq!(
        after["translations"],
        json!({"es": {"away_message": null, "greeting": "¡Hola!"}})
    );
    assert_eq!(after["greeting"], before["greeting"]);
    assert_eq!(after["away_message"], "Back at nine.");

    let reply = put(
        &app,
        &admin,
        json!({"greeting": null, "translations": null}),
    )
    .await;
    let cleared = reply.assert_status(200)["settings"].clone();
    assert_eq!(cleared["greeting"], Value::Null);
    assert_eq!(cleared["translations"], json!({}));
    assert_eq!(cleared["away_message"], "Back at nine.");
    let reply = put(
        &app,
        &admin,
        json!({"translations": {"de": {"greeting": "Hi"}}}),
    )
    .await;
    reply.assert_status(200);
    let reply = put(&app, &admin, json!({"translations": {}})).await;
    assert_eq!(
        reply.assert_status(200)["settings"]["translations"],
        json!({})
    );
}

#[tokio::test]
async fn bad_texts_and_language_tags_are_refused_and_change_nothing() {
    let app = app_with_texts().await;
    let admin = app.admin_token().await;
    let before = settings(&app, &admin).await;
    let many: serde_json::Map<String, Value> = (0..21)
        .map(|i| {
            let tag: String = [b'a' + i / 26, b'a' + i % 26]
                .iter()
                .map(|&b| b as char)
                .collect();
            (tag, json!({"greeting": "hi"}))
        })
        .collect();
    let invalid = [
        json!({"greeting": "x".repeat(501)}),
        json!({"greeting": "bell\u{7}"}),
        json!({"translations": {"de": {"greeting": "x".repeat(501)}}}),
        json!({"translations": {"de": {"away_message": "nul\u{0}"}}}),
        json!({"translations": {"DE": {"greeting": "Hallo"}}}),
        json!({"translations": {"de-AT": {"greeting": "Servus"}}}),
        json!({"translations": {"deutsch": {"greeting": "Hallo"}}}),
        json!({"translations": {"": {"greeting": "Hallo"}}}),
        json!({"translations": many}),
        // One bad text refuses the whole change, the good fields with it.
        json!({"greeting": "Fine.", "translations": {"x1": {"greeting": "Hallo"}}}),
    ];
    for body in invalid {
        put(&app, &admin, body.clone())
            .await
            .assert_error(422, "invalid");
    }
    let malformed = [
        json!({"greeting": 5}),
        json!({"translations": []}),
        json!({"translations": {"de": "Hallo"}}),
        json!({"translations": {"de": {"welcome": "Hallo"}}}),
        json!({"translations": {"de": {"greeting": ["Hallo"]}}}),
    ];
    for body in malformed {
        put(&app, &admin, body.clone())
            .await
            .assert_error(400, "bad_request");
    }
    assert_eq!(settings(&app, &admin).await, before);

    // Twenty languages are fine.
    let twenty: serde_json::Map<String, Value> = (0..20u8)
        .map(|i| {
            (
                format!("a{}", (b'a' + i) as char),
                json!({"greeting": "hi"}),
            )
        })
        .collect();
    put(&app, &admin, json!({"translations": twenty}))
        .await
        .assert_status(200);
}

#[tokio::test]
async fn the_config_answers_the_texts_in_the_language_asked_with_lang() {
    let app = app_with_texts().await;
    assert_eq!(
        texts(&app, "?lang=de", None).await,
        json!(["de", "Wir sind weg.", "Hallo! Wie können wir helfen?"])
    );
    assert_eq!(
        texts(&app, "?lang=de-AT", None).await,
        json!(["de", "Wir sind weg.", "Hallo! Wie können wir helfen?"]),
        "a region of a language finds the language"
    );
    assert_eq!(
        texts(&app, "?lang=fr", None).await,
        json!(["fr", "We are away.", "Bonjour !"]),
        "a text the admins left out in French is the default one"
    );
    assert_eq!(
        texts(&app, "?lang=de", Some("fr")).await,
        json!(["de", "Wir sind weg.", "Hallo! Wie können wir helfen?"]),
        "lang comes before Accept-Language"
    );
    assert_eq!(
        texts(&app, "?lang=ja,fr-CA,de", None).await,
        json!(["fr", "We are away.", "Bonjour !"]),
        "several languages, best first"
    );
    // The rest of the config is as without a language.
    let c = config(&app, "?lang=de", None).await;
    assert_eq!(c["open_now"], true);
    assert!(c["max_body_chars"].as_u64().is_some());
}

#[tokio::test]
async fn without_lang_the_config_follows_accept_language_by_q_value() {
    let app = app_with_texts().await;
    assert_eq!(
        texts(&app, "", Some("de-DE,de;q=0.9,en;q=0.8")).await,
        json!(["de", "Wir sind weg.", "Hallo! Wie können wir helfen?"])
    );
    assert_eq!(
        texts(&app, "", Some("de;q=0.4, fr;q=0.7, en;q=0.9")).await,
        json!(["fr", "We are away.", "Bonjour !"]),
        "the highest q-value the admins wrote texts for wins, not the first listed"
    );
    assert_eq!(
        texts(&app, "", Some("ja, de;q=0, fr;q=0.1")).await,
        json!(["fr", "We are away.", "Bonjour !"]),
        "q=0 means not German"
    );
}

#[tokio::test]
async fn a_language_without_texts_gets_the_defaults() {
    let app = app_with_texts().await;
    let defaults = json!([null, "We are away.", "Hello! How can we help?"]);
    assert_eq!(texts(&app, "", None).await, defaults);
    assert_eq!(texts(&app, "?lang=ja", None).await, defaults);
    assert_eq!(
        texts(&app, "?lang=es", Some("it-IT, *;q=0.5")).await,
        defaults
    );
    assert_eq!(
        texts(&app, "?lang=en-US", Some("en-US,de;q=0.5")).await,
        defaults,
        "a lang without texts gets the defaults, whatever the browser lists after it"
    );
    assert_eq!(
        texts(&app, "?lang=%2A%2A%2A", Some(";;;,q=,")).await,
        defaults
    );
    assert_eq!(
        texts(&app, &format!("?lang={}", "d".repeat(100)), None).await,
        defaults
    );

    // Without any texts: nulls, as before this feature.
    let app = spawn_app().await;
    assert_eq!(
        texts(&app, "?lang=de", Some("de")).await,
        json!([null, null, null])
    );
}

#[tokio::test]
async fn a_change_shows_in_the_config_at_once_in_every_language() {
    let app = app_with_texts().await;
    let admin = app.admin_token().await;
    assert_eq!(
        texts(&app, "?lang=de", None).await[2],
        "Hallo! Wie können wir helfen?"
    );
    assert_eq!(texts(&app, "", None).await[2], "Hello! How can we help?");
    put(
        &app,
        &admin,
        json!({"greeting": "Hi!", "translations": {"de": {"greeting": "Moin!"}}}),
    )
    .await
    .assert_status(200);
    assert_eq!(
        texts(&app, "?lang=de", None).await,
        json!(["de", "We are away.", "Moin!"])
    );
    assert_eq!(
        texts(&app, "", None).await,
        json!([null, "We are away.", "Hi!"])
    );
}
