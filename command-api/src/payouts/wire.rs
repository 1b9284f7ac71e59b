//! Request and response bodies of the payout endpoints. Amounts are decimal strings.

use ledger_core::payouts::state::{Payout, Request, RequestStatus};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// A payout request: pay out every `payout` account of the client.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PayoutRequestBody {
    /// The request's id, chosen by the caller: a retry with the same id and body answers as
    /// the first time; another body under it is `exists_with_different_fields`.
    pub id: Uuid,
    /// The client whose accounts (`metadata.client_id`) are paid out: 1 to 128 characters, no
    /// control characters (else `invalid_client_id`).
    #[schema(example = "client-42")]
    pub client_id: String,
}

/// A request taken: it is planned later by the request gate.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestAccepted {
    pub id: Uuid,
    #[schema(example = "new")]
    pub status: &'static str,
    /// The position of the event that recorded the request.
    pub position: i64,
}

/// A payout as it stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct PayoutView {
    pub id: Uuid,
    /// The payout account it is taken from.
    pub account: Uuid,
    #[schema(example = "100.00")]
    pub amount: String,
    #[schema(example = "EUR")]
    pub currency: String,
    /// `new`, `sent`, `failed`, `paid` or `rejected`.
    #[schema(example = "sent")]
    pub status: &'static str,
    /// Why it failed or was rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A payout request as it stands, with its payouts.
#[derive(Debug, Serialize, ToSchema)]
pub struct PayoutRequestView {
    pub id: Uuid,
    pub client_id: String,
    /// `new` (not planned yet), `done` (its payouts made, maybe none) or `error`.
    #[schema(example = "done")]
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub payouts: Vec<PayoutView>,
    /// The position of the request's latest event.
    pub position: i64,
}

impl PayoutRequestView {
    pub fn new(r: &Request, payouts: &[Payout], position: i64, scale: impl Fn(&str) -> u32) -> PayoutRequestView {
        PayoutRequestView {
            id: r.id.0,
            client_id: r.client_id.clone(),
            status: match r.status {
                RequestStatus::New => "new",
                RequestStatus::Done => "done",
                RequestStatus::Error => "error",
            },
            error: r.error.clone(),
            payouts: payouts
                .iter()
                .map(|p| {
                    let mut amount = p.amount;
                    amount.rescale(scale(p.currency.as_str()));
                    PayoutView {
                        id: p.id.0,
                        account: p.account.0,
                        amount: amount.to_string(),
                        currency: p.currency.to_string(),
                        status: p.status.as_str(),
                        reason: p.reason.clone(),
                    }
                })
                .collect(),
            position,
        }
    }
}

/// One run of a gate.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GateRequest {
    /// How many requests (`plan`) or payouts (`send`) at most, oldest first: 1 to 10000
    /// (default 1000; else `invalid_limit`).
    #[schema(minimum = 1, maximum = 10000)]
    #[serde(default, deserialize_with = "crate::ledger::wire::whole_number")]
    pub limit: Option<u32>,
}

/// What a gate run did.
#[derive(Debug, Serialize, ToSchema)]
pub struct GateRun {
    /// False when there was nothing to do.
    pub changed: bool,
    /// The position of the last event written (the log's head when nothing was).
    pub position: i64,
}
