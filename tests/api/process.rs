//! The real `parley` binary as a child process, for the tests that kill, restart or read the
//! log of a whole server (`TestApp` runs the app inside the test process instead).

use std::fs::OpenOptions;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::time::Instant;

use crate::client::{ApiClient, ADMIN_EMAIL, ADMIN_PASSWORD};

/// A `parley` process on a fixed port and database; killed (SIGKILL) when dropped.
pub struct Parley {
    pub child: Child,
    pub port: u16,
    pub db: PathBuf,
    log: PathBuf,
    /// Extra environment (`PARLEY_*` settings), kept across [`Parley::restart`].
    env: Vec<(String, String)>,
}

impl Parley {
    /// Starts the binary on a free port with `parley.db` and `parley.log` in `dir`, and waits
    /// until it serves.
    pub async fn start_in(dir: &Path) -> Self {
        let mut parley = Self::start(free_port(), &dir.join("parley.db"), &dir.join("parley.log"));
        parley.wait_healthy(&parley.api().http).await;
        parley
    }

    pub fn start(port: u16, db: &Path, log: &Path) -> Self {
        Self::start_logging(port, db, log, "warn")
    }

    /// [`Parley::start`] with `RUST_LOG` set to `rust_log`.
    pub fn start_logging(port: u16, db: &Path, log: &Path, rust_log: &str) -> Self {
        Self::start_with(port, db, log, rust_log, Vec::new())
    }

    /// [`Parley::start_in`] with extra environment variables, kept across restarts.
    pub async fn start_in_with_env(dir: &Path, env: &[(&str, &str)]) -> Self {
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let (db, log) = (dir.join("parley.db"), dir.join("parley.log"));
        let mut parley = Self::start_with(free_port(), &db, &log, "warn", env);
        parley.wait_healthy(&parley.api().http).await;
        parley
    }

    fn start_with(
        port: u16,
        db: &Path,
        log: &Path,
        rust_log: &str,
        env: Vec<(String, String)>,
    ) -> Self {
        let log_file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("the log file opens");
        let child = Command::new(env!("CARGO_BIN_EXE_parley"))
            .arg("--addr")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--db")
            .arg(db)
            .env("PARLEY_ADMIN_EMAIL", ADMIN_EMAIL)
            .env("PARLEY_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("RUST_LOG", rust_log)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("the parley binary starts");
        Self {
            child,
            port,
            db: db.to_path_buf(),
            log: log.to_path_buf(),
            env,
        }
    }

    pub fn address(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A client of this server (the port stays the same across [`Parley::restart`]).
    pub fn api(&self) -> ApiClient {
        ApiClient::new(self.address())
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `/healthz` answers 200; fails if the process exits first.
    pub async fn wait_healthy(&mut self, client: &reqwest::Client) {
        if let Err(status) = self.try_wait_healthy(client).await {
            panic!(
                "parley exited with {status} while starting; log:\n{}",
                self.log_text()
            );
        }
    }

    /// Waits until `/healthz` answers 200, or the process exits (`Err`).
    async fn try_wait_healthy(
        &mut self,
        client: &reqwest::Client,
    ) -> Result<(), std::process::ExitStatus> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let url = format!("{}/healthz", self.address());
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Err(status);
            }
            let healthy = client
                .get(&url)
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
            if healthy {
                return Ok(());
            }
            assert!(
                Instant::now() < deadline,
                "parley did not become healthy; log:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no chance to flush, answer or clean up anything.
    pub fn kill_9(&mut self) {
        self.child.kill().expect("SIGKILL is delivered");
        self.child.wait().expect("the killed process is reaped");
    }

    /// Starts the binary again on the same port and database, and waits until it serves.
    /// The port can be briefly taken (say, by an outgoing connection's ephemeral port), so a
    /// start that exits at once is retried.
    pub async fn restart(&mut self) {
        let http = self.api().http;
        for _ in 0..20 {
            let env = std::mem::take(&mut self.env);
            *self = Self::start_with(self.port, &self.db.clone(), &self.log.clone(), "warn", env);
            if self.try_wait_healthy(&http).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!(
            "parley did not restart on port {}; log:\n{}",
            self.port,
            self.log_text()
        );
    }
}

impl Drop for Parley {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
