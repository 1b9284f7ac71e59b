//! The inbound consumer framework: the test consumer applies transfer requests once, skips
//! redeliveries, dead-letters what cannot be applied with the error attached, retries with
//! back-off, and commits offsets so a restart does not handle a message again.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ledger_core::{AccountKind, BalanceLimit};
use rdkafka::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rust_decimal::Decimal;
use streams::consumer::{ConsumerConfig, HandleError, Handler, Inbound};
use streams::inbound::TransferRequests;
use uuid::Uuid;

use crate::support::*;

async fn produce(brokers: &str, topic: &str, key: Option<&str>, payload: &str, message_id: Option<&str>) {
    let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", brokers).create().unwrap();
    let mut record = FutureRecord::to(topic).payload(payload);
    if let Some(key) = key {
        record = record.key(key);
    }
    if let Some(id) = message_id {
        record = record.headers(OwnedHeaders::new().insert(Header { key: "message_id", value: Some(id) }));
    }
    producer.send(record, Duration::from_secs(5)).await.unwrap();
}

/// Counts the calls a handler gets, to see what a restart handles again.
struct Counting<H> {
    inner: H,
    calls: Arc<AtomicUsize>,
}

impl<H: Handler> Handler for Counting<H> {
    async fn handle(&self, message: &Inbound) -> Result<(), HandleError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.handle(message).await
    }
}

fn spawn<H: Handler>(
    pool: &sqlx::PgPool,
    config: &ConsumerConfig,
    handler: H,
) -> (tokio::sync::watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let (pool, config) = (pool.clone(), config.clone());
    let task = tokio::spawn(async move { streams::consumer::run(pool, config, handler, stopped).await.unwrap() });
    (stop, task)
}

async fn inbox(pool: &sqlx::PgPool) -> Vec<(String, String, i32, Option<String>)> {
    sqlx::query_as("SELECT message_id, outcome, attempts, error_code FROM inbox ORDER BY processed_at, message_id")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_requests_apply_once_and_failures_are_dead_lettered_with_their_error() {
    let broker = Broker::any();
    let prefix = prefix();
    let (topic, dlq) = (format!("{prefix}.transfer-requests"), format!("{prefix}.transfer-requests.dlq"));
    broker.create_topics(&[&topic, &dlq]);
    let ledger = ledger().await;
    open(&ledger.handle, "cash", AccountKind::Asset, BalanceLimit::None).await;
    let player =
        open(&ledger.handle, "player:1", AccountKind::Liability, BalanceLimit::DebitsMustNotExceedCredits).await;
    let pool = sqlx::PgPool::connect(&ledger.db.url).await.unwrap();

    let t1 = Uuid::new_v4();
    let deposit = serde_json::json!({"id": t1, "debit": "cash", "credit": "player:1", "amount": "10.00"}).to_string();
    produce(&broker.brokers, &topic, Some("m1"), &deposit, None).await;
    produce(&broker.brokers, &topic, Some("m1"), &deposit, None).await; // redelivered
    produce(&broker.brokers, &topic, Some("other-key"), &deposit, Some("m1b")).await; // same transfer, new message
    produce(&broker.brokers, &topic, Some("m2"), "{not json", None).await;
    let overdraw =
        serde_json::json!({"id": Uuid::new_v4(), "debit": "player:1", "credit": "cash", "amount": "1000.00"})
            .to_string();
    produce(&broker.brokers, &topic, Some("m3"), &overdraw, None).await;
    produce(&broker.brokers, &topic, None, &deposit, None).await; // no id at all

    let mut config = ConsumerConfig::new(&format!("{prefix}-transfers"), &broker.brokers, &[&topic], &dlq);
    // The mock cluster lets a closed member's partitions go only after its session times out.
    config.session_timeout = Duration::from_secs(6);
    let calls = Arc::new(AtomicUsize::new(0));
    let handler = Counting { inner: TransferRequests::new(ledger.handle.clone()), calls: Arc::clone(&calls) };
    let (stop, task) = spawn(&pool, &config, handler);
    let dead = read_until(&broker.brokers, &dlq, Duration::from_secs(60), |r| r.len() >= 3).await;
    assert!(eventually(Duration::from_secs(30), || async { inbox(&pool).await.len() == 4 }).await);

    // Different keys may sit on different partitions: compare without order.
    let mut codes: Vec<&str> = dead.iter().map(|r| r.header("dlq.error.code").unwrap()).collect();
    codes.sort_unstable();
    assert_eq!(codes, ["insufficient_funds", "invalid_body", "missing_message_id"]);
    assert!(dead.iter().all(|r| r.header("dlq.original.topic") == Some(topic.as_str())));
    assert!(dead.iter().all(|r| r.header("dlq.original.offset").is_some_and(|o| o.parse::<i64>().is_ok())));
    let refused = dead.iter().find(|r| r.header("dlq.error.code") == Some("insufficient_funds")).unwrap();
    assert_eq!(refused.payload, overdraw.as_bytes());
    assert_eq!(refused.key.as_deref(), Some("m3"));
    assert!(dead.iter().all(|r| r.header("dlq.error.detail").is_some_and(|d| !d.is_empty())));
    let rows = inbox(&pool).await;
    let mut outcomes: Vec<(&str, &str)> =
        rows.iter().map(|(id, outcome, ..)| (id.as_str(), outcome.as_str())).collect();
    outcomes.sort_unstable();
    assert_eq!(outcomes, [("m1", "applied"), ("m1b", "applied"), ("m2", "dead_lettered"), ("m3", "dead_lettered")]);

    // One transfer, once: the player holds 10.00.
    let account = ledger.handle.view().account(&ledger_core::AccountRef::Id(player)).unwrap().account;
    assert_eq!(account.balances.credits_posted, Decimal::new(1000, 2));
    let mut conn = ledger.db.connect().await;
    let written: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE stream_id = $1")
        .bind(format!("transfer-{t1}"))
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(written, 1);
    let channel: String = sqlx::query_scalar("SELECT metadata->>'channel' FROM events WHERE stream_id = $1")
        .bind(format!("transfer-{t1}"))
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(channel, format!("kafka:{topic}"));
    // The redelivered m1 was skipped before the handler; the keyless message never reached it.
    assert_eq!(calls.load(Ordering::SeqCst), 4);

    // Offsets were committed: after a restart only the new message is handled.
    stop.send(true).unwrap();
    task.await.unwrap();
    let t2 = serde_json::json!({"id": Uuid::new_v4(), "debit": "cash", "credit": "player:1", "amount": "2.50"});
    produce(&broker.brokers, &topic, Some("m4"), &t2.to_string(), None).await;
    let calls_after = Arc::new(AtomicUsize::new(0));
    let handler = Counting { inner: TransferRequests::new(ledger.handle.clone()), calls: Arc::clone(&calls_after) };
    let (stop, task) = spawn(&pool, &config, handler);
    assert!(eventually(Duration::from_secs(30), || async { inbox(&pool).await.len() == 5 }).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(calls_after.load(Ordering::SeqCst), 1);
    assert_eq!(
        ledger.handle.view().account(&ledger_core::AccountRef::Id(player)).unwrap().account.balances.credits_posted,
        Decimal::new(1250, 2)
    );

    stop.send(true).unwrap();
    task.await.unwrap();
    drop(ledger.handle);
    ledger.task.await.unwrap();
    ledger.db.drop_database().await;
}

/// Fails with a retryable error a set number of times per message, then succeeds.
struct Flaky {
    failures: usize,
    seen: std::sync::Mutex<std::collections::HashMap<String, usize>>,
}

impl Handler for Flaky {
    async fn handle(&self, message: &Inbound) -> Result<(), HandleError> {
        let mut seen = self.seen.lock().unwrap();
        let n = seen.entry(message.message_id().unwrap().to_owned()).or_default();
        *n += 1;
        let limit = if message.payload == b"always" { usize::MAX } else { self.failures };
        if *n <= limit { Err(HandleError::Retry(format!("busy ({n})"))) } else { Ok(()) }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retryable_failures_back_off_then_succeed_or_are_dead_lettered() {
    let broker = Broker::any();
    let prefix = prefix();
    let (topic, dlq) = (format!("{prefix}.in"), format!("{prefix}.in.dlq"));
    broker.create_topics(&[&topic, &dlq]);
    let db = test_support::fresh_database().await;
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    produce(&broker.brokers, &topic, Some("r1"), "sometimes", None).await;
    produce(&broker.brokers, &topic, Some("r2"), "always", None).await;
    let mut config = ConsumerConfig::new(&format!("{prefix}-flaky"), &broker.brokers, &[&topic], &dlq);
    config.max_attempts = 3;
    config.backoff = Duration::from_millis(20);
    let (stop, task) = spawn(&pool, &config, Flaky { failures: 2, seen: Default::default() });
    let dead = read_until(&broker.brokers, &dlq, Duration::from_secs(60), |r| !r.is_empty()).await;
    assert!(eventually(Duration::from_secs(30), || async { inbox(&pool).await.len() == 2 }).await);
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].header("dlq.error.code"), Some("retries_exhausted"));
    assert_eq!(dead[0].header("dlq.attempts"), Some("3"));
    assert_eq!(dead[0].header("dlq.error.detail"), Some("busy (3)"));
    let mut rows = inbox(&pool).await;
    rows.sort();
    assert_eq!(rows[0], ("r1".to_owned(), "applied".to_owned(), 3, None));
    assert_eq!(rows[1], ("r2".to_owned(), "dead_lettered".to_owned(), 3, Some("retries_exhausted".to_owned())));
    stop.send(true).unwrap();
    task.await.unwrap();
    db.drop_database().await;
}
