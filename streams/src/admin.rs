//! The topics the ledger writes to must exist before it writes: many production clusters turn
//! automatic topic creation off, and a producer then retries a message to a missing topic until
//! it times out, again and again. At start-up the missing ones are created through the admin
//! API (partitions and replication from configuration), or named in a clear error.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;

/// How missing topics are made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicPolicy {
    /// Create missing topics (`false`: only check, and name the missing ones).
    pub create: bool,
    pub partitions: i32,
    pub replication: i32,
    /// How long to wait for the broker's metadata and for each creation.
    pub timeout: Duration,
}

impl Default for TopicPolicy {
    fn default() -> TopicPolicy {
        TopicPolicy { create: true, partitions: 3, replication: 1, timeout: Duration::from_secs(10) }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicsError {
    /// The broker did not answer: nothing is known about the topics yet.
    #[error("the Kafka brokers {brokers} did not answer: {reason}")]
    Unreachable { brokers: String, reason: String },
    /// The broker answered; these topics do not exist and were not created.
    #[error("Kafka topics missing: {}", missing.iter().map(|(t, why)| format!("{t} ({why})")).collect::<Vec<_>>().join(", "))]
    Missing { missing: Vec<(String, String)> },
}

/// Makes sure every topic in `names` exists: the ones the broker lacks are created when the
/// policy allows. Returns the topics it created.
pub async fn ensure_topics(brokers: &str, names: &[String], policy: &TopicPolicy) -> Result<Vec<String>, TopicsError> {
    TopicAdmin::new(brokers)?.ensure(names, policy).await
}

/// An admin client kept for checking topics again and again (a consumer waiting for its topics
/// to appear), instead of one made per check.
#[derive(Clone)]
pub struct TopicAdmin {
    brokers: String,
    admin: std::sync::Arc<AdminClient<DefaultClientContext>>,
}

impl TopicAdmin {
    pub fn new(brokers: &str) -> Result<TopicAdmin, TopicsError> {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("client.id", "ledger-admin")
            .create()
            .map_err(|e| TopicsError::Unreachable { brokers: brokers.to_owned(), reason: e.to_string() })?;
        Ok(TopicAdmin { brokers: brokers.to_owned(), admin: std::sync::Arc::new(admin) })
    }

    /// The names of every topic the broker has.
    pub async fn existing(&self, timeout: Duration) -> Result<Vec<String>, TopicsError> {
        let unreachable = |reason: String| TopicsError::Unreachable { brokers: self.brokers.clone(), reason };
        let admin = self.admin.clone();
        // Metadata of every topic (naming none, so nothing is created as a side effect).
        Ok(tokio::task::spawn_blocking(move || admin.inner().fetch_metadata(None, timeout))
            .await
            .map_err(|e| unreachable(e.to_string()))?
            .map_err(|e| unreachable(e.to_string()))?
            .topics()
            .iter()
            .filter(|t| t.error().is_none())
            .map(|t| t.name().to_owned())
            .collect())
    }

    /// Makes sure every topic in `names` exists, creating the missing ones when the policy
    /// allows. Returns the topics it created.
    pub async fn ensure(&self, names: &[String], policy: &TopicPolicy) -> Result<Vec<String>, TopicsError> {
        let existing = self.existing(policy.timeout).await?;
        let mut missing: Vec<&String> = names.iter().filter(|n| !existing.contains(n)).collect();
        missing.sort();
        missing.dedup();
        if missing.is_empty() {
            return Ok(Vec::new());
        }
        if !policy.create {
            let why = "kafka.create_topics is off".to_owned();
            return Err(TopicsError::Missing {
                missing: missing.into_iter().map(|t| (t.clone(), why.clone())).collect(),
            });
        }
        let new: Vec<NewTopic> = missing
            .iter()
            .map(|t| NewTopic::new(t, policy.partitions, TopicReplication::Fixed(policy.replication)))
            .collect();
        let options = AdminOptions::new().operation_timeout(Some(policy.timeout)).request_timeout(Some(policy.timeout));
        let results = self.admin.create_topics(&new, &options).await.map_err(|e| TopicsError::Missing {
            missing: missing.iter().map(|t| ((*t).clone(), format!("not created: {e}"))).collect(),
        })?;
        let mut created = Vec::new();
        let mut failed = Vec::new();
        for result in results {
            match result {
                Ok(topic) => created.push(topic),
                // Another instance created it meanwhile.
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => failed.push((topic, format!("not created: {code}"))),
            }
        }
        if failed.is_empty() { Ok(created) } else { Err(TopicsError::Missing { missing: failed }) }
    }
}
