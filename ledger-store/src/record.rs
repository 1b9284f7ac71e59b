//! Recorded events: an event with its place in the log, and the hash chain that seals it.
//!
//! `hash = sha256(previous hash || frame)`, where the frame is, in order: the position
//! (8 bytes, big-endian), the event id (16 bytes), the stream id, the stream version (4 bytes),
//! the event type, the schema version (2 bytes), the payload, the metadata (each string as a
//! 4-byte big-endian length and its UTF-8 bytes), and the recorded time (microseconds since the
//! epoch, 8 bytes). Payload and metadata are the exact JSON text stored: Postgres' `json` type
//! keeps it byte for byte, so `verify` hashes what it reads.

use ledger_core::{Event, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The hash before position 1.
pub const GENESIS_HASH: [u8; 32] = [0; 32];

/// Who asked, and why: stored beside every event.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMeta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initiator: Option<String>,
    /// The API key that authenticated the command.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<Uuid>,
    /// Where the command came from: an HTTP request, or a message of a topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
}

/// Where a command came from, as the audit trail shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    Http,
    Topic {
        topic: String,
        partition: i32,
        offset: i64,
    },
    /// A job of the engine itself (certificate expiry, ...).
    Job {
        name: String,
    },
}

/// One row of the `events` table.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedEvent {
    pub position: i64,
    pub event_id: Uuid,
    pub stream_id: String,
    pub stream_version: i32,
    pub event_type: String,
    pub schema_version: i16,
    /// JSON text, exactly as stored.
    pub payload: String,
    /// JSON text of `EventMeta`, exactly as stored.
    pub metadata: String,
    pub recorded_at: Timestamp,
    pub hash: [u8; 32],
}

impl RecordedEvent {
    /// Seals an event at `position` after `prev_hash`.
    pub fn seal(
        event: &Event,
        position: i64,
        stream_version: u32,
        meta: &str,
        recorded_at: Timestamp,
        prev_hash: &[u8; 32],
    ) -> RecordedEvent {
        let mut record = RecordedEvent {
            position,
            // Time-ordered (UUIDv7): appending an event adds to the right edge of the event id
            // index instead of a random page of it.
            event_id: Uuid::now_v7(),
            stream_id: event.stream(),
            stream_version: i32::try_from(stream_version).expect("stream versions fit in i32"),
            event_type: event.event_type().to_owned(),
            schema_version: event.schema_version(),
            payload: event.payload(),
            metadata: meta.to_owned(),
            recorded_at,
            hash: [0; 32],
        };
        record.hash = record.chained_hash(prev_hash);
        record
    }

    /// `sha256(prev_hash || frame of this event)`.
    pub fn chained_hash(&self, prev_hash: &[u8; 32]) -> [u8; 32] {
        fn text(hasher: &mut Sha256, s: &str) {
            hasher.update(u32::try_from(s.len()).expect("fields are under 4 GiB").to_be_bytes());
            hasher.update(s.as_bytes());
        }
        let mut hasher = Sha256::new();
        hasher.update(prev_hash);
        hasher.update(self.position.to_be_bytes());
        hasher.update(self.event_id.as_bytes());
        text(&mut hasher, &self.stream_id);
        hasher.update(self.stream_version.to_be_bytes());
        text(&mut hasher, &self.event_type);
        hasher.update(self.schema_version.to_be_bytes());
        text(&mut hasher, &self.payload);
        text(&mut hasher, &self.metadata);
        hasher.update(self.recorded_at.micros().to_be_bytes());
        hasher.finalize().into()
    }

    pub fn event(&self) -> Result<Event, ledger_core::domain::EventDecodeError> {
        Event::from_parts(&self.event_type, self.schema_version, &self.payload)
    }
}

/// The stored JSON text of event metadata.
pub fn meta_json(meta: &EventMeta) -> String {
    serde_json::to_string(meta).expect("metadata serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_change_changes_the_hash() {
        let event =
            Event::from(ledger_core::ledger::Event::AccountFrozen(ledger_core::ledger::event::AccountStatusChanged {
                id: ledger_core::AccountId(Uuid::from_u128(7)),
                reason: None,
                at: Timestamp(1),
            }));
        let sealed = RecordedEvent::seal(&event, 1, 2, "{}", Timestamp(5), &GENESIS_HASH);
        assert_eq!(sealed.chained_hash(&GENESIS_HASH), sealed.hash);
        let changes: [fn(&mut RecordedEvent); 6] = [
            |r| r.recorded_at = Timestamp(6),
            |r| r.position = 2,
            |r| r.payload.push(' '),
            |r| r.metadata = "{\"channel\":\"x\"}".into(),
            |r| r.stream_version = 3,
            // Moving bytes between fields must not collide: lengths are framed.
            |r| {
                r.event_type.push('{');
                r.payload.remove(0);
            },
        ];
        for change in changes {
            let mut other = sealed.clone();
            change(&mut other);
            assert_ne!(other.chained_hash(&GENESIS_HASH), sealed.hash, "{other:?}");
        }
        assert_ne!(sealed.chained_hash(&[1; 32]), sealed.hash);
    }
}
