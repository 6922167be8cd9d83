//! The admins' texts per language in a real browser: a German visitor sees the German
//! greeting and, with nobody online, the German away message; an admin writes a language's
//! texts in the inbox's settings dialog.

use fantoccini::Locator;
use serde_json::{json, Value};

use crate::browser::{sign_in, with_browser_in, Browser};
use crate::helpers::{spawn_app, TestApp};

/// `[hi shown, welcome text, its lang]` of the visitor page's welcome.
async fn welcome(b: &Browser, text: &str) -> Value {
    b.eventually_with(
        &format!("the welcome says {text:?}"),
        "const hi = document.querySelector('.welcome__hi');\
         const el = document.querySelector('.welcome__text');\
         return el.textContent === arguments[0] && [!hi.hidden, el.textContent, el.lang]",
        vec![json!(text)],
        crate::browser::PATIENCE,
    )
    .await
}

async fn away_line(b: &Browser, text: &str) -> Value {
    b.eventually_with(
        &format!("the status line says {text:?}"),
        "const el = document.getElementById('team-status-text');\
         return !document.getElementById('team-status').hidden && el.textContent === arguments[0]\
           && [el.textContent, el.lang]",
        vec![json!(text)],
        crate::browser::PATIENCE,
    )
    .await
}

/// Default texts in English, German ones, and nobody online (the only agent is away).
async fn app_with_german_texts() -> TestApp {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    app.call(
        "PUT",
        "/api/v1/settings",
        Some(&admin),
        Some(json!({
            "away_message": "We are out fishing.",
            "greeting": "Welcome to Acme support!",
            "translations": {"de": {"away_message": "Wir sind angeln.",
                                    "greeting": "Willkommen beim Acme-Support!"}},
        })),
    )
    .await
    .assert_status(200);
    app.call(
        "PATCH",
        "/api/v1/agents/me",
        Some(&admin),
        Some(json!({"availability": "away"})),
    )
    .await
    .assert_status(200);
    app
}

#[tokio::test]
async fn a_german_browser_sees_the_admins_german_greeting_and_away_message() {
    let app = app_with_german_texts().await;
    with_browser_in(Some("de-DE,de"), |b| async move {
        b.client
            .goto(&app.url("/"))
            .await
            .expect("the visitor page");
        assert_eq!(
            welcome(&b, "Willkommen beim Acme-Support!").await,
            json!([false, "Willkommen beim Acme-Support!", "de"]),
            "the greeting stands for the whole welcome"
        );
        assert_eq!(
            away_line(&b, "Wir sind angeln.").await,
            json!(["Wir sind angeln.", "de"])
        );
        // The page's own words stay German.
        let title = b
            .js(
                "return document.getElementById('chat-title').textContent",
                vec![],
            )
            .await;
        assert_eq!(title, "Schreiben Sie uns");
    })
    .await;
}

#[tokio::test]
async fn a_visitor_who_prefers_english_gets_the_default_texts_even_if_german_comes_next() {
    let app = app_with_german_texts().await;
    with_browser_in(Some("en-US,de"), |b| async move {
        b.client
            .goto(&app.url("/"))
            .await
            .expect("the visitor page");
        assert_eq!(
            welcome(&b, "Welcome to Acme support!").await,
            json!([false, "Welcome to Acme support!", ""])
        );
        away_line(&b, "We are out fishing.").await;

        // The widget's data-lang (`?lang=`) asks for German.
        b.client
            .goto(&app.url("/?lang=de"))
            .await
            .expect("the visitor page in German");
        welcome(&b, "Willkommen beim Acme-Support!").await;
        away_line(&b, "Wir sind angeln.").await;
    })
    .await;
}

#[tokio::test]
async fn without_a_greeting_the_page_keeps_its_own_welcome() {
    let app = spawn_app().await;
    with_browser_in(Some("fr-FR,fr"), |b| async move {
        b.client
            .goto(&app.url("/"))
            .await
            .expect("the visitor page");
        let text = b
            .eventually(
                "the team status arrives",
                "return !document.getElementById('team-status').hidden",
            )
            .await;
        assert_eq!(text, json!(true));
        let words = b
            .js(
                "return [!document.querySelector('.welcome__hi').hidden,\
                   document.querySelector('.welcome__hi').textContent,\
                   document.querySelector('.welcome__text').textContent]",
                vec![],
            )
            .await;
        assert_eq!(
            words,
            json!([
                true,
                "Bonjour !",
                "Posez-nous vos questions — nous vous répondons ici même."
            ])
        );
    })
    .await;
}

#[tokio::test]
async fn an_admin_adds_edits_and_removes_a_languages_texts_in_the_settings_dialog() {
    let app = app_with_german_texts().await;
    let admin = app.admin_token().await;
    let api = app.api.clone();
    let ran = with_browser_in(Some("en-US,en"), |b| async move {
        sign_in(&b, &api).await;
        b.eventually(
            "the settings button shows",
            "const el = document.getElementById('settings-btn'); return el && !el.hidden",
        )
        .await;
        b.click("#settings-btn").await;
        b.eventually(
            "the dialog shows the German texts",
            "const box = document.querySelector('[data-langs] [data-lang=de]');\
             return box && box.querySelector('[data-field=greeting]').value === 'Willkommen beim Acme-Support!'",
        )
        .await;

        // Add Italian by its tag, edit the German greeting, remove nothing yet.
        b.client
            .find(Locator::Css("input[name=new-lang-tag]"))
            .await
            .expect("the tag input")
            .send_keys("it")
            .await
            .expect("type");
        b.click("[data-add-lang]").await;
        b.wait_for_css("[data-langs] [data-lang=it] [data-field=greeting]")
            .await
            .send_keys("Benvenuti!")
            .await
            .expect("type");
        // The same language twice is refused in the dialog.
        b.js(
            "document.querySelector('select[name=new-lang-pick]').value = 'de'",
            vec![],
        )
        .await;
        b.click("[data-add-lang]").await;
        let problem = b
            .eventually(
                "the dialog says German is there",
                "const e = document.querySelector('#settings-dialog .form-error');\
                 return !e.hidden && e.textContent",
            )
            .await;
        assert!(problem.as_str().unwrap().contains("\"de\""), "{problem}");
        let german = b
            .wait_for_css("[data-langs] [data-lang=de] [data-field=greeting]")
            .await;
        german.clear().await.expect("clear");
        german.send_keys("Hallo!").await.expect("type");
        b.click("#settings-dialog [type=submit]").await;
        b.eventually(
            "the dialog closes",
            "return !document.getElementById('settings-dialog').open",
        )
        .await;
    })
    .await;
    if ran.is_none() {
        return; // no browser here
    }
    let settings = app
        .call("GET", "/api/v1/settings", Some(&admin), None)
        .await
        .assert_status(200)["settings"]
        .clone();
    assert_eq!(
        settings["translations"],
        json!({"de": {"away_message": "Wir sind angeln.", "greeting": "Hallo!"},
               "it": {"away_message": null, "greeting": "Benvenuti!"}})
    );

    // Removing a language in the dialog removes it on save.
    let api = app.api.clone();
    with_browser_in(Some("en-US,en"), |b| async move {
        sign_in(&b, &api).await;
        b.eventually(
            "the settings button shows",
            "const el = document.getElementById('settings-btn'); return el && !el.hidden",
        )
        .await;
        b.click("#settings-btn").await;
        b.wait_for_css("[data-langs] [data-lang=it]").await;
        b.click("[data-langs] [data-lang=it] button").await;
        b.click("#settings-dialog [type=submit]").await;
        b.eventually(
            "the dialog closes",
            "return !document.getElementById('settings-dialog').open",
        )
        .await;
    })
    .await;
    let settings = app
        .call("GET", "/api/v1/settings", Some(&admin), None)
        .await
        .assert_status(200)["settings"]
        .clone();
    assert_eq!(
        settings["translations"],
        json!({"de": {"away_message": "Wir sind angeln.", "greeting": "Hallo!"}})
    );
}
