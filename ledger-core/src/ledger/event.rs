//! Events: what happened, in the past tense. Immutable once recorded; `apply` folds them into state.
//!
//! Each event type has its own schema version. A change to a payload's shape gets a new version;
//! the old shape stays here (in [`old`]) with an upcaster, so events stored long ago still read
//! as today's types, and their JSON Schemas stay published (see `schemas`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain::{DomainEvent, EventDecodeError, Subject};
use crate::ids::{AccountId, Timestamp, TransferId};
use crate::ledger::account::{AccountKind, BalanceLimit};
use crate::ledger::transfer::Posting;
use crate::money::CurrencyCode;
use crate::schema::EventSchema;

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

/// Every event type of the ledger domain with the schema version written today.
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

impl DomainEvent for Event {
    const TYPES: &'static [(&'static str, i16)] = &EVENT_TYPES;

    fn event_type(&self) -> &'static str {
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
    fn subject(&self) -> Subject {
        match self {
            Event::AccountOpened(e) => Subject::Account(e.id),
            Event::AccountFrozen(e) | Event::AccountUnfrozen(e) | Event::AccountClosed(e) => Subject::Account(e.id),
            Event::TransferPosted(e) | Event::PendingTransferCreated(e) => Subject::Transfer(e.id),
            Event::PendingTransferPosted(e) => Subject::Transfer(e.id),
            Event::PendingTransferVoided(e) | Event::PendingTransferExpired(e) => Subject::Transfer(e.id),
        }
    }

    fn at(&self) -> Timestamp {
        match self {
            Event::AccountOpened(e) => e.at,
            Event::AccountFrozen(e) | Event::AccountUnfrozen(e) | Event::AccountClosed(e) => e.at,
            Event::TransferPosted(e) | Event::PendingTransferCreated(e) => e.at,
            Event::PendingTransferPosted(e) => e.at,
            Event::PendingTransferVoided(e) | Event::PendingTransferExpired(e) => e.at,
        }
    }

    fn payload(&self) -> String {
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

    fn decode(event_type: &str, schema_version: i16, payload: &str) -> Result<Event, EventDecodeError> {
        fn body<T: serde::de::DeserializeOwned>(name: &'static str, payload: &str) -> Result<T, EventDecodeError> {
            serde_json::from_str(payload).map_err(|e| EventDecodeError::Payload(name, e))
        }
        fn status(name: &'static str, version: i16, payload: &str) -> Result<AccountStatusChanged, EventDecodeError> {
            match version {
                1 => body::<old::AccountStatusChangedV1>(name, payload).map(Into::into),
                _ => body(name, payload),
            }
        }
        let current = EVENT_TYPES.iter().find(|(t, _)| *t == event_type).map(|(_, v)| *v);
        if current.is_none_or(|current| !(1..=current).contains(&schema_version)) {
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

    fn schemas() -> Vec<EventSchema> {
        let mut all = vec![EventSchema::of::<AccountOpened>("AccountOpened", 1)];
        for status in ["AccountFrozen", "AccountUnfrozen", "AccountClosed"] {
            all.push(EventSchema::of::<old::AccountStatusChangedV1>(status, 1));
            all.push(EventSchema::of::<AccountStatusChanged>(status, 2));
        }
        for created in ["TransferPosted", "PendingTransferCreated"] {
            all.push(EventSchema::of::<TransferCreated>(created, 1));
        }
        all.push(EventSchema::of::<PendingPosted>("PendingTransferPosted", 1));
        for released in ["PendingTransferVoided", "PendingTransferExpired"] {
            all.push(EventSchema::of::<PendingReleased>(released, 1));
        }
        all
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
            let event = crate::Event::from(event);
            assert!(crate::domain::current_version(event.event_type()).is_some(), "{}", event.event_type());
            let back = crate::Event::from_parts(event.event_type(), event.schema_version(), &event.payload()).unwrap();
            assert_eq!(back, event);
        }
    }

    #[test]
    fn version_1_status_changes_upcast_with_no_reason() {
        let id = Uuid::from_u128(7);
        let payload = format!(r#"{{"id":"{id}","at":1700000000000000}}"#);
        let event = crate::Event::from_parts("AccountFrozen", 1, &payload).unwrap();
        let expected = AccountStatusChanged { id: AccountId(id), reason: None, at: Timestamp(1_700_000_000_000_000) };
        assert_eq!(event, crate::Event::Ledger(Event::AccountFrozen(expected)));
        // A version-2 field in a version-1 payload is refused, not dropped.
        let v2 = format!(r#"{{"id":"{id}","reason":"x","at":1}}"#);
        assert!(matches!(crate::Event::from_parts("AccountClosed", 1, &v2), Err(EventDecodeError::Payload(..))));
        // Versions from the future, or below 1, are unknown.
        assert!(matches!(
            crate::Event::from_parts("AccountFrozen", 3, &payload),
            Err(EventDecodeError::UnknownType(..))
        ));
        assert!(matches!(crate::Event::from_parts("TransferPosted", 0, "{}"), Err(EventDecodeError::UnknownType(..))));
    }
}
