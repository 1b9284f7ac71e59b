//! What happened to providers and fund movements. A provider's events are on its own stream
//! (`recon_provider-<id>`), a movement's on its own (`recon_movement-<id>`); the ledger
//! transfers that move the money are committed with them.

use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::command::Direction;
use super::{movement_entity, provider_entity};
use crate::domain::{DomainEvent, EntityRef, EventDecodeError, Subject};
use crate::ids::{MovementId, Timestamp, TransferId};
use crate::money::CurrencyCode;
use crate::schema::EventSchema;

/// A provider was created (with its two accounts) or changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderSet {
    pub id: String,
    pub name: String,
    pub currency: CurrencyCode,
    pub base_url: String,
    pub tolerance: Decimal,
    pub at: Timestamp,
}

/// A fund movement was accepted and its amount held by `transfer`. The segregation figures
/// it was checked against: the transactional account's available balance before, and the
/// players' balances attributed to the provider.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MovementRequested {
    pub id: MovementId,
    pub provider: String,
    pub direction: Direction,
    pub amount: Decimal,
    pub currency: CurrencyCode,
    pub reason: String,
    pub transfer: TransferId,
    pub transactional: Decimal,
    pub players: Decimal,
    pub at: Timestamp,
}

/// One call to the provider and what came of it (the event type says which): a retryable
/// error with the time of the next call, the money moved (the hold posted), a refusal with the
/// provider's reason, or the last error after every attempt (both voiding the hold).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MovementStep {
    pub id: MovementId,
    /// The call's number, from 1.
    pub attempt: u32,
    /// The error or the provider's reason.
    pub detail: Option<String>,
    pub next_attempt_at: Option<Timestamp>,
    pub at: Timestamp,
}

/// Every event type of the reconciliation with the schema version written today.
pub const EVENT_TYPES: [(&str, i16); 6] = [
    ("ReconProviderSet", 1),
    ("ReconMovementRequested", 1),
    ("ReconMovementAttemptFailed", 1),
    ("ReconMovementSucceeded", 1),
    ("ReconMovementRefused", 1),
    ("ReconMovementFailed", 1),
];

/// Payloads are boxed, as the other domains' are: the log's event type stays the ledger's size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    ProviderSet(Box<ProviderSet>),
    MovementRequested(Box<MovementRequested>),
    AttemptFailed(Box<MovementStep>),
    Succeeded(Box<MovementStep>),
    Refused(Box<MovementStep>),
    Failed(Box<MovementStep>),
}

impl Event {
    /// The provider or movement the event is about.
    pub fn entity(&self) -> EntityRef {
        match self {
            Event::ProviderSet(e) => provider_entity(&e.id),
            Event::MovementRequested(e) => movement_entity(e.id),
            Event::AttemptFailed(e) | Event::Succeeded(e) | Event::Refused(e) | Event::Failed(e) => {
                movement_entity(e.id)
            }
        }
    }
}

impl DomainEvent for Event {
    const TYPES: &'static [(&'static str, i16)] = &EVENT_TYPES;

    fn event_type(&self) -> &'static str {
        match self {
            Event::ProviderSet(_) => "ReconProviderSet",
            Event::MovementRequested(_) => "ReconMovementRequested",
            Event::AttemptFailed(_) => "ReconMovementAttemptFailed",
            Event::Succeeded(_) => "ReconMovementSucceeded",
            Event::Refused(_) => "ReconMovementRefused",
            Event::Failed(_) => "ReconMovementFailed",
        }
    }

    fn subject(&self) -> Subject {
        Subject::Entity(self.entity())
    }

    fn at(&self) -> Timestamp {
        match self {
            Event::ProviderSet(e) => e.at,
            Event::MovementRequested(e) => e.at,
            Event::AttemptFailed(e) | Event::Succeeded(e) | Event::Refused(e) | Event::Failed(e) => e.at,
        }
    }

    fn payload(&self) -> String {
        let text = match self {
            Event::ProviderSet(e) => serde_json::to_string(e),
            Event::MovementRequested(e) => serde_json::to_string(e),
            Event::AttemptFailed(e) | Event::Succeeded(e) | Event::Refused(e) | Event::Failed(e) => {
                serde_json::to_string(e)
            }
        };
        // Plain structs of strings, numbers and ids always serialize.
        text.expect("event payloads always serialize")
    }

    fn decode(event_type: &str, schema_version: i16, payload: &str) -> Result<Event, EventDecodeError> {
        fn body<T: serde::de::DeserializeOwned>(name: &'static str, payload: &str) -> Result<Box<T>, EventDecodeError> {
            serde_json::from_str(payload).map(Box::new).map_err(|e| EventDecodeError::Payload(name, e))
        }
        if schema_version != 1 {
            return Err(EventDecodeError::UnknownType(event_type.to_owned(), schema_version));
        }
        Ok(match event_type {
            "ReconProviderSet" => Event::ProviderSet(body("ReconProviderSet", payload)?),
            "ReconMovementRequested" => Event::MovementRequested(body("ReconMovementRequested", payload)?),
            "ReconMovementAttemptFailed" => Event::AttemptFailed(body("ReconMovementAttemptFailed", payload)?),
            "ReconMovementSucceeded" => Event::Succeeded(body("ReconMovementSucceeded", payload)?),
            "ReconMovementRefused" => Event::Refused(body("ReconMovementRefused", payload)?),
            "ReconMovementFailed" => Event::Failed(body("ReconMovementFailed", payload)?),
            other => return Err(EventDecodeError::UnknownType(other.to_owned(), schema_version)),
        })
    }

    fn schemas() -> Vec<EventSchema> {
        vec![
            EventSchema::of::<ProviderSet>("ReconProviderSet", 1),
            EventSchema::of::<MovementRequested>("ReconMovementRequested", 1),
            EventSchema::of::<MovementStep>("ReconMovementAttemptFailed", 1),
            EventSchema::of::<MovementStep>("ReconMovementSucceeded", 1),
            EventSchema::of::<MovementStep>("ReconMovementRefused", 1),
            EventSchema::of::<MovementStep>("ReconMovementFailed", 1),
        ]
    }
}
