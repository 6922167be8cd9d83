//! The test harness: the real app on an ephemeral port with a temporary database, and a
//! client with one helper per endpoint.

#![allow(dead_code)]

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use parley::config::Config;
use parley::http::server::{Application, Stopper};
use parley::store::Store;
use reqwest::StatusCode;
use serde_json::{json, Value};

pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "correct-horse-battery";

pub struct TestApp {
    /// `http://127.0.0.1:PORT`
    pub address: String,
    pub port: u16,
    pub db_path: PathBuf,
    pub admin_email: String,
    pub admin_password: String,
    pub client: reqwest::Client,
    pub stopper: Stopper,
    pub store: Store,
    pub server: tokio::task::JoinHandle<std::io::Result<()>>,
    /// Keeps the database's directory alive as long as the app.
    pub dir: tempfile::TempDir,
}

/// A response: its status and its JSON body (`Value::Null` when empty or not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn assert_status(&self, expected: u16) -> &Value {
        assert_eq!(
            self.status.as_u16(),
            expected,
            "unexpected status; body: {}",
            self.body
        );
        &self.body
    }

    /// Asserts the contract's error shape with this status and code.
    pub fn assert_error(&self, status: u16, code: &str) {
        self.assert_status(status);
        assert_eq!(self.body["error"]["code"], code, "body: {}", self.body);
        assert!(
            self.body["error"]["message"].is_string(),
            "body: {}",
            self.body
        );
    }
}

/// The configuration of a test server, made by the binary's own parser and defaults: an
/// ephemeral port, this database, two workers, and the test admin.
pub fn test_config(db: &std::path::Path) -> Config {
    Config::parse_from([
        "parley".as_ref(),
        "--addr".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--workers".as_ref(),
        "2".as_ref(),
        "--db".as_ref(),
        db.as_os_str(),
        "--admin-email".as_ref(),
        ADMIN_EMAIL.as_ref(),
        "--admin-password".as_ref(),
        ADMIN_PASSWORD.as_ref(),
    ] as [&std::ffi::OsStr; 11])
    .expect("the test configuration parses")
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the app with a config tweaked by `adjust`.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().expect("a temp dir can be made");
    let db_path = dir.path().join("parley.db");
    let mut config = test_config(&db_path);
    // Functional tests send fast from one address; tests of the limits turn them back on.
    config.rate_limits = false;
    adjust(&mut config);
    let app = Application::build(config).await.expect("the app builds");
    let port = app.port();
    let stopper = app.stopper();
    let store = app.store();
    let server = tokio::spawn(app.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        db_path,
        admin_email: ADMIN_EMAIL.into(),
        admin_password: ADMIN_PASSWORD.into(),
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("a client builds"),
        stopper,
        store,
        server,
        dir,
    }
}

/// A visitor with a token and an open chat.
pub struct VisitorChat {
    pub token: String,
    pub visitor_id: String,
    pub chat_id: String,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Sends a request with an optional token and JSON body.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a valid method");
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the server answers");
        Self::reply(response).await
    }

    pub async fn reply(response: reqwest::Response) -> Reply {
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("the body arrives");
        Reply {
            status,
            headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    pub async fn create_visitor(&self, body: Value) -> Reply {
        self.call("POST", "/api/v1/visitors", None, Some(body))
            .await
    }

    /// A new anonymous visitor's token and id.
    pub async fn new_visitor(&self) -> (String, String) {
        let reply = self.create_visitor(json!({})).await;
        let body = reply.assert_status(201);
        (
            body["token"].as_str().expect("a token").to_string(),
            body["visitor"]["id"].as_str().expect("an id").to_string(),
        )
    }

    pub async fn create_chat(&self, token: &str) -> Reply {
        self.call("POST", "/api/v1/chats", Some(token), None).await
    }

    /// A new visitor with an open chat.
    pub async fn new_visitor_chat(&self) -> VisitorChat {
        let (token, visitor_id) = self.new_visitor().await;
        let reply = self.create_chat(&token).await;
        let chat_id = reply.assert_status(201)["chat"]["id"]
            .as_str()
            .expect("a chat id")
            .to_string();
        VisitorChat {
            token,
            visitor_id,
            chat_id,
        }
    }

    pub async fn send(
        &self,
        token: &str,
        chat_id: &str,
        body: &str,
        client_id: Option<&str>,
    ) -> Reply {
        let mut payload = json!({ "body": body });
        if let Some(client_id) = client_id {
            payload["client_id"] = json!(client_id);
        }
        self.call(
            "POST",
            &format!("/api/v1/chats/{chat_id}/messages"),
            Some(token),
            Some(payload),
        )
        .await
    }

    pub async fn poll(&self, token: &str, chat_id: &str, after: i64, wait: u64) -> Reply {
        self.call(
            "GET",
            &format!("/api/v1/chats/{chat_id}/messages?after={after}&wait={wait}"),
            Some(token),
            None,
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> Reply {
        self.call(
            "POST",
            "/api/v1/agents/login",
            None,
            Some(json!({ "email": email, "password": password })),
        )
        .await
    }

    /// The first admin's token.
    pub async fn admin_token(&self) -> String {
        let reply = self.login(&self.admin_email, &self.admin_password).await;
        reply.assert_status(200)["token"]
            .as_str()
            .expect("a token")
            .to_string()
    }

    /// A new non-admin agent's token and id.
    pub async fn new_agent(&self, admin_token: &str, email: &str) -> (String, String) {
        let reply = self
            .call(
                "POST",
                "/api/v1/agents",
                Some(admin_token),
                Some(json!({"email": email, "name": "Agent Smith", "password": "a-long-password"})),
            )
            .await;
        let id = reply.assert_status(201)["agent"]["id"]
            .as_str()
            .expect("an id")
            .to_string();
        let login = self.login(email, "a-long-password").await;
        let token = login.assert_status(200)["token"]
            .as_str()
            .expect("a token")
            .to_string();
        (token, id)
    }

    pub async fn inbox(&self, token: &str, after: i64, wait: u64) -> Reply {
        self.call(
            "GET",
            &format!("/api/v1/inbox?after={after}&wait={wait}"),
            Some(token),
            None,
        )
        .await
    }

    pub async fn patch_chat(&self, token: &str, chat_id: &str, body: Value) -> Reply {
        self.call(
            "PATCH",
            &format!("/api/v1/chats/{chat_id}"),
            Some(token),
            Some(body),
        )
        .await
    }
}

/// The seqs of a poll reply's messages.
/// Holds `poll` and runs `action` once the poll has had 300 ms to park; returns the poll's
/// answer, the action's result and how long the poll was held.
pub async fn act_while_held<T>(
    poll: impl Future<Output = Reply>,
    action: impl Future<Output = T>,
) -> (Reply, T, Duration) {
    let started = Instant::now();
    let poll = async {
        let reply = poll.await;
        (reply, started.elapsed())
    };
    let action = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        action.await
    };
    let ((reply, held), done) = tokio::join!(poll, action);
    (reply, done, held)
}

pub fn seqs(body: &Value) -> Vec<i64> {
    body["messages"]
        .as_array()
        .expect("a messages array")
        .iter()
        .map(|m| m["seq"].as_i64().expect("a seq"))
        .collect()
}

/// The contract's error code for an error status (the table in `../shared/API.md`).
pub fn contract_code(status: u16) -> Option<&'static str> {
    Some(match status {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        409 => "conflict",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        422 => "invalid",
        429 => "rate_limited",
        _ => return None,
    })
}
