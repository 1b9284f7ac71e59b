//! Recorded events: an event with its place in the log, and the hash chain that seals it.

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
    pub payload: serde_json::Value,
    pub metadata: serde_json::Value,
    pub recorded_at: Timestamp,
    pub hash: [u8; 32],
}

impl RecordedEvent {
    /// Seals an event at `position` after `prev_hash`.
    pub fn seal(
        event: &Event,
        position: i64,
        stream_version: u32,
        meta: &EventMeta,
        recorded_at: Timestamp,
        prev_hash: &[u8; 32],
    ) -> RecordedEvent {
        let mut record = RecordedEvent {
            position,
            event_id: Uuid::new_v4(),
            stream_id: event.stream(),
            stream_version: i32::try_from(stream_version).expect("stream versions fit in i32"),
            event_type: event.event_type().to_owned(),
            schema_version: ledger_core::SCHEMA_VERSION,
            payload: event.payload(),
            metadata: serde_json::to_value(meta).expect("metadata serializes"),
            recorded_at,
            hash: [0; 32],
        };
        record.hash = record.chained_hash(prev_hash);
        record
    }

    /// `sha256(prev_hash || canonical bytes of this event)`.
    pub fn chained_hash(&self, prev_hash: &[u8; 32]) -> [u8; 32] {
        let mut canonical = Vec::with_capacity(512);
        let fields = serde_json::json!([
            self.position,
            self.event_id.to_string(),
            self.stream_id,
            self.stream_version,
            self.event_type,
            self.schema_version,
            self.payload,
            self.metadata,
            self.recorded_at.micros(),
        ]);
        canonical_json(&fields, &mut canonical);
        let mut hasher = Sha256::new();
        hasher.update(prev_hash);
        hasher.update(&canonical);
        hasher.finalize().into()
    }

    pub fn event(&self) -> Result<Event, ledger_core::event::EventDecodeError> {
        Event::from_parts(&self.event_type, self.schema_version, self.payload.clone())
    }
}

/// JSON with object keys sorted bytewise and no whitespace: the same value always gives the
/// same bytes, whatever order Postgres' JSONB or a serde feature keeps keys in.
pub fn canonical_json(value: &serde_json::Value, out: &mut Vec<u8>) {
    use serde_json::Value;
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {
            out.extend_from_slice(value.to_string().as_bytes());
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical_json(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(Value::String(key.clone()).to_string().as_bytes());
                out.push(b':');
                canonical_json(&map[key], out);
            }
            out.push(b'}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_and_drops_whitespace() {
        let mut out = Vec::new();
        canonical_json(&json!({"b": [1, {"z": null, "a": "x\"y"}], "a": 1.5}), &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a":1.5,"b":[1,{"a":"x\"y","z":null}]}"#
        );
    }

    #[test]
    fn any_change_changes_the_hash() {
        let event = Event::AccountFrozen(ledger_core::event::AccountStatusChanged {
            id: ledger_core::AccountId(Uuid::from_u128(7)),
            at: Timestamp(1),
        });
        let sealed = RecordedEvent::seal(&event, 1, 2, &EventMeta::default(), Timestamp(5), &GENESIS_HASH);
        assert_eq!(sealed.chained_hash(&GENESIS_HASH), sealed.hash);
        let mut other = sealed.clone();
        other.recorded_at = Timestamp(6);
        assert_ne!(other.chained_hash(&GENESIS_HASH), sealed.hash);
        assert_ne!(sealed.chained_hash(&[1; 32]), sealed.hash);
    }
}
