//! The ledger domain: accounts and transfers, the double-entry book. Every other domain moves
//! money only through its transfers (holds, posts, voids, reversals).

pub mod account;
pub mod command;
pub mod decide;
pub mod event;
pub mod rejection;
pub mod state;
pub mod transfer;

pub use command::Command;
pub use event::Event;
pub use rejection::Rejection;
pub use state::LedgerState as State;

use crate::domain::{Answer, DomainCommand, DomainEvent, DomainRejection, DomainState, Replay, Subject, Touched};
use crate::ids::{Timestamp, TransferId};
use crate::money::Currencies;

/// The permissions the ledger's handlers ask for (`resource:action`, see `crate::permission`).
pub mod scope {
    use crate::permission::Need;

    /// Open, freeze, unfreeze and close accounts.
    pub const ACCOUNTS_WRITE: Need<'static> = Need::new("accounts", "write");
    /// Create, post, void and reverse transfers.
    pub const TRANSFERS_WRITE: Need<'static> = Need::new("transfers", "write");
    /// Accounts, their balances, history and turnover.
    pub const ACCOUNTS_READ: Need<'static> = Need::read("accounts");
    /// Transfers.
    pub const TRANSFERS_READ: Need<'static> = Need::read("transfers");
    /// The ordered log of events.
    pub const EVENTS_READ: Need<'static> = Need::read("events");
    /// The read models' status.
    pub const PROJECTIONS_READ: Need<'static> = Need::read("projections");
}

/// Every permission the domain declares.
pub const SCOPES: &[crate::permission::Need<'static>] = &[
    scope::ACCOUNTS_WRITE,
    scope::TRANSFERS_WRITE,
    scope::ACCOUNTS_READ,
    scope::TRANSFERS_READ,
    scope::EVENTS_READ,
    scope::PROJECTIONS_READ,
];

impl DomainCommand for Command {
    type Rejection = Rejection;

    fn execute(&self, state: &mut crate::State, now: Timestamp) -> Result<Vec<crate::Event>, Rejection> {
        let events = decide::execute(&mut state.ledger, self, now)?;
        Ok(events.into_iter().map(crate::Event::Ledger).collect())
    }

    fn transfer_ids(&self) -> Vec<TransferId> {
        Command::transfer_ids(self)
    }

    fn answer(&self) -> Option<Answer> {
        let (subject, replay) = match self {
            Command::OpenAccount(c) => (Subject::Account(c.id), Replay::First),
            Command::FreezeAccount { id, .. }
            | Command::UnfreezeAccount { id, .. }
            | Command::CloseAccount { id, .. } => (Subject::Account(*id), Replay::Last),
            Command::CreateTransfer(t) => (Subject::Transfer(t.id), Replay::First),
            Command::ReverseTransfer { id, .. } => (Subject::Transfer(*id), Replay::First),
            Command::PostPendingTransfer { pending_id, .. } | Command::VoidPendingTransfer { pending_id } => {
                (Subject::Transfer(*pending_id), Replay::Last)
            }
            Command::ExpirePendingTransfers => return None,
        };
        Some(Answer { subject, replay })
    }
}

impl DomainRejection for Rejection {
    fn code(self) -> &'static str {
        Rejection::code(self)
    }
}

impl DomainState for State {
    type Event = Event;

    fn new(currencies: &Currencies) -> State {
        State::new(currencies.clone())
    }

    fn apply(&mut self, event: &Event) {
        State::apply(self, event)
    }

    /// A transfer's event changes the rows of the accounts it posts to, and a reversal the row
    /// of the transfer it reverses.
    fn touched(&self, event: &Event, out: &mut Vec<Touched>) {
        if let Subject::Transfer(id) = event.subject() {
            let transfer = self.transfer(id).expect("an applied event's transfer is in memory");
            out.extend(transfer.postings.iter().map(|p| Touched { subject: Subject::Account(p.account), moves: true }));
            if let (Event::TransferPosted(_), Some(original)) = (event, transfer.reverses) {
                out.push(Touched { subject: Subject::Transfer(original), moves: false });
            }
        }
    }
}
