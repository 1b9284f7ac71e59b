//! What the payouts' channels and gates ask for.

use serde::{Deserialize, Serialize};

use crate::ids::{PayoutId, PayoutRequestId};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// A client asks for its payout accounts to be paid out. Nothing else happens here: the
    /// request gate plans it later.
    Request { id: PayoutRequestId, client_id: String },
    /// The request gate: the oldest `limit` new requests each get one payout per `payout`
    /// account of the client with a positive balance (exactly that balance), then are `done`,
    /// or `error` with the reason.
    PlanNew { limit: u32 },
    /// The ERP gate: the oldest `limit` new payouts are each sent (funds checked, the amount
    /// moved to `payout_sent`, a cash-payment-fact recorded) or `failed` with the reason.
    SendNew { limit: u32 },
    /// A status from the ERP about a sent payout.
    Status { payout: PayoutId, status: ErpStatus, reason: Option<String> },
}

/// What the ERP says of a payout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErpStatus {
    /// Paid out: final.
    Paid,
    /// Refused: the amount goes back to the payout account.
    Rejected,
}
