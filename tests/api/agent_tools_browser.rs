//! Browser tests of the agent's tools (issue #15): canned responses, private notes, labels,
//! search, transfer, a returning visitor's other chats and the keyboard — each driven in
//! headless Chromium the way an agent would, and checked against the API.

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use serde_json::{json, Value};

use crate::browser::{
    send_message, sign_in, sign_in_as, visitor_sends, with_browser, Browser, PATIENCE,
};
use crate::client::ApiClient;
use crate::helpers::spawn_app;

#[tokio::test]
async fn an_agent_picks_a_canned_response_from_the_slash_list_edits_it_and_sends_it() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (visitor, chat_id) =
        visitor_with_chat(&app, json!({"name": "Ada", "email": "ada@example.com"})).await;
    app.send(&visitor, &chat_id, "Can I send my order back?", None)
        .await
        .assert_status(201);
    create_canned(
        &app,
        &admin,
        "return-policy",
        "Hi {{visitor.name}}, returns are free for 30 days ({{visitor.email}}). {{agent.name}}",
    )
    .await;
    create_canned(&app, &admin, "greeting", "Hello {{ visitor.name }}!").await;
    let agent_name = me(&app, &admin).await["name"]
        .as_str()
        .expect("the admin's name")
        .to_owned();
    let filled = format!("Hi Ada, returns are free for 30 days (ada@example.com). {agent_name}");

    let sent = with_browser(|b| async move {
        sign_in(&b, &app).await;
        open_chat(&b, &chat_id, "Can I send my order back?").await;

        // `/ret` lists only the matching shortcut, first option selected.
        type_into(&b, "textarea[name=message]", "/ret").await;
        let listed = b
            .eventually(
                "the canned list shows /return-policy alone",
                "const opts = [...document.querySelectorAll('[role=listbox] [data-canned-shortcut]')]\
                   .filter((el) => el.offsetParent !== null);\
                 return opts.length === 1 ? opts.map((el) => [el.dataset.cannedShortcut,\
                   el.getAttribute('role'), el.getAttribute('aria-selected')]) : null",
            )
            .await;
        assert_eq!(listed, json!([["return-policy", "option", "true"]]));

        // Enter picks it: the composer holds the filled-in text, and nothing is sent yet.
        press(&b, &[char::from(Key::Enter)]).await;
        let value = composer_value(&b).await;
        assert_eq!(value, filled, "the placeholders are filled in");
        assert!(!canned_list_open(&b).await, "the list closed");
        assert_eq!(
            agent_bodies(&app, &admin, &chat_id).await,
            Vec::<String>::new(),
            "picking does not send"
        );

        // Esc closes the list and leaves the text alone.
        b.js(
            "const t = document.querySelector('textarea[name=message]'); t.value = ''; \
             t.dispatchEvent(new Event('input')); return null",
            vec![],
        )
        .await;
        type_into(&b, "textarea[name=message]", "/").await;
        b.eventually(
            "`/` alone lists both responses",
            "return document.querySelectorAll('[data-canned-shortcut]').length === 2",
        )
        .await;
        press(&b, &[char::from(Key::Escape)]).await;
        assert!(!canned_list_open(&b).await, "Esc closed the list");
        assert_eq!(composer_value(&b).await, "/");
        let focused = b
            .js(
                "return document.activeElement?.getAttribute('name')",
                vec![],
            )
            .await;
        assert_eq!(focused, json!("message"), "Esc on the list keeps the composer focused");

        // Arrows move, a click picks; then the agent edits the text and sends it.
        type_into(&b, "textarea[name=message]", "e").await; // "/e": both match
        b.eventually(
            "`/e` lists both",
            "return document.querySelectorAll('[data-canned-shortcut]').length === 2",
        )
        .await;
        press(&b, &[char::from(Key::Down)]).await;
        let selected = b
            .js(
                "return document.querySelector('[data-canned-shortcut][aria-selected=true]')\
                   ?.dataset.cannedShortcut",
                vec![],
            )
            .await;
        assert_eq!(selected, json!("return-policy"), "the arrow moved to the second");
        b.click(r#"[data-canned-shortcut="greeting"]"#).await;
        assert_eq!(composer_value(&b).await, "Hello Ada!");
        type_into(&b, "textarea[name=message]", " How can I help?").await;
        press(&b, &[char::from(Key::Enter)]).await;
        b.wait_for_message("Hello Ada! How can I help?", true).await;
        (app, admin, chat_id)
    })
    .await;

    if let Some((app, admin, chat_id)) = sent {
        assert_eq!(
            agent_bodies(&app, &admin, &chat_id).await,
            vec!["Hello Ada! How can I help?".to_owned()],
            "exactly the edited text was sent, once"
        );
    }
}

#[tokio::test]
async fn an_admin_adds_edits_and_deletes_canned_responses_and_an_agent_cannot() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    app.new_agent(&admin, "smith@example.com").await;

    with_browser(|b| async move {
        sign_in(&b, &app).await;
        b.click("#canned-btn").await;
        b.eventually(
            "the canned responses panel opens",
            "return document.getElementById('canned-dialog').open",
        )
        .await;

        type_into(&b, "#canned-form input[name=shortcut]", "thanks").await;
        type_into(&b, "#canned-form textarea[name=body]", "Thank you, {{visitor.name}}!").await;
        b.click("#canned-form button[type=submit]").await;
        b.eventually(
            "the new response is listed",
            "return [...document.querySelectorAll('#canned-admin-list [data-canned-id]')]\
               .some((el) => el.textContent.includes('/thanks'))",
        )
        .await;
        assert_eq!(
            canned_list(&app, &admin).await,
            vec![("thanks".to_owned(), "Thank you, {{visitor.name}}!".to_owned())]
        );

        b.click(r#"#canned-admin-list button[aria-label="Edit /thanks"]"#)
            .await;
        let body = b.wait_for_css("#canned-form textarea[name=body]").await;
        body.clear().await.expect("clear the text");
        body.send_keys("Thanks a lot!").await.expect("type the text");
        b.click("#canned-form button[type=submit]").await;
        b.eventually(
            "the edit is listed",
            "return document.querySelector('#canned-admin-list').textContent.includes('Thanks a lot!')",
        )
        .await;
        assert_eq!(
            canned_list(&app, &admin).await,
            vec![("thanks".to_owned(), "Thanks a lot!".to_owned())]
        );

        // Delete asks once more before it deletes.
        b.click(r#"#canned-admin-list button[aria-label="Delete /thanks"]"#)
            .await;
        assert_eq!(canned_list(&app, &admin).await.len(), 1, "not deleted yet");
        b.click("#canned-admin-list .canned-admin__ask ~ .btn--danger")
            .await;
        b.eventually(
            "the list is empty",
            "return !document.querySelector('#canned-admin-list [data-canned-id]')",
        )
        .await;
        assert!(canned_list(&app, &admin).await.is_empty(), "deleted");

        press(&b, &[char::from(Key::Escape)]).await;
        b.eventually(
            "Esc closes the panel and the focus goes back to its button",
            "return !document.getElementById('canned-dialog').open \
               && document.activeElement?.id === 'canned-btn'",
        )
        .await;

        // An agent who is not an admin has no panel.
        b.js("localStorage.clear(); return null", vec![]).await;
        sign_in_as(&b, &app, "smith@example.com", "a-long-password").await;
        b.wait_for_css("#search").await;
        let hidden = b
            .js("return document.getElementById('canned-btn').hidden", vec![])
            .await;
        assert_eq!(hidden, json!(true), "only admins see the panel's button");
    })
    .await;
}

#[tokio::test]
async fn a_private_note_shows_as_a_note_to_agents_and_never_reaches_the_visitor() {
    let app = spawn_app().await;
    let note = "Internal: this customer is a VIP";
    let reply = "Thanks for waiting, how can I help?";

    let done = with_browser(|b| async move {
        let visitor_window = b.client.window().await.expect("the visitor's window");
        visitor_sends(&b, &app.url("/"), "Hello, anyone there?").await;
        let visitor_token = b
            .js(
                "return JSON.parse(localStorage.getItem('parley.visitor')).token",
                vec![],
            )
            .await
            .as_str()
            .expect("the visitor's token")
            .to_owned();

        b.open_window().await;
        sign_in(&b, &app).await;
        let chat_id = b.wait_for_chat_item("Hello, anyone there?").await;
        open_chat(&b, &chat_id, "Hello, anyone there?").await;

        b.click("input[name=private]").await;
        let state = b
            .js(
                "return document.getElementById('composer-wrap').dataset.private",
                vec![],
            )
            .await;
        assert_eq!(state, json!("true"), "the composer shows it writes a note");
        send_message(&b, note).await;
        let shown = b
            .eventually_with(
                "the note shows as a private note",
                "const el = [...document.querySelectorAll('[data-message-id][data-private=\"true\"]')]\
                   .find((e) => e.textContent.includes(arguments[0]));\
                 return el ? el.textContent : null",
                vec![json!(note)],
                PATIENCE,
            )
            .await;
        assert!(
            shown.as_str().unwrap_or_default().contains("Private note"),
            "the note is labelled: {shown}"
        );
        let toggle = b
            .js(
                "return document.querySelector('input[name=private]').checked",
                vec![],
            )
            .await;
        assert_eq!(toggle, json!(false), "the toggle is for the next message only");

        send_message(&b, reply).await;
        let public = b.wait_for_message(reply, true).await;
        let private = b
            .js(
                "return document.querySelector(`[data-message-id=\"${arguments[0]}\"]`).dataset.private ?? null",
                vec![public["id"].clone()],
            )
            .await;
        assert_eq!(private, Value::Null, "a reply is not a note");

        // The visitor's page gets the reply live, and never the note.
        b.client
            .switch_to_window(visitor_window)
            .await
            .expect("back to the visitor");
        b.wait_for_message(reply, true).await;
        let leaked = b
            .js(
                "return document.body.textContent.includes(arguments[0])",
                vec![json!(note)],
            )
            .await;
        assert_eq!(leaked, json!(false), "the visitor page never shows the note");
        (app, chat_id, visitor_token)
    })
    .await;

    if let Some((app, chat_id, visitor_token)) = done {
        let admin = app.admin_token().await;
        let agent_view = app.messages(&admin, &chat_id, 0, 500).await;
        let stored = agent_view.assert_status(200)["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .find(|m| m["body"] == note)
            .cloned()
            .expect("the note is stored");
        assert_eq!(stored["private"], json!(true), "{stored}");
        let visitor_view = app.messages(&visitor_token, &chat_id, 0, 500).await;
        let bodies = bodies(visitor_view.assert_status(200));
        assert!(bodies.contains(&reply.to_owned()), "{bodies:?}");
        assert!(
            !bodies.contains(&note.to_owned()),
            "the visitor's poll never has the note: {bodies:?}"
        );
    }
}

#[tokio::test]
async fn an_agent_labels_a_chat_and_filters_the_inbox_by_that_label() {
    let app = spawn_app().await;
    let (visitor_a, chat_a) = visitor_with_chat(&app, json!({})).await;
    app.send(&visitor_a, &chat_a, "My invoice is wrong", None)
        .await
        .assert_status(201);
    let (visitor_b, chat_b) = visitor_with_chat(&app, json!({})).await;
    app.send(&visitor_b, &chat_b, "Where is my parcel?", None)
        .await
        .assert_status(201);

    let labelled = with_browser(|b| async move {
        sign_in(&b, &app).await;
        b.wait_for_chat_item("Where is my parcel?").await;
        open_chat(&b, &chat_a, "My invoice is wrong").await;

        type_into(
            &b,
            "input[name=label]",
            &format!("billing{}", char::from(Key::Enter)),
        )
        .await;
        b.wait_for_css(r#"#conv-labels [data-label="billing"]"#)
            .await;
        let admin = app.admin_token().await;
        assert_eq!(
            app.chat(&admin, &chat_a).await["labels"],
            json!(["billing"])
        );
        let input = b
            .js(
                "return document.querySelector('input[name=label]').value",
                vec![],
            )
            .await;
        assert_eq!(input, json!(""), "the box is ready for the next label");

        // A click on the chip filters the inbox by it.
        b.click(r#"#conv-labels [data-label="billing"] .label-chip__name"#)
            .await;
        wait_for_list(&b, &[&chat_a]).await;
        let filter = b
            .js(
                "return document.querySelector('input[name=label-filter]').value",
                vec![],
            )
            .await;
        assert_eq!(filter, json!("billing"));

        b.click("#label-filter-clear").await;
        wait_for_list_len(&b, 2).await;

        // Typed into the filter box, too.
        type_into(
            &b,
            "input[name=label-filter]",
            &format!("billing{}", char::from(Key::Enter)),
        )
        .await;
        wait_for_list(&b, &[&chat_a]).await;

        // × removes the label: the chat leaves the filtered list.
        b.click(r#"#conv-labels [data-label="billing"] .label-chip__remove"#)
            .await;
        wait_for_list(&b, &[]).await;
        (app, admin, chat_a)
    })
    .await;

    if let Some((app, admin, chat_a)) = labelled {
        assert_eq!(app.chat(&admin, &chat_a).await["labels"], json!([]));
    }
}

#[tokio::test]
async fn a_search_finds_a_word_and_opens_its_chat_at_that_message() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (visitor, chat_id) = visitor_with_chat(&app, json!({"name": "Zoe"})).await;
    app.send(&visitor, &chat_id, "Hello", None)
        .await
        .assert_status(201);
    let found = app
        .send(
            &visitor,
            &chat_id,
            "Do you ship to <b>Zanzibar</b> & beyond?",
            None,
        )
        .await;
    let found_id = found.assert_status(201)["message"]["id"]
        .as_str()
        .expect("a message id")
        .to_owned();
    // Enough after it that the conversation opens pages away from it.
    for i in 1..=120 {
        app.send(&admin, &chat_id, &format!("filler {i}"), None)
            .await
            .assert_status(201);
    }
    let (other_visitor, other_chat) = visitor_with_chat(&app, json!({})).await;
    app.send(&other_visitor, &other_chat, "Nothing to see", None)
        .await
        .assert_status(201);

    with_browser(|b| async move {
        sign_in(&b, &app).await;
        b.wait_for_chat_item("Nothing to see").await;
        blur(&b).await;

        // `/` goes to the search box.
        press(&b, &['/']).await;
        let focused = b
            .js(
                "return document.activeElement?.getAttribute('name')",
                vec![],
            )
            .await;
        assert_eq!(focused, json!("search"));
        type_into(&b, "input[name=search]", "zanzibar").await;
        let results = b
            .eventually(
                "the result shows",
                "const els = [...document.querySelectorAll('#search-results [data-chat-id]')];\
                 return els.length ? els.map((el) => ({\
                   chat: el.dataset.chatId,\
                   text: el.querySelector('.search-result__snippet').textContent,\
                   marks: [...el.querySelectorAll('mark')].map((m) => m.textContent),\
                   elements: el.querySelectorAll('.search-result__snippet *:not(mark)').length,\
                   messageHook: el.matches('[data-message-id]') || !!el.querySelector('[data-message-id]')\
                 })) : null",
            )
            .await;
        let first = &results[0];
        assert_eq!(results.as_array().map(Vec::len), Some(1), "{results}");
        assert_eq!(first["chat"], json!(chat_id));
        assert!(
            first["text"].as_str().unwrap_or_default().contains("<b>"),
            "the escaped markup shows as text: {first}"
        );
        assert_eq!(
            first["elements"],
            json!(0),
            "no element but <mark>: {first}"
        );
        assert_eq!(
            first["messageHook"],
            json!(false),
            "a result is not a rendered message: {first}"
        );
        assert!(
            first["marks"].as_array().is_some_and(|m| m.iter().any(|t| t
                .as_str()
                .unwrap_or_default()
                .eq_ignore_ascii_case("zanzibar"))),
            "the hit is marked: {first}"
        );

        b.click("#search-results [data-chat-id]").await;
        let seen = b
            .eventually_with(
                "the found message is loaded, in view and highlighted",
                "const el = document.querySelector(`#messages [data-message-id=\"${arguments[0]}\"]`);\
                 if (!el || !el.dataset.highlighted) return null;\
                 const s = document.getElementById('scroller').getBoundingClientRect();\
                 const r = el.getBoundingClientRect();\
                 return r.bottom > s.top && r.top < s.bottom\
                   ? document.querySelectorAll('#messages [data-message-id]').length : null",
                vec![json!(found_id)],
                PATIENCE,
            )
            .await;
        assert!(
            seen.as_u64().unwrap_or_default() > 100,
            "earlier pages were loaded to reach it: {seen}"
        );
        assert_eq!(
            b.js("return location.hash", vec![]).await,
            json!(format!("#chat={chat_id}"))
        );
    })
    .await;
}

#[tokio::test]
async fn an_agent_transfers_a_chat_to_another_agent_with_a_note() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (_, smith_id) = app.new_agent(&admin, "smith@example.com").await;
    let (visitor, chat_id) = visitor_with_chat(&app, json!({})).await;
    app.send(&visitor, &chat_id, "I need a refund", None)
        .await
        .assert_status(201);
    let note = "Refunds are Smith's area";

    let moved = with_browser(|b| async move {
        sign_in(&b, &app).await;
        open_chat(&b, &chat_id, "I need a refund").await;
        b.click("#transfer-btn").await;
        b.eventually(
            "the transfer dialog opens",
            "return document.getElementById('transfer-dialog').open",
        )
        .await;
        let select = b.wait_for_css("select[name=transfer-agent]").await;
        select
            .select_by_value(&smith_id)
            .await
            .expect("pick Agent Smith");
        type_into(&b, "textarea[name=transfer-note]", note).await;
        b.click("#transfer-form button[type=submit]").await;
        b.eventually(
            "the dialog closes and the header names the new assignee",
            "return !document.getElementById('transfer-dialog').open \
               && document.getElementById('conv-assignee').textContent.includes('Agent Smith')",
        )
        .await;
        b.wait_for_message(note, true).await;
        (app, admin, chat_id, smith_id, visitor)
    })
    .await;

    if let Some((app, admin, chat_id, smith_id, visitor)) = moved {
        let chat = app
            .call(
                "GET",
                &format!("/api/v1/chats/{chat_id}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(
            chat.assert_status(200)["chat"]["assignee"]["id"],
            json!(smith_id)
        );
        let page = app.messages(&admin, &chat_id, 0, 500).await;
        let stored = page.assert_status(200)["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .find(|m| m["body"] == note)
            .cloned()
            .expect("the note is stored");
        assert_eq!(stored["private"], json!(true), "{stored}");
        let visitor_view = app.messages(&visitor, &chat_id, 0, 500).await;
        assert!(
            !bodies(visitor_view.assert_status(200)).contains(&note.to_owned()),
            "the visitor never sees the transfer note"
        );
    }
}

#[tokio::test]
async fn a_returning_visitors_other_chats_are_listed_and_open() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (visitor, first) = visitor_with_chat(&app, json!({"name": "Returning Rita"})).await;
    app.send(&visitor, &first, "First visit question", None)
        .await
        .assert_status(201);
    app.patch_chat(&admin, &first, json!({"status": "closed"}))
        .await
        .assert_status(200);
    let second = app.create_chat(&visitor).await;
    let second = second.assert_status(201)["chat"]["id"]
        .as_str()
        .expect("a new chat")
        .to_owned();
    app.send(&visitor, &second, "Back again", None)
        .await
        .assert_status(201);

    with_browser(|b| async move {
        sign_in(&b, &app).await;
        open_chat(&b, &second, "Back again").await;
        let link = format!(r#"#earlier [data-chat-id="{first}"]"#);
        b.wait_for_css(&link).await;
        let listed = b
            .js(
                "return [...document.querySelectorAll('#earlier [data-chat-id]')].map((e) => e.dataset.chatId)",
                vec![],
            )
            .await;
        assert_eq!(listed, json!([first]), "only the visitor's other chat");
        b.click(&link).await;
        b.wait_for_message("First visit question", true).await;
        assert_eq!(
            b.js("return location.hash", vec![]).await,
            json!(format!("#chat={first}"))
        );
    })
    .await;
}

#[tokio::test]
async fn the_keyboard_moves_through_the_inbox_opens_a_chat_and_shows_the_shortcuts() {
    let app = spawn_app().await;
    for text in ["chat one", "chat two", "chat three"] {
        let (visitor, chat_id) = visitor_with_chat(&app, json!({})).await;
        app.send(&visitor, &chat_id, text, None)
            .await
            .assert_status(201);
    }

    with_browser(|b| async move {
        sign_in(&b, &app).await;
        wait_for_list_len(&b, 3).await;
        let ids: Vec<String> = serde_json::from_value(
            b.js(
                "return [...document.querySelectorAll('#chat-list [data-chat-id]')].map((e) => e.dataset.chatId)",
                vec![],
            )
            .await,
        )
        .expect("the listed ids");
        blur(&b).await;

        press(&b, &['j']).await;
        assert_eq!(focused_chat(&b).await, ids[0]);
        press(&b, &['j']).await;
        assert_eq!(focused_chat(&b).await, ids[1]);
        press(&b, &['k']).await;
        assert_eq!(focused_chat(&b).await, ids[0]);
        press(&b, &[char::from(Key::Down)]).await;
        assert_eq!(focused_chat(&b).await, ids[1]);

        press(&b, &[char::from(Key::Enter)]).await;
        b.eventually_with(
            "Enter opens the chat and the composer takes the focus",
            "return location.hash === '#chat=' + arguments[0] && !document.getElementById('conv').hidden \
               && document.activeElement?.getAttribute('name') === 'message'",
            vec![json!(ids[1])],
            PATIENCE,
        )
        .await;

        // Esc leaves the field; then the keys work again.
        press(&b, &[char::from(Key::Escape)]).await;
        let active = b
            .js("return document.activeElement === document.body", vec![])
            .await;
        assert_eq!(active, json!(true), "Esc left the composer");

        press(&b, &['?']).await;
        b.eventually(
            "? opens the shortcut sheet",
            "const d = document.getElementById('shortcuts-dialog');\
             return d.open && d.contains(document.activeElement) && d.textContent.includes('Search messages')",
        )
        .await;
        press(&b, &[char::from(Key::Escape)]).await;
        b.eventually(
            "Esc closes it",
            "return !document.getElementById('shortcuts-dialog').open",
        )
        .await;

        blur(&b).await;
        press(&b, &['/']).await;
        let focused = b
            .js("return document.activeElement?.getAttribute('name')", vec![])
            .await;
        assert_eq!(focused, json!("search"), "/ goes to search");
        let typed = b
            .js("return document.querySelector('input[name=search]').value", vec![])
            .await;
        assert_eq!(typed, json!(""), "the / is not typed into the box");
    })
    .await;
}

// ---------------------------------------------------------------------------------
// Steps
// ---------------------------------------------------------------------------------

/// A visitor (with these details) and its new open chat: (token, chat id).
async fn visitor_with_chat(api: &ApiClient, details: Value) -> (String, String) {
    let created = api.create_visitor(details).await;
    let token = created.assert_status(201)["token"]
        .as_str()
        .expect("a token")
        .to_owned();
    let chat = api.create_chat(&token).await;
    let chat_id = chat.assert_status(201)["chat"]["id"]
        .as_str()
        .expect("a chat id")
        .to_owned();
    (token, chat_id)
}

async fn create_canned(api: &ApiClient, admin: &str, shortcut: &str, body: &str) {
    api.call(
        "POST",
        "/api/v1/canned",
        Some(admin),
        Some(json!({ "shortcut": shortcut, "body": body })),
    )
    .await
    .assert_status(201);
}

/// (shortcut, body) of every canned response.
async fn canned_list(api: &ApiClient, token: &str) -> Vec<(String, String)> {
    let reply = api.call("GET", "/api/v1/canned", Some(token), None).await;
    reply.assert_status(200)["canned"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|c| {
            (
                c["shortcut"].as_str().unwrap_or_default().to_owned(),
                c["body"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

async fn me(api: &ApiClient, token: &str) -> Value {
    let reply = api
        .call("GET", "/api/v1/agents/me", Some(token), None)
        .await;
    reply.assert_status(200)["agent"].clone()
}

fn bodies(page: &Value) -> Vec<String> {
    page["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["body"].as_str().map(str::to_owned))
        .collect()
}

/// The bodies of the agents' messages in a chat (not the system's).
async fn agent_bodies(api: &ApiClient, token: &str, chat_id: &str) -> Vec<String> {
    let page = api.messages(token, chat_id, 0, 500).await;
    page.assert_status(200)["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| m["sender"] == "agent")
        .filter_map(|m| m["body"].as_str().map(str::to_owned))
        .collect()
}

/// Opens a chat from the inbox list and waits for one of its messages.
async fn open_chat(b: &Browser, chat_id: &str, shows: &str) {
    b.wait_for_chat_item(shows).await;
    b.click(&format!(r#"#chat-list [data-chat-id="{chat_id}"]"#))
        .await;
    b.wait_for_message(shows, true).await;
}

/// Types into the element `css` (keys go one by one, as a person types).
async fn type_into(b: &Browser, css: &str, text: &str) {
    b.wait_for_css(css)
        .await
        .send_keys(text)
        .await
        .unwrap_or_else(|e| panic!("type into {css}: {e}"));
}

/// Presses and releases each key in turn, on whatever has the focus.
async fn press(b: &Browser, keys: &[char]) {
    let mut actions = KeyActions::new("keyboard".to_owned());
    for &key in keys {
        actions = actions
            .then(KeyAction::Down { value: key })
            .then(KeyAction::Up { value: key });
    }
    b.client
        .perform_actions(actions)
        .await
        .expect("press the keys");
}

/// Takes the focus out of any field, as a click on an empty part of the page does.
async fn blur(b: &Browser) {
    b.js("document.activeElement?.blur(); return null", vec![])
        .await;
}

async fn composer_value(b: &Browser) -> String {
    b.js(
        "return document.querySelector('textarea[name=message]').value",
        vec![],
    )
    .await
    .as_str()
    .unwrap_or_default()
    .to_owned()
}

async fn canned_list_open(b: &Browser) -> bool {
    b.js(
        "const l = document.querySelector('[role=listbox]'); return !!l && !l.hidden",
        vec![],
    )
    .await
        == json!(true)
}

/// The chat id of the inbox item that has the focus.
async fn focused_chat(b: &Browser) -> String {
    b.js(
        "return document.activeElement?.closest('#chat-list [data-chat-id]')?.dataset.chatId ?? ''",
        vec![],
    )
    .await
    .as_str()
    .unwrap_or_default()
    .to_owned()
}

/// Waits until the inbox list shows exactly these chats.
async fn wait_for_list(b: &Browser, ids: &[&str]) {
    b.eventually_with(
        &format!("the inbox lists exactly {ids:?}"),
        "const shown = [...document.querySelectorAll('#chat-list [data-chat-id]')].map((e) => e.dataset.chatId);\
         return JSON.stringify(shown.sort()) === JSON.stringify([...arguments[0]].sort())",
        vec![json!(ids)],
        PATIENCE,
    )
    .await;
}

async fn wait_for_list_len(b: &Browser, n: usize) {
    b.eventually_with(
        &format!("the inbox lists {n} chats"),
        "return document.querySelectorAll('#chat-list [data-chat-id]').length === arguments[0]",
        vec![json!(n)],
        PATIENCE,
    )
    .await;
}

#[tokio::test]
async fn an_agent_mentions_a_colleague_from_the_at_list_and_the_colleague_is_flagged() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (ana, _) = app.new_agent(&admin, "ana@example.com").await;
    let (visitor, chat_id) = visitor_with_chat(&app, json!({"name": "Ada"})).await;
    app.send(&visitor, &chat_id, "Where is my refund?", None)
        .await
        .assert_status(201);

    with_browser(|b| async move {
        sign_in(&b, &app).await;
        open_chat(&b, &chat_id, "Where is my refund?").await;

        // Outside a note, `@` lists no one: a reply does not mention.
        type_into(&b, "textarea[name=message]", "@an").await;
        assert_eq!(
            b.js(
                "return document.getElementById('mention-list').hidden",
                vec![]
            )
            .await,
            json!(true)
        );
        b.js(
            "const t = document.querySelector('textarea[name=message]'); t.value = ''; \
             t.dispatchEvent(new Event('input')); return null",
            vec![],
        )
        .await;

        b.click("input[name=private]").await;
        type_into(&b, "textarea[name=message]", "Refunds are yours @an").await;
        let listed = b
            .eventually(
                "the @ list offers ana",
                "const o = [...document.querySelectorAll('#mention-list [data-mention-handle]')];\
                 return o.length ? o.map((e) => e.dataset.mentionHandle) : null",
            )
            .await;
        assert_eq!(listed, json!(["ana"]));
        press(&b, &[char::from(Key::Enter)]).await;
        assert_eq!(composer_value(&b).await, "Refunds are yours @ana ");
        type_into(&b, "textarea[name=message]", "please").await;
        press(&b, &[char::from(Key::Enter)]).await;
        b.wait_for_message("Refunds are yours @ana please", true)
            .await;

        assert_eq!(app.chat(&ana, &chat_id).await["mentioned"], true);
        assert_eq!(app.chat(&admin, &chat_id).await["mentioned"], false);
    })
    .await;
}
