//! Accessibility in headless Chromium: axe-core (the engine behind most accessibility
//! checkers) runs on the visitor page, the inbox's sign-in and the inbox with a chat open,
//! in the light and the dark palette, and must report no serious or critical violation of
//! WCAG 2.1 A/AA. Keyboard-only use and the live region for new messages are driven too.
//!
//! axe-core comes from npm (`.ci/run` installs it into `target/axe`); `PARLEY_AXE_JS` names
//! another copy. Like a missing browser, a missing axe-core fails under `CI`.

use std::path::PathBuf;

use fantoccini::key::Key;
use serde_json::{json, Value};

use crate::browser::{send_message, sign_in, visitor_sends, with_browser, Browser};
use crate::helpers::spawn_app;

/// The axe-core source, or None outside CI when it is not installed.
fn axe_source() -> Option<String> {
    let path = std::env::var_os("PARLEY_AXE_JS").map_or_else(
        || PathBuf::from("target/axe/node_modules/axe-core/axe.min.js"),
        PathBuf::from,
    );
    match std::fs::read_to_string(&path) {
        Ok(source) => Some(source),
        Err(e) => {
            let note = format!(
                "accessibility tests need axe-core at {} ({e}): \
                 npm install --prefix target/axe axe-core@4",
                path.display()
            );
            assert!(std::env::var_os("CI").is_none(), "{note}");
            eprintln!("note: skipping an accessibility test: {note}");
            None
        }
    }
}

/// Runs axe on the current page in both palettes; returns each serious or critical
/// violation as `theme rule: selector — summary`.
async fn serious_violations(b: &Browser, axe: &str) -> Vec<String> {
    // Colours transition for 150 ms after the theme changes: axe reads them once settled.
    // The source goes into the script itself: the page's CSP forbids eval and inline
    // scripts, but not what the WebDriver runs.
    let script = format!(
        "{axe}\n;const done = arguments[arguments.length - 1];\
         const theme = arguments[0];\
         document.documentElement.dataset.theme = theme;\
         setTimeout(() => {{\
           window.axe.run(document, {{\
             runOnly: {{ type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] }},\
             resultTypes: ['violations'],\
           }}).then((r) => done(r.violations\
             .filter((v) => v.impact === 'serious' || v.impact === 'critical')\
             .flatMap((v) => v.nodes.slice(0, 4).map((n) =>\
               theme + ' ' + v.id + ': ' + n.target.join(' ') + ' — ' + n.failureSummary))),\
             (e) => done(['axe failed: ' + e]));\
         }}, 400);"
    );
    let mut found = Vec::new();
    for theme in ["light", "dark"] {
        let answer = b
            .client
            .execute_async(&script, vec![json!(theme)])
            .await
            .expect("run axe-core in the page");
        found.extend(
            answer
                .as_array()
                .expect("a list of violations")
                .iter()
                .map(|v| v.as_str().unwrap_or_default().to_owned()),
        );
    }
    found
}

#[tokio::test]
async fn axe_finds_no_serious_violation_on_the_visitor_page_or_in_the_inbox() {
    let Some(axe) = axe_source() else { return };
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    with_browser(|b| async move {
        b.client
            .update_timeouts(fantoccini::wd::TimeoutConfiguration::new(
                Some(std::time::Duration::from_secs(60)),
                None,
                None,
            ))
            .await
            .expect("a longer script timeout for axe");

        b.client
            .goto(&app.url("/"))
            .await
            .expect("the visitor page");
        b.wait_for_css("textarea[name=message]").await;
        let mut violations = serious_violations(&b, &axe).await;

        visitor_sends(&b, &app.url("/"), "Hello, is anyone there?").await;
        violations.extend(serious_violations(&b, &axe).await);

        let chats = app.chats(&admin, "open").await;
        let chat_id = chats.assert_status(200)["chats"][0]["id"]
            .as_str()
            .expect("the visitor's chat")
            .to_owned();
        app.patch_chat(&admin, &chat_id, json!({"labels": ["billing"]}))
            .await
            .assert_status(200);

        b.client.goto(&app.url("/agent")).await.expect("the inbox");
        b.wait_for_css("input[name=email]").await;
        violations.extend(serious_violations(&b, &axe).await);

        sign_in(&b, &app).await;
        b.wait_for_css(&format!(r#"#chat-list [data-chat-id="{chat_id}"]"#))
            .await;
        b.click(&format!(r#"#chat-list [data-chat-id="{chat_id}"]"#))
            .await;
        b.wait_for_message("Hello, is anyone there?", true).await;
        violations.extend(serious_violations(&b, &axe).await);

        assert!(
            violations.is_empty(),
            "axe-core found serious violations:\n{}",
            violations.join("\n")
        );
    })
    .await;
}

#[tokio::test]
async fn a_keyboard_alone_sends_a_message_and_new_messages_are_announced() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    with_browser(|b| async move {
        b.client
            .goto(&app.url("/"))
            .await
            .expect("the visitor page");
        b.wait_for_css("textarea[name=message]").await;

        // The composer is reachable with Tab from the top of the page, with a visible focus.
        let mut reached = false;
        for _ in 0..15 {
            b.client
                .active_element()
                .await
                .expect("the focused element")
                .send_keys(&char::from(Key::Tab).to_string())
                .await
                .expect("press Tab");
            let name = b
                .js(
                    "return document.activeElement && document.activeElement.name",
                    vec![],
                )
                .await;
            if name == json!("message") {
                reached = true;
                break;
            }
        }
        assert!(reached, "Tab reaches the composer");
        send_message(&b, "Typed with the keyboard only").await;
        b.wait_for_message("Typed with the keyboard only", true)
            .await;

        // The message list is a polite live region for additions, so a screen reader reads
        // an agent's reply when it arrives.
        let live = b
            .js(
                "const log = document.querySelector('[data-message-id]').closest('[aria-live]');\
                 return log && [log.id, log.getAttribute('aria-live'),\
                   log.getAttribute('aria-relevant')]",
                vec![],
            )
            .await;
        assert_eq!(live, json!(["messages", "polite", "additions"]));

        let chats = app.chats(&admin, "open").await;
        let chat_id = chats.assert_status(200)["chats"][0]["id"]
            .as_str()
            .expect("the visitor's chat")
            .to_owned();
        app.send(&admin, &chat_id, "An agent's answer", None)
            .await
            .assert_status(201);
        let announced: Value = b
            .eventually(
                "the reply appears inside the live region",
                "const log = document.querySelector('#messages[aria-live=polite]');\
                 return log && log.textContent.includes(\"An agent's answer\")",
            )
            .await;
        assert_eq!(announced, json!(true));
    })
    .await;
}
