//! The webhook engine against a real Postgres and a receiver on loopback: messages made from the
//! log, signed so the verifier accepts them, retried on the schedule, failed (and audited) after
//! it, sent again on request, and a slow receiver not holding up another. `callbacks`: the
//! endpoints P2P stores own, and their orders' signed callbacks.

#[path = "delivery/callbacks.rs"]
mod callbacks;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use ledger_core::audit::{Entry, Level};
use ledger_store::config::RuntimeConfig;
use ledger_store::follow::FollowConfig;
use ledger_store::{EventMeta, LedgerHandle, Writer, WriterConfig};
use outbound::webhooks::{Verifier, WebhookSecret};
use serde_json::{Value, json};
use test_support::{TestDatabase, fresh_database};
use tokio::sync::watch;
use uuid::Uuid;
use webhooks::{Deliverer, DeliveryConfig, Fanout, Metrics, NewEndpoint, Store};

/// What a receiver got: the headers and body of each request, in arrival order.
#[derive(Clone, Debug)]
struct Received {
    headers: HeaderMap,
    body: Vec<u8>,
    at: Instant,
}

/// How a receiver answers the n-th request (from 1) for one message id.
type Behaviour = Arc<dyn Fn(usize) -> (StatusCode, Duration) + Send + Sync>;

#[derive(Clone)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    behaviour: Arc<Mutex<Behaviour>>,
    url: String,
}

impl Receiver {
    async fn start(behaviour: Behaviour) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let receiver = Receiver { got: Arc::default(), behaviour: Arc::new(Mutex::new(behaviour)), url };
        let app = axum::Router::new().route("/hook", axum::routing::post(receive)).with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        receiver
    }

    fn answer(&self, behaviour: Behaviour) {
        *self.behaviour.lock().unwrap() = behaviour;
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Waits until `done` holds for what arrived.
    async fn wait(&self, within: Duration, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.got();
            if done(&got) {
                return got;
            }
            assert!(Instant::now() < deadline, "the receiver got {} requests: {:?}", got.len(), bodies(&got));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: axum::body::Bytes) -> StatusCode {
    let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let nth = {
        let mut got = r.got.lock().unwrap();
        got.push(Received { headers: headers.clone(), body: body.to_vec(), at: Instant::now() });
        got.iter().filter(|g| g.headers.get("webhook-id").and_then(|v| v.to_str().ok()) == Some(&id)).count()
    };
    let behaviour = r.behaviour.lock().unwrap().clone();
    let (status, delay) = behaviour(nth);
    tokio::time::sleep(delay).await;
    status
}

fn ok() -> Behaviour {
    Arc::new(|_| (StatusCode::OK, Duration::ZERO))
}

fn bodies(got: &[Received]) -> Vec<Value> {
    got.iter().map(|g| serde_json::from_slice(&g.body).unwrap()).collect()
}

fn header<'a>(r: &'a Received, name: &str) -> &'a str {
    r.headers.get(name).unwrap().to_str().unwrap()
}

/// The engine's parts over one database: writer, fan-out follower, delivery engine.
struct Engine {
    db: TestDatabase,
    ledger: LedgerHandle,
    writer: tokio::task::JoinHandle<()>,
    store: Store,
    /// The secrets key the store seals with (a store's callback secret is sealed with it).
    keys: Arc<dyn secrets::KeyProvider>,
    metrics: Arc<Metrics>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

async fn engine(schedule: &[u64], timeout: Duration) -> Engine {
    let db = fresh_database().await;
    let (ledger, writer) = Writer::start(&db.url, WriterConfig::default()).await.unwrap();
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let mut file = BTreeMap::new();
    file.insert(ledger_core::webhook::ALLOW_PRIVATE_KEY.to_owned(), json!(true));
    file.insert(ledger_core::webhook::RETRY_SCHEDULE_KEY.to_owned(), json!(schedule));
    let config = RuntimeConfig::detached(file).unwrap();
    let keys: Arc<dyn secrets::KeyProvider> = Arc::new(secrets::LocalKeys::random("test-1").unwrap());
    let store = Store::new(pool, keys.clone());
    let client =
        outbound::Client::new(outbound::ClientConfig { timeout, ..webhooks::deliver::client_config() }).unwrap();
    let metrics = Arc::new(Metrics::default());
    let (stop, stopped) = watch::channel(false);
    let follow = FollowConfig {
        page: webhooks::fanout::WINDOW as usize,
        poll: Duration::from_millis(100),
        ..Default::default()
    };
    let (url, rx, cfg) = (db.url.clone(), stopped.clone(), config.clone());
    let fanout =
        tokio::spawn(async move { ledger_store::follow::run(&url, &mut Fanout::new(cfg), follow, rx, None).await });
    let settings = DeliveryConfig { poll: Duration::from_millis(100), ..Default::default() };
    let auditor = ledger_store::audit::Auditor::new(ledger.clone());
    let deliverer = Deliverer::new(store.clone(), client, config, Some(auditor), metrics.clone(), settings);
    let delivery = tokio::spawn(deliverer.run(db.url.clone(), stopped));
    Engine { db, ledger, writer, store, keys, metrics, stop, tasks: vec![fanout, delivery] }
}

impl Engine {
    async fn endpoint(&self, url: &str, types: &[&str]) -> (Uuid, WebhookSecret) {
        let new = NewEndpoint {
            url: url.to_owned(),
            event_types: types.iter().map(|t| (*t).to_owned()).collect(),
            description: Some("test".into()),
        };
        let (endpoint, secret) = self.store.create(new, true).await.unwrap();
        (endpoint.id, secret)
    }

    /// Records an audit entry: an event of type `audit.{level}`.
    async fn event(&self, level: Level, subject: &str) {
        let entry = Entry {
            id: Uuid::new_v4(),
            level,
            action: "test.act".into(),
            subject: subject.into(),
            before: None,
            after: None,
            reason: None,
        };
        ledger_store::audit::Auditor::new(self.ledger.clone()).record(entry, EventMeta::default()).await.unwrap();
    }

    async fn status(&self, message: Uuid) -> String {
        self.store.message(message).await.unwrap().unwrap().status
    }

    async fn wait_status(&self, message: Uuid, status: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while self.status(message).await != status {
            assert!(Instant::now() < deadline, "message {message} is {} not {status}", self.status(message).await);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stop(self) {
        self.stop.send(true).unwrap();
        for task in self.tasks {
            task.await.unwrap();
        }
        drop(self.ledger);
        self.writer.await.unwrap();
        self.store.pool().close().await;
        self.db.drop_database().await;
    }
}

fn id_of(r: &Received) -> Uuid {
    header(r, "webhook-id").parse().unwrap()
}

#[tokio::test]
async fn messages_are_made_for_what_an_endpoint_asks_signed_and_delivered_once() {
    let e = engine(&[1], Duration::from_secs(10)).await;
    // Before the endpoint exists: never sent to it.
    e.event(Level::Info, "before").await;
    let receiver = Receiver::start(ok()).await;
    let (endpoint, secret) = e.endpoint(&receiver.url, &["audit.warning", "audit.critical"]).await;
    assert!(secret.expose().starts_with("whsec_"));
    e.event(Level::Info, "not asked for").await;
    e.event(Level::Warning, "w1").await;
    e.event(Level::Critical, "c1").await;
    receiver.wait(Duration::from_secs(10), |g| g.len() >= 2).await;
    // Nothing more comes: not the entry from before the endpoint, nor the one not asked for.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = receiver.got();
    assert_eq!(got.len(), 2, "{:?}", bodies(&got));
    let verifier = Verifier::new(secret);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut types = Vec::new();
    let mut positions = Vec::new();
    for r in &got {
        let verified = verifier.verify(&r.headers, &r.body, now).expect("the reference verifier accepts it");
        assert_eq!(verified.id, header(r, "webhook-id"));
        assert_eq!(header(r, "content-type"), "application/json");
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body.as_object().unwrap().keys().collect::<Vec<_>>(), ["data", "position", "timestamp", "type"]);
        time::OffsetDateTime::parse(
            body["timestamp"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        assert_eq!(body["data"]["entry"]["action"], "test.act");
        types.push(body["type"].as_str().unwrap().to_owned());
        positions.push(body["position"].as_i64().unwrap());
        let message = e.store.message(id_of(r)).await.unwrap().unwrap();
        assert_eq!(message.endpoint_id, endpoint);
        assert_eq!(message.position, body["position"].as_i64().unwrap());
        e.wait_status(message.id, "delivered", Duration::from_secs(5)).await;
    }
    types.sort();
    assert_eq!(types, ["audit.critical", "audit.warning"]);
    assert!(positions[0] != positions[1]);
    let attempts = e.store.attempts(endpoint, None, 10).await.unwrap();
    assert_eq!(attempts.len(), 2);
    assert!(attempts.iter().all(|a| a.status_code == Some(200) && a.attempt == 1 && a.error.is_none()));
    assert_eq!(e.metrics.delivered.load(std::sync::atomic::Ordering::Relaxed), 2);
    // The secret is stored sealed, never in clear.
    let stored: Value =
        sqlx::query_scalar("SELECT secret FROM webhook_endpoints").fetch_one(e.store.pool()).await.unwrap();
    assert!(!stored.to_string().contains("whsec_"));
    assert!(stored.get("ciphertext").is_some());
    e.stop().await;
}

#[tokio::test]
async fn failures_are_retried_on_the_schedule_with_the_same_id_and_a_new_signature() {
    let e = engine(&[1, 1, 1], Duration::from_secs(10)).await;
    let receiver = Receiver::start(Arc::new(|n| {
        (if n < 3 { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::NO_CONTENT }, Duration::ZERO)
    }))
    .await;
    let (endpoint, secret) = e.endpoint(&receiver.url, &["*"]).await;
    e.event(Level::Info, "x").await;
    let got = receiver.wait(Duration::from_secs(15), |g| g.len() >= 3).await;
    let id = id_of(&got[0]);
    assert!(got.iter().all(|r| id_of(r) == id), "one message, three attempts");
    assert!(got[1].at - got[0].at >= Duration::from_millis(900), "the schedule's delay is kept");
    let verifier = Verifier::new(secret);
    for r in &got {
        let ts: i64 = header(r, "webhook-timestamp").parse().unwrap();
        verifier.verify(&r.headers, &r.body, ts).unwrap();
    }
    assert_eq!(got[0].body, got[2].body, "the same body on every attempt");
    e.wait_status(id, "delivered", Duration::from_secs(5)).await;
    let attempts = e.store.attempts(endpoint, None, 10).await.unwrap();
    let mut codes: Vec<(i32, Option<i32>)> = attempts.iter().map(|a| (a.attempt, a.status_code)).collect();
    codes.sort();
    assert_eq!(codes, [(1, Some(500)), (2, Some(500)), (3, Some(204))]);
    assert_eq!(attempts.iter().find(|a| a.attempt == 1).unwrap().error.as_deref(), Some("answered 500"));
    // The listing pages on from its cursor, newest first.
    let first = e.store.attempts(endpoint, None, 1).await.unwrap();
    let rest = e.store.attempts(endpoint, Some(&first[0].cursor()), 10).await.unwrap();
    assert_eq!(first.len() + rest.len(), 3);
    assert!(rest.iter().all(|a| a.at <= first[0].at));
    e.stop().await;
}

#[tokio::test]
async fn a_message_fails_after_the_schedule_is_audited_and_is_sent_again_on_request() {
    let e = engine(&[1], Duration::from_millis(500)).await;
    // Refused, then timed out: both count as failures.
    let receiver = Receiver::start(Arc::new(|n| {
        if n == 1 {
            (StatusCode::SERVICE_UNAVAILABLE, Duration::ZERO)
        } else {
            (StatusCode::OK, Duration::from_secs(2))
        }
    }))
    .await;
    let (endpoint, _) = e.endpoint(&receiver.url, &["audit.info"]).await;
    let since = time::OffsetDateTime::now_utc() - time::Duration::seconds(1);
    e.event(Level::Info, "x").await;
    let got = receiver.wait(Duration::from_secs(10), |g| g.len() >= 2).await;
    let id = id_of(&got[0]);
    e.wait_status(id, "failed", Duration::from_secs(10)).await;
    let attempts = e.store.attempts(endpoint, None, 10).await.unwrap();
    let timed_out = attempts.iter().find(|a| a.attempt == 2).unwrap();
    assert_eq!(timed_out.status_code, None);
    assert!(timed_out.error.as_deref().unwrap().contains("did not answer within 500 ms"), "{timed_out:?}");
    // The audit warning names the message and its endpoint, and is not sent to that endpoint
    // (it asked for audit.info only, but not even with "*" would it be).
    let deadline = Instant::now() + Duration::from_secs(5);
    let entry: Value = loop {
        let found: Option<sqlx::types::Json<Value>> = sqlx::query_scalar(
            "SELECT payload::jsonb FROM events WHERE event_type = 'AuditRecorded' \
             AND payload::jsonb #>> '{entry,action}' = 'webhooks.failed'",
        )
        .fetch_optional(e.store.pool())
        .await
        .unwrap();
        if let Some(found) = found {
            break found.0;
        }
        assert!(Instant::now() < deadline, "no audit entry of the failure");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(entry["entry"]["level"], "warning");
    assert_eq!(entry["entry"]["subject"], id.to_string());
    assert_eq!(entry["entry"]["after"]["endpoint_id"], endpoint.to_string());
    assert_eq!(entry["entry"]["after"]["attempts"], 2);
    // Sent again on request: one more attempt, now answered at once.
    receiver.answer(ok());
    assert_eq!(e.store.retry(id).await.unwrap(), Some(true));
    e.wait_status(id, "delivered", Duration::from_secs(5)).await;
    assert_eq!(e.store.retry(Uuid::new_v4()).await.unwrap(), None);
    // Recovery sends every failed message since a time.
    receiver.answer(Arc::new(|_| (StatusCode::BAD_GATEWAY, Duration::ZERO)));
    e.event(Level::Info, "y").await;
    e.event(Level::Info, "z").await;
    let failed: Vec<Uuid> = loop {
        let ids: Vec<Uuid> =
            sqlx::query_scalar("SELECT id FROM webhook_messages WHERE status = 'failed' ORDER BY position")
                .fetch_all(e.store.pool())
                .await
                .unwrap();
        if ids.len() == 2 {
            break ids;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    receiver.answer(ok());
    assert_eq!(e.store.recover(endpoint, since).await.unwrap(), Some(2));
    for id in failed {
        e.wait_status(id, "delivered", Duration::from_secs(5)).await;
    }
    assert_eq!(e.store.recover(Uuid::new_v4(), since).await.unwrap(), None);
    e.stop().await;
}

#[tokio::test]
async fn a_slow_receiver_does_not_delay_another() {
    let e = engine(&[1], Duration::from_secs(10)).await;
    let slow = Receiver::start(Arc::new(|_| (StatusCode::OK, Duration::from_secs(3)))).await;
    let fast = Receiver::start(ok()).await;
    e.endpoint(&slow.url, &["*"]).await;
    e.endpoint(&fast.url, &["*"]).await;
    let started = Instant::now();
    for i in 0..40 {
        e.event(Level::Info, &format!("e{i}")).await;
    }
    fast.wait(Duration::from_secs(3), |g| g.len() >= 40).await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "the fast receiver waited {took:?}");
    assert!(slow.got().len() < 40, "the slow one is still at it");
    e.stop().await;
}

#[tokio::test]
async fn endpoints_are_checked_listed_rotated_and_deleted() {
    let e = engine(&[1], Duration::from_secs(10)).await;
    let new = |url: &str, types: &[&str]| NewEndpoint {
        url: url.into(),
        event_types: types.iter().map(|t| (*t).to_owned()).collect(),
        description: None,
    };
    let refused = e.store.create(new("http://127.0.0.1:9/x", &["*"]), false).await.unwrap_err();
    assert!(matches!(refused, webhooks::StoreError::NotAllowed(_)), "{refused:?}");
    let refused = e.store.create(new("https://127.0.0.1:9/x", &["*"]), false).await.unwrap_err();
    assert!(matches!(refused, webhooks::StoreError::NotAllowed(_)), "{refused:?}");
    let refused = e.store.create(new("https://localhost/x", &["*"]), false).await.unwrap_err();
    assert!(matches!(refused, webhooks::StoreError::NotAllowed(_)), "{refused:?}");
    let refused = e.store.create(new("http://127.0.0.1:9/x", &["nope.nope"]), true).await.unwrap_err();
    assert!(matches!(refused, webhooks::StoreError::Filter(_)), "{refused:?}");
    let receiver = Receiver::start(ok()).await;
    let (id, first) = e.endpoint(&receiver.url, &["audit.*"]).await;
    assert_eq!(e.store.list().await.unwrap().iter().map(|x| x.id).collect::<Vec<_>>(), [id]);
    let second = e.store.rotate(id).await.unwrap().unwrap();
    assert_ne!(first.expose(), second.expose());
    // Both secrets sign while the old one overlaps.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    e.event(Level::Info, "after rotation").await;
    let got = receiver.wait(Duration::from_secs(5), |g| !g.is_empty()).await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    Verifier::new(second).verify(&got[0].headers, &got[0].body, now).unwrap();
    Verifier::new(first).verify(&got[0].headers, &got[0].body, now).unwrap();
    assert_eq!(header(&got[0], "webhook-signature").split(' ').count(), 2);
    assert!(e.store.delete(id).await.unwrap());
    assert!(!e.store.delete(id).await.unwrap());
    assert_eq!(e.store.get(id).await.unwrap(), None);
    assert!(e.store.rotate(id).await.unwrap().is_none());
    e.stop().await;
}
