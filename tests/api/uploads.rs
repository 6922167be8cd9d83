//! Upload abuse: streaming to disk, concurrent uploads, byte quotas and the free-disk floor.

use std::time::{Duration, Instant};

use reqwest::multipart::{Form, Part};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{spawn_app_with, Reply, TestApp};

const BOUNDARY: &str = "XPARLEYUPLOADX";

/// Uploads `len` bytes as `file` (reqwest sets `Content-Length`).
async fn upload(app: &TestApp, token: &str, chat_id: &str, len: usize) -> Reply {
    let form = Form::new().part("file", Part::bytes(vec![b'u'; len]).file_name("notes.txt"));
    app.upload(token, chat_id, form).await
}

/// Repeats `upload` until it answers `status`, for at most `within`; returns that answer.
async fn upload_until(
    app: &TestApp,
    token: &str,
    chat_id: &str,
    status: u16,
    within: Duration,
) -> Reply {
    let deadline = Instant::now() + within;
    loop {
        let reply = upload(app, token, chat_id, 100).await;
        if reply.status.as_u16() == status || Instant::now() > deadline {
            return reply;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn retry_after(reply: &Reply) -> u64 {
    reply
        .headers
        .get("retry-after")
        .expect("a 429 says when to retry")
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// The multipart body around a file: what comes before its bytes and after them.
fn form_parts() -> (String, String) {
    let preamble = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    );
    (preamble, format!("\r\n--{BOUNDARY}--\r\n"))
}

/// The head of an upload request over a raw connection, with these extra header lines.
fn request_head(app: &TestApp, token: &str, chat_id: &str, extra: &str) -> String {
    format!(
        "POST /api/v1/chats/{chat_id}/attachments HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\
         Authorization: Bearer {token}\r\nConnection: close\r\n\
         Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n{extra}\r\n",
        app.port
    )
}

/// Reads a response head; returns its status and the head in lower case.
async fn read_head(stream: &mut TcpStream) -> (u16, String) {
    let read = async {
        let mut raw = Vec::new();
        let mut buf = [0u8; 4096];
        while !raw.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "the connection closed before a response head");
            raw.extend_from_slice(&buf[..n]);
        }
        let head = String::from_utf8_lossy(&raw).to_lowercase();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, head)
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("a response within 10 s")
}

/// An upload over a raw connection whose body stops part-way until [`Self::finish`].
struct StalledUpload {
    stream: TcpStream,
    rest: Vec<u8>,
}

impl StalledUpload {
    /// Sends the head and the first `sent` bytes of a `len`-byte file, then waits.
    async fn start(app: &TestApp, token: &str, chat_id: &str, len: usize, sent: usize) -> Self {
        let (preamble, epilogue) = form_parts();
        let content_length = preamble.len() + len + epilogue.len();
        let head = request_head(
            app,
            token,
            chat_id,
            &format!("Content-Length: {content_length}\r\n"),
        );
        let mut stream = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(preamble.as_bytes()).await.unwrap();
        stream.write_all(&vec![b's'; sent]).await.unwrap();
        stream.flush().await.unwrap();
        let mut rest = vec![b's'; len - sent];
        rest.extend_from_slice(epilogue.as_bytes());
        Self { stream, rest }
    }

    /// Sends the rest of the body; returns the response's status.
    async fn finish(mut self) -> u16 {
        self.stream.write_all(&self.rest).await.unwrap();
        read_head(&mut self.stream).await.0
    }
}

#[tokio::test]
async fn a_stalled_upload_holds_its_tokens_slot_until_it_ends() {
    let app = spawn_app_with(|c| c.uploads_per_token = 1).await;
    let chat = app.new_visitor_chat().await;

    let stalled =
        StalledUpload::start(&app, &chat.token, &chat.chat_id, 256 * 1024, 64 * 1024).await;
    // The stalled upload takes the slot as soon as its head arrives; until then a second
    // upload may still slip in.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let refused = upload_until(
        &app,
        &chat.token,
        &chat.chat_id,
        429,
        Duration::from_secs(5),
    )
    .await;
    refused.assert_error(429, "rate_limited");
    assert!(retry_after(&refused) > 0);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refused at once, not after the stalled upload"
    );

    // The stalled upload was the one holding the slot: it completes, then frees it.
    assert_eq!(stalled.finish().await, 201);
    upload(&app, &chat.token, &chat.chat_id, 100)
        .await
        .assert_status(201);
}

#[tokio::test]
async fn a_stalled_upload_holds_its_addresss_slot_until_the_client_goes_away() {
    let app = spawn_app_with(|c| {
        c.uploads_per_token = 0;
        c.uploads_per_ip = 1;
    })
    .await;
    let first = app.new_visitor_chat().await;
    let second = app.new_visitor_chat().await;

    let stalled =
        StalledUpload::start(&app, &first.token, &first.chat_id, 256 * 1024, 64 * 1024).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Another visitor from the same address is refused while it stalls.
    upload_until(
        &app,
        &second.token,
        &second.chat_id,
        429,
        Duration::from_secs(5),
    )
    .await
    .assert_error(429, "rate_limited");

    // A client that hangs up frees its slot.
    drop(stalled);
    upload_until(
        &app,
        &second.token,
        &second.chat_id,
        201,
        Duration::from_secs(10),
    )
    .await
    .assert_status(201);
}

/// The upload spools this process holds open in `dir`: anonymous files appear only as
/// `/proc/self/fd` links (`dir/#123 (deleted)`), never in the directory itself.
#[cfg(target_os = "linux")]
fn open_spools(dir: &std::path::Path) -> Vec<u64> {
    let dir = dir.canonicalize().unwrap();
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|entry| {
            let fd = entry.ok()?.path();
            let target = std::fs::read_link(&fd).ok()?;
            let in_dir = target.parent() == Some(dir.as_path());
            let is_database = target
                .file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with("parley.db"));
            (in_dir && !is_database)
                .then(|| std::fs::metadata(&fd).ok().map(|m| m.len()))
                .flatten()
        })
        .collect()
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_stalled_upload_waits_on_disk_beside_the_database_not_in_memory() {
    let app = spawn_app_with(|_| {}).await;
    let chat = app.new_visitor_chat().await;
    let sent = 2 * 1024 * 1024;

    let stalled =
        StalledUpload::start(&app, &chat.token, &chat.chat_id, 8 * 1024 * 1024, sent).await;
    // What has arrived is in a spool file in the database's directory (up to one 64 KiB
    // write buffer behind).
    let deadline = Instant::now() + Duration::from_secs(10);
    let spooled = loop {
        let spools = open_spools(app.dir.path());
        if let Some(&len) = spools.iter().find(|&&len| len + 64 * 1024 >= sent as u64) {
            break len;
        }
        assert!(
            Instant::now() < deadline,
            "no spool of the stalled upload beside the database: {spools:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(spooled <= sent as u64);

    // Once the client hangs up, the spool is gone and nothing was stored.
    drop(stalled);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !open_spools(app.dir.path()).is_empty() {
        assert!(Instant::now() < deadline, "the spool outlived its upload");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let poll = app.poll(&chat.token, &chat.chat_id, 0, 0).await;
    assert!(poll.body["messages"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn a_visitor_over_its_hourly_quota_gets_429_and_then_so_does_its_address() {
    // Files of 4,000 bytes: a visitor may store two, the address three.
    let app = spawn_app_with(|c| {
        c.upload_quota_visitor = 10_000;
        c.upload_quota_ip = 14_000;
    })
    .await;
    let first = app.new_visitor_chat().await;
    let second = app.new_visitor_chat().await;
    let third = app.new_visitor_chat().await;

    for _ in 0..2 {
        upload(&app, &first.token, &first.chat_id, 4_000)
            .await
            .assert_status(201);
    }
    let refused = upload(&app, &first.token, &first.chat_id, 4_000).await;
    refused.assert_error(429, "rate_limited");
    assert!((1..=3600).contains(&retry_after(&refused)));

    // The second visitor has room of its own, but the address fills up after one file.
    upload(&app, &second.token, &second.chat_id, 4_000)
        .await
        .assert_status(201);
    let refused = upload(&app, &second.token, &second.chat_id, 4_000).await;
    refused.assert_error(429, "rate_limited");
    assert!((1..=3600).contains(&retry_after(&refused)));
    upload(&app, &third.token, &third.chat_id, 4_000)
        .await
        .assert_error(429, "rate_limited");

    // Agents are not counted.
    let agent = app.admin_token().await;
    upload(&app, &agent, &first.chat_id, 4_000)
        .await
        .assert_status(201);
    // Refused uploads stored nothing.
    let poll = app.poll(&first.token, &first.chat_id, 0, 0).await;
    assert_eq!(poll.body["messages"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn an_upload_declared_over_the_quota_is_refused_before_its_body_is_sent() {
    let app = spawn_app_with(|c| c.upload_quota_visitor = 10_000).await;
    let chat = app.new_visitor_chat().await;
    let head = request_head(
        &app,
        &chat.token,
        &chat.chat_id,
        "Content-Length: 1000000\r\n",
    );

    let mut stream = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let (status, head) = read_head(&mut stream).await;

    assert_eq!(status, 429, "{head}");
    assert!(head.contains("retry-after:"), "{head}");
}

#[tokio::test]
async fn an_upload_without_a_declared_length_is_charged_once_received() {
    let app = spawn_app_with(|c| c.upload_quota_visitor = 10_000).await;
    let chat = app.new_visitor_chat().await;
    let (preamble, epilogue) = form_parts();
    let mut body = preamble.into_bytes();
    body.extend_from_slice(&[b'c'; 20_000]);
    body.extend_from_slice(epilogue.as_bytes());
    let head = request_head(
        &app,
        &chat.token,
        &chat.chat_id,
        "Transfer-Encoding: chunked\r\n",
    );

    let mut stream = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
        .write_all(format!("{:x}\r\n", body.len()).as_bytes())
        .await
        .unwrap();
    stream.write_all(&body).await.unwrap();
    stream.write_all(b"\r\n0\r\n\r\n").await.unwrap();
    let (status, head) = read_head(&mut stream).await;

    assert_eq!(status, 429, "{head}");
    let poll = app.poll(&chat.token, &chat.chat_id, 0, 0).await;
    assert!(poll.body["messages"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn below_the_free_disk_floor_uploads_get_507_and_messages_still_work() {
    let app = spawn_app_with(|c| c.min_free_disk = u64::MAX / 2).await;
    let chat = app.new_visitor_chat().await;

    let refused = upload(&app, &chat.token, &chat.chat_id, 100).await;
    refused.assert_status(507);
    assert_eq!(refused.body["error"]["code"], "insufficient_storage");
    assert!(refused.body["error"]["message"].is_string());

    app.send(&chat.token, &chat.chat_id, "still here", None)
        .await
        .assert_status(201);
    let poll = app.poll(&chat.token, &chat.chat_id, 0, 0).await;
    let messages = poll.body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1);
    assert!(messages[0]["attachment"].is_null());
}
