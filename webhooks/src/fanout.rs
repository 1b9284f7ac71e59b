//! The follower that turns the log into messages: each event after its checkpoint that an
//! endpoint asks for becomes one pending message for that endpoint, written in the same
//! transaction as the checkpoint. A crash before that commit makes the same messages again (one
//! per endpoint and position: the unique key keeps a repeat out); after it, they are in the
//! table for the delivery engine. Nothing is sent from here.
//!
//! The same step keeps the endpoints domain entities own (`ledger_core::webhook::OwnedEndpoint`:
//! a store's callbacks) as their owners' events say, in log order and in the same transaction,
//! and makes each event's callback (`Callback`: an order's status change) one message to its
//! owner's endpoint, with the callback's own URL when it has one and its subject (the order).
//! A callback is made only when its owner's endpoint exists at that point of the log and there
//! is a URL to send it to (its own or the endpoint's).

use std::collections::HashMap;

use ledger_core::domain::Subject;
use ledger_core::webhook::{self, Callback, EndpointChange, OwnedEndpoint};
use ledger_core::{EntityRow, Event};
use ledger_store::RecordedEvent;
use ledger_store::follow::{Follow, Progress};
use sqlx::{PgConnection, Row};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tracing::error;
use uuid::Uuid;

/// The follower's name in `projections`.
pub const NAME: &str = "webhooks";
const LOCK_KEY: i64 = 0x6c65_6467_6572_0400;
/// Held shared by each step and exclusively by an endpoint's creation, so an endpoint's
/// `after_position` (the log's head when it is made) and a step's view of the endpoints agree: a
/// step that does not see an endpoint cannot move past a position after that endpoint's
/// `after_position`, which would leave the endpoint without the messages of those positions.
pub(crate) const CREATION_LOCK_KEY: i64 = 0x6c65_6467_6572_0402;
/// Positions of the log one step looks through.
pub const WINDOW: i64 = 5_000;

#[derive(Debug, thiserror::Error)]
pub enum FanoutError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// An endpoint as the follower matches it.
struct Listener {
    id: Uuid,
    event_types: Vec<String>,
    after_position: i64,
}

/// The follower. `retries` is read from the runtime configuration for each message made.
pub struct Fanout {
    config: ledger_store::config::RuntimeConfig,
    /// Event type → its domain.
    domains: HashMap<&'static str, &'static str>,
    /// The event types that may change an owned endpoint or make a callback.
    callback_types: Vec<&'static str>,
    /// The writer of this process, when it has one: the callbacks' subjects are read from its
    /// committed view, and from the store only when the view does not hold them.
    ledger: Option<ledger_store::LedgerHandle>,
}

/// Messages to insert, column by column.
#[derive(Default)]
struct Messages {
    ids: Vec<Uuid>,
    endpoints: Vec<Uuid>,
    positions: Vec<i64>,
    names: Vec<String>,
    bodies: Vec<String>,
    urls: Vec<Option<String>>,
    subjects: Vec<Option<String>>,
}

impl Messages {
    fn push(
        &mut self,
        endpoint: Uuid,
        position: i64,
        name: &str,
        body: String,
        url: Option<String>,
        subject: Option<String>,
    ) {
        self.ids.push(Uuid::new_v4());
        self.endpoints.push(endpoint);
        self.positions.push(position);
        self.names.push(name.to_owned());
        self.bodies.push(body);
        self.urls.push(url);
        self.subjects.push(subject);
    }
}

/// An owned endpoint's change at a point of the log.
struct Change {
    position: i64,
    at: OffsetDateTime,
    endpoint: OwnedEndpoint,
}

impl Fanout {
    pub fn new(config: ledger_store::config::RuntimeConfig) -> Fanout {
        Fanout {
            config,
            domains: ledger_core::domain::event_types_by_domain().map(|(d, t)| (t, d)).collect(),
            callback_types: ledger_core::domain::callback_types().collect(),
            ledger: None,
        }
    }

    /// Reads the callbacks' subjects from `ledger`'s committed view (the writer in this
    /// process). A callback reads only what its subject fixed when it was made, so the row as
    /// the view holds it now tells the same as the stored one.
    pub fn with_ledger(mut self, ledger: ledger_store::LedgerHandle) -> Fanout {
        self.ledger = Some(ledger);
        self
    }

    fn message_of(&self, record: &RecordedEvent, event: &Event) -> Result<Option<(String, serde_json::Value)>, String> {
        let Some(domain) = self.domains.get(record.event_type.as_str()) else {
            return Err(format!("event type {} of no domain", record.event_type));
        };
        // Today's shape of the payload, whatever version it was written with.
        let data: serde_json::Value = serde_json::from_str(&event.payload()).map_err(|e| e.to_string())?;
        let Some(name) = webhook::message_type(domain, &record.event_type, &data) else {
            return Ok(None);
        };
        Ok(Some((name, data)))
    }
}

fn time_of(micros: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000).ok()
}

impl Follow for Fanout {
    type Error = FanoutError;

    fn name(&self) -> String {
        "webhook messages".to_owned()
    }

    async fn prepare(&mut self, conn: &mut PgConnection) -> Result<bool, FanoutError> {
        sqlx::query("INSERT INTO projections (name, version) VALUES ($1, 1) ON CONFLICT (name) DO NOTHING")
            .bind(NAME)
            .execute(&mut *conn)
            .await?;
        Ok(sqlx::query_scalar("SELECT pg_try_advisory_lock($1)").bind(LOCK_KEY).fetch_one(&mut *conn).await?)
    }

    async fn step(&mut self, conn: &mut PgConnection) -> Result<Progress, FanoutError> {
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        sqlx::query("SELECT pg_advisory_xact_lock_shared($1)").bind(CREATION_LOCK_KEY).execute(&mut *tx).await?;
        let conn: &mut PgConnection = &mut tx;
        let after: i64 = sqlx::query_scalar("SELECT checkpoint FROM projections WHERE name = $1")
            .bind(NAME)
            .fetch_one(&mut *conn)
            .await?;
        let listeners: Vec<Listener> = sqlx::query(
            "SELECT id, event_types, after_position FROM webhook_endpoints \
             WHERE deleted_at IS NULL AND owner IS NULL ORDER BY id",
        )
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|row| {
            Ok(Listener {
                id: row.try_get("id")?,
                event_types: row.try_get("event_types")?,
                after_position: row.try_get("after_position")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
        // Only the types some endpoint asks for are read, and those that may make callbacks.
        let catalog = webhook::catalog();
        let mut types: Vec<&str> = catalog
            .iter()
            .filter(|e| listeners.iter().any(|l| webhook::wants(&l.event_types, &e.name)))
            .map(|e| e.event_type)
            .chain(self.callback_types.iter().copied())
            .collect();
        types.sort_unstable();
        types.dedup();
        let (page, last) = ledger_store::log::page_of(conn, after, WINDOW, &types).await?;
        if last == after {
            tx.commit().await?;
            return Ok(Progress { read: 0, checkpoint: Some(after) });
        }
        let mut events = Vec::with_capacity(page.len());
        for record in &page {
            match record.event() {
                Ok(event) => events.push((record, event)),
                // Every event the log holds decodes (the writer wrote it); one that does not is
                // left out of the messages, loudly, rather than stopping all of them.
                Err(e) => error!(position = record.position, reason = %e, "an event cannot become a webhook message"),
            }
        }
        let rows = subject_rows(conn, &events, &self.callback_types, self.ledger.as_ref()).await?;
        let schedule = webhook::schedule(&self.config.get(webhook::RETRY_SCHEDULE_KEY));
        let retries = i32::try_from(schedule.len()).unwrap_or(i32::MAX);
        let mut messages = Messages::default();
        let mut changes = Vec::new();
        let mut callbacks: Vec<(i64, String, Callback)> = Vec::new();
        for (record, event) in &events {
            let timestamp =
                time_of(record.recorded_at.micros()).and_then(|t| t.format(&Rfc3339).ok()).unwrap_or_default();
            if self.callback_types.contains(&record.event_type.as_str()) {
                if let Some(endpoint) = event.owned_endpoint() {
                    let at = time_of(event.at().micros()).unwrap_or(OffsetDateTime::UNIX_EPOCH);
                    changes.push(Change { position: record.position, at, endpoint });
                } else if let Some(callback) = event.callback(rows.get(&event.subject().id())) {
                    callbacks.push((record.position, timestamp.clone(), callback));
                }
            }
            if listeners.is_empty() {
                continue;
            }
            let (name, data) = match self.message_of(record, event) {
                Ok(Some(message)) => message,
                Ok(None) => continue,
                Err(reason) => {
                    error!(position = record.position, reason, "an event cannot become a webhook message");
                    continue;
                }
            };
            let failed_endpoint = failed_delivery_of(&name, &data);
            let wanted: Vec<Uuid> = listeners
                .iter()
                .filter(|listener| {
                    record.position > listener.after_position
                        && webhook::wants(&listener.event_types, &name)
                        // An endpoint is not told of its own undelivered messages (they would be
                        // undelivered too, and told of again).
                        && failed_endpoint != Some(listener.id)
                })
                .map(|listener| listener.id)
                .collect();
            if wanted.is_empty() {
                continue;
            }
            let body = webhook::body(&name, &timestamp, data, record.position).to_string();
            for id in wanted {
                messages.push(id, record.position, &name, body.clone(), None, None);
            }
        }
        owned_messages(conn, &changes, callbacks, &mut messages).await?;
        for change in &changes {
            apply_change(&mut tx, change).await?;
        }
        if !messages.ids.is_empty() {
            sqlx::query(
                "INSERT INTO webhook_messages (id, endpoint_id, position, event_type, body, retries_left, url, subject) \
                 SELECT id, endpoint_id, position, event_type, body, $6, url, subject \
                 FROM UNNEST($1::uuid[], $2::uuid[], $3::bigint[], $4::text[], $5::text[], $7::text[], $8::text[]) \
                   AS m (id, endpoint_id, position, event_type, body, url, subject) \
                 ON CONFLICT (endpoint_id, position) DO NOTHING",
            )
            .bind(&messages.ids)
            .bind(&messages.endpoints)
            .bind(&messages.positions)
            .bind(&messages.names)
            .bind(&messages.bodies)
            .bind(retries)
            .bind(&messages.urls)
            .bind(&messages.subjects)
            .execute(&mut *tx)
            .await?;
        }
        if !messages.ids.is_empty() || !changes.is_empty() {
            crate::store::notify(&mut tx).await?;
        }
        sqlx::query("UPDATE projections SET checkpoint = $2, updated_at = now() WHERE name = $1")
            .bind(NAME)
            .bind(last)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        let read = usize::try_from(last - after).unwrap_or(usize::MAX);
        Ok(Progress { read, checkpoint: Some(last) })
    }
}

/// The rows of the entities the page's callbacks may be about (the subjects of its events of
/// callback types that change no endpoint): from the writer's view where it holds them, the rest
/// from the store in one query.
async fn subject_rows(
    conn: &mut PgConnection,
    events: &[(&RecordedEvent, Event)],
    callback_types: &[&str],
    ledger: Option<&ledger_store::LedgerHandle>,
) -> Result<HashMap<Uuid, EntityRow>, sqlx::Error> {
    let mut ids: Vec<Uuid> = events
        .iter()
        .filter(|(record, event)| {
            callback_types.contains(&record.event_type.as_str()) && event.owned_endpoint().is_none()
        })
        .filter_map(|(_, event)| match event.subject() {
            Subject::Entity(e) => Some(e.id),
            _ => None,
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let mut rows = HashMap::with_capacity(ids.len());
    if let Some(ledger) = ledger {
        let view = ledger.view();
        ids.retain(|id| match view.entity(*id) {
            Some((row, _)) => {
                rows.insert(*id, row);
                false
            }
            None => true,
        });
    }
    if !ids.is_empty() {
        let stored = ledger_store::log::entities(conn, &ids).await?;
        rows.extend(stored.into_iter().map(|stored| (stored.row.id, stored.row)));
    }
    Ok(rows)
}

/// Makes the callbacks' messages: each goes to its owner's endpoint as it stands at the
/// callback's point of the log (the stored endpoints, then the page's changes before it), if
/// that endpoint exists and there is a URL to send to.
async fn owned_messages(
    conn: &mut PgConnection,
    changes: &[Change],
    callbacks: Vec<(i64, String, Callback)>,
    messages: &mut Messages,
) -> Result<(), sqlx::Error> {
    if callbacks.is_empty() {
        return Ok(());
    }
    let mut owners: Vec<&str> = callbacks.iter().map(|(_, _, c)| c.owner.as_str()).collect();
    owners.sort_unstable();
    owners.dedup();
    // Owner → the endpoint's URL, for every owner whose endpoint exists.
    let mut urls: HashMap<String, Option<String>> =
        sqlx::query_as("SELECT owner, url FROM webhook_endpoints WHERE owner = ANY($1) AND deleted_at IS NULL")
            .bind(&owners)
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .collect();
    let mut changes = changes.iter().peekable();
    for (position, timestamp, callback) in callbacks {
        while let Some(change) = changes.next_if(|c| c.position < position) {
            match &change.endpoint.change {
                EndpointChange::Created { url, .. } => {
                    urls.insert(change.endpoint.owner.clone(), url.clone());
                }
                EndpointChange::Url(url) => {
                    if let Some(current) = urls.get_mut(&change.endpoint.owner) {
                        current.clone_from(url);
                    }
                }
                EndpointChange::Secret(_) => {}
            }
        }
        let Some(endpoint_url) = urls.get(&callback.owner) else { continue };
        if callback.url.is_none() && endpoint_url.is_none() {
            continue;
        }
        let body = webhook::body(callback.name, &timestamp, callback.data, position).to_string();
        let endpoint = webhook::owned_endpoint_id(&callback.owner);
        messages.push(endpoint, position, callback.name, body, callback.url, Some(callback.subject));
    }
    Ok(())
}

/// Applies one change of an owned endpoint: made (or remade as its owner's event says), its
/// URL replaced, or its secret rotated with the one before kept signing for the overlap from
/// the event's time.
async fn apply_change(conn: &mut PgConnection, change: &Change) -> Result<(), sqlx::Error> {
    let owner = &change.endpoint.owner;
    let query = match &change.endpoint.change {
        EndpointChange::Created { url, secret } => sqlx::query(
            "INSERT INTO webhook_endpoints (id, owner, url, event_types, secret, after_position) \
             VALUES ($1, $2, $3, '{}', $4, $5) \
             ON CONFLICT (owner) DO UPDATE SET url = EXCLUDED.url, secret = EXCLUDED.secret, \
               previous_secret = NULL, previous_until = NULL, deleted_at = NULL",
        )
        .bind(webhook::owned_endpoint_id(owner))
        .bind(owner)
        .bind(url)
        .bind(secret)
        .bind(change.position),
        EndpointChange::Url(url) => {
            sqlx::query("UPDATE webhook_endpoints SET url = $2 WHERE owner = $1").bind(owner).bind(url)
        }
        EndpointChange::Secret(secret) => sqlx::query(
            "UPDATE webhook_endpoints SET previous_secret = secret, previous_until = $3, secret = $2 WHERE owner = $1",
        )
        .bind(owner)
        .bind(secret)
        .bind(change.at + crate::store::ROTATION_OVERLAP),
    };
    query.execute(conn).await.map(drop)
}

/// The endpoint an audit entry of an undelivered message is about.
fn failed_delivery_of(name: &str, data: &serde_json::Value) -> Option<Uuid> {
    if !name.starts_with("audit.") {
        return None;
    }
    let entry = data.get("entry")?;
    if entry.get("action")?.as_str()? != crate::deliver::FAILED_ACTION {
        return None;
    }
    entry.get("after")?.get("endpoint_id")?.as_str()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_endpoint_is_not_told_of_its_own_failures() {
        let id = Uuid::from_u128(7);
        let data =
            json!({"entry": {"action": crate::deliver::FAILED_ACTION, "after": {"endpoint_id": id.to_string()}}});
        assert_eq!(failed_delivery_of("audit.warning", &data), Some(id));
        assert_eq!(failed_delivery_of("ledger.transfer_posted", &data), None);
        let other = json!({"entry": {"action": "keys.create", "after": {"endpoint_id": id.to_string()}}});
        assert_eq!(failed_delivery_of("audit.warning", &other), None);
    }
}
