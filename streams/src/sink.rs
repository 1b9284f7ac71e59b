//! Where published messages go: a port with one real adapter (Kafka, through librdkafka's
//! idempotent producer) and an in-memory one for unit tests.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

/// One message to publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutMessage {
    pub topic: String,
    /// Messages with the same key keep their order (they land on one partition).
    pub key: String,
    pub payload: String,
    pub headers: Vec<(&'static str, String)>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum SinkError {
    #[error("the broker did not acknowledge a message: {0}")]
    Delivery(String),
    #[error("the producer cannot be created: {0}")]
    Config(String),
}

/// Publishes a batch and returns once every message is acknowledged, or with an error when
/// any is not. After an error the caller sends the whole batch again (at least once).
pub trait Sink: Send + Sync + 'static {
    fn send(&self, batch: Vec<OutMessage>) -> impl Future<Output = Result<(), SinkError>> + Send;
}

/// Producer settings.
#[derive(Clone, Debug)]
pub struct KafkaSettings {
    /// `bootstrap.servers`, e.g. `127.0.0.1:9092`.
    pub brokers: String,
    /// How long librdkafka keeps retrying one message before reporting it failed.
    pub message_timeout: Duration,
}

impl KafkaSettings {
    pub fn new(brokers: &str) -> KafkaSettings {
        KafkaSettings { brokers: brokers.to_owned(), message_timeout: Duration::from_secs(30) }
    }
}

/// The Kafka adapter: an idempotent producer (`acks=all`, no duplicates or reordering from
/// its own retries). A producer that hits a fatal error is replaced before the next batch.
pub struct KafkaSink {
    settings: KafkaSettings,
    producer: Mutex<FutureProducer>,
}

fn producer(settings: &KafkaSettings) -> Result<FutureProducer, SinkError> {
    ClientConfig::new()
        .set("bootstrap.servers", &settings.brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", settings.message_timeout.as_millis().to_string())
        .set("client.id", "ledger-publisher")
        .create()
        .map_err(|e| SinkError::Config(e.to_string()))
}

impl KafkaSink {
    pub fn new(settings: &KafkaSettings) -> Result<KafkaSink, SinkError> {
        Ok(KafkaSink { settings: settings.clone(), producer: Mutex::new(producer(settings)?) })
    }

    /// The producer to use now: the current one, or a new one if it failed fatally.
    fn current(&self) -> Result<FutureProducer, SinkError> {
        let mut current = self.producer.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((code, reason)) = current.client().fatal_error() {
            tracing::warn!(?code, reason, "the Kafka producer failed fatally; replacing it");
            *current = producer(&self.settings)?;
        }
        Ok(current.clone())
    }

    /// Whether the producer in use hit an error it cannot recover from.
    pub fn is_broken(&self) -> bool {
        self.producer.lock().unwrap_or_else(|e| e.into_inner()).client().fatal_error().is_some()
    }

    /// Raises a fatal error in the producer, as librdkafka's test hook does (for tests).
    pub fn inject_fatal_error(&self) {
        let producer = self.producer.lock().unwrap_or_else(|e| e.into_inner());
        let reason = c"injected by a test";
        // SAFETY: the client pointer is valid while `producer` is alive; the reason is a
        // NUL-terminated static string that librdkafka copies.
        unsafe {
            rdkafka::bindings::rd_kafka_test_fatal_error(
                producer.client().native_ptr(),
                rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                reason.as_ptr(),
            );
        }
    }
}

impl Sink for KafkaSink {
    async fn send(&self, batch: Vec<OutMessage>) -> Result<(), SinkError> {
        let producer = self.current()?;
        let mut pending = Vec::with_capacity(batch.len());
        for m in &batch {
            let mut headers = OwnedHeaders::new_with_capacity(m.headers.len());
            for (key, value) in &m.headers {
                headers = headers.insert(Header { key, value: Some(value.as_str()) });
            }
            let mut record = FutureRecord::to(&m.topic).key(&m.key).payload(&m.payload).headers(headers);
            loop {
                match producer.send_result(record) {
                    Ok(delivery) => {
                        pending.push(delivery);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        // librdkafka's queue is full: let it drain, then try again.
                        record = back;
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    Err((e, _)) => return Err(SinkError::Delivery(e.to_string())),
                }
            }
        }
        let mut first_error = None;
        for delivery in pending {
            let failed = match delivery.await {
                Ok(Ok(_)) => None,
                Ok(Err((e, _))) => Some(e.to_string()),
                Err(_) => Some("the producer was dropped".to_owned()),
            };
            if first_error.is_none() {
                first_error = failed;
            }
        }
        first_error.map_or(Ok(()), |e| Err(SinkError::Delivery(e)))
    }
}

/// The in-memory adapter, for unit tests: keeps what it was sent, and fails on demand.
#[derive(Clone, Default)]
pub struct MemorySink {
    inner: Arc<Mutex<MemoryInner>>,
}

#[derive(Default)]
struct MemoryInner {
    sent: Vec<OutMessage>,
    failures_left: usize,
}

impl MemorySink {
    /// The next `n` batches fail after delivering their first half (as a broker outage would).
    pub fn fail_next(&self, n: usize) {
        self.lock().failures_left = n;
    }

    pub fn sent(&self) -> Vec<OutMessage> {
        self.lock().sent.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Sink for MemorySink {
    async fn send(&self, batch: Vec<OutMessage>) -> Result<(), SinkError> {
        let mut inner = self.lock();
        if inner.failures_left > 0 {
            inner.failures_left -= 1;
            let half = batch.len() / 2;
            inner.sent.extend(batch.into_iter().take(half));
            return Err(SinkError::Delivery("injected failure".to_owned()));
        }
        inner.sent.extend(batch);
        Ok(())
    }
}
