//! Load generator for Parley: parks N long polls, sends messages, measures delivery.
//!
//! Run from the repository root (see `docs/BENCHMARKS.md`):
//!
//! ```sh
//! cargo build --release
//! cargo run --release --example loadgen -- --polls 10000 --rate 1000 --duration 10
//! cargo run --release --example loadgen -- --polls 1000 --senders 64 --duration 10
//! ```
//!
//! By default it starts `target/release/parley` itself on a free port of 127.0.0.1 with a
//! temporary database, measures its ready time and memory, and kills it at the end. With
//! `--url` it targets a running server instead (memory only with `--pid`).
//!
//! Two modes:
//! - **fixed rate** (default): `--rate R` messages/s for `--duration D` seconds, each to a
//!   random chat as the agent; delivery latency is the time from the send's start to the
//!   moment the chat's poller holds the response that carries it.
//! - **throughput** (`--senders S`): S senders send back to back for D seconds.
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

use clap::Parser;
use hdrhistogram::Histogram;
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Ticks per second of `/proc/<pid>/stat` CPU times (USER_HZ, 100 on Linux).
const CLOCK_TICKS: f64 = 100.0;
/// Bearer body of every message sent (short: we measure the machinery, not the payload).
const BODY: &str = "Hello from loadgen, is anyone there?";

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
    /// Concurrent requests while creating visitors and chats.
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
    /// Target a running server (http://127.0.0.1:PORT) instead of starting one.
    #[arg(long)]
    url: Option<String>,
    /// With --url: the server's pid, to read its memory and CPU time.
    #[arg(long)]
    pid: Option<u32>,
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

async fn start_server(args: &Args) -> Res<Server> {
    if let Some(url) = &args.url {
        let host_ok = url.starts_with("http://127.0.0.1:") || url.starts_with("http://localhost:");
        if !host_ok {
            return Err(format!("--url must be http://127.0.0.1:PORT, not {url}"));
        }
        let server = Server {
            base: url.trim_end_matches('/').to_string(),
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

/// User + system CPU time of a process, in seconds.
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: f64 = fields.next()?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    Some((utime + stime) / CLOCK_TICKS)
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

fn client(max_idle: usize) -> Res<reqwest::Client> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(max_idle)
        .tcp_nodelay(true)
        .http1_only()
        .no_proxy()
        .build()
        .map_err(|e| format!("http client: {e}"))
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

/// A chat and its visitor's `Authorization` header.
struct Chat {
    id: String,
    auth: HeaderValue,
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

/// Creates `n` visitors with one chat each, `concurrency` at a time.
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
                    auth,
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
    send_errors: AtomicU64,
    poll_errors: AtomicU64,
    misrouted: AtomicU64,
    out_of_order: AtomicU64,
    poll_responses: AtomicU64,
    polls_in_flight: AtomicI64,
    stop: AtomicBool,
}

impl Track {
    fn new(cap: usize) -> Self {
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

/// One chat's chained long poll: `after` is always the previous answer's `next`.
async fn poller(
    client: reqwest::Client,
    base: Arc<str>,
    chat_index: u32,
    chat_id: String,
    auth: HeaderValue,
    track: Arc<Track>,
) {
    let mut next = 0i64;
    let mut last_seq = 0i64;
    let mut url = String::with_capacity(base.len() + chat_id.len() + 64);
    while !track.stop.load(Ordering::Relaxed) {
        url.clear();
        let _ = write!(
            url,
            "{base}/api/v1/chats/{chat_id}/messages?after={next}&wait=25"
        );
        track.polls_in_flight.fetch_add(1, Ordering::Relaxed);
        let response = client
            .get(url.as_str())
            .header(AUTHORIZATION, auth.clone())
            .timeout(Duration::from_secs(40))
            .send()
            .await;
        let body = match response {
            Ok(r) if r.status().is_success() => r.bytes().await.ok(),
            _ => None,
        };
        let received = Instant::now();
        track.polls_in_flight.fetch_sub(1, Ordering::Relaxed);
        track.poll_responses.fetch_add(1, Ordering::Relaxed);
        let Some(page) = body
            .as_deref()
            .and_then(|b| serde_json::from_slice::<PollPage>(b).ok())
        else {
            if track.stop.load(Ordering::Relaxed) {
                return;
            }
            track.poll_errors.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let stamp = track.stamp(received);
        for message in &page.messages {
            if message.seq <= last_seq {
                track.out_of_order.fetch_add(1, Ordering::Relaxed);
            }
            last_seq = last_seq.max(message.seq);
            let Some(i) = message.client_id.and_then(|c| track.index_of(c)) else {
                continue;
            };
            if track.recv_count[i].fetch_add(1, Ordering::Relaxed) == 0 {
                track.recv_at[i].store(stamp, Ordering::Release);
            }
            if track.chat_of[i].load(Ordering::Relaxed) != chat_index {
                track.misrouted.fetch_add(1, Ordering::Relaxed);
            }
        }
        next = page.next;
    }
}

/// Everything a sender needs, shared.
struct SendContext {
    client: reqwest::Client,
    urls: Vec<String>,
    auth: HeaderValue,
    track: Arc<Track>,
}

/// Sends message `i` to chat `chat` as the agent and records its times.
async fn send_one(ctx: &SendContext, i: usize, chat: usize) {
    let track = &ctx.track;
    track.chat_of[i].store(chat as u32, Ordering::Relaxed);
    let body = format!(r#"{{"body":"{BODY}","client_id":"m{i}"}}"#);
    let start = Instant::now();
    track.sent_at[i].store(track.stamp(start), Ordering::Release);
    let response = ctx
        .client
        .post(ctx.urls[chat].as_str())
        .header(AUTHORIZATION, ctx.auth.clone())
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .body(body)
        .timeout(Duration::from_secs(10))
        .send()
        .await;
    let ok = match response {
        // Drain the body so the connection is reused; its JSON is not needed.
        Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
        _ => false,
    };
    if ok {
        let ns = start.elapsed().as_nanos() as u64 + 1;
        track.ack_ns[i].store(ns, Ordering::Release);
    } else {
        track.send_errors.fetch_add(1, Ordering::Relaxed);
    }
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

/// Samples the server's RSS until it stops growing (all polls parked), at most `max`.
async fn settle_rss(pid: u32, max: Duration) -> Option<u64> {
    let deadline = Instant::now() + max;
    let mut last = rss_bytes(pid)?;
    let mut stable = 0;
    tokio::time::sleep(Duration::from_millis(500)).await;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = rss_bytes(pid)?;
        if now.abs_diff(last) < 64 * 1024 {
            stable += 1;
            if stable >= 4 {
                return Some(now);
            }
        } else {
            stable = 0;
        }
        last = now;
    }
    rss_bytes(pid)
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

    let server = start_server(args).await?;
    let pid = server.pid;
    let binary_size = server
        .binary
        .as_ref()
        .or(args.server.as_ref())
        .and_then(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .or_else(|| {
            default_server_binary()
                .ok()
                .and_then(|p| std::fs::metadata(p).ok())
                .map(|m| m.len())
        });
    let idle_rss = pid.and_then(rss_bytes);
    let idle_threads = pid.and_then(threads);

    let setup_started = Instant::now();
    let chats = create_chats(&server.base, n_chats, args.setup_concurrency).await?;
    let setup_time = setup_started.elapsed();
    let setup_client = client(4)?;
    let agent: TokenReply = {
        let body = serde_json::to_string(
            &json!({"email": args.admin_email, "password": args.admin_password}),
        )
        .map_err(|e| e.to_string())?;
        let response = setup_client
            .post(format!("{}/api/v1/agents/login", server.base))
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| format!("login: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("agent login failed: {}", response.status()));
        }
        response.json().await.map_err(|e| format!("login: {e}"))?
    };
    drop(setup_client);

    let total = if throughput {
        args.max_messages
    } else {
        ((args.rate * args.duration).round() as usize).min(args.max_messages)
    };
    let track = Arc::new(Track::new(total));
    // Setup connections are gone now; let the server settle before the "before parking" RSS.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_before_park = pid.and_then(rss_bytes);
    let threads_before_park = pid.and_then(threads);

    // Park one chained long poll per chat, ramped so the accept backlog never overflows.
    let base: Arc<str> = Arc::from(server.base.as_str());
    let poll_clients: Vec<reqwest::Client> = (0..args.poll_clients.max(1))
        .map(|_| client(usize::MAX))
        .collect::<Res<_>>()?;
    let mut pollers = JoinSet::new();
    let park_started = Instant::now();
    for (i, chat) in chats.iter().enumerate().take(args.polls) {
        pollers.spawn(poller(
            poll_clients[i % poll_clients.len()].clone(),
            base.clone(),
            i as u32,
            chat.id.clone(),
            chat.auth.clone(),
            track.clone(),
        ));
        if i % 500 == 499 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let rss_parked = match pid {
        Some(pid) if args.polls > 0 => settle_rss(pid, Duration::from_secs(20)).await,
        Some(pid) => rss_bytes(pid),
        None => {
            tokio::time::sleep(Duration::from_secs(2)).await;
            None
        }
    };
    let park_time = park_started.elapsed();
    let threads_parked = pid.and_then(threads);
    let responses_before = track.poll_responses.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let responses_idle = track.poll_responses.load(Ordering::Relaxed) - responses_before;
    let parked = track.polls_in_flight.load(Ordering::Relaxed);
    let per_poll = match (rss_before_park, rss_parked) {
        (Some(before), Some(after)) if args.polls > 0 => {
            Some((after as f64 - before as f64) / args.polls as f64)
        }
        _ => None,
    };

    // The measured phase.
    let ctx = Arc::new(SendContext {
        client: client(usize::MAX)?,
        urls: chats
            .iter()
            .map(|c| format!("{}/api/v1/chats/{}/messages", server.base, c.id))
            .collect(),
        auth: bearer(&agent.token)?,
        track: track.clone(),
    });
    let server_cpu_before = pid.and_then(|p| cpu_seconds(&p.to_string()));
    let self_cpu_before = cpu_seconds("self");
    let run_started = Instant::now();
    let duration = Duration::from_secs_f64(args.duration);
    let (send_window, late) = if throughput {
        (run_throughput(ctx.clone(), args.senders, duration).await, 0)
    } else {
        run_fixed_rate(ctx.clone(), args, total).await
    };
    let run_wall = run_started.elapsed();
    let server_cpu = pid
        .and_then(|p| cpu_seconds(&p.to_string()))
        .zip(server_cpu_before)
        .map(|(a, b)| a - b);
    let self_cpu = cpu_seconds("self").zip(self_cpu_before).map(|(a, b)| a - b);
    let rss_loaded = pid.and_then(rss_bytes);
    let sent = track.next.load(Ordering::Relaxed).min(track.cap);

    // Grace: wait for every acknowledged message to reach its poller.
    let receivers = args.polls.min(n_chats);
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
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
    let pass =
        lost == 0 && duplicated == 0 && misrouted == 0 && out_of_order == 0 && send_errors == 0;

    let report = json!({
        "label": args.label,
        "mode": if throughput { "throughput" } else { "fixed_rate" },
        "machine": machine,
        "config": {
            "polls": args.polls, "chats": n_chats, "rate": if throughput { json!(null) } else { json!(args.rate) },
            "senders": args.senders, "duration_s": args.duration, "grace_s": args.grace,
            "generator_threads": args.threads, "server_args": args.server_args,
            "started_server": server.child.is_some(), "nofile_limit": nofile,
        },
        "server": {
            "binary_bytes": binary_size,
            "ready_ms": server.ready.map(|d| d.as_secs_f64() * 1e3),
            "idle_rss_bytes": idle_rss,
            "rss_before_park_bytes": rss_before_park,
            "rss_parked_bytes": rss_parked,
            "rss_after_run_bytes": rss_loaded,
            "rss_per_poll_bytes": per_poll,
            "threads_idle": idle_threads,
            "threads_before_park": threads_before_park,
            "threads_parked": threads_parked,
            "cpu_s": server_cpu,
            "cpu_pct_of_one_core": server_cpu.map(|c| c / run_wall.as_secs_f64() * 100.0),
        },
        "generator": {
            "cpu_s": self_cpu,
            "cpu_pct_of_one_core": self_cpu.map(|c| c / run_wall.as_secs_f64() * 100.0),
            "late_sends": late,
        },
        "setup": {
            "chats_created": chats.len(),
            "setup_s": setup_time.as_secs_f64(),
            "park_s": park_time.as_secs_f64(),
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
        "mode        {}  polls {}  chats {}  rate {}  senders {}  duration {} s",
        r["mode"].as_str().unwrap_or("?"),
        r["config"]["polls"],
        r["config"]["chats"],
        num(&r["config"]["rate"]),
        r["config"]["senders"],
        r["config"]["duration_s"]
    );
    println!("{:-<64}", "");
    println!(
        "{:<34}{:>30}",
        "release binary",
        num(&s["binary_bytes"]) + " B"
    );
    println!("{:<34}{:>30}", "ready time", num(&s["ready_ms"]) + " ms");
    println!("{:<34}{:>30}", "idle RSS", mib(&s["idle_rss_bytes"]));
    println!(
        "{:<34}{:>30}",
        "RSS before parking",
        mib(&s["rss_before_park_bytes"])
    );
    println!(
        "{:<34}{:>30}",
        "RSS with polls parked",
        mib(&s["rss_parked_bytes"])
    );
    println!(
        "{:<34}{:>30}",
        "RSS per parked poll",
        s["rss_per_poll_bytes"]
            .as_f64()
            .map_or("n/a".into(), |b| format!("{:.0} B", b))
    );
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
