//! The command line: `parley` serves; subcommands administer the same database.

use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::domain::{self, Chat, Message, Role, Sender};
use crate::http::server::{random_password, Application};
use crate::services::agents::{self, AgentChange, NewAgent};
use crate::services::webhooks::Webhooks;
use crate::services::{auth, bus, privacy};
use crate::store::{self, Direct};

#[derive(Debug, Parser)]
#[command(
    name = "parley",
    version,
    about = "Self-hosted live chat: one binary, one SQLite file"
)]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the chat (the default).
    Serve,
    /// Manage agents.
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Work with chats.
    #[command(subcommand)]
    Chats(ChatsCommand),
    /// A visitor's data: export it, or erase it (GDPR Art. 15 and 17).
    #[command(subcommand)]
    Visitor(VisitorCommand),
    /// Print counts and the database size.
    Stats,
    /// Bring the database to this version's schema and stop (every start does it too).
    Migrate,
    /// Write a consistent copy of the database to PATH, also while the server runs.
    Backup {
        /// Where to write the copy; must not exist yet.
        path: std::path::PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Add an agent (prints a generated password when none is given).
    Add {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// The password; prefer the environment variable to keep it out of shell history.
        #[arg(long, env = "PARLEY_AGENT_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        #[arg(long, value_enum, default_value = "agent")]
        role: CliRole,
    },
    /// List agents.
    List,
    /// Disable an agent and end all of its sessions.
    Disable { email: String },
    /// Enable a disabled agent again.
    Enable { email: String },
    /// Set a new password (generated unless given) and end all of the agent's sessions.
    ResetPassword {
        email: String,
        #[arg(long, env = "PARLEY_AGENT_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ChatsCommand {
    /// Print a chat's transcript (readable text, or JSON with --format json).
    Export {
        chat_id: String,
        #[arg(long, value_enum, default_value = "text")]
        format: ExportFormat,
    },
}

#[derive(Debug, Subcommand)]
pub enum VisitorCommand {
    /// Print everything kept about a visitor as JSON: the visitor, its chats, all their
    /// messages (private notes included, marked `private`).
    Export { visitor_id: String },
    /// Erase a visitor: it, its chats, messages, files, search entries and tokens; a
    /// `visitor.deleted` webhook is queued.
    Delete { visitor_id: String },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ExportFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum CliRole {
    Admin,
    Agent,
}

type CliResult = Result<(), Box<dyn std::error::Error>>;

/// Runs what the command line asks for.
pub fn run(cli: Cli) -> CliResult {
    match cli.command {
        None | Some(Command::Serve) => serve(cli.config),
        Some(Command::Agent(command)) => agent(&cli.config, command),
        Some(Command::Backup { path }) => backup(&cli.config, &path),
        Some(Command::Chats(ChatsCommand::Export { chat_id, format })) => {
            export(&cli.config, &chat_id, format)
        }
        Some(Command::Visitor(command)) => visitor(&cli.config, command),
        Some(Command::Stats) => stats(&cli.config),
        Some(Command::Migrate) => {
            Direct::open(&cli.config, true)?;
            println!("the database is at the current schema");
            Ok(())
        }
    }
}

/// `VACUUM INTO` reads one snapshot (WAL readers never block the writer) and writes a
/// compact, self-contained database file.
fn backup(config: &Config, path: &std::path::Path) -> CliResult {
    if config.database_url.is_some() {
        return Err("on PostgreSQL, back up with the server's own tool, e.g. \
                    `pg_dump --format=custom --file=parley.dump \"$PARLEY_DATABASE_URL\"` \
                    (attachments are in the database too), and restore with pg_restore"
            .into());
    }
    if path.exists() {
        return Err(format!("{} exists already; choose a new file", path.display()).into());
    }
    let Direct::Sqlite(conn) = Direct::open(config, false)? else {
        unreachable!("no database URL: SQLite")
    };
    let target = path.to_str().ok_or("the backup path must be valid UTF-8")?;
    // Made empty and private first: VACUUM INTO fills an empty file and keeps its mode.
    store::keep_private(path)?;
    conn.execute("VACUUM INTO ?1", [target])?;
    println!("backed up {} to {}", config.db.display(), path.display());
    Ok(())
}

fn serve(config: Config) -> CliResult {
    actix_web::rt::System::new().block_on(async move {
        let app = Application::build(config).await?;
        app.run_until_stopped().await?;
        Ok(())
    })
}

fn agent(config: &Config, command: AgentCommand) -> CliResult {
    let mut db = Direct::open(config, true)?;
    match command {
        AgentCommand::Add {
            email,
            name,
            password,
            role,
        } => {
            let (password, generated) = match password {
                Some(p) => (domain::parse_password(&p)?, false),
                None => (random_password(), true),
            };
            let role = match role {
                CliRole::Admin => Role::Admin,
                CliRole::Agent => Role::Agent,
            };
            let new = NewAgent::parse(&email, &name, &password, Some(role))?;
            let hash = auth::hash_password(&password)?;
            let agent = db.write(|db| agents::create_in(db, new, &hash))?;
            println!(
                "added {} {} ({})",
                agent.role.as_str(),
                agent.email,
                agent.id
            );
            if generated {
                println!("password: {password}");
            }
        }
        AgentCommand::List => {
            for agent in db.read(|db| Ok(store::agents::list(db)?))? {
                let state = if agent.disabled { "disabled" } else { "active" };
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    agent.email,
                    agent.name,
                    agent.role.as_str(),
                    state,
                    agent.id
                );
            }
        }
        AgentCommand::Disable { email } => set_disabled(&mut db, &email, true)?,
        AgentCommand::Enable { email } => set_disabled(&mut db, &email, false)?,
        AgentCommand::ResetPassword { email, password } => {
            let (password, generated) = match password {
                Some(p) => (domain::parse_password(&p)?, false),
                None => (random_password(), true),
            };
            let hash = auth::hash_password(&password)?;
            db.write(|db| {
                let agent = agents::find_by_email_in(db, &email)?;
                agents::set_password_in(db, &agent.id, &hash, None)
            })?;
            println!("reset the password of {email}; all of its sessions ended");
            if generated {
                println!("password: {password}");
            }
        }
    }
    Ok(())
}

/// Disabling also deletes the agent's sessions; a running server notices within seconds.
/// The last active admin cannot be disabled (the same rule as the API's).
fn set_disabled(db: &mut Direct, email: &str, disabled: bool) -> CliResult {
    let change = AgentChange {
        disabled: Some(disabled),
        ..AgentChange::default()
    };
    db.write(|db| {
        let agent = agents::find_by_email_in(db, email)?;
        agents::change_in(db, &agent.id, &change)
    })?;
    println!("{} {email}", if disabled { "disabled" } else { "enabled" });
    Ok(())
}

fn export(config: &Config, chat_id: &str, format: ExportFormat) -> CliResult {
    let (chat, messages) = Direct::open(config, false)?.read(|db| {
        let chat = store::chats::find(db, chat_id)?;
        Ok((chat, crate::store::messages::all_of_chat(db, chat_id)?))
    })?;
    let chat = chat.ok_or_else(|| format!("no chat {chat_id}"))?;
    match format {
        ExportFormat::Json => {
            let transcript = serde_json::json!({ "chat": chat, "messages": messages });
            println!("{}", serde_json::to_string_pretty(&transcript)?);
        }
        ExportFormat::Text => print!("{}", transcript(&chat, &messages)),
    }
    Ok(())
}

/// A transcript a person can read: one block per message, system events in brackets,
/// private notes marked as such (the export is for the agents).
pub fn transcript(chat: &Chat, messages: &[Message]) -> String {
    use std::fmt::Write;
    let visitor = &chat.visitor;
    let mut out = String::new();
    let _ = writeln!(out, "Chat {} ({})", chat.id, chat.status.as_str());
    let _ = writeln!(
        out,
        "Visitor: {} <{}>, started {}",
        visitor.name.as_deref().unwrap_or("anonymous"),
        visitor.email.as_deref().unwrap_or("no email"),
        chat.created_at
    );
    for m in messages {
        let who = m
            .author
            .as_ref()
            .and_then(|a| a.name.clone())
            .unwrap_or_else(|| m.sender.as_str().to_string());
        if m.sender == Sender::System {
            let _ = writeln!(out, "\n[{}] -- {} --", m.created_at, m.body);
            continue;
        }
        let note = if m.private { ", private note" } else { "" };
        let _ = writeln!(
            out,
            "\n[{}] {} ({}{note}):",
            m.created_at,
            who,
            m.sender.as_str()
        );
        for line in m.body.lines() {
            let _ = writeln!(out, "  {line}");
        }
        if let Some(a) = &m.attachment {
            let _ = writeln!(
                out,
                "  [attachment: {} ({} bytes, {})]",
                a.name, a.size, a.content_type
            );
        }
    }
    out
}

fn visitor(config: &Config, command: VisitorCommand) -> CliResult {
    let mut db = Direct::open(config, false)?;
    let (VisitorCommand::Export { visitor_id } | VisitorCommand::Delete { visitor_id }) = &command;
    let known = db.read(|db| Ok(store::visitors::find(db, visitor_id)?.is_some()))?;
    if !known {
        return Err(format!("no visitor {visitor_id}").into());
    }
    match command {
        VisitorCommand::Export { visitor_id } => {
            let export = db.read(|db| privacy::export_in(db, &visitor_id))?;
            println!("{}", serde_json::to_string_pretty(&export)?);
        }
        VisitorCommand::Delete { visitor_id } => {
            let hooks = Webhooks::always_looking();
            let (_, chats) = db.write(|db| {
                let (revoked, chats) = privacy::erase_in(db, &hooks, &visitor_id)?;
                bus::revoked_in(db, &revoked)?;
                Ok((revoked, chats))
            })?;
            log::info!(
                "audit: visitor {visitor_id} erased with {chats} chats from the command line"
            );
            db.scrub()?;
            println!("erased visitor {visitor_id} and its {chats} chats");
        }
    }
    Ok(())
}

fn stats(config: &Config) -> CliResult {
    let stats = Direct::open(config, false)?.read(|db| Ok(store::stats::collect(db)?))?;
    println!("{}", serde_json::to_string_pretty(&stats)?);
    Ok(())
}
