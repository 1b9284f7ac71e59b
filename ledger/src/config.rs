//! Settings: defaults, then an optional TOML file (`--config` or `LEDGER_CONFIG`), then
//! `LEDGER_…` environment variables (and `DATABASE_URL`), each overriding the one before.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use ledger_core::{Currencies, CurrencyCode};
use ledger_store::{Standby, WriterConfig};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    listen: Option<String>,
    database_url: Option<String>,
    read_database_url: Option<String>,
    max_group: Option<usize>,
    queue_capacity: Option<usize>,
    transfer_cache: Option<usize>,
    commit_pipeline: Option<usize>,
    expiry_interval_ms: Option<u64>,
    standby: Option<bool>,
    db_pool_size: Option<u32>,
    projections: Option<bool>,
    max_projection_lag: Option<i64>,
    max_projection_delay_ms: Option<u64>,
    projection_runners: Option<usize>,
    /// Extra assets and their scales, e.g. `{ USDC = 6, GOLD = 3 }`.
    assets: Option<BTreeMap<String, u32>>,
    kafka: Option<KafkaFile>,
    /// Each domain's own table.
    certificates: Option<crate::certificates::File>,
    payouts: Option<crate::payouts::File>,
}

/// The `[kafka]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct KafkaFile {
    brokers: Option<String>,
    topic_prefix: Option<String>,
    /// Topic name (after the prefix) → event types, `["*"]` for all.
    topics: Option<BTreeMap<String, Vec<String>>>,
    message_timeout_ms: Option<u64>,
    transfer_requests_topic: Option<String>,
    create_topics: Option<bool>,
    topic_partitions: Option<i32>,
    topic_replication: Option<i32>,
}

/// Kafka, when brokers are configured.
#[derive(Debug)]
pub struct KafkaConfig {
    pub producer: streams::KafkaSettings,
    pub topics: streams::Topics,
    /// Inbound transfer requests (the framework's test consumer), off when unset.
    pub transfer_requests_topic: Option<String>,
    /// What `ledger up` does about topics the broker lacks.
    pub topic_policy: streams::admin::TopicPolicy,
    /// The certificates domain's topics, unless `certificates.kafka` is off
    /// (`LEDGER_CERTIFICATES_KAFKA=false`).
    pub certificates: Option<crate::certificates::Kafka>,
    /// The payouts domain's topics, unless `payouts.kafka` is off (`LEDGER_PAYOUT_KAFKA=false`).
    pub payouts: Option<crate::payouts::Kafka>,
}

impl KafkaConfig {
    /// Every topic `ledger up` writes to: the published ones, and the inbound consumer's
    /// dead-letter topic (its input topic is another system's to create).
    pub fn written_topics(&self) -> Vec<String> {
        let mut names: Vec<String> = self.topics.names().into_iter().map(str::to_owned).collect();
        names.extend(self.transfer_requests_topic.as_ref().map(|t| format!("{t}.dlq")));
        names.extend(self.certificates.iter().flat_map(crate::certificates::Kafka::written_topics));
        names.extend(self.payouts.iter().flat_map(crate::payouts::Kafka::written_topics));
        names
    }
}

#[derive(Debug)]
pub struct Settings {
    pub listen: String,
    pub database_url: Option<String>,
    /// The read models' own database (`None`: the log's): the projections apply there, GraphQL
    /// reads there.
    pub read_database_url: Option<String>,
    pub db_pool_size: u32,
    /// Run the projections inside `ledger up` (off: run `ledger projections run` elsewhere).
    pub projections: bool,
    /// Backpressure: how many events the writer may run ahead of the slowest in-process
    /// projection (0: no limit).
    pub max_projection_lag: i64,
    /// Backpressure in time: the writer runs no further ahead than the slowest in-process
    /// projection applies in this long at its measured pace (zero: the event bound alone).
    pub max_projection_delay: Duration,
    /// How many runners share the read models (each applies its share of them on a connection
    /// of its own, so the read side is not one transaction at a time).
    pub projection_runners: usize,
    pub writer: WriterConfig,
    /// Off unless KAFKA_BROKERS (or `kafka.brokers`) is set.
    pub kafka: Option<KafkaConfig>,
    pub certificates: crate::certificates::Config,
    pub payouts: crate::payouts::Config,
}

pub(crate) fn env<T: std::str::FromStr>(name: &str) -> anyhow::Result<Option<T>>
where
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(v) => v.parse().map(Some).map_err(|e| anyhow::anyhow!("{name}={v:?}: {e}")),
        Err(_) => Ok(None),
    }
}

/// A topic name from its variable, the file, or its default; checked.
pub(crate) fn topic(var: &str, file: Option<String>, default: String) -> anyhow::Result<String> {
    checked_topic(var, env::<String>(var)?.or(file).unwrap_or(default))
}

/// A topic name, checked (`var` names where it came from).
pub(crate) fn checked_topic(var: &str, topic: String) -> anyhow::Result<String> {
    let valid =
        (1..=200).contains(&topic.len()) && topic.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    anyhow::ensure!(valid, "{var}={topic:?}: a topic name is 1 to 200 of a-z A-Z 0-9 . _ -");
    Ok(topic)
}

impl Settings {
    pub fn load(path: Option<&str>) -> anyhow::Result<Settings> {
        let file: File = match path.map(str::to_owned).or_else(|| std::env::var("LEDGER_CONFIG").ok()) {
            Some(path) => {
                let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
                toml::from_str(&text).with_context(|| format!("parsing {path}"))?
            }
            None => File::default(),
        };
        let defaults = WriterConfig::default();
        let mut currencies = Currencies::standard();
        let mut assets = file.assets.unwrap_or_default();
        if let Some(list) = env::<String>("LEDGER_ASSETS")? {
            for item in list.split(',').filter(|s| !s.trim().is_empty()) {
                let (code, scale) = item.split_once(':').context("LEDGER_ASSETS is CODE:SCALE,CODE:SCALE")?;
                assets.insert(code.trim().to_owned(), scale.trim().parse().context("an asset scale is a number")?);
            }
        }
        for (code, scale) in assets {
            let code = CurrencyCode::parse(&code)
                .map_err(|_| anyhow::anyhow!("asset code {code:?} is not A-Z0-9, 3 to 12 long"))?;
            currencies =
                currencies.with_asset(code, scale).map_err(|_| anyhow::anyhow!("asset scale {scale} exceeds 18"))?;
        }
        let kafka_file = file.kafka.unwrap_or_default();
        let kafka = match env::<String>("KAFKA_BROKERS")?.or(kafka_file.brokers).filter(|b| !b.trim().is_empty()) {
            None => None,
            Some(brokers) => {
                let prefix = env("LEDGER_KAFKA_TOPIC_PREFIX")?
                    .or(kafka_file.topic_prefix)
                    .unwrap_or_else(|| "ledger".to_owned());
                let routes = kafka_file.topics.unwrap_or_else(streams::topics::default_routes);
                let topics = streams::Topics::new(&prefix, &routes).context("kafka.topics")?;
                let timeout_ms =
                    env("LEDGER_KAFKA_MESSAGE_TIMEOUT_MS")?.or(kafka_file.message_timeout_ms).unwrap_or(30_000);
                let policy = streams::admin::TopicPolicy::default();
                let topic_policy = streams::admin::TopicPolicy {
                    create: env("LEDGER_KAFKA_CREATE_TOPICS")?.or(kafka_file.create_topics).unwrap_or(policy.create),
                    partitions: env("LEDGER_KAFKA_TOPIC_PARTITIONS")?
                        .or(kafka_file.topic_partitions)
                        .unwrap_or(policy.partitions),
                    replication: env("LEDGER_KAFKA_TOPIC_REPLICATION")?
                        .or(kafka_file.topic_replication)
                        .unwrap_or(policy.replication),
                    ..policy
                };
                anyhow::ensure!(
                    topic_policy.partitions >= 1 && topic_policy.replication >= 1,
                    "kafka.topic_partitions and kafka.topic_replication must be 1 or more"
                );
                Some(KafkaConfig {
                    producer: streams::KafkaSettings { brokers, message_timeout: Duration::from_millis(timeout_ms) },
                    topics,
                    transfer_requests_topic: env("LEDGER_KAFKA_TRANSFER_REQUESTS_TOPIC")?
                        .or(kafka_file.transfer_requests_topic),
                    topic_policy,
                    certificates: None,
                    payouts: None,
                })
            }
        };
        // Each domain reads its own table and variables.
        let (certificates, certificates_kafka) = crate::certificates::settings(file.certificates.unwrap_or_default())?;
        let (payouts, payouts_kafka) = crate::payouts::settings(file.payouts.unwrap_or_default())?;
        let mut kafka = kafka;
        if let Some(k) = kafka.as_mut() {
            k.certificates = certificates_kafka;
            k.payouts = payouts_kafka;
        }
        let standby = env::<bool>("LEDGER_STANDBY")?.or(file.standby).unwrap_or(false);
        let expiry_ms = env("LEDGER_EXPIRY_INTERVAL_MS")?.or(file.expiry_interval_ms).unwrap_or(1000);
        Ok(Settings {
            listen: env("LEDGER_LISTEN")?.or(file.listen).unwrap_or_else(|| "127.0.0.1:8080".to_owned()),
            database_url: env("DATABASE_URL")?.or(file.database_url),
            read_database_url: env("LEDGER_READ_DATABASE_URL")?.or(file.read_database_url),
            db_pool_size: env("LEDGER_DB_POOL_SIZE")?.or(file.db_pool_size).unwrap_or(16),
            projections: env("LEDGER_PROJECTIONS")?.or(file.projections).unwrap_or(true),
            kafka,
            certificates,
            payouts,
            max_projection_lag: env("LEDGER_MAX_PROJECTION_LAG")?.or(file.max_projection_lag).unwrap_or(20_000),
            max_projection_delay: Duration::from_millis(
                env("LEDGER_MAX_PROJECTION_DELAY_MS")?.or(file.max_projection_delay_ms).unwrap_or(500),
            ),
            projection_runners: env("LEDGER_PROJECTION_RUNNERS")?.or(file.projection_runners).unwrap_or(2).max(1),
            writer: WriterConfig {
                currencies,
                max_group: env("LEDGER_MAX_GROUP")?.or(file.max_group).unwrap_or(defaults.max_group),
                queue_capacity: env("LEDGER_QUEUE_CAPACITY")?
                    .or(file.queue_capacity)
                    .unwrap_or(defaults.queue_capacity),
                transfer_cache: env("LEDGER_TRANSFER_CACHE")?
                    .or(file.transfer_cache)
                    .unwrap_or(defaults.transfer_cache),
                pipeline_depth: env("LEDGER_COMMIT_PIPELINE")?
                    .or(file.commit_pipeline)
                    .unwrap_or(defaults.pipeline_depth),
                standby: if standby { Standby::Wait } else { Standby::Refuse },
                expiry_interval: Duration::from_millis(expiry_ms.max(10)),
                ..defaults
            },
        })
    }
}
