//! The `ledger` binary: one executable, several subcommands, all configured by `DATABASE_URL`.

mod bench;

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use ledger_core::Currencies;

#[derive(Parser)]
#[command(name = "ledger", about = "Event-sourced double-entry ledger", version)]
struct Cli {
    /// Postgres connection URL.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Apply pending schema migrations.
    Migrate,
    /// Recompute the hash chain and every balance from the log and compare with the stored state.
    Verify,
    /// Drive the writer in-process with generated transfers and report throughput and latency.
    BenchWriter(bench::Args),
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("LEDGER_LOG").unwrap_or_else(|_| "info".into()))
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
    let url = cli
        .database_url
        .context("DATABASE_URL is not set (or pass --database-url)")?;
    match cli.command {
        Cmd::Migrate => {
            ledger_store::migrate(&url).await.context("applying migrations")?;
            eprintln!("migrations applied");
        }
        Cmd::Verify => match ledger_store::verify::verify(&url, Currencies::standard()).await {
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
        Cmd::BenchWriter(args) => {
            ledger_store::migrate(&url).await.context("applying migrations")?;
            bench::run(&url, args).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
