//! Search benchmark: fills a temporary SQLite database with 100,000 messages of support-chat
//! text, then times a few hundred varied searches through the real search service
//! (`services::search::search`: the read pool, FTS5 with bm25, the message reads and the
//! snippets), and prints p50/p95/p99/max per kind of query and overall.
//!
//! ```sh
//! cargo run --release --example search_bench
//! cargo run --release --example search_bench -- --messages 200000 --limit 100
//! ```
//!
//! The text is drawn from a vocabulary of a few hundred support words (a handful of them
//! accented) and a few thousand rarer ones (order numbers, names, product words), with
//! Zipf-like frequencies, so common words match tens of thousands of messages and rare ones
//! a handful, as in a real inbox. The seed is fixed: two runs search the same data.

use std::time::{Duration, Instant};

use parley::domain::search::{fold, SearchQuery};
use parley::domain::{Caller, Role};
use parley::services::search;
use parley::store::Store;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const COMMON: &[&str] = &[
    "the",
    "to",
    "and",
    "a",
    "i",
    "you",
    "is",
    "it",
    "for",
    "my",
    "of",
    "on",
    "in",
    "we",
    "your",
    "can",
    "with",
    "this",
    "that",
    "have",
    "order",
    "please",
    "thanks",
    "hi",
    "hello",
    "not",
    "be",
    "but",
    "do",
    "are",
    "account",
    "help",
    "will",
    "me",
    "if",
    "just",
    "get",
    "was",
    "payment",
    "refund",
    "delivery",
    "shipping",
    "package",
    "email",
    "password",
    "login",
    "error",
    "invoice",
    "card",
    "subscription",
    "cancel",
    "address",
    "phone",
    "number",
    "problem",
    "issue",
    "working",
    "received",
    "sent",
    "today",
    "yesterday",
    "tomorrow",
    "week",
    "days",
    "still",
    "again",
    "check",
    "update",
    "status",
    "tracking",
    "link",
    "page",
    "app",
    "website",
    "browser",
    "support",
    "team",
    "agent",
    "customer",
    "price",
    "discount",
    "coupon",
    "code",
    "plan",
    "upgrade",
    "downgrade",
    "billing",
    "charged",
    "twice",
    "wrong",
    "size",
    "colour",
    "return",
    "exchange",
    "policy",
    "warranty",
    "broken",
    "damaged",
    "missing",
    "item",
    "items",
    "product",
    "store",
    "checkout",
    "cart",
    "basket",
    "confirm",
    "confirmation",
    "reset",
    "change",
    "new",
    "old",
    "free",
    "trial",
    "monthly",
    "yearly",
    "annual",
    "receipt",
    "bank",
    "transfer",
    "paypal",
    "visa",
    "mastercard",
    "declined",
    "approved",
    "pending",
    "processing",
    "shipped",
    "delivered",
    "courier",
    "parcel",
    "box",
    "label",
    "print",
    "download",
    "upload",
    "file",
    "attachment",
    "screenshot",
    "photo",
    "video",
    "install",
    "version",
    "android",
    "iphone",
    "windows",
    "mac",
    "laptop",
    "tablet",
    "screen",
    "button",
    "click",
    "settings",
    "profile",
    "name",
    "notification",
    "notifications",
    "message",
    "messages",
    "chat",
    "call",
    "back",
    "soon",
    "asap",
    "urgent",
    "quick",
    "question",
    "answer",
    "sorry",
    "apologies",
    "understand",
    "appreciate",
    "great",
    "perfect",
    "awesome",
    "okay",
    "sure",
    "yes",
    "no",
    "maybe",
    "morning",
    "evening",
    "monday",
    "friday",
    "weekend",
    "holiday",
    "europe",
    "germany",
    "france",
    "spain",
    "déjà",
    "café",
    "résumé",
    "über",
    "straße",
    "naïve",
    "façade",
    "señor",
    "crème",
    "garçon",
    "müller",
    "zürich",
    "københavn",
    "łódź",
];

/// `n` rare words: order numbers, surnames and product words made of syllables.
fn rare_words(rng: &mut StdRng, n: usize) -> Vec<String> {
    const SYLLABLES: &[&str] = &[
        "ka", "lo", "mi", "ra", "tu", "ne", "so", "vi", "de", "ba", "zor", "lin", "tek", "mar",
        "quin", "sel", "dor", "fen", "gal", "hap", "jul", "kep", "mon", "pra", "rist", "sto",
    ];
    (0..n)
        .map(|i| {
            if i % 3 == 0 {
                format!("ord{}", 100_000 + rng.gen_range(0..900_000))
            } else {
                let parts = rng.gen_range(2..=4);
                (0..parts)
                    .map(|_| SYLLABLES[rng.gen_range(0..SYLLABLES.len())])
                    .collect()
            }
        })
        .collect()
}

/// Words with Zipf-like frequencies: the k-th most common is drawn ∝ 1/k.
struct Vocabulary {
    words: Vec<String>,
    cumulative: Vec<f64>,
}

impl Vocabulary {
    fn new(rng: &mut StdRng) -> Self {
        let mut words: Vec<String> = COMMON.iter().map(|w| w.to_string()).collect();
        words.extend(rare_words(rng, 5_000));
        let mut total = 0.0;
        let cumulative = (1..=words.len())
            .map(|rank| {
                total += 1.0 / rank as f64;
                total
            })
            .collect();
        Self { words, cumulative }
    }

    fn word(&self, rng: &mut StdRng) -> &str {
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        let x = rng.gen_range(0.0..total);
        let at = self.cumulative.partition_point(|c| *c < x);
        &self.words[at.min(self.words.len() - 1)]
    }

    /// A message: mostly short, sometimes a long paragraph, with a capital and a stop.
    fn message(&self, rng: &mut StdRng) -> String {
        let len = if rng.gen_bool(0.05) {
            rng.gen_range(60..200)
        } else {
            rng.gen_range(3..30)
        };
        let mut body = String::new();
        for i in 0..len {
            let word = self.word(rng);
            if i == 0 {
                let mut chars = word.chars();
                if let Some(first) = chars.next() {
                    body.extend(first.to_uppercase());
                    body.push_str(chars.as_str());
                }
            } else {
                body.push(if rng.gen_bool(0.08) { ',' } else { ' ' });
                if body.ends_with(',') {
                    body.push(' ');
                }
                body.push_str(word);
            }
        }
        body.push(if rng.gen_bool(0.2) { '?' } else { '.' });
        body
    }
}

struct Options {
    messages: usize,
    limit: usize,
}

fn options() -> Options {
    let mut options = Options {
        messages: 100_000,
        limit: 20,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().and_then(|v| v.parse().ok());
        match (arg.as_str(), value) {
            ("--messages", Some(n)) => options.messages = n,
            ("--limit", Some(n)) => options.limit = n,
            _ => {
                eprintln!("usage: search_bench [--messages N] [--limit N]");
                std::process::exit(2);
            }
        }
    }
    options
}

/// Fills the database: visitors, chats of 20 messages each, the messages (the writer puts
/// them into the FTS5 index, as in the server).
async fn fill(store: &Store, vocabulary: &Vocabulary, rng: &mut StdRng, messages: usize) {
    const PER_CHAT: usize = 20;
    const BATCH: usize = 10_000;
    let chats = messages.div_ceil(PER_CHAT);
    store
        .write(move |db| {
            for chat in 0..chats {
                let visitor = format!("v{chat}");
                db.execute(
                    "INSERT INTO visitors (id, name, created_at)
                     VALUES (?1, ?2, '2026-01-01T00:00:00.000Z')",
                    &[&visitor, &format!("Visitor {chat}")],
                )?;
                db.execute(
                    "INSERT INTO chats (id, visitor_id, created_at)
                     VALUES (?1, ?2, '2026-01-01T00:00:00.000Z')",
                    &[&format!("c{chat}"), &visitor],
                )?;
            }
            Ok(())
        })
        .await
        .expect("the chats are stored");
    let mut sent = 0;
    while sent < messages {
        let batch: Vec<(String, String, String)> = (sent..messages.min(sent + BATCH))
            .map(|i| {
                let chat = i % chats;
                let sender = if rng.gen_bool(0.5) {
                    "visitor"
                } else {
                    "agent"
                };
                let body = vocabulary.message(rng);
                (format!("c{chat}"), sender.to_string(), body)
            })
            .collect();
        sent += batch.len();
        let first = sent - batch.len();
        store
            .write(move |db| {
                for (i, (chat, sender, body)) in batch.iter().enumerate() {
                    db.execute(
                        "INSERT INTO messages (id, chat_id, sender, body, created_at)
                         VALUES (?1, ?2, ?3, ?4, '2026-01-01T00:00:00.000Z')",
                        &[&format!("m{}", first + i), chat, sender, body],
                    )?;
                }
                Ok(())
            })
            .await
            .expect("the messages are stored");
    }
}

/// A few hundred queries of each kind, drawn from the same vocabulary.
fn queries(vocabulary: &Vocabulary, rng: &mut StdRng) -> Vec<(&'static str, String)> {
    let common = &vocabulary.words[..COMMON.len()];
    let rare = &vocabulary.words[COMMON.len()..];
    let pick = |rng: &mut StdRng, list: &[String]| list[rng.gen_range(0..list.len())].clone();
    let mut all = Vec::new();
    for _ in 0..80 {
        all.push(("top-40 word", pick(rng, &common[..40])));
    }
    for _ in 0..60 {
        all.push(("top-220 word", pick(rng, common)));
    }
    for _ in 0..60 {
        all.push(("rarer word", pick(rng, rare)));
    }
    for _ in 0..60 {
        let word = pick(rng, common);
        let cut: String = word.chars().take(rng.gen_range(2..=4)).collect();
        all.push(("prefix, 2-4 letters", format!("{cut}*")));
    }
    for _ in 0..60 {
        let (a, b) = (pick(rng, common), pick(rng, common));
        all.push(("two words", format!("{a} {b}")));
    }
    for _ in 0..40 {
        let message = vocabulary.message(rng);
        let words: Vec<&str> = message
            .split([' ', ',', '.', '?'])
            .filter(|w| !w.is_empty())
            .collect();
        let at = rng.gen_range(0..words.len().saturating_sub(1).max(1));
        let phrase = words[at..(at + 2).min(words.len())].join(" ");
        all.push(("phrase", format!("\"{phrase}\"")));
    }
    for word in &common[common.len() - 14..] {
        all.push(("accent-free", fold(word)));
    }
    for i in 0..20 {
        all.push(("no match", format!("xyzzy{i}plugh")));
    }
    all
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let at = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
    sorted[at - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    let options = options();
    let dir = tempfile::tempdir().expect("a temp dir can be made");
    let store = Store::open(&dir.path().join("search.db"), parley::store::READERS)
        .expect("the database opens");
    let mut rng = StdRng::seed_from_u64(15);
    let vocabulary = Vocabulary::new(&mut rng);

    let started = Instant::now();
    fill(&store, &vocabulary, &mut rng, options.messages).await;
    let filled = started.elapsed();
    let size = std::fs::metadata(dir.path().join("search.db")).map_or(0, |m| m.len())
        + std::fs::metadata(dir.path().join("search.db-wal")).map_or(0, |m| m.len());
    println!(
        "{} messages stored in {:.1} s ({} MB with the index)",
        options.messages,
        filled.as_secs_f64(),
        size / 1_000_000
    );

    let caller = Caller::Agent {
        id: "bench".into(),
        role: Role::Agent,
    };
    let queries = queries(&vocabulary, &mut rng);
    // One pass unmeasured: the page cache and the prepared statements, as in a warm server.
    for (_, q) in queries.iter().take(50) {
        let query = SearchQuery::parse(q).expect("the bench's queries parse");
        search::search(&store, &caller, query, options.limit)
            .await
            .expect("the search runs");
    }
    let mut by_kind: Vec<(&str, Vec<Duration>, usize)> = Vec::new();
    let mut all = Vec::new();
    let measured = Instant::now();
    for (kind, q) in &queries {
        let start = Instant::now();
        let query = SearchQuery::parse(q).expect("the bench's queries parse");
        let results = search::search(&store, &caller, query, options.limit)
            .await
            .expect("the search runs");
        let took = start.elapsed();
        all.push(took);
        match by_kind.iter_mut().find(|(k, _, _)| k == kind) {
            Some((_, times, found)) => {
                times.push(took);
                *found += results.len();
            }
            None => by_kind.push((kind, vec![took], results.len())),
        }
    }
    let total = measured.elapsed();

    println!(
        "{} searches (limit {}) in {:.2} s\n",
        all.len(),
        options.limit,
        total.as_secs_f64()
    );
    println!(
        "| queries | n | results (mean) | p50 ms | p95 ms | p99 ms | max ms |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    let row = |kind: &str, times: &mut Vec<Duration>, found: usize| {
        times.sort();
        println!(
            "| {kind} | {} | {:.1} | {} | {} | {} | {} |",
            times.len(),
            found as f64 / times.len() as f64,
            ms(percentile(times, 0.50)),
            ms(percentile(times, 0.95)),
            ms(percentile(times, 0.99)),
            ms(times[times.len() - 1]),
        );
    };
    let mut found_all = 0;
    for (kind, times, found) in &mut by_kind {
        found_all += *found;
        row(kind, times, *found);
    }
    row("**all**", &mut all, found_all);
}
