//! The served OpenAPI document describes every route of the API table, with the statuses its
//! callers imply; the reference page renders it under the strict CSP.

use parley::http::routes::{Access, ROUTES};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp};

async fn served_document(app: &TestApp) -> Value {
    let reply = app.call("GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(
        reply.headers["content-type"], "application/json",
        "the document is JSON"
    );
    reply.assert_status(200).clone()
}

/// The operation of `method` on `path` in the document, if any.
fn operation<'a>(doc: &'a Value, method: &str, path: &str) -> Option<&'a Value> {
    doc["paths"][path]
        .get(method.to_ascii_lowercase())
        .filter(|op| op.is_object())
}

#[tokio::test]
async fn every_api_route_is_in_the_openapi_document_with_the_statuses_its_callers_imply() {
    let app = spawn_app().await;
    let doc = served_document(&app).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );

    let mut problems = Vec::new();
    let api_routes: Vec<_> = ROUTES.iter().filter(|r| r.api).collect();
    assert!(api_routes.len() > 25, "the table has the API routes");
    for route in api_routes {
        let (method, path) = (route.verb.as_str(), route.path);
        let Some(op) = operation(&doc, method, path) else {
            problems.push(format!("{method} {path} is not documented"));
            continue;
        };
        let statuses: Vec<&str> = op["responses"]
            .as_object()
            .map(|r| r.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let mut implied: Vec<&str> = Vec::new();
        let schemes: Vec<&str> = op["security"]
            .as_array()
            .map(|all| {
                all.iter()
                    .flat_map(|req| req.as_object().unwrap().keys().map(String::as_str))
                    .collect()
            })
            .unwrap_or_default();
        let expected_schemes: &[&str] = match route.access {
            Access::Public => &[],
            Access::Visitor | Access::Owner => &["visitor_token"],
            Access::OwnerOrAgent => &["visitor_token", "agent_token"],
            Access::Agent | Access::Admin => &["agent_token"],
        };
        if schemes != expected_schemes {
            problems.push(format!(
                "{method} {path}: security {schemes:?}, expected {expected_schemes:?}"
            ));
        }
        match route.access {
            Access::Public => {}
            Access::OwnerOrAgent => implied.extend(["401", "404"]),
            Access::Owner => implied.extend(["401", "403", "404"]),
            Access::Visitor | Access::Agent | Access::Admin => implied.extend(["401", "403"]),
        }
        if path.contains("{id}") {
            implied.push("404");
        }
        if op.get("requestBody").is_some() {
            implied.extend(["400", "413", "415"]);
        }
        let has_query = op["parameters"]
            .as_array()
            .is_some_and(|ps| ps.iter().any(|p| p["in"] == "query"));
        if has_query {
            implied.push("400");
        }
        if path != "/healthz" {
            implied.push("429");
        }
        let success = statuses.iter().any(|s| s.starts_with('2'));
        if !success {
            problems.push(format!("{method} {path}: no success answer documented"));
        }
        for status in implied {
            if !statuses.contains(&status) {
                problems.push(format!("{method} {path}: {status} is not documented"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[tokio::test]
async fn the_document_names_both_tokens_and_the_error_shape() {
    let app = spawn_app().await;
    let doc = served_document(&app).await;
    let schemes = &doc["components"]["securitySchemes"];
    for name in ["visitor_token", "agent_token"] {
        assert_eq!(schemes[name]["type"], "http", "{name}");
        assert_eq!(schemes[name]["scheme"], "bearer", "{name}");
    }
    let error = &doc["components"]["schemas"]["ErrorDetail"];
    assert_eq!(error["required"], serde_json::json!(["code", "message"]));
    // Every error answer, inline or shared, carries the error shape.
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for (status, response) in op["responses"].as_object().unwrap() {
                if status.starts_with('2') {
                    continue;
                }
                let response = match response["$ref"].as_str() {
                    Some(reference) => {
                        let name = reference.rsplit('/').next().unwrap();
                        &doc["components"]["responses"][name]
                    }
                    None => response,
                };
                assert_eq!(
                    response["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{method} {path} {status}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "{checked} error answers");
}

#[tokio::test]
async fn a_poll_answer_has_exactly_the_documented_keys() {
    let app = spawn_app().await;
    let doc = served_document(&app).await;
    let chat = app.new_visitor_chat().await;
    app.send(&chat.token, &chat.chat_id, "hello", None)
        .await
        .assert_status(201);
    let reply = app
        .call(
            "GET",
            &format!("/api/v1/chats/{}/messages?after=0", chat.chat_id),
            Some(&chat.token),
            None,
        )
        .await;
    let answer = reply.assert_status(200);
    let keys = |value: &Value| {
        let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    let schema_keys = |name: &str| keys(&doc["components"]["schemas"][name]["properties"]);
    assert_eq!(keys(answer), schema_keys("PollAnswer"));
    assert_eq!(keys(&answer["chat"]), schema_keys("Chat"));
    assert_eq!(keys(&answer["messages"][0]), schema_keys("Message"));
}

#[tokio::test]
async fn the_reference_page_is_served_with_the_strict_csp_and_its_own_script() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/api/docs")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let html = response.text().await.unwrap();
    assert!(html.contains("/static/js/docs.js"), "{html}");
    assert!(!html.contains("<script>"), "no inline script");
    assert!(!html.contains("https://"), "nothing from elsewhere");
    for asset in ["/static/js/docs.js", "/static/css/docs.css"] {
        let reply = app.client.get(app.url(asset)).send().await.unwrap();
        assert_eq!(reply.status(), 200, "{asset}");
    }
}

// What schemathesis found, held here.

#[tokio::test]
async fn a_method_a_path_does_not_take_is_405_with_the_allowed_ones() {
    let app = spawn_app().await;
    let reply = app.call("DELETE", "/api/v1/chats", None, None).await;
    reply.assert_error(405, "method_not_allowed");
    assert_eq!(reply.headers["allow"], "POST, GET");
    let reply = app
        .call("PUT", "/api/v1/chats/x/messages", None, None)
        .await;
    reply.assert_error(405, "method_not_allowed");
    assert_eq!(reply.headers["allow"], "POST, GET");
}

#[tokio::test]
async fn a_json_array_in_place_of_the_object_is_a_bad_request() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let chat = app.new_visitor_chat().await;
    let path = format!("/api/v1/chats/{}", chat.chat_id);
    // serde alone reads `[status, assignee_id]` as the object; the API takes objects only.
    app.call("PATCH", &path, Some(&admin), Some(json!(["closed", null])))
        .await
        .assert_error(400, "bad_request");
    let reply = app.call("GET", &path, Some(&admin), None).await;
    assert_eq!(reply.assert_status(200)["chat"]["status"], "open");
    app.call("POST", "/api/v1/visitors", None, Some(json!(["Ann"])))
        .await
        .assert_error(400, "bad_request");
    app.call("POST", "/api/v1/visitors", None, Some(json!(null)))
        .await
        .assert_error(400, "bad_request");
}
