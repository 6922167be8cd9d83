//! The command line: `parley` serves; subcommands administer the same database.

use clap::{Parser, Subcommand};
use rusqlite::TransactionBehavior;

use crate::config::Config;
use crate::domain::{self, Role};
use crate::model::Agent;
use crate::startup::{random_password, Application};
use crate::{api, auth, store};

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
    }
}

/// `VACUUM INTO` reads one snapshot (WAL readers never block the writer) and writes a
/// compact, self-contained database file.
fn backup(config: &Config, path: &std::path::Path) -> CliResult {
    if path.exists() {
        return Err(format!("{} exists already; choose a new file", path.display()).into());
    }
    let conn = store::open(&config.db)?;
    let target = path.to_str().ok_or("the backup path must be valid UTF-8")?;
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
    let mut conn = store::open(&config.db)?;
    store::migrate(&mut conn)?;
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
            let agent = Agent {
                id: domain::new_id(),
                name: domain::parse_name(&name)?,
                email: domain::parse_email(&email)?,
                role: match role {
                    CliRole::Admin => Role::Admin,
                    CliRole::Agent => Role::Agent,
                },
                disabled: false,
                created_at: domain::now(),
            };
            let hash = auth::hash_password(&password)?;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            api::agents::create(&tx, &agent, &hash)?;
            tx.commit()?;
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
    }
    Ok(())
}
