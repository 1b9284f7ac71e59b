//! What happened to gift certificates. Each event carries the certificate's state and balance
//! after it (and the balance before), so the state topic, the audit trail and BI read them
//! without replaying the ledger.

use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::KIND;
use super::command::SealedCvc;
use super::state::Status;
use crate::domain::{DomainEvent, EntityRef, EventDecodeError, Subject};
use crate::ids::{AccountId, CertificateId, Timestamp, TransferId};
use crate::money::CurrencyCode;
use crate::schema::EventSchema;

/// The certificate's balance around an event: posted before and after, and available after
/// (the balance less open authorizations).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BalanceChange {
    pub before: Decimal,
    pub after: Decimal,
    pub available: Decimal,
}

/// A certificate was issued from an uploaded row. No money moved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CertificateIssued {
    pub id: CertificateId,
    pub code: String,
    pub nominal: Decimal,
    pub currency: CurrencyCode,
    pub expires_at: Option<Timestamp>,
    pub campaign: Option<String>,
    pub phone: Option<String>,
    /// The certificate's liability account.
    pub account: AccountId,
    pub state: Status,
    pub at: Timestamp,
}

/// The certificate was paid for: its nominal was posted from sales clearing, and its CVC
/// (sealed) is to be sent to `phone`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CertificateActivated {
    pub id: CertificateId,
    pub code: String,
    pub order_id: String,
    pub payment_id: String,
    /// The buyer, when the order named one.
    #[serde(default)]
    pub client_id: Option<String>,
    pub phone: String,
    pub cvc: SealedCvc,
    pub transfer: TransferId,
    pub balance: BalanceChange,
    pub state: Status,
    pub at: Timestamp,
}

/// A wrong CVC was presented for an authorization.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CvcRefused {
    pub id: CertificateId,
    pub operation_id: String,
    /// Wrong CVCs in a row, this one included (0 once the certificate locks).
    pub failed_attempts: u32,
    /// Set when this attempt locked the certificate against authorizations.
    pub locked_until: Option<Timestamp>,
    /// Unchanged by a refusal; here so every certificate event says the balance it leaves.
    #[serde(default)]
    pub balance: Option<BalanceChange>,
    pub state: Status,
    pub at: Timestamp,
}

/// An operation that moved money on a certificate: an authorization (hold), a capture, a void
/// of either, a refund or a cancellation (the event type says which).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CertificateOperation {
    pub id: CertificateId,
    pub operation_id: String,
    /// Held, captured, released, returned, refunded or written off.
    pub amount: Decimal,
    /// The ledger transfer that moved it (none when nothing was left to move).
    pub transfer: Option<TransferId>,
    pub reason: Option<String>,
    pub balance: BalanceChange,
    pub state: Status,
    pub at: Timestamp,
}

/// The certificate passed its expiry: its balance was written off to breakage income (the
/// authorizations still open were released just before, each by its own
/// `CertificateAuthorizationVoided`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CertificateExpired {
    pub id: CertificateId,
    pub amount: Decimal,
    pub transfer: Option<TransferId>,
    pub balance: BalanceChange,
    pub state: Status,
    pub at: Timestamp,
}

/// Every event type of the certificates domain with the schema version written today.
pub const EVENT_TYPES: [(&str, i16); 10] = [
    ("CertificateIssued", 1),
    ("CertificateActivated", 1),
    ("CertificateCvcRefused", 1),
    ("CertificateAuthorized", 1),
    ("CertificateCaptured", 1),
    ("CertificateAuthorizationVoided", 1),
    ("CertificateCaptureVoided", 1),
    ("CertificateRefunded", 1),
    ("CertificateCancelled", 1),
    ("CertificateExpired", 1),
];

#[derive(Clone, Debug, PartialEq, Eq)]
/// Payloads are boxed: the log's event type (the sum of every domain's) stays as small as the
/// ledger's own, which the writer moves for every transfer.
pub enum Event {
    Issued(Box<CertificateIssued>),
    Activated(Box<CertificateActivated>),
    CvcRefused(Box<CvcRefused>),
    Authorized(Box<CertificateOperation>),
    Captured(Box<CertificateOperation>),
    AuthorizationVoided(Box<CertificateOperation>),
    CaptureVoided(Box<CertificateOperation>),
    Refunded(Box<CertificateOperation>),
    Cancelled(Box<CertificateOperation>),
    Expired(Box<CertificateExpired>),
}

impl Event {
    pub fn certificate(&self) -> CertificateId {
        match self {
            Event::Issued(e) => e.id,
            Event::Activated(e) => e.id,
            Event::CvcRefused(e) => e.id,
            Event::Authorized(e)
            | Event::Captured(e)
            | Event::AuthorizationVoided(e)
            | Event::CaptureVoided(e)
            | Event::Refunded(e)
            | Event::Cancelled(e) => e.id,
            Event::Expired(e) => e.id,
        }
    }

    /// What the audit trail calls the event: `issued`, `activated`, `cvc_refused`,
    /// `authorized`, `captured`, `authorization_voided`, `capture_voided`, `refunded`,
    /// `cancelled` or `expired`.
    pub fn action(&self) -> &'static str {
        match self {
            Event::Issued(_) => "issued",
            Event::Activated(_) => "activated",
            Event::CvcRefused(_) => "cvc_refused",
            Event::Authorized(_) => "authorized",
            Event::Captured(_) => "captured",
            Event::AuthorizationVoided(_) => "authorization_voided",
            Event::CaptureVoided(_) => "capture_voided",
            Event::Refunded(_) => "refunded",
            Event::Cancelled(_) => "cancelled",
            Event::Expired(_) => "expired",
        }
    }

    /// The channel's operation the event belongs to, if any.
    pub fn operation_id(&self) -> Option<&str> {
        match self {
            Event::CvcRefused(e) => Some(&e.operation_id),
            Event::Authorized(e)
            | Event::Captured(e)
            | Event::AuthorizationVoided(e)
            | Event::CaptureVoided(e)
            | Event::Refunded(e)
            | Event::Cancelled(e) => Some(&e.operation_id),
            Event::Issued(_) | Event::Activated(_) | Event::Expired(_) => None,
        }
    }

    /// The amount the event moved or held: the nominal on activation, none for an issue or a
    /// refused CVC.
    pub fn amount(&self) -> Option<Decimal> {
        match self {
            // An issued certificate is empty: what its activation posted is its balance after.
            Event::Activated(e) => Some(e.balance.after),
            Event::Authorized(e)
            | Event::Captured(e)
            | Event::AuthorizationVoided(e)
            | Event::CaptureVoided(e)
            | Event::Refunded(e)
            | Event::Cancelled(e) => Some(e.amount),
            Event::Expired(e) => Some(e.amount),
            Event::Issued(_) | Event::CvcRefused(_) => None,
        }
    }

    /// The balance around the event; an issue leaves zero; `None` for a refused CVC recorded
    /// before refusals carried it.
    pub fn balance(&self) -> Option<BalanceChange> {
        match self {
            Event::Issued(_) => {
                Some(BalanceChange { before: Decimal::ZERO, after: Decimal::ZERO, available: Decimal::ZERO })
            }
            Event::Activated(e) => Some(e.balance),
            Event::CvcRefused(e) => e.balance,
            Event::Authorized(e)
            | Event::Captured(e)
            | Event::AuthorizationVoided(e)
            | Event::CaptureVoided(e)
            | Event::Refunded(e)
            | Event::Cancelled(e) => Some(e.balance),
            Event::Expired(e) => Some(e.balance),
        }
    }

    /// The certificate's state after the event.
    pub fn state(&self) -> Status {
        match self {
            Event::Issued(e) => e.state,
            Event::Activated(e) => e.state,
            Event::CvcRefused(e) => e.state,
            Event::Authorized(e)
            | Event::Captured(e)
            | Event::AuthorizationVoided(e)
            | Event::CaptureVoided(e)
            | Event::Refunded(e)
            | Event::Cancelled(e) => e.state,
            Event::Expired(e) => e.state,
        }
    }
}

impl DomainEvent for Event {
    const TYPES: &'static [(&'static str, i16)] = &EVENT_TYPES;

    fn event_type(&self) -> &'static str {
        match self {
            Event::Issued(_) => "CertificateIssued",
            Event::Activated(_) => "CertificateActivated",
            Event::CvcRefused(_) => "CertificateCvcRefused",
            Event::Authorized(_) => "CertificateAuthorized",
            Event::Captured(_) => "CertificateCaptured",
            Event::AuthorizationVoided(_) => "CertificateAuthorizationVoided",
            Event::CaptureVoided(_) => "CertificateCaptureVoided",
            Event::Refunded(_) => "CertificateRefunded",
            Event::Cancelled(_) => "CertificateCancelled",
            Event::Expired(_) => "CertificateExpired",
        }
    }

    fn subject(&self) -> Subject {
        Subject::Entity(EntityRef { kind: KIND, id: self.certificate().0 })
    }

    fn at(&self) -> Timestamp {
        match self {
            Event::Issued(e) => e.at,
            Event::Activated(e) => e.at,
            Event::CvcRefused(e) => e.at,
            Event::Authorized(e)
            | Event::Captured(e)
            | Event::AuthorizationVoided(e)
            | Event::CaptureVoided(e)
            | Event::Refunded(e)
            | Event::Cancelled(e) => e.at,
            Event::Expired(e) => e.at,
        }
    }

    fn payload(&self) -> String {
        let text = match self {
            Event::Issued(e) => serde_json::to_string(e),
            Event::Activated(e) => serde_json::to_string(e),
            Event::CvcRefused(e) => serde_json::to_string(e),
            Event::Authorized(e)
            | Event::Captured(e)
            | Event::AuthorizationVoided(e)
            | Event::CaptureVoided(e)
            | Event::Refunded(e)
            | Event::Cancelled(e) => serde_json::to_string(e),
            Event::Expired(e) => serde_json::to_string(e),
        };
        // Serializing plain structs of strings, numbers and JSON values cannot fail.
        text.expect("event payloads always serialize")
    }

    fn decode(event_type: &str, schema_version: i16, payload: &str) -> Result<Event, EventDecodeError> {
        fn body<T: serde::de::DeserializeOwned>(name: &'static str, payload: &str) -> Result<T, EventDecodeError> {
            serde_json::from_str(payload).map_err(|e| EventDecodeError::Payload(name, e))
        }
        if schema_version != 1 {
            return Err(EventDecodeError::UnknownType(event_type.to_owned(), schema_version));
        }
        Ok(match event_type {
            "CertificateIssued" => Event::Issued(body("CertificateIssued", payload)?),
            "CertificateActivated" => Event::Activated(body("CertificateActivated", payload)?),
            "CertificateCvcRefused" => Event::CvcRefused(body("CertificateCvcRefused", payload)?),
            "CertificateAuthorized" => Event::Authorized(body("CertificateAuthorized", payload)?),
            "CertificateCaptured" => Event::Captured(body("CertificateCaptured", payload)?),
            "CertificateAuthorizationVoided" => {
                Event::AuthorizationVoided(body("CertificateAuthorizationVoided", payload)?)
            }
            "CertificateCaptureVoided" => Event::CaptureVoided(body("CertificateCaptureVoided", payload)?),
            "CertificateRefunded" => Event::Refunded(body("CertificateRefunded", payload)?),
            "CertificateCancelled" => Event::Cancelled(body("CertificateCancelled", payload)?),
            "CertificateExpired" => Event::Expired(body("CertificateExpired", payload)?),
            other => return Err(EventDecodeError::UnknownType(other.to_owned(), schema_version)),
        })
    }

    fn schemas() -> Vec<EventSchema> {
        let mut all = vec![
            EventSchema::of::<CertificateIssued>("CertificateIssued", 1),
            EventSchema::of::<CertificateActivated>("CertificateActivated", 1),
            EventSchema::of::<CvcRefused>("CertificateCvcRefused", 1),
        ];
        for operation in [
            "CertificateAuthorized",
            "CertificateCaptured",
            "CertificateAuthorizationVoided",
            "CertificateCaptureVoided",
            "CertificateRefunded",
            "CertificateCancelled",
        ] {
            all.push(EventSchema::of::<CertificateOperation>(operation, 1));
        }
        all.push(EventSchema::of::<CertificateExpired>("CertificateExpired", 1));
        all
    }
}
