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

#[cfg(test)]
mod tests {
    use rust_decimal::Decimal;

    use super::*;
    use crate::ids::Timestamp;
    use crate::money::CurrencyCode;
    use crate::wallet::state::DepositStatus;

    fn row(kind: &str, id: Uuid, state: String) -> EntityRow {
        EntityRow {
            kind: kind.into(),
            id,
            key: String::new(),
            version: 1,
            state: state.into(),
            typed: Default::default(),
        }
    }

    fn bet(kind: TxKind, transaction: Uuid) -> GameTransaction {
        GameTransaction {
            provider: "games".into(),
            transaction,
            kind,
            player: "p1".into(),
            round: "r1".into(),
            amount: Decimal::new(700, 2),
            currency: Some(CurrencyCode::parse("EUR").unwrap()),
            reference: None,
            round_closed: false,
            main: Decimal::new(500, 2),
            bonus: Decimal::new(200, 2),
            wagering: None,
            transfer: None,
            round_transfer: None,
            balance: Decimal::ZERO,
            bonus_balance: Decimal::ZERO,
            rolled_back_by: None,
            reversal: None,
            created_at: Timestamp(1),
            at: Timestamp(1),
            version: 1,
        }
    }

    #[test]
    fn rows_answer_what_movements_read_and_nothing_of_another_kind() {
        let deposit = Deposit {
            id: DepositId(Uuid::from_u128(1)),
            player: "p1".into(),
            amount: Decimal::new(2500, 2),
            currency: CurrencyCode::parse("EUR").unwrap(),
            provider: "psp".into(),
            status: DepositStatus::Succeeded,
            provider_reference: None,
            reason: None,
            event_id: None,
            transfer: None,
            created_at: Timestamp(1),
            at: Timestamp(2),
            version: 2,
        };
        let (placed, tombstone) = (Uuid::from_u128(2), Uuid::from_u128(3));
        let rows = [
            row(DEPOSIT_KIND, deposit_entity(deposit.id).id, serde_json::to_string(&deposit).unwrap()),
            row(
                GAME_TX_KIND,
                game_tx_entity("games", placed).id,
                serde_json::to_string(&bet(TxKind::Bet, placed)).unwrap(),
            ),
            row(
                GAME_TX_KIND,
                game_tx_entity("games", tombstone).id,
                serde_json::to_string(&bet(TxKind::Tombstone, tombstone)).unwrap(),
            ),
        ];
        let lookup = RowLookup(|id| rows.iter().find(|r| r.id == id).cloned());
        let owned = lookup.deposit(deposit.id).unwrap();
        assert_eq!((owned.player.as_str(), owned.amount), ("p1", Decimal::new(2500, 2)));
        // The same id asked as another kind, an unknown id, a tombstone: nothing.
        assert_eq!(lookup.withdrawal(WithdrawalId(deposit.id.0)), None);
        assert_eq!(lookup.bonus(BonusId(Uuid::from_u128(9))), None);
        let stake = lookup.bet("games", placed).unwrap();
        assert_eq!((stake.main, stake.bonus, stake.round.as_str()), (Decimal::new(500, 2), Decimal::new(200, 2), "r1"));
        assert_eq!(lookup.bet("games", tombstone), None);
        assert_eq!(lookup.bet("other", placed), None);
    }
}
