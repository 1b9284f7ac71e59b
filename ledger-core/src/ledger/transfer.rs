//! Transfers (journal entries) as the ledger remembers them.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::domain::DomainEvent;
use crate::ids::{AccountId, Timestamp, TransferId};
use crate::ledger::account::Side;
use crate::ledger::event::{Event, TransferCreated};

/// At most this many postings in one journal entry.
pub const MAX_POSTINGS: usize = 128;
/// At most this many transfers in one batch.
pub const MAX_BATCH: usize = 8190;
/// The longest hold a pending transfer may place: 30 days.
pub const MAX_TIMEOUT_SECONDS: u32 = 30 * 24 * 3600;

/// One leg of a journal entry, in its account's currency.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Posting {
    pub account: AccountId,
    pub side: Side,
    pub amount: Decimal,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferStatus {
    Pending,
    Posted,
    Voided,
    Expired,
}

impl TransferStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TransferStatus::Pending => "pending",
            TransferStatus::Posted => "posted",
            TransferStatus::Voided => "voided",
            TransferStatus::Expired => "expired",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    pub id: TransferId,
    /// The postings as requested: held amounts for a pending transfer.
    pub postings: Vec<Posting>,
    pub status: TransferStatus,
    /// Whether the transfer was created as a hold (two-phase).
    pub pending: bool,
    pub timeout_at: Option<Timestamp>,
    /// What was finally posted when a pending transfer was posted (possibly less than held).
    pub posted: Option<Vec<Posting>>,
    /// The posted transfer this one compensates.
    pub reverses: Option<TransferId>,
    /// The compensating transfer that reversed this one.
    pub reversed_by: Option<TransferId>,
    pub external_ref: Option<String>,
    pub metadata: serde_json::Value,
    pub created_at: Timestamp,
    /// Number of events in this transfer's stream.
    pub version: u32,
}

impl Transfer {
    /// The transfer a creating event makes: posted at once, or a pending hold.
    pub fn created(e: &TransferCreated, status: TransferStatus) -> Transfer {
        Transfer {
            id: e.id,
            postings: e.postings.clone(),
            status,
            pending: status == TransferStatus::Pending,
            timeout_at: e.timeout_at,
            posted: None,
            reverses: e.reverses,
            reversed_by: None,
            external_ref: e.external_ref.clone(),
            metadata: e.metadata.clone(),
            created_at: e.at,
            version: 1,
        }
    }

    /// Rebuilds a transfer from the events of its own stream, in order, and the compensating
    /// transfer that reversed it (recorded in that transfer's stream). `None` if the events
    /// do not form a transfer's stream.
    pub fn rebuild(events: &[Event], reversed_by: Option<TransferId>) -> Option<Transfer> {
        let (first, rest) = events.split_first()?;
        let mut transfer = match first {
            Event::TransferPosted(e) => Transfer::created(e, TransferStatus::Posted),
            Event::PendingTransferCreated(e) => Transfer::created(e, TransferStatus::Pending),
            _ => return None,
        };
        for event in rest {
            if transfer.status != TransferStatus::Pending
                || event.subject() != crate::domain::Subject::Transfer(transfer.id)
            {
                return None;
            }
            transfer.settle(event);
        }
        transfer.reversed_by = reversed_by;
        Some(transfer)
    }

    /// Applies a settling event (posted, voided, expired) of this pending transfer's stream.
    pub(crate) fn settle(&mut self, event: &Event) {
        assert_eq!(self.status, TransferStatus::Pending, "only a pending transfer settles");
        self.status = match event {
            Event::PendingTransferPosted(e) => {
                self.posted = Some(e.postings.clone());
                TransferStatus::Posted
            }
            Event::PendingTransferVoided(_) => TransferStatus::Voided,
            Event::PendingTransferExpired(_) => TransferStatus::Expired,
            other => panic!("{} does not settle a transfer", other.event_type()),
        };
        self.version += 1;
    }

    /// The postings that moved posted balances, if any.
    pub fn posted_postings(&self) -> Option<&[Posting]> {
        match self.status {
            TransferStatus::Posted => Some(self.posted.as_deref().unwrap_or(&self.postings)),
            _ => None,
        }
    }

    /// The amount on each side of a simple (two-posting) transfer.
    pub fn simple_amount(&self) -> Option<Decimal> {
        match self.postings.as_slice() {
            [a, b] if a.amount == b.amount => Some(a.amount),
            _ => None,
        }
    }
}
