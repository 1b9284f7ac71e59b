//! How a domain other than the ledger moves money: through the ledger's own commands
//! (open an account, create, post or void a transfer, reverse one), decided on a scratch copy of
//! what they touch. The domain's `execute` collects its own events and the postings' events in
//! order; only when the whole command is accepted are they applied to the real state, so a
//! refusal anywhere leaves nothing behind, and the domain's events and its postings are sealed
//! in the same group and committed by the same statement.

use crate::domain::{Event, State};
use crate::ids::Timestamp;
use crate::ledger::{self, state::LedgerState};
use crate::{Account, AccountId};

pub struct Postings<'a> {
    base: &'a LedgerState,
    scratch: LedgerState,
    events: Vec<Event>,
}

impl<'a> Postings<'a> {
    pub fn new(base: &'a LedgerState) -> Postings<'a> {
        Postings { base, scratch: base.subset([], []), events: Vec::new() }
    }

    pub fn currencies(&self) -> &crate::Currencies {
        self.base.currencies()
    }

    /// An account as this command's postings so far left it.
    pub fn account(&self, id: AccountId) -> Option<&Account> {
        self.scratch.account(id).or_else(|| self.base.account(id))
    }

    /// A transfer as this command's postings so far left it.
    pub fn transfer(&self, id: crate::TransferId) -> Option<&ledger::transfer::Transfer> {
        self.scratch.transfer(id).or_else(|| self.base.transfer(id))
    }

    /// Decides a ledger command as part of the domain's command. Refused: nothing of it is
    /// kept (the domain then refuses its whole command, or goes on without it).
    pub fn execute(&mut self, command: ledger::Command, now: Timestamp) -> Result<&[Event], ledger::Rejection> {
        assert!(
            !matches!(command, ledger::Command::ExpirePendingTransfers),
            "a domain expires holds by voiding them, one by one"
        );
        self.scratch.absorb(self.base, &command);
        let events = ledger::decide::execute(&mut self.scratch, &command, now)?;
        let start = self.events.len();
        self.events.extend(events.into_iter().map(Event::Ledger));
        Ok(&self.events[start..])
    }

    /// Records one of the domain's own events, after the postings made so far.
    pub fn record(&mut self, event: impl Into<Event>) {
        self.events.push(event.into());
    }

    /// Every event of the command, in order.
    pub fn into_events(self) -> Vec<Event> {
        self.events
    }
}

/// Runs a domain's decision against the state with access to the ledger, and applies what it
/// decided only when it was accepted, by the domain and by the seam: an event that would create
/// an entity row under another kind's id refuses the whole command (`State::claim`), as the
/// ledger's `IdTaken`.
pub fn execute<R: From<ledger::Rejection>>(
    state: &mut State,
    decide: impl FnOnce(&State, &mut Postings<'_>) -> Result<(), R>,
) -> Result<Vec<Event>, R> {
    let events = {
        let mut postings = Postings::new(&state.ledger);
        decide(state, &mut postings)?;
        postings.into_events()
    };
    state.claim(&events)?;
    for event in &events {
        state.apply(event);
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AccountKind, BalanceLimit, CurrencyCode, OpenAccount};

    #[test]
    fn ledger_commands_see_what_they_name_on_the_scratch_copy() {
        let mut base = LedgerState::new(crate::Currencies::standard());
        let id = AccountId(uuid::Uuid::from_u128(1));
        let open = OpenAccount {
            id,
            code: "a".into(),
            currency: CurrencyCode::parse("EUR").unwrap(),
            kind: AccountKind::Asset,
            limit: BalanceLimit::None,
            metadata: serde_json::Value::Null,
        };
        ledger::decide::execute(&mut base, &ledger::Command::OpenAccount(open.clone()), Timestamp(1)).unwrap();
        let mut p = Postings::new(&base);
        // By id, for a status change; by code, for an opening that must see the code taken.
        let frozen = p.execute(ledger::Command::FreezeAccount { id, reason: None }, Timestamp(2)).unwrap();
        assert_eq!(frozen.iter().map(Event::event_type).collect::<Vec<_>>(), ["AccountFrozen"]);
        let again = OpenAccount { id: AccountId(uuid::Uuid::from_u128(2)), ..open };
        let taken = p.execute(ledger::Command::OpenAccount(again), Timestamp(2));
        assert_eq!(taken.unwrap_err(), ledger::Rejection::AccountCodeExists);
        assert_eq!(p.account(id).map(|a| a.status), Some(crate::AccountStatus::Frozen));
        // The base is untouched until the domain's command is accepted and applied.
        assert_eq!(base.account(id).map(|a| a.status), Some(crate::AccountStatus::Open));
        assert_eq!(p.into_events().len(), 1);
    }
}
