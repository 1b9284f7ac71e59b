//! Endpoints, messages and attempts in the log's database (`migrations/0018_webhooks.sql`,
//! `0019_owned_endpoints.sql`). An endpoint's secret is sealed with the engine's secrets key
//! before it is stored and opened only to sign; it leaves this module in clear once, in the
//! answer that creates or rotates it.
//!
//! The endpoint functions (create, list, get, delete, rotate, the endpoint count, an endpoint's
//! attempts) are the operators': they see only endpoints no domain entity owns (`owner IS
//! NULL`). Owned endpoints (a store's callbacks) are the fanout's to make and change; their
//! messages are listed by subject ([`Store::deliveries`]) and may be retried like any other.

use std::sync::Arc;

use ledger_core::webhook::{self, FilterError, UrlRefused};
use outbound::webhooks::WebhookSecret;
use secrets::{KeyProvider, Sealed};
use sqlx::{PgPool, Row};
use time::OffsetDateTime;
use uuid::Uuid;

/// Announced (NOTIFY) when messages are due (new ones, retries asked for) or endpoints change.
pub const CHANNEL: &str = "ledger_webhooks";
/// At most this many endpoints exist at once.
pub const MAX_ENDPOINTS: i64 = 1000;
/// How long the secret before a rotation still signs messages beside the new one.
pub const ROTATION_OVERLAP: time::Duration = time::Duration::hours(24);
/// How long a receiver's name may take to resolve.
pub const RESOLVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);
/// The most rows one listing answers.
pub const MAX_PAGE: i64 = 500;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("endpoint_not_allowed: {0}")]
    NotAllowed(#[from] UrlRefused),
    #[error(transparent)]
    Filter(#[from] FilterError),
    #[error(
        "a description is not blank, at most {} characters, without control characters",
        ledger_core::text::REASON_MAX_CHARS
    )]
    Description,
    #[error("at most {MAX_ENDPOINTS} endpoints")]
    TooMany,
    #[error("{0} cannot be resolved")]
    Unresolvable(String),
    #[error("the endpoint's secret cannot be sealed or opened: {0}")]
    Secret(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// An endpoint as stored, without its secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub id: Uuid,
    pub url: String,
    pub event_types: Vec<String>,
    pub description: Option<String>,
    pub created_at: OffsetDateTime,
}

/// What creating an endpoint asks for.
#[derive(Clone, Debug)]
pub struct NewEndpoint {
    pub url: String,
    pub event_types: Vec<String>,
    pub description: Option<String>,
}

/// The store's handle: the log's pool and the keys secrets are sealed with.
#[derive(Clone)]
pub struct Store {
    pool: PgPool,
    keys: Arc<dyn KeyProvider>,
}

fn context(id: Uuid) -> String {
    format!("webhook-endpoint:{id}")
}

fn sealed_json(sealed: &Sealed) -> serde_json::Value {
    serde_json::json!({"key_id": sealed.key_id, "nonce": sealed.nonce, "ciphertext": sealed.ciphertext})
}

fn sealed_of(value: &serde_json::Value) -> Option<Sealed> {
    let field = |name: &str| value.get(name)?.as_str().map(str::to_owned);
    Some(Sealed { key_id: field("key_id")?, nonce: field("nonce")?, ciphertext: field("ciphertext")? })
}

/// Checks a receiver URL as creating an endpoint does: the URL's own rules, then every address
/// its host resolves to (without `allow_private`).
pub async fn check_receiver(url: &str, allow_private: bool) -> Result<(), StoreError> {
    let target = webhook::check_url(url, allow_private)?;
    if allow_private || target.host.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    let lookup = tokio::net::lookup_host((target.host.as_str(), target.port));
    let addresses = match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
        Ok(Ok(addresses)) => addresses,
        _ => return Err(StoreError::Unresolvable(target.host.clone())),
    };
    for address in addresses {
        webhook::check_address(address.ip(), false)?;
    }
    Ok(())
}

impl Store {
    pub fn new(pool: PgPool, keys: Arc<dyn KeyProvider>) -> Store {
        Store { pool, keys }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    fn seal(&self, id: Uuid, secret: &WebhookSecret) -> Result<serde_json::Value, StoreError> {
        let sealed = secrets::seal(self.keys.as_ref(), &context(id), secret.expose().as_bytes())
            .map_err(|e| StoreError::Secret(e.to_string()))?;
        Ok(sealed_json(&sealed))
    }

    /// Opens a stored secret.
    pub fn open(&self, id: Uuid, stored: &serde_json::Value) -> Result<WebhookSecret, StoreError> {
        let sealed = sealed_of(stored).ok_or_else(|| StoreError::Secret("not a sealed secret".into()))?;
        let text =
            secrets::open(self.keys.as_ref(), &context(id), &sealed).map_err(|e| StoreError::Secret(e.to_string()))?;
        let text = String::from_utf8(text).map_err(|_| StoreError::Secret("not text".into()))?;
        WebhookSecret::parse(&text).map_err(|e| StoreError::Secret(e.to_string()))
    }

    /// Creates an endpoint that receives the events committed from now on; gives it and its
    /// secret (shown this once).
    pub async fn create(&self, new: NewEndpoint, allow_private: bool) -> Result<(Endpoint, WebhookSecret), StoreError> {
        check_receiver(&new.url, allow_private).await?;
        let event_types = webhook::check_filter(&new.event_types)?;
        if new.description.as_deref().is_some_and(|d| !ledger_core::text::valid_reason(d)) {
            return Err(StoreError::Description);
        }
        let id = Uuid::new_v4();
        let secret = WebhookSecret::generate().map_err(|e| StoreError::Secret(e.to_string()))?;
        let sealed = self.seal(id, &secret)?;
        let mut tx = self.pool.begin().await?;
        // One creation at a time, so the count holds.
        // No step of the fanout runs between the log's head read here and the commit (taken
        // before the table's lock, which a step's changes of owned endpoints wait for).
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(crate::fanout::CREATION_LOCK_KEY)
            .execute(&mut *tx)
            .await?;
        sqlx::query("LOCK TABLE webhook_endpoints IN SHARE ROW EXCLUSIVE MODE").execute(&mut *tx).await?;
        let count: i64 =
            sqlx::query_scalar("SELECT count(*) FROM webhook_endpoints WHERE deleted_at IS NULL AND owner IS NULL")
                .fetch_one(&mut *tx)
                .await?;
        if count >= MAX_ENDPOINTS {
            return Err(StoreError::TooMany);
        }
        let created_at: OffsetDateTime = sqlx::query_scalar(
            "INSERT INTO webhook_endpoints (id, url, event_types, description, secret, after_position) \
             VALUES ($1, $2, $3, $4, $5, (SELECT COALESCE(MAX(position), 0) FROM events)) RETURNING created_at",
        )
        .bind(id)
        .bind(&new.url)
        .bind(&event_types)
        .bind(&new.description)
        .bind(&sealed)
        .fetch_one(&mut *tx)
        .await?;
        notify(&mut tx).await?;
        tx.commit().await?;
        Ok((Endpoint { id, url: new.url, event_types, description: new.description, created_at }, secret))
    }

    /// Every endpoint not deleted, oldest first.
    pub async fn list(&self) -> Result<Vec<Endpoint>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, url, event_types, description, created_at FROM webhook_endpoints \
             WHERE deleted_at IS NULL AND owner IS NULL ORDER BY created_at, id LIMIT $1",
        )
        .bind(MAX_ENDPOINTS)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(endpoint_row).collect::<Result<_, _>>().map_err(Into::into)
    }

    /// One endpoint, if it exists and is not deleted.
    pub async fn get(&self, id: Uuid) -> Result<Option<Endpoint>, StoreError> {
        let row = sqlx::query(
            "SELECT id, url, event_types, description, created_at FROM webhook_endpoints \
             WHERE id = $1 AND deleted_at IS NULL AND owner IS NULL",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(endpoint_row).transpose()?)
    }

    /// Deletes an endpoint: no message is made for it any more, and those still pending are
    /// dropped (failed). `false`: none such.
    pub async fn delete(&self, id: Uuid) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE webhook_endpoints SET deleted_at = now() WHERE id = $1 AND deleted_at IS NULL AND owner IS NULL",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if done {
            sqlx::query(
                "UPDATE webhook_messages SET status = 'failed', finished_at = now() \
                 WHERE endpoint_id = $1 AND status = 'pending'",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?;
            notify(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(done)
    }

    /// Gives an endpoint a new secret (shown this once); the old one goes on signing beside it
    /// for `ROTATION_OVERLAP`. `None`: no such endpoint.
    pub async fn rotate(&self, id: Uuid) -> Result<Option<WebhookSecret>, StoreError> {
        let secret = WebhookSecret::generate().map_err(|e| StoreError::Secret(e.to_string()))?;
        let sealed = self.seal(id, &secret)?;
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE webhook_endpoints SET previous_secret = secret, previous_until = now() + $3, secret = $2 \
             WHERE id = $1 AND deleted_at IS NULL AND owner IS NULL",
        )
        .bind(id)
        .bind(&sealed)
        .bind(ROTATION_OVERLAP)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if done {
            notify(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(done.then_some(secret))
    }

    /// Sends a message again: one more attempt, now. `None`: no such message; `Some(false)`: it
    /// is still pending (nothing changes).
    pub async fn retry(&self, message: Uuid) -> Result<Option<bool>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let status: Option<String> = sqlx::query_scalar(
            "SELECT m.status FROM webhook_messages m JOIN webhook_endpoints e ON e.id = m.endpoint_id \
             WHERE m.id = $1 AND e.deleted_at IS NULL FOR UPDATE OF m",
        )
        .bind(message)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(status) = status else { return Ok(None) };
        if status == "pending" {
            return Ok(Some(false));
        }
        sqlx::query(
            "UPDATE webhook_messages SET status = 'pending', retries_left = 0, next_at = now(), finished_at = NULL \
             WHERE id = $1",
        )
        .bind(message)
        .execute(&mut *tx)
        .await?;
        notify(&mut tx).await?;
        tx.commit().await?;
        Ok(Some(true))
    }

    /// Sends every failed message of an endpoint made since `since` again (one attempt each).
    /// `None`: no such endpoint; else how many.
    pub async fn recover(&self, endpoint: Uuid, since: OffsetDateTime) -> Result<Option<u64>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let exists: Option<Uuid> =
            sqlx::query_scalar("SELECT id FROM webhook_endpoints WHERE id = $1 AND deleted_at IS NULL")
                .bind(endpoint)
                .fetch_optional(&mut *tx)
                .await?;
        if exists.is_none() {
            return Ok(None);
        }
        let n = sqlx::query(
            "UPDATE webhook_messages SET status = 'pending', retries_left = 0, next_at = now(), finished_at = NULL \
             WHERE endpoint_id = $1 AND status = 'failed' AND created_at >= $2",
        )
        .bind(endpoint)
        .bind(since)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n > 0 {
            notify(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(Some(n))
    }

    /// An endpoint's attempts, newest first, before the cursor `(at, message, attempt)`.
    pub async fn attempts(
        &self,
        endpoint: Uuid,
        before: Option<&Cursor>,
        limit: i64,
    ) -> Result<Vec<Attempt>, StoreError> {
        attempts(&self.pool, endpoint, before, limit).await
    }

    /// The delivery log of a subject (an order): the messages about it sent through `owner`'s
    /// endpoint, in log order after the position `after`, each with its attempts.
    pub async fn deliveries(
        &self,
        owner: &str,
        subject: &str,
        after: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Delivery>, StoreError> {
        deliveries(&self.pool, owner, subject, after, limit).await
    }

    /// One message as stored.
    pub async fn message(&self, id: Uuid) -> Result<Option<Message>, StoreError> {
        let row = sqlx::query(
            "SELECT id, endpoint_id, position, event_type, status, attempts, next_at, created_at, finished_at \
             FROM webhook_messages WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(message_row).transpose()?)
    }
}

/// Announces a change in the same transaction.
pub async fn notify(conn: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, '')").bind(CHANNEL).execute(conn).await.map(drop)
}

fn endpoint_row(row: &sqlx::postgres::PgRow) -> Result<Endpoint, sqlx::Error> {
    Ok(Endpoint {
        id: row.try_get("id")?,
        url: row.try_get("url")?,
        event_types: row.try_get("event_types")?,
        description: row.try_get("description")?,
        created_at: row.try_get("created_at")?,
    })
}

/// A message as stored, without its body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub id: Uuid,
    pub endpoint_id: Uuid,
    pub position: i64,
    pub event_type: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: i32,
    pub next_at: OffsetDateTime,
    pub created_at: OffsetDateTime,
    pub finished_at: Option<OffsetDateTime>,
}

fn message_row(row: &sqlx::postgres::PgRow) -> Result<Message, sqlx::Error> {
    Ok(Message {
        id: row.try_get("id")?,
        endpoint_id: row.try_get("endpoint_id")?,
        position: row.try_get("position")?,
        event_type: row.try_get("event_type")?,
        status: row.try_get("status")?,
        attempts: row.try_get("attempts")?,
        next_at: row.try_get("next_at")?,
        created_at: row.try_get("created_at")?,
        finished_at: row.try_get("finished_at")?,
    })
}

/// One attempt to deliver a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub message_id: Uuid,
    pub attempt: i32,
    pub endpoint_id: Uuid,
    pub event_type: String,
    pub at: OffsetDateTime,
    /// The receiver's answer; `None`: no answer (refused, timed out, TLS).
    pub status_code: Option<i32>,
    pub latency_ms: i32,
    pub error: Option<String>,
}

/// Where a listing of attempts goes on: the last one listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub at: OffsetDateTime,
    pub message_id: Uuid,
    pub attempt: i32,
}

impl Attempt {
    pub fn cursor(&self) -> Cursor {
        Cursor { at: self.at, message_id: self.message_id, attempt: self.attempt }
    }
}

impl Cursor {
    /// As text for an API: `{at in unix nanoseconds}.{message}.{attempt}`.
    pub fn to_text(&self) -> String {
        format!("{}.{}.{}", self.at.unix_timestamp_nanos(), self.message_id, self.attempt)
    }

    /// What `to_text` wrote.
    pub fn parse(text: &str) -> Option<Cursor> {
        let mut parts = text.splitn(3, '.');
        let at = OffsetDateTime::from_unix_timestamp_nanos(parts.next()?.parse().ok()?).ok()?;
        let message_id = parts.next()?.parse().ok()?;
        let attempt = parts.next()?.parse().ok()?;
        Some(Cursor { at, message_id, attempt })
    }
}

/// An endpoint's attempts, newest first, before `before` (for the REST and GraphQL listings).
pub async fn attempts(
    pool: &PgPool,
    endpoint: Uuid,
    before: Option<&Cursor>,
    limit: i64,
) -> Result<Vec<Attempt>, StoreError> {
    let (at, message, attempt) = match before {
        Some(c) => (Some(c.at), Some(c.message_id), Some(c.attempt)),
        None => (None, None, None),
    };
    let rows = sqlx::query(
        "SELECT a.message_id, a.attempt, a.endpoint_id, m.event_type, a.at, a.status_code, a.latency_ms, a.error \
         FROM webhook_attempts a JOIN webhook_messages m ON m.id = a.message_id \
           JOIN webhook_endpoints e ON e.id = a.endpoint_id AND e.owner IS NULL \
         WHERE a.endpoint_id = $1 AND ($2::timestamptz IS NULL OR (a.at, a.message_id, a.attempt) < ($2, $3, $4)) \
         ORDER BY a.at DESC, a.message_id DESC, a.attempt DESC LIMIT $5",
    )
    .bind(endpoint)
    .bind(at)
    .bind(message)
    .bind(attempt)
    .bind(limit.clamp(1, MAX_PAGE))
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Attempt {
                message_id: row.try_get("message_id")?,
                attempt: row.try_get("attempt")?,
                endpoint_id: row.try_get("endpoint_id")?,
                event_type: row.try_get("event_type")?,
                at: row.try_get("at")?,
                status_code: row.try_get("status_code")?,
                latency_ms: row.try_get("latency_ms")?,
                error: row.try_get("error")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// At most this many attempts are listed with each message of a delivery log: its latest.
pub const MAX_ATTEMPTS_LISTED: i64 = 50;

/// A message of a subject's delivery log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub message: Message,
    /// Its own URL, else its endpoint's as it stands now: where its next attempt goes.
    pub url: Option<String>,
    /// Its attempts, the first first (the latest [`MAX_ATTEMPTS_LISTED`] of them).
    pub attempts: Vec<Attempt>,
}

impl Delivery {
    /// What the receiver answered last; `None`: no attempt yet, or no answer.
    pub fn last_status_code(&self) -> Option<i32> {
        self.attempts.last().and_then(|a| a.status_code)
    }
}

/// A subject's delivery log (see [`Store::deliveries`]), for the REST and GraphQL listings.
pub async fn deliveries(
    pool: &PgPool,
    owner: &str,
    subject: &str,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<Delivery>, StoreError> {
    let rows = sqlx::query(
        "SELECT m.id, m.endpoint_id, m.position, m.event_type, m.status, m.attempts, m.next_at, m.created_at, \
           m.finished_at, COALESCE(m.url, e.url) AS url \
         FROM webhook_messages m JOIN webhook_endpoints e ON e.id = m.endpoint_id \
         WHERE m.subject = $1 AND e.owner = $2 AND m.position > $3 ORDER BY m.position LIMIT $4",
    )
    .bind(subject)
    .bind(owner)
    .bind(after.unwrap_or(0))
    .bind(limit.clamp(1, MAX_PAGE))
    .fetch_all(pool)
    .await?;
    let mut log = rows
        .iter()
        .map(|row| Ok(Delivery { message: message_row(row)?, url: row.try_get("url")?, attempts: Vec::new() }))
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    if log.is_empty() {
        return Ok(log);
    }
    let ids: Vec<Uuid> = log.iter().map(|d| d.message.id).collect();
    let attempts = sqlx::query(
        "SELECT a.message_id, a.attempt, a.endpoint_id, a.at, a.status_code, a.latency_ms, a.error \
         FROM UNNEST($1::uuid[]) AS m (id) CROSS JOIN LATERAL ( \
           SELECT * FROM webhook_attempts w WHERE w.message_id = m.id ORDER BY w.attempt DESC LIMIT $2) a \
         ORDER BY a.message_id, a.attempt",
    )
    .bind(&ids)
    .bind(MAX_ATTEMPTS_LISTED)
    .fetch_all(pool)
    .await?;
    let mut by_message: std::collections::HashMap<Uuid, Vec<Attempt>> = std::collections::HashMap::new();
    for row in &attempts {
        let message_id: Uuid = row.try_get("message_id")?;
        let event_type = log.iter().find(|d| d.message.id == message_id).map(|d| d.message.event_type.clone());
        by_message.entry(message_id).or_default().push(Attempt {
            message_id,
            attempt: row.try_get("attempt")?,
            endpoint_id: row.try_get("endpoint_id")?,
            event_type: event_type.unwrap_or_default(),
            at: row.try_get("at")?,
            status_code: row.try_get("status_code")?,
            latency_ms: row.try_get("latency_ms")?,
            error: row.try_get("error")?,
        });
    }
    for delivery in &mut log {
        delivery.attempts = by_message.remove(&delivery.message.id).unwrap_or_default();
    }
    Ok(log)
}
