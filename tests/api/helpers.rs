//! The test harness: the real app on an ephemeral port with a temporary database, reached
//! through the shared [`ApiClient`] (one helper per endpoint).

#![allow(dead_code)]

use std::future::Future;
use std::ops::Deref;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use parley::config::Config;
use parley::http::server::{Application, Stopper};
use parley::store::Store;
use serde_json::Value;

pub use crate::client::{contract_code, Reply, VisitorChat};
use crate::client::{ApiClient, ADMIN_EMAIL, ADMIN_PASSWORD};

/// The real app, run inside the test process. Its [`ApiClient`] is reached through `Deref`:
/// `app.call(…)`, `app.address`, `app.admin_email`.
pub struct TestApp {
    pub api: ApiClient,
    /// The client's `http` under its old name (the same connection pool), for raw requests.
    pub client: reqwest::Client,
    pub port: u16,
    pub db_path: PathBuf,
    /// The PostgreSQL database the app runs on, if not the SQLite file at `db_path`.
    pub database_url: Option<String>,
    pub stopper: Stopper,
    pub store: Store,
    pub server: tokio::task::JoinHandle<std::io::Result<()>>,
    /// Keeps the database's directory alive as long as the app.
    pub dir: tempfile::TempDir,
}

impl TestApp {
    /// Reads a whole response: [`Reply::from_response`] under the name raw-request tests use.
    pub async fn reply(response: reqwest::Response) -> Reply {
        Reply::from_response(response).await
    }
}

impl Deref for TestApp {
    type Target = ApiClient;

    fn deref(&self) -> &ApiClient {
        &self.api
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
    if config.database_url.is_none() && crate::pg::tests_use_postgres() {
        let cluster = crate::pg::cluster().expect("PARLEY_TEST_BACKEND=postgres needs PostgreSQL");
        config.database_url = Some(cluster.fresh_database());
    }
    let database_url = config.database_url.clone();
    let app = Application::build(config).await.expect("the app builds");
    let port = app.port();
    let stopper = app.stopper();
    let store = app.store();
    let server = tokio::spawn(app.run_until_stopped());
    let api = ApiClient::new(format!("http://127.0.0.1:{port}"));
    TestApp {
        client: api.http.clone(),
        api,
        port,
        db_path,
        database_url,
        stopper,
        store,
        server,
        dir,
    }
}

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

/// The seqs of a poll reply's messages.
pub fn seqs(body: &Value) -> Vec<i64> {
    body["messages"]
        .as_array()
        .expect("a messages array")
        .iter()
        .map(|m| m["seq"].as_i64().expect("a seq"))
        .collect()
}
