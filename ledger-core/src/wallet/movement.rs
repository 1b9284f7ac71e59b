//! What each wallet event moves on a player's three accounts (main, bonus, locked), as the
//! player sees it: a signed amount per account (positive: the balance grew), the kind of
//! movement and what it belongs to. Pure: the read model's movement history and the statement
//! are both built from it, and the sum of a player's movements on an account is that account's
//! ledger balance.
//!
//! Some events name only an id (a deposit's outcome, a withdrawal's step, a rollback of a bet, a
//! bonus's end): the player, amount and currency are those of the entity as it stood before
//! the event, read through [`Lookup`] (the writer's [`State`] is one; the read model has its own).
//! Accounts that are not a player's (clearing, settlement, bonus cost, game revenue) never
//! appear: a round's close moves nothing of the player's.

use rust_decimal::Decimal;
use uuid::Uuid;

use super::event::Event;
use super::state::{State, TxKind};
use crate::ids::{BonusId, DepositId, Timestamp, TransferId, WithdrawalId};
use crate::money::CurrencyCode;

/// One of a player's balances.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Account {
    Main,
    Bonus,
    Locked,
}

impl Account {
    pub const ALL: [Account; 3] = [Account::Main, Account::Bonus, Account::Locked];

    pub fn as_str(self) -> &'static str {
        match self {
            Account::Main => "main",
            Account::Bonus => "bonus",
            Account::Locked => "locked",
        }
    }

    pub fn parse(s: &str) -> Option<Account> {
        Account::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// Why money moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A deposit succeeded: + main.
    Deposit,
    /// A withdrawal was requested: − main, + locked.
    WithdrawalLock,
    /// The provider paid it out: − locked.
    WithdrawalPaid,
    /// It failed or timed out: − locked, + main.
    WithdrawalReturned,
    /// A bet's stake: − main and/or − bonus.
    Bet,
    /// A win: + main and/or + bonus.
    Win,
    /// A bet rolled back: its stake back to where it came from.
    Rollback,
    /// + bonus.
    BonusGranted,
    /// Wagering met: − bonus, + main.
    BonusConverted,
    /// Expired or forfeited: − bonus, back to the operator.
    BonusReturned,
}

impl Kind {
    pub const ALL: [Kind; 10] = [
        Kind::Deposit,
        Kind::WithdrawalLock,
        Kind::WithdrawalPaid,
        Kind::WithdrawalReturned,
        Kind::Bet,
        Kind::Win,
        Kind::Rollback,
        Kind::BonusGranted,
        Kind::BonusConverted,
        Kind::BonusReturned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Deposit => "deposit",
            Kind::WithdrawalLock => "withdrawal_lock",
            Kind::WithdrawalPaid => "withdrawal_paid",
            Kind::WithdrawalReturned => "withdrawal_returned",
            Kind::Bet => "bet",
            Kind::Win => "win",
            Kind::Rollback => "rollback",
            Kind::BonusGranted => "bonus_granted",
            Kind::BonusConverted => "bonus_converted",
            Kind::BonusReturned => "bonus_returned",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// What a movement belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Reference {
    Deposit(DepositId),
    Withdrawal(WithdrawalId),
    Bonus(BonusId),
    /// A game provider's transaction (for a rollback: the rollback's own, the bet it reversed
    /// being its reference) in a round.
    Game {
        provider: String,
        transaction: Uuid,
        round: String,
    },
}

impl Reference {
    /// `deposit`, `withdrawal`, `bonus` or `game`.
    pub fn kind(&self) -> &'static str {
        match self {
            Reference::Deposit(_) => "deposit",
            Reference::Withdrawal(_) => "withdrawal",
            Reference::Bonus(_) => "bonus",
            Reference::Game { .. } => "game",
        }
    }

    /// The id it names: a deposit's, withdrawal's or bonus's, or the game transaction's.
    pub fn id(&self) -> Uuid {
        match self {
            Reference::Deposit(id) => id.0,
            Reference::Withdrawal(id) => id.0,
            Reference::Bonus(id) => id.0,
            Reference::Game { transaction, .. } => *transaction,
        }
    }
}

/// A change of one of a player's balances.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Movement {
    pub player: String,
    pub account: Account,
    pub currency: CurrencyCode,
    /// Signed, never zero: positive when the balance grew.
    pub amount: Decimal,
    pub kind: Kind,
    pub reference: Reference,
    /// The ledger transfer that moved it.
    pub transfer: TransferId,
    pub at: Timestamp,
}

/// A deposit, withdrawal or bonus as an event that names only its id needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owned {
    pub player: String,
    pub currency: CurrencyCode,
    pub amount: Decimal,
}

/// A bet as its rollback needs it: what its stake took from main and bonus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stake {
    pub player: String,
    pub currency: CurrencyCode,
    pub round: String,
    pub main: Decimal,
    pub bonus: Decimal,
}

/// Where the entities an event names by id are read from, as they stood before the event.
pub trait Lookup {
    fn deposit(&self, id: DepositId) -> Option<Owned>;
    fn withdrawal(&self, id: WithdrawalId) -> Option<Owned>;
    /// `amount`: what was granted.
    fn bonus(&self, id: BonusId) -> Option<Owned>;
    fn bet(&self, provider: &str, transaction: Uuid) -> Option<Stake>;
}

impl Lookup for State {
    fn deposit(&self, id: DepositId) -> Option<Owned> {
        self.deposit(id).map(|d| Owned { player: d.player.clone(), currency: d.currency.clone(), amount: d.amount })
    }

    fn withdrawal(&self, id: WithdrawalId) -> Option<Owned> {
        self.withdrawal(id).map(|w| Owned { player: w.player.clone(), currency: w.currency.clone(), amount: w.amount })
    }

    fn bonus(&self, id: BonusId) -> Option<Owned> {
        self.bonus(id).map(|b| Owned { player: b.player.clone(), currency: b.currency.clone(), amount: b.amount })
    }

    fn bet(&self, provider: &str, transaction: Uuid) -> Option<Stake> {
        let t = self.transaction(provider, transaction).filter(|t| t.kind == TxKind::Bet)?;
        Some(Stake {
            player: t.player.clone(),
            currency: t.currency.clone()?,
            round: t.round.clone(),
            main: t.main,
            bonus: t.bonus,
        })
    }
}

/// An event named an entity its lookup does not have: the log and the lookup disagree.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{event} names {kind} {id}, which is not known")]
pub struct Unknown {
    pub event: &'static str,
    pub kind: &'static str,
    pub id: String,
}

/// The movements `event` makes on players' accounts, in the order of its legs (what leaves an
/// account first). `known` holds the entities as they stood before the event.
pub fn movements(event: &Event, known: &impl Lookup) -> Result<Vec<Movement>, Unknown> {
    let mut out = Vec::new();
    let unknown = |event: &'static str, kind: &'static str, id: String| Unknown { event, kind, id };
    match event {
        Event::PlayerUpserted(_)
        | Event::ProviderUpserted(_)
        | Event::DepositCreated(_)
        | Event::DepositFailed(_)
        | Event::WithdrawalSent(_)
        | Event::BetTombstoned(_)
        // A rollback's money moves in the `BetRolledBack` recorded before it.
        | Event::RollbackRecorded(_) => {}
        Event::DepositSucceeded(e) => {
            if let Some(transfer) = e.transfer {
                let d = known.deposit(e.id).ok_or_else(|| unknown("DepositSucceeded", "deposit", e.id.to_string()))?;
                let m = Moves { player: &d.player, currency: &d.currency, reference: Reference::Deposit(e.id), transfer, at: e.at };
                m.push(&mut out, Kind::Deposit, &[(Account::Main, d.amount)]);
            }
        }
        Event::WithdrawalRequested(e) => {
            let m = Moves {
                player: &e.player,
                currency: &e.currency,
                reference: Reference::Withdrawal(e.id),
                transfer: e.transfer,
                at: e.at,
            };
            m.push(&mut out, Kind::WithdrawalLock, &[(Account::Main, -e.amount), (Account::Locked, e.amount)]);
        }
        Event::WithdrawalSucceeded(e) | Event::WithdrawalFailed(e) | Event::WithdrawalTimedOut(e) => {
            if let Some(transfer) = e.transfer {
                let name = match event {
                    Event::WithdrawalSucceeded(_) => "WithdrawalSucceeded",
                    Event::WithdrawalFailed(_) => "WithdrawalFailed",
                    _ => "WithdrawalTimedOut",
                };
                let w = known.withdrawal(e.id).ok_or_else(|| unknown(name, "withdrawal", e.id.to_string()))?;
                let m = Moves {
                    player: &w.player,
                    currency: &w.currency,
                    reference: Reference::Withdrawal(e.id),
                    transfer,
                    at: e.at,
                };
                if matches!(event, Event::WithdrawalSucceeded(_)) {
                    m.push(&mut out, Kind::WithdrawalPaid, &[(Account::Locked, -w.amount)]);
                } else {
                    m.push(&mut out, Kind::WithdrawalReturned, &[(Account::Locked, -w.amount), (Account::Main, w.amount)]);
                }
            }
        }
        Event::BetPlaced(e) | Event::WinPaid(e) => {
            if let Some(transfer) = e.transfer {
                let reference =
                    Reference::Game { provider: e.provider.clone(), transaction: e.transaction, round: e.round.clone() };
                let m = Moves { player: &e.player, currency: &e.currency, reference, transfer, at: e.at };
                if matches!(event, Event::BetPlaced(_)) {
                    m.push(&mut out, Kind::Bet, &[(Account::Main, -e.main), (Account::Bonus, -e.bonus)]);
                } else {
                    m.push(&mut out, Kind::Win, &[(Account::Main, e.main), (Account::Bonus, e.bonus)]);
                }
            }
        }
        Event::BetRolledBack(e) => {
            if let Some(transfer) = e.transfer {
                let bet = known
                    .bet(&e.provider, e.transaction)
                    .ok_or_else(|| unknown("BetRolledBack", "bet", format!("{}/{}", e.provider, e.transaction)))?;
                let reference = Reference::Game { provider: e.provider.clone(), transaction: e.by, round: bet.round.clone() };
                let m = Moves { player: &bet.player, currency: &bet.currency, reference, transfer, at: e.at };
                m.push(&mut out, Kind::Rollback, &[(Account::Main, bet.main), (Account::Bonus, bet.bonus)]);
            }
        }
        Event::BonusGranted(e) => {
            let m = Moves {
                player: &e.player,
                currency: &e.currency,
                reference: Reference::Bonus(e.id),
                transfer: e.transfer,
                at: e.at,
            };
            m.push(&mut out, Kind::BonusGranted, &[(Account::Bonus, e.amount)]);
        }
        Event::BonusConverted(e) | Event::BonusExpired(e) | Event::BonusForfeited(e) => {
            if let Some(transfer) = e.transfer {
                let name = match event {
                    Event::BonusConverted(_) => "BonusConverted",
                    Event::BonusExpired(_) => "BonusExpired",
                    _ => "BonusForfeited",
                };
                let b = known.bonus(e.id).ok_or_else(|| unknown(name, "bonus", e.id.to_string()))?;
                let m = Moves { player: &b.player, currency: &b.currency, reference: Reference::Bonus(e.id), transfer, at: e.at };
                if matches!(event, Event::BonusConverted(_)) {
                    m.push(&mut out, Kind::BonusConverted, &[(Account::Bonus, -e.amount), (Account::Main, e.amount)]);
                } else {
                    m.push(&mut out, Kind::BonusReturned, &[(Account::Bonus, -e.amount)]);
                }
            }
        }
    }
    Ok(out)
}

/// What the movements of one transfer share.
struct Moves<'a> {
    player: &'a str,
    currency: &'a CurrencyCode,
    reference: Reference,
    transfer: TransferId,
    at: Timestamp,
}

impl Moves<'_> {
    /// One movement per leg that moved something (the ledger posts no zero legs either).
    fn push(&self, out: &mut Vec<Movement>, kind: Kind, legs: &[(Account, Decimal)]) {
        for &(account, amount) in legs.iter().filter(|(_, a)| !a.is_zero()) {
            out.push(Movement {
                player: self.player.to_owned(),
                account,
                currency: self.currency.clone(),
                amount,
                kind,
                reference: self.reference.clone(),
                transfer: self.transfer,
                at: self.at,
            });
        }
    }
}

#[cfg(test)]
mod tests;
