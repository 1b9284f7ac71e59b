//! What happened to stores, traders, requisites and orders, each on its own stream
//! (`order_store-<id>`, `order_trader-<id>`, `order_requisite-<id>`, `order-<id>`); the ledger
//! transfers that hold and move the money are committed with them. Secrets are sealed.

use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::command::{OrderKind, Sealed};
use super::state::Status;
use super::{ORDER_KIND, requisite_entity, store_entity, trader_entity};
use crate::domain::{DomainEvent, EntityRef, EntityRow, EventDecodeError, Subject};
use crate::ids::{OrderId, Timestamp, TransferId};
use crate::money::CurrencyCode;
use crate::schema::EventSchema;
use crate::webhook::{Callback, OwnedEndpoint};

/// A store was created, with its sealed callback secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StoreCreated {
    pub id: String,
    pub name: String,
    pub fee: Decimal,
    pub settlement_currency: CurrencyCode,
    pub callback_url: Option<String>,
    pub secret: Sealed,
    pub at: Timestamp,
}

/// A store's name, fee or callback URL changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StoreUpdated {
    pub id: String,
    pub name: String,
    pub fee: Decimal,
    pub callback_url: Option<String>,
    pub at: Timestamp,
}

/// A store's callback secret was replaced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StoreSecretRotated {
    pub id: String,
    pub secret: Sealed,
    pub at: Timestamp,
}

/// A trader was created or changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TraderUpserted {
    pub id: String,
    pub fee: Decimal,
    pub priority: u32,
    pub traffic_enabled: bool,
    pub team_lead: Option<String>,
    pub currencies: Vec<CurrencyCode>,
    pub at: Timestamp,
}

/// A trader's requisite was created or changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequisiteUpserted {
    pub trader: String,
    pub id: String,
    pub method: String,
    pub bank: String,
    pub currency: CurrencyCode,
    pub min_amount: Decimal,
    pub max_amount: Decimal,
    pub daily_limit: Decimal,
    pub enabled: bool,
    pub details: Sealed,
    pub masked: String,
    pub at: Timestamp,
}

/// How the completion entry splits the settlement amount `A`: the store's fee `S` and the
/// trader's reward `T`, each round(A·fee) half-even at the settlement scale, and the platform's
/// share `S − T` (negative when the trader's fee exceeds the store's).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Split {
    pub store_fee: Decimal,
    pub trader_reward: Decimal,
    pub platform: Decimal,
}

/// The trader and requisite an order went to, and its hold: the completion entry, pending.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Assignment {
    pub trader: String,
    pub requisite: String,
    /// The requisite's details as they may be shown.
    pub masked: String,
    pub trader_fee: Decimal,
    pub split: Split,
    pub hold: TransferId,
    pub expires_at: Timestamp,
}

/// A store's order, with the terms it was created under: `pending` (assigned and held),
/// `manual_review` (nothing held until approved) or `denied` (over the fraud limit).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderCreated {
    pub id: OrderId,
    pub store: String,
    pub kind: OrderKind,
    pub external_order_id: String,
    pub amount: Decimal,
    pub currency: CurrencyCode,
    pub method: Option<String>,
    /// The trader the store asked for.
    pub requested_trader: Option<String>,
    pub callback_url: Option<String>,
    pub rate: Decimal,
    pub settlement_amount: Decimal,
    pub settlement_currency: CurrencyCode,
    pub store_fee: Decimal,
    pub timeout_seconds: u32,
    pub dispute_window_hours: u32,
    pub status: Status,
    pub assignment: Option<Assignment>,
    pub at: Timestamp,
}

/// An order in review was approved: assigned and held.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderApproved {
    pub id: OrderId,
    pub assignment: Assignment,
    pub at: Timestamp,
}

/// Any other change of an order's status (the event type says which), with the transfer that
/// moved the money, if one did: the hold posted or voided, or the reversal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderTransition {
    pub id: OrderId,
    pub reason: Option<String>,
    pub transfer: Option<TransferId>,
    pub at: Timestamp,
}

/// Every event type of the orders domain with the schema version written today.
pub const EVENT_TYPES: [(&str, i16); 15] = [
    ("StoreCreated", 1),
    ("StoreUpdated", 1),
    ("StoreSecretRotated", 1),
    ("TraderUpserted", 1),
    ("RequisiteUpserted", 1),
    ("OrderCreated", 1),
    ("OrderApproved", 1),
    ("OrderDenied", 1),
    ("OrderCompleted", 1),
    ("OrderCancelled", 1),
    ("OrderFailed", 1),
    ("OrderExpired", 1),
    ("OrderDisputed", 1),
    ("DisputeUpheld", 1),
    ("OrderReversed", 1),
];

/// Payloads are boxed: the log's event type stays the ledger's size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    StoreCreated(Box<StoreCreated>),
    StoreUpdated(Box<StoreUpdated>),
    StoreSecretRotated(Box<StoreSecretRotated>),
    TraderUpserted(Box<TraderUpserted>),
    RequisiteUpserted(Box<RequisiteUpserted>),
    Created(Box<OrderCreated>),
    Approved(Box<OrderApproved>),
    Denied(Box<OrderTransition>),
    Completed(Box<OrderTransition>),
    Cancelled(Box<OrderTransition>),
    Failed(Box<OrderTransition>),
    Expired(Box<OrderTransition>),
    Disputed(Box<OrderTransition>),
    DisputeUpheld(Box<OrderTransition>),
    Reversed(Box<OrderTransition>),
}

impl Event {
    /// The store, trader, requisite or order the event is about.
    pub fn entity(&self) -> EntityRef {
        match self {
            Event::StoreCreated(e) => store_entity(&e.id),
            Event::StoreUpdated(e) => store_entity(&e.id),
            Event::StoreSecretRotated(e) => store_entity(&e.id),
            Event::TraderUpserted(e) => trader_entity(&e.id),
            Event::RequisiteUpserted(e) => requisite_entity(&e.trader, &e.id),
            Event::Created(e) => EntityRef { kind: ORDER_KIND, id: e.id.0 },
            Event::Approved(e) => EntityRef { kind: ORDER_KIND, id: e.id.0 },
            Event::Denied(e)
            | Event::Completed(e)
            | Event::Cancelled(e)
            | Event::Failed(e)
            | Event::Expired(e)
            | Event::Disputed(e)
            | Event::DisputeUpheld(e)
            | Event::Reversed(e) => EntityRef { kind: ORDER_KIND, id: e.id.0 },
        }
    }

    /// The status an order event leaves its order in.
    pub fn status(&self) -> Option<Status> {
        Some(match self {
            Event::Created(e) => e.status,
            Event::Approved(_) => Status::Pending,
            Event::Denied(_) => Status::Denied,
            Event::Completed(_) | Event::DisputeUpheld(_) => Status::Completed,
            Event::Cancelled(_) => Status::Cancelled,
            Event::Failed(_) => Status::Failed,
            Event::Expired(_) => Status::Expired,
            Event::Disputed(_) => Status::Disputed,
            Event::Reversed(_) => Status::Reversed,
            _ => return None,
        })
    }
}

impl DomainEvent for Event {
    const TYPES: &'static [(&'static str, i16)] = &EVENT_TYPES;

    fn event_type(&self) -> &'static str {
        match self {
            Event::StoreCreated(_) => "StoreCreated",
            Event::StoreUpdated(_) => "StoreUpdated",
            Event::StoreSecretRotated(_) => "StoreSecretRotated",
            Event::TraderUpserted(_) => "TraderUpserted",
            Event::RequisiteUpserted(_) => "RequisiteUpserted",
            Event::Created(_) => "OrderCreated",
            Event::Approved(_) => "OrderApproved",
            Event::Denied(_) => "OrderDenied",
            Event::Completed(_) => "OrderCompleted",
            Event::Cancelled(_) => "OrderCancelled",
            Event::Failed(_) => "OrderFailed",
            Event::Expired(_) => "OrderExpired",
            Event::Disputed(_) => "OrderDisputed",
            Event::DisputeUpheld(_) => "DisputeUpheld",
            Event::Reversed(_) => "OrderReversed",
        }
    }

    fn subject(&self) -> Subject {
        Subject::Entity(self.entity())
    }

    fn at(&self) -> Timestamp {
        match self {
            Event::StoreCreated(e) => e.at,
            Event::StoreUpdated(e) => e.at,
            Event::StoreSecretRotated(e) => e.at,
            Event::TraderUpserted(e) => e.at,
            Event::RequisiteUpserted(e) => e.at,
            Event::Created(e) => e.at,
            Event::Approved(e) => e.at,
            Event::Denied(e)
            | Event::Completed(e)
            | Event::Cancelled(e)
            | Event::Failed(e)
            | Event::Expired(e)
            | Event::Disputed(e)
            | Event::DisputeUpheld(e)
            | Event::Reversed(e) => e.at,
        }
    }

    fn payload(&self) -> String {
        let text = match self {
            Event::StoreCreated(e) => serde_json::to_string(e),
            Event::StoreUpdated(e) => serde_json::to_string(e),
            Event::StoreSecretRotated(e) => serde_json::to_string(e),
            Event::TraderUpserted(e) => serde_json::to_string(e),
            Event::RequisiteUpserted(e) => serde_json::to_string(e),
            Event::Created(e) => serde_json::to_string(e),
            Event::Approved(e) => serde_json::to_string(e),
            Event::Denied(e)
            | Event::Completed(e)
            | Event::Cancelled(e)
            | Event::Failed(e)
            | Event::Expired(e)
            | Event::Disputed(e)
            | Event::DisputeUpheld(e)
            | Event::Reversed(e) => serde_json::to_string(e),
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
            "StoreCreated" => Event::StoreCreated(body("StoreCreated", payload)?),
            "StoreUpdated" => Event::StoreUpdated(body("StoreUpdated", payload)?),
            "StoreSecretRotated" => Event::StoreSecretRotated(body("StoreSecretRotated", payload)?),
            "TraderUpserted" => Event::TraderUpserted(body("TraderUpserted", payload)?),
            "RequisiteUpserted" => Event::RequisiteUpserted(body("RequisiteUpserted", payload)?),
            "OrderCreated" => Event::Created(body("OrderCreated", payload)?),
            "OrderApproved" => Event::Approved(body("OrderApproved", payload)?),
            "OrderDenied" => Event::Denied(body("OrderDenied", payload)?),
            "OrderCompleted" => Event::Completed(body("OrderCompleted", payload)?),
            "OrderCancelled" => Event::Cancelled(body("OrderCancelled", payload)?),
            "OrderFailed" => Event::Failed(body("OrderFailed", payload)?),
            "OrderExpired" => Event::Expired(body("OrderExpired", payload)?),
            "OrderDisputed" => Event::Disputed(body("OrderDisputed", payload)?),
            "DisputeUpheld" => Event::DisputeUpheld(body("DisputeUpheld", payload)?),
            "OrderReversed" => Event::Reversed(body("OrderReversed", payload)?),
            other => return Err(EventDecodeError::UnknownType(other.to_owned(), schema_version)),
        })
    }

    const CALLBACK_TYPES: &'static [&'static str] = super::callback::CALLBACK_TYPES;

    fn owned_endpoint(&self) -> Option<OwnedEndpoint> {
        super::callback::owned_endpoint(self)
    }

    fn callback(&self, row: Option<&EntityRow>) -> Option<Callback> {
        super::callback::callback(self, row)
    }

    fn schemas() -> Vec<EventSchema> {
        let mut all = vec![
            EventSchema::of::<StoreCreated>("StoreCreated", 1),
            EventSchema::of::<StoreUpdated>("StoreUpdated", 1),
            EventSchema::of::<StoreSecretRotated>("StoreSecretRotated", 1),
            EventSchema::of::<TraderUpserted>("TraderUpserted", 1),
            EventSchema::of::<RequisiteUpserted>("RequisiteUpserted", 1),
            EventSchema::of::<OrderCreated>("OrderCreated", 1),
            EventSchema::of::<OrderApproved>("OrderApproved", 1),
        ];
        for (name, _) in &EVENT_TYPES[7..] {
            all.push(EventSchema::of::<OrderTransition>(name, 1));
        }
        all
    }
}
