//! Kafka's settings (the `[kafka]` table, `KAFKA_BROKERS` and `LEDGER_KAFKA_…`): the brokers,
//! the published topics, what `ledger up` does about missing topics, and the consumers' shared
//! configuration. Domains add their own topics (`domains::Domain`).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

use crate::env::env;

/// The `[kafka]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaFile {
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
    /// What every consumer of the process reports about its topics (`/healthz`, `/metrics`).
    pub health: streams::health::ConsumerHealth,
}

impl KafkaConfig {
    /// A consumer of `topics` in group `name`: it creates its missing topics as the published
    /// ones are (the same partitions and replication), and reports them in `health`.
    pub fn consumer(&self, name: &str, topics: &[&str], dead_letters: &str) -> streams::consumer::ConsumerConfig {
        streams::consumer::ConsumerConfig {
            topic_policy: self.topic_policy.clone(),
            health: self.health.clone(),
            ..streams::consumer::ConsumerConfig::new(name, &self.producer.brokers, topics, dead_letters)
        }
    }

    /// The ledger's own topics that `ledger up` writes to: the published ones, and the inbound
    /// transfer requests' dead-letter topic (each domain names its own: `Domain::written_topics`).
    pub fn written_topics(&self) -> Vec<String> {
        let mut names: Vec<String> = self.topics.names().into_iter().map(str::to_owned).collect();
        names.extend(self.transfer_requests_topic.as_ref().map(|t| format!("{t}.dlq")));
        names
    }

    /// The ledger's own topics that `ledger up` consumes: the inbound transfer requests, if on.
    pub fn consumed_topics(&self) -> Vec<String> {
        self.transfer_requests_topic.iter().cloned().collect()
    }
}

/// Every topic `ledger up` uses with one configuration, the ledger's own and every domain's
/// (`ledger kafka topics` prints them; `up` checks `written` at start-up). Nothing when Kafka is
/// off. Each name appears once, in the order the parts name them.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct UsedTopics {
    /// The topics it publishes to or dead-letters into: they must exist (or be created) before
    /// `ledger up` starts.
    pub written: Vec<String>,
    /// The topics its consumers read: one missing at start-up is reported (`/healthz`) and
    /// subscribed once it exists.
    pub consumed: Vec<String>,
}

impl UsedTopics {
    pub fn of(kafka: Option<&KafkaConfig>, domains: &[Box<dyn crate::domains::Domain>]) -> UsedTopics {
        let Some(kafka) = kafka else { return UsedTopics::default() };
        let mut written = kafka.written_topics();
        written.extend(domains.iter().flat_map(|d| d.written_topics()));
        let mut consumed = kafka.consumed_topics();
        consumed.extend(domains.iter().flat_map(|d| d.consumed_topics()));
        UsedTopics { written: once_each(written), consumed: once_each(consumed) }
    }
}

fn once_each(names: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    names.into_iter().filter(|name| seen.insert(name.clone())).collect()
}

/// Kafka's settings, `None` unless brokers are configured.
pub fn settings(kafka_file: KafkaFile) -> anyhow::Result<Option<KafkaConfig>> {
    Ok(match env::<String>("KAFKA_BROKERS")?.or(kafka_file.brokers).filter(|b| !b.trim().is_empty()) {
        None => None,
        Some(brokers) => {
            let prefix =
                env("LEDGER_KAFKA_TOPIC_PREFIX")?.or(kafka_file.topic_prefix).unwrap_or_else(|| "ledger".to_owned());
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
                health: streams::health::ConsumerHealth::default(),
            })
        }
    })
}
