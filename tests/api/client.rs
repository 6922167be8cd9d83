//! The one test client: a server's address and an HTTP client, with one helper per endpoint.
//! The in-process `TestApp`, the child-process `Parley` and the browser tests all use it.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

/// The first admin every test server is started with, and its password.
pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "correct-horse-battery";

/// A client of one server; cheap to clone (the HTTP client shares its connection pool).
#[derive(Clone, Debug)]
pub struct ApiClient {
    /// `http://127.0.0.1:PORT`
    pub address: String,
    pub http: reqwest::Client,
    /// The first admin's credentials, for [`ApiClient::admin_token`].
    pub admin_email: String,
    pub admin_password: String,
}

/// A response: its status and its JSON body (`Value::Null` when empty or not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// Reads a whole response.
    pub async fn from_response(response: reqwest::Response) -> Reply {
        Self::try_from_response(response)
            .await
            .expect("the body arrives")
    }

    /// Reads a whole response; `Err` when the body does not arrive.
    pub async fn try_from_response(response: reqwest::Response) -> reqwest::Result<Reply> {
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await?;
        Ok(Reply {
            status,
            headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        })
    }

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

/// A visitor with a token and an open chat.
pub struct VisitorChat {
    pub token: String,
    pub visitor_id: String,
    pub chat_id: String,
}

impl ApiClient {
    /// A client of the server at `address`, signing in as the test admin.
    pub fn new(address: String) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            // Well under the server's keep-alive (actix: 5 s): a pooled connection reused
            // just as the server closes it for idling fails with an incomplete message
            // (seen in CI after a browser step of about 5 s).
            .pool_idle_timeout(Duration::from_secs(2))
            .build()
            .expect("a client builds");
        Self {
            address,
            http,
            admin_email: ADMIN_EMAIL.into(),
            admin_password: ADMIN_PASSWORD.into(),
        }
    }

    /// The same client over another HTTP client (say, one with shorter timeouts).
    pub fn with_http(self, http: reqwest::Client) -> Self {
        Self { http, ..self }
    }

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
        self.try_call(method, path, token, body)
            .await
            .expect("the server answers")
    }

    /// [`ApiClient::call`] to a server that may be gone: `Err` when no whole answer arrives
    /// (connection refused or reset, timeout).
    pub async fn try_call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> reqwest::Result<Reply> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a valid method");
        let mut request = self.http.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        Reply::try_from_response(request.send().await?).await
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

    /// The chats an agent sees with this `status` filter (`open`, `closed`, `all`).
    pub async fn chats(&self, token: &str, status: &str) -> Reply {
        self.call(
            "GET",
            &format!("/api/v1/chats?status={status}"),
            Some(token),
            None,
        )
        .await
    }

    /// Uploads a multipart form to a chat's attachments.
    pub async fn upload(
        &self,
        token: &str,
        chat_id: &str,
        form: reqwest::multipart::Form,
    ) -> Reply {
        let response = self
            .http
            .post(self.url(&format!("/api/v1/chats/{chat_id}/attachments")))
            .bearer_auth(token)
            .multipart(form)
            .send()
            .await
            .expect("the server answers");
        Reply::from_response(response).await
    }

    pub async fn send(
        &self,
        token: &str,
        chat_id: &str,
        body: &str,
        client_id: Option<&str>,
    ) -> Reply {
        self.try_send(token, chat_id, body, client_id)
            .await
            .expect("the server answers")
    }

    /// [`ApiClient::send`] to a server that may be gone (see [`ApiClient::try_call`]).
    pub async fn try_send(
        &self,
        token: &str,
        chat_id: &str,
        body: &str,
        client_id: Option<&str>,
    ) -> reqwest::Result<Reply> {
        let mut payload = json!({ "body": body });
        if let Some(client_id) = client_id {
            payload["client_id"] = json!(client_id);
        }
        self.try_call(
            "POST",
            &format!("/api/v1/chats/{chat_id}/messages"),
            Some(token),
            Some(payload),
        )
        .await
    }

    /// Up to `limit` messages after `after`, without waiting.
    pub async fn messages(&self, token: &str, chat_id: &str, after: i64, limit: u32) -> Reply {
        self.read(token, chat_id, &format!("after={after}&limit={limit}"))
            .await
    }

    pub async fn poll(&self, token: &str, chat_id: &str, after: i64, wait: u64) -> Reply {
        self.read(token, chat_id, &format!("after={after}&wait={wait}"))
            .await
    }

    /// `GET` a chat's messages with this query.
    async fn read(&self, token: &str, chat_id: &str, query: &str) -> Reply {
        let path = format!("/api/v1/chats/{chat_id}/messages?{query}");
        self.call("GET", &path, Some(token), None).await
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

    /// The chat as `GET /api/v1/chats/{id}` shows it to this token (must answer `200`).
    pub async fn chat(&self, token: &str, chat_id: &str) -> Value {
        let path = format!("/api/v1/chats/{chat_id}");
        let reply = self.call("GET", &path, Some(token), None).await;
        reply.assert_status(200)["chat"].clone()
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
