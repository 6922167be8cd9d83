//! Load generator for Parley and its two peers: parks N long polls, sends messages, measures
//! delivery, server CPU per message and memory per parked poll.
//!
//! Run from the repository root (see `docs/BENCHMARKS.md`; `docs/bench/compare.sh` runs
//! Parley and both peers and prints one table):
//!
//! ```sh
//! cargo build --release
//! cargo run --release --example loadgen -- --polls 10000 --rate 1000 --duration 10
//! cargo run --release --example loadgen -- --polls 1000 --senders 64 --duration 10
//! cargo run --release --example loadgen -- --polls 10000 --browser-headers
//! cargo run --release --example loadgen -- --peer nchan --peer-pid 4242
//! ```
//!
//! By default it starts `target/release/parley` itself on a free port of 127.0.0.1 with a
//! temporary database, measures its ready time and memory, and kills it at the end. With
//! `--url` it targets a running server instead (memory and CPU only with `--pid`). With
//! `--peer nchan|socketio` it targets one of the peers of `shared/peers`, already running on
//! its port of 127.0.0.1, and reads the memory and CPU of `--peer-pid` (for nchan: the worker).
//!
//! Two modes:
//! - **fixed rate** (default): `--rate R` messages/s for `--duration D` seconds, each to a
//!   random chat (as the agent on Parley); delivery latency is the time from the send's start
//!   to the moment the chat's poller holds the response that carries it.
//! - **throughput** (`--senders S`): S senders send back to back for D seconds.
//!
//! Memory per parked poll is counted two ways. Each chat's first poll parks and is answered by
//! one untracked warm-up message; the poller then waits at a gate while the RSS is read, and
//! parks again. **warm** = (RSS all parked again − RSS all answered once) / N: what a parked
//! request adds to the open connection of a chat already read. **cold** = (RSS all parked
//! again − RSS before any chat's first poll) / N: the connection and whatever a chat's first
//! read leaves behind count too. A Socket.IO client has nothing to park again (its WebSocket
//! stays open), so only its cold number means something.
//!
//! Server CPU (utime + stime of `/proc/PID/stat`) is sampled just before the first send and
//! just after the last acknowledged message reached its poller, then divided by the delivered
//! messages and by the acknowledged sends.
//!
//! In both modes every parked poller checks that each acknowledged message reaches its chat
//! exactly once. A lost, duplicated or misrouted message, or a failed send, exits non-zero.
//! Only 127.0.0.1 is ever contacted; every loop is bounded by `--duration` and `--timeout`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use reqwest::header::{
    HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE, ETAG, IF_MODIFIED_SINCE,
    IF_NONE_MATCH, LAST_MODIFIED,
};
use serde::Deserialize;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

/// Ticks per second of `/proc/<pid>/stat` CPU times (USER_HZ) when `getconf CLK_TCK` fails.
const DEFAULT_CLOCK_TICKS: f64 = 100.0;
/// Bearer body of every message sent (short: we measure the machinery, not the payload).
const BODY: &str = "Hello from loadgen, is anyone there?";
/// What `--browser-headers` adds to every poll besides `Accept-Encoding`: a current desktop
/// Chrome's `fetch()` from a shop's page to its support chat on another site (with a
/// permissive referrer policy, so the whole page address goes along). 662 bytes with
/// Chrome's `Accept-Encoding`.
const BROWSER_HEADERS: [(&str, &str); 11] = [
    (
        "user-agent",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
         (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    ),
    ("accept", "application/json, text/plain, */*"),
    (
        "accept-language",
        "en-US,en;q=0.9,de-DE;q=0.8,de;q=0.7,fr;q=0.6",
    ),
    (
        "referer",
        "https://shop.example.com/en/products/ergonomic-office-chair-pro?variant=4471\
         &utm_source=newsletter&utm_medium=email&utm_campaign=winter-sale",
    ),
    ("origin", "https://shop.example.com"),
    (
        "sec-ch-ua",
        r#""Google Chrome";v="131", "Chromium";v="131", "Not_A Brand";v="24""#,
    ),
    ("sec-ch-ua-mobile", "?0"),
    ("sec-ch-ua-platform", r#""Windows""#),
    ("sec-fetch-site", "cross-site"),
    ("sec-fetch-mode", "cors"),
    ("sec-fetch-dest", "empty"),
];
/// Any valid key: the peer is ours, so its `Sec-WebSocket-Accept` is not checked.
const WEBSOCKET_KEY: &str = "bG9hZGdlbi1wYXJsZXkhIQ==";
/// Largest WebSocket frame accepted from the Socket.IO peer (its messages are ~150 bytes).
const MAX_FRAME: u64 = 1 << 20;

/// A server of `shared/peers`, measured with the same load.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Peer {
    /// nginx + nchan: `POST /pub?id=CHAT`, long poll `GET /sub?id=CHAT` (127.0.0.1:8091).
    Nchan,
    /// Socket.IO 4.8 + better-sqlite3: `POST /api/chats/CHAT/messages`, WebSocket room
    /// (127.0.0.1:8090).
    Socketio,
}

impl Peer {
    fn name(self) -> &'static str {
        match self {
            Peer::Nchan => "nchan",
            Peer::Socketio => "socketio",
        }
    }

    fn default_url(self) -> &'static str {
        match self {
            Peer::Nchan => "http://127.0.0.1:8091",
            Peer::Socketio => "http://127.0.0.1:8090",
        }
    }
}

#[derive(Debug, Parser)]
#[command(about = "Parley load generator: parked long polls, delivery latency, throughput")]
struct Args {
    /// Long polls to park, one per chat (one visitor each).
    #[arg(long, default_value_t = 1000)]
    polls: usize,
    /// Messages per second in fixed-rate mode.
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// Throughput mode: this many concurrent senders, each sending back to back.
    #[arg(long, default_value_t = 0)]
    senders: usize,
    /// Seconds of sending.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Chats to send to; default: one per poll (at least 100 when --polls is 0).
    #[arg(long)]
    chats: Option<usize>,
    /// Seconds to wait after the run for acknowledged messages to reach their pollers.
    #[arg(long, default_value_t = 2.0)]
    grace: f64,
    /// Concurrent requests while creating visitors and chats, and sending warm-up messages.
    #[arg(long, default_value_t = 64)]
    setup_concurrency: usize,
    /// Most sends in flight at once in fixed-rate mode (a stalled server cannot exhaust fds).
    #[arg(long, default_value_t = 512)]
    max_in_flight: usize,
    /// Upper bound on messages sent in one run (throughput mode stops there).
    #[arg(long, default_value_t = 1_000_000)]
    max_messages: usize,
    /// HTTP clients (connection pools) the pollers are spread over.
    #[arg(long, default_value_t = 4)]
    poll_clients: usize,
    /// Worker threads of the generator's runtime (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Target a running server (http://127.0.0.1:PORT) instead of starting one; with --peer,
    /// the peer's address when not on its default port.
    #[arg(long)]
    url: Option<String>,
    /// With --url: the server's pid, to read its memory and CPU time.
    #[arg(long)]
    pid: Option<u32>,
    /// Load a peer of `shared/peers` instead of Parley (it must be running already).
    #[arg(long, value_enum)]
    peer: Option<Peer>,
    /// With --peer: the pid whose memory and CPU time are read (nchan: the worker process,
    /// the child of the master; socketio: the node process).
    #[arg(long)]
    peer_pid: Option<u32>,
    /// Every poll (or WebSocket handshake) carries a dozen headers of a current Chrome,
    /// ~700 bytes, to measure a parked poll with realistic headers.
    #[arg(long)]
    browser_headers: bool,
    /// The `Accept-Encoding` sent with --browser-headers. Chrome sends "gzip, deflate, br,
    /// zstd", but this generator cannot decompress answers (reqwest is built without its
    /// gzip and brotli features), so the default asks for none.
    #[arg(long, default_value = "identity")]
    accept_encoding: String,
    /// The server binary to start (default: `parley` next to this example's directory,
    /// i.e. target/release/parley).
    #[arg(long)]
    server: Option<PathBuf>,
    /// Extra arguments for the started server (e.g. "--workers 1"), split on spaces.
    #[arg(long, default_value = "")]
    server_args: String,
    /// Admin email (set on a started server; must exist on a --url server).
    #[arg(long, default_value = "bench@example.com")]
    admin_email: String,
    /// Admin password.
    #[arg(long, default_value = "loadgen-benchmark-password")]
    admin_password: String,
    /// Hard limit on the whole run, seconds; the run fails when it is reached.
    #[arg(long, default_value_t = 300.0)]
    timeout: f64,
    /// Also write every number as one JSON object to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Also write one CSV line per message (index, chat, sent at, ack and delivery latency, ms).
    #[arg(long)]
    dump: Option<PathBuf>,
    /// A label stored in the JSON output (e.g. "baseline").
    #[arg(long, default_value = "")]
    label: String,
}

fn main() {
    let args = Args::parse();
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("a tokio runtime can be built at startup");
    let hard = Duration::from_secs_f64(args.timeout);
    let outcome = runtime.block_on(async {
        match tokio::time::timeout(hard, run(&args)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(format!("hard timeout of {} s reached", args.timeout)),
        }
    });
    // Pollers may still be parked in the runtime; do not wait for them.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match outcome {
        Ok(true) => {}
        Ok(false) => {
            eprintln!("loadgen: FAILED (lost, duplicated, misrouted messages or errors)");
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("loadgen: error: {e}");
            std::process::exit(2);
        }
    }
}

type Res<T> = Result<T, String>;

/// The server under test; a server we started is killed when this drops (also on error).
struct Server {
    name: &'static str,
    base: String,
    pid: Option<u32>,
    child: Option<Child>,
    binary: Option<PathBuf>,
    ready: Option<Duration>,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn default_server_binary() -> Res<PathBuf> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    // target/release/examples/loadgen → target/release/parley
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("cannot locate the target directory")?;
    Ok(dir.join("parley"))
}

fn free_port() -> Res<u16> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind port 0: {e}"))?;
    Ok(listener
        .local_addr()
        .map_err(|e| format!("local_addr: {e}"))?
        .port())
}

/// `url` without its trailing slash, refused unless it is on this machine.
fn local_url(url: &str) -> Res<String> {
    let host_ok = url.starts_with("http://127.0.0.1:") || url.starts_with("http://localhost:");
    if !host_ok {
        return Err(format!("--url must be http://127.0.0.1:PORT, not {url}"));
    }
    Ok(url.trim_end_matches('/').to_string())
}

async fn start_server(args: &Args) -> Res<Server> {
    if let Some(peer) = args.peer {
        let base = local_url(args.url.as_deref().unwrap_or(peer.default_url()))?;
        wait_reachable(&base).await?;
        let pid = args.peer_pid.or(args.pid);
        if pid.is_none() {
            eprintln!("loadgen: warning: no --peer-pid, so no memory or CPU numbers");
        }
        return Ok(Server {
            name: peer.name(),
            base,
            pid,
            child: None,
            binary: None,
            ready: None,
            _dir: None,
        });
    }
    if let Some(url) = &args.url {
        let server = Server {
            name: "parley",
            base: local_url(url)?,
            pid: args.pid,
            child: None,
            binary: args.server.clone(),
            ready: None,
            _dir: None,
        };
        wait_ready(&server.base, None).await?;
        return Ok(server);
    }
    let binary = match &args.server {
        Some(path) => path.clone(),
        None => default_server_binary()?,
    };
    if !binary.is_file() {
        return Err(format!(
            "{} not found: build it first with `cargo build --release`",
            binary.display()
        ));
    }
    let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
    let port = free_port()?;
    let addr = format!("127.0.0.1:{port}");
    let mut command = Command::new(&binary);
    command
        .arg("--addr")
        .arg(&addr)
        .arg("--db")
        .arg(dir.path().join("bench.db"))
        .arg("--poll-timeout")
        .arg("25")
        .args(args.server_args.split_whitespace())
        .env("PARLEY_ADMIN_EMAIL", &args.admin_email)
        .env("PARLEY_ADMIN_PASSWORD", &args.admin_password)
        .env("RUST_LOG", "warn")
        // Every simulated visitor comes from 127.0.0.1: per-IP abuse limits would refuse them.
        .env("PARLEY_RATE_LIMITS", "false")
        // ... and so would the cap on connections per address.
        .env("PARLEY_MAX_CONNECTIONS_PER_IP", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    let spawned = Instant::now();
    let child = command
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", binary.display()))?;
    let mut server = Server {
        name: "parley",
        base: format!("http://{addr}"),
        pid: Some(child.id()),
        child: Some(child),
        binary: Some(binary),
        ready: None,
        _dir: Some(dir),
    };
    wait_ready(&server.base, server.child.as_mut()).await?;
    server.ready = Some(spawned.elapsed());
    Ok(server)
}

/// Polls `GET /healthz` every millisecond until it answers 200 (at most 10 s).
async fn wait_ready(base: &str, mut child: Option<&mut Child>) -> Res<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .map_err(|e| e.to_string())?;
    let url = format!("{base}/healthz");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(response) = client.get(&url).send().await {
            if response.status().is_success() {
                return Ok(());
            }
        }
        if let Some(child) = child.as_deref_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("the server exited before it was ready: {status}"));
            }
        }
        if Instant::now() > deadline {
            return Err(format!("{url} did not answer 200 within 10 s"));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Waits until a peer answers anything over HTTP (at most 10 s): peers have no health route.
async fn wait_reachable(base: &str) -> Res<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if client.get(format!("{base}/")).send().await.is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{base} did not answer within 10 s: is the peer running?"
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Resident memory of a process in bytes (VmRSS).
fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Threads of a process.
fn threads(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("Threads:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Ticks per second of `/proc/<pid>/stat` CPU times: `sysconf(_SC_CLK_TCK)`, asked of
/// `getconf` because this crate forbids the `unsafe` a direct call needs.
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse::<f64>().ok())
        .filter(|&ticks| ticks > 0.0)
        .unwrap_or(DEFAULT_CLOCK_TICKS)
}

/// User + system CPU time of a process (all its threads), in seconds.
fn cpu_seconds(pid: &str, ticks: f64) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: f64 = fields.next()?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    Some((utime + stime) / ticks)
}

fn machine() -> serde_json::Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown", |(_, v)| v.trim())
        .to_string();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kb: u64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let nproc = std::thread::available_parallelism().map_or(0, std::num::NonZeroUsize::get);
    json!({"nproc": nproc, "cpu": model, "mem_total_bytes": mem_kb * 1024})
}

/// Raises the soft open-files limit to what the run needs (up to the hard limit).
/// A server we start inherits it.
fn raise_nofile(needed: u64) -> Res<u64> {
    let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE)
        .map_err(|e| format!("getrlimit NOFILE: {e}"))?;
    if soft >= needed {
        return Ok(soft);
    }
    // Root may raise the hard limit too; otherwise settle for the hard limit.
    if needed > hard && rlimit::setrlimit(rlimit::Resource::NOFILE, needed, needed).is_ok() {
        return Ok(needed);
    }
    let target = needed.min(hard);
    rlimit::setrlimit(rlimit::Resource::NOFILE, target, hard)
        .map_err(|e| format!("setrlimit NOFILE {target}: {e}"))?;
    if target < needed {
        eprintln!("loadgen: warning: open-files limit {target} < {needed} needed");
    }
    Ok(target)
}

/// A client for setup and sends: an idle connection is dropped after 4 s, before the 5 s
/// after which actix and Node close it (reusing one they are closing fails the send).
fn client(max_idle: usize) -> Res<reqwest::Client> {
    http_client(max_idle, Duration::from_secs(4))
}

/// A client for pollers, which keep their connections while they wait at the gate.
fn poll_client() -> Res<reqwest::Client> {
    http_client(usize::MAX, Duration::from_secs(90))
}

fn http_client(max_idle: usize, idle_timeout: Duration) -> Res<reqwest::Client> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(max_idle)
        .pool_idle_timeout(idle_timeout)
        .tcp_nodelay(true)
        .http1_only()
        .no_proxy()
        .build()
        .map_err(|e| format!("http client: {e}"))
}

/// The headers every poll carries besides the target's own (none without --browser-headers).
fn poll_headers(args: &Args) -> Res<HeaderMap> {
    let mut headers = HeaderMap::new();
    if !args.browser_headers {
        return Ok(headers);
    }
    for (name, value) in BROWSER_HEADERS {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    let encoding = HeaderValue::from_str(&args.accept_encoding)
        .map_err(|e| format!("--accept-encoding: {e}"))?;
    headers.insert(reqwest::header::ACCEPT_ENCODING, encoding);
    Ok(headers)
}

/// Bytes of `headers` on the wire, as `name: value\r\n` lines.
fn header_bytes(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum()
}

#[derive(Deserialize)]
struct TokenReply {
    token: String,
}

#[derive(Deserialize)]
struct ChatReply {
    chat: IdOnly,
}

#[derive(Deserialize)]
struct IdOnly {
    id: String,
}

/// A chat and, on Parley, its visitor's `Authorization` header.
struct Chat {
    id: String,
    auth: Option<HeaderValue>,
}

fn bearer(token: &str) -> Res<HeaderValue> {
    HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| format!("token header: {e}"))
}

async fn post_json<T: for<'de> Deserialize<'de>>(
    client: &reqwest::Client,
    url: &str,
    auth: Option<&HeaderValue>,
    body: &'static str,
) -> Res<T> {
    let mut request = client
        .post(url)
        .header(CONTENT_TYPE, "application/json")
        .body(body)
        .timeout(Duration::from_secs(30));
    if let Some(auth) = auth {
        request = request.header(AUTHORIZATION, auth.clone());
    }
    let response = request
        .send()
        .await
        .map_err(|e| format!("POST {url}: {e}"))?;
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| format!("POST {url}: {e}"))?;
    if !status.is_success() {
        return Err(format!(
            "POST {url}: {status}: {}",
            String::from_utf8_lossy(&bytes)
        ));
    }
    serde_json::from_slice(&bytes).map_err(|e| format!("POST {url}: {e}"))
}

/// Creates `n` visitors with one chat each on Parley, `concurrency` at a time.
async fn create_chats(base: &str, n: usize, concurrency: usize) -> Res<Vec<Chat>> {
    let client = client(concurrency)?;
    let limit = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = JoinSet::new();
    for i in 0..n {
        let permit = limit
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        let client = client.clone();
        let base = base.to_string();
        tasks.spawn(async move {
            let _permit = permit;
            let visitor: TokenReply =
                post_json(&client, &format!("{base}/api/v1/visitors"), None, "{}").await?;
            let auth = bearer(&visitor.token)?;
            let chat: ChatReply =
                post_json(&client, &format!("{base}/api/v1/chats"), Some(&auth), "{}").await?;
            Ok::<_, String>((
                i,
                Chat {
                    id: chat.chat.id,
                    auth: Some(auth),
                },
            ))
        });
    }
    let mut chats: Vec<Option<Chat>> = (0..n).map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        let (i, chat) = joined.map_err(|e| e.to_string())??;
        chats[i] = Some(chat);
    }
    Ok(chats.into_iter().flatten().collect())
}

/// Logs in as the admin on Parley: the sender of every message.
async fn agent_login(base: &str, args: &Args) -> Res<HeaderValue> {
    let body =
        serde_json::to_string(&json!({"email": args.admin_email, "password": args.admin_password}))
            .map_err(|e| e.to_string())?;
    let response = client(1)?
        .post(format!("{base}/api/v1/agents/login"))
        .header(CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| format!("login: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("agent login failed: {}", response.status()));
    }
    let agent: TokenReply = response.json().await.map_err(|e| format!("login: {e}"))?;
    bearer(&agent.token)
}

/// Chats of a peer need no creation: fresh ids per run, so that neither the Socket.IO peer's
/// `UNIQUE(chat_id, client_id)` nor nchan's buffered messages see an earlier run.
fn peer_chats(n: usize) -> Vec<Chat> {
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    (0..n)
        .map(|i| Chat {
            id: format!("lg{run}-{i}"),
            auth: None,
        })
        .collect()
}

/// What every message of the run went through; index = the number in its `client_id`.
/// Times are nanoseconds since `base` plus one (0 = "not yet").
struct Track {
    base: Instant,
    cap: usize,
    next: AtomicUsize,
    chat_of: Vec<AtomicU32>,
    sent_at: Vec<AtomicU64>,
    ack_ns: Vec<AtomicU64>,
    recv_at: Vec<AtomicU64>,
    recv_count: Vec<AtomicU32>,
    /// Per receiving chat: its poller has had its first answer (the warm-up).
    answered: Vec<AtomicBool>,
    answered_count: AtomicUsize,
    send_errors: AtomicU64,
    poll_errors: AtomicU64,
    misrouted: AtomicU64,
    out_of_order: AtomicU64,
    poll_responses: AtomicU64,
    polls_in_flight: AtomicI64,
    stop: AtomicBool,
}

impl Track {
    fn new(cap: usize, receivers: usize) -> Self {
        fn zeros<T: Default>(n: usize) -> Vec<T> {
            (0..n).map(|_| T::default()).collect()
        }
        Self {
            base: Instant::now(),
            cap,
            next: AtomicUsize::new(0),
            chat_of: zeros(cap),
            sent_at: zeros(cap),
            ack_ns: zeros(cap),
            recv_at: zeros(cap),
            recv_count: zeros(cap),
            answered: zeros(receivers),
            answered_count: AtomicUsize::new(0),
            send_errors: AtomicU64::new(0),
            poll_errors: AtomicU64::new(0),
            misrouted: AtomicU64::new(0),
            out_of_order: AtomicU64::new(0),
            poll_responses: AtomicU64::new(0),
            polls_in_flight: AtomicI64::new(0),
            stop: AtomicBool::new(false),
        }
    }

    fn stamp(&self, at: Instant) -> u64 {
        at.duration_since(self.base).as_nanos() as u64 + 1
    }

    /// Index of a message this run sent, from its `client_id` (`m<index>`).
    fn index_of(&self, client_id: &str) -> Option<usize> {
        let i: usize = client_id.strip_prefix('m')?.parse().ok()?;
        (i < self.cap).then_some(i)
    }

    /// Chat `chat`'s poller holds message `client_id` since `stamp` (warm-ups are ignored).
    fn receive(&self, client_id: Option<&str>, chat: u32, stamp: u64) {
        let Some(i) = client_id.and_then(|c| self.index_of(c)) else {
            return;
        };
        if self.recv_count[i].fetch_add(1, Ordering::Relaxed) == 0 {
            self.recv_at[i].store(stamp, Ordering::Release);
        }
        if self.chat_of[i].load(Ordering::Relaxed) != chat {
            self.misrouted.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Counts a poll as parked from its request until its answer (or its task's end).
struct InFlight<'a>(&'a Track);

impl<'a> InFlight<'a> {
    fn new(track: &'a Track) -> Self {
        track.polls_in_flight.fetch_add(1, Ordering::Relaxed);
        Self(track)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.polls_in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What every poller shares.
struct PollShared {
    base: Arc<str>,
    track: Arc<Track>,
    /// Extra headers of every poll (--browser-headers).
    headers: HeaderMap,
    /// Opens once the RSS "all answered once" has been read: then the pollers park again.
    gate: watch::Receiver<bool>,
}

impl PollShared {
    /// After a poller's first answer: count it, then wait at the gate.
    async fn first_answer(&self, chat: u32, first: &mut bool) {
        if !std::mem::take(first) {
            return;
        }
        if let Some(flag) = self.track.answered.get(chat as usize) {
            flag.store(true, Ordering::Relaxed);
        }
        self.track.answered_count.fetch_add(1, Ordering::Relaxed);
        let mut gate = self.gate.clone();
        let _ = gate.wait_for(|open| *open).await;
    }

    /// A failed poll: counted (unless the run is over), then a pause before the next.
    async fn failed(&self) -> bool {
        if self.track.stop.load(Ordering::Relaxed) {
            return false;
        }
        self.track.poll_errors.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(100)).await;
        true
    }
}

#[derive(Deserialize)]
struct PollPage<'a> {
    #[serde(borrow)]
    messages: Vec<PolledMessage<'a>>,
    next: i64,
}

#[derive(Deserialize)]
struct PolledMessage<'a> {
    seq: i64,
    #[serde(borrow)]
    client_id: Option<&'a str>,
}

/// One Parley chat's chained long poll: `after` is always the previous answer's `next`.
async fn parley_poller(
    client: reqwest::Client,
    shared: Arc<PollShared>,
    chat_index: u32,
    chat_id: String,
    auth: Option<HeaderValue>,
) {
    let track = &*shared.track;
    let base = &*shared.base;
    let mut next = 0i64;
    let mut last_seq = 0i64;
    let mut first = true;
    let mut url = String::with_capacity(base.len() + chat_id.len() + 64);
    while !track.stop.load(Ordering::Relaxed) {
        url.clear();
        let _ = write!(
            url,
            "{base}/api/v1/chats/{chat_id}/messages?after={next}&wait=25"
        );
        let mut request = client
            .get(url.as_str())
            .headers(shared.headers.clone())
            .timeout(Duration::from_secs(40));
        if let Some(auth) = &auth {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        let parked = InFlight::new(track);
        let body = match request.send().await {
            Ok(r) if r.status().is_success() => r.bytes().await.ok(),
            _ => None,
        };
        let received = Instant::now();
        drop(parked);
        track.poll_responses.fetch_add(1, Ordering::Relaxed);
        let Some(page) = body
            .as_deref()
            .and_then(|b| serde_json::from_slice::<PollPage>(b).ok())
        else {
            if !shared.failed().await {
                return;
            }
            continue;
        };
        let stamp = track.stamp(received);
        for message in &page.messages {
            if message.seq <= last_seq {
                track.out_of_order.fetch_add(1, Ordering::Relaxed);
            }
            last_seq = last_seq.max(message.seq);
            track.receive(message.client_id, chat_index, stamp);
        }
        next = page.next;
        shared.first_answer(chat_index, &mut first).await;
    }
}

/// The part of a sent message the peers give back.
#[derive(Deserialize)]
struct PeerMessage {
    client_id: Option<String>,
    #[serde(default)]
    seq: Option<i64>,
}

/// One nchan channel's chained long poll: each answer carries one message, and the next
/// request names it with `If-Modified-Since` + `If-None-Match` (its `Last-Modified` + `Etag`).
async fn nchan_poller(
    client: reqwest::Client,
    shared: Arc<PollShared>,
    chat_index: u32,
    chat_id: String,
) {
    let track = &*shared.track;
    let url = format!("{}/sub?id={chat_id}", shared.base);
    let mut last: Option<(HeaderValue, HeaderValue)> = None;
    let mut first = true;
    while !track.stop.load(Ordering::Relaxed) {
        let mut request = client
            .get(url.as_str())
            .headers(shared.headers.clone())
            .timeout(Duration::from_secs(40));
        if let Some((modified, etag)) = &last {
            request = request
                .header(IF_MODIFIED_SINCE, modified.clone())
                .header(IF_NONE_MATCH, etag.clone());
        }
        let parked = InFlight::new(track);
        let response = request.send().await;
        let received = Instant::now();
        drop(parked);
        track.poll_responses.fetch_add(1, Ordering::Relaxed);
        let response = match response {
            Ok(r) if r.status() == reqwest::StatusCode::OK => r,
            // The subscriber timeout (25 s) answers without a message: ask again.
            Ok(r) if matches!(r.status().as_u16(), 304 | 408) => continue,
            _ => {
                if !shared.failed().await {
                    return;
                }
                continue;
            }
        };
        let id = response
            .headers()
            .get(LAST_MODIFIED)
            .cloned()
            .zip(response.headers().get(ETAG).cloned());
        let message = match response.bytes().await {
            Ok(body) => serde_json::from_slice::<PeerMessage>(&body).ok(),
            Err(_) => None,
        };
        let (Some(id), Some(message)) = (id, message) else {
            if !shared.failed().await {
                return;
            }
            continue;
        };
        // Within one second of `Last-Modified`, the `Etag` counts the channel's messages up.
        if let Some((modified, etag)) = &last {
            let tag = |v: &HeaderValue| v.to_str().ok().and_then(|s| s.parse::<u64>().ok());
            if *modified == id.0 && tag(&id.1) <= tag(etag) {
                track.out_of_order.fetch_add(1, Ordering::Relaxed);
            }
        }
        track.receive(
            message.client_id.as_deref(),
            chat_index,
            track.stamp(received),
        );
        last = Some(id);
        shared.first_answer(chat_index, &mut first).await;
    }
}

/// One Socket.IO client in its chat's room; its WebSocket stays open for the whole run.
async fn socketio_client(shared: Arc<PollShared>, chat_index: u32, chat_id: String) {
    if let Err(e) = socketio_session(&shared, chat_index, &chat_id).await {
        if shared.failed().await && shared.track.poll_errors.load(Ordering::Relaxed) <= 3 {
            eprintln!("loadgen: socket.io client of {chat_id}: {e}");
        }
    }
}

async fn socketio_session(shared: &PollShared, chat_index: u32, chat_id: &str) -> Res<()> {
    let track = &*shared.track;
    let host = shared
        .base
        .strip_prefix("http://")
        .ok_or("the peer's url is not http://")?;
    let mut ws = WebSocket::connect(
        host,
        "/socket.io/?EIO=4&transport=websocket",
        &shared.headers,
        u64::from(chat_index),
    )
    .await?;
    // Engine.IO v4: the server opens ("0{sid,…}"), the client joins the default namespace
    // ("40", answered "40{sid}"), then sends the peer's own "join" event.
    let open = ws.recv_text().await?;
    if !open.starts_with('0') {
        return Err(format!("expected the Engine.IO open packet, got {open:?}"));
    }
    ws.send_text("40").await?;
    loop {
        let packet = ws.recv_text().await?;
        match packet.as_str() {
            "2" => ws.send_text("3").await?,
            p if p.starts_with("40") => break,
            p => return Err(format!("expected a Socket.IO connect, got {p:?}")),
        }
    }
    ws.send_text(&format!(r#"42["join","{chat_id}"]"#)).await?;
    let _parked = InFlight::new(track);
    let mut first = true;
    let mut last_seq = 0i64;
    while !track.stop.load(Ordering::Relaxed) {
        let packet = ws.recv_text().await?;
        if packet == "2" {
            ws.send_text("3").await?;
            continue;
        }
        let Some(event) = packet.strip_prefix("42") else {
            continue;
        };
        let received = Instant::now();
        track.poll_responses.fetch_add(1, Ordering::Relaxed);
        let Ok((name, message)) = serde_json::from_str::<(String, PeerMessage)>(event) else {
            track.poll_errors.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        if name != "new-message" {
            continue;
        }
        if let Some(seq) = message.seq {
            if seq <= last_seq {
                track.out_of_order.fetch_add(1, Ordering::Relaxed);
            }
            last_seq = last_seq.max(seq);
        }
        track.receive(
            message.client_id.as_deref(),
            chat_index,
            track.stamp(received),
        );
        shared.first_answer(chat_index, &mut first).await;
    }
    Ok(())
}

/// The least of a WebSocket client (RFC 6455) the Socket.IO peer needs: the upgrade, masked
/// text frames out; text, ping and close frames in. Written here because the dev-dependencies
/// have no WebSocket client.
struct WebSocket {
    io: BufReader<TcpStream>,
    mask: Rng,
}

impl WebSocket {
    async fn connect(host: &str, path: &str, headers: &HeaderMap, seed: u64) -> Res<Self> {
        let stream = TcpStream::connect(host)
            .await
            .map_err(|e| format!("connect {host}: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let mut request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {WEBSOCKET_KEY}\r\nSec-WebSocket-Version: 13\r\n"
        );
        for (name, value) in headers {
            let value = value.to_str().map_err(|e| e.to_string())?;
            let _ = write!(request, "{name}: {value}\r\n");
        }
        request.push_str("\r\n");
        let mut io = BufReader::with_capacity(4096, stream);
        io.get_mut()
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("upgrade request: {e}"))?;
        let mut line = String::new();
        io.read_line(&mut line)
            .await
            .map_err(|e| format!("upgrade answer: {e}"))?;
        if !line.starts_with("HTTP/1.1 101") {
            return Err(format!("upgrade refused: {}", line.trim_end()));
        }
        loop {
            line.clear();
            let n = io
                .read_line(&mut line)
                .await
                .map_err(|e| format!("upgrade answer: {e}"))?;
            if n == 0 {
                return Err("closed during the upgrade".into());
            }
            if line == "\r\n" {
                break;
            }
        }
        // Masks need to be unpredictable only to proxies, and there are none here.
        Ok(Self {
            io,
            mask: Rng(0x9E37_79B9_7F4A_7C15 ^ seed),
        })
    }

    async fn send_frame(&mut self, opcode: u8, payload: &[u8]) -> Res<()> {
        let mut frame = Vec::with_capacity(payload.len() + 14);
        frame.push(0x80 | opcode);
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n <= 0xffff => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        let key = (self.mask.below(usize::MAX) as u32).to_be_bytes();
        frame.extend_from_slice(&key);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        self.io
            .get_mut()
            .write_all(&frame)
            .await
            .map_err(|e| format!("websocket write: {e}"))
    }

    async fn send_text(&mut self, text: &str) -> Res<()> {
        self.send_frame(0x1, text.as_bytes()).await
    }

    /// The next whole text message; answers pings on the way; a close is an error.
    async fn recv_text(&mut self) -> Res<String> {
        let mut message = Vec::new();
        loop {
            let mut head = [0u8; 2];
            self.read(&mut head).await?;
            let fin = head[0] & 0x80 != 0;
            let opcode = head[0] & 0x0f;
            let mut len = u64::from(head[1] & 0x7f);
            if len == 126 {
                let mut b = [0u8; 2];
                self.read(&mut b).await?;
                len = u64::from(u16::from_be_bytes(b));
            } else if len == 127 {
                let mut b = [0u8; 8];
                self.read(&mut b).await?;
                len = u64::from_be_bytes(b);
            }
            if len > MAX_FRAME {
                return Err(format!("websocket frame of {len} bytes"));
            }
            let mut key = [0u8; 4];
            if head[1] & 0x80 != 0 {
                self.read(&mut key).await?;
            }
            let mut payload = vec![0u8; len as usize];
            self.read(&mut payload).await?;
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= key[i % 4];
            }
            match opcode {
                0x0..=0x2 => {
                    message.extend_from_slice(&payload);
                    if fin {
                        return String::from_utf8(message).map_err(|e| e.to_string());
                    }
                }
                0x8 => return Err("the server closed the websocket".into()),
                0x9 => self.send_frame(0xA, &payload).await?,
                _ => {}
            }
        }
    }

    async fn read(&mut self, buf: &mut [u8]) -> Res<()> {
        self.io
            .read_exact(buf)
            .await
            .map(drop)
            .map_err(|e| format!("websocket read: {e}"))
    }
}

/// Where a target takes a message for a chat, and how to build its body.
struct SendContext {
    client: reqwest::Client,
    urls: Vec<String>,
    /// The agent's `Authorization` (Parley only).
    auth: Option<HeaderValue>,
    track: Arc<Track>,
}

impl SendContext {
    /// `POST`s `{body, client_id}` to chat `chat`; true once a 2xx answer has been read.
    async fn post(&self, chat: usize, client_id: &str) -> bool {
        let body = format!(r#"{{"body":"{BODY}","client_id":"{client_id}"}}"#);
        let mut request = self
            .client
            .post(self.urls[chat].as_str())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(body)
            .timeout(Duration::from_secs(10));
        if let Some(auth) = &self.auth {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        match request.send().await {
            // Drain the body so the connection is reused; its JSON is not needed.
            Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
            _ => false,
        }
    }
}

/// Sends message `i` to chat `chat` and records its times.
async fn send_one(ctx: &SendContext, i: usize, chat: usize) {
    let track = &ctx.track;
    track.chat_of[i].store(chat as u32, Ordering::Relaxed);
    let start = Instant::now();
    track.sent_at[i].store(track.stamp(start), Ordering::Release);
    if ctx.post(chat, &format!("m{i}")).await {
        let ns = start.elapsed().as_nanos() as u64 + 1;
        track.ack_ns[i].store(ns, Ordering::Release);
    } else {
        track.send_errors.fetch_add(1, Ordering::Relaxed);
    }
}

/// The pollers' first read: one untracked message (`w<chat>-<round>`) to every chat whose
/// poller has not been answered yet, in rounds until all have been (a peer may drop a message
/// that arrives before its subscriber or join does).
async fn warm_up(ctx: &Arc<SendContext>, receivers: usize, concurrency: usize) -> Res<()> {
    let track = &ctx.track;
    for round in 0..5 {
        let limit = Arc::new(Semaphore::new(concurrency.max(1)));
        let mut tasks = JoinSet::new();
        for chat in 0..receivers {
            if track.answered[chat].load(Ordering::Relaxed) {
                continue;
            }
            let permit = limit
                .clone()
                .acquire_owned()
                .await
                .map_err(|e| e.to_string())?;
            let ctx = ctx.clone();
            tasks.spawn(async move {
                let _permit = permit;
                ctx.post(chat, &format!("w{chat}-{round}")).await
            });
        }
        let mut failed = 0;
        while let Some(ok) = tasks.join_next().await {
            if !ok.map_err(|e| e.to_string())? {
                failed += 1;
            }
        }
        if failed > 0 {
            return Err(format!("{failed} warm-up messages were refused"));
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if track.answered_count.load(Ordering::Relaxed) >= receivers {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let answered = track.answered_count.load(Ordering::Relaxed);
    Err(format!(
        "only {answered} of {receivers} pollers got their warm-up message"
    ))
}

/// Waits until `count()` reaches `target` (at most `max`); false when it did not.
async fn wait_for_count(count: impl Fn() -> i64, target: i64, max: Duration) -> bool {
    let deadline = Instant::now() + max;
    while count() < target {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    true
}

/// xorshift64*: a tiny fast generator; the chat choice needs no cryptographic quality.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n.max(1)
    }
}

/// Fixed rate: message k starts at `start + k / rate`, whatever the server's pace
/// (open loop), at most `max_in_flight` at once.
async fn run_fixed_rate(ctx: Arc<SendContext>, args: &Args, total: usize) -> (Duration, u64) {
    let limit = Arc::new(Semaphore::new(args.max_in_flight.max(1)));
    let mut tasks = JoinSet::new();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let interval = Duration::from_secs_f64(1.0 / args.rate);
    let start = tokio::time::Instant::now();
    let mut late = 0u64;
    for k in 0..total {
        let due = start + interval * k as u32;
        if due > tokio::time::Instant::now() {
            tokio::time::sleep_until(due).await;
        }
        let Ok(permit) = limit.clone().acquire_owned().await else {
            break;
        };
        if tokio::time::Instant::now().duration_since(due) > Duration::from_millis(5) {
            late += 1;
        }
        let i = ctx.track.next.fetch_add(1, Ordering::Relaxed);
        let chat = rng.below(ctx.urls.len());
        let ctx = ctx.clone();
        tasks.spawn(async move {
            send_one(&ctx, i, chat).await;
            drop(permit);
        });
        // Reap finished sends now and then so the set stays small.
        while tasks.try_join_next().is_some() {}
    }
    let sending = start.elapsed();
    while tasks.join_next().await.is_some() {}
    (sending, late)
}

/// Throughput: `senders` loops, each sending its next message once the last one is acknowledged.
async fn run_throughput(ctx: Arc<SendContext>, senders: usize, duration: Duration) -> Duration {
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = JoinSet::new();
    for s in 0..senders {
        let ctx = ctx.clone();
        tasks.spawn(async move {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((s as u64 + 1) << 32));
            while Instant::now() < deadline {
                let i = ctx.track.next.fetch_add(1, Ordering::Relaxed);
                if i >= ctx.track.cap {
                    break;
                }
                let chat = rng.below(ctx.urls.len());
                send_one(&ctx, i, chat).await;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    start.elapsed()
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1_000, 600_000_000_000, 3)
        .expect("static bounds are valid for hdrhistogram")
}

fn ms(ns: u64) -> f64 {
    (ns as f64 / 1e6 * 1000.0).round() / 1000.0
}

fn percentiles(h: &Histogram<u64>) -> serde_json::Value {
    if h.is_empty() {
        return json!(null);
    }
    json!({
        "count": h.len(),
        "p50_ms": ms(h.value_at_quantile(0.50)),
        "p90_ms": ms(h.value_at_quantile(0.90)),
        "p99_ms": ms(h.value_at_quantile(0.99)),
        "p999_ms": ms(h.value_at_quantile(0.999)),
        "max_ms": ms(h.max()),
        "mean_ms": ms(h.mean() as u64),
    })
}

/// Samples the server's RSS every `step` until it has moved less than 64 KiB over `stable`
/// samples in a row (all polls parked, or all answered), at most `max`.
async fn settle_rss(pid: u32, step: Duration, stable: u32, max: Duration) -> Option<u64> {
    let deadline = Instant::now() + max;
    let mut last = rss_bytes(pid)?;
    let mut calm = 0;
    while Instant::now() < deadline {
        tokio::time::sleep(step).await;
        let now = rss_bytes(pid)?;
        if now.abs_diff(last) < 64 * 1024 {
            calm += 1;
            if calm >= stable {
                return Some(now);
            }
        } else {
            calm = 0;
        }
        last = now;
    }
    rss_bytes(pid)
}

/// (RSS `to` − RSS `from`) / `n`, when both were read.
fn per_poll(from: Option<u64>, to: Option<u64>, n: usize) -> Option<f64> {
    match (from, to) {
        (Some(from), Some(to)) if n > 0 => Some((to as f64 - from as f64) / n as f64),
        _ => None,
    }
}

async fn run(args: &Args) -> Res<bool> {
    let throughput = args.senders > 0;
    let n_chats = args
        .chats
        .unwrap_or(if args.polls > 0 { args.polls } else { 100 })
        .max(args.polls)
        .max(1);
    let max_in_flight = if throughput {
        args.senders
    } else {
        args.max_in_flight
    };
    let needed = (args.polls + args.setup_concurrency + max_in_flight + 256) as u64;
    let nofile = raise_nofile(needed)?;
    let machine = machine();
    let ticks = clock_ticks();
    let headers = poll_headers(args)?;

    let server = start_server(args).await?;
    let pid = server.pid;
    let binary_size = if args.peer.is_some() {
        None
    } else {
        server
            .binary
            .clone()
            .or_else(|| default_server_binary().ok())
            .and_then(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
    };
    let idle_rss = pid.and_then(rss_bytes);
    let idle_threads = pid.and_then(threads);

    let setup_started = Instant::now();
    let (chats, agent) = match args.peer {
        None => {
            let chats = create_chats(&server.base, n_chats, args.setup_concurrency).await?;
            (chats, Some(agent_login(&server.base, args).await?))
        }
        Some(_) => (peer_chats(n_chats), None),
    };
    let setup_time = setup_started.elapsed();

    let total = if throughput {
        args.max_messages
    } else {
        ((args.rate * args.duration).round() as usize).min(args.max_messages)
    };
    let receivers = args.polls.min(n_chats);
    let track = Arc::new(Track::new(total, receivers));
    let base = &server.base;
    let ctx = Arc::new(SendContext {
        client: client(usize::MAX)?,
        urls: chats
            .iter()
            .map(|c| match args.peer {
                None => format!("{base}/api/v1/chats/{}/messages", c.id),
                Some(Peer::Nchan) => format!("{base}/pub?id={}", c.id),
                Some(Peer::Socketio) => format!("{base}/api/chats/{}/messages", c.id),
            })
            .collect(),
        auth: agent,
        track: track.clone(),
    });
    // Setup connections are gone now; let the server settle before the "cold" RSS.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_cold = pid.and_then(rss_bytes);
    let threads_before_park = pid.and_then(threads);

    // Park one poll per chat, ramped so the accept backlog never overflows; answer each once
    // (the warm-up), hold them at the gate while the RSS is read, then let them park again.
    let (gate, gate_rx) = watch::channel(false);
    let shared = Arc::new(PollShared {
        base: Arc::from(server.base.as_str()),
        track: track.clone(),
        headers,
        gate: gate_rx,
    });
    let poll_clients: Vec<reqwest::Client> = (0..args.poll_clients.max(1))
        .map(|_| poll_client())
        .collect::<Res<_>>()?;
    let mut pollers = JoinSet::new();
    let park_started = Instant::now();
    for (i, chat) in chats.iter().enumerate().take(receivers) {
        let client = poll_clients[i % poll_clients.len()].clone();
        let (shared, id, index) = (shared.clone(), chat.id.clone(), i as u32);
        match args.peer {
            None => pollers.spawn(parley_poller(client, shared, index, id, chat.auth.clone())),
            Some(Peer::Nchan) => pollers.spawn(nchan_poller(client, shared, index, id)),
            Some(Peer::Socketio) => pollers.spawn(socketio_client(shared, index, id)),
        };
        if i % 500 == 499 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let in_flight = || track.polls_in_flight.load(Ordering::Relaxed);
    let settle_parked =
        |pid| settle_rss(pid, Duration::from_millis(250), 4, Duration::from_secs(20));
    let mut rss_first_park = None;
    let mut rss_answered = None;
    let mut rss_parked = pid.and_then(rss_bytes);
    let mut gate_wait = Duration::ZERO;
    if receivers > 0 {
        let all = receivers as i64;
        if !wait_for_count(in_flight, all, Duration::from_secs(30)).await {
            return Err(format!(
                "only {} of {receivers} first polls were in flight after 30 s",
                in_flight()
            ));
        }
        // Also lets the last requests reach the server before their warm-up messages do.
        rss_first_park = match pid {
            Some(pid) => settle_parked(pid).await,
            None => {
                tokio::time::sleep(Duration::from_millis(500)).await;
                None
            }
        };
        let warm_started = Instant::now();
        warm_up(&ctx, receivers, args.setup_concurrency)
            .await
            .map_err(|e| {
                let errors = track.poll_errors.load(Ordering::Relaxed);
                let hint = if args.browser_headers && args.accept_encoding != "identity" {
                    " (this generator cannot read compressed answers: see --accept-encoding)"
                } else {
                    ""
                };
                format!("{e}; {errors} polls failed{hint}")
            })?;
        // Quick: an idle connection may be closed by its server after 5 s (actix, Node).
        rss_answered = match pid {
            Some(pid) => {
                settle_rss(pid, Duration::from_millis(100), 3, Duration::from_secs(2)).await
            }
            None => None,
        };
        gate.send_replace(true);
        gate_wait = warm_started.elapsed();
        if !wait_for_count(in_flight, all, Duration::from_secs(30)).await {
            return Err(format!(
                "only {} of {receivers} polls parked again after 30 s",
                in_flight()
            ));
        }
        rss_parked = match pid {
            Some(pid) => settle_parked(pid).await,
            None => {
                tokio::time::sleep(Duration::from_secs(1)).await;
                None
            }
        };
    }
    let park_time = park_started.elapsed();
    let threads_parked = pid.and_then(threads);
    let responses_before = track.poll_responses.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let responses_idle = track.poll_responses.load(Ordering::Relaxed) - responses_before;
    let parked = in_flight();
    let per_poll_first = per_poll(rss_cold, rss_first_park, receivers);
    let per_poll_warm = match args.peer {
        // A WebSocket has nothing to park again: "answered" and "parked" are one state.
        Some(Peer::Socketio) => None,
        _ => per_poll(rss_answered, rss_parked, receivers),
    };
    let per_poll_cold = per_poll(rss_cold, rss_parked, receivers);

    // The measured phase: CPU from just before the first send to just after the last
    // acknowledged message reached its poller.
    let cpu = |pid: &str| cpu_seconds(pid, ticks);
    let server_cpu_before = pid.and_then(|p| cpu(&p.to_string()));
    let self_cpu_before = cpu("self");
    let run_started = Instant::now();
    let duration = Duration::from_secs_f64(args.duration);
    let (send_window, late) = if throughput {
        (run_throughput(ctx.clone(), args.senders, duration).await, 0)
    } else {
        run_fixed_rate(ctx.clone(), args, total).await
    };
    let sent = track.next.load(Ordering::Relaxed).min(track.cap);

    // Grace: wait for every acknowledged message to reach its poller.
    let grace_deadline = Instant::now() + Duration::from_secs_f64(args.grace);
    let expect_delivery = |i: usize| {
        track.ack_ns[i].load(Ordering::Acquire) != 0
            && (track.chat_of[i].load(Ordering::Relaxed) as usize) < receivers
    };
    loop {
        let pending = (0..sent)
            .filter(|&i| expect_delivery(i) && track.recv_count[i].load(Ordering::Acquire) == 0)
            .count();
        if pending == 0 || Instant::now() >= grace_deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let server_cpu = pid
        .and_then(|p| cpu(&p.to_string()))
        .zip(server_cpu_before)
        .map(|(a, b)| a - b);
    let self_cpu = cpu("self").zip(self_cpu_before).map(|(a, b)| a - b);
    let cpu_window = run_started.elapsed();
    let rss_loaded = pid.and_then(rss_bytes);
    // Duplicates that arrive late are caught too: give pollers a moment more.
    tokio::time::sleep(Duration::from_millis(100)).await;
    track.stop.store(true, Ordering::Relaxed);
    pollers.abort_all();

    let mut delivery = histogram();
    let mut ack = histogram();
    let (mut acked, mut lost, mut duplicated, mut delivered_unacked) = (0u64, 0u64, 0u64, 0u64);
    for i in 0..sent {
        let ack_ns = track.ack_ns[i].load(Ordering::Acquire);
        let count = track.recv_count[i].load(Ordering::Acquire);
        if ack_ns != 0 {
            acked += 1;
            let _ = ack.record(ack_ns.max(1_000));
        }
        if count > 1 {
            duplicated += 1;
        }
        if count >= 1 {
            let sent_at = track.sent_at[i].load(Ordering::Acquire);
            let recv_at = track.recv_at[i].load(Ordering::Acquire);
            let _ = delivery.record(recv_at.saturating_sub(sent_at).max(1_000));
            if ack_ns == 0 {
                delivered_unacked += 1;
            }
        } else if expect_delivery(i) {
            lost += 1;
        }
    }
    if let Some(path) = &args.dump {
        dump_csv(&track, sent, path)?;
    }
    let send_errors = track.send_errors.load(Ordering::Relaxed);
    let misrouted = track.misrouted.load(Ordering::Relaxed);
    let out_of_order = track.out_of_order.load(Ordering::Relaxed);
    let poll_errors = track.poll_errors.load(Ordering::Relaxed);
    let sends_per_s = acked as f64 / send_window.as_secs_f64();
    let per = |count: u64| {
        server_cpu
            .filter(|_| count > 0)
            .map(|c| c / count as f64 * 1e6)
    };
    let pass =
        lost == 0 && duplicated == 0 && misrouted == 0 && out_of_order == 0 && send_errors == 0;

    let report = json!({
        "label": args.label,
        "target": server.name,
        "mode": if throughput { "throughput" } else { "fixed_rate" },
        "machine": machine,
        "config": {
            "polls": args.polls, "chats": n_chats, "rate": if throughput { json!(null) } else { json!(args.rate) },
            "senders": args.senders, "duration_s": args.duration, "grace_s": args.grace,
            "generator_threads": args.threads, "server_args": args.server_args,
            "started_server": server.child.is_some(), "nofile_limit": nofile,
            "browser_headers": args.browser_headers,
            "poll_header_bytes": header_bytes(&shared.headers),
        },
        "server": {
            "pid": pid,
            "binary_bytes": binary_size,
            "ready_ms": server.ready.map(|d| d.as_secs_f64() * 1e3),
            "idle_rss_bytes": idle_rss,
            "rss_before_park_bytes": rss_cold,
            "rss_first_park_bytes": rss_first_park,
            "rss_answered_bytes": rss_answered,
            "rss_parked_bytes": rss_parked,
            "rss_after_run_bytes": rss_loaded,
            "rss_per_poll_bytes": per_poll_first,
            "rss_per_poll_warm_bytes": per_poll_warm,
            "rss_per_poll_cold_bytes": per_poll_cold,
            "threads_idle": idle_threads,
            "threads_before_park": threads_before_park,
            "threads_parked": threads_parked,
            "cpu_s": server_cpu,
            "cpu_window_s": cpu_window.as_secs_f64(),
            "cpu_pct_of_one_core": server_cpu.map(|c| c / cpu_window.as_secs_f64() * 100.0),
            "cpu_us_per_delivered": per(delivery.len()),
            "cpu_us_per_acked": per(acked),
            "clock_ticks": ticks,
        },
        "generator": {
            "cpu_s": self_cpu,
            "cpu_pct_of_one_core": self_cpu.map(|c| c / cpu_window.as_secs_f64() * 100.0),
            "late_sends": late,
        },
        "setup": {
            "chats_created": chats.len(),
            "setup_s": setup_time.as_secs_f64(),
            "park_s": park_time.as_secs_f64(),
            "gate_s": gate_wait.as_secs_f64(),
            "polls_parked": parked,
            "poll_responses_while_idle": responses_idle,
        },
        "results": {
            "sent": sent,
            "acked": acked,
            "send_errors": send_errors,
            "send_window_s": send_window.as_secs_f64(),
            "acked_per_s": sends_per_s,
            "delivered": delivery.len(),
            "lost": lost,
            "duplicated": duplicated,
            "misrouted": misrouted,
            "out_of_order": out_of_order,
            "delivered_unacked": delivered_unacked,
            "poll_errors": poll_errors,
            "poll_responses": track.poll_responses.load(Ordering::Relaxed),
            "delivery_latency": percentiles(&delivery),
            "ack_latency": percentiles(&ack),
            "pass": pass,
        },
    });
    print_table(&report);
    if gate_wait > Duration::from_secs(4) && per_poll_warm.is_some() {
        eprintln!(
            "loadgen: warning: pollers waited up to {:.1} s at the gate; a server that closes idle \
             connections after 5 s may have closed some, which counts them in the warm number",
            gate_wait.as_secs_f64()
        );
    }
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
        println!("JSON written to {}", path.display());
    }
    drop(server);
    Ok(pass)
}

/// One line per message, for looking at latency over time.
fn dump_csv(track: &Track, sent: usize, path: &Path) -> Res<()> {
    let mut out = String::from("index,chat,sent_ms,ack_ms,delivery_ms,received\n");
    let first = track.sent_at[..sent]
        .iter()
        .map(|t| t.load(Ordering::Relaxed))
        .filter(|&t| t != 0)
        .min()
        .unwrap_or(0);
    for i in 0..sent {
        let sent_at = track.sent_at[i].load(Ordering::Relaxed);
        let ack = track.ack_ns[i].load(Ordering::Relaxed);
        let recv = track.recv_at[i].load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "{i},{},{:.3},{:.3},{:.3},{}",
            track.chat_of[i].load(Ordering::Relaxed),
            sent_at.saturating_sub(first) as f64 / 1e6,
            ack as f64 / 1e6,
            if recv == 0 {
                0.0
            } else {
                recv.saturating_sub(sent_at) as f64 / 1e6
            },
            track.recv_count[i].load(Ordering::Relaxed),
        );
    }
    std::fs::write(path, out).map_err(|e| format!("{}: {e}", path.display()))
}

fn print_table(r: &serde_json::Value) {
    let num = |v: &serde_json::Value| match v {
        serde_json::Value::Null => "n/a".to_string(),
        serde_json::Value::Number(n) => {
            let f = n.as_f64().unwrap_or(0.0);
            if n.is_f64() {
                format!("{f:.3}")
            } else {
                n.to_string()
            }
        }
        other => other.to_string(),
    };
    let mib = |v: &serde_json::Value| {
        v.as_f64()
            .map_or("n/a".into(), |b| format!("{:.1} MiB", b / 1048576.0))
    };
    let m = &r["machine"];
    let s = &r["server"];
    let res = &r["results"];
    println!();
    println!(
        "machine     {} cores, {}, {:.1} GiB RAM (server and generator share it)",
        m["nproc"],
        m["cpu"].as_str().unwrap_or("?"),
        m["mem_total_bytes"].as_f64().unwrap_or(0.0) / 1073741824.0
    );
    println!(
        "target      {}{}",
        r["target"].as_str().unwrap_or("?"),
        if r["config"]["browser_headers"].as_bool() == Some(true) {
            format!(
                "  (browser headers: {} B per poll)",
                r["config"]["poll_header_bytes"]
            )
        } else {
            String::new()
        }
    );
    println!(
        "mode        {}  polls {}  chats {}  rate {}  senders {}  duration {} s",
        r["mode"].as_str().unwrap_or("?"),
        r["config"]["polls"],
        r["config"]["chats"],
        num(&r["config"]["rate"]),
        r["config"]["senders"],
        r["config"]["duration_s"]
    );
    println!("{:-<64}", "");
    // A peer was not started by us: no binary, no ready time.
    if r["target"].as_str() == Some("parley") {
        println!(
            "{:<34}{:>30}",
            "release binary",
            num(&s["binary_bytes"]) + " B"
        );
        println!("{:<34}{:>30}", "ready time", num(&s["ready_ms"]) + " ms");
    }
    println!("{:<34}{:>30}", "idle RSS", mib(&s["idle_rss_bytes"]));
    for (label, key) in [
        ("RSS before the first polls", "rss_before_park_bytes"),
        ("RSS with all first polls parked", "rss_first_park_bytes"),
        ("RSS with all answered once", "rss_answered_bytes"),
        ("RSS with all parked again", "rss_parked_bytes"),
    ] {
        println!("{label:<34}{:>30}", mib(&s[key]));
    }
    // first park: as measured before the warm-up existed; warm: what parking again adds once
    // every chat has been read; cold: all of it, the first answer's leftovers included.
    for (label, key) in [
        ("RSS per parked poll, first park", "rss_per_poll_bytes"),
        ("RSS per parked poll, warm", "rss_per_poll_warm_bytes"),
        ("RSS per parked poll, cold", "rss_per_poll_cold_bytes"),
    ] {
        let value = s[key]
            .as_f64()
            .map_or("n/a".into(), |b| format!("{b:.0} B"));
        println!("{label:<34}{value:>30}");
    }
    println!(
        "{:<34}{:>30}",
        "server threads idle/setup/parked",
        format!(
            "{} / {} / {}",
            num(&s["threads_idle"]),
            num(&s["threads_before_park"]),
            num(&s["threads_parked"])
        )
    );
    println!(
        "{:<34}{:>30}",
        "polls parked (in flight)",
        num(&r["setup"]["polls_parked"])
    );
    println!(
        "{:<34}{:>30}",
        "setup (visitors+chats)",
        num(&r["setup"]["setup_s"]) + " s"
    );
    println!("{:-<64}", "");
    println!("{:<34}{:>30}", "sent", num(&res["sent"]));
    println!("{:<34}{:>30}", "acknowledged", num(&res["acked"]));
    println!(
        "{:<34}{:>30}",
        "acknowledged sends/s",
        num(&res["acked_per_s"])
    );
    println!("{:<34}{:>30}", "send errors", num(&res["send_errors"]));
    println!("{:<34}{:>30}", "delivered", num(&res["delivered"]));
    println!("{:<34}{:>30}", "LOST", num(&res["lost"]));
    println!("{:<34}{:>30}", "DUPLICATED", num(&res["duplicated"]));
    println!(
        "{:<34}{:>30}",
        "misrouted / out of order",
        format!("{} / {}", num(&res["misrouted"]), num(&res["out_of_order"]))
    );
    println!("{:<34}{:>30}", "poll errors", num(&res["poll_errors"]));
    println!("{:-<64}", "");
    println!(
        "{:<16}{:>8}{:>8}{:>8}{:>8}{:>8}{:>8}",
        "latency (ms)", "p50", "p90", "p99", "p99.9", "max", "n"
    );
    for (name, key) in [
        ("delivery", "delivery_latency"),
        ("send ack", "ack_latency"),
    ] {
        let h = &res[key];
        println!(
            "{:<16}{:>8}{:>8}{:>8}{:>8}{:>8}{:>8}",
            name,
            num(&h["p50_ms"]),
            num(&h["p90_ms"]),
            num(&h["p99_ms"]),
            num(&h["p999_ms"]),
            num(&h["max_ms"]),
            num(&h["count"])
        );
    }
    println!("{:-<64}", "");
    println!(
        "{:<34}{:>30}",
        "server CPU (% of one core)",
        num(&s["cpu_pct_of_one_core"])
    );
    let micros = |v: &serde_json::Value| v.as_f64().map_or("n/a".into(), |u| format!("{u:.1} µs"));
    println!(
        "{:<34}{:>30}",
        "server CPU per delivered message",
        micros(&s["cpu_us_per_delivered"])
    );
    println!(
        "{:<34}{:>30}",
        "server CPU per acknowledged send",
        micros(&s["cpu_us_per_acked"])
    );
    println!(
        "{:<34}{:>30}",
        "CPU window, first send→last delivery",
        num(&s["cpu_window_s"]) + " s"
    );
    println!(
        "{:<34}{:>30}",
        "generator CPU (% of one core)",
        num(&r["generator"]["cpu_pct_of_one_core"])
    );
    println!(
        "{:<34}{:>30}",
        "late sends (>5 ms behind)",
        num(&r["generator"]["late_sends"])
    );
    println!(
        "{:<34}{:>30}",
        "RESULT",
        if res["pass"].as_bool() == Some(true) {
            "PASS"
        } else {
            "FAIL"
        }
    );
}
