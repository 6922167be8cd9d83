//! A real SMTP server for the email tests: `tests/smtp/sink.py` on Debian's aiosmtpd,
//! started as a child process, writing each accepted mail as a JSON file. It can be
//! stopped and started again on the same port (an SMTP server that is down, then up).
//!
//! Needs `/usr/bin/python3` with `aiosmtpd` (`apt-get install python3-aiosmtpd`): without
//! it the tests fail, never skip.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::process::free_port;

const PYTHON: &str = "/usr/bin/python3";

/// The SMTP sink; stopped when dropped.
pub struct SmtpSink {
    child: Option<Child>,
    pub port: u16,
    out: tempfile::TempDir,
}

impl SmtpSink {
    /// Starts a sink on a free port and waits until it accepts connections.
    pub fn start() -> Self {
        let mut sink = Self {
            child: None,
            port: free_port(),
            out: tempfile::tempdir().expect("a mail dir"),
        };
        sink.up();
        sink
    }

    /// A sink that is down for now: its port is chosen, nothing listens on it yet.
    pub fn down() -> Self {
        Self {
            child: None,
            port: free_port(),
            out: tempfile::tempdir().expect("a mail dir"),
        }
    }

    /// `--smtp-url` for Parley: plain SMTP on loopback.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}?tls=none", self.port)
    }

    /// Starts the server (again) on its port.
    pub fn up(&mut self) {
        assert!(self.child.is_none(), "the sink is already up");
        let has_module = Command::new(PYTHON)
            .args(["-c", "import aiosmtpd"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            has_module,
            "the email tests need {PYTHON} with aiosmtpd: apt-get install python3-aiosmtpd"
        );
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/smtp/sink.py");
        let mut child = Command::new(PYTHON)
            .arg(script)
            .arg("127.0.0.1")
            .arg(self.port.to_string())
            .arg(self.out.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the SMTP sink starts");
        // It prints `ready` once it listens.
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the sink's first line");
        assert_eq!(line.trim(), "ready", "the SMTP sink did not start");
        self.child = Some(child);
    }

    /// Stops the server: connections to its port are refused until [`SmtpSink::up`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Every mail received so far, in no particular order.
    pub fn mails(&self) -> Vec<Value> {
        let mut mails = Vec::new();
        for entry in std::fs::read_dir(self.out.path()).expect("the mail dir") {
            let path = entry.expect("an entry").path();
            if path.extension().is_some_and(|e| e == "json") {
                let text = std::fs::read_to_string(&path).expect("a mail file");
                mails.push(serde_json::from_str(&text).expect("a mail as JSON"));
            }
        }
        mails
    }

    /// The mails to `to`.
    pub fn mails_to(&self, to: &str) -> Vec<Value> {
        self.mails()
            .into_iter()
            .filter(|m| {
                m["rcpt_tos"]
                    .as_array()
                    .is_some_and(|r| r.iter().any(|a| a == to))
            })
            .collect()
    }

    /// Waits until at least `count` mails went to `to` (fails after `within`).
    pub async fn wait_for(&self, to: &str, count: usize, within: Duration) -> Vec<Value> {
        let deadline = Instant::now() + within;
        loop {
            let mails = self.mails_to(to);
            if mails.len() >= count {
                return mails;
            }
            assert!(
                Instant::now() < deadline,
                "{count} mails to {to} did not arrive in {within:?}; got {}: {mails:?}",
                mails.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A header of a received mail, by name (case-insensitive).
pub fn header<'a>(mail: &'a Value, name: &str) -> Option<&'a str> {
    mail["headers"]
        .as_array()?
        .iter()
        .find(|h| h[0].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)))
        .and_then(|h| h[1].as_str())
}

/// The first link in a mail's text that starts with `prefix`.
pub fn link(mail: &Value, prefix: &str) -> Option<String> {
    let text = mail["text"].as_str()?;
    let start = text.find(prefix)?;
    let rest = &text[start..];
    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    Some(rest[..end].to_string())
}
