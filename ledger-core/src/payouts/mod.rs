//! Payouts (seed 001): clients accumulate money on their `payout` accounts; a request asks for
//! it; the request gate turns each request into one payout per `payout` account with a positive
//! balance; the ERP gate sends each payout (the amount moves to the client's `payout_sent`
//! account, a cash-payment-fact is recorded, and the `PayoutSent` event is the outbox the ERP
//! topic is published from); the ERP's status comes back (`paid`, final; `rejected`, the amount
//! returns to `payout`).
//!
//! Chart of accounts, per client and currency: the client's `payout` accounts (any number,
//! opened by whoever credits them, with `metadata.client_id` and `metadata.account_type =
//! "payout"`), and one `payout_sent` account (`payout_sent:{client_id}:{currency}`, opened by
//! the first payout sent in that currency). Both are liabilities: what is owed to the client,
//! and what was handed to the ERP for them.
//!
//! The gates are commands, not loops over rows: `PlanNew` and `SendNew` take the oldest `new`
//! requests or payouts from the writer's memory, so two gates running at once, or a gate killed
//! mid-batch, never plan or send anything twice: the single writer decides each batch whole.

pub mod command;
pub mod decide;
pub mod event;
pub mod rejection;
pub mod state;

pub use command::{Command, ErpStatus};
pub use event::Event;
pub use rejection::Rejection;
pub use state::State;

use uuid::Uuid;

use crate::domain::{Answer, DomainCommand, DomainRejection, EntityRef, Replay, Subject};
use crate::ids::{AccountId, PayoutId, PayoutRequestId, Timestamp, TransferId};
use crate::money::CurrencyCode;

/// The permissions the payouts' handlers ask for (see `crate::permission`).
pub mod scope {
    use crate::permission::Need;

    /// Clients' back offices: submit payout requests (scoped by client id:
    /// `payouts:request:client-7` submits only client-7's).
    pub const REQUEST: Need<'static> = Need::new("payouts", "request");
    /// Gates run apart from `ledger up` (`ledger payouts req-gate`, `oebs-gate`).
    pub const GATE: Need<'static> = Need::new("payouts", "gate");
    /// Payout requests, payouts and their history.
    pub const READ: Need<'static> = Need::read("payouts");
}

/// Every permission the domain declares.
pub const SCOPES: &[crate::permission::Need<'static>] = &[scope::REQUEST, scope::GATE, scope::READ];

/// The kind of entity a payout request is in the store's generic rows, and its stream prefix.
pub const REQUEST_KIND: &str = "payout_request";
/// The kind of entity a payout is.
pub const PAYOUT_KIND: &str = "payout";
/// `metadata.account_type` of the accounts payouts are taken from.
pub const PAYOUT_ACCOUNT: &str = "payout";
/// `metadata.account_type` of the accounts sent payouts move to.
pub const SENT_ACCOUNT: &str = "payout_sent";
/// At most this many requests or payouts in one `PlanNew` or `SendNew`.
pub const MAX_PER_COMMAND: u32 = 10_000;

/// The namespace of the payouts domain's derived ids (UUIDv5).
const NAMESPACE: Uuid = Uuid::from_u128(0x4c2e_8a61_0b7f_4d3e_9a05_6e1d_3f8c_72b4);

impl PayoutId {
    /// The payout of a request from one account: the same request and account name the same
    /// payout, however many gates plan it.
    pub fn of(request: PayoutRequestId, account: AccountId) -> PayoutId {
        PayoutId(Uuid::new_v5(&request.0, account.0.as_bytes()))
    }

    /// The cash-payment-fact recorded when the payout is sent.
    pub fn cash_payment_fact(self) -> Uuid {
        Uuid::new_v5(&self.0, b"cash-payment-fact")
    }

    /// The ledger transfer that sends it (payout to payout_sent).
    pub fn send_transfer(self) -> TransferId {
        TransferId(Uuid::new_v5(&self.0, b"send"))
    }

    /// The ledger transfer that returns a rejected payout (payout_sent to payout).
    pub fn return_transfer(self) -> TransferId {
        TransferId(Uuid::new_v5(&self.0, b"return"))
    }
}

/// A client's `payout_sent` account in a currency: id and code.
pub fn sent_account(client_id: &str, currency: &CurrencyCode) -> (AccountId, String) {
    let code = format!("payout_sent:{client_id}:{currency}");
    (AccountId(Uuid::new_v5(&NAMESPACE, code.as_bytes())), code)
}

impl DomainCommand for Command {
    type Rejection = Rejection;

    fn execute(&self, state: &mut crate::State, now: Timestamp) -> Result<Vec<crate::Event>, Rejection> {
        crate::postings::execute(state, |state, postings| decide::decide(state, postings, self, now))
    }

    /// A rejected payout's return is the only transfer a command names before deciding; the
    /// others derive from payouts still `new`, which nothing has sent.
    fn transfer_ids(&self) -> Vec<TransferId> {
        match self {
            Command::Status { payout, .. } => vec![payout.send_transfer(), payout.return_transfer()],
            Command::Request { .. } | Command::PlanNew { .. } | Command::SendNew { .. } => Vec::new(),
        }
    }

    fn answer(&self) -> Option<Answer> {
        match self {
            Command::Request { id, .. } => Some(Answer {
                subject: Subject::Entity(EntityRef { kind: REQUEST_KIND, id: id.0 }),
                replay: Replay::First,
            }),
            Command::Status { payout, .. } => Some(Answer {
                subject: Subject::Entity(EntityRef { kind: PAYOUT_KIND, id: payout.0 }),
                replay: Replay::Last,
            }),
            Command::PlanNew { .. } | Command::SendNew { .. } => None,
        }
    }
}

impl DomainRejection for Rejection {
    fn code(self) -> &'static str {
        Rejection::code(self)
    }
}
