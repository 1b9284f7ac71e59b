//! What happened to providers and fund movements. A provider's events are on its own stream
//! (`recon_provider-<id>`), a movement's on its own (`recon_movement-<id>`); the ledger
//! transfers that move the money are committed with them.

use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::command::{Direction, Resolution, Totals};
use super::{movement_entity, provider_entity, resolution_entity, rule_entity, run_entity, schedule_entity};
use crate::domain::{DomainEvent, EntityRef, EventDecodeError, Subject};
use crate::ids::{MovementId, RunId, Timestamp, TransferId};
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

/// A matching rule was created or replaced; `spec` is its canonical form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleSet {
    pub name: String,
    pub spec: serde_json::Value,
    pub at: Timestamp,
}

/// A rule as a run applies it: its name and its canonical form when the run started.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunRule {
    pub name: String,
    pub spec: serde_json::Value,
}

/// A reconciliation run began: of `provider`, over its statement from `from` (the previous
/// completed run's time; none: from the start) to `as_of`. `players`: the players' balances
/// attributed to the provider at that moment, when the run is as of now (the writer's exact
/// sum); a run as of an earlier time reads them from the balances' history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunStarted {
    pub id: RunId,
    pub provider: String,
    pub from: Option<Timestamp>,
    pub as_of: Timestamp,
    /// The rules in the order they apply, as they stood when the run started.
    pub rules: Vec<RunRule>,
    pub schedule: Option<String>,
    pub players: Option<Decimal>,
    pub at: Timestamp,
}

/// A run's result: the balances compared (`difference` = reported − players; `matched` when
/// within the provider's tolerance), what the line matching counted, and the hashes of the
/// lines read and the items found (kept beside the log, recomputable from it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunCompleted {
    pub id: RunId,
    pub reported: Decimal,
    pub players: Decimal,
    pub difference: Decimal,
    pub matched: bool,
    pub totals: Totals,
    pub lines_hash: String,
    pub items_hash: String,
    pub duration_ms: u64,
    pub at: Timestamp,
}

/// A run could not be computed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunFailed {
    pub id: RunId,
    pub reason: String,
    pub at: Timestamp,
}

/// A run found the provider's transactional balance off the players' balances by more than the
/// provider's tolerance: the alert (`recon.discrepancy` for webhook endpoints), beside a
/// critical audit entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Discrepancy {
    pub run: RunId,
    pub provider: String,
    pub currency: CurrencyCode,
    pub reported: Decimal,
    pub players: Decimal,
    pub difference: Decimal,
    pub tolerance: Decimal,
    pub as_of: Timestamp,
    pub at: Timestamp,
}

/// An operator matched or dismissed an item by hand.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemResolved {
    pub item: uuid::Uuid,
    pub run: RunId,
    pub provider: String,
    pub action: Resolution,
    pub counterpart: Option<String>,
    pub reason: String,
    pub at: Timestamp,
}

/// A schedule was created or changed; `next_due` is when it fires next.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSet {
    pub id: String,
    pub provider: String,
    pub cron: String,
    pub rules: Vec<String>,
    pub enabled: bool,
    pub next_due: Option<Timestamp>,
    pub at: Timestamp,
}

/// A schedule fired at `due`: it started `run`, or skipped (the refusal's code says why).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleFired {
    pub id: String,
    pub due: Timestamp,
    pub run: Option<RunId>,
    pub skipped: Option<String>,
    pub next_due: Option<Timestamp>,
    pub at: Timestamp,
}

/// Every event type of the reconciliation with the schema version written today.
pub const EVENT_TYPES: [(&str, i16); 14] = [
    ("ProviderSet", 1),
    ("MovementRequested", 1),
    ("MovementAttemptFailed", 1),
    ("MovementSucceeded", 1),
    ("MovementRefused", 1),
    ("MovementFailed", 1),
    ("RuleSet", 1),
    ("RunStarted", 1),
    ("RunCompleted", 1),
    ("RunFailed", 1),
    ("Discrepancy", 1),
    ("ItemResolved", 1),
    ("ScheduleSet", 1),
    ("ScheduleFired", 1),
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
    RuleSet(Box<RuleSet>),
    RunStarted(Box<RunStarted>),
    RunCompleted(Box<RunCompleted>),
    RunFailed(Box<RunFailed>),
    Discrepancy(Box<Discrepancy>),
    ItemResolved(Box<ItemResolved>),
    ScheduleSet(Box<ScheduleSet>),
    ScheduleFired(Box<ScheduleFired>),
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
            Event::RuleSet(e) => rule_entity(&e.name),
            Event::RunStarted(e) => run_entity(e.id),
            Event::RunCompleted(e) => run_entity(e.id),
            Event::RunFailed(e) => run_entity(e.id),
            Event::Discrepancy(e) => run_entity(e.run),
            Event::ItemResolved(e) => resolution_entity(e.item),
            Event::ScheduleSet(e) => schedule_entity(&e.id),
            Event::ScheduleFired(e) => schedule_entity(&e.id),
        }
    }
}

impl DomainEvent for Event {
    const TYPES: &'static [(&'static str, i16)] = &EVENT_TYPES;

    fn event_type(&self) -> &'static str {
        match self {
            Event::ProviderSet(_) => "ProviderSet",
            Event::MovementRequested(_) => "MovementRequested",
            Event::AttemptFailed(_) => "MovementAttemptFailed",
            Event::Succeeded(_) => "MovementSucceeded",
            Event::Refused(_) => "MovementRefused",
            Event::Failed(_) => "MovementFailed",
            Event::RuleSet(_) => "RuleSet",
            Event::RunStarted(_) => "RunStarted",
            Event::RunCompleted(_) => "RunCompleted",
            Event::RunFailed(_) => "RunFailed",
            Event::Discrepancy(_) => "Discrepancy",
            Event::ItemResolved(_) => "ItemResolved",
            Event::ScheduleSet(_) => "ScheduleSet",
            Event::ScheduleFired(_) => "ScheduleFired",
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
            Event::RuleSet(e) => e.at,
            Event::RunStarted(e) => e.at,
            Event::RunCompleted(e) => e.at,
            Event::RunFailed(e) => e.at,
            Event::Discrepancy(e) => e.at,
            Event::ItemResolved(e) => e.at,
            Event::ScheduleSet(e) => e.at,
            Event::ScheduleFired(e) => e.at,
        }
    }

    fn payload(&self) -> String {
        let text = match self {
            Event::ProviderSet(e) => serde_json::to_string(e),
            Event::MovementRequested(e) => serde_json::to_string(e),
            Event::AttemptFailed(e) | Event::Succeeded(e) | Event::Refused(e) | Event::Failed(e) => {
                serde_json::to_string(e)
            }
            Event::RuleSet(e) => serde_json::to_string(e),
            Event::RunStarted(e) => serde_json::to_string(e),
            Event::RunCompleted(e) => serde_json::to_string(e),
            Event::RunFailed(e) => serde_json::to_string(e),
            Event::Discrepancy(e) => serde_json::to_string(e),
            Event::ItemResolved(e) => serde_json::to_string(e),
            Event::ScheduleSet(e) => serde_json::to_string(e),
            Event::ScheduleFired(e) => serde_json::to_string(e),
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
            "ProviderSet" => Event::ProviderSet(body("ProviderSet", payload)?),
            "MovementRequested" => Event::MovementRequested(body("MovementRequested", payload)?),
            "MovementAttemptFailed" => Event::AttemptFailed(body("MovementAttemptFailed", payload)?),
            "MovementSucceeded" => Event::Succeeded(body("MovementSucceeded", payload)?),
            "MovementRefused" => Event::Refused(body("MovementRefused", payload)?),
            "MovementFailed" => Event::Failed(body("MovementFailed", payload)?),
            "RuleSet" => Event::RuleSet(body("RuleSet", payload)?),
            "RunStarted" => Event::RunStarted(body("RunStarted", payload)?),
            "RunCompleted" => Event::RunCompleted(body("RunCompleted", payload)?),
            "RunFailed" => Event::RunFailed(body("RunFailed", payload)?),
            "Discrepancy" => Event::Discrepancy(body("Discrepancy", payload)?),
            "ItemResolved" => Event::ItemResolved(body("ItemResolved", payload)?),
            "ScheduleSet" => Event::ScheduleSet(body("ScheduleSet", payload)?),
            "ScheduleFired" => Event::ScheduleFired(body("ScheduleFired", payload)?),
            other => return Err(EventDecodeError::UnknownType(other.to_owned(), schema_version)),
        })
    }

    fn schemas() -> Vec<EventSchema> {
        vec![
            EventSchema::of::<ProviderSet>("ProviderSet", 1),
            EventSchema::of::<MovementRequested>("MovementRequested", 1),
            EventSchema::of::<MovementStep>("MovementAttemptFailed", 1),
            EventSchema::of::<MovementStep>("MovementSucceeded", 1),
            EventSchema::of::<MovementStep>("MovementRefused", 1),
            EventSchema::of::<MovementStep>("MovementFailed", 1),
            EventSchema::of::<RuleSet>("RuleSet", 1),
            EventSchema::of::<RunStarted>("RunStarted", 1),
            EventSchema::of::<RunCompleted>("RunCompleted", 1),
            EventSchema::of::<RunFailed>("RunFailed", 1),
            EventSchema::of::<Discrepancy>("Discrepancy", 1),
            EventSchema::of::<ItemResolved>("ItemResolved", 1),
            EventSchema::of::<ScheduleSet>("ScheduleSet", 1),
            EventSchema::of::<ScheduleFired>("ScheduleFired", 1),
        ]
    }
}
