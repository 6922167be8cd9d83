//! Runtime settings: every field is a command-line flag and a `PARLEY_*` environment variable.

use std::path::PathBuf;
use std::time::Duration;

/// How the server runs. Defaults give a working chat at http://127.0.0.1:8080 with `./parley.db`.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Address to listen on (use port 0 for an ephemeral port).
    #[arg(
        long,
        env = "PARLEY_ADDR",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub addr: String,

    /// SQLite database file; created on first start.
    #[arg(long, env = "PARLEY_DB", default_value = "./parley.db", global = true)]
    pub db: PathBuf,

    /// PostgreSQL instead of the SQLite file (`postgres://user:pass@host/db`), for several
    /// instances sharing one database.
    #[arg(long, env = "PARLEY_DATABASE_URL", global = true)]
    pub database_url: Option<String>,

    /// Most connections one instance opens to PostgreSQL.
    #[arg(
        long,
        env = "PARLEY_DATABASE_CONNECTIONS",
        default_value_t = 16,
        global = true
    )]
    pub database_connections: u32,

    /// Longest time, in seconds, a long poll is held open before it answers empty.
    #[arg(long, env = "PARLEY_POLL_TIMEOUT", default_value_t = 25, global = true)]
    pub poll_timeout: u64,

    /// Lifetime of an agent session, in days.
    #[arg(long, env = "PARLEY_SESSION_DAYS", default_value_t = 30, global = true)]
    pub session_days: u64,

    /// Email of the admin created on first start when the database has no agent.
    #[arg(
        long,
        env = "PARLEY_ADMIN_EMAIL",
        global = true,
        hide_env_values = true
    )]
    pub admin_email: Option<String>,

    /// Password of that first admin (else a random one is printed once to the log).
    #[arg(
        long,
        env = "PARLEY_ADMIN_PASSWORD",
        global = true,
        hide_env_values = true
    )]
    pub admin_password: Option<String>,

    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "PARLEY_WORKERS", global = true)]
    pub workers: Option<usize>,

    /// Enforce abuse limits (request rates per IP and token, login back-off). Turn off only
    /// for benchmarks from one address.
    #[arg(long, env = "PARLEY_RATE_LIMITS", default_value_t = true, action = clap::ArgAction::Set, global = true)]
    pub rate_limits: bool,

    /// Most long polls one token may hold at once; a newer poll answers the oldest.
    #[arg(
        long,
        env = "PARLEY_MAX_POLLS_PER_TOKEN",
        default_value_t = 6,
        global = true
    )]
    pub max_polls_per_token: usize,

    /// Take the client address from `X-Forwarded-For` (only behind a reverse proxy you run).
    /// The address is the one the outermost trusted proxy saw: the entry `proxy_hops` from
    /// the right, never one the client wrote itself.
    #[arg(long, env = "PARLEY_TRUST_PROXY", default_value_t = false, action = clap::ArgAction::Set, global = true)]
    pub trust_proxy: bool,

    /// Reverse proxies in front of Parley that append to `X-Forwarded-For` (with
    /// `trust_proxy`): 1 for one nginx, 2 for a load balancer in front of nginx.
    #[arg(long, env = "PARLEY_PROXY_HOPS", default_value_t = 1, global = true)]
    pub proxy_hops: usize,

    /// Read the standard `Forwarded` header instead of `X-Forwarded-For` (with
    /// `trust_proxy`); only if your proxy sets it and drops the client's own.
    #[arg(long, env = "PARLEY_TRUST_FORWARDED", default_value_t = false, action = clap::ArgAction::Set, global = true)]
    pub trust_forwarded: bool,

    /// Most open connections from one client address (0: no limit). Not applied with
    /// `trust_proxy`: behind a proxy every connection comes from the proxy's address.
    #[arg(
        long,
        env = "PARLEY_MAX_CONNECTIONS_PER_IP",
        default_value_t = 256,
        global = true
    )]
    pub max_connections_per_ip: usize,

    /// Most open connections in total (0: no limit).
    #[arg(
        long,
        env = "PARLEY_MAX_CONNECTIONS",
        default_value_t = 50_000,
        global = true
    )]
    pub max_connections: usize,

    /// Seconds a request body may go without a byte before the request gets `408`.
    #[arg(
        long,
        env = "PARLEY_BODY_IDLE_TIMEOUT",
        default_value_t = 10,
        global = true
    )]
    pub body_idle_timeout: u64,

    /// Seconds a whole request body may take.
    #[arg(
        long,
        env = "PARLEY_BODY_TIMEOUT",
        default_value_t = 120,
        global = true
    )]
    pub body_timeout: u64,

    /// Slowest accepted request body, in bytes per second on average after 10 s.
    #[arg(long, env = "PARLEY_BODY_MIN_RATE", default_value_t = 16 * 1024, global = true)]
    pub body_min_rate: u64,

    /// Uploads one token may run at once (0: no limit).
    #[arg(
        long,
        env = "PARLEY_UPLOADS_PER_TOKEN",
        default_value_t = 2,
        global = true
    )]
    pub uploads_per_token: usize,

    /// Uploads one client address may run at once (0: no limit).
    #[arg(
        long,
        env = "PARLEY_UPLOADS_PER_IP",
        default_value_t = 4,
        global = true
    )]
    pub uploads_per_ip: usize,

    /// Bytes one visitor may upload per hour (0: no limit; agents are not counted).
    #[arg(long, env = "PARLEY_UPLOAD_QUOTA_VISITOR", default_value_t = 100 * 1024 * 1024, global = true)]
    pub upload_quota_visitor: u64,

    /// Bytes visitors of one client address may upload per hour (0: no limit).
    #[arg(long, env = "PARLEY_UPLOAD_QUOTA_IP", default_value_t = 200 * 1024 * 1024, global = true)]
    pub upload_quota_ip: u64,

    /// Free disk space, in bytes, below which uploads get `507` (chat messages still work).
    #[arg(long, env = "PARLEY_MIN_FREE_DISK", default_value_t = 512 * 1024 * 1024, global = true)]
    pub min_free_disk: u64,

    /// Let webhooks target loopback, link-local and private addresses (refused by default,
    /// so a webhook cannot reach services inside your network).
    #[arg(long, env = "PARLEY_WEBHOOK_ALLOW_PRIVATE", default_value_t = false, action = clap::ArgAction::Set, global = true)]
    pub webhook_allow_private: bool,

    /// Delete closed chats (with their messages and files) this many days after closing;
    /// unset keeps everything.
    #[arg(long, env = "PARLEY_RETENTION_DAYS", global = true)]
    pub retention_days: Option<u64>,

    /// Seconds an `online` agent counts as present after its latest request (the open inbox
    /// makes one at least every `poll-timeout` seconds).
    #[arg(
        long,
        env = "PARLEY_PRESENCE_WINDOW",
        default_value_t = 60,
        value_parser = clap::value_parser!(u64).range(1..=3600),
        global = true
    )]
    pub presence_window: u64,

    /// Largest attachment, in bytes (default 10 MiB).
    #[arg(long, env = "PARLEY_MAX_UPLOAD", default_value_t = 10 * 1024 * 1024, global = true)]
    pub max_upload: usize,

    /// Sites allowed to frame the visitor chat (the widget), space-separated origins such as
    /// `https://shop.example`; `*` allows any. The agent inbox can never be framed.
    #[arg(
        long,
        env = "PARLEY_ALLOWED_ORIGINS",
        default_value = "*",
        global = true
    )]
    pub allowed_origins: String,
    /// Identity verification: the secret (at least 16 bytes) with which the host site signs
    /// its logged-in user's id (lowercase hex HMAC-SHA256) for `POST /api/v1/visitors`.
    /// Unset, identity fields are refused with `422`.
    #[arg(
        long,
        env = "PARLEY_IDENTITY_SECRET",
        global = true,
        hide_env_values = true
    )]
    pub identity_secret: Option<String>,

    /// Admit only visitors whose identity the host site signed: anonymous visitors and
    /// the tokens of unverified ones get `401`. Needs `identity_secret`.
    #[arg(long, env = "PARLEY_IDENTITY_REQUIRED", default_value_t = false, action = clap::ArgAction::Set, global = true)]
    pub identity_required: bool,

    /// First webhook retry delay, in milliseconds; each further retry doubles it (up to 10 min).
    #[arg(
        long,
        env = "PARLEY_WEBHOOK_RETRY_BASE_MS",
        default_value_t = 1000,
        global = true
    )]
    pub webhook_retry_base_ms: u64,

    /// SMTP server for email: `smtp://[user:password@]host:port[?tls=required|opportunistic|none]`
    /// (STARTTLS; `opportunistic` when left out) or `smtps://…` (TLS from the start). Unset:
    /// no email is sent.
    #[arg(long, env = "PARLEY_SMTP_URL", global = true, hide_env_values = true)]
    pub smtp_url: Option<String>,

    /// Sender of email, `support@example.com` or `Support <support@example.com>` (default:
    /// `parley@` the public URL's host).
    #[arg(long, env = "PARLEY_MAIL_FROM", global = true)]
    pub mail_from: Option<String>,

    /// Where people reach this server, such as `https://chat.example.com`: the base of the
    /// links in email (default: `http://` and `--addr`).
    #[arg(long, env = "PARLEY_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,

    /// Seconds a message may stay unread before it is emailed (to the agents, or to a
    /// visitor with an email).
    #[arg(
        long,
        env = "PARLEY_NOTIFY_AFTER",
        default_value_t = 120,
        global = true
    )]
    pub notify_after: u64,

    /// First email retry delay, in milliseconds, while the SMTP server fails; each further
    /// retry doubles it (up to 10 min).
    #[arg(
        long,
        env = "PARLEY_MAIL_RETRY_BASE_MS",
        default_value_t = 1000,
        global = true
    )]
    pub mail_retry_base_ms: u64,
}

impl Config {
    /// The clamp applied to a client's `wait`.
    pub fn max_wait(&self) -> Duration {
        Duration::from_secs(self.poll_timeout)
    }

    pub fn session_lifetime(&self) -> Duration {
        Duration::from_secs(self.session_days * 24 * 60 * 60)
    }

    /// The configuration that this command line (program name first) and the `PARLEY_*`
    /// environment give: the same parser and defaults as the binary's (tests use it too).
    pub fn parse_from<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::Parser;

        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            config: Config,
        }
        Only::try_parse_from(args).map(|only| only.config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[derive(clap::Parser)]
    struct Only {
        #[command(flatten)]
        config: Config,
    }

    /// The README's table is the one other place the settings are written: it must list
    /// each with the variable and default the parser really has.
    #[test]
    fn the_readme_lists_every_setting_with_its_real_default() {
        let readme = include_str!("../README.md");
        let command = Only::command();
        for arg in command.get_arguments() {
            let Some(flag) = arg.get_long() else { continue };
            let row = readme
                .lines()
                .find(|line| line.starts_with(&format!("| `--{flag}` |")))
                .unwrap_or_else(|| panic!("--{flag} is missing from the README's table"));
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
            assert_eq!(cells[2], format!("`{}`", env.unwrap_or_default()), "{row}");
            let default: Vec<String> = arg
                .get_default_values()
                .iter()
                .map(|v| v.to_string_lossy().into_owned())
                .collect();
            if let [default] = default.as_slice() {
                assert_eq!(cells[3], format!("`{default}`"), "{row}");
            }
        }
    }

    #[test]
    fn defaults_give_a_chat_on_port_8080_with_parley_db() {
        let config = Config::parse_from(["parley"]).expect("no arguments is valid");
        assert_eq!(config.addr, "127.0.0.1:8080");
        assert_eq!(config.db, PathBuf::from("./parley.db"));
        assert_eq!(config.max_wait(), Duration::from_secs(25));
    }
}
