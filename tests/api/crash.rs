//! Crash safety of the real `parley` binary: a SIGKILL in the middle of writes loses and
//! doubles nothing that was acknowledged, and SIGTERM answers held polls and exits cleanly.

use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use crate::client::{ApiClient, VisitorChat};
use crate::process::Parley;

const VISITORS: usize = 6;
const AGENT_SENDERS: usize = 4;
const KILL_ROUNDS: usize = 4;
/// Acknowledged messages each round must see before the kill, so the kill lands under load.
const ACKS_PER_ROUND: usize = 15;

/// One message a sender tried to send, and the id the server acknowledged it with.
#[derive(Debug, Clone)]
struct Sent {
    token: String,
    chat_id: String,
    client_id: String,
    body: String,
    acked: Option<String>,
}

/// What one send attempt came to.
enum Attempt {
    /// `201` (new) or `200` (already stored), with the status and the message's id.
    Acked(u16, String),
    /// `429`: nothing was written; try again after this long.
    Limited(Duration),
    /// No answer (connection refused or reset, timeout): maybe written, maybe not.
    NoAnswer,
    /// Any other status: a server bug for a well-formed message.
    Unexpected(String),
}

async fn attempt(api: &ApiClient, sent: &Sent) -> Attempt {
    let reply = api
        .try_send(
            &sent.token,
            &sent.chat_id,
            &sent.body,
            Some(&sent.client_id),
        )
        .await;
    let Ok(reply) = reply else {
        return Attempt::NoAnswer;
    };
    let status = reply.status.as_u16();
    let retry_after = reply
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let body = reply.body;
    match status {
        200 | 201 => {
            let message = &body["message"];
            if message["client_id"] != sent.client_id.as_str() || message["body"] != sent.body {
                return Attempt::Unexpected(format!("{status} with another message: {body}"));
            }
            match message["id"].as_str() {
                Some(id) => Attempt::Acked(status, id.to_string()),
                None => Attempt::Unexpected(format!("{status} without a message id: {body}")),
            }
        }
        429 => Attempt::Limited(
            Duration::from_secs(retry_after.unwrap_or(0).min(5)).max(Duration::from_millis(100)),
        ),
        _ => Attempt::Unexpected(format!("{status} {body}")),
    }
}

/// Shared between the senders and the test that kills the server under them.
struct Load {
    api: ApiClient,
    stop: AtomicBool,
    acked: AtomicUsize,
    limited: AtomicUsize,
    unexpected: Mutex<Vec<String>>,
}

/// Sends messages with fresh client ids into `chats` (round robin) until told to stop; each
/// message is tried until it is acknowledged or gets no answer, then the next one goes.
async fn sender(
    load: Arc<Load>,
    token: String,
    chats: Vec<String>,
    prefix: String,
    pace: Duration,
) -> Vec<Sent> {
    let mut log = Vec::new();
    let mut n = 0;
    while !load.stop.load(Ordering::SeqCst) {
        let client_id = format!("{prefix}-{n}");
        let mut sent = Sent {
            token: token.clone(),
            chat_id: chats[n % chats.len()].clone(),
            body: format!("message {client_id}"),
            client_id,
            acked: None,
        };
        n += 1;
        loop {
            match attempt(&load.api, &sent).await {
                Attempt::Acked(_, id) => {
                    sent.acked = Some(id);
                    load.acked.fetch_add(1, Ordering::SeqCst);
                }
                Attempt::Limited(wait) if !load.stop.load(Ordering::SeqCst) => {
                    load.limited.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(wait).await;
                    continue;
                }
                Attempt::Limited(_) => {}
                Attempt::NoAnswer => tokio::time::sleep(Duration::from_millis(50)).await,
                Attempt::Unexpected(what) => load
                    .unexpected
                    .lock()
                    .unwrap()
                    .push(format!("{}: {what}", sent.client_id)),
            }
            break;
        }
        log.push(sent);
        tokio::time::sleep(pace).await;
    }
    log
}

/// Waits (with a deadline) until the senders have had `count` more messages acknowledged.
async fn wait_for_acks(load: &Load, count: usize) {
    let target = load.acked.load(Ordering::SeqCst) + count;
    let deadline = Instant::now() + Duration::from_secs(60);
    while load.acked.load(Ordering::SeqCst) < target {
        assert!(
            Instant::now() < deadline,
            "the senders got no {count} acknowledgements in 60 s; unexpected answers: {:?}",
            load.unexpected.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every message of a chat, read by chaining polls (`after` = the previous `next`).
async fn read_all(api: &ApiClient, token: &str, chat_id: &str) -> Vec<Value> {
    let mut messages = Vec::new();
    let mut after = 0;
    loop {
        let reply = api.messages(token, chat_id, after, 37).await;
        let body = reply.assert_status(200);
        let page = body["messages"].as_array().unwrap();
        messages.extend(page.iter().cloned());
        let next = body["next"].as_i64().unwrap();
        if body["has_more"] != true {
            return messages;
        }
        assert!(
            next > after,
            "a page with has_more moves the cursor forward"
        );
        after = next;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_acknowledged_message_is_lost_or_doubled_across_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut parley = Parley::start_in(dir.path()).await;
    // Short timeouts: a request caught by a kill is "no answer" soon, not after a minute.
    let api = parley.api().with_http(
        reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(2))
            .build()
            .unwrap(),
    );

    let mut visitors = Vec::new();
    for _ in 0..VISITORS {
        visitors.push(api.new_visitor_chat().await);
    }
    let agent = api.admin_token().await;
    let chat_ids: Vec<String> = visitors.iter().map(|v| v.chat_id.clone()).collect();
    let tokens: HashMap<String, String> = visitors
        .iter()
        .map(|v| (v.chat_id.clone(), v.token.clone()))
        .collect();

    let load = Arc::new(Load {
        api: api.clone(),
        stop: AtomicBool::new(false),
        acked: AtomicUsize::new(0),
        limited: AtomicUsize::new(0),
        unexpected: Mutex::new(Vec::new()),
    });
    // Visitors at a human-ish pace (each token and the one address are rate-limited), the
    // agent faster and into every chat, so kills land among batches of concurrent writes.
    let mut senders = Vec::new();
    for (v, visitor) in visitors.iter().enumerate() {
        senders.push(tokio::spawn(sender(
            load.clone(),
            visitor.token.clone(),
            vec![visitor.chat_id.clone()],
            format!("v{v}"),
            Duration::from_millis(150),
        )));
    }
    for a in 0..AGENT_SENDERS {
        senders.push(tokio::spawn(sender(
            load.clone(),
            agent.clone(),
            chat_ids.clone(),
            format!("a{a}"),
            Duration::from_millis(20),
        )));
    }

    for _ in 0..KILL_ROUNDS {
        wait_for_acks(&load, ACKS_PER_ROUND).await;
        let under_load = rand::thread_rng().gen_range(100..400);
        tokio::time::sleep(Duration::from_millis(under_load)).await;
        parley.kill_9();
        parley.restart().await;
    }
    // The restarted server takes writes again before the senders stop.
    wait_for_acks(&load, ACKS_PER_ROUND).await;
    load.stop.store(true, Ordering::SeqCst);
    let mut sent: Vec<Sent> = Vec::new();
    for s in senders {
        sent.extend(s.await.unwrap());
    }
    let unexpected = load.unexpected.lock().unwrap().clone();
    assert!(
        unexpected.is_empty(),
        "answers that are neither an ack, a 429 nor no answer: {unexpected:?}"
    );
    let acked_before_retry: HashMap<String, String> = sent
        .iter()
        .filter_map(|s| s.acked.clone().map(|id| (s.client_id.clone(), id)))
        .collect();

    // Retry every unacknowledged message with its client id: committed ones answer 200 with
    // the original, lost ones are written now (201). Nothing may be written twice.
    let mut retry_statuses: HashMap<u16, usize> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    for s in sent.iter_mut().filter(|s| s.acked.is_none()) {
        loop {
            assert!(Instant::now() < deadline, "retries did not finish in time");
            match attempt(&api, s).await {
                Attempt::Acked(status, id) => {
                    *retry_statuses.entry(status).or_default() += 1;
                    s.acked = Some(id);
                    break;
                }
                Attempt::Limited(wait) => tokio::time::sleep(wait).await,
                Attempt::NoAnswer => tokio::time::sleep(Duration::from_millis(100)).await,
                Attempt::Unexpected(what) => panic!("retry of {} got {what}", s.client_id),
            }
        }
    }
    // 200s here are the interesting case: committed, but the answer died with the process.
    eprintln!(
        "{} messages, {} acknowledged before the last restart, {} answers 429; \
         retries answered {retry_statuses:?}",
        sent.len(),
        acked_before_retry.len(),
        load.limited.load(Ordering::SeqCst)
    );

    // Read everything back through the cursor.
    let mut stored: HashMap<(String, String), Value> = HashMap::new();
    let mut total = 0;
    for chat_id in &chat_ids {
        let messages = read_all(&api, &tokens[chat_id], chat_id).await;
        let seqs: Vec<i64> = messages
            .iter()
            .map(|m| m["seq"].as_i64().unwrap())
            .collect();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "seqs of chat {chat_id} strictly increase: {seqs:?}"
        );
        for m in messages.into_iter().filter(|m| m["sender"] != "system") {
            total += 1;
            let client_id = m["client_id"]
                .as_str()
                .expect("every message sent had a client id")
                .to_string();
            let key = (chat_id.clone(), client_id);
            assert!(
                stored.insert(key.clone(), m).is_none(),
                "{key:?} is stored twice"
            );
        }
    }
    for s in &sent {
        let key = (s.chat_id.clone(), s.client_id.clone());
        let Some(m) = stored.get(&key) else {
            panic!("{key:?} was acknowledged but is not stored");
        };
        assert_eq!(m["body"], s.body.as_str());
        // The id acknowledged before the kills (or by the retry) is the one stored.
        assert_eq!(m["id"].as_str(), s.acked.as_deref(), "{key:?}");
    }
    let distinct: HashSet<&str> = sent.iter().map(|s| s.client_id.as_str()).collect();
    assert_eq!(
        distinct.len(),
        sent.len(),
        "the test never reuses a client id"
    );
    assert_eq!(
        total,
        distinct.len(),
        "exactly the messages sent are stored"
    );

    let conn = rusqlite::Connection::open_with_flags(
        &parley.db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
}

/// Reads one HTTP/1.1 response (the request asked for `Connection: close`) to its end.
async fn read_response(stream: &mut tokio::net::TcpStream) -> String {
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    String::from_utf8_lossy(&raw).into_owned()
}

#[tokio::test]
async fn sigterm_answers_held_polls_at_once_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let mut parley = Parley::start_in(dir.path()).await;
    // Kept open across the signal, like a browser's idle keep-alive connection.
    let api = parley.api();
    let VisitorChat { token, chat_id, .. } = api.new_visitor_chat().await;

    let mut poll = tokio::net::TcpStream::connect(("127.0.0.1", parley.port))
        .await
        .unwrap();
    let request = format!(
        "GET /api/v1/chats/{chat_id}/messages?after=0&wait=25 HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Authorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    poll.write_all(request.as_bytes()).await.unwrap();
    let mut first = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_secs(1), poll.peek(&mut first)).await;
    assert!(early.is_err(), "the poll is held, not answered at once");

    let killed = Command::new("kill")
        .args(["-TERM", &parley.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let signalled = Instant::now();
    let response = tokio::time::timeout(Duration::from_secs(5), read_response(&mut poll))
        .await
        .expect("the held poll is answered within seconds of SIGTERM");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains(r#""messages":[]"#), "{response}");

    let deadline = signalled + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = parley.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "parley still runs 10 s after SIGTERM; log:\n{}",
            parley.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(0), "log:\n{}", parley.log_text());
    drop(api);
}
