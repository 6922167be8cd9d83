//! Canned responses: agents read them, admins write them; shortcuts are checked and unique.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, Reply, TestApp};

async fn create(app: &TestApp, token: &str, shortcut: &str, body: &str) -> Reply {
    app.call(
        "POST",
        "/api/v1/canned",
        Some(token),
        Some(json!({"shortcut": shortcut, "body": body})),
    )
    .await
}

async fn list(app: &TestApp, token: &str) -> Value {
    app.call("GET", "/api/v1/canned", Some(token), None)
        .await
        .assert_status(200)
        .clone()
}

fn shortcuts(list: &Value) -> Vec<&str> {
    list["canned"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["shortcut"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn admins_create_change_and_delete_canned_responses_that_agents_read_by_shortcut() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (agent, _) = app.new_agent(&admin, "agent@example.com").await;
    assert_eq!(list(&app, &agent).await, json!({"canned": []}));

    let body = "Hi {{visitor.name}} ({{visitor.email}}), {{agent.name}} here.";
    let created = create(&app, &admin, "thanks", body).await;
    let canned = created.assert_status(201)["canned"].clone();
    let id = canned["id"].as_str().unwrap().to_string();
    assert_eq!(
        canned,
        json!({"id": id, "shortcut": "thanks", "body": body})
    );
    for shortcut in ["refund", "a-1", "a_1", "zz"] {
        create(&app, &admin, shortcut, "text")
            .await
            .assert_status(201);
    }
    let all = list(&app, &agent).await;
    assert_eq!(shortcuts(&all), ["a-1", "a_1", "refund", "thanks", "zz"]);
    assert_eq!(
        all["canned"][3], canned,
        "stored as written, placeholders kept"
    );

    let path = format!("/api/v1/canned/{id}");
    let renamed = app
        .call(
            "PATCH",
            &path,
            Some(&admin),
            Some(json!({"shortcut": "ty"})),
        )
        .await;
    assert_eq!(
        renamed.assert_status(200)["canned"],
        json!({"id": id, "shortcut": "ty", "body": body})
    );
    let rewritten = app
        .call(
            "PATCH",
            &path,
            Some(&admin),
            Some(json!({"body": "  Thank you!\n"})),
        )
        .await;
    assert_eq!(
        rewritten.assert_status(200)["canned"],
        json!({"id": id, "shortcut": "ty", "body": "  Thank you!\n"})
    );
    let unchanged = app
        .call("PATCH", &path, Some(&admin), Some(json!({})))
        .await;
    assert_eq!(unchanged.assert_status(200)["canned"]["shortcut"], "ty");

    app.call("DELETE", &path, Some(&admin), None)
        .await
        .assert_status(204);
    assert_eq!(
        shortcuts(&list(&app, &agent).await),
        ["a-1", "a_1", "refund", "zz"]
    );
    app.call("DELETE", &path, Some(&admin), None)
        .await
        .assert_error(404, "not_found");
    app.call("PATCH", &path, Some(&admin), Some(json!({"body": "x"})))
        .await
        .assert_error(404, "not_found");
}

#[tokio::test]
async fn shortcuts_are_one_to_32_lower_case_letters_digits_hyphens_or_underscores() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let longest = "x".repeat(32);
    create(&app, &admin, &longest, "ok")
        .await
        .assert_status(201);
    for bad in [
        "",
        "Refund",
        "re fund",
        "/refund",
        "déjà",
        "a.b",
        &"y".repeat(33),
    ] {
        create(&app, &admin, bad, "text")
            .await
            .assert_error(422, "invalid");
    }
    for bad_body in ["", "   \n", &"é".repeat(4001), "a\u{0}b"] {
        create(&app, &admin, "fine", bad_body)
            .await
            .assert_error(422, "invalid");
    }
    create(&app, &admin, "max", &"é".repeat(4000))
        .await
        .assert_status(201);
    app.call(
        "POST",
        "/api/v1/canned",
        Some(&admin),
        Some(json!({"shortcut": "nobody"})),
    )
    .await
    .assert_error(400, "bad_request");
    let id = create(&app, &admin, "patched", "text")
        .await
        .assert_status(201)["canned"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/api/v1/canned/{id}");
    for change in [json!({"shortcut": "Bad"}), json!({"body": " "})] {
        app.call("PATCH", &path, Some(&admin), Some(change))
            .await
            .assert_error(422, "invalid");
    }
    assert_eq!(
        shortcuts(&list(&app, &admin).await),
        ["max", "patched", longest.as_str()]
    );
}

#[tokio::test]
async fn a_shortcut_that_is_taken_is_a_conflict_on_create_and_on_change() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    create(&app, &admin, "hello", "Hello!")
        .await
        .assert_status(201);
    let other = create(&app, &admin, "bye", "Bye!").await;
    let id = other.assert_status(201)["canned"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    create(&app, &admin, "hello", "Hello again")
        .await
        .assert_error(409, "conflict");
    let path = format!("/api/v1/canned/{id}");
    app.call(
        "PATCH",
        &path,
        Some(&admin),
        Some(json!({"shortcut": "hello"})),
    )
    .await
    .assert_error(409, "conflict");
    // Its own shortcut is not taken by another.
    app.call(
        "PATCH",
        &path,
        Some(&admin),
        Some(json!({"shortcut": "bye", "body": "Goodbye!"})),
    )
    .await
    .assert_status(200);
    let all = list(&app, &admin).await;
    assert_eq!(shortcuts(&all), ["bye", "hello"]);
    assert_eq!(all["canned"][1]["body"], "Hello!");
}

#[tokio::test]
async fn only_admins_write_canned_responses_and_visitors_read_none() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (agent, _) = app.new_agent(&admin, "agent@example.com").await;
    let visitor = app.new_visitor_chat().await;
    let id = create(&app, &admin, "hi", "Hi!").await.assert_status(201)["canned"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/api/v1/canned/{id}");
    for token in [&agent, &visitor.token] {
        create(&app, token, "mine", "text")
            .await
            .assert_error(403, "forbidden");
        app.call(
            "PATCH",
            &path,
            Some(token),
            Some(json!({"body": "changed"})),
        )
        .await
        .assert_error(403, "forbidden");
        app.call("DELETE", &path, Some(token), None)
            .await
            .assert_error(403, "forbidden");
    }
    app.call("GET", "/api/v1/canned", Some(&visitor.token), None)
        .await
        .assert_error(403, "forbidden");
    app.call("GET", "/api/v1/canned", None, None)
        .await
        .assert_error(401, "unauthorized");
    let all = list(&app, &agent).await;
    assert_eq!(
        all["canned"],
        json!([{"id": id, "shortcut": "hi", "body": "Hi!"}])
    );
}

#[tokio::test]
async fn a_team_keeps_at_most_500_canned_responses() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    // Straight into the store: 500 requests would only make the test slow.
    app.store
        .write(|db| {
            for i in 0..499 {
                db.execute(
                    "INSERT INTO canned_responses (id, shortcut, body, created_at, updated_at)
                     VALUES (?1, ?2, 'text', 't', 't')",
                    &[&format!("id-{i}"), &format!("s{i:03}")],
                )?;
            }
            Ok(())
        })
        .await
        .unwrap();
    create(&app, &admin, "last", "text")
        .await
        .assert_status(201);
    let refused = create(&app, &admin, "one-too-many", "text").await;
    refused.assert_error(409, "conflict");
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("500"),
        "{}",
        refused.body
    );
    let all = list(&app, &admin).await;
    assert_eq!(all["canned"].as_array().unwrap().len(), 500);
    // Deleting one makes room again.
    app.call("DELETE", "/api/v1/canned/id-0", Some(&admin), None)
        .await
        .assert_status(204);
    create(&app, &admin, "one-too-many", "text")
        .await
        .assert_status(201);
}
