//! Events: what happened, in the past tense. Immutable once recorded; `apply` folds them into state.

use serde::{Deserialize, Serialize};

use crate::account::{AccountKind, BalanceLimit};
use crate::ids::{AccountId, Timestamp, TransferId};
use crate::money::CurrencyCode;
use crate::transfer::Posting;

/// The schema version every event is written with today. Older versions are upcast when read.
pub const SCHEMA_VERSION: i16 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountOpened {
    pub id: AccountId,
    pub code: String,
    pub currency: CurrencyCode,
    pub kind: AccountKind,
    pub limit: BalanceLimit,
    pub metadata: serde_json::Value,
    pub at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountStatusChanged {
    pub id: AccountId,
    pub at: Timestamp,
}

/// A new journal entry: posted at once (`TransferPosted`) or held (`PendingTransferCreated`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferCreated {
    pub id: TransferId,
    pub postings: Vec<Posting>,
    pub timeout_at: Option<Timestamp>,
    pub reverses: Option<TransferId>,
    pub external_ref: Option<String>,
    pub metadata: serde_json::Value,
    pub at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingPosted {
    pub id: TransferId,
    /// What is posted: the held postings, or smaller amounts.
    pub postings: Vec<Posting>,
    pub at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingReleased {
    pub id: TransferId,
    pub at: Timestamp,
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

    /// Reads a stored event back. The place where older schema versions get upcast.
    pub fn from_parts(event_type: &str, schema_version: i16, payload: &str) -> Result<Event, EventDecodeError> {
        fn body<T: serde::de::DeserializeOwned>(name: &'static str, payload: &str) -> Result<T, EventDecodeError> {
            serde_json::from_str(payload).map_err(|e| EventDecodeError::Payload(name, e))
        }
        if schema_version != SCHEMA_VERSION {
            return Err(EventDecodeError::UnknownType(event_type.to_owned(), schema_version));
        }
        Ok(match event_type {
            "AccountOpened" => Event::AccountOpened(body("AccountOpened", payload)?),
            "AccountFrozen" => Event::AccountFrozen(body("AccountFrozen", payload)?),
            "AccountUnfrozen" => Event::AccountUnfrozen(body("AccountUnfrozen", payload)?),
            "AccountClosed" => Event::AccountClosed(body("AccountClosed", payload)?),
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
