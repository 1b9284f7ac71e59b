//! Events: what happened, in the past tense. Immutable once recorded; `apply` folds them into state.
//!
//! Each event type has its own schema version. A change to a payload's shape gets a new version;
//! the old shape stays here (in [`old`]) with an upcaster, so events stored long ago still read
//! as today's types, and their JSON Schemas stay published (see [`crate::schema`]).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::account::{AccountKind, BalanceLimit};
use crate::ids::{AccountId, Timestamp, TransferId};
use crate::money::CurrencyCode;
use crate::transfer::Posting;

/// The longest reason a status change may carry, in bytes.
pub const MAX_REASON_BYTES: usize = 500;

/// An account was opened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountOpened {
    pub id: AccountId,
    /// Unique, human-readable code, e.g. `player:42:main`.
    pub code: String,
    pub currency: CurrencyCode,
    pub kind: AccountKind,
    pub limit: BalanceLimit,
    pub metadata: serde_json::Value,
    pub at: Timestamp,
}

/// An account was frozen, unfrozen or closed (the event type says which), with the operator's
/// reason when one was given. Version 2; version 1 had no `reason`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountStatusChanged {
    pub id: AccountId,
    pub reason: Option<String>,
    pub at: Timestamp,
}

/// A new journal entry: posted at once (`TransferPosted`) or held (`PendingTransferCreated`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferCreated {
    pub id: TransferId,
    /// The legs; per currency, debits equal credits.
    pub postings: Vec<Posting>,
    /// When a pending transfer expires.
    pub timeout_at: Option<Timestamp>,
    /// The transfer this one reverses, for compensating transfers.
    pub reverses: Option<TransferId>,
    pub external_ref: Option<String>,
    pub metadata: serde_json::Value,
    pub at: Timestamp,
}

/// A pending transfer was posted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PendingPosted {
    pub id: TransferId,
    /// What is posted: the held postings, or smaller amounts.
    pub postings: Vec<Posting>,
    pub at: Timestamp,
}

/// A pending transfer was voided or expired: its holds are released.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PendingReleased {
    pub id: TransferId,
    pub at: Timestamp,
}

/// Payload shapes of earlier schema versions, kept so stored events keep reading, each with its
/// upcaster to the current shape.
pub mod old {
    use super::*;

    /// `AccountFrozen`, `AccountUnfrozen` and `AccountClosed`, version 1.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct AccountStatusChangedV1 {
        pub id: AccountId,
        pub at: Timestamp,
    }

    impl From<AccountStatusChangedV1> for AccountStatusChanged {
        fn from(v1: AccountStatusChangedV1) -> Self {
            AccountStatusChanged { id: v1.id, reason: None, at: v1.at }
        }
    }
}

/// Every event type with the schema version written today.
pub const EVENT_TYPES: [(&str, i16); 9] = [
    ("AccountOpened", 1),
    ("AccountFrozen", 2),
    ("AccountUnfrozen", 2),
    ("AccountClosed", 2),
    ("TransferPosted", 1),
    ("PendingTransferCreated", 1),
    ("PendingTransferPosted", 1),
    ("PendingTransferVoided", 1),
    ("PendingTransferExpired", 1),
];

/// The schema version `event_type` is written with today, if it is a known type.
pub fn current_version(event_type: &str) -> Option<i16> {
    EVENT_TYPES.iter().find(|(t, _)| *t == event_type).map(|(_, v)| *v)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    AccountOpened(AccountOpened),
    AccountFrozen(AccountStatusChanged),
    AccountUnfrozen(AccountStatusChanged),
    AccountClosed(AccountStatusChanged),
    TransferPosted(TransferCreated),
    PendingTransferCreated(TransferCreated),
    PendingTransferPosted(PendingPosted),
    PendingTransferVoided(PendingReleased),
    PendingTransferExpired(PendingReleased),
}

/// The entity an event is about; its stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Subject {
    Account(AccountId),
    Transfer(TransferId),
}

#[derive(Debug, thiserror::Error)]
pub enum EventDecodeError {
    #[error("unknown event type {0:?} (schema version {1})")]
    UnknownType(String, i16),
    #[error("malformed {0} payload: {1}")]
    Payload(&'static str, serde_json::Error),
}

impl Event {
    pub fn event_type(&self) -> &'static str {
        match self {
            Event::AccountOpened(_) => "AccountOpened",
            Event::AccountFrozen(_) => "AccountFrozen",
            Event::AccountUnfrozen(_) => "AccountUnfrozen",
            Event::AccountClosed(_) => "AccountClosed",
            Event::TransferPosted(_) => "TransferPosted",
            Event::PendingTransferCreated(_) => "PendingTransferCreated",
            Event::PendingTransferPosted(_) => "PendingTransferPosted",
            Event::PendingTransferVoided(_) => "PendingTransferVoided",
            Event::PendingTransferExpired(_) => "PendingTransferExpired",
        }
    }

    /// The entity whose stream the event belongs to: its account or its transfer.
    pub fn subject(&self) -> Subject {
        match self {
            Event::AccountOpened(e) => Subject::Account(e.id),
            Event::AccountFrozen(e) | Event::AccountUnfrozen(e) | Event::AccountClosed(e) => Subject::Account(e.id),
            Event::TransferPosted(e) | Event::PendingTransferCreated(e) => Subject::Transfer(e.id),
            Event::PendingTransferPosted(e) => Subject::Transfer(e.id),
            Event::PendingTransferVoided(e) | Event::PendingTransferExpired(e) => Subject::Transfer(e.id),
        }
    }

    /// The stream id, e.g. `account-<uuid>` or `transfer-<uuid>`.
    pub fn stream(&self) -> String {
        match self.subject() {
            Subject::Account(id) => id.stream(),
            Subject::Transfer(id) => id.stream(),
        }
    }

    pub fn at(&self) -> Timestamp {
        match self {
            Event::AccountOpened(e) => e.at,
            Event::AccountFrozen(e) | Event::AccountUnfrozen(e) | Event::AccountClosed(e) => e.at,
            Event::TransferPosted(e) | Event::PendingTransferCreated(e) => e.at,
            Event::PendingTransferPosted(e) => e.at,
            Event::PendingTransferVoided(e) | Event::PendingTransferExpired(e) => e.at,
        }
    }

    /// The event's body as JSON text, without its type (which travels beside it).
    pub fn payload(&self) -> String {
        let text = match self {
            Event::AccountOpened(e) => serde_json::to_string(e),
            Event::AccountFrozen(e) | Event::AccountUnfrozen(e) | Event::AccountClosed(e) => serde_json::to_string(e),
            Event::TransferPosted(e) | Event::PendingTransferCreated(e) => serde_json::to_string(e),
            Event::PendingTransferPosted(e) => serde_json::to_string(e),
            Event::PendingTransferVoided(e) | Event::PendingTransferExpired(e) => serde_json::to_string(e),
        };
        // Serializing plain structs of strings, numbers and JSON values cannot fail.
        text.expect("event payloads always serialize")
    }

    /// The schema version this event is written with.
    pub fn schema_version(&self) -> i16 {
        // Every variant's type is in EVENT_TYPES (a unit test checks it).
        current_version(self.event_type()).unwrap_or(1)
    }

    /// Reads a stored event back, upcasting older schema versions to today's types.
    pub fn from_parts(event_type: &str, schema_version: i16, payload: &str) -> Result<Event, EventDecodeError> {
        fn body<T: serde::de::DeserializeOwned>(name: &'static str, payload: &str) -> Result<T, EventDecodeError> {
            serde_json::from_str(payload).map_err(|e| EventDecodeError::Payload(name, e))
        }
        fn status(name: &'static str, version: i16, payload: &str) -> Result<AccountStatusChanged, EventDecodeError> {
            match version {
                1 => body::<old::AccountStatusChangedV1>(name, payload).map(Into::into),
                _ => body(name, payload),
            }
        }
        if current_version(event_type).is_none_or(|current| !(1..=current).contains(&schema_version)) {
            return Err(EventDecodeError::UnknownType(event_type.to_owned(), schema_version));
        }
        Ok(match event_type {
            "AccountOpened" => Event::AccountOpened(body("AccountOpened", payload)?),
            "AccountFrozen" => Event::AccountFrozen(status("AccountFrozen", schema_version, payload)?),
            "AccountUnfrozen" => Event::AccountUnfrozen(status("AccountUnfrozen", schema_version, payload)?),
            "AccountClosed" => Event::AccountClosed(status("AccountClosed", schema_version, payload)?),
            "TransferPosted" => Event::TransferPosted(body("TransferPosted", payload)?),
            "PendingTransferCreated" => Event::PendingTransferCreated(body("PendingTransferCreated", payload)?),
            "PendingTransferPosted" => Event::PendingTransferPosted(body("PendingTransferPosted", payload)?),
            "PendingTransferVoided" => Event::PendingTransferVoided(body("PendingTransferVoided", payload)?),
            "PendingTransferExpired" => Event::PendingTransferExpired(body("PendingTransferExpired", payload)?),
            other => {
                return Err(EventDecodeError::UnknownType(other.to_owned(), schema_version));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn every_variant_has_a_current_version() {
        let id = AccountId(Uuid::from_u128(1));
        let changed = AccountStatusChanged { id, reason: None, at: Timestamp(5) };
        let released = PendingReleased { id: TransferId(Uuid::from_u128(2)), at: Timestamp(5) };
        for event in [
            Event::AccountFrozen(changed.clone()),
            Event::AccountUnfrozen(changed.clone()),
            Event::AccountClosed(changed),
            Event::PendingTransferVoided(released.clone()),
            Event::PendingTransferExpired(released),
        ] {
            assert!(current_version(event.event_type()).is_some(), "{}", event.event_type());
            let back = Event::from_parts(event.event_type(), event.schema_version(), &event.payload()).unwrap();
            assert_eq!(back, event);
        }
    }

    #[test]
    fn version_1_status_changes_upcast_with_no_reason() {
        let id = Uuid::from_u128(7);
        let payload = format!(r#"{{"id":"{id}","at":1700000000000000}}"#);
        let event = Event::from_parts("AccountFrozen", 1, &payload).unwrap();
        let expected = AccountStatusChanged { id: AccountId(id), reason: None, at: Timestamp(1_700_000_000_000_000) };
        assert_eq!(event, Event::AccountFrozen(expected));
        // A version-2 field in a version-1 payload is refused, not dropped.
        let v2 = format!(r#"{{"id":"{id}","reason":"x","at":1}}"#);
        assert!(matches!(Event::from_parts("AccountClosed", 1, &v2), Err(EventDecodeError::Payload(..))));
        // Versions from the future, or below 1, are unknown.
        assert!(matches!(Event::from_parts("AccountFrozen", 3, &payload), Err(EventDecodeError::UnknownType(..))));
        assert!(matches!(Event::from_parts("TransferPosted", 0, "{}"), Err(EventDecodeError::UnknownType(..))));
    }
}
