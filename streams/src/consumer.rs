//! The inbound consumer framework: a consumer group reads topics, hands each message to a
//! `Handler`, and commits the message's offset only after the handler applied it or the
//! message went to the dead-letter topic. Redelivered messages are skipped by their id
//! (the `message_id` header, else the key, or else their topic, partition and offset for topics
//! whose keys name an entity rather than a message: `Identity`), recorded in `inbox`. Retryable failures are
//! retried with exponential back-off up to `max_attempts`; after that, and for rejections, the
//! message goes to the dead-letter topic with the error in its headers. Nothing is committed
//! while the dead-letter topic cannot be written: the consumer stalls rather than lose a message.
//!
//! A consumer does not wait for its topics to exist. It subscribes at once, and beside it creates
//! the missing ones when its `topic_policy` allows; then, every `check_interval`, it looks at
//! each topic again (trying to create it while missing), records its state and lag in `health`
//! (a topic turning missing is logged once, with the broker's reason), and librdkafka's metadata
//! refresh runs at that interval too, so a topic someone else creates later is consumed within
//! about one interval of appearing.

use std::future::Future;
use std::time::Duration;

use std::sync::Arc;

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use sqlx::PgPool;
use tracing::{debug, info, warn};

use crate::admin::{TopicAdmin, TopicPolicy, TopicsError};
use crate::health::{ConsumerHealth, TopicHealth, TopicState};

/// One inbound message, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inbound {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Inbound {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    /// Event metadata naming this message as the command's source.
    pub fn meta(&self) -> ledger_store::EventMeta {
        ledger_store::EventMeta {
            source: Some(ledger_store::Source::Topic {
                topic: self.topic.clone(),
                partition: self.partition,
                offset: self.offset,
            }),
            ..ledger_store::EventMeta::default()
        }
    }

    /// The id deduplication uses: the `message_id` header, else the key.
    pub fn message_id(&self) -> Option<&str> {
        self.header("message_id").or(self.key.as_deref()).filter(|id| !id.is_empty())
    }

    /// The id a consumer deduplicates the message by.
    pub fn identity(&self, identity: Identity) -> Option<String> {
        match (identity, self.header("message_id").filter(|id| !id.is_empty())) {
            (Identity::Position, None) => Some(format!("{}:{}:{}", self.topic, self.partition, self.offset)),
            _ => self.message_id().map(str::to_owned),
        }
    }
}

/// What identifies a message for deduplication when it has no `message_id` header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Identity {
    /// Its key: each message has a key of its own (a request, an upload).
    #[default]
    Key,
    /// Its topic, partition and offset: keys name an entity that many messages are about (a
    /// payout's statuses), and the handler makes repeats harmless.
    Position,
}

/// How a handler failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HandleError {
    /// Worth trying again (the ledger is busy or unavailable).
    #[error("retryable: {0}")]
    Retry(String),
    /// Will never succeed (bad message, or the ledger refused the command): dead-letter it.
    #[error("{code}: {detail}")]
    Reject { code: String, detail: String },
}

/// Applies one message. Must be idempotent: a message may be handled again after a crash
/// between applying it and recording it.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, message: &Inbound) -> impl Future<Output = Result<(), HandleError>> + Send;
}

#[derive(Clone, Debug)]
pub struct ConsumerConfig {
    /// The consumer group, and the namespace of its deduplication records.
    pub name: String,
    pub brokers: String,
    pub topics: Vec<String>,
    pub dead_letter_topic: String,
    /// Handling attempts per message before it is dead-lettered (at least 1).
    pub max_attempts: u32,
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// How long the group waits for a member that vanished without leaving (Kafka's default 45 s).
    pub session_timeout: Duration,
    /// How messages without a `message_id` header are told apart.
    pub identity: Identity,
    /// How its missing topics are made (`create: false`: only waited for).
    pub topic_policy: TopicPolicy,
    /// How often its topics are checked (and librdkafka refreshes their metadata).
    pub check_interval: Duration,
    /// Where their states are reported.
    pub health: ConsumerHealth,
}

impl ConsumerConfig {
    pub fn new(name: &str, brokers: &str, topics: &[&str], dead_letter_topic: &str) -> ConsumerConfig {
        ConsumerConfig {
            name: name.to_owned(),
            brokers: brokers.to_owned(),
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
            dead_letter_topic: dead_letter_topic.to_owned(),
            max_attempts: 5,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            session_timeout: Duration::from_secs(45),
            identity: Identity::Key,
            topic_policy: TopicPolicy::default(),
            check_interval: Duration::from_secs(5),
            health: ConsumerHealth::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    #[error("Kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

/// What became of a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Applied {
        attempts: u32,
    },
    DeadLettered {
        attempts: u32,
        code: String,
    },
    /// Already handled earlier (a redelivery).
    Duplicate,
}

/// Runs the consumer until `stop` turns true.
pub async fn run<H: Handler>(
    pool: PgPool,
    config: ConsumerConfig,
    handler: H,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(), ConsumerError> {
    let admin = TopicAdmin::new(&config.brokers).ok();
    let refresh = config.check_interval.as_millis().max(100).to_string();
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &config.brokers)
        .set("group.id", &config.name)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", config.session_timeout.as_millis().to_string())
        .set("heartbeat.interval.ms", (config.session_timeout.as_millis() / 5).max(100).to_string())
        // A subscribed topic that does not exist yet is found at the next refresh.
        .set("topic.metadata.refresh.interval.ms", &refresh)
        .create()?;
    let consumer = Arc::new(consumer);
    let topics: Vec<&str> = config.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics)?;
    let _watch = Watch(tokio::spawn(watch_topics(consumer.clone(), admin, config.clone())));
    let dead_letters: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &config.brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .create()?;
    info!(consumer = config.name, ?topics, "consumer running");
    loop {
        let received = tokio::select! {
            received = consumer.recv() => received.map(|m| owned(&m)),
            _ = stop.changed() => return Ok(()),
        };
        let message = match received {
            Ok(m) => m,
            // A subscribed topic that does not exist yet: the checks report it.
            Err(KafkaError::MessageConsumption(
                RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic,
            )) => {
                debug!(consumer = config.name, "a subscribed topic does not exist yet");
                continue;
            }
            Err(e) => {
                warn!(consumer = config.name, error = %e, "receiving failed; retrying");
                tokio::time::sleep(config.backoff).await;
                continue;
            }
        };
        // A database error retries the same message after a back-off; it is never skipped.
        let mut delay = config.backoff;
        let outcome = loop {
            match process(&pool, &config, &handler, &dead_letters, &message, &mut stop).await {
                Ok(Some(outcome)) => break outcome,
                Ok(None) => return Ok(()), // stopped mid-message: it is redelivered later
                Err(e) => {
                    warn!(consumer = config.name, error = %e, "handling paused on an error; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = stop.changed() => return Ok(()),
                    }
                    delay = (delay * 2).min(config.max_backoff);
                }
            }
        };
        if let Outcome::DeadLettered { code, .. } = &outcome {
            warn!(
                consumer = config.name,
                topic = message.topic,
                offset = message.offset,
                code,
                "message dead-lettered"
            );
        }
        let mut next = TopicPartitionList::new();
        next.add_partition_offset(&message.topic, message.partition, Offset::Offset(message.offset + 1))?;
        if let Err(e) = consumer.commit(&next, CommitMode::Sync) {
            // The message is recorded in `inbox`: a redelivery after this is skipped.
            warn!(consumer = config.name, error = %e, "committing the offset failed");
        }
    }
}

/// The topic checks of a running consumer, ended with it.
struct Watch(tokio::task::JoinHandle<()>);

impl Drop for Watch {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Creates the topics in `names` the broker lacks, when the policy allows, waiting at most
/// `timeout`; returns why each one still missing is (empty: none is).
async fn make_missing(
    admin: &TopicAdmin,
    config: &ConsumerConfig,
    names: &[String],
    timeout: Duration,
) -> std::collections::HashMap<String, String> {
    let policy = TopicPolicy { timeout: config.topic_policy.timeout.min(timeout), ..config.topic_policy.clone() };
    match admin.ensure(names, &policy).await {
        Ok(created) => {
            if !created.is_empty() {
                info!(consumer = config.name, ?created, "created consumed Kafka topics");
            }
            std::collections::HashMap::new()
        }
        Err(TopicsError::Missing { missing }) => missing.into_iter().collect(),
        Err(e @ TopicsError::Unreachable { .. }) => names.iter().map(|t| (t.clone(), e.to_string())).collect(),
    }
}

/// The consumer's topics, watched: at start the missing ones are created (when the policy allows);
/// then every `check_interval` each topic's existence and lag go into `health`, and the missing
/// ones are tried again in the background (one attempt at a time, so a broker that never answers
/// does not hold the checks up). A topic turning missing, or back, is logged once.
async fn watch_topics(consumer: Arc<StreamConsumer>, admin: Option<TopicAdmin>, config: ConsumerConfig) {
    let admin = admin.filter(|_| config.topic_policy.create);
    let timeout = config.check_interval.min(Duration::from_secs(5));
    let mut why = match &admin {
        Some(admin) => make_missing(admin, &config, &config.topics, timeout).await,
        None => std::collections::HashMap::new(),
    };
    let mut consumed: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
    let mut attempt: Option<tokio::task::JoinHandle<std::collections::HashMap<String, String>>> = None;
    loop {
        if let Some(done) = attempt.take_if(|a| a.is_finished()) {
            why = done.await.unwrap_or_default();
        }
        let mut missing = Vec::new();
        for topic in &config.topics {
            let (c, t) = (consumer.clone(), topic.clone());
            let (exists, lag, committed) = match tokio::task::spawn_blocking(move || check(&c, &t, timeout)).await {
                Ok(Ok(checked)) => checked,
                Ok(Err(e)) => {
                    debug!(consumer = config.name, topic, error = %e, "the topic check did not answer");
                    continue;
                }
                Err(e) => {
                    debug!(consumer = config.name, topic, error = %e, "the topic check did not finish");
                    continue;
                }
            };
            let progressed = consumed.insert(topic.clone(), committed).is_none_or(|before| before != committed);
            let state = TopicState::of(exists, lag, progressed);
            let health =
                TopicHealth { consumer: config.name.clone(), topic: topic.clone(), state, lag: exists.then_some(lag) };
            match (config.health.set(health), state) {
                (Some(TopicState::Missing), TopicState::Subscribed | TopicState::Lagging) => {
                    info!(consumer = config.name, topic, "consumed Kafka topic now exists");
                }
                (before, TopicState::Missing) if before != Some(TopicState::Missing) => {
                    let why = why.get(topic).map_or("not on the broker", String::as_str);
                    warn!(
                        consumer = config.name,
                        topic, why, "consumed Kafka topic missing; consuming it once it exists"
                    );
                }
                _ => {}
            }
            if state == TopicState::Missing {
                missing.push(topic.clone());
            }
        }
        if let Some(admin) = &admin
            && attempt.is_none()
            && !missing.is_empty()
        {
            let (admin, config) = (admin.clone(), config.clone());
            attempt = Some(tokio::spawn(async move { make_missing(&admin, &config, &missing, timeout).await }));
        }
        tokio::time::sleep(config.check_interval).await;
    }
}

/// Whether `topic` exists, the messages on it past the group's committed offsets (from the start
/// of a partition with none), and the sum of those offsets (to tell progress).
fn check(consumer: &StreamConsumer, topic: &str, timeout: Duration) -> Result<(bool, i64, i64), KafkaError> {
    let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
    let partitions: Vec<i32> = match metadata.topics().iter().find(|t| t.name() == topic) {
        Some(t) if t.error().is_none() => t.partitions().iter().map(|p| p.id()).collect(),
        _ => Vec::new(),
    };
    if partitions.is_empty() {
        return Ok((false, 0, 0));
    }
    let mut list = TopicPartitionList::new();
    for p in &partitions {
        list.add_partition(topic, *p);
    }
    let committed = consumer.committed_offsets(list, timeout)?;
    let (mut lag, mut sum) = (0, 0);
    for p in partitions {
        let (low, high) = consumer.fetch_watermarks(topic, p, timeout)?;
        let at = match committed.find_partition(topic, p).map(|e| e.offset()) {
            Some(Offset::Offset(n)) => n,
            _ => low,
        };
        lag += (high - at).max(0);
        sum += at;
    }
    Ok((true, lag, sum))
}

fn owned(m: &rdkafka::message::BorrowedMessage<'_>) -> Inbound {
    let headers = m
        .headers()
        .map(|h| h.iter().map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec())).collect())
        .unwrap_or_default();
    Inbound {
        topic: m.topic().to_owned(),
        partition: m.partition(),
        offset: m.offset(),
        key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
        payload: m.payload().unwrap_or_default().to_vec(),
        headers,
    }
}

/// Handles one message to its end; `None` when `stop` interrupted it.
pub async fn process<H: Handler>(
    pool: &PgPool,
    config: &ConsumerConfig,
    handler: &H,
    dead_letters: &FutureProducer,
    message: &Inbound,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<Option<Outcome>, ConsumerError> {
    let Some(id) = message.identity(config.identity) else {
        let error = HandleError::Reject {
            code: "missing_message_id".into(),
            detail: "the message has neither a message_id header nor a key".into(),
        };
        let attempts = 0;
        return dead_letter(config, dead_letters, message, &error, attempts, stop)
            .await
            .map(|sent| sent.then(|| Outcome::DeadLettered { attempts, code: "missing_message_id".into() }));
    };
    let seen: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM inbox WHERE consumer = $1 AND message_id = $2)")
        .bind(&config.name)
        .bind(&id)
        .fetch_one(pool)
        .await?;
    if seen {
        return Ok(Some(Outcome::Duplicate));
    }
    let mut delay = config.backoff;
    let mut attempts = 0;
    let error = loop {
        attempts += 1;
        match handler.handle(message).await {
            Ok(()) => {
                record(pool, config, &id, message, "applied", attempts, None).await?;
                return Ok(Some(Outcome::Applied { attempts }));
            }
            Err(HandleError::Retry(e)) if attempts < config.max_attempts.max(1) => {
                warn!(consumer = config.name, attempts, error = e, "handling failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.changed() => return Ok(None),
                }
                delay = (delay * 2).min(config.max_backoff);
            }
            Err(HandleError::Retry(e)) => {
                break HandleError::Reject { code: "retries_exhausted".into(), detail: e };
            }
            Err(reject) => break reject,
        }
    };
    let HandleError::Reject { code, .. } = &error else { unreachable!("retries end as rejections") };
    let code = code.clone();
    if !dead_letter(config, dead_letters, message, &error, attempts, stop).await? {
        return Ok(None);
    }
    record(pool, config, &id, message, "dead_lettered", attempts, Some(&code)).await?;
    Ok(Some(Outcome::DeadLettered { attempts, code }))
}

async fn record(
    pool: &PgPool,
    config: &ConsumerConfig,
    id: &str,
    m: &Inbound,
    outcome: &str,
    attempts: u32,
    error_code: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO inbox (consumer, message_id, topic, partition, \"offset\", outcome, attempts, error_code) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (consumer, message_id) DO NOTHING",
    )
    .bind(&config.name)
    .bind(id)
    .bind(&m.topic)
    .bind(m.partition)
    .bind(m.offset)
    .bind(outcome)
    .bind(i32::try_from(attempts).unwrap_or(i32::MAX))
    .bind(error_code)
    .execute(pool)
    .await
    .map(drop)
}

/// Sends the message to the dead-letter topic with the error attached, retrying until the
/// broker acknowledges it. `false` when `stop` interrupted it.
async fn dead_letter(
    config: &ConsumerConfig,
    producer: &FutureProducer,
    m: &Inbound,
    error: &HandleError,
    attempts: u32,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<bool, ConsumerError> {
    let (code, detail) = match error {
        HandleError::Reject { code, detail } => (code.as_str(), detail.as_str()),
        HandleError::Retry(detail) => ("retries_exhausted", detail.as_str()),
    };
    let attached = [
        ("dlq.error.code", code.to_owned()),
        ("dlq.error.detail", detail.to_owned()),
        ("dlq.original.topic", m.topic.clone()),
        ("dlq.original.partition", m.partition.to_string()),
        ("dlq.original.offset", m.offset.to_string()),
        ("dlq.attempts", attempts.to_string()),
        ("dlq.consumer", config.name.clone()),
    ];
    let mut delay = config.backoff;
    loop {
        let mut headers = OwnedHeaders::new_with_capacity(m.headers.len() + attached.len());
        for (key, value) in &m.headers {
            headers = headers.insert(Header { key, value: Some(value.as_slice()) });
        }
        for (key, value) in &attached {
            headers = headers.insert(Header { key, value: Some(value.as_bytes()) });
        }
        let mut record = FutureRecord::to(&config.dead_letter_topic).payload(&m.payload).headers(headers);
        if let Some(key) = &m.key {
            record = record.key(key);
        }
        match producer.send(record, Duration::from_secs(5)).await {
            Ok(_) => return Ok(true),
            Err((e, _)) => warn!(consumer = config.name, error = %e, "dead-letter topic unavailable; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.changed() => return Ok(false),
        }
        delay = (delay * 2).min(config.max_backoff);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_told_apart_by_its_header_then_its_key_or_its_position() {
        let mut m = Inbound {
            topic: "statuses".into(),
            partition: 2,
            offset: 7,
            key: Some("payout-1".into()),
            payload: Vec::new(),
            headers: Vec::new(),
        };
        assert_eq!(m.identity(Identity::Key).as_deref(), Some("payout-1"));
        assert_eq!(m.identity(Identity::Position).as_deref(), Some("statuses:2:7"));
        m.headers.push(("message_id".into(), b"m-9".to_vec()));
        assert_eq!(m.identity(Identity::Key).as_deref(), Some("m-9"));
        assert_eq!(m.identity(Identity::Position).as_deref(), Some("m-9"));
        m.headers.clear();
        m.key = None;
        assert_eq!(m.identity(Identity::Key), None);
        assert_eq!(Identity::default(), Identity::Key);
    }
}
