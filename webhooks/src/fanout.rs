//! The follower that turns the log into messages: each event after its checkpoint that an
//! endpoint asks for becomes one pending message for that endpoint, written in the same
//! transaction as the checkpoint. A crash before that commit makes the same messages again (one
//! per endpoint and position: the unique key keeps a repeat out); after it, they are in the
//! table for the delivery engine. Nothing is sent from here.

use std::collections::HashMap;

use ledger_core::webhook;
use ledger_store::RecordedEvent;
use ledger_store::follow::{Follow, Progress};
use sqlx::{PgConnection, Row};
use time::format_description::well_known::Rfc3339;
use tracing::error;
use uuid::Uuid;

/// The follower's name in `projections`.
pub const NAME: &str = "webhooks";
const LOCK_KEY: i64 = 0x6c65_6467_6572_0400;
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
}

impl Fanout {
    pub fn new(config: ledger_store::config::RuntimeConfig) -> Fanout {
        Fanout { config, domains: ledger_core::domain::event_types_by_domain().map(|(d, t)| (t, d)).collect() }
    }

    fn message_of(&self, record: &RecordedEvent) -> Result<Option<(String, serde_json::Value)>, String> {
        let Some(domain) = self.domains.get(record.event_type.as_str()) else {
            return Err(format!("event type {} of no domain", record.event_type));
        };
        // Today's shape of the payload, whatever version it was written with.
        let event = record.event().map_err(|e| e.to_string())?;
        let data: serde_json::Value = serde_json::from_str(&event.payload()).map_err(|e| e.to_string())?;
        let Some(name) = webhook::message_type(domain, &record.event_type, &data) else {
            return Ok(None);
        };
        Ok(Some((name, data)))
    }
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
        let after: i64 = sqlx::query_scalar("SELECT checkpoint FROM projections WHERE name = $1")
            .bind(NAME)
            .fetch_one(&mut *conn)
            .await?;
        let listeners: Vec<Listener> = sqlx::query(
            "SELECT id, event_types, after_position FROM webhook_endpoints WHERE deleted_at IS NULL ORDER BY id",
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
        // Only the types some endpoint asks for are read.
        let catalog = webhook::catalog();
        let mut types: Vec<&str> = catalog
            .iter()
            .filter(|e| listeners.iter().any(|l| webhook::wants(&l.event_types, &e.name)))
            .map(|e| e.event_type)
            .collect();
        types.sort_unstable();
        types.dedup();
        let (page, last) = ledger_store::log::page_of(conn, after, WINDOW, &types).await?;
        if last == after {
            return Ok(Progress { read: 0, checkpoint: Some(after) });
        }
        let schedule = webhook::schedule(&self.config.get(webhook::RETRY_SCHEDULE_KEY));
        let retries = i32::try_from(schedule.len()).unwrap_or(i32::MAX);
        let (mut ids, mut endpoints, mut positions, mut names, mut bodies) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for record in &page {
            let (name, data) = match self.message_of(record) {
                Ok(Some(message)) => message,
                Ok(None) => continue,
                Err(reason) => {
                    // Every event the log holds decodes (the writer wrote it); one that does not
                    // is left out of the messages, loudly, rather than stopping all of them.
                    error!(position = record.position, reason, "an event cannot become a webhook message");
                    continue;
                }
            };
            let timestamp =
                time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(record.recorded_at.micros()) * 1000)
                    .ok()
                    .and_then(|t| t.format(&Rfc3339).ok())
                    .unwrap_or_default();
            let failed_endpoint = failed_delivery_of(&name, &data);
            let body = webhook::body(&name, &timestamp, data, record.position).to_string();
            for listener in &listeners {
                let wanted = record.position > listener.after_position
                    && webhook::wants(&listener.event_types, &name)
                    // An endpoint is not told of its own undelivered messages (they would be
                    // undelivered too, and told of again).
                    && failed_endpoint != Some(listener.id);
                if wanted {
                    ids.push(Uuid::new_v4());
                    endpoints.push(listener.id);
                    positions.push(record.position);
                    names.push(name.clone());
                    bodies.push(body.clone());
                }
            }
        }
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        if !ids.is_empty() {
            sqlx::query(
                "INSERT INTO webhook_messages (id, endpoint_id, position, event_type, body, retries_left) \
                 SELECT id, endpoint_id, position, event_type, body, $6 \
                 FROM UNNEST($1::uuid[], $2::uuid[], $3::bigint[], $4::text[], $5::text[]) \
                   AS m (id, endpoint_id, position, event_type, body) \
                 ON CONFLICT (endpoint_id, position) DO NOTHING",
            )
            .bind(&ids)
            .bind(&endpoints)
            .bind(&positions)
            .bind(&names)
            .bind(&bodies)
            .bind(retries)
            .execute(&mut *tx)
            .await?;
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
