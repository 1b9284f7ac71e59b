//! The payouts domain inside `ledger up`: its two gates (the request gate plans new requests,
//! the ERP gate sends new payouts; each a command the writer decides whole, so gates running in
//! several processes never plan or send twice) and its consumer of the ERP's statuses. Its ERP
//! topic rides on the Kafka publisher (`publisher_domains`). `ledger payouts req-gate` and
//! `oebs-gate` run a gate apart, over the command API.

use std::time::Duration;

use anyhow::Context;
use ledger_core::payouts::Command;
use ledger_store::LedgerHandle;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::domains::{Context as Up, Domain, Running};
use crate::env::{checked_topic, env, topic};
use crate::kafka::KafkaConfig;

/// The `[payouts]` table of the configuration file.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    gates: Option<bool>,
    req_gate_interval_ms: Option<u64>,
    request_limit: Option<u32>,
    oebs_gate_interval_ms: Option<u64>,
    sender_limit: Option<u32>,
    kafka: Option<bool>,
    erp_topic: Option<String>,
    status_topics: Option<Vec<String>>,
    status_dead_letter_topic: Option<String>,
}

/// The gates: whether `ledger up` runs them, how often, and how much at a time.
#[derive(Debug, Clone)]
pub struct Config {
    pub gates: bool,
    pub req_gate_interval: Duration,
    pub request_limit: u32,
    pub oebs_gate_interval: Duration,
    pub sender_limit: u32,
}

/// The domain's topics: the ERP topic it publishes, the status topics it consumes and their
/// dead-letter topic.
#[derive(Debug, Clone)]
pub struct Kafka {
    pub published: streams::payouts::PayoutTopics,
    pub status: Vec<String>,
    pub dead_letters: String,
}

impl Kafka {
    pub fn written_topics(&self) -> Vec<String> {
        vec![self.published.erp.clone(), self.dead_letters.clone()]
    }
}

fn limit(var: &str, file: Option<u32>) -> anyhow::Result<u32> {
    let limit = env(var)?.or(file).unwrap_or(1000);
    let max = ledger_core::payouts::MAX_PER_COMMAND;
    anyhow::ensure!((1..=max).contains(&limit), "{var}={limit}: 1 to {max}");
    Ok(limit)
}

fn interval(var: &str, file: Option<u64>) -> anyhow::Result<Duration> {
    Ok(Duration::from_millis(env(var)?.or(file).unwrap_or(1000u64).max(10)))
}

/// The domain's settings from its table, overridden by `LEDGER_PAYOUT_*`.
pub fn settings(file: File) -> anyhow::Result<(Config, Option<Kafka>)> {
    let config = Config {
        gates: env("LEDGER_PAYOUT_GATES")?.or(file.gates).unwrap_or(true),
        req_gate_interval: interval("LEDGER_PAYOUT_REQ_GATE_INTERVAL_MS", file.req_gate_interval_ms)?,
        request_limit: limit("LEDGER_PAYOUT_REQUEST_LIMIT", file.request_limit)?,
        oebs_gate_interval: interval("LEDGER_PAYOUT_OEBS_GATE_INTERVAL_MS", file.oebs_gate_interval_ms)?,
        sender_limit: limit("LEDGER_PAYOUT_SENDER_LIMIT", file.sender_limit)?,
    };
    if !env::<bool>("LEDGER_PAYOUT_KAFKA")?.or(file.kafka).unwrap_or(true) {
        return Ok((config, None));
    }
    let defaults = streams::payouts::STATUS_TOPICS.map(String::from).to_vec();
    let status = match env::<String>("LEDGER_PAYOUT_STATUS_TOPICS")? {
        Some(list) => list.split(',').map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()).collect(),
        None => file.status_topics.unwrap_or(defaults),
    };
    let status = status
        .into_iter()
        .map(|t| checked_topic("LEDGER_PAYOUT_STATUS_TOPICS", t))
        .collect::<anyhow::Result<Vec<_>>>()?;
    anyhow::ensure!(!status.is_empty(), "LEDGER_PAYOUT_STATUS_TOPICS names no topic");
    let kafka = Kafka {
        published: streams::payouts::PayoutTopics {
            erp: topic("LEDGER_PAYOUT_ERP_TOPIC", file.erp_topic, streams::payouts::ERP_TOPIC.into())?,
        },
        status,
        dead_letters: topic(
            "LEDGER_PAYOUT_STATUS_DEAD_LETTER_TOPIC",
            file.status_dead_letter_topic,
            "billing-payout.oebs.payout-status.dlq".into(),
        )?,
    };
    Ok((config, Some(kafka)))
}

/// The domain as `ledger up` runs it.
#[derive(Debug)]
pub struct Payouts {
    config: Config,
    kafka: Option<Kafka>,
}

/// Reads the `[payouts]` table and the domain's variables.
pub fn load(table: Option<toml::Value>) -> anyhow::Result<Box<dyn Domain>> {
    let (config, kafka) = settings(crate::domains::table("payouts", table)?)?;
    Ok(Box::new(Payouts { config, kafka }))
}

/// The gates' settings, for `ledger payouts req-gate` and `oebs-gate`.
pub fn gate_settings(table: Option<toml::Value>) -> anyhow::Result<Config> {
    Ok(settings(crate::domains::table("payouts", table)?)?.0)
}

impl Domain for Payouts {
    fn written_topics(&self) -> Vec<String> {
        self.kafka.iter().flat_map(Kafka::written_topics).collect()
    }

    /// Its status topics.
    fn consumed_topics(&self) -> Vec<String> {
        self.kafka.iter().flat_map(|k| k.status.clone()).collect()
    }

    /// Its ERP topic.
    fn publisher_topics(&self) -> Vec<Box<dyn streams::publisher::DomainTopics>> {
        self.kafka.iter().map(|p| Box::new(p.published.clone()) as Box<dyn streams::publisher::DomainTopics>).collect()
    }

    /// The two gates and the status consumer.
    fn start(&self, cx: &Up<'_>, _api: &mut command_api::ApiState) -> anyhow::Result<Running> {
        let kafka = cx.kafka.and_then(|k| self.kafka.as_ref().map(|topics| (k, topics)));
        Ok(start(cx.ledger, cx.pool, &self.config, kafka, cx.stopped))
    }
}

fn start(
    ledger: &LedgerHandle,
    pool: &sqlx::PgPool,
    settings: &Config,
    kafka: Option<(&KafkaConfig, &Kafka)>,
    stopped: &watch::Receiver<bool>,
) -> Running {
    let mut tasks = Vec::new();
    if settings.gates {
        let (requests, payouts) = (settings.request_limit, settings.sender_limit);
        let plan = move || Command::PlanNew { limit: requests };
        let send = move || Command::SendNew { limit: payouts };
        tasks.push(tokio::spawn(gate(ledger.clone(), "req-gate", plan, settings.req_gate_interval, stopped.clone())));
        tasks.push(tokio::spawn(gate(ledger.clone(), "oebs-gate", send, settings.oebs_gate_interval, stopped.clone())));
    } else {
        info!("payout gates off (LEDGER_PAYOUT_GATES=false): run `ledger payouts req-gate` and `oebs-gate`");
    }
    if let Some((kafka, topics)) = kafka {
        let status: Vec<&str> = topics.status.iter().map(String::as_str).collect();
        let config = streams::consumer::ConsumerConfig {
            // A payout's statuses share its id as their key: each message is its own.
            identity: streams::consumer::Identity::Position,
            ..kafka.consumer("ledger-payout-statuses", &status, &topics.dead_letters)
        };
        info!(topics = ?config.topics, dead_letters = config.dead_letter_topic, "consuming payout statuses");
        let handler = streams::payouts::Statuses::new(ledger.clone());
        let (pool, stopped) = (pool.clone(), stopped.clone());
        tasks.push(tokio::spawn(async move {
            if let Err(e) = streams::consumer::run(pool, config, handler, stopped).await {
                tracing::error!(error = %e, "the payout status consumer stopped");
            }
        }));
    }
    Running { tasks, aborted: Vec::new() }
}

/// Runs a gate's command every `interval`, and again at once while it finds work (a backlog
/// drains at the writer's pace, not one batch per interval).
async fn gate(
    ledger: LedgerHandle,
    name: &'static str,
    command: impl Fn() -> Command,
    interval: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    while !*stopped.borrow() {
        let meta = ledger_store::EventMeta {
            channel: Some(name.into()),
            source: Some(ledger_store::Source::Job { name: name.into() }),
            ..Default::default()
        };
        let busy = match ledger.submit(command(), meta).await {
            Ok(Ok(c)) => !c.replayed,
            Ok(Err(r)) => {
                warn!(gate = name, code = r.code(), "payout gate refused");
                false
            }
            Err(e) => {
                warn!(gate = name, error = %e, "payout gate not run; retried next interval");
                false
            }
        };
        if !busy {
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                _ = stopped.wait_for(|s| *s) => return,
            }
        }
    }
}

/// `ledger payouts req-gate` / `oebs-gate`: one gate, apart from `ledger up`, driving it over
/// the command API with a `payouts:gate` key. Any number may run: the writer decides each run.
#[derive(clap::Args)]
pub struct GateArgs {
    /// Base URL of the command API.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// An API key with payouts:gate (also LEDGER_KEY).
    #[arg(long, env = "LEDGER_KEY", hide_env_values = true)]
    key: String,
    /// Stop after this many runs that found nothing to do (default: never).
    #[arg(long)]
    idle_runs: Option<u32>,
}

pub async fn run_gate(gate: &str, args: GateArgs, settings: &Config) -> anyhow::Result<()> {
    let (path, limit, interval) = match gate {
        "plan" => ("/v1/payouts/gates/plan", settings.request_limit, settings.req_gate_interval),
        _ => ("/v1/payouts/gates/send", settings.sender_limit, settings.oebs_gate_interval),
    };
    let authority = args.url.trim_start_matches("http://").trim_end_matches('/').to_owned();
    let mut client = crate::http_client::Client::connect(&authority, &args.key).await?;
    let mut idle = 0;
    let stop = tokio::signal::ctrl_c();
    tokio::pin!(stop);
    loop {
        let (status, body) = client.post(path, format!(r#"{{"limit":{limit}}}"#)).await?;
        let body: serde_json::Value = serde_json::from_slice(&body).context("the gate's answer is not JSON")?;
        anyhow::ensure!(status == 200, "{path} answered {status}: {body}");
        if body["changed"] == true {
            info!(gate, position = %body["position"], "gate ran");
            continue;
        }
        idle += 1;
        if args.idle_runs.is_some_and(|n| idle >= n) {
            return Ok(());
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = &mut stop => return Ok(()),
        }
    }
}
