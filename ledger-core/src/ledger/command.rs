//! Commands: what a caller asks the ledger to do. Imperative names; each is decided by `decide`.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::ids::{AccountId, TransferId};
use crate::ledger::account::{AccountKind, BalanceLimit, Side};
use crate::money::CurrencyCode;

/// An account named by id or by its unique code.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AccountRef {
    Id(AccountId),
    Code(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenAccount {
    pub id: AccountId,
    pub code: String,
    pub currency: CurrencyCode,
    pub kind: AccountKind,
    pub limit: BalanceLimit,
    pub metadata: serde_json::Value,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostingRequest {
    pub account: AccountRef,
    pub side: Side,
    pub amount: Decimal,
}

/// A journal entry: two postings for the simple form, any number for the multi-leg form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateTransfer {
    pub id: TransferId,
    pub postings: Vec<PostingRequest>,
    /// Place a hold instead of posting: the transfer is later posted, voided or expires.
    pub pending: bool,
    pub timeout_seconds: Option<u32>,
    pub external_ref: Option<String>,
    pub metadata: serde_json::Value,
}

impl CreateTransfer {
    /// The simple form: debit one account, credit another.
    pub fn simple(id: TransferId, debit: AccountRef, credit: AccountRef, amount: Decimal) -> CreateTransfer {
        CreateTransfer {
            id,
            postings: vec![
                PostingRequest { account: debit, side: Side::Debit, amount },
                PostingRequest { account: credit, side: Side::Credit, amount },
            ],
            pending: false,
            timeout_seconds: None,
            external_ref: None,
            metadata: serde_json::Value::Null,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    OpenAccount(OpenAccount),
    /// Stops new transfers touching the account; `reason` (see `text::valid_reason`) is recorded.
    FreezeAccount {
        id: AccountId,
        reason: Option<String>,
    },
    UnfreezeAccount {
        id: AccountId,
        reason: Option<String>,
    },
    /// Closing is final and needs a zero balance with no holds.
    CloseAccount {
        id: AccountId,
        reason: Option<String>,
    },
    CreateTransfer(CreateTransfer),
    /// Post a pending transfer in full, or a smaller amount (simple transfers only).
    PostPendingTransfer {
        pending_id: TransferId,
        amount: Option<Decimal>,
    },
    VoidPendingTransfer {
        pending_id: TransferId,
    },
    /// Undo a posted transfer with a new compensating transfer `id`.
    ReverseTransfer {
        id: TransferId,
        transfer_id: TransferId,
        metadata: serde_json::Value,
    },
    /// Expire every pending transfer whose timeout is at or before `now`.
    ExpirePendingTransfers,
}

impl Command {
    /// The transfers this command may read, so a store can load them before deciding.
    pub fn transfer_ids(&self) -> Vec<TransferId> {
        match self {
            Command::CreateTransfer(t) => vec![t.id],
            Command::PostPendingTransfer { pending_id, .. } | Command::VoidPendingTransfer { pending_id } => {
                vec![*pending_id]
            }
            Command::ReverseTransfer { id, transfer_id, .. } => vec![*id, *transfer_id],
            _ => Vec::new(),
        }
    }
}
