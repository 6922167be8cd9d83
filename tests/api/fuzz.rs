//! Bad input at scale: thousands of malformed requests from a seeded generator against one
//! app. No answer may be a 5xx, every error has the contract's shape, refused writes change
//! nothing, and the server stays up. Set `PARLEY_FUZZ_SEED` to replay a run.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{contract_code, spawn_app, TestApp};

/// Requests of the random phase (each runner sends its share).
const RANDOM_REQUESTS: usize = 6000;
const RUNNERS: usize = 4;

fn seed() -> u64 {
    std::env::var("PARLEY_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::thread_rng().gen())
}

/// One request, kept whole so a failure can be replayed by hand.
#[derive(Debug, Clone)]
struct Fuzzed {
    method: String,
    path: String,
    authorization: Option<Vec<u8>>,
    content_type: Option<String>,
    body: Option<Vec<u8>>,
}

impl Fuzzed {
    fn describe(&self) -> String {
        let body = self.body.as_ref().map(|b| {
            let text = String::from_utf8_lossy(&b[..b.len().min(200)]).into_owned();
            format!("{text:?} ({} bytes)", b.len())
        });
        let path: String = self.path.chars().take(200).collect();
        format!(
            "{} {path} auth={:?} content-type={:?} body={body:?}",
            self.method,
            self.authorization
                .as_ref()
                .map(|a| String::from_utf8_lossy(&a[..a.len().min(80)]).into_owned()),
            self.content_type
        )
    }
}

/// What came back.
struct Answer {
    status: u16,
    retry_after: bool,
    body: Vec<u8>,
}

/// The checks every answer must pass, whatever was asked.
fn check(request: &Fuzzed, answer: &Answer) -> Result<(), String> {
    let status = answer.status;
    let fail = |why: &str| {
        Err(format!(
            "{why}: {} -> {status} {}",
            request.describe(),
            String::from_utf8_lossy(&answer.body[..answer.body.len().min(300)])
        ))
    };
    if status >= 500 {
        return fail("a 5xx");
    }
    if (200..300).contains(&status) {
        let text = String::from_utf8_lossy(&answer.body);
        if text.contains("root:x:0") || text.contains("[package]") {
            return fail("a file outside the assets was served");
        }
        return Ok(());
    }
    if status == 304 || request.method == "HEAD" {
        return Ok(());
    }
    let body: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    let Some(code) = body["error"]["code"].as_str() else {
        return fail("an error without the {error: {code, message}} shape");
    };
    if !body["error"]["message"].is_string() {
        return fail("an error without a message");
    }
    if contract_code(status).is_some_and(|expected| expected != code) {
        return fail("an error code that does not match its status");
    }
    if status == 429 && !answer.retry_after {
        return fail("a 429 without Retry-After");
    }
    Ok(())
}

async fn send(client: &reqwest::Client, address: &str, request: &Fuzzed) -> Result<Answer, String> {
    let method = reqwest::Method::from_bytes(request.method.as_bytes()).expect("a valid method");
    let mut builder = client.request(method, format!("{address}{}", request.path));
    if let Some(auth) = &request.authorization {
        let value = reqwest::header::HeaderValue::from_bytes(auth).expect("a sendable header");
        builder = builder.header(reqwest::header::AUTHORIZATION, value);
    }
    if let Some(content_type) = &request.content_type {
        builder = builder.header(reqwest::header::CONTENT_TYPE, content_type);
    }
    if let Some(body) = &request.body {
        builder = builder.body(body.clone());
    }
    let response = builder
        .send()
        .await
        .map_err(|e| format!("no answer ({e}): {}", request.describe()))?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .contains_key(reqwest::header::RETRY_AFTER);
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("the body broke off ({e}): {}", request.describe()))?
        .to_vec();
    Ok(Answer {
        status,
        retry_after,
        body,
    })
}

/// The fixture's principals and ids.
#[derive(Clone)]
struct Ids {
    owner: String,
    chat_id: String,
    other: String,
    other_chat_id: String,
    admin: String,
    admin_id: String,
}

/// A JSON body that would succeed, for each write endpoint (by path template).
fn valid_body(path: &str) -> Option<Value> {
    Some(match path {
        "/api/v1/visitors" | "/api/v1/visitors/me" => {
            json!({"name": "Ada", "email": "ada@example.com", "page_url": "https://shop.example/"})
        }
        "/api/v1/chats/{chat}" => json!({"status": "open", "assignee_id": null}),
        "/api/v1/chats/{chat}/messages" => json!({"body": "hello", "client_id": "abc-1"}),
        "/api/v1/chats/{chat}/typing" => json!({"typing": true}),
        "/api/v1/chats/{chat}/read" => json!({"seq": 1}),
        "/api/v1/agents/login" => json!({"email": "a@example.com", "password": "a-long-password"}),
        "/api/v1/agents" => {
            json!({"email": "n@example.com", "name": "N", "password": "a-long-password", "role": "agent"})
        }
        "/api/v1/agents/{agent}" => json!({"name": "N", "role": "admin", "disabled": false}),
        "/api/v1/agents/me/password" => {
            json!({"current_password": "a-long-password", "new_password": "another-long-one"})
        }
        _ => return None,
    })
}

/// Write endpoints with a JSON body: (method, path template, the caller allowed to write).
const WRITES: &[(&str, &str, Caller)] = &[
    ("POST", "/api/v1/visitors", Caller::None),
    ("PATCH", "/api/v1/visitors/me", Caller::Owner),
    ("PATCH", "/api/v1/chats/{chat}", Caller::Admin),
    ("POST", "/api/v1/chats/{chat}/messages", Caller::Owner),
    ("POST", "/api/v1/chats/{chat}/messages", Caller::Admin),
    ("POST", "/api/v1/chats/{chat}/typing", Caller::Owner),
    ("POST", "/api/v1/chats/{chat}/read", Caller::Owner),
    ("POST", "/api/v1/agents/login", Caller::None),
    ("POST", "/api/v1/agents", Caller::Admin),
    ("PATCH", "/api/v1/agents/{agent}", Caller::Admin),
    ("POST", "/api/v1/agents/me/password", Caller::Admin),
];

#[derive(Debug, Clone, Copy)]
enum Caller {
    None,
    Owner,
    Admin,
}

impl Ids {
    fn token(&self, caller: Caller) -> Option<Vec<u8>> {
        match caller {
            Caller::None => None,
            Caller::Owner => Some(format!("Bearer {}", self.owner).into_bytes()),
            Caller::Admin => Some(format!("Bearer {}", self.admin).into_bytes()),
        }
    }

    fn path(&self, template: &str) -> String {
        template
            .replace("{chat}", &self.chat_id)
            .replace("{agent}", &self.admin_id)
    }
}

/// JSON values of every type but the right one, and numbers at and past every limit.
fn wrong_values() -> Vec<&'static str> {
    vec![
        "1e400",
        "-1e400",
        "-1",
        "0",
        "9223372036854775808",
        "-9223372036854775809",
        "18446744073709551616",
        "1.5",
        "true",
        "false",
        "[]",
        "[\"x\"]",
        "{}",
        "{\"a\":1}",
        "\"\"",
        "\"x\"",
        "\"\\u0000\"",
        "\"\\ud800\"",
        "12345678901234567890123456789",
    ]
}

/// Bodies that every write endpoint must refuse, built from its valid body.
fn refused_bodies(path: &str, rng: &mut StdRng) -> Vec<(Option<String>, Vec<u8>)> {
    let json_type = Some("application/json".to_string());
    let valid = valid_body(path).expect("a write endpoint");
    let text = valid.to_string();
    let mut bodies = Vec::new();
    // Broken syntax: every prefix would be too many; a spread of them.
    for _ in 0..8 {
        let cut = rng.gen_range(1..text.len());
        bodies.push((json_type.clone(), text.as_bytes()[..cut].to_vec()));
    }
    for broken in [
        "{",
        "}",
        "{\"",
        "nul",
        "[",
        "{'body': 'x'}",
        "{\"a\":1,}",
        "{} {}",
        "\u{feff}{}",
        "{\"a\" 1}",
        "NaN",
        "--",
        "<xml/>",
        "\0",
    ] {
        bodies.push((json_type.clone(), broken.as_bytes().to_vec()));
    }
    // Not an object.
    for top in ["[]", "5", "\"x\"", "null", "true", "[{}]"] {
        bodies.push((json_type.clone(), top.as_bytes().to_vec()));
    }
    // Invalid UTF-8 inside and outside strings.
    let field = valid.as_object().unwrap().keys().next().unwrap().clone();
    bodies.push((
        json_type.clone(),
        [b"{\"", field.as_bytes(), b"\":\"\xff\xfe\"}"].concat(),
    ));
    bodies.push((json_type.clone(), b"\xff\xfe\xfd".to_vec()));
    bodies.push((json_type.clone(), [b"\xef\xbb", text.as_bytes()].concat()));
    // Each known field with a wrong type (null is "absent" for optional fields, so not here).
    for key in valid.as_object().unwrap().keys() {
        let right = &valid[key];
        for wrong in wrong_values() {
            let wrong_value: Option<Value> = serde_json::from_str(wrong).ok();
            let same_type = wrong_value.as_ref().is_some_and(|w| {
                std::mem::discriminant(w) == std::mem::discriminant(right)
                    && !(right.is_string() && key == "role")
            });
            if same_type && !(right.is_number() && (wrong.contains('.') || wrong.len() > 18)) {
                continue;
            }
            let raw = text.replacen(
                &format!("\"{key}\":{right}"),
                &format!("\"{key}\":{wrong}"),
                1,
            );
            bodies.push((json_type.clone(), raw.into_bytes()));
        }
    }
    // Deep nesting past any recursion limit.
    let depth = 5000;
    let deep = format!("{{\"{field}\":{}{}}}", "[".repeat(depth), "]".repeat(depth));
    bodies.push((json_type.clone(), deep.into_bytes()));
    // Too large.
    let mut huge = valid.clone();
    huge[&field] = json!("x".repeat(70 * 1024));
    bodies.push((json_type, huge.to_string().into_bytes()));
    // The valid body with a type that is not JSON (or none).
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=xyz"),
        Some("application/xml"),
        Some("text/json-ish"),
    ] {
        bodies.push((content_type.map(String::from), text.clone().into_bytes()));
    }
    bodies
}

/// Well-formed bodies that break a rule (422): refused just the same.
fn invalid_bodies(path: &str) -> Vec<Value> {
    let long = "x".repeat(4001);
    match path {
        "/api/v1/visitors" | "/api/v1/visitors/me" => vec![
            json!({"email": "not-an-address"}),
            json!({"name": "x".repeat(101)}),
            json!({"name": "tab\there"}),
            json!({"email": "a@b@c"}),
        ],
        "/api/v1/chats/{chat}" => vec![
            json!({"status": "archived"}),
            json!({"status": ""}),
            json!({"assignee_id": "01900000-0000-7000-8000-000000000000"}),
            json!({"assignee_id": ""}),
        ],
        "/api/v1/chats/{chat}/messages" => vec![
            json!({"body": ""}),
            json!({"body": " \n\t "}),
            json!({"body": long}),
            json!({"body": "x", "client_id": ""}),
            json!({"body": "x", "client_id": "has space"}),
            json!({"body": "x", "client_id": "é"}),
            json!({"body": "x", "client_id": "x".repeat(65)}),
        ],
        "/api/v1/chats/{chat}/read" => vec![json!({"seq": -1}), json!({"seq": i64::MIN})],
        "/api/v1/agents" => vec![
            json!({"email": "bad", "name": "N", "password": "a-long-password"}),
            json!({"email": "n@example.com", "name": "", "password": "a-long-password"}),
            json!({"email": "n@example.com", "name": "N", "password": "short"}),
            json!({"email": "admin@example.com", "name": "N", "password": "a-long-password"}),
        ],
        "/api/v1/agents/{agent}" => vec![
            json!({"name": ""}),
            json!({"disabled": true}),
            json!({"role": "agent"}),
        ],
        "/api/v1/agents/me/password" => vec![
            json!({"current_password": "correct-horse-battery", "new_password": "short"}),
            json!({"current_password": "correct-horse-battery", "new_password": "x".repeat(1025)}),
        ],
        _ => Vec::new(),
    }
}

/// Everything the database holds that a refused request must not touch.
fn snapshot(db: &Path) -> BTreeMap<String, Vec<String>> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut tables = BTreeMap::new();
    for (table, query) in [
        ("messages", "SELECT * FROM messages"),
        ("chats", "SELECT * FROM chats"),
        ("visitors", "SELECT * FROM visitors"),
        // Not `last_seen_at`: a refused request of a signed-in agent still shows it present,
        // and that note is written in the background, whenever it lands.
        (
            "agents",
            "SELECT id, email, name, role, password_hash, disabled, created_at, availability,
                    email_notifications FROM agents",
        ),
        ("tokens", "SELECT kind, owner_id, expires_at FROM tokens"),
    ] {
        let mut statement = conn.prepare(query).unwrap();
        let columns = statement.column_count();
        let mut rows: Vec<String> = statement
            .query_map([], |row| {
                let values: Vec<String> = (0..columns)
                    .map(|i| format!("{:?}", row.get_ref(i).unwrap()))
                    .collect();
                Ok(values.join("|"))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        rows.sort();
        tables.insert(table.to_string(), rows);
    }
    tables
}

async fn fixture(app: &TestApp) -> Ids {
    let owner = app.new_visitor_chat().await;
    app.send(&owner.token, &owner.chat_id, "first", Some("first"))
        .await
        .assert_status(201);
    let other = app.new_visitor_chat().await;
    let admin = app.admin_token().await;
    let me = app
        .call("GET", "/api/v1/agents/me", Some(&admin), None)
        .await;
    let admin_id = me.assert_status(200)["agent"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    Ids {
        owner: owner.token,
        chat_id: owner.chat_id,
        other: other.token,
        other_chat_id: other.chat_id,
        admin,
        admin_id,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_writes_are_refused_in_the_error_shape_and_change_nothing() {
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed);
    let app = spawn_app().await;
    let ids = fixture(&app).await;
    let before = snapshot(&app.db_path);

    let mut failures = Vec::new();
    let mut count = 0;
    for &(method, template, caller) in WRITES {
        let mut bodies = refused_bodies(template, &mut rng);
        for invalid in invalid_bodies(template) {
            bodies.push((
                Some("application/json".into()),
                invalid.to_string().into_bytes(),
            ));
        }
        for (content_type, body) in bodies {
            let request = Fuzzed {
                method: method.into(),
                path: ids.path(template),
                authorization: ids.token(caller),
                content_type,
                body: Some(body),
            };
            count += 1;
            match send(&app.client, &app.address, &request).await {
                Ok(answer) if (200..300).contains(&answer.status) => failures.push(format!(
                    "accepted: {} -> {} {}",
                    request.describe(),
                    answer.status,
                    String::from_utf8_lossy(&answer.body)
                )),
                Ok(answer) => failures.extend(check(&request, &answer).err()),
                Err(e) => failures.push(e),
            }
        }
    }
    assert!(count > 300, "the corpus is large: {count}");
    assert!(
        failures.is_empty(),
        "seed {seed}: {} of {count} refused writes went wrong:\n{}",
        failures.len(),
        failures[..failures.len().min(30)].join("\n")
    );
    assert_eq!(
        snapshot(&app.db_path),
        before,
        "seed {seed}: a refused write changed data"
    );
}

/// Paths to aim at: every route with good and odd ids.
fn paths(ids: &Ids) -> Vec<String> {
    let odd_ids = [
        ids.chat_id.clone(),
        ids.other_chat_id.clone(),
        ids.admin_id.clone(),
        "%00".into(),
        "%2e%2e".into(),
        "..%2f..%2fetc%2fpasswd".into(),
        "%E2%80%AE%F0%9F%92%A9".into(),
        "%FF%FE".into(),
        "mine".into(),
        "-1".into(),
        "0".into(),
        "99999999999999999999999".into(),
        "'%20OR%201=1%20--".into(),
        "01900000-0000-7000-8000-000000000000".into(),
        "a".repeat(3000),
        format!("{}%00", ids.chat_id),
        format!("{}%20", ids.chat_id),
    ];
    let mut paths = vec![
        "/".to_string(),
        "/agent".into(),
        "/widget.js".into(),
        "/healthz".into(),
        "/metrics".into(),
        "/static/%2e%2e/%2e%2e/Cargo.toml".into(),
        "/static/..%2f..%2fCargo.toml".into(),
        "/static/%2e%2e%2f%2e%2e%2fetc%2fpasswd".into(),
        "/api".into(),
        "/api/v1".into(),
        "/api/v2/chats".into(),
        "/api/v1/visitors".into(),
        "/api/v1/visitors/me".into(),
        "/api/v1/visitors/me/token".into(),
        "/api/v1/chats".into(),
        "/api/v1/chats/mine".into(),
        "/api/v1/agents".into(),
        "/api/v1/agents/login".into(),
        "/api/v1/agents/logout".into(),
        "/api/v1/agents/me".into(),
        "/api/v1/agents/me/password".into(),
        "/api/v1/inbox".into(),
        "/api/v1/chats/mine/".into(),
        "/API/V1/CHATS".into(),
    ];
    for id in &odd_ids {
        for suffix in ["", "/messages", "/typing", "/read", "/attachments", "/nope"] {
            paths.push(format!("/api/v1/chats/{id}{suffix}"));
        }
        paths.push(format!("/api/v1/agents/{id}"));
    }
    paths
}

fn queries() -> Vec<&'static str> {
    vec![
        "",
        "?after=1e99",
        "?after=-1",
        "?after=9223372036854775807",
        "?after=9223372036854775808",
        "?after=",
        "?after=%00",
        "?wait=-0",
        "?wait=0",
        "?wait=0.01",
        "?wait=1e-300",
        "?wait=-1",
        "?wait=nan",
        "?wait=inf",
        "?wait=-inf",
        "?wait=1e999",
        "?wait=%20",
        "?limit=999999999999",
        "?limit=-5",
        "?limit=0",
        "?limit=1.5",
        "?limit=9223372036854775807",
        "?after=1&after=2",
        "?wait=0&wait=0",
        "?limit=1&limit=x",
        "?before=-9223372036854775808",
        "?before=9223372036854775807&limit=1",
        "?before=0",
        "?status=all",
        "?status=%FF",
        "?status=open&status=closed",
        "?assignee=me",
        "?assignee=%00",
        "?&&&=&=",
        "?%",
        "?a=%ZZ",
        "?after[]=1",
        "?after=1&wait=0.01&limit=1&unknown=1",
    ]
}

fn random_string(rng: &mut StdRng) -> String {
    match rng.gen_range(0..8) {
        0 => String::new(),
        1 => " \t\n".into(),
        2 => "x".repeat(rng.gen_range(1..6000)),
        3 => "é🎉\u{202e}\u{0}".repeat(rng.gen_range(1..50)),
        4 => "<script>alert(1)</script>".into(),
        5 => "open".into(),
        6 => "a@example.com".into(),
        _ => (0..rng.gen_range(1..70))
            .map(|_| rng.gen_range(b'!'..=b'~') as char)
            .collect(),
    }
}

fn random_value(rng: &mut StdRng, depth: usize) -> String {
    match rng.gen_range(0..if depth > 3 { 5 } else { 7 }) {
        0 => "null".into(),
        1 => ["true", "false"].choose(rng).unwrap().to_string(),
        2 => wrong_values().choose(rng).unwrap().to_string(),
        3 => rng.gen::<i64>().to_string(),
        4 => Value::String(random_string(rng)).to_string(),
        5 => {
            let items: Vec<String> = (0..rng.gen_range(0..4))
                .map(|_| random_value(rng, depth + 1))
                .collect();
            format!("[{}]", items.join(","))
        }
        _ => random_object(rng, &["body", "x"], depth + 1),
    }
}

fn random_object(rng: &mut StdRng, keys: &[&str], depth: usize) -> String {
    let mut fields = Vec::new();
    for key in keys {
        if rng.gen_bool(0.7) {
            fields.push(format!("\"{key}\":{}", random_value(rng, depth)));
        }
    }
    format!("{{{}}}", fields.join(","))
}

/// A random body: mostly JSON objects with the endpoint's field names and random values.
fn random_body(rng: &mut StdRng) -> Option<Vec<u8>> {
    const KEYS: &[&str] = &[
        "body",
        "client_id",
        "status",
        "assignee_id",
        "typing",
        "seq",
        "email",
        "password",
        "name",
        "role",
        "disabled",
        "page_url",
        "current_password",
        "new_password",
    ];
    let body = match rng.gen_range(0..10) {
        0 => return None,
        1 => Vec::new(),
        2 => {
            let mut junk = vec![0u8; rng.gen_range(1..300)];
            rng.fill(&mut junk[..]);
            junk
        }
        3 => {
            let text = random_object(rng, KEYS, 0);
            let cut = rng.gen_range(0..=text.len());
            text.as_bytes()[..cut].to_vec()
        }
        4 => format!(
            "{{\"body\":\"{}\"}}",
            "y".repeat(rng.gen_range(60_000..140_000))
        )
        .into_bytes(),
        _ => {
            let how_many = rng.gen_range(1..4);
            let keys: Vec<&str> = KEYS.choose_multiple(rng, how_many).copied().collect();
            random_object(rng, &keys, 0).into_bytes()
        }
    };
    Some(body)
}

fn random_request(rng: &mut StdRng, ids: &Ids, paths: &[String]) -> Fuzzed {
    let method = *[
        "GET", "GET", "POST", "POST", "POST", "PATCH", "PATCH", "PUT", "DELETE", "OPTIONS", "HEAD",
        "TRACE", "PROPFIND",
    ]
    .choose(rng)
    .unwrap();
    let path = format!(
        "{}{}",
        paths.choose(rng).unwrap(),
        queries().choose(rng).unwrap()
    );
    let authorization = match rng.gen_range(0..12) {
        0 => None,
        1 => Some(b"Bearer".to_vec()),
        2 => Some(b"Bearer ".to_vec()),
        3 => Some(format!("bearer  {}  ", ids.owner).into_bytes()),
        4 => Some(format!("Basic {}", ids.admin).into_bytes()),
        5 => Some(format!("Bearer {}x", ids.admin).into_bytes()),
        6 => Some(b"Bearer \xff\xfe\x80".to_vec()),
        7 => Some(format!("Bearer {}", "a".repeat(rng.gen_range(100..9000))).into_bytes()),
        8 => Some(format!("Bearer {}, Bearer {}", ids.owner, ids.admin).into_bytes()),
        9 => Some(format!("Bearer {}", ids.other).into_bytes()),
        10 => Some(format!("Bearer {}", ids.owner).into_bytes()),
        _ => Some(format!("Bearer {}", ids.admin).into_bytes()),
    };
    let content_type = [
        None,
        Some("application/json"),
        Some("application/json"),
        Some("application/json; charset=utf-8"),
        Some("application/problem+json"),
        Some("text/plain"),
        Some("multipart/form-data; boundary=----x"),
        Some("multipart/form-data"),
        Some("application/x-www-form-urlencoded"),
        Some("*/*"),
        Some(";;;"),
    ]
    .choose(rng)
    .unwrap()
    .map(String::from);
    Fuzzed {
        method: method.into(),
        path,
        authorization,
        content_type,
        body: random_body(rng),
    }
}

/// Sends requests on a raw connection: paths and bytes a URL library would clean up.
async fn send_raw(port: u16, request: &[u8]) -> Result<Answer, String> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| e.to_string())?;
        stream.write_all(request).await.map_err(|e| e.to_string())?;
        let mut raw = Vec::new();
        stream
            .read_to_end(&mut raw)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(raw)
    };
    let raw = tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .map_err(|_| "no answer in 30 s".to_string())??;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("not an HTTP response: {:?}", String::from_utf8_lossy(&raw)))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status in {head:?}"))?;
    let mut body = raw[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    Ok(Answer {
        status,
        retry_after: head.contains("\r\nretry-after:"),
        body,
    })
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    while let Some(end) = raw.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&raw[..end]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = end + 2;
        body.extend_from_slice(&raw[start..(start + size).min(raw.len())]);
        raw = &raw[(start + size + 2).min(raw.len())..];
    }
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_odd_requests_get_no_5xx_and_errors_in_the_contract_shape() {
    let seed = seed();
    let app = Arc::new(spawn_app().await);
    let ids = fixture(&app).await;
    let paths = paths(&ids);

    let mut runners = Vec::new();
    for runner in 0..RUNNERS {
        let (app, ids, paths) = (app.clone(), ids.clone(), paths.clone());
        runners.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(seed.wrapping_add(runner as u64));
            let mut failures = Vec::new();
            for _ in 0..RANDOM_REQUESTS / RUNNERS {
                let request = random_request(&mut rng, &ids, &paths);
                match send(&app.client, &app.address, &request).await {
                    Ok(answer) => failures.extend(check(&request, &answer).err()),
                    Err(e) => failures.push(e),
                }
            }
            failures
        }));
    }
    let mut failures = Vec::new();
    for runner in runners {
        failures.extend(runner.await.unwrap());
    }

    // Paths a URL library would normalize, sent byte for byte.
    let long = "b".repeat(8000);
    let raw_paths = [
        "/api/v1/chats/../../etc/passwd".to_string(),
        "/api/v1/chats/../../../../../../etc/passwd".into(),
        "/static/../../Cargo.toml".into(),
        "/static/../../../../../../etc/passwd".into(),
        "/static//etc/passwd".into(),
        "/static/./../Cargo.toml".into(),
        "//api/v1/chats/mine".into(),
        "/api/v1//chats/mine".into(),
        "/api/v1/chats/%00".into(),
        format!("/api/v1/chats/{}/../mine", ids.other_chat_id),
        format!("/api/v1/chats/{long}/messages"),
        "/api/v1/chats/mine?after=1&after=2&after=3".into(),
        "/api/v1/chats/%".into(),
        "/api/v1/chats/%zz".into(),
        "http://127.0.0.1/api/v1/chats/mine".into(),
    ];
    for path in &raw_paths {
        for (method, body) in [("GET", ""), ("POST", "{\"body\":\"hi\"}")] {
            let request = format!(
                "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                ids.owner,
                body.len()
            );
            let fuzzed = Fuzzed {
                method: method.into(),
                path: path.clone(),
                authorization: Some(ids.owner.clone().into_bytes()),
                content_type: Some("application/json".into()),
                body: Some(body.as_bytes().to_vec()),
            };
            match send_raw(app.port, request.as_bytes()).await {
                Ok(answer) => failures.extend(check(&fuzzed, &answer).err()),
                Err(e) => failures.push(format!("{e}: {}", fuzzed.describe())),
            }
        }
    }

    // Bytes no request-target may hold: refused by the HTTP parser itself, before any route
    // runs, with a bare 400. Only "refused, and no harm done" is asked of those.
    for path in [
        "/api/v1/chats/\u{e9}\u{1f389}",
        "/api/v1/chats/a\u{7f}b",
        "/api/v1/chats/a\tb",
    ] {
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        match send_raw(app.port, request.as_bytes()).await {
            Ok(answer) if (400..500).contains(&answer.status) => {}
            Ok(answer) => failures.push(format!("GET {path:?} -> {}", answer.status)),
            Err(e) => failures.push(format!("GET {path:?}: {e}")),
        }
    }

    assert!(
        failures.is_empty(),
        "seed {seed}: {} requests went wrong:\n{}",
        failures.len(),
        failures[..failures.len().min(30)].join("\n")
    );
    let health = app.call("GET", "/healthz", None, None).await;
    health.assert_status(200);
    // Still a working chat server, not just one that answers errors.
    let fresh = app.new_visitor_chat().await;
    app.send(&fresh.token, &fresh.chat_id, "still here", None)
        .await
        .assert_status(201);
}
