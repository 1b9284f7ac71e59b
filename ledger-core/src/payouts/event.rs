//! What happened to payout requests and payouts. A request's events are on its own stream
//! (`payout_request-<id>`), a payout's on its own (`payout-<id>`); the ledger transfers that
//! move the money are committed with them.

use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{PAYOUT_KIND, REQUEST_KIND};
use crate::domain::{DomainEvent, EntityRef, EventDecodeError, Subject};
use crate::ids::{AccountId, PayoutId, PayoutRequestId, Timestamp, TransferId};
use crate::money::CurrencyCode;
use crate::schema::EventSchema;

/// The payout account's posted balance around a movement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountBalance {
    pub before: Decimal,
    pub after: Decimal,
}

/// A client asked for its payout accounts to be paid out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PayoutRequested {
    pub id: PayoutRequestId,
    pub client_id: String,
    pub at: Timestamp,
}

/// The request was planned: one payout per `payout` account with a positive balance (none:
/// nothing to pay out).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PayoutRequestDone {
    pub id: PayoutRequestId,
    pub payouts: Vec<PayoutId>,
    pub at: Timestamp,
}

/// The request could not be planned; no payout was made for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PayoutRequestFailed {
    pub id: PayoutRequestId,
    pub error: String,
    pub at: Timestamp,
}

/// A payout of an account's whole balance, to be sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PayoutCreated {
    pub id: PayoutId,
    pub request: PayoutRequestId,
    pub client_id: String,
    pub account: AccountId,
    pub amount: Decimal,
    pub currency: CurrencyCode,
    pub at: Timestamp,
}

/// The payout was sent: its amount moved from the payout account to `payout_sent` by
/// `transfer`, and the cash-payment-fact was recorded. The ERP message is published from this
/// event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PayoutSent {
    pub id: PayoutId,
    pub client_id: String,
    pub account: AccountId,
    pub sent_account: AccountId,
    pub amount: Decimal,
    pub currency: CurrencyCode,
    pub cash_payment_fact: uuid::Uuid,
    pub transfer: TransferId,
    /// The payout account's balance around the move.
    pub balance: AccountBalance,
    pub at: Timestamp,
}

/// A payout not sent (e.g. the account no longer holds its amount), or paid, or rejected by
/// the ERP (the event type says which); a rejection's amount went back by `transfer`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PayoutClosed {
    pub id: PayoutId,
    pub reason: Option<String>,
    pub transfer: Option<TransferId>,
    /// The payout account's balance around the return of a rejected payout.
    pub balance: Option<AccountBalance>,
    pub at: Timestamp,
}

/// Every event type of the payouts domain with the schema version written today.
pub const EVENT_TYPES: [(&str, i16); 8] = [
    ("PayoutRequested", 1),
    ("PayoutRequestDone", 1),
    ("PayoutRequestFailed", 1),
    ("PayoutCreated", 1),
    ("PayoutSent", 1),
    ("PayoutFailed", 1),
    ("PayoutPaid", 1),
    ("PayoutRejected", 1),
];

/// Payloads are boxed, as the certificates' are: the log's event type stays the ledger's size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Requested(Box<PayoutRequested>),
    RequestDone(Box<PayoutRequestDone>),
    RequestFailed(Box<PayoutRequestFailed>),
    Created(Box<PayoutCreated>),
    Sent(Box<PayoutSent>),
    Failed(Box<PayoutClosed>),
    Paid(Box<PayoutClosed>),
    Rejected(Box<PayoutClosed>),
}

impl Event {
    /// The request or payout the event is about.
    pub fn entity(&self) -> EntityRef {
        let (kind, id) = match self {
            Event::Requested(e) => (REQUEST_KIND, e.id.0),
            Event::RequestDone(e) => (REQUEST_KIND, e.id.0),
            Event::RequestFailed(e) => (REQUEST_KIND, e.id.0),
            Event::Created(e) => (PAYOUT_KIND, e.id.0),
            Event::Sent(e) => (PAYOUT_KIND, e.id.0),
            Event::Failed(e) | Event::Paid(e) | Event::Rejected(e) => (PAYOUT_KIND, e.id.0),
        };
        EntityRef { kind, id }
    }
}

impl DomainEvent for Event {
    const TYPES: &'static [(&'static str, i16)] = &EVENT_TYPES;

    fn event_type(&self) -> &'static str {
        match self {
            Event::Requested(_) => "PayoutRequested",
            Event::RequestDone(_) => "PayoutRequestDone",
            Event::RequestFailed(_) => "PayoutRequestFailed",
            Event::Created(_) => "PayoutCreated",
            Event::Sent(_) => "PayoutSent",
            Event::Failed(_) => "PayoutFailed",
            Event::Paid(_) => "PayoutPaid",
            Event::Rejected(_) => "PayoutRejected",
        }
    }

    fn subject(&self) -> Subject {
        Subject::Entity(self.entity())
    }

    fn at(&self) -> Timestamp {
        match self {
            Event::Requested(e) => e.at,
            Event::RequestDone(e) => e.at,
            Event::RequestFailed(e) => e.at,
            Event::Created(e) => e.at,
            Event::Sent(e) => e.at,
            Event::Failed(e) | Event::Paid(e) | Event::Rejected(e) => e.at,
        }
    }

    fn payload(&self) -> String {
        let text = match self {
            Event::Requested(e) => serde_json::to_string(e),
            Event::RequestDone(e) => serde_json::to_string(e),
            Event::RequestFailed(e) => serde_json::to_string(e),
            Event::Created(e) => serde_json::to_string(e),
            Event::Sent(e) => serde_json::to_string(e),
            Event::Failed(e) | Event::Paid(e) | Event::Rejected(e) => serde_json::to_string(e),
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
            "PayoutRequested" => Event::Requested(body("PayoutRequested", payload)?),
            "PayoutRequestDone" => Event::RequestDone(body("PayoutRequestDone", payload)?),
            "PayoutRequestFailed" => Event::RequestFailed(body("PayoutRequestFailed", payload)?),
            "PayoutCreated" => Event::Created(body("PayoutCreated", payload)?),
            "PayoutSent" => Event::Sent(body("PayoutSent", payload)?),
            "PayoutFailed" => Event::Failed(body("PayoutFailed", payload)?),
            "PayoutPaid" => Event::Paid(body("PayoutPaid", payload)?),
            "PayoutRejected" => Event::Rejected(body("PayoutRejected", payload)?),
            other => return Err(EventDecodeError::UnknownType(other.to_owned(), schema_version)),
        })
    }

    fn schemas() -> Vec<EventSchema> {
        vec![
            EventSchema::of::<PayoutRequested>("PayoutRequested", 1),
            EventSchema::of::<PayoutRequestDone>("PayoutRequestDone", 1),
            EventSchema::of::<PayoutRequestFailed>("PayoutRequestFailed", 1),
            EventSchema::of::<PayoutCreated>("PayoutCreated", 1),
            EventSchema::of::<PayoutSent>("PayoutSent", 1),
            EventSchema::of::<PayoutClosed>("PayoutFailed", 1),
            EventSchema::of::<PayoutClosed>("PayoutPaid", 1),
            EventSchema::of::<PayoutClosed>("PayoutRejected", 1),
        ]
    }
}
