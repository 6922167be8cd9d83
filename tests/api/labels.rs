//! Labels on chats (the agents' own: a visitor never sees them), the label filter, and a
//! returning visitor's history (`?visitor_id=`).

use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, TestApp};
use crate::operations::cli;
use crate::webhooks::{create_webhook, Receiver};

async fn set_labels(app: &TestApp, token: &str, chat_id: &str, labels: Value) -> Value {
    let reply = app
        .patch_chat(token, chat_id, json!({ "labels": labels }))
        .await;
    reply.assert_status(200)["chat"].clone()
}

async fn list(app: &TestApp, token: &str, query: &str) -> Vec<String> {
    let reply = app
        .call("GET", &format!("/api/v1/chats?{query}"), Some(token), None)
        .await;
    reply.assert_status(200)["chats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn labels_are_replaced_as_a_set_and_kept_by_other_changes() {
    let app = spawn_app().await;
    let agent = app.admin_token().await;
    let chat = app.new_visitor_chat().await;
    assert_eq!(app.chat(&agent, &chat.chat_id).await["labels"], json!([]));

    let chat_json = set_labels(
        &app,
        &agent,
        &chat.chat_id,
        json!(["vip", " billing ", "vip", "Émile"]),
    )
    .await;
    assert_eq!(chat_json["labels"], json!(["billing", "vip", "Émile"]));
    assert_eq!(
        app.chat(&agent, &chat.chat_id).await["labels"],
        json!(["billing", "vip", "Émile"])
    );

    // A change without `labels` leaves them.
    app.patch_chat(&agent, &chat.chat_id, json!({"status": "closed"}))
        .await
        .assert_status(200);
    app.patch_chat(&agent, &chat.chat_id, json!({}))
        .await
        .assert_status(200);
    assert_eq!(
        app.chat(&agent, &chat.chat_id).await["labels"],
        json!(["billing", "vip", "Émile"])
    );

    // `labels` replaces the whole set; `[]` clears it.
    let replaced = set_labels(&app, &agent, &chat.chat_id, json!(["refund"])).await;
    assert_eq!(replaced["labels"], json!(["refund"]));
    let cleared = set_labels(&app, &agent, &chat.chat_id, json!([])).await;
    assert_eq!(cleared["labels"], json!([]));

    // Each effective label change appends a private `labeled` event; the rest append none
    // of their own.
    let page = app.messages(&agent, &chat.chat_id, 0, 100).await;
    let events: Vec<(Value, Value, Value)> = page.assert_status(200)["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["event"].clone(), m["private"].clone(), m["body"].clone()))
        .collect();
    let me = app
        .call("GET", "/api/v1/agents/me", Some(&agent), None)
        .await;
    let admin = me.assert_status(200)["agent"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        events,
        [
            (
                json!("labeled"),
                json!(true),
                json!(format!("{admin} added billing, vip, Émile"))
            ),
            (
                json!("closed"),
                json!(false),
                json!(format!("Chat closed by {admin}"))
            ),
            (
                json!("labeled"),
                json!(true),
                json!(format!(
                    "{admin} added refund and removed billing, vip, Émile"
                ))
            ),
            (
                json!("labeled"),
                json!(true),
                json!(format!("{admin} removed refund"))
            ),
        ]
    );
    // The visitor sees none of them.
    let visitor_page = app.messages(&chat.token, &chat.chat_id, 0, 100).await;
    let visitor_events: Vec<Value> = visitor_page.assert_status(200)["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["event"].clone())
        .collect();
    assert_eq!(visitor_events, [json!("closed")]);

    // Labels and a status change in one request.
    let both = app
        .patch_chat(
            &agent,
            &chat.chat_id,
            json!({"status": "open", "labels": ["returning"]}),
        )
        .await;
    let both = both.assert_status(200);
    assert_eq!(both["chat"]["status"], "open");
    assert_eq!(both["chat"]["labels"], json!(["returning"]));
}

#[tokio::test]
async fn a_label_change_wakes_another_agents_held_inbox_poll() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (other, _) = app.new_agent(&admin, "other@example.com").await;
    let chat = app.new_visitor_chat().await;
    let head = app.inbox(&other, 0, 0).await.assert_status(200)["next"]
        .as_i64()
        .unwrap();

    // Held for up to 20 s: a poll that was not woken would answer with no chats.
    let (answer, ()) = tokio::join!(app.inbox(&other, head, 20), async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        set_labels(&app, &admin, &chat.chat_id, json!(["urgent"])).await;
    });
    let answer = answer.assert_status(200);
    let chats = answer["chats"].as_array().unwrap();
    assert_eq!(chats.len(), 1);
    assert_eq!(chats[0]["id"], chat.chat_id.as_str());
    assert_eq!(chats[0]["labels"], json!(["urgent"]));
    assert!(answer["next"].as_i64().unwrap() > head);

    // The same set again is no change: no event, nothing to wake for.
    set_labels(&app, &admin, &chat.chat_id, json!(["urgent"])).await;
    let next = answer["next"].as_i64().unwrap();
    let quiet = app.inbox(&other, next, 0).await;
    assert_eq!(quiet.assert_status(200)["chats"], json!([]));
}

#[tokio::test]
async fn invalid_labels_are_a_bad_request_and_change_nothing() {
    let app = spawn_app().await;
    let agent = app.admin_token().await;
    let chat = app.new_visitor_chat().await;
    set_labels(&app, &agent, &chat.chat_id, json!(["keep"])).await;

    let twenty_one: Vec<String> = (0..21).map(|i| format!("label-{i}")).collect();
    let invalid = [
        json!({"labels": twenty_one}),
        json!({"labels": ["x".repeat(33)]}),
        json!({"labels": [""]}),
        json!({"labels": ["   "]}),
        json!({"labels": ["two\nlines"]}),
        json!({"labels": ["tab\there"]}),
        json!({"labels": ["nul\u{0}"]}),
        json!({"labels": ["\u{202E}piv"]}),
        json!({"labels": ["ok", "é".repeat(33)]}),
        json!({"labels": "vip"}),
        json!({"labels": [5]}),
        json!({"labels": null, "status": "closed"}),
    ];
    for body in invalid {
        let reply = app.patch_chat(&agent, &chat.chat_id, body.clone()).await;
        if body["labels"].is_null() {
            // `null` is no change at all: the status change goes through.
            reply.assert_status(200);
            continue;
        }
        reply.assert_error(400, "bad_request");
    }
    assert_eq!(
        app.chat(&agent, &chat.chat_id).await["labels"],
        json!(["keep"])
    );

    // The limits themselves are allowed: 20 labels of 32 characters (after trimming).
    let twenty: Vec<String> = (0..20)
        .map(|i| format!(" {:0>32} ", i.to_string()))
        .collect();
    let chat_json = set_labels(&app, &agent, &chat.chat_id, json!(twenty)).await;
    let labels = chat_json["labels"].as_array().unwrap();
    assert_eq!(labels.len(), 20);
    assert!(labels.iter().all(|l| l.as_str().unwrap().len() == 32));
    // Duplicates count once: 21 names of which two are the same make 20.
    let mut with_duplicate: Vec<String> = (0..20).map(|i| format!("l{i}")).collect();
    with_duplicate.push("l0".into());
    let chat_json = set_labels(&app, &agent, &chat.chat_id, json!(with_duplicate)).await;
    assert_eq!(chat_json["labels"].as_array().unwrap().len(), 20);
}

#[tokio::test]
async fn chats_are_listed_by_label() {
    let app = spawn_app().await;
    let agent = app.admin_token().await;
    let vip = app.new_visitor_chat().await;
    let other = app.new_visitor_chat().await;
    let closed_vip = app.new_visitor_chat().await;
    set_labels(&app, &agent, &vip.chat_id, json!(["vip", "billing"])).await;
    set_labels(&app, &agent, &other.chat_id, json!(["billing"])).await;
    set_labels(&app, &agent, &closed_vip.chat_id, json!(["vip"])).await;
    app.patch_chat(&agent, &closed_vip.chat_id, json!({"status": "closed"}))
        .await
        .assert_status(200);

    assert_eq!(
        list(&app, &agent, "label=vip").await,
        [vip.chat_id.as_str()]
    );
    let mut all_vip = list(&app, &agent, "label=vip&status=all").await;
    all_vip.sort();
    let mut expected = vec![vip.chat_id.clone(), closed_vip.chat_id.clone()];
    expected.sort();
    assert_eq!(all_vip, expected);
    assert_eq!(
        list(&app, &agent, "label=billing").await.len(),
        2,
        "both open billing chats"
    );
    assert_eq!(
        list(&app, &agent, "label=%20vip%20").await,
        [vip.chat_id.as_str()],
        "the filter is trimmed like a label"
    );
    assert!(
        list(&app, &agent, "label=VIP").await.is_empty(),
        "case counts"
    );
    assert!(list(&app, &agent, "label=nobody").await.is_empty());
    assert_eq!(list(&app, &agent, "status=open").await.len(), 2);

    let too_long = "x".repeat(33);
    for query in [
        "label=",
        "label=%20",
        &format!("label={too_long}"),
        "label=a%0Ab",
    ] {
        app.call("GET", &format!("/api/v1/chats?{query}"), Some(&agent), None)
            .await
            .assert_error(400, "bad_request");
    }
}

#[tokio::test]
async fn labels_appear_wherever_agents_see_the_chat_and_never_to_its_visitor() {
    let app = spawn_app_with(|c| {
        c.webhook_retry_base_ms = 10;
        c.webhook_allow_private = true;
    })
    .await;
    let agent = app.admin_token().await;
    let receiver = Receiver::start(0).await;
    create_webhook(&app, &agent, &receiver.url, &["chat.created"]).await;
    let chat = app.new_visitor_chat().await;
    let created = receiver.wait_for(1).await;
    let payload: Value = created[0].json();
    assert_eq!(payload["chat"]["labels"], json!([]));

    let sent = app.send(&chat.token, &chat.chat_id, "hello", None).await;
    let seq = sent.assert_status(201)["message"]["seq"].as_i64().unwrap();
    set_labels(&app, &agent, &chat.chat_id, json!(["angry", "vip"])).await;
    let labels = json!(["angry", "vip"]);

    // The agents' views.
    assert_eq!(app.chat(&agent, &chat.chat_id).await["labels"], labels);
    let listed = app.chats(&agent, "open").await;
    assert_eq!(listed.assert_status(200)["chats"][0]["labels"], labels);
    let inbox = app.inbox(&agent, 0, 0).await;
    assert_eq!(inbox.assert_status(200)["chats"][0]["labels"], labels);
    let poll = app.poll(&agent, &chat.chat_id, 0, 0).await;
    assert_eq!(poll.assert_status(200)["chat"]["labels"], labels);

    // The visitor's views.
    assert_eq!(
        app.chat(&chat.token, &chat.chat_id).await["labels"],
        json!([])
    );
    let mine = app
        .call("GET", "/api/v1/chats/mine", Some(&chat.token), None)
        .await;
    assert_eq!(mine.assert_status(200)["chat"]["labels"], json!([]));
    let poll = app.poll(&chat.token, &chat.chat_id, 0, 0).await;
    let poll = poll.assert_status(200);
    assert_eq!(poll["chat"]["labels"], json!([]));
    assert!(!poll.to_string().contains("angry"));
    let open = app.create_chat(&chat.token).await;
    assert_eq!(open.assert_status(200)["chat"]["labels"], json!([]));

    // A poll answered by a handed-over message: the visitor still sees none.
    let (poll, sent, _) = crate::helpers::act_while_held(
        app.poll(&chat.token, &chat.chat_id, seq, 20),
        app.send(&agent, &chat.chat_id, "hi", None),
    )
    .await;
    sent.assert_status(201);
    let poll = poll.assert_status(200);
    assert_eq!(poll["messages"][0]["body"], "hi");
    assert_eq!(poll["chat"]["labels"], json!([]));

    // The CLI's export and stats (run beside the server: each sees what it committed).
    let (ok, exported) = cli(
        &app,
        &["chats", "export", &chat.chat_id, "--format", "json"],
    );
    assert!(ok, "{exported}");
    let exported: Value = serde_json::from_str(&exported).unwrap();
    assert_eq!(exported["chat"]["labels"], labels);
    let second = app.new_visitor_chat().await;
    let second_json = set_labels(&app, &agent, &second.chat_id, json!(["vip"])).await;
    assert_eq!(second_json["labels"], json!(["vip"]));
    assert_eq!(list(&app, &agent, "label=vip").await.len(), 2);
    let (ok, stats) = cli(&app, &["stats"]);
    assert!(ok, "{stats}");
    let stats: Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(stats["labels"], json!({"angry": 1, "vip": 2}));
}

#[tokio::test]
async fn agents_list_a_returning_visitors_earlier_chats() {
    let app = spawn_app().await;
    let agent = app.admin_token().await;
    let first = app.new_visitor_chat().await;
    app.send(&first.token, &first.chat_id, "first visit", None)
        .await
        .assert_status(201);
    app.patch_chat(&agent, &first.chat_id, json!({"status": "closed"}))
        .await
        .assert_status(200);
    // The same visitor comes back: a new chat.
    let second = app.create_chat(&first.token).await;
    let second_id = second.assert_status(201)["chat"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.send(&first.token, &second_id, "I am back", None)
        .await
        .assert_status(201);
    let stranger = app.new_visitor_chat().await;

    let query = format!("visitor_id={}", first.visitor_id);
    assert_eq!(
        list(&app, &agent, &query).await,
        [second_id.as_str(), first.chat_id.as_str()],
        "every status, most recent first"
    );
    assert_eq!(
        list(&app, &agent, &format!("{query}&status=closed")).await,
        [first.chat_id.as_str()]
    );
    assert_eq!(
        list(&app, &agent, &format!("{query}&status=open")).await,
        [second_id.as_str()]
    );
    assert_eq!(
        list(&app, &agent, &format!("visitor_id={}", stranger.visitor_id)).await,
        [stranger.chat_id.as_str()]
    );
    let unknown = "visitor_id=0190a000-0000-7000-8000-000000000000";
    assert!(list(&app, &agent, unknown).await.is_empty());
    app.call("GET", "/api/v1/chats?visitor_id=nobody", Some(&agent), None)
        .await
        .assert_error(400, "bad_request");
    set_labels(&app, &agent, &first.chat_id, json!(["vip"])).await;
    assert_eq!(
        list(&app, &agent, &format!("{query}&label=vip")).await,
        [first.chat_id.as_str()],
        "filters combine"
    );
    app.call("GET", "/api/v1/chats?visitor_id=a%00b", Some(&agent), None)
        .await
        .assert_error(400, "bad_request");

    // Visitors may not list chats, their own included.
    app.call(
        "GET",
        &format!("/api/v1/chats?{query}"),
        Some(&first.token),
        None,
    )
    .await
    .assert_error(403, "forbidden");
    // Labels are the agents': a visitor cannot set them.
    app.patch_chat(&first.token, &second_id, json!({"labels": ["mine"]}))
        .await
        .assert_error(403, "forbidden");
}
