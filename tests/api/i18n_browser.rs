//! The visitor page speaks the visitor's language: a German browser sees German, `?lang=`
//! (the widget's `data-lang`) overrides it, a language without a table falls back to
//! English, and right-to-left messages are laid out right to left.

use serde_json::json;

use crate::browser::{send_message, with_browser_in, Browser};
use crate::helpers::spawn_app;

/// What the page shows of its language: `<html lang>`, the title, the composer's placeholder
/// and the send button's accessible name.
async fn page_words(b: &Browser) -> serde_json::Value {
    b.wait_for_css("textarea[name=message]").await;
    b.js(
        "return [document.documentElement.lang, document.getElementById('chat-title').textContent,\
           document.querySelector('textarea[name=message]').placeholder,\
           document.querySelector('.send-btn').getAttribute('aria-label')]",
        vec![],
    )
    .await
}

#[tokio::test]
async fn a_german_browser_sees_the_visitor_page_in_german() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    with_browser_in(Some("de-DE,de"), |b| async move {
        b.client.goto(&app.url("/")).await.expect("the visitor page");
        assert_eq!(
            page_words(&b).await,
            json!([
                "de",
                "Schreiben Sie uns",
                "Nachricht schreiben…",
                "Nachricht senden"
            ])
        );

        // What the page writes later is German too: the delivery status and the banner of
        // a closed chat.
        send_message(&b, "Hallo, ist jemand da?").await;
        b.wait_for_message("Hallo, ist jemand da?", true).await;
        let status = b
            .eventually(
                "the message shows a German delivery status",
                "const s = document.querySelector('.msg__status-text');\
                 return s && ['Gesendet', 'Gelesen'].includes(s.textContent) && s.textContent",
            )
            .await;
        assert!(status == json!("Gesendet") || status == json!("Gelesen"));

        let chats = app.chats(&admin, "open").await;
        let chat_id = chats.assert_status(200)["chats"][0]["id"]
            .as_str()
            .expect("the visitor's chat")
            .to_owned();
        app.patch_chat(&admin, &chat_id, json!({"status": "closed"}))
            .await
            .assert_status(200);
        let banner = b
            .eventually(
                "the closed banner shows",
                "const el = document.getElementById('closed-banner');\
                 return !el.hidden && el.textContent.trim()",
            )
            .await;
        assert_eq!(
            banner,
            json!(
                "Dieses Gespräch wurde beendet. Schreiben Sie eine Nachricht, um es wieder zu öffnen."
            )
        );
    })
    .await;
}

#[tokio::test]
async fn lang_in_the_address_wins_and_a_language_without_a_table_falls_back_to_english() {
    let app = spawn_app().await;
    with_browser_in(Some("ja-JP,ja"), |b| async move {
        b.client
            .goto(&app.url("/"))
            .await
            .expect("the visitor page");
        assert_eq!(
            page_words(&b).await,
            json!(["en", "Chat with us", "Write a message…", "Send message"])
        );

        b.client
            .goto(&app.url("/?lang=fr"))
            .await
            .expect("the visitor page in French");
        assert_eq!(
            page_words(&b).await,
            json!([
                "fr",
                "Discutons",
                "Écrivez un message…",
                "Envoyer le message"
            ])
        );
    })
    .await;
}

#[tokio::test]
async fn a_right_to_left_message_is_laid_out_right_to_left() {
    let app = spawn_app().await;
    with_browser_in(Some("en-US,en"), |b| async move {
        b.client
            .goto(&app.url("/"))
            .await
            .expect("the visitor page");
        let arabic = "مرحبا، أحتاج إلى مساعدة";
        send_message(&b, arabic).await;
        b.wait_for_message(arabic, true).await;
        let direction = b
            .js(
                "const el = [...document.querySelectorAll('.msg__text')]\
                   .find((e) => e.textContent.includes(arguments[0]));\
                 const r = document.createRange(); r.selectNodeContents(el);\
                 const text = r.getBoundingClientRect(), box = el.getBoundingClientRect();\
                 return [getComputedStyle(el).unicodeBidi, text.right >= box.right - 2]",
                vec![json!(arabic)],
            )
            .await;
        // `plaintext` takes the direction from the text itself: Arabic hugs the right edge.
        assert_eq!(direction, json!(["plaintext", true]));
    })
    .await;
}
