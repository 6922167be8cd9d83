//! Agents' availability and presence: `online`/`away` as an agent sets it, and present only
//! while it also makes requests; what `GET /api/v1/config` says of it.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, TestApp};

async fn config(app: &TestApp) -> Value {
    app.call("GET", "/api/v1/config", None, None)
        .await
        .assert_status(200)
        .clone()
}

/// Polls the public config until `online` is `expected` (the status may be a second old).
pub async fn wait_for_online(app: &TestApp, expected: bool, within: Duration) {
    let started = Instant::now();
    loop {
        let online = config(app).await["online"].as_bool().unwrap();
        if online == expected {
            return;
        }
        assert!(
            started.elapsed() < within,
            "config.online stayed {online} for {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn set_availability(app: &TestApp, token: &str, availability: &str) -> Value {
    app.call(
        "PATCH",
        "/api/v1/agents/me",
        Some(token),
        Some(json!({ "availability": availability })),
    )
    .await
    .assert_status(200)["agent"]
        .clone()
}

#[tokio::test]
async fn agents_start_online_and_switch_themselves_away_and_back() {
    let app = spawn_app_with(|_| {}).await;
    let admin = app.admin_token().await;
    let (agent, agent_id) = app.new_agent(&admin, "ann@example.com").await;
    let me = app
        .call("GET", "/api/v1/agents/me", Some(&agent), None)
        .await;
    assert_eq!(me.assert_status(200)["agent"]["availability"], "online");

    let away = set_availability(&app, &agent, "away").await;
    assert_eq!(away["availability"], "away");
    assert_eq!(away["id"], agent_id.as_str());
    let listed = app.call("GET", "/api/v1/agents", Some(&admin), None).await;
    let ann = listed.assert_status(200)["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == agent_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(ann["availability"], "away");

    // An empty change changes nothing; a bad value is refused and changes nothing either.
    let same = app
        .call("PATCH", "/api/v1/agents/me", Some(&agent), Some(json!({})))
        .await;
    assert_eq!(same.assert_status(200)["agent"]["availability"], "away");
    for bad in [json!({"availability": "busy"}), json!({"availability": 1})] {
        app.call("PATCH", "/api/v1/agents/me", Some(&agent), Some(bad))
            .await
            .assert_error(400, "bad_request");
    }
    assert_eq!(
        set_availability(&app, &agent, "online").await["availability"],
        "online"
    );
    // Only the agent itself: its availability is not an admin's to set.
    let (visitor, _) = app.new_visitor().await;
    app.call(
        "PATCH",
        "/api/v1/agents/me",
        Some(&visitor),
        Some(json!({"availability": "away"})),
    )
    .await
    .assert_error(403, "forbidden");
}

#[tokio::test]
async fn the_team_is_online_only_while_an_online_agent_makes_requests() {
    let app = spawn_app_with(|c| c.presence_window = 2).await;
    let admin = app.admin_token().await;
    let (agent, _) = app.new_agent(&admin, "ann@example.com").await;
    // The admin's request above made it present; let it lapse.
    set_availability(&app, &admin, "away").await;
    wait_for_online(&app, false, Duration::from_secs(5)).await;
    let first = config(&app).await;
    assert_eq!(first["open_now"], true, "no business hours: always open");
    assert_eq!(first["next_open_at"], Value::Null);

    // A request of an online agent makes the team online.
    app.call("GET", "/api/v1/agents/me", Some(&agent), None)
        .await
        .assert_status(200);
    wait_for_online(&app, true, Duration::from_secs(2)).await;

    // Switching away takes it offline at once (within the status's second).
    set_availability(&app, &agent, "away").await;
    wait_for_online(&app, false, Duration::from_secs(2)).await;
    set_availability(&app, &agent, "online").await;
    wait_for_online(&app, true, Duration::from_secs(2)).await;

    // An agent that makes no request stops counting after the window (2 s here).
    let quiet = Instant::now();
    wait_for_online(&app, false, Duration::from_secs(6)).await;
    assert!(
        quiet.elapsed() >= Duration::from_millis(1000),
        "went away after {:?}, before the window",
        quiet.elapsed()
    );

    // A disabled agent is never present, whatever it did last.
    app.call("GET", "/api/v1/agents/me", Some(&agent), None)
        .await
        .assert_status(200);
    wait_for_online(&app, true, Duration::from_secs(2)).await;
    let me = app
        .call("GET", "/api/v1/agents/me", Some(&agent), None)
        .await;
    let id = me.assert_status(200)["agent"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.call(
        "PATCH",
        &format!("/api/v1/agents/{id}"),
        Some(&admin),
        Some(json!({"disabled": true})),
    )
    .await
    .assert_status(200);
    set_availability(&app, &admin, "away").await;
    wait_for_online(&app, false, Duration::from_secs(2)).await;
}

#[tokio::test]
async fn an_open_inbox_keeps_its_agent_present() {
    // The inbox re-issues its long poll: each poll is a request.
    let app = spawn_app_with(|c| {
        c.presence_window = 3;
        c.poll_timeout = 1;
    })
    .await;
    let admin = app.admin_token().await;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        app.inbox(&admin, 0, 1).await.assert_status(200);
        assert_eq!(config(&app).await["online"], true);
    }
}
