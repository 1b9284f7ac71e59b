//! What happened to the runtime configuration: one stream per key (`config-<id>`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::{DomainEvent, EventDecodeError, Subject};
use crate::ids::Timestamp;
use crate::schema::EventSchema;

/// A setting's value changed (`null`: unset, so the file's default or the declared one applies).
/// Who changed it is in the event's metadata (key id, channel).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigChanged {
    pub key: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub at: Timestamp,
}

pub const EVENT_TYPES: [(&str, i16); 1] = [("ConfigChanged", 1)];

/// Payloads are boxed: the log's event type stays the ledger's size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Changed(Box<ConfigChanged>),
}

impl DomainEvent for Event {
    const TYPES: &'static [(&'static str, i16)] = &EVENT_TYPES;

    fn event_type(&self) -> &'static str {
        match self {
            Event::Changed(_) => "ConfigChanged",
        }
    }

    fn subject(&self) -> Subject {
        match self {
            Event::Changed(e) => Subject::Entity(super::entity(&e.key)),
        }
    }

    fn at(&self) -> Timestamp {
        match self {
            Event::Changed(e) => e.at,
        }
    }

    fn payload(&self) -> String {
        match self {
            // Strings and JSON values always serialize.
            Event::Changed(e) => serde_json::to_string(e).expect("event payloads always serialize"),
        }
    }

    fn decode(event_type: &str, schema_version: i16, payload: &str) -> Result<Event, EventDecodeError> {
        match (event_type, schema_version) {
            ("ConfigChanged", 1) => serde_json::from_str(payload)
                .map(|e| Event::Changed(Box::new(e)))
                .map_err(|e| EventDecodeError::Payload("ConfigChanged", e)),
            (other, version) => Err(EventDecodeError::UnknownType(other.to_owned(), version)),
        }
    }

    fn schemas() -> Vec<EventSchema> {
        vec![EventSchema::of::<ConfigChanged>("ConfigChanged", 1)]
    }
}
