//! The team's settings (business hours, away message, pre-chat form): admins only, checked
//! whole, and what the public config makes of them.

use serde_json::{json, Value};
use time::{Duration, OffsetDateTime};

use crate::helpers::{spawn_app, Reply, TestApp};

async fn put(app: &TestApp, token: &str, body: Value) -> Reply {
    app.call("PUT", "/api/v1/settings", Some(token), Some(body))
        .await
}

async fn get(app: &TestApp, token: &str) -> Value {
    app.call("GET", "/api/v1/settings", Some(token), None)
        .await
        .assert_status(200)["settings"]
        .clone()
}

async fn config(app: &TestApp) -> Value {
    app.call("GET", "/api/v1/config", None, None)
        .await
        .assert_status(200)
        .clone()
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn day_of(at: OffsetDateTime) -> &'static str {
    DAYS[at.weekday().number_days_from_monday() as usize]
}

#[tokio::test]
async fn settings_start_empty_and_admins_change_each_one_alone() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    assert_eq!(
        get(&app, &admin).await,
        json!({"business_hours": null, "away_message": null, "greeting": null,
               "translations": {},
               "prechat": {"ask_name": "optional", "ask_email": "optional"}})
    );

    let hours = json!({"timezone": "Europe/Berlin", "weekly": [
        {"day": "tue", "open": "13:00", "close": "17:00"},
        {"day": "mon", "open": "09:00", "close": "17:00"},
        {"day": "tue", "open": "09:00", "close": "12:00"},
    ]});
    let reply = put(
        &app,
        &admin,
        json!({"business_hours": hours, "away_message": "  We are away.  ",
               "prechat": {"ask_name": "off", "ask_email": "required"}}),
    )
    .await;
    let stored = reply.assert_status(200)["settings"].clone();
    assert_eq!(
        stored,
        json!({"business_hours": {"timezone": "Europe/Berlin", "weekly": [
                   {"day": "mon", "open": "09:00", "close": "17:00"},
                   {"day": "tue", "open": "09:00", "close": "12:00"},
                   {"day": "tue", "open": "13:00", "close": "17:00"},
               ]},
               "away_message": "We are away.", "greeting": null, "translations": {},
               "prechat": {"ask_name": "off", "ask_email": "required"}}),
        "sorted and trimmed as stored"
    );
    assert_eq!(get(&app, &admin).await, stored);

    // A field left out stays; `null` removes.
    let reply = put(&app, &admin, json!({"away_message": "Back at nine."})).await;
    let changed = reply.assert_status(200)["settings"].clone();
    assert_eq!(changed["business_hours"], stored["business_hours"]);
    assert_eq!(changed["away_message"], "Back at nine.");
    let reply = put(
        &app,
        &admin,
        json!({"business_hours": null, "away_message": ""}),
    )
    .await;
    let cleared = reply.assert_status(200)["settings"].clone();
    assert_eq!(cleared["business_hours"], Value::Null);
    assert_eq!(cleared["away_message"], Value::Null);
    assert_eq!(cleared["prechat"]["ask_email"], "required");

    let public = config(&app).await;
    assert_eq!(
        public["prechat"],
        json!({"ask_name": "off", "ask_email": "required"})
    );
}

#[tokio::test]
async fn only_admins_read_and_change_the_settings() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (agent, _) = app.new_agent(&admin, "ann@example.com").await;
    let (visitor, _) = app.new_visitor().await;
    let body = json!({"away_message": "nope"});
    for token in [Some(agent.as_str()), Some(visitor.as_str())] {
        app.call("GET", "/api/v1/settings", token, None)
            .await
            .assert_error(403, "forbidden");
        put_as(&app, token, body.clone())
            .await
            .assert_error(403, "forbidden");
    }
    put_as(&app, None, body)
        .await
        .assert_error(401, "unauthorized");
    assert_eq!(get(&app, &admin).await["away_message"], Value::Null);
}

async fn put_as(app: &TestApp, token: Option<&str>, body: Value) -> Reply {
    app.call("PUT", "/api/v1/settings", token, Some(body)).await
}

fn hours(timezone: &str, weekly: Value) -> Value {
    json!({"business_hours": {"timezone": timezone, "weekly": weekly}})
}

#[tokio::test]
async fn bad_settings_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let interval =
        |day: &str, open: &str, close: &str| json!({"day": day, "open": open, "close": close});
    let invalid = [
        hours("Mars/Olympus_Mons", json!([])),
        hours("", json!([])),
        hours(&"Europe/Berlin".repeat(6), json!([])),
        hours("UTC", json!([interval("monday", "09:00", "17:00")])),
        hours("UTC", json!([interval("mon", "9:00", "17:00")])),
        hours("UTC", json!([interval("mon", "09:00", "24:01")])),
        hours("UTC", json!([interval("mon", "17:00", "09:00")])),
        hours("UTC", json!([interval("mon", "09:00", "09:00")])),
        hours(
            "UTC",
            json!([
                interval("mon", "09:00", "12:00"),
                interval("mon", "11:59", "17:00")
            ]),
        ),
        hours(
            "UTC",
            Value::Array(vec![interval("mon", "09:00", "09:01"); 29]),
        ),
        json!({"away_message": "x".repeat(501)}),
        json!({"away_message": "bell\u{7}"}),
    ];
    for body in invalid {
        put(&app, &admin, body.clone())
            .await
            .assert_error(422, "invalid");
    }
    let malformed = [
        json!({"business_hours": {"timezone": "UTC"}}),
        json!({"business_hours": {"timezone": "UTC", "weekly": [{"day": "mon", "open": "09:00"}]}}),
        json!({"business_hours": {"timezone": "UTC", "weekly": [], "extra": 1}}),
        json!({"business_hours": "always"}),
        json!({"away_message": 5}),
        json!({"prechat": {"ask_name": "sometimes"}}),
        json!({"prechat": {"ask_phone": "required"}}),
        json!([]),
    ];
    for body in malformed {
        put(&app, &admin, body.clone())
            .await
            .assert_error(400, "bad_request");
    }
    assert_eq!(
        get(&app, &admin).await,
        json!({"business_hours": null, "away_message": null, "greeting": null,
               "translations": {},
               "prechat": {"ask_name": "optional", "ask_email": "optional"}})
    );
}

#[tokio::test]
async fn outside_business_hours_the_config_says_closed_and_when_the_team_is_back() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    // Going online counts as a request: the admin is present.
    app.call(
        "PATCH",
        "/api/v1/agents/me",
        Some(&admin),
        Some(json!({"availability": "online"})),
    )
    .await
    .assert_status(200);
    assert_eq!(config(&app).await["online"], true);

    // One minute, the day after tomorrow (UTC): certainly closed now, whatever the time.
    let later = OffsetDateTime::now_utc() + Duration::days(2);
    let body = json!({
        "business_hours": {"timezone": "UTC",
                           "weekly": [{"day": day_of(later), "open": "12:00", "close": "12:01"}]},
        "away_message": "We're out. Leave your email.",
    });
    put(&app, &admin, body).await.assert_status(200);
    let closed = config(&app).await;
    assert_eq!(closed["open_now"], false);
    assert_eq!(
        closed["online"], false,
        "an agent is there, but it is closed"
    );
    let expected = format!(
        "{:04}-{:02}-{:02}T12:00:00.000Z",
        later.year(),
        u8::from(later.month()),
        later.day()
    );
    assert_eq!(closed["next_open_at"], expected.as_str());
    assert_eq!(closed["away_message"], "We're out. Leave your email.");

    // A week with no hours: never open, no next opening.
    put(&app, &admin, hours("UTC", json!([])))
        .await
        .assert_status(200);
    let never = config(&app).await;
    assert_eq!(never["open_now"], false);
    assert_eq!(never["next_open_at"], Value::Null);

    // Every day, all day, in a zone far from UTC: open now, and online with the agent.
    let always: Vec<Value> = DAYS
        .iter()
        .map(|d| json!({"day": d, "open": "00:00", "close": "24:00"}))
        .collect();
    put(
        &app,
        &admin,
        hours("Pacific/Kiritimati", Value::Array(always)),
    )
    .await
    .assert_status(200);
    let open = config(&app).await;
    assert_eq!(open["open_now"], true);
    assert_eq!(open["next_open_at"], Value::Null);
    assert_eq!(open["online"], true);
}
