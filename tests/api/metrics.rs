//! `GET /metrics`: Prometheus text that counts what the server did, and leaks nothing.

use std::collections::HashMap;

use crate::helpers::{act_while_held, spawn_app, TestApp};

/// Sums the samples of `name` whose labels include all of `labels`.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, label_text) = match series.split_once('{') {
                Some((metric, rest)) => (metric, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if metric != name {
                return None;
            }
            let found: HashMap<&str, &str> = label_text
                .split(',')
                .filter_map(|pair| pair.split_once('='))
                .map(|(k, v)| (k, v.trim_matches('"')))
                .collect();
            labels
                .iter()
                .all(|(k, v)| found.get(k) == Some(v))
                .then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

async fn scrape(app: &TestApp) -> String {
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    response.text().await.unwrap()
}

#[tokio::test]
async fn metrics_count_messages_wakeups_and_requests_by_route() {
    let app = spawn_app().await;
    let chat = app.new_visitor_chat().await;
    let agent = app.admin_token().await;
    let before = scrape(&app).await;

    let (poll, sent, _) = act_while_held(
        app.poll(&chat.token, &chat.chat_id, 0, 20),
        app.send(&agent, &chat.chat_id, "a secret body text", None),
    )
    .await;
    sent.assert_status(201);
    assert_eq!(
        poll.assert_status(200)["messages"][0]["body"],
        "a secret body text"
    );
    let after = scrape(&app).await;

    let grew = |name: &str, labels: &[(&str, &str)]| {
        sample(&after, name, labels) >= sample(&before, name, labels) + 1.0
    };
    assert!(grew("parley_messages_total", &[("sender", "agent")]));
    assert!(grew(
        "parley_poll_wakeups_total",
        &[("kind", "message"), ("reason", "change")]
    ));
    assert!(grew(
        "parley_http_requests_total",
        &[
            ("route", "/api/v1/chats/{id}/messages"),
            ("method", "POST"),
            ("status", "201")
        ]
    ));
    assert!(grew(
        "parley_http_request_duration_seconds_count",
        &[("route", "/api/v1/chats/{id}/messages")]
    ));
    assert!(grew("parley_db_write_batch_size_count", &[]));
    assert!(grew("parley_db_write_transaction_seconds_count", &[]));
    assert!(sample(&after, "parley_db_size_bytes", &[]) > 0.0);
    assert!(after.contains("parley_held_polls"));

    // Route patterns, not paths: no chat id, token or message text gets into the output.
    assert!(!after.contains(&chat.chat_id));
    assert!(!after.contains(&chat.token));
    assert!(!after.contains("a secret body text"));
}

#[tokio::test]
async fn unknown_paths_share_one_series() {
    let app = spawn_app().await;
    for i in 0..3 {
        app.call("GET", &format!("/no/such/path/{i}"), None, None)
            .await
            .assert_error(404, "not_found");
    }
    let text = scrape(&app).await;
    assert!(!text.contains("/no/such/path"));
    assert!(
        sample(
            &text,
            "parley_http_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        ) >= 3.0
    );
}

#[tokio::test]
async fn a_timed_out_poll_is_counted_as_a_timeout() {
    let app = spawn_app().await;
    let chat = app.new_visitor_chat().await;
    let labels = [("kind", "message"), ("reason", "timeout")];
    let before = sample(&scrape(&app).await, "parley_poll_wakeups_total", &labels);
    app.poll(&chat.token, &chat.chat_id, 0, 1)
        .await
        .assert_status(200);
    let after = sample(&scrape(&app).await, "parley_poll_wakeups_total", &labels);
    assert!(after >= before + 1.0);
}
