//! Shared test setup: a broker (librdkafka's mock cluster, or KAFKA_BROKERS), a database with a
//! running writer, a workload, and a reader of topics.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use ledger_core::ledger::Command;
use ledger_core::{
    AccountId, AccountKind, AccountRef, BalanceLimit, CreateTransfer, CurrencyCode, OpenAccount, TransferId,
};
use ledger_store::{EventMeta, LedgerHandle, RecordedEvent, Writer, WriterConfig};
use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rust_decimal::Decimal;
use test_support::{TestDatabase, fresh_database};
use uuid::Uuid;

pub struct Broker {
    pub mock: Option<MockCluster<'static, DefaultProducerContext>>,
    pub brokers: String,
}

impl Broker {
    /// KAFKA_BROKERS when set, else a private in-process mock cluster.
    pub fn any() -> Broker {
        match std::env::var("KAFKA_BROKERS") {
            Ok(brokers) if !brokers.is_empty() => Broker { mock: None, brokers },
            _ => Broker::mock(),
        }
    }

    /// Always a mock cluster of one broker (for outages a test causes itself).
    pub fn mock() -> Broker {
        let mock = MockCluster::new(1).expect("librdkafka mock cluster");
        Broker { brokers: mock.bootstrap_servers(), mock: Some(mock) }
    }

    /// Creates topics with three partitions (a real broker creates them on first use).
    pub fn create_topics(&self, names: &[&str]) {
        if let Some(mock) = &self.mock {
            for name in names {
                mock.create_topic(name, 3, 1).expect("create topic");
            }
        }
    }
}

/// A unique topic prefix per test, so tests never read each other's messages.
pub fn prefix() -> String {
    format!("t{}", Uuid::new_v4().simple())
}

pub struct Ledger {
    pub db: TestDatabase,
    pub handle: LedgerHandle,
    pub task: tokio::task::JoinHandle<()>,
}

pub async fn ledger() -> Ledger {
    let db = fresh_database().await;
    let (handle, task) = Writer::start(&db.url, WriterConfig::default()).await.unwrap();
    Ledger { db, handle, task }
}

pub fn eur() -> CurrencyCode {
    CurrencyCode::parse("EUR").unwrap()
}

pub async fn open(ledger: &LedgerHandle, code: &str, kind: AccountKind, limit: BalanceLimit) -> AccountId {
    let id = AccountId(Uuid::new_v4());
    let open = OpenAccount { id, code: code.to_owned(), currency: eur(), kind, limit, metadata: serde_json::json!({}) };
    ledger.submit(Command::OpenAccount(open), EventMeta::default()).await.unwrap().unwrap();
    id
}

pub async fn submit(ledger: &LedgerHandle, command: Command) {
    ledger.submit(command, EventMeta { channel: Some("test".into()), ..EventMeta::default() }).await.unwrap().unwrap();
}

/// Deposits, holds posted in part, voided holds, a reversal, a freeze with a reason.
pub async fn workload(ledger: &LedgerHandle, round: usize) {
    let cash = open(ledger, &format!("cash:{round}"), AccountKind::Asset, BalanceLimit::None).await;
    let fees = open(ledger, &format!("fees:{round}"), AccountKind::Income, BalanceLimit::None).await;
    let mut players = Vec::new();
    for p in 0..4 {
        let code = format!("player:{round}:{p}");
        players.push(open(ledger, &code, AccountKind::Liability, BalanceLimit::DebitsMustNotExceedCredits).await);
    }
    let id = |a: AccountId| AccountRef::Id(a);
    for (i, player) in players.iter().enumerate() {
        for n in 1..=5 {
            let amount = Decimal::new((i * 100 + n * 7) as i64, 2);
            let t = CreateTransfer::simple(TransferId(Uuid::new_v4()), id(cash), id(*player), amount);
            submit(ledger, Command::CreateTransfer(t)).await;
        }
        let hold = TransferId(Uuid::new_v4());
        let t = CreateTransfer {
            pending: true,
            timeout_seconds: Some(3600),
            ..CreateTransfer::simple(hold, id(*player), id(fees), Decimal::new(50, 2))
        };
        submit(ledger, Command::CreateTransfer(t)).await;
        if i % 2 == 0 {
            submit(ledger, Command::PostPendingTransfer { pending_id: hold, amount: Some(Decimal::new(30, 2)) }).await;
        } else {
            submit(ledger, Command::VoidPendingTransfer { pending_id: hold }).await;
        }
    }
    let reversed = TransferId(Uuid::new_v4());
    let t = CreateTransfer::simple(reversed, id(cash), id(players[0]), Decimal::new(123, 2));
    submit(ledger, Command::CreateTransfer(t)).await;
    let reverse = Command::ReverseTransfer {
        id: TransferId(Uuid::new_v4()),
        transfer_id: reversed,
        metadata: serde_json::json!({}),
    };
    submit(ledger, reverse).await;
    submit(ledger, Command::FreezeAccount { id: players[3], reason: Some("chargeback dispute".into()) }).await;
}

pub async fn all_events(db: &TestDatabase) -> Vec<RecordedEvent> {
    let mut conn = db.connect().await;
    let mut all = Vec::new();
    loop {
        let after = all.last().map_or(0, |r: &RecordedEvent| r.position);
        let page = ledger_store::sql::events_page(&mut conn, after, 1000).await.unwrap();
        if page.is_empty() {
            return all;
        }
        all.extend(page);
    }
}

/// One consumed message.
#[derive(Debug, Clone)]
pub struct Received {
    pub key: Option<String>,
    pub partition: i32,
    pub offset: i64,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Reads `topic` from the start until `done` holds for what was read, or `timeout` passes.
pub async fn read_until(
    brokers: &str,
    topic: &str,
    timeout: Duration,
    done: impl Fn(&[Received]) -> bool,
) -> Vec<Received> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("reader-{}", Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    while !done(&out) && Instant::now() < deadline {
        let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(500), consumer.recv()).await else { continue };
        let headers = m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_owned(), String::from_utf8_lossy(h.value.unwrap_or_default()).into()))
                    .collect()
            })
            .unwrap_or_default();
        out.push(Received {
            key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
            partition: m.partition(),
            offset: m.offset(),
            payload: m.payload().unwrap_or_default().to_vec(),
            headers,
        });
    }
    out
}

/// The distinct event ids among received envelopes.
pub fn distinct_ids(received: &[Received]) -> HashSet<String> {
    received.iter().filter_map(|r| r.header("event_id").map(str::to_owned)).collect()
}

/// Waits until `check` holds, polling every 50 ms, for at most `timeout`.
pub async fn eventually<F: std::future::Future<Output = bool>>(
    timeout: Duration,
    mut check: impl FnMut() -> F,
) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}
