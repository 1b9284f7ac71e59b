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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::event::{PendingPosted, PendingReleased};

    fn id(n: u128) -> TransferId {
        TransferId(uuid::Uuid::from_u128(n))
    }

    fn posting(account: u128, side: Side, amount: &str) -> Posting {
        Posting { account: AccountId(uuid::Uuid::from_u128(account)), side, amount: amount.parse().unwrap() }
    }

    fn created(n: u128, held: &str) -> TransferCreated {
        TransferCreated {
            id: id(n),
            postings: vec![posting(1, Side::Debit, held), posting(2, Side::Credit, held)],
            timeout_at: Some(Timestamp(50)),
            reverses: None,
            external_ref: Some("ref".into()),
            metadata: serde_json::json!({"k": 1}),
            at: Timestamp(10),
        }
    }

    #[test]
    fn a_transfer_rebuilds_from_its_own_stream_and_from_nothing_else() {
        let posted = Transfer::rebuild(&[Event::TransferPosted(created(1, "5.00"))], Some(id(9))).unwrap();
        assert_eq!((posted.status, posted.pending, posted.version), (TransferStatus::Posted, false, 1));
        assert_eq!(posted.reversed_by, Some(id(9)));
        assert_eq!(posted.posted_postings(), Some(posted.postings.as_slice()));

        let hold = Event::PendingTransferCreated(created(2, "5.00"));
        let pending = Transfer::rebuild(std::slice::from_ref(&hold), None).unwrap();
        assert_eq!((pending.status, pending.pending, pending.version), (TransferStatus::Pending, true, 1));
        assert_eq!(pending.posted_postings(), None);
        assert_eq!((pending.timeout_at, pending.created_at), (Some(Timestamp(50)), Timestamp(10)));

        let post = Event::PendingTransferPosted(PendingPosted {
            id: id(2),
            postings: vec![posting(1, Side::Debit, "3.00"), posting(2, Side::Credit, "3.00")],
            at: Timestamp(20),
        });
        let settled = Transfer::rebuild(&[hold.clone(), post.clone()], None).unwrap();
        assert_eq!((settled.status, settled.version), (TransferStatus::Posted, 2));
        assert_eq!(settled.posted_postings().unwrap()[0].amount, "3.00".parse::<Decimal>().unwrap());
        let voided = Event::PendingTransferVoided(PendingReleased { id: id(2), at: Timestamp(20) });
        let released = Transfer::rebuild(&[hold.clone(), voided.clone()], None).unwrap();
        assert_eq!((released.status, released.version), (TransferStatus::Voided, 2));
        let expired = Event::PendingTransferExpired(PendingReleased { id: id(2), at: Timestamp(60) });
        assert_eq!(Transfer::rebuild(&[hold.clone(), expired], None).unwrap().status, TransferStatus::Expired);

        // Not a transfer's stream: no first event, a first event that creates nothing, a
        // settlement of another transfer, or anything after the transfer settled.
        assert_eq!(Transfer::rebuild(&[], None), None);
        assert_eq!(Transfer::rebuild(std::slice::from_ref(&voided), None), None);
        let other = Event::PendingTransferVoided(PendingReleased { id: id(3), at: Timestamp(20) });
        assert_eq!(Transfer::rebuild(&[hold.clone(), other], None), None);
        assert_eq!(Transfer::rebuild(&[hold, post, voided], None), None);
    }

    #[test]
    fn a_simple_amount_is_the_one_amount_of_a_two_posting_transfer() {
        let mut t = Transfer::created(&created(1, "5.00"), TransferStatus::Posted);
        assert_eq!(t.simple_amount(), Some("5.00".parse().unwrap()));
        t.postings[1].amount = "4.00".parse().unwrap();
        assert_eq!(t.simple_amount(), None, "two postings of different amounts");
        t.postings.push(posting(3, Side::Credit, "1.00"));
        assert_eq!(t.simple_amount(), None, "three postings");
    }

    #[test]
    fn statuses_and_limits_read_as_documented() {
        let names: Vec<&str> =
            [TransferStatus::Pending, TransferStatus::Posted, TransferStatus::Voided, TransferStatus::Expired]
                .into_iter()
                .map(TransferStatus::as_str)
                .collect();
        assert_eq!(names, ["pending", "posted", "voided", "expired"]);
        assert_eq!(MAX_TIMEOUT_SECONDS, 2_592_000, "30 days");
    }
}
