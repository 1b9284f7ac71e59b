//! The `ledger` binary: one executable, several subcommands, configured by `DATABASE_URL`,
//! `LEDGER_…` variables and an optional TOML file.

mod audit;
mod bench;
mod bench_http;
mod bench_publisher;
mod certificates;
mod config;
mod domains;
mod env;
mod http_client;
mod kafka;
mod load;
mod order_reads;
mod orders;
mod payouts;
mod provider;
mod provider_simulator;
mod psp_simulator;
mod recon;
mod runtime;
mod sms_simulator;
mod up;
mod wallet;
mod webhook_receiver;
mod webhooks;

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
    /// Manage roles: named sets of permissions that keys hold.
    #[command(subcommand)]
    Roles(RolesCmd),
    /// Read-model projections: status, rebuild, or run them without the HTTP API.
    #[command(subcommand)]
    Projections(ProjectionsCmd),
    /// Print the OpenAPI document of the command API.
    Openapi,
    /// Print the GraphQL SDL of the query API.
    Sdl,
    /// The published JSON Schemas of events: write them, or check messages against them.
    #[command(subcommand)]
    Schemas(SchemasCmd),
    /// Drive the writer in-process with generated transfers and report throughput and latency.
    BenchWriter(bench::Args),
    /// Send generated transfers over HTTP to a running `ledger up` and report throughput and latency.
    BenchHttp(bench_http::Args),
    /// Publish the first events of the log to Kafka and compare with producing the same messages raw.
    BenchPublisher(bench_publisher::Args),
    /// A stand-in SMS gateway on loopback: receives certificate CVC messages, lists them.
    SmsSimulator(sms_simulator::Args),
    /// A stand-in webhook receiver on loopback: verifies and counts messages.
    WebhookReceiver(webhook_receiver::Args),
    /// A stand-in payment provider for the gaming wallet on loopback: the deposit page, payouts,
    /// signed webhooks on command (succeed, fail, duplicate, late).
    WalletPspSimulator(psp_simulator::Args),
    /// Stand-in payment providers for reconciliation on loopback: balance, statement and
    /// movements per provider, with control calls (lines, refuse, fail, timeout, drift).
    ProviderSimulator(provider_simulator::Args),
    /// Runtime settings: list and get read the database; set and reset go through the command API.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Payout gates run apart from `ledger up` (with LEDGER_PAYOUT_GATES=false there, or beside it).
    #[command(subcommand)]
    Payouts(PayoutsCmd),
    /// What `ledger up` does with Kafka under these settings.
    #[command(subcommand)]
    Kafka(KafkaCmd),
}

#[derive(Subcommand)]
enum KafkaCmd {
    /// Every topic `ledger up` uses, the ledger's and every domain's, one a line: `written NAME`
    /// (must exist before it starts, or be creatable) or `consumed NAME`. Nothing when Kafka is off.
    Topics,
}

#[derive(Subcommand)]
enum ConfigCmd {
    /// Every setting with the value in effect and where it comes from (database, file, default).
    List,
    /// One setting's value in effect.
    Get {
        #[arg(value_name = "KEY")]
        setting: String,
    },
    /// Sets a setting (VALUE is JSON) through a running command API; audited under its key.
    Set {
        #[arg(value_name = "KEY")]
        setting: String,
        value: String,
        #[command(flatten)]
        remote: runtime::Remote,
    },
    /// Takes a setting's value back (the file's default, else the declared one applies).
    Reset {
        #[arg(value_name = "KEY")]
        setting: String,
        #[command(flatten)]
        remote: runtime::Remote,
    },
}

#[derive(Subcommand)]
enum PayoutsCmd {
    /// The request gate: plans new payout requests into payouts, through the command API.
    ReqGate(payouts::GateArgs),
    /// The ERP gate: sends new payouts (funds checked and moved to payout_sent), through the command API.
    OebsGate(payouts::GateArgs),
}

#[derive(Subcommand)]
enum KeysCmd {
    /// Create a key; the key alone is printed on the last line.
    Create {
        #[arg(long)]
        channel: String,
        /// The key's own permissions, comma-separated: `resource:action[:scope]` with `*` for a
        /// whole segment (`accounts:write`, `*:read`, `payouts:request:client-7`, `*` for
        /// everything; the old `read` is `*:read`).
        #[arg(long, value_delimiter = ',')]
        scopes: Vec<String>,
        /// Roles the key holds, comma-separated (`ledger roles set` first): `support`, or
        /// `merchant:store-17` to bind the role's `{scope}` permissions to that owner.
        #[arg(long, value_delimiter = ',')]
        roles: Vec<String>,
    },
    /// Revoke a key by its id (running servers stop accepting it within a second).
    Revoke { id: uuid::Uuid },
}

#[derive(Subcommand)]
enum RolesCmd {
    /// Create or replace a role; its keys have the new permissions within a second.
    Set {
        name: String,
        /// Comma-separated permissions, as `keys create --scopes` takes them, or with `{scope}`
        /// as the whole scope: the owner a key's grant binds the role to (`orders:create:{scope}`).
        #[arg(long, value_delimiter = ',')]
        permissions: Vec<String>,
    },
    /// List the roles and their permissions.
    List,
}

#[derive(Subcommand)]
enum SchemasCmd {
    /// Write every event schema (all versions) and the envelope schema into DIR.
    Write {
        #[arg(default_value = "schemas/events")]
        dir: std::path::PathBuf,
    },
    /// Validate published messages (envelopes as the Kafka topics carry them) against their
    /// schemas: FILE holds one JSON value or one per line (`-` reads standard input).
    Check { file: String },
}

#[derive(Subcommand)]
enum ProjectionsCmd {
    /// Version, checkpoint, lag and halt of every projection.
    Status,
    /// Rebuild one projection from position 0 while the old version keeps serving.
    Rebuild { name: String },
    /// Run the named projections (none: every one) until Ctrl-C or SIGTERM (`ledger up` also
    /// runs them); several processes may each run some.
    Run { names: Vec<String> },
}

/// Asks the running engine to audit an action of the command line (it cannot reach the writer
/// of a running `ledger up`): recorded within a second by `ledger up`, or at its next start.
async fn audit_cli(
    pool: &sqlx::PgPool,
    action: &str,
    level: ledger_core::audit::Level,
    subject: String,
    after: serde_json::Value,
) -> anyhow::Result<()> {
    let entry = ledger_core::audit::Entry {
        id: uuid::Uuid::new_v4(),
        level,
        action: action.into(),
        subject,
        before: None,
        after: Some(after),
        reason: None,
    };
    let meta = ledger_store::EventMeta { channel: Some("cli".into()), ..ledger_store::EventMeta::default() };
    let mut conn = pool.acquire().await.context("connecting to the database")?;
    ledger_store::audit::request(&mut conn, &entry, &meta).await.context("recording the audit request")
}

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LEDGER_LOG").unwrap_or_else(|_| "info,sqlx=error".into()),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(async {
        match run(Cli::parse()).await {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        }
    });
    // Blocking work still running once everything stopped (a DNS lookup waiting on a resolver
    // that does not answer, started by an outbound call that already timed out) does not hold
    // the process: it exits after at most this long.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    code
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let settings = config::Settings::load(cli.config.as_deref())?;
    match cli.command {
        Cmd::Openapi => {
            print!("{}", command_api::openapi::json());
            return Ok(ExitCode::SUCCESS);
        }
        Cmd::Sdl => {
            print!("{}", query_api::sdl());
            return Ok(ExitCode::SUCCESS);
        }
        Cmd::BenchHttp(args) => {
            // One thread drives every connection (as pgbench's threads each drive many
            // clients): no hand-offs between worker threads, so the load generator takes as
            // little of the machine from the engine as it can.
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            std::thread::spawn(move || runtime.block_on(bench_http::run(args)))
                .join()
                .map_err(|_| anyhow::anyhow!("the load generator panicked"))??;
            return Ok(ExitCode::SUCCESS);
        }
        Cmd::Schemas(SchemasCmd::Write { dir }) => {
            let n = streams::schemas::write(&dir).with_context(|| format!("writing {}", dir.display()))?;
            eprintln!("{n} schemas written to {}", dir.display());
            return Ok(ExitCode::SUCCESS);
        }
        Cmd::Schemas(SchemasCmd::Check { file }) => return schemas_check(&file),
        Cmd::SmsSimulator(args) => {
            sms_simulator::run(args).await?;
            return Ok(ExitCode::SUCCESS);
        }
        Cmd::WebhookReceiver(args) => {
            webhook_receiver::run(args).await?;
            return Ok(ExitCode::SUCCESS);
        }
        Cmd::WalletPspSimulator(args) => {
            psp_simulator::run(args).await?;
            return Ok(ExitCode::SUCCESS);
        }
        Cmd::ProviderSimulator(args) => {
            provider_simulator::run(args).await?;
            return Ok(ExitCode::SUCCESS);
        }
        Cmd::Payouts(PayoutsCmd::ReqGate(args)) => {
            payouts::run_gate("plan", args, &payouts::gate_settings(settings.tables.get("payouts").cloned())?).await?;
            return Ok(ExitCode::SUCCESS);
        }
        Cmd::Payouts(PayoutsCmd::OebsGate(args)) => {
            payouts::run_gate("send", args, &payouts::gate_settings(settings.tables.get("payouts").cloned())?).await?;
            return Ok(ExitCode::SUCCESS);
        }
        Cmd::Kafka(KafkaCmd::Topics) => {
            let used = kafka::UsedTopics::of(settings.kafka.as_ref(), &settings.domains);
            if settings.kafka.is_none() {
                eprintln!("Kafka is off (KAFKA_BROKERS is not set): ledger up uses no topic");
            }
            for (role, names) in [("written", &used.written), ("consumed", &used.consumed)] {
                names.iter().for_each(|name| println!("{role} {name}"));
            }
            return Ok(ExitCode::SUCCESS);
        }
        Cmd::Config(ConfigCmd::Set { setting, value, remote }) => {
            runtime::change(remote, &setting, Some(&value)).await?;
            return Ok(ExitCode::SUCCESS);
        }
        Cmd::Config(ConfigCmd::Reset { setting, remote }) => {
            runtime::change(remote, &setting, None).await?;
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
                "ok: {} events, {} accounts, {} transfers, {} other entities; head hash {}",
                report.events,
                report.accounts,
                report.transfers,
                report.entities,
                hex::encode(report.head_hash)
            ),
            Err(e) => {
                eprintln!("verify failed: {e}");
                return Ok(ExitCode::FAILURE);
            }
        },
        Cmd::Keys(KeysCmd::Create { channel, scopes, roles }) => {
            let pool = sqlx::PgPool::connect(&url).await.context("connecting to the database")?;
            let (id, key) = ledger_store::keys::create_key_with_roles(&pool, &channel, &roles, &scopes).await?;
            let after = serde_json::json!({"channel": channel, "roles": roles, "permissions": scopes});
            audit_cli(&pool, "keys.create", ledger_core::audit::Level::Info, id.to_string(), after).await?;
            println!(
                "key {id} for channel {channel} with permissions {} and roles {}",
                scopes.join(","),
                roles.join(",")
            );
            println!("{key}");
        }
        Cmd::Roles(RolesCmd::Set { name, permissions }) => {
            let pool = sqlx::PgPool::connect(&url).await.context("connecting to the database")?;
            let created = ledger_store::roles::set_role(&pool, &name, &permissions).await?;
            let after = serde_json::json!({"permissions": permissions});
            audit_cli(&pool, "roles.set", ledger_core::audit::Level::Info, name.clone(), after).await?;
            println!(
                "role {name} {} with permissions {}",
                if created { "created" } else { "replaced" },
                permissions.join(",")
            );
        }
        Cmd::Roles(RolesCmd::List) => {
            let pool = sqlx::PgPool::connect(&url).await.context("connecting to the database")?;
            for role in ledger_store::roles::list_roles(&pool).await? {
                println!("{}\t{}", role.name, role.permissions.join(","));
            }
        }
        Cmd::Keys(KeysCmd::Revoke { id }) => {
            let pool = sqlx::PgPool::connect(&url).await.context("connecting to the database")?;
            if !ledger_store::keys::revoke_key(&pool, id).await? {
                eprintln!("no active key {id}");
                return Ok(ExitCode::FAILURE);
            }
            let after = serde_json::json!({"revoked": true});
            audit_cli(&pool, "keys.revoke", ledger_core::audit::Level::Warning, id.to_string(), after).await?;
            println!("key {id} revoked");
        }
        Cmd::Projections(cmd) => {
            return projections_cmd(&url, settings.read_database_url.as_deref(), settings.projection_runners, cmd)
                .await;
        }
        Cmd::BenchWriter(args) => {
            ledger_store::migrate(&url).await.context("applying migrations")?;
            bench::run(&url, args, settings.writer.clone()).await?;
        }
        Cmd::BenchPublisher(args) => bench_publisher::run(&url, args).await?,
        Cmd::Config(ConfigCmd::List) => runtime::show(&url, settings.runtime, None).await?,
        Cmd::Config(ConfigCmd::Get { setting }) => runtime::show(&url, settings.runtime, Some(&setting)).await?,
        Cmd::Openapi
        | Cmd::Sdl
        | Cmd::BenchHttp(_)
        | Cmd::Schemas(_)
        | Cmd::SmsSimulator(_)
        | Cmd::WebhookReceiver(_)
        | Cmd::WalletPspSimulator(_)
        | Cmd::ProviderSimulator(_)
        | Cmd::Payouts(_)
        | Cmd::Kafka(_)
        | Cmd::Config(ConfigCmd::Set { .. } | ConfigCmd::Reset { .. }) => {
            unreachable!("handled above")
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn schemas_check(file: &str) -> anyhow::Result<ExitCode> {
    let text = if file == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading standard input")?
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?
    };
    let mut failed = 0;
    let mut checked = 0;
    for (n, value) in serde_json::Deserializer::from_str(&text).into_iter::<serde_json::Value>().enumerate() {
        checked += 1;
        let label = format!("message {}", n + 1);
        let value = match value {
            Ok(v) => v,
            Err(e) => {
                println!("{label}: not JSON: {e}");
                failed += 1;
                break;
            }
        };
        match streams::schemas::check(&value) {
            Ok(()) => println!("{label}: ok ({} v{})", value["type"].as_str().unwrap_or("?"), value["schema_version"]),
            Err(errors) => {
                failed += 1;
                for e in errors {
                    println!("{label}: {e}");
                }
            }
        }
    }
    if checked == 0 {
        println!("no messages in {file}");
        return Ok(ExitCode::FAILURE);
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn model(name: &str) -> anyhow::Result<projections::Model> {
    projections::Model::parse(name).with_context(|| {
        let names: Vec<&str> = projections::Model::EVERY.iter().map(|m| m.name()).collect();
        format!("unknown projection {name:?}; projections are {}", names.join(", "))
    })
}

async fn projections_cmd(
    url: &str,
    read_url: Option<&str>,
    runners: usize,
    cmd: ProjectionsCmd,
) -> anyhow::Result<ExitCode> {
    ledger_store::migrate(url).await.context("applying migrations")?;
    match cmd {
        ProjectionsCmd::Status => {
            let mut conn =
                <sqlx::PgConnection as sqlx::Connection>::connect(url).await.context("connecting to the database")?;
            let rows = match read_url {
                Some(read_url) => {
                    let mut read = <sqlx::PgConnection as sqlx::Connection>::connect(read_url)
                        .await
                        .context("connecting to the read models' database")?;
                    projections::prepare_read_database(&mut read).await?;
                    projections::status_with(&mut conn, Some(&mut read)).await?
                }
                None => projections::status(&mut conn).await?,
            };
            println!("{:<16} {:>7} {:>12} {:>12} {:>10}  halted", "projection", "version", "checkpoint", "head", "lag");
            for r in &rows {
                let halted = match (&r.halted_position, &r.halted_error) {
                    (Some(p), Some(e)) => format!("at position {p}: {e}"),
                    _ => "-".to_owned(),
                };
                println!("{:<16} {:>7} {:>12} {:>12} {:>10}  {halted}", r.name, r.version, r.checkpoint, r.head, r.lag);
            }
            if rows.iter().any(|r| r.halted_position.is_some()) {
                return Ok(ExitCode::FAILURE);
            }
        }
        ProjectionsCmd::Rebuild { name } => {
            let model = model(&name)?;
            projections::rebuild_in(url, read_url, model, &mut std::io::stderr()).await?;
        }
        ProjectionsCmd::Run { names } => {
            let models = if names.is_empty() {
                projections::Model::EVERY.to_vec()
            } else {
                names.iter().map(|n| model(n)).collect::<anyhow::Result<Vec<_>>>()?
            };
            let (stop, tasks) = up::spawn_projections(url, read_url, &models, runners, None, None);
            up::shutdown_signal().await;
            let _ = stop.send(true);
            for task in tasks {
                let _ = task.await;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
