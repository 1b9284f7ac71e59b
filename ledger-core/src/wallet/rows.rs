//! The entities a movement names by id, read from their stored rows (`movement::Lookup` for a
//! reader outside the writer: the statement over the committed view, the Kafka topic over the
//! `entities` table). A row is the entity as it stands now, which is as it stood before any
//! later event for what a movement reads: a deposit's, withdrawal's or bonus's player, currency
//! and amount, and a bet's stake, are fixed when the entity is created.

use std::sync::Arc;

use uuid::Uuid;

use super::movement::{Lookup, Owned, Stake};
use super::state::{Bonus, Deposit, GameTransaction, TxKind, Withdrawal};
use super::{BONUS_KIND, DEPOSIT_KIND, GAME_TX_KIND, WITHDRAWAL_KIND};
use super::{bonus_entity, deposit_entity, game_tx_entity, withdrawal_entity};
use crate::domain::EntityRow;
use crate::ids::{BonusId, DepositId, WithdrawalId};

/// A `Lookup` over rows found by entity id (`None`: no such row, or one that does not parse).
pub struct RowLookup<F>(pub F);

impl<F: Fn(Uuid) -> Option<EntityRow>> RowLookup<F> {
    fn typed<T: serde::de::DeserializeOwned + Send + Sync + 'static>(&self, id: Uuid, kind: &str) -> Option<Arc<T>> {
        let row = (self.0)(id).filter(|r| r.kind == kind)?;
        row.typed::<T>().ok()
    }
}

impl<F: Fn(Uuid) -> Option<EntityRow>> Lookup for RowLookup<F> {
    fn deposit(&self, id: DepositId) -> Option<Owned> {
        let d = self.typed::<Deposit>(deposit_entity(id).id, DEPOSIT_KIND)?;
        Some(Owned { player: d.player.clone(), currency: d.currency.clone(), amount: d.amount })
    }

    fn withdrawal(&self, id: WithdrawalId) -> Option<Owned> {
        let w = self.typed::<Withdrawal>(withdrawal_entity(id).id, WITHDRAWAL_KIND)?;
        Some(Owned { player: w.player.clone(), currency: w.currency.clone(), amount: w.amount })
    }

    fn bonus(&self, id: BonusId) -> Option<Owned> {
        let b = self.typed::<Bonus>(bonus_entity(id).id, BONUS_KIND)?;
        Some(Owned { player: b.player.clone(), currency: b.currency.clone(), amount: b.amount })
    }

    fn bet(&self, provider: &str, transaction: Uuid) -> Option<Stake> {
        let t = self.typed::<GameTransaction>(game_tx_entity(provider, transaction).id, GAME_TX_KIND)?;
        if t.kind != TxKind::Bet {
            return None;
        }
        Some(Stake {
            player: t.player.clone(),
            currency: t.currency.clone()?,
            round: t.round.clone(),
            main: t.main,
            bonus: t.bonus,
        })
    }
}

/// The ids of the rows `movements` reads for `event`: what a reader loads before asking.
pub fn named_rows(event: &super::Event) -> Option<Uuid> {
    use super::Event;
    match event {
        Event::DepositSucceeded(e) => Some(deposit_entity(e.id).id),
        Event::WithdrawalSucceeded(e) | Event::WithdrawalFailed(e) | Event::WithdrawalTimedOut(e) => {
            Some(withdrawal_entity(e.id).id)
        }
        Event::BetRolledBack(e) => Some(game_tx_entity(&e.provider, e.transaction).id),
        Event::BonusConverted(e) | Event::BonusExpired(e) | Event::BonusForfeited(e) => Some(bonus_entity(e.id).id),
        _ => None,
    }
}
