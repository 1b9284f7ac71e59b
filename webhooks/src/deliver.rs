//! The delivery engine: sends due messages to their endpoints, signs each attempt, records it,
//! and schedules the next one or gives up.
//!
//! One engine per database delivers (an advisory lock; another process's waits as a standby).
//! A dispatcher claims due messages (`next_at` passed) that are not already on their way and
//! hands each to its endpoint's queue; each endpoint sends at most `per_endpoint` at a time, so
//! a slow or dead receiver holds up only its own messages. After each attempt one statement
//! records it and moves the message on: `delivered` on a 2xx; else `pending` again after the
//! next delay of the schedule (`webhooks.retry_schedule`, read at that moment), or `failed`
//! once the schedule is spent (an audit warning). A crash loses nothing: what was not recorded
//! as delivered is still pending and goes again, with the same `webhook-id`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ledger_core::webhook;
use ledger_store::config::RuntimeConfig;
use outbound::webhooks::{HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, WebhookSecret, sign};
use sqlx::postgres::PgListener;
use sqlx::{Connection, PgConnection, PgPool, Row};
use time::OffsetDateTime;
use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tracing::{info, warn};
use uuid::Uuid;

use crate::store::{CHANNEL, Store};

/// The audit action of a message that ended undelivered.
pub const FAILED_ACTION: &str = "webhooks.failed";
const LOCK_KEY: i64 = 0x6c65_6467_6572_0401;
/// An endpoint's queue without messages for this long ends.
const QUEUE_IDLE: Duration = Duration::from_secs(60);
/// The longest error text kept with an attempt.
const MAX_ERROR_CHARS: usize = 300;

/// How the engine runs.
#[derive(Clone, Copy, Debug)]
pub struct DeliveryConfig {
    /// Attempts under way at once per endpoint.
    pub per_endpoint: usize,
    /// Messages on their way (claimed, not yet recorded) per endpoint, at most.
    pub queue_per_endpoint: usize,
    /// Messages claimed per round, at most.
    pub claim: i64,
    /// Look for due messages this often without a notification (retries come due by time).
    pub poll: Duration,
    /// A standby looks for the lock this often.
    pub standby_poll: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            per_endpoint: 8,
            queue_per_endpoint: 256,
            claim: 512,
            poll: Duration::from_millis(500),
            standby_poll: Duration::from_secs(5),
        }
    }
}

/// The client every attempt goes through: 10 s in all, answers read up to 64 KiB, no redirects.
pub fn client_config() -> outbound::ClientConfig {
    outbound::ClientConfig {
        connect_timeout: Duration::from_secs(5),
        timeout: Duration::from_secs(10),
        max_body_bytes: 64 * 1024,
        extra_root_ca_pem: None,
        // Whether plain http:// is allowed is the endpoint's rule (`webhooks.allow_private`).
        allow_http: true,
    }
}

/// What `/metrics` and `/healthz` tell of deliveries.
#[derive(Debug, Default)]
pub struct Metrics {
    pub delivered: AtomicU64,
    /// Attempts that failed and will be tried again.
    pub retried: AtomicU64,
    /// Messages that ended undelivered.
    pub failed: AtomicU64,
    /// Every attempt's latency, summed, in microseconds, and their count.
    pub latency_micros: AtomicU64,
    pub attempts: AtomicU64,
    /// Whether this process is the one delivering (else a standby).
    pub active: AtomicBool,
    /// Pending messages per endpoint, as last counted.
    pub depth: Mutex<Vec<(Uuid, i64)>>,
}

/// Where an endpoint's messages go and what signs them.
struct Target {
    /// None: an owned endpoint without a URL of its own (its messages name theirs).
    url: Option<String>,
    secret: WebhookSecret,
    /// The secret before a rotation, while it still signs.
    previous: Option<WebhookSecret>,
}

/// A claimed message.
struct Job {
    id: Uuid,
    endpoint: Uuid,
    /// Where it goes instead of its endpoint's URL (an order's own callback URL).
    url: Option<String>,
    body: Bytes,
    attempts: i32,
    retries_left: i32,
    position: i64,
    event_type: String,
}

/// The engine.
pub struct Deliverer {
    store: Store,
    client: outbound::Client,
    config: RuntimeConfig,
    auditor: Option<ledger_store::audit::Auditor>,
    metrics: Arc<Metrics>,
    settings: DeliveryConfig,
}

/// What the dispatcher and the attempts share.
struct Shared {
    deliverer: Deliverer,
    targets: Mutex<HashMap<Uuid, Arc<Target>>>,
    /// Messages on their way, by endpoint.
    in_flight: Mutex<HashMap<Uuid, HashSet<Uuid>>>,
    /// An attempt finished: room for more.
    finished: Notify,
    /// Each endpoint's queue.
    queues: Mutex<HashMap<Uuid, mpsc::UnboundedSender<Job>>>,
}

impl Deliverer {
    pub fn new(
        store: Store,
        client: outbound::Client,
        config: RuntimeConfig,
        auditor: Option<ledger_store::audit::Auditor>,
        metrics: Arc<Metrics>,
        settings: DeliveryConfig,
    ) -> Deliverer {
        Deliverer { store, client, config, auditor, metrics, settings }
    }

    /// Delivers until `stop` turns true; as a standby while another process holds the lock.
    pub async fn run(self, url: String, mut stop: watch::Receiver<bool>) {
        let settings = self.settings;
        let metrics = self.metrics.clone();
        let shared = Arc::new(Shared {
            deliverer: self,
            targets: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashMap::new()),
            finished: Notify::new(),
            queues: Mutex::new(HashMap::new()),
        });
        while !*stop.borrow() {
            match lead(&url, &shared, &mut stop).await {
                Ok(true) => {}
                Ok(false) => {
                    metrics.active.store(false, Ordering::Relaxed);
                    tokio::select! {
                        () = tokio::time::sleep(settings.standby_poll) => {}
                        _ = stop.changed() => {}
                    }
                }
                Err(e) => {
                    metrics.active.store(false, Ordering::Relaxed);
                    warn!(error = %e, "webhook delivery paused; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = stop.changed() => {}
                    }
                }
            }
        }
        metrics.active.store(false, Ordering::Relaxed);
        // The queues end with their senders (attempts under way finish first).
        shared.queues.lock().expect("never poisoned").clear();
    }
}

/// Holds the lock and dispatches until stopped (`Ok(true)`), or answers `Ok(false)` at once when
/// another process holds it.
async fn lead(url: &str, shared: &Arc<Shared>, stop: &mut watch::Receiver<bool>) -> Result<bool, sqlx::Error> {
    let mut lock = PgConnection::connect(url).await?;
    let held: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)").bind(LOCK_KEY).fetch_one(&mut lock).await?;
    if !held {
        return Ok(false);
    }
    let mut listener = PgListener::connect(url).await?;
    listener.listen(CHANNEL).await?;
    let me = &shared.deliverer;
    me.metrics.active.store(true, Ordering::Relaxed);
    info!("delivering webhooks");
    let mut refreshed: Option<Instant> = None;
    let mut counted: Option<Instant> = None;
    loop {
        if *stop.borrow() {
            return Ok(true);
        }
        if refreshed.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
            refresh_targets(shared).await?;
            refreshed = Some(Instant::now());
        }
        if counted.is_none_or(|t| t.elapsed() >= Duration::from_secs(5)) {
            count_depth(me.store.pool(), &me.metrics).await?;
            counted = Some(Instant::now());
        }
        // The lock's connection still answers: the lock is still ours.
        sqlx::query("SELECT 1").execute(&mut lock).await?;
        let claimed = dispatch(shared).await?;
        if claimed as i64 >= me.settings.claim {
            continue;
        }
        tokio::select! {
            notification = listener.recv() => { notification?; }
            () = shared.finished.notified() => {}
            () = tokio::time::sleep(me.settings.poll) => {}
            _ = stop.changed() => return Ok(true),
        }
        // Let a burst of commits or finished attempts gather into one round.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Opens every endpoint's secrets (a rotation, a new or deleted endpoint is seen within a second).
async fn refresh_targets(shared: &Shared) -> Result<(), sqlx::Error> {
    let store = &shared.deliverer.store;
    let rows = sqlx::query(
        "SELECT id, url, secret, CASE WHEN previous_until > now() THEN previous_secret END AS previous \
         FROM webhook_endpoints WHERE deleted_at IS NULL",
    )
    .fetch_all(store.pool())
    .await?;
    let mut targets = HashMap::with_capacity(rows.len());
    for row in rows {
        let id: Uuid = row.try_get("id")?;
        let secret: serde_json::Value = row.try_get("secret")?;
        let previous: Option<serde_json::Value> = row.try_get("previous")?;
        match store.open(id, &secret) {
            Ok(secret) => {
                let previous = previous.and_then(|p| store.open(id, &p).ok());
                targets.insert(id, Arc::new(Target { url: row.try_get("url")?, secret, previous }));
            }
            // Its messages wait (a key missing from this process's secrets key set).
            Err(e) => warn!(endpoint = %id, error = %e, "a webhook endpoint's secret cannot be opened"),
        }
    }
    *shared.targets.lock().expect("never poisoned") = targets;
    Ok(())
}

async fn count_depth(pool: &PgPool, metrics: &Metrics) -> Result<(), sqlx::Error> {
    let rows: Vec<(Uuid, i64)> = sqlx::query_as(
        "SELECT endpoint_id, count(*) FROM webhook_messages WHERE status = 'pending' GROUP BY endpoint_id \
         ORDER BY endpoint_id",
    )
    .fetch_all(pool)
    .await?;
    *metrics.depth.lock().expect("never poisoned") = rows;
    Ok(())
}

/// Claims due messages not on their way yet and starts their attempts; gives how many.
async fn dispatch(shared: &Arc<Shared>) -> Result<usize, sqlx::Error> {
    let me = &shared.deliverer;
    let (going, busy): (Vec<Uuid>, Vec<Uuid>) = {
        let in_flight = shared.in_flight.lock().expect("never poisoned");
        let going = in_flight.values().flatten().copied().collect();
        let busy = in_flight
            .iter()
            .filter(|(_, ids)| ids.len() >= me.settings.queue_per_endpoint)
            .map(|(endpoint, _)| *endpoint)
            .collect();
        (going, busy)
    };
    let rows = sqlx::query(
        "SELECT id, endpoint_id, url, body, attempts, retries_left, position, event_type FROM webhook_messages \
         WHERE status = 'pending' AND next_at <= now() AND id <> ALL($1) AND endpoint_id <> ALL($2) \
         ORDER BY next_at LIMIT $3",
    )
    .bind(&going)
    .bind(&busy)
    .bind(me.settings.claim)
    .fetch_all(me.store.pool())
    .await?;
    let mut started = 0;
    for row in rows {
        let job = Job {
            id: row.try_get("id")?,
            endpoint: row.try_get("endpoint_id")?,
            url: row.try_get("url")?,
            body: Bytes::from(row.try_get::<String, _>("body")?),
            attempts: row.try_get("attempts")?,
            retries_left: row.try_get("retries_left")?,
            position: row.try_get("position")?,
            event_type: row.try_get("event_type")?,
        };
        {
            let mut in_flight = shared.in_flight.lock().expect("never poisoned");
            let ids = in_flight.entry(job.endpoint).or_default();
            if ids.len() >= me.settings.queue_per_endpoint {
                continue;
            }
            ids.insert(job.id);
        }
        started += 1;
        queue(shared, job);
    }
    Ok(started)
}

/// Each endpoint's queue: a task that starts at most `per_endpoint` attempts at a time, and
/// ends after a minute without messages.
fn queue(shared: &Arc<Shared>, job: Job) {
    let mut queues = shared.queues.lock().expect("never poisoned");
    let endpoint = job.endpoint;
    let job = match queues.get(&endpoint) {
        Some(tx) => match tx.send(job) {
            Ok(()) => return,
            // Its task ended: a new one takes over.
            Err(mpsc::error::SendError(job)) => job,
        },
        None => job,
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
    let _ = tx.send(job);
    queues.insert(endpoint, tx);
    let shared = shared.clone();
    tokio::spawn(async move {
        let permits = Arc::new(Semaphore::new(shared.deliverer.settings.per_endpoint));
        loop {
            let job = match tokio::time::timeout(QUEUE_IDLE, rx.recv()).await {
                Ok(Some(job)) => job,
                Ok(None) => return,
                Err(_) => {
                    // Under the map's lock no message can arrive meanwhile.
                    let mut queues = shared.queues.lock().expect("never poisoned");
                    if rx.is_empty() {
                        queues.remove(&endpoint);
                        return;
                    }
                    continue;
                }
            };
            let Ok(permit) = permits.clone().acquire_owned().await else { return };
            let shared = shared.clone();
            tokio::spawn(async move {
                let id = job.id;
                if let Err(e) = attempt(&shared, job).await {
                    warn!(message = %id, error = %e, "a webhook attempt was not recorded; it will be made again");
                }
                if let Some(ids) = shared.in_flight.lock().expect("never poisoned").get_mut(&endpoint) {
                    ids.remove(&id);
                }
                drop(permit);
                shared.finished.notify_one();
            });
        }
    });
}

/// What came of one attempt.
struct Outcome {
    status_code: Option<i32>,
    error: Option<String>,
    delivered: bool,
}

/// Sends one message once, records the attempt and what follows from it.
async fn attempt(shared: &Shared, job: Job) -> Result<(), sqlx::Error> {
    let me = &shared.deliverer;
    let target = shared.targets.lock().expect("never poisoned").get(&job.endpoint).cloned();
    let Some(target) = target else {
        // Deleted (its pending messages failed with it), or its secret cannot be opened yet.
        return Ok(());
    };
    let started = Instant::now();
    let at = OffsetDateTime::now_utc();
    let outcome = send(me, &target, &job, at.unix_timestamp()).await;
    let latency = started.elapsed();
    me.metrics.attempts.fetch_add(1, Ordering::Relaxed);
    me.metrics.latency_micros.fetch_add(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
    let attempt = job.attempts + 1;
    let (status, next_at, retries_left) = if outcome.delivered {
        ("delivered", at, job.retries_left)
    } else {
        let schedule = webhook::schedule(&me.config.get(webhook::RETRY_SCHEDULE_KEY));
        match webhook::next_delay(&schedule, u32::try_from(job.retries_left).unwrap_or(0)) {
            Some(delay) => ("pending", OffsetDateTime::now_utc() + Duration::from_secs(delay), job.retries_left - 1),
            None => ("failed", at, 0),
        }
    };
    sqlx::query(
        "WITH attempt AS ( \
           INSERT INTO webhook_attempts (message_id, attempt, endpoint_id, at, status_code, latency_ms, error) \
           VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING) \
         UPDATE webhook_messages SET attempts = $2, status = $8, next_at = $9, retries_left = $10, \
           finished_at = CASE WHEN $8 = 'pending' THEN NULL ELSE now() END \
         WHERE id = $1 AND status = 'pending'",
    )
    .bind(job.id)
    .bind(attempt)
    .bind(job.endpoint)
    .bind(at)
    .bind(outcome.status_code)
    .bind(i32::try_from(latency.as_millis()).unwrap_or(i32::MAX))
    .bind(&outcome.error)
    .bind(status)
    .bind(next_at)
    .bind(retries_left)
    .execute(me.store.pool())
    .await?;
    match status {
        "delivered" => {
            me.metrics.delivered.fetch_add(1, Ordering::Relaxed);
        }
        "pending" => {
            me.metrics.retried.fetch_add(1, Ordering::Relaxed);
        }
        _ => {
            me.metrics.failed.fetch_add(1, Ordering::Relaxed);
            warn!(message = %job.id, endpoint = %job.endpoint, attempts = attempt, "a webhook message ended undelivered");
            audit_failure(me, &job, attempt, &outcome).await;
        }
    }
    Ok(())
}

/// One signed POST of the message.
async fn send(me: &Deliverer, target: &Target, job: &Job, timestamp: i64) -> Outcome {
    let failure = |error: String| Outcome { status_code: None, error: Some(truncate(&error)), delivered: false };
    // The message's own URL, else its endpoint's.
    let Some(url) = job.url.as_deref().or(target.url.as_deref()) else {
        return failure("no URL to send to: neither the message nor its endpoint has one".into());
    };
    // Checked before every attempt: a message's own URL was never checked before, and an
    // endpoint's host may have moved to an address it may not have since it was made.
    let allow_private = me.config.get(webhook::ALLOW_PRIVATE_KEY).as_bool().unwrap_or(false);
    if let Err(e) = crate::store::check_receiver(url, allow_private).await {
        return failure(e.to_string());
    }
    let id = job.id.to_string();
    let mut signature = sign(&target.secret, &id, timestamp, &job.body);
    if let Some(previous) = &target.previous {
        signature.push(' ');
        signature.push_str(&sign(previous, &id, timestamp, &job.body));
    }
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    headers.insert(http::header::USER_AGENT, http::HeaderValue::from_static("ledger-webhooks/1"));
    for (name, value) in [(HEADER_ID, id), (HEADER_TIMESTAMP, timestamp.to_string()), (HEADER_SIGNATURE, signature)] {
        match http::HeaderValue::from_str(&value) {
            Ok(value) => {
                headers.insert(name, value);
            }
            Err(_) => return failure(format!("the {name} header cannot be written")),
        }
    }
    match me.client.post(url, headers, job.body.clone()).await {
        Ok(answer) => Outcome {
            status_code: Some(i32::from(answer.status.as_u16())),
            error: (!answer.status.is_success()).then(|| format!("answered {}", answer.status.as_u16())),
            delivered: answer.status.is_success(),
        },
        Err(e) => failure(e.to_string()),
    }
}

fn truncate(text: &str) -> String {
    text.chars().take(MAX_ERROR_CHARS).collect()
}

/// The audit warning of a message that ended undelivered.
async fn audit_failure(me: &Deliverer, job: &Job, attempts: i32, outcome: &Outcome) {
    let Some(auditor) = &me.auditor else { return };
    let entry = ledger_core::audit::Entry {
        id: Uuid::new_v4(),
        level: ledger_core::audit::Level::Warning,
        action: FAILED_ACTION.into(),
        subject: job.id.to_string(),
        before: None,
        after: Some(serde_json::json!({
            "endpoint_id": job.endpoint,
            "event_type": job.event_type,
            "position": job.position,
            "attempts": attempts,
            "status_code": outcome.status_code,
            "error": outcome.error,
        })),
        reason: None,
    };
    let meta = ledger_store::EventMeta {
        source: Some(ledger_store::record::Source::Job { name: "webhooks".into() }),
        ..Default::default()
    };
    if let Err(e) = auditor.record(entry, meta).await {
        warn!(message = %job.id, error = %e, "an undelivered webhook message was not audited");
    }
}
