//! Satisfaction: a visitor rates its closed chat once; agents see the rating in the chat,
//! and `parley stats` and `/metrics` give each agent's count and average.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp, VisitorChat};
use crate::operations::cli;

async fn rate(app: &TestApp, token: &str, chat_id: &str, body: Value) -> crate::helpers::Reply {
    app.call(
        "POST",
        &format!("/api/v1/chats/{chat_id}/rating"),
        Some(token),
        Some(body),
    )
    .await
}

/// A visitor chat assigned to `agent_id` and closed.
async fn closed_chat(app: &TestApp, admin: &str, agent_id: Option<&str>) -> VisitorChat {
    let chat = app.new_visitor_chat().await;
    app.send(&chat.token, &chat.chat_id, "help", None)
        .await
        .assert_status(201);
    if let Some(agent_id) = agent_id {
        app.patch_chat(admin, &chat.chat_id, json!({"assignee_id": agent_id}))
            .await
            .assert_status(200);
    }
    app.patch_chat(admin, &chat.chat_id, json!({"status": "closed"}))
        .await
        .assert_status(200);
    chat
}

#[tokio::test]
async fn a_visitor_rates_its_closed_chat_once() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let open = app.new_visitor_chat().await;
    rate(&app, &open.token, &open.chat_id, json!({"rating": 5}))
        .await
        .assert_error(409, "conflict");

    let chat = closed_chat(&app, &admin, None).await;
    for bad in [
        json!({"rating": 0}),
        json!({"rating": 6}),
        json!({"rating": 5, "comment": "é".repeat(1001)}),
    ] {
        rate(&app, &chat.token, &chat.chat_id, bad)
            .await
            .assert_error(422, "invalid");
    }
    for bad in [json!({}), json!({"rating": "five"}), json!({"rating": 4.5})] {
        rate(&app, &chat.token, &chat.chat_id, bad)
            .await
            .assert_error(400, "bad_request");
    }
    rate(&app, &admin, &chat.chat_id, json!({"rating": 5}))
        .await
        .assert_error(403, "forbidden");
    rate(&app, &open.token, &chat.chat_id, json!({"rating": 5}))
        .await
        .assert_error(404, "not_found");

    let comment = "é".repeat(1000);
    let rated = rate(
        &app,
        &chat.token,
        &chat.chat_id,
        json!({"rating": 5, "comment": comment}),
    )
    .await;
    assert_eq!(
        rated.assert_status(201)["rating"],
        json!({"rating": 5, "comment": comment})
    );
    rate(&app, &chat.token, &chat.chat_id, json!({"rating": 1}))
        .await
        .assert_error(409, "conflict");

    let seen_by_agent = app.chat(&admin, &chat.chat_id).await;
    assert_eq!(seen_by_agent["rating"]["rating"], 5);
    let seen_by_visitor = app.chat(&chat.token, &chat.chat_id).await;
    assert_eq!(seen_by_visitor["rating"]["rating"], 5);
    assert_eq!(app.chat(&admin, &open.chat_id).await["rating"], Value::Null);
}

/// The value of the metric line `name{agent="agent"}`, if present.
fn metric(text: &str, name: &str, agent: &str) -> Option<f64> {
    let prefix = format!("{name}{{agent=\"{agent}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test]
async fn stats_and_metrics_give_each_agents_count_and_average() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (_, ann_id) = app.new_agent(&admin, "ann-rated@example.com").await;
    let (_, bob_id) = app.new_agent(&admin, "bob-rated@example.com").await;
    for (agent, stars) in [(&ann_id, 4), (&ann_id, 2), (&bob_id, 5)] {
        let chat = closed_chat(&app, &admin, Some(agent)).await;
        rate(&app, &chat.token, &chat.chat_id, json!({"rating": stars}))
            .await
            .assert_status(201);
    }
    // Reassigned after the rating: the rating stays with whoever had the chat.
    let chat = closed_chat(&app, &admin, Some(&bob_id)).await;
    rate(&app, &chat.token, &chat.chat_id, json!({"rating": 1}))
        .await
        .assert_status(201);
    app.patch_chat(&admin, &chat.chat_id, json!({"assignee_id": ann_id}))
        .await
        .assert_status(200);

    let (ok, text) = cli(&app, &["stats"]);
    assert!(ok, "{text}");
    let stats: Value = serde_json::from_str(&text).unwrap();
    let ratings = &stats["ratings"];
    assert_eq!(ratings["count"], 4);
    assert_eq!(ratings["average"], 3.0);
    let by_agent = ratings["by_agent"].as_array().unwrap();
    let of = |email: &str| {
        by_agent
            .iter()
            .find(|a| a["agent_email"] == email)
            .unwrap_or_else(|| panic!("{email} in {by_agent:?}"))
            .clone()
    };
    assert_eq!(of("ann-rated@example.com")["count"], 2);
    assert_eq!(of("ann-rated@example.com")["average"], 3.0);
    assert_eq!(of("bob-rated@example.com")["count"], 2);
    assert_eq!(of("bob-rated@example.com")["average"], 3.0);

    // The registry is the process's, shared with other tests' apps: look until this app's
    // own scrape is the one read.
    let started = Instant::now();
    loop {
        let scrape = app.client.get(app.url("/metrics")).send().await.unwrap();
        let text = scrape.text().await.unwrap();
        let ann = (
            metric(&text, "parley_chat_ratings", "ann-rated@example.com"),
            metric(&text, "parley_chat_rating_average", "ann-rated@example.com"),
        );
        if ann == (Some(2.0), Some(3.0)) {
            assert_eq!(
                metric(&text, "parley_chat_ratings", "bob-rated@example.com"),
                Some(2.0)
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{ann:?} in\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
