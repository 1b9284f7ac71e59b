//! The `ledger` binary: one executable, several subcommands, configured by `DATABASE_URL`,
//! `LEDGER_…` variables and an optional TOML file.

mod bench;
mod bench_http;
mod config;
mod load;
mod up;

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "ledger", about = "Event-sourced double-entry ledger", version)]
struct Cli {
    /// A TOML settings file (also LEDGER_CONFIG).
    #[arg(long, global = true)]
    config: Option<String>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Apply pending migrations, then serve the command API on LEDGER_LISTEN.
    Up,
    /// Apply pending schema migrations.
    Migrate,
    /// Recompute the hash chain and every balance from the log and compare with the stored state.
    Verify,
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCmd),
    /// Print the OpenAPI document of the command API.
    Openapi,
    /// Drive the writer in-process with generated transfers and report throughput and latency.
    BenchWriter(bench::Args),
    /// Send generated transfers over HTTP to a running `ledger up` and report throughput and latency.
    BenchHttp(bench_http::Args),
}

#[derive(Subcommand)]
enum KeysCmd {
    /// Create a key; the key alone is printed on the last line.
    Create {
        #[arg(long)]
        channel: String,
        /// Comma-separated: accounts:write, transfers:write, read.
        #[arg(long, value_delimiter = ',')]
        scopes: Vec<String>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LEDGER_LOG").unwrap_or_else(|_| "info,sqlx=error".into()),
        )
        .init();
    match run(Cli::parse()).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let settings = config::Settings::load(cli.config.as_deref())?;
    match cli.command {
        Cmd::Openapi => {
            print!("{}", command_api::openapi::json());
            return Ok(ExitCode::SUCCESS);
        }
        Cmd::BenchHttp(args) => {
            bench_http::run(args).await?;
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    let url =
        settings.database_url.clone().context("DATABASE_URL is not set (scripts/run starts a private Postgres)")?;
    match cli.command {
        Cmd::Up => up::run(&url, settings).await?,
        Cmd::Migrate => {
            ledger_store::migrate(&url).await.context("applying migrations")?;
            eprintln!("migrations applied");
        }
        Cmd::Verify => match ledger_store::verify::verify(&url, settings.writer.currencies.clone()).await {
            Ok(report) => println!(
                "ok: {} events, {} accounts, {} transfers; head hash {}",
                report.events,
                report.accounts,
                report.transfers,
                hex::encode(report.head_hash)
            ),
            Err(e) => {
                eprintln!("verify failed: {e}");
                return Ok(ExitCode::FAILURE);
            }
        },
        Cmd::Keys(KeysCmd::Create { channel, scopes }) => {
            let pool = sqlx::PgPool::connect(&url).await.context("connecting to the database")?;
            let (id, key) = command_api::auth::create_key(&pool, &channel, &scopes).await?;
            println!("key {id} for channel {channel} with scopes {}", scopes.join(","));
            println!("{key}");
        }
        Cmd::BenchWriter(args) => {
            ledger_store::migrate(&url).await.context("applying migrations")?;
            bench::run(&url, args).await?;
        }
        Cmd::Openapi | Cmd::BenchHttp(_) => unreachable!("handled above"),
    }
    Ok(ExitCode::SUCCESS)
}
