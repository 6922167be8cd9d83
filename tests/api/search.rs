//! Full-text search: words whatever their case and accents, prefixes, phrases, every word
//! required, ranking, safe snippets, odd input, limits, who may search, and deletion.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, Reply, TestApp, VisitorChat};

/// `GET /api/v1/search` with `q` (and `limit`) encoded as a browser would.
async fn search(app: &TestApp, token: Option<&str>, q: &str, limit: Option<&str>) -> Reply {
    let mut params = vec![("q", q)];
    if let Some(limit) = limit {
        params.push(("limit", limit));
    }
    let url = reqwest::Url::parse_with_params(&app.url("/api/v1/search"), &params).unwrap();
    let mut request = app.client.get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    TestApp::reply(request.send().await.unwrap()).await
}

/// The bodies of a search's results, in order.
async fn found(app: &TestApp, token: &str, q: &str) -> Vec<String> {
    let reply = search(app, Some(token), q, None).await;
    bodies(reply.assert_status(200))
}

fn bodies(answer: &Value) -> Vec<String> {
    answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["message"]["body"].as_str().unwrap().to_string())
        .collect()
}

/// A visitor chat holding these messages, sent by its visitor in this order.
async fn chat_with(app: &TestApp, bodies: &[&str]) -> VisitorChat {
    let chat = app.new_visitor_chat().await;
    for body in bodies {
        app.send(&chat.token, &chat.chat_id, body, None)
            .await
            .assert_status(201);
    }
    chat
}

fn sorted(mut list: Vec<String>) -> Vec<String> {
    list.sort();
    list
}

#[tokio::test]
async fn words_match_whatever_their_case_and_accents_in_either_direction() {
    let app = spawn_app().await;
    let agent = app.admin_token().await;
    chat_with(
        &app,
        &[
            "Déjà vu at the CAFÉ",
            "deja encore, cafe noir",
            "nothing here",
        ],
    )
    .await;
    let both = sorted(vec![
        "Déjà vu at the CAFÉ".to_string(),
        "deja encore, cafe noir".to_string(),
    ]);
    for q in ["deja", "déjà", "DÉJÀ", "Deja", "café", "CAFE"] {
        assert_eq!(sorted(found(&app, &agent, q).await), both, "{q}");
    }
    assert_eq!(
        found(&app, &agent, "noir").await,
        ["deja encore, cafe noir"]
    );
    assert!(
        found(&app, &agent, "dej").await.is_empty(),
        "a whole word only"
    );
}

#[tokio::test]
async fn a_word_with_a_star_matches_every_word_that_starts_so() {
    let app = spawn_app().await;
    let agent = app.admin_token().await;
    chat_with(
        &app,
        &[
            "Shipping is delayed",
            "your shipment",
            "one ship",
            "a worship",
        ],
    )
    .await;
    assert_eq!(
        sorted(found(&app, &agent, "ship*").await),
        ["Shipping is delayed", "one ship", "your shipment"]
    );
    assert_eq!(found(&app, &agent, "ship").await, ["one ship"]);
    assert_eq!(found(&app, &agent, "SHIPM*").await, ["your shipment"]);
    assert_eq!(
        found(&app, &agent, "del* shipp*").await,
        ["Shipping is delayed"]
    );
    // A prefix with an accent matches the word without, and the other way round.
    chat_with(&app, &["Précommande reçue"]).await;
    assert_eq!(found(&app, &agent, "precom*").await, ["Précommande reçue"]);
    assert_eq!(found(&app, &agent, "reçu*").await, ["Précommande reçue"]);
}

#[tokio::test]
async fn a_quoted_phrase_matches_only_those_words_side_by_side() {
    let app = spawn_app().await;
    let agent = app.admin_token().await;
    chat_with(
        &app,
        &[
            "Our refund policy",
            "The policy on a refund",
            "refund, policy",
        ],
    )
    .await;
    assert_eq!(
        sorted(found(&app, &agent, "\"refund policy\"").await),
        ["Our refund policy", "refund, policy"]
    );
    assert_eq!(
        found(&app, &agent, "\"policy on a\"").await,
        ["The policy on a refund"]
    );
    assert_eq!(
        found(&app, &agent, "\"our refund pol\"*").await,
        ["Our refund policy"]
    );
    assert!(found(&app, &agent, "\"policy refund\"").await.is_empty());
}

#[tokio::test]
async fn every_word_of_a_query_must_match() {
    let app = spawn_app().await;
    let agent = app.admin_token().await;
    chat_with(
        &app,
        &[
            "the printer is broken",
            "the printer works",
            "broken screen",
        ],
    )
    .await;
    assert_eq!(
        found(&app, &agent, "printer broken").await,
        ["the printer is broken"]
    );
    assert_eq!(
        found(&app, &agent, "broken printer").await,
        ["the printer is broken"]
    );
    assert!(found(&app, &agent, "printer broken screen")
        .await
        .is_empty());
    assert_eq!(found(&app, &agent, "broken").await.len(), 2);
}

#[tokio::test]
async fn a_message_with_the_word_twice_or_with_the_exact_phrase_ranks_first() {
    let app = spawn_app().await;
    let agent = app.admin_token().await;
    // The better match is sent first: newest-first alone would put it last.
    chat_with(
        &app,
        &[
            "invoice: the invoice is attached",
            "the invoice is attached now",
        ],
    )
    .await;
    assert_eq!(
        found(&app, &agent, "invoice").await,
        [
            "invoice: the invoice is attached",
            "the invoice is attached now"
        ]
    );
    chat_with(
        &app,
        &[
            "we explained the refund policy to the customer at length today",
            "policy, then refund",
        ],
    )
    .await;
    assert_eq!(
        found(&app, &agent, "refund policy").await,
        [
            "we explained the refund policy to the customer at length today",
            "policy, then refund"
        ]
    );
}

#[tokio::test]
async fn a_result_has_its_chat_the_whole_message_and_a_snippet_that_is_safe_html() {
    let app = spawn_app().await;
    let agent = app.admin_token().await;
    let body = "<b>Refund</b> & \"more\" for l'été";
    let chat = chat_with(&app, &[body]).await;
    let reply = search(&app, Some(&agent), "refund ete", None).await;
    let answer = reply.assert_status(200);
    let results = answer["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{answer}");
    let result = &results[0];
    assert_eq!(result["chat_id"], chat.chat_id.as_str());
    assert_eq!(result["message"]["chat_id"], chat.chat_id.as_str());
    assert_eq!(result["message"]["body"], body);
    assert_eq!(result["message"]["sender"], "visitor");
    assert!(result["message"]["seq"].as_i64().unwrap() > 0);
    assert!(result["message"]["id"].is_string());
    assert_eq!(
        result["snippet"],
        "&lt;b&gt;<mark>Refund</mark>&lt;/b&gt; &amp; &quot;more&quot; for l&#39;<mark>été</mark>"
    );
    // A long body is cut around the match.
    let long = format!("{} needle {}", "before ".repeat(100), "after ".repeat(100));
    chat_with(&app, &[&long]).await;
    let reply = search(&app, Some(&agent), "needle", None).await;
    let snippet = reply.assert_status(200)["results"][0]["snippet"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(snippet.starts_with("…before"), "{snippet}");
    assert!(snippet.ends_with("after…"), "{snippet}");
    assert!(snippet.contains("<mark>needle</mark>"), "{snippet}");
    assert!(snippet.len() < 300, "{snippet}");
}

#[tokio::test]
async fn odd_queries_are_text_or_a_400_and_never_a_server_error() {
    let app = spawn_app().await;
    let agent = app.admin_token().await;
    chat_with(
        &app,
        &[
            "AND OR NOT are words too",
            "NEAR(a b) body:x col:y",
            "a 'quoted' \"text\" with \\ backslash",
        ],
    )
    .await;
    assert_eq!(
        found(&app, &agent, "AND OR NOT ( * \"").await,
        ["AND OR NOT are words too"]
    );
    assert_eq!(
        found(&app, &agent, "NEAR(a").await,
        ["NEAR(a b) body:x col:y"]
    );
    assert_eq!(
        found(&app, &agent, "body:x").await,
        ["NEAR(a b) body:x col:y"]
    );
    let odd = [
        "\"",
        "\"\"",
        "*",
        "**",
        "( ) [ ] { }",
        "'",
        "\\",
        "' OR 1=1 --",
        "'; DROP TABLE messages; --",
        "a:*",
        "a & b | !c",
        "a <-> b",
        "<2> <->",
        "x -y +z ^w",
        "\"unclosed phrase",
        "\"a\"\"b\"",
        "NEAR(",
        "col:",
        ":*",
        "\u{0}",
        "a\u{0}b",
        "\u{202E}rtl",
        "⑴ ½ ﬁ ʼ ﹙",
        "😀 emoji",
        "中文 搜索",
        "x*y*z",
        "*prefix",
        "$1 ?1 %s",
        "%",
        "_",
        "\\'\\\"",
        "''''",
        "e-mail@example.com",
        "https://example.com/a?b=c",
    ];
    let long_word = "w".repeat(65);
    let too_long = "a ".repeat(101);
    let mut queries: Vec<&str> = odd.to_vec();
    queries.extend([long_word.as_str(), too_long.as_str()]);
    for q in queries {
        let reply = search(&app, Some(&agent), q, None).await;
        let status = reply.status.as_u16();
        assert!(
            status == 200 || status == 400,
            "{q:?}: {status} {}",
            reply.body
        );
        if status == 400 {
            reply.assert_error(400, "bad_request");
        } else {
            assert!(reply.body["results"].is_array(), "{q:?}: {}", reply.body);
        }
    }
    for empty in ["", "   ", "*", "\"\"", "( ) - : ^", "\u{0}"] {
        search(&app, Some(&agent), empty, None)
            .await
            .assert_error(400, "bad_request");
    }
    app.call("GET", "/api/v1/search", Some(&agent), None)
        .await
        .assert_error(400, "bad_request");
}

#[tokio::test]
async fn the_limit_is_20_by_default_and_1_to_100() {
    let app = spawn_app().await;
    let agent = app.admin_token().await;
    let chat = app.new_visitor_chat().await;
    for i in 0..25 {
        app.send(
            &chat.token,
            &chat.chat_id,
            &format!("ticket number {i}"),
            None,
        )
        .await
        .assert_status(201);
    }
    let count = |reply: Reply| {
        reply.assert_status(200)["results"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(count(search(&app, Some(&agent), "ticket", None).await), 20);
    assert_eq!(
        count(search(&app, Some(&agent), "ticket", Some("3")).await),
        3
    );
    assert_eq!(
        count(search(&app, Some(&agent), "ticket", Some("1")).await),
        1
    );
    assert_eq!(
        count(search(&app, Some(&agent), "ticket", Some("100")).await),
        25
    );
    for bad in ["0", "101", "-1", "abc", "1.5", "99999999999999999999"] {
        search(&app, Some(&agent), "ticket", Some(bad))
            .await
            .assert_error(400, "bad_request");
    }
}

#[tokio::test]
async fn only_agents_may_search() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (agent, _) = app.new_agent(&admin, "agent@example.com").await;
    let chat = chat_with(&app, &["secret order 1234"]).await;
    search(&app, Some(&chat.token), "secret", None)
        .await
        .assert_error(403, "forbidden");
    search(&app, None, "secret", None)
        .await
        .assert_error(401, "unauthorized");
    assert_eq!(found(&app, &agent, "secret").await, ["secret order 1234"]);
}

#[tokio::test]
async fn private_notes_are_found_by_agents() {
    let app = spawn_app().await;
    let agent = app.admin_token().await;
    let chat = chat_with(&app, &["my parcel never came"]).await;
    app.call(
        "POST",
        &format!("/api/v1/chats/{}/messages", chat.chat_id),
        Some(&agent),
        Some(json!({"body": "Note: parcel lost by the courier", "private": true})),
    )
    .await
    .assert_status(201);
    let reply = search(&app, Some(&agent), "parcel", None).await;
    let answer = reply.assert_status(200);
    assert_eq!(
        sorted(bodies(answer)),
        ["Note: parcel lost by the courier", "my parcel never came"]
    );
    let note = answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["message"]["body"] == "Note: parcel lost by the courier")
        .unwrap();
    assert_eq!(note["message"]["private"], true);
    assert_eq!(note["chat_id"], chat.chat_id.as_str());
}

#[tokio::test]
async fn system_events_are_not_searched() {
    let app = spawn_app().await;
    let agent = app.admin_token().await;
    let chat = chat_with(&app, &["is this chat closed by now?"]).await;
    // Closing records a system message, "Chat closed by …".
    app.patch_chat(&agent, &chat.chat_id, json!({"status": "closed"}))
        .await
        .assert_status(200);
    assert_eq!(
        found(&app, &agent, "chat closed by").await,
        ["is this chat closed by now?"]
    );
}

#[tokio::test]
async fn a_deleted_chat_is_gone_from_search_at_once() {
    let app = spawn_app().await;
    let agent = app.admin_token().await;
    let old = chat_with(&app, &["zanzibar shipment lost", "another zanzibar word"]).await;
    chat_with(&app, &["zanzibar is still open"]).await;
    assert_eq!(found(&app, &agent, "zanzibar").await.len(), 3);
    app.patch_chat(&agent, &old.chat_id, json!({"status": "closed"}))
        .await
        .assert_status(200);
    let deleted = parley::services::retention::sweep(&app.store, 0)
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    assert_eq!(
        found(&app, &agent, "zanzibar").await,
        ["zanzibar is still open"]
    );
    assert!(found(&app, &agent, "shipment").await.is_empty());
    assert!(found(&app, &agent, "\"another zanzibar\"").await.is_empty());
}
