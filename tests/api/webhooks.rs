//! Webhooks: admin-only management, and signed, ordered, durable deliveries to a real
//! receiver listening on 127.0.0.1.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::helpers::{spawn_app_with, TestApp};

/// One request the receiver got.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) event: String,
    pub(crate) delivery: String,
    signature: String,
    content_type: String,
    body: Vec<u8>,
    /// What the receiver answered.
    status: u16,
}

impl Received {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A webhook receiver on 127.0.0.1 that records every request and answers `500` to the
/// first `fail_first` of them.
#[derive(Clone)]
pub(crate) struct Receiver {
    pub(crate) url: String,
    log: Arc<Mutex<Vec<Received>>>,
    handle: actix_web::dev::ServerHandle,
}

/// The receiver's log, and how many more requests it refuses.
type ReceiverState = (Arc<Mutex<Vec<Received>>>, Arc<AtomicUsize>);

async fn receive(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<ReceiverState>,
) -> HttpResponse {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (log, fail_first) = state.get_ref();
    let fail = fail_first
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    let status = if fail { 500 } else { 200 };
    log.lock().unwrap().push(Received {
        event: header("x-parley-event"),
        delivery: header("x-parley-delivery"),
        signature: header("x-parley-signature"),
        content_type: header("content-type"),
        body: body.to_vec(),
        status,
    });
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).finish()
}

impl Receiver {
    pub(crate) async fn start(fail_first: usize) -> Self {
        Self::start_on(TcpListener::bind("127.0.0.1:0").unwrap(), fail_first).await
    }

    async fn start_on(listener: TcpListener, fail_first: usize) -> Self {
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let state = web::Data::new((log.clone(), Arc::new(AtomicUsize::new(fail_first))));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .default_service(web::to(receive))
        })
        .listen(listener)
        .unwrap()
        .workers(1)
        .disable_signals()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            url: format!("http://127.0.0.1:{port}/hook"),
            log,
            handle,
        }
    }

    /// The requests answered with `2xx`, in arrival order.
    pub(crate) fn delivered(&self) -> Vec<Received> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.status == 200)
            .cloned()
            .collect()
    }

    fn all(&self) -> Vec<Received> {
        self.log.lock().unwrap().clone()
    }

    /// Waits until `count` deliveries arrived (or fails after 15 s).
    pub(crate) async fn wait_for(&self, count: usize) -> Vec<Received> {
        let started = Instant::now();
        loop {
            let delivered = self.delivered();
            if delivered.len() >= count {
                return delivered;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "only {} of {count} deliveries arrived: {:?}",
                delivered.len(),
                delivered.iter().map(|r| &r.event).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Starts the app with fast retries (10 ms, 20 ms, 40 ms …).
async fn spawn_fast_app() -> TestApp {
    spawn_app_with(|config| {
        config.webhook_retry_base_ms = 10;
        config.webhook_allow_private = true;
    })
    .await
}

pub(crate) async fn create_webhook(
    app: &TestApp,
    token: &str,
    url: &str,
    events: &[&str],
) -> (String, String) {
    let reply = app
        .call(
            "POST",
            "/api/v1/webhooks",
            Some(token),
            Some(json!({ "url": url, "events": events })),
        )
        .await;
    let body = reply.assert_status(201);
    (
        body["webhook"]["id"].as_str().unwrap().to_string(),
        body["secret"].as_str().unwrap().to_string(),
    )
}

fn assert_signed(received: &Received, secret: &str) {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(&received.body);
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(
        received.signature, expected,
        "signature of {}",
        received.delivery
    );
    assert_eq!(received.content_type, "application/json");
    let payload = received.json();
    assert_eq!(payload["event"], received.event.as_str());
    assert_eq!(payload["id"], received.delivery.as_str());
    assert!(payload["created_at"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn only_admins_may_manage_webhooks() {
    let app = spawn_app_with(|c| c.webhook_allow_private = true).await;
    let admin = app.admin_token().await;
    let (agent, _) = app.new_agent(&admin, "agent@example.com").await;
    let (visitor, _) = app.new_visitor().await;
    let body = json!({"url": "https://example.com/hook", "events": ["chat.created"]});

    app.call("POST", "/api/v1/webhooks", None, Some(body.clone()))
        .await
        .assert_error(401, "unauthorized");
    for token in [&agent, &visitor] {
        app.call("POST", "/api/v1/webhooks", Some(token), Some(body.clone()))
            .await
            .assert_error(403, "forbidden");
        app.call("GET", "/api/v1/webhooks", Some(token), None)
            .await
            .assert_error(403, "forbidden");
        app.call("DELETE", "/api/v1/webhooks/x", Some(token), None)
            .await
            .assert_error(403, "forbidden");
    }
    app.call("GET", "/api/v1/webhooks", None, None)
        .await
        .assert_error(401, "unauthorized");

    let created = app
        .call("POST", "/api/v1/webhooks", Some(&admin), Some(body))
        .await;
    let created = created.assert_status(201);
    let secret = created["secret"].as_str().unwrap();
    assert_eq!(secret.len(), 64, "32 random bytes in hex");
    let webhook = &created["webhook"];
    assert_eq!(webhook["url"], "https://example.com/hook");
    assert_eq!(webhook["events"], json!(["chat.created"]));
    assert_eq!(webhook["disabled"], false);
    assert!(webhook["created_at"].is_string());
    let id = webhook["id"].as_str().unwrap();

    let list = app
        .call("GET", "/api/v1/webhooks", Some(&admin), None)
        .await;
    let list = list.assert_status(200);
    assert_eq!(list["webhooks"].as_array().unwrap().len(), 1);
    assert_eq!(list["webhooks"][0]["id"], id);
    assert!(
        !list.to_string().contains(secret),
        "secrets are never listed"
    );

    let path = format!("/api/v1/webhooks/{id}");
    app.call("DELETE", &path, Some(&admin), None)
        .await
        .assert_status(204);
    app.call("DELETE", &path, Some(&admin), None)
        .await
        .assert_error(404, "not_found");
    let list = app
        .call("GET", "/api/v1/webhooks", Some(&admin), None)
        .await;
    assert_eq!(list.assert_status(200)["webhooks"], json!([]));
}

#[tokio::test]
async fn invalid_webhooks_are_rejected_in_the_contracts_shape() {
    let app = spawn_app_with(|c| c.webhook_allow_private = true).await;
    let admin = app.admin_token().await;
    let long_url = format!("https://example.com/{}", "a".repeat(2048));
    let invalid = [
        json!({"url": "ftp://example.com/", "events": ["chat.created"]}),
        json!({"url": "not a url", "events": ["chat.created"]}),
        json!({"url": long_url, "events": ["chat.created"]}),
        json!({"url": "https://example.com/", "events": []}),
        json!({"url": "https://example.com/", "events": ["chat.deleted"]}),
        json!({"url": "https://example.com/", "events": ["chat.created"], "secret": ""}),
    ];
    for body in invalid {
        app.call("POST", "/api/v1/webhooks", Some(&admin), Some(body))
            .await
            .assert_error(422, "invalid");
    }
    let malformed = [
        json!({"url": 5, "events": ["chat.created"]}),
        json!({"url": "https://example.com/", "events": "chat.created"}),
        json!({"events": ["chat.created"]}),
    ];
    for body in malformed {
        app.call("POST", "/api/v1/webhooks", Some(&admin), Some(body))
            .await
            .assert_error(400, "bad_request");
    }
}

#[tokio::test]
async fn deliveries_are_signed_and_only_subscribed_events_are_sent() {
    let app = spawn_fast_app().await;
    let admin = app.admin_token().await;
    let messages_receiver = Receiver::start(0).await;
    let chats_receiver = Receiver::start(0).await;
    let (_, messages_secret) =
        create_webhook(&app, &admin, &messages_receiver.url, &["message.created"]).await;
    let (_, chats_secret) = create_webhook(
        &app,
        &admin,
        &chats_receiver.url,
        &["chat.created", "chat.closed"],
    )
    .await;

    let chat = app.new_visitor_chat().await;
    app.send(&chat.token, &chat.chat_id, "hello", None)
        .await
        .assert_status(201);
    app.send(&admin, &chat.chat_id, "hi, how can I help?", None)
        .await
        .assert_status(201);
    // An idempotent resend creates nothing, so it reports nothing.
    app.send(&chat.token, &chat.chat_id, "again", Some("k1"))
        .await
        .assert_status(201);
    app.send(&chat.token, &chat.chat_id, "again", Some("k1"))
        .await
        .assert_status(200);
    app.patch_chat(&admin, &chat.chat_id, json!({"status": "closed"}))
        .await
        .assert_status(200);

    let messages = messages_receiver.wait_for(3).await;
    let chats = chats_receiver.wait_for(2).await;
    // Let any stray extra delivery show up before counting.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        messages_receiver.all().len(),
        3,
        "system messages are not message.created"
    );
    assert_eq!(chats_receiver.all().len(), 2);

    for (received, body) in messages
        .iter()
        .zip(["hello", "hi, how can I help?", "again"])
    {
        assert_signed(received, &messages_secret);
        assert_eq!(received.event, "message.created");
        let payload = received.json();
        assert_eq!(payload["chat_id"], chat.chat_id.as_str());
        assert_eq!(payload["message"]["body"], body);
    }
    assert_eq!(messages[0].json()["message"]["sender"], "visitor");
    assert_eq!(messages[1].json()["message"]["sender"], "agent");

    for received in &chats {
        assert_signed(received, &chats_secret);
    }
    assert_eq!(chats[0].event, "chat.created");
    assert_eq!(chats[0].json()["chat"]["id"], chat.chat_id.as_str());
    assert_eq!(chats[1].event, "chat.closed");
    let closed = chats[1].json();
    assert_eq!(closed["chat_id"], chat.chat_id.as_str());
    assert_eq!(closed["message"]["sender"], "system");
    assert_eq!(closed["message"]["event"], "closed");

    // A signature made with another secret does not verify.
    let mut mac = Hmac::<Sha256>::new_from_slice(b"wrong").unwrap();
    mac.update(&messages[0].body);
    assert_ne!(
        messages[0].signature,
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    );
}

/// Sends `per_chat` messages into each chat, interleaved, and returns the bodies per chat.
async fn send_interleaved(
    app: &TestApp,
    chats: &[crate::helpers::VisitorChat],
    per_chat: usize,
) -> HashMap<String, Vec<String>> {
    let mut sent: HashMap<String, Vec<String>> = HashMap::new();
    for i in 0..per_chat {
        for chat in chats {
            let body = format!("message {i}");
            app.send(&chat.token, &chat.chat_id, &body, None)
                .await
                .assert_status(201);
            sent.entry(chat.chat_id.clone()).or_default().push(body);
        }
    }
    sent
}

/// The delivered message bodies per chat, in arrival order; asserts no delivery twice.
fn bodies_per_chat(delivered: &[Received]) -> HashMap<String, Vec<String>> {
    let mut seen = std::collections::HashSet::new();
    let mut per_chat: HashMap<String, Vec<String>> = HashMap::new();
    for received in delivered {
        assert!(seen.insert(received.delivery.clone()), "delivered twice");
        let payload = received.json();
        per_chat
            .entry(payload["chat_id"].as_str().unwrap().to_string())
            .or_default()
            .push(payload["message"]["body"].as_str().unwrap().to_string());
    }
    per_chat
}

#[tokio::test]
async fn a_receiver_that_fails_at_first_still_gets_every_event_in_order() {
    let app = spawn_fast_app().await;
    let admin = app.admin_token().await;
    let receiver = Receiver::start(5).await;
    let (_, secret) = create_webhook(&app, &admin, &receiver.url, &["message.created"]).await;
    let chats = [app.new_visitor_chat().await, app.new_visitor_chat().await];

    let sent = send_interleaved(&app, &chats, 6).await;
    let delivered = receiver.wait_for(12).await;

    assert!(
        receiver.all().len() >= 12 + 5,
        "the first five were refused"
    );
    for received in &delivered {
        assert_signed(received, &secret);
    }
    assert_eq!(bodies_per_chat(&delivered), sent);

    // The queue recorded each attempt: every refusal was retried, none given up. (The last
    // answer may reach the receiver's log just before its outcome is committed: wait for it.)
    let conn = parley::store::open(&app.db_path).unwrap();
    let started = Instant::now();
    let states = loop {
        let states: Vec<_> = delivered
            .iter()
            .map(|r| {
                parley::store::webhooks::delivery_state(
                    &parley::store::Db::Sqlite(&conn),
                    &r.delivery,
                )
                .unwrap()
                .unwrap()
            })
            .collect();
        if states.iter().all(|s| s.delivered) || started.elapsed() > Duration::from_secs(5) {
            break states;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        states.iter().all(|s| s.delivered && !s.failed),
        "{states:?}"
    );
    let attempts: i64 = states.iter().map(|s| s.attempts).sum();
    assert_eq!(attempts as usize, receiver.all().len());
}

#[tokio::test]
async fn a_receiver_that_is_down_gets_the_backlog_in_order_once_it_is_back() {
    let app = spawn_fast_app().await;
    let admin = app.admin_token().await;
    // Reserve a port, then free it: nothing listens there until the receiver starts.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/hook");
    create_webhook(&app, &admin, &url, &["message.created"]).await;
    let chats = [app.new_visitor_chat().await, app.new_visitor_chat().await];

    let sent = send_interleaved(&app, &chats, 4).await;
    // Several attempts fail with "connection refused" meanwhile.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let receiver = Receiver::start_on(TcpListener::bind(("127.0.0.1", port)).unwrap(), 0).await;

    let delivered = receiver.wait_for(8).await;
    assert_eq!(bodies_per_chat(&delivered), sent);
}

#[tokio::test]
async fn undelivered_events_survive_a_restart() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let first = spawn_fast_app().await;
    let admin = first.admin_token().await;
    create_webhook(&first, &admin, &url, &["message.created"]).await;
    let chat = first.new_visitor_chat().await;
    let sent = send_interleaved(&first, std::slice::from_ref(&chat), 3).await;
    first.stopper.stop().await;

    // The same database, a new process-like start; the receiver is up now.
    let db = first.db_path.clone();
    let receiver = Receiver::start_on(TcpListener::bind(("127.0.0.1", port)).unwrap(), 0).await;
    let _second = spawn_app_with(move |config| {
        config.db = db;
        config.webhook_retry_base_ms = 10;
        config.webhook_allow_private = true;
    })
    .await;
    let delivered = receiver.wait_for(3).await;
    assert_eq!(bodies_per_chat(&delivered), sent);
    receiver.handle.stop(false).await;
}

#[tokio::test]
async fn a_deleted_webhook_gets_nothing_more() {
    let app = spawn_fast_app().await;
    let admin = app.admin_token().await;
    let receiver = Receiver::start(0).await;
    let (id, _) = create_webhook(&app, &admin, &receiver.url, &["message.created"]).await;
    let chat = app.new_visitor_chat().await;
    app.send(&chat.token, &chat.chat_id, "one", None)
        .await
        .assert_status(201);
    receiver.wait_for(1).await;
    app.call(
        "DELETE",
        &format!("/api/v1/webhooks/{id}"),
        Some(&admin),
        None,
    )
    .await
    .assert_status(204);
    app.send(&chat.token, &chat.chat_id, "two", None)
        .await
        .assert_status(201);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.all().len(), 1);
}
