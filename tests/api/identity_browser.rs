//! Browser tests of identity and satisfaction: the widget on a host page signs in the
//! site's user (the same chat in a second browser), tells the page of new messages, and
//! the visitor page offers the rating once the chat is closed.

use serde_json::{json, Value};

use crate::browser::{open_widget, send_message, visitor_sends, with_browser, FixedPage};
use crate::helpers::{spawn_app, TestApp};
use crate::identity::{identified_app, SECRET};

/// A shop page on another origin with the widget for the shop's user 42, which records the
/// widget's events in `window.__parley`.
fn host_page(app: &TestApp) -> FixedPage {
    let hash = parley::services::identity::sign(SECRET, "42");
    FixedPage::serve(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Shop</title></head>\
         <body><h1>My account</h1>\
         <script src=\"{}/widget.js\" data-user-id=\"42\" data-user-hash=\"{hash}\" \
           data-user-name=\"Ann Shopper\" data-user-email=\"ann@example.com\" defer></script>\
         <script>\
           window.__parley = [];\
           document.addEventListener('DOMContentLoaded', () => {{\
             for (const e of ['message', 'open', 'close'])\
               Parley.on(e, (m) => window.__parley.push(e === 'message' ? 'message:' + m.body : e));\
           }});\
         </script></body></html>",
        app.address
    ))
}

/// The chat whose last message is `body`, as an agent sees it.
async fn chat_with_last(app: &TestApp, admin: &str, body: &str) -> Value {
    let reply = app.chats(admin, "all").await;
    reply.assert_status(200)["chats"]
        .as_array()
        .expect("chats")
        .iter()
        .find(|c| c["last_message"]["body"] == body)
        .cloned()
        .unwrap_or_else(|| panic!("no chat ends with {body:?}"))
}

#[tokio::test]
async fn the_widget_signs_in_the_sites_user_with_the_same_chat_in_a_second_browser() {
    let app = identified_app(false).await;
    let admin = app.admin_token().await;
    let host = host_page(&app);
    let url = format!("http://localhost:{}/account", host.port());
    let question = "Where is my parcel, as user 42?";

    let first = with_browser(|b| {
        let (app, admin, url) = (&app, &admin, &url);
        async move {
            open_widget(&b, url).await;
            send_message(&b, question).await;
            b.wait_for_message(question, true).await;

            // The agents see whom the site vouched for.
            let chat = chat_with_last(app, admin, question).await;
            assert_eq!(chat["visitor"]["external_id"], "42", "{chat}");
            assert_eq!(chat["visitor"]["name"], "Ann Shopper");
            assert_eq!(chat["visitor"]["email"], "ann@example.com");
            let chat_id = chat["id"].as_str().expect("an id").to_owned();

            // An agent's reply reaches the chat and, as an event, the host page.
            app.send(admin, &chat_id, "It left the warehouse today.", None)
                .await
                .assert_status(201);
            b.wait_for_message("It left the warehouse today.", true)
                .await;
            b.client
                .enter_parent_frame()
                .await
                .expect("back to the host page");
            b.eventually(
                "the host page heard of the reply through Parley.on('message')",
                "return window.__parley.includes('message:It left the warehouse today.')\
                   && window.__parley.includes('open')",
            )
            .await;
            chat_id
        }
    })
    .await;
    let Some(chat_id) = first else { return };

    // Another browser (a fresh profile: nothing stored) of the same user.
    with_browser(|b| {
        let url = &url;
        async move {
            open_widget(&b, url).await;
            b.wait_for_message(question, true).await;
            b.wait_for_message("It left the warehouse today.", true)
                .await;
        }
    })
    .await;
    // A fresh connection: the pooled one idled past the server's keep-alive meanwhile.
    let api = crate::client::ApiClient::new(app.address.clone());
    let visitors: Vec<Value> = api.chats(&admin, "all").await.assert_status(200)["chats"]
        .as_array()
        .expect("chats")
        .iter()
        .map(|c| c["visitor"]["id"].clone())
        .collect();
    assert_eq!(visitors.len(), 1, "one visitor, one chat: {visitors:?}");
    assert_eq!(
        api.chat(&admin, &chat_id).await["visitor"]["external_id"],
        "42"
    );
    drop(host);
}

#[tokio::test]
async fn the_visitor_rates_the_chat_with_a_click_once_it_is_closed() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let question = "Can I change my delivery address?";
    with_browser(|b| {
        let (app, admin) = (&app, &admin);
        async move {
            visitor_sends(&b, &app.url("/"), question).await;
            let none = b
                .js(
                    "return document.querySelectorAll('[data-rating]').length",
                    vec![],
                )
                .await;
            assert_eq!(none, json!(0), "no rating while the chat is open");

            let chat_id = chat_with_last(app, admin, question).await["id"]
                .as_str()
                .expect("an id")
                .to_owned();
            app.patch_chat(admin, &chat_id, json!({"status": "closed"}))
                .await
                .assert_status(200);
            b.eventually(
                "the five rating buttons appear",
                "const all = [...document.querySelectorAll('[data-rating]')];\
                 return all.length === 5 && all.every((el) => el.offsetParent !== null)\
                   && all.map((el) => el.dataset.rating).join() === '1,2,3,4,5'",
            )
            .await;
            b.wait_for_css("textarea[name=rating-comment]")
                .await
                .send_keys("Quick answer, thanks")
                .await
                .expect("type a comment");
            b.click(r#"[data-rating="4"]"#).await;
            b.eventually(
                "a thank-you replaces the buttons",
                "return document.querySelector('[data-rating-thanks]')?.textContent.length > 0\
                   && document.querySelectorAll('[data-rating]').length === 0",
            )
            .await;
            let chat = app.chat(admin, &chat_id).await;
            assert_eq!(
                chat["rating"],
                json!({"rating": 4, "comment": "Quick answer, thanks"})
            );
            // After a reload the rated chat asks nothing more.
            b.client.refresh().await.expect("reload");
            b.wait_for_message(question, true).await;
            let asked = b
                .js(
                    "return document.querySelectorAll('[data-rating]').length",
                    vec![],
                )
                .await;
            assert_eq!(asked, json!(0));
        }
    })
    .await;
}
