//! What the channels ask of a gift certificate. Every operation names an `operation_id`, its
//! idempotency key within the certificate.

use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ids::Timestamp;
use crate::money::CurrencyCode;

/// The CVC as stored: AES-256-GCM ciphertext with its nonce and the id of the key that sealed
/// it (hex). The core never sees a CVC in clear: the edge that holds the key seals it, and
/// compares a presented CVC with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SealedCvc {
    pub key_id: String,
    pub nonce: String,
    pub ciphertext: String,
}

/// Issue a certificate from an uploaded row: no money moves until it is activated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issue {
    pub code: String,
    pub nominal: Decimal,
    pub currency: CurrencyCode,
    pub expires_at: Option<Timestamp>,
    pub campaign: Option<String>,
    pub phone: Option<String>,
}

/// The certificate was paid for: post its nominal from sales clearing and keep its CVC.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activate {
    pub code: String,
    pub order_id: String,
    pub payment_id: String,
    /// Where the CVC goes; the upload row's phone when absent.
    pub phone: Option<String>,
    /// The buyer, when the order names one (kept for BI).
    pub client_id: Option<String>,
    /// What the order paid for this certificate, when the activation comes from an order: it
    /// must be the certificate's nominal in its currency (`payment_mismatch`).
    pub paid: Option<Paid>,
    pub cvc: SealedCvc,
}

/// An amount in a currency, as an order line paid it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Paid {
    pub amount: Decimal,
    pub currency: CurrencyCode,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
/// The two large commands are boxed, so the sum of every domain's commands stays as small as
/// the ledger's.
pub enum Command {
    Issue(Box<Issue>),
    Activate(Box<Activate>),
    /// Hold `amount` on the certificate. The caller has checked the presented CVC.
    Authorize {
        code: String,
        operation_id: String,
        amount: Decimal,
    },
    /// Count a wrong CVC presented for an authorization; the fifth in a row locks the
    /// certificate against authorizations for `CVC_LOCK_SECONDS`.
    RefuseCvc {
        code: String,
        operation_id: String,
    },
    /// Post the authorization `operation_id`, in full or a smaller amount (the rest is released).
    Capture {
        code: String,
        operation_id: String,
        amount: Option<Decimal>,
    },
    /// Release an open authorization, or return a captured amount to the certificate.
    Void {
        code: String,
        operation_id: String,
    },
    /// The purchase is refunded: the balance goes back to sales clearing.
    Refund {
        code: String,
        operation_id: String,
        reason: Option<String>,
    },
    /// The operator cancels the certificate: open holds are released, the balance goes to
    /// breakage income.
    Cancel {
        code: String,
        operation_id: String,
        reason: String,
    },
    /// Expire every certificate past its `expires_at` (at most `MAX_EXPIRED_PER_COMMAND`).
    ExpireDue,
}

impl Command {
    /// The certificate the command names, if one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Command::Issue(c) => Some(&c.code),
            Command::Activate(c) => Some(&c.code),
            Command::Authorize { code, .. }
            | Command::RefuseCvc { code, .. }
            | Command::Capture { code, .. }
            | Command::Void { code, .. }
            | Command::Refund { code, .. }
            | Command::Cancel { code, .. } => Some(code),
            Command::ExpireDue => None,
        }
    }
}
