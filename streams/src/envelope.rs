//! The message every subscriber receives: one stored event, upcast to its current schema
//! version, with its place in the log. Its JSON Schema is `schemas/events/envelope.v1.json`.

use ledger_core::Event;
use ledger_store::RecordedEvent;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One event as published. `payload` follows the schema `{type}.v{schema_version}.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// Unique per event: subscribers deduplicate by it (delivery is at least once).
    pub id: Uuid,
    /// Global position in the ordered log, dense from 1.
    pub position: i64,
    /// The stream the event belongs to, e.g. `account-<uuid>`; also the message key.
    pub stream: String,
    /// Position within the stream, from 1.
    pub stream_version: i32,
    /// The event type, e.g. `TransferPosted`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The payload's schema version (always the current one: older stored versions are upcast).
    pub schema_version: i16,
    /// When the ledger recorded it, in microseconds since the Unix epoch (UTC).
    pub recorded_at: i64,
    /// Who asked: channel, API key id, correlation id.
    pub metadata: serde_json::Value,
    /// The event body.
    pub payload: serde_json::Value,
    /// The hash chain link after this event (hex SHA-256), as `ledger verify` computes it.
    pub hash: String,
}

#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("event at position {0} cannot be decoded: {1}")]
    Decode(i64, String),
}

impl Envelope {
    /// Wraps a stored event, upcasting its payload to the current version.
    pub fn from_recorded(record: &RecordedEvent) -> Result<Envelope, EnvelopeError> {
        let bad = |e: String| EnvelopeError::Decode(record.position, e);
        let event = record.event().map_err(|e| bad(e.to_string()))?;
        let payload = serde_json::from_str(&event.payload()).map_err(|e| bad(e.to_string()))?;
        let metadata = serde_json::from_str(&record.metadata).map_err(|e| bad(e.to_string()))?;
        Ok(Envelope {
            id: record.event_id,
            position: record.position,
            stream: record.stream_id.clone(),
            stream_version: record.stream_version,
            event_type: record.event_type.clone(),
            schema_version: event.schema_version(),
            recorded_at: record.recorded_at.micros(),
            metadata,
            payload,
            hash: hex::encode(record.hash),
        })
    }

    /// The ledger event inside, as today's type.
    pub fn event(&self) -> Result<Event, ledger_core::domain::EventDecodeError> {
        Event::from_parts(&self.event_type, self.schema_version, &self.payload.to_string())
    }

    pub fn to_json(&self) -> String {
        // Plain strings, numbers and JSON values always serialize.
        serde_json::to_string(self).expect("envelopes serialize")
    }
}
