//! Players, providers, deposits, withdrawals, game transactions and bonuses as the writer holds
//! them, and as the store keeps them: one entity row each. A player's row carries the period
//! counters its limits read (deposits, withdrawals, net loss), so a limit is checked without
//! scanning its history; rounds are an index over the game transactions, rebuilt from their rows.

mod domain;

use std::collections::{BTreeSet, HashMap};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::command::{Kyc, LimitKind, ProviderKind};
use super::event::{Event, GameTx, Settled, Timed, TimedLimits, Wagering};
use super::{
    BONUS_KIND, DEPOSIT_KIND, GAME_TX_KIND, PLAYER_KIND, PROVIDER_KIND, WITHDRAWAL_KIND, bonus_entity, deposit_entity,
    game_tx_entity, player_entity, provider_entity, withdrawal_entity,
};
use crate::ids::{BonusId, DepositId, Timestamp, TransferId, WithdrawalId};
use crate::money::CurrencyCode;
use crate::sealed::Sealed;

/// A total over one period (a UTC day, ISO week or month), by the period's number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    pub of: i64,
    pub total: Decimal,
}

impl Period {
    /// The total of the period `of` (zero once another period began).
    pub fn total_in(&self, of: i64) -> Decimal {
        if self.of == of { self.total } else { Decimal::ZERO }
    }

    fn add(&mut self, of: i64, amount: Decimal) {
        if self.of != of {
            *self = Period { of, total: Decimal::ZERO };
        }
        self.total += amount;
    }

    /// Takes back what was added in the period `of`, if that period is still the one counted.
    fn take_back(&mut self, of: i64, amount: Decimal) {
        if self.of == of {
            self.total -= amount;
        }
    }
}

/// The number of the period of `kind` that `at` falls in.
pub fn period_of(kind: LimitKind, at: Timestamp) -> i64 {
    match kind {
        LimitKind::DepositDay | LimitKind::LossDay | LimitKind::WithdrawDay => at.day(),
        // 1970-01-01 was a Thursday: weeks start on Mondays.
        LimitKind::DepositWeek => (at.day() + 3).div_euclid(7),
        LimitKind::DepositMonth => {
            let (year, month, _) = at.date();
            year * 12 + month - 1
        }
    }
}

/// What the limits count: deposits (pending intents and succeeded, by the intent's creation),
/// withdrawals requested (not returned), and the net loss of bets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub deposit_day: Period,
    pub deposit_week: Period,
    pub deposit_month: Period,
    pub loss_day: Period,
    pub withdraw_day: Period,
}

impl Counters {
    fn get_mut(&mut self, kind: LimitKind) -> &mut Period {
        match kind {
            LimitKind::DepositDay => &mut self.deposit_day,
            LimitKind::DepositWeek => &mut self.deposit_week,
            LimitKind::DepositMonth => &mut self.deposit_month,
            LimitKind::LossDay => &mut self.loss_day,
            LimitKind::WithdrawDay => &mut self.withdraw_day,
        }
    }

    /// What `kind` has counted in its period at `now`.
    pub fn used(&self, kind: LimitKind, now: Timestamp) -> Decimal {
        let period = match kind {
            LimitKind::DepositDay => &self.deposit_day,
            LimitKind::DepositWeek => &self.deposit_week,
            LimitKind::DepositMonth => &self.deposit_month,
            LimitKind::LossDay => &self.loss_day,
            LimitKind::WithdrawDay => &self.withdraw_day,
        };
        period.total_in(period_of(kind, now))
    }

    fn add(&mut self, kind: LimitKind, at: Timestamp, amount: Decimal) {
        self.get_mut(kind).add(period_of(kind, at), amount);
    }

    fn take_back(&mut self, kind: LimitKind, at: Timestamp, amount: Decimal) {
        self.get_mut(kind).take_back(period_of(kind, at), amount);
    }
}

const DEPOSIT_LIMITS: [LimitKind; 3] = [LimitKind::DepositDay, LimitKind::DepositWeek, LimitKind::DepositMonth];

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Player {
    pub id: String,
    pub currency: CurrencyCode,
    pub kyc: Kyc,
    pub self_exclusion: Timed<Timestamp>,
    pub limits: TimedLimits,
    pub counters: Counters,
    /// The bonus being wagered.
    pub bonus: Option<BonusId>,
    pub created_at: Timestamp,
    pub at: Timestamp,
    pub version: u32,
}

impl Player {
    /// Whether self-exclusion refuses deposits and bets at `now`.
    pub fn excluded(&self, now: Timestamp) -> bool {
        self.self_exclusion.at(now).is_some_and(|until| until > now)
    }

    /// The limit of `kind` in force at `now`, and what it leaves for more.
    pub fn remaining(&self, kind: LimitKind, now: Timestamp) -> Option<(Decimal, Decimal)> {
        let limit = self.limits.get(kind).at(now)?;
        Some((limit, limit - self.counters.used(kind, now)))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provider {
    pub id: String,
    pub kind: ProviderKind,
    pub secret: Sealed,
    pub base_url: Option<String>,
    pub at: Timestamp,
    pub version: u32,
}

/// Where a deposit intent stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DepositStatus {
    Pending,
    Succeeded,
    Failed,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deposit {
    pub id: DepositId,
    pub player: String,
    pub amount: Decimal,
    pub currency: CurrencyCode,
    pub provider: String,
    pub status: DepositStatus,
    pub provider_reference: Option<String>,
    pub reason: Option<String>,
    pub event_id: Option<String>,
    pub transfer: Option<TransferId>,
    pub created_at: Timestamp,
    pub at: Timestamp,
    pub version: u32,
}

/// Where a withdrawal's saga stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WithdrawalStatus {
    /// Main → locked posted; the payout is not yet accepted by the provider.
    Locked,
    /// The provider accepted the payout; its outcome is awaited.
    Sent,
    /// Locked → clearing.
    Succeeded,
    /// Locked → main: the provider said it failed.
    Failed,
    /// Locked → main: no outcome by the deadline.
    TimedOut,
}

impl WithdrawalStatus {
    /// Whether the saga is over.
    pub fn is_final(self) -> bool {
        !matches!(self, WithdrawalStatus::Locked | WithdrawalStatus::Sent)
    }
}

/// A step of a withdrawal's saga, as the log recorded it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub status: WithdrawalStatus,
    pub transfer: Option<TransferId>,
    pub at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Withdrawal {
    pub id: WithdrawalId,
    pub player: String,
    pub amount: Decimal,
    pub currency: CurrencyCode,
    pub provider: String,
    pub status: WithdrawalStatus,
    pub deadline: Timestamp,
    pub steps: Vec<Step>,
    pub provider_reference: Option<String>,
    pub reason: Option<String>,
    pub event_id: Option<String>,
    pub created_at: Timestamp,
    pub at: Timestamp,
    pub version: u32,
}

/// What a game transaction is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TxKind {
    Bet,
    Win,
    Rollback,
    /// A bet's id a rollback named before the bet came.
    Tombstone,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GameTransaction {
    pub provider: String,
    pub transaction: Uuid,
    pub kind: TxKind,
    pub player: String,
    pub round: String,
    pub amount: Decimal,
    pub currency: Option<CurrencyCode>,
    pub reference: Option<Uuid>,
    pub round_closed: bool,
    /// A bet: what it took from main and bonus; a win: what it credited to each.
    pub main: Decimal,
    pub bonus: Decimal,
    pub wagering: Option<Wagering>,
    pub transfer: Option<TransferId>,
    pub round_transfer: Option<TransferId>,
    /// The balances the call answered.
    pub balance: Decimal,
    pub bonus_balance: Decimal,
    /// The rollback that reversed this bet, and the reversal.
    pub rolled_back_by: Option<Uuid>,
    pub reversal: Option<TransferId>,
    pub created_at: Timestamp,
    pub at: Timestamp,
    pub version: u32,
}

impl GameTransaction {
    fn of(kind: TxKind, e: &GameTx) -> GameTransaction {
        GameTransaction {
            provider: e.provider.clone(),
            transaction: e.transaction,
            kind,
            player: e.player.clone(),
            round: e.round.clone(),
            amount: e.amount,
            currency: Some(e.currency.clone()),
            reference: e.reference,
            round_closed: e.round_closed,
            main: e.main,
            bonus: e.bonus,
            wagering: e.wagering,
            transfer: e.transfer,
            round_transfer: e.round_transfer,
            balance: e.balance,
            bonus_balance: e.bonus_balance,
            rolled_back_by: None,
            reversal: None,
            created_at: e.at,
            at: e.at,
            version: 1,
        }
    }

    /// Whether it is a bet that stands (not rolled back).
    pub fn live_bet(&self) -> bool {
        self.kind == TxKind::Bet && self.rolled_back_by.is_none()
    }
}

/// A game round: what its live bets took from main and bonus, what its wins paid.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Round {
    pub player: String,
    pub main: Decimal,
    pub bonus: Decimal,
    pub wins: Decimal,
    pub has_win: bool,
    pub closed: bool,
}

impl Round {
    /// Live bets less wins: what the round's close moves from settlement to revenue.
    pub fn net(&self) -> Decimal {
        self.main + self.bonus - self.wins
    }
}

/// Where a bonus stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BonusStatus {
    Active,
    Converted,
    Expired,
    Forfeited,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bonus {
    pub id: BonusId,
    pub player: String,
    pub amount: Decimal,
    pub currency: CurrencyCode,
    pub wagering_multiplier: Decimal,
    pub required: Decimal,
    pub wagered: Decimal,
    pub status: BonusStatus,
    pub expires_at: Timestamp,
    /// What its end moved (to main, or back to bonus_cost).
    pub closed_amount: Option<Decimal>,
    pub reason: Option<String>,
    pub transfer: TransferId,
    pub close_transfer: Option<TransferId>,
    pub created_at: Timestamp,
    pub at: Timestamp,
    pub version: u32,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct State {
    players: HashMap<Uuid, Player>,
    providers: HashMap<Uuid, Provider>,
    deposits: HashMap<DepositId, Deposit>,
    withdrawals: HashMap<WithdrawalId, Withdrawal>,
    bonuses: HashMap<BonusId, Bonus>,
    /// A deposit's, withdrawal's or bonus's row id (derived from its kind and id) → its id.
    row_ids: HashMap<Uuid, Uuid>,
    transactions: HashMap<Uuid, GameTransaction>,
    rounds: HashMap<(String, String), Round>,
    /// Withdrawals not yet settled, by deadline.
    due_withdrawals: BTreeSet<(Timestamp, WithdrawalId)>,
    /// Open bonuses, by end.
    due_bonuses: BTreeSet<(Timestamp, BonusId)>,
}

impl State {
    pub fn player(&self, id: &str) -> Option<&Player> {
        self.players.get(&player_entity(id).id)
    }

    pub fn provider(&self, id: &str) -> Option<&Provider> {
        self.providers.get(&provider_entity(id).id)
    }

    pub fn deposit(&self, id: DepositId) -> Option<&Deposit> {
        self.deposits.get(&id)
    }

    pub fn withdrawal(&self, id: WithdrawalId) -> Option<&Withdrawal> {
        self.withdrawals.get(&id)
    }

    pub fn bonus(&self, id: BonusId) -> Option<&Bonus> {
        self.bonuses.get(&id)
    }

    pub fn transaction(&self, provider: &str, id: Uuid) -> Option<&GameTransaction> {
        self.transactions.get(&game_tx_entity(provider, id).id)
    }

    pub fn round(&self, provider: &str, round: &str) -> Option<&Round> {
        self.rounds.get(&(provider.to_owned(), round.to_owned()))
    }

    /// The withdrawals not yet settled whose deadline is at or before `now`, the earliest first.
    pub fn due_withdrawals(&self, now: Timestamp) -> impl Iterator<Item = WithdrawalId> + '_ {
        self.due_withdrawals.iter().take_while(move |(at, _)| *at <= now).map(|(_, id)| *id)
    }

    /// Every withdrawal whose payout is not yet accepted by its provider (the saga's runner
    /// sends these), the earliest deadline first.
    pub fn unsent_withdrawals(&self) -> impl Iterator<Item = &Withdrawal> + '_ {
        self.due_withdrawals
            .iter()
            .map(|(_, id)| &self.withdrawals[id])
            .filter(|w| w.status == WithdrawalStatus::Locked)
    }

    /// The open bonuses whose end is at or before `now`, the earliest first.
    pub fn due_bonuses(&self, now: Timestamp) -> impl Iterator<Item = BonusId> + '_ {
        self.due_bonuses.iter().take_while(move |(at, _)| *at <= now).map(|(_, id)| *id)
    }

    fn player_mut(&mut self, id: &str) -> &mut Player {
        self.players.get_mut(&player_entity(id).id).expect("events name players in memory")
    }

    fn insert_withdrawal(&mut self, w: Withdrawal) {
        if !w.status.is_final() {
            self.due_withdrawals.insert((w.deadline, w.id));
        }
        self.row_ids.insert(withdrawal_entity(w.id).id, w.id.0);
        self.withdrawals.insert(w.id, w);
    }

    fn insert_bonus(&mut self, b: Bonus) {
        if b.status == BonusStatus::Active {
            self.due_bonuses.insert((b.expires_at, b.id));
        }
        self.row_ids.insert(bonus_entity(b.id).id, b.id.0);
        self.bonuses.insert(b.id, b);
    }

    /// Adds a transaction and what it does to its round.
    fn insert_transaction(&mut self, t: GameTransaction) {
        let round = self.rounds.entry((t.provider.clone(), t.round.clone())).or_default();
        round.player.clone_from(&t.player);
        match t.kind {
            TxKind::Bet if t.rolled_back_by.is_none() => {
                round.main += t.main;
                round.bonus += t.bonus;
            }
            TxKind::Win => {
                round.wins += t.amount;
                round.has_win = true;
            }
            _ => {}
        }
        round.closed |= t.round_closed;
        self.transactions.insert(game_tx_entity(&t.provider, t.transaction).id, t);
    }

    fn withdrawal_step(&mut self, e: &Settled<WithdrawalId>, status: WithdrawalStatus) -> &mut Withdrawal {
        let w = self.withdrawals.get_mut(&e.id).expect("events name withdrawals in memory");
        if status.is_final() {
            self.due_withdrawals.remove(&(w.deadline, w.id));
        }
        w.status = status;
        w.steps.push(Step { status, transfer: e.transfer, at: e.at });
        if e.provider_reference.is_some() {
            w.provider_reference.clone_from(&e.provider_reference);
        }
        if e.reason.is_some() {
            w.reason.clone_from(&e.reason);
        }
        if e.event_id.is_some() {
            w.event_id.clone_from(&e.event_id);
        }
        w.at = e.at;
        w.version += 1;
        w
    }

    fn close_bonus(&mut self, e: &super::event::BonusClosed, status: BonusStatus) {
        let b = self.bonuses.get_mut(&e.id).expect("events name bonuses in memory");
        self.due_bonuses.remove(&(b.expires_at, b.id));
        b.status = status;
        b.closed_amount = Some(e.amount);
        b.reason.clone_from(&e.reason);
        b.close_transfer = e.transfer;
        b.at = e.at;
        b.version += 1;
        let player = b.player.clone();
        self.player_mut(&player).bonus = None;
    }

    fn wager(&mut self, wagering: Option<Wagering>, sign: Decimal) {
        if let Some(w) = wagering
            && let Some(b) = self.bonuses.get_mut(&w.bonus)
            && b.status == BonusStatus::Active
        {
            b.wagered += sign * w.amount;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400 * 1_000_000;

    /// A player's row keeps its counters by these numbers, so a row written once reads the same
    /// later: days since 1970-01-01, ISO weeks (Monday to Sunday, UTC) since the Monday
    /// 1969-12-29, months since the year 0.
    #[test]
    fn periods_are_numbered_as_the_rows_keep_them() {
        // 2023-12-04 is a Monday, 2023-12-06 a Wednesday, 2023-12-10 a Sunday.
        let (monday, wednesday, sunday) = (19_695, 19_697, 19_701);
        let noon = |day: i64| Timestamp(day * DAY + DAY / 2);
        for kind in [LimitKind::DepositDay, LimitKind::LossDay, LimitKind::WithdrawDay] {
            assert_eq!(period_of(kind, noon(wednesday)), wednesday);
        }
        let week = |at: Timestamp| period_of(LimitKind::DepositWeek, at);
        assert_eq!(week(Timestamp(monday * DAY)), 2814);
        assert_eq!(week(Timestamp((sunday + 1) * DAY - 1)), 2814);
        assert_eq!(week(Timestamp((sunday + 1) * DAY)), 2815);
        assert_eq!(week(Timestamp(-3 * DAY)), 0);
        assert_eq!(week(Timestamp(-3 * DAY - 1)), -1);
        let month = |at: Timestamp| period_of(LimitKind::DepositMonth, at);
        assert_eq!(month(noon(wednesday)), 2023 * 12 + 11);
        // 2024-01-01 is day 19_723.
        assert_eq!(month(Timestamp(19_723 * DAY)), 2024 * 12);
        assert_eq!(month(Timestamp(19_723 * DAY - 1)), 2023 * 12 + 11);
    }

    #[test]
    fn a_period_total_counts_only_its_own_period() {
        let mut p = Period::default();
        p.add(7, Decimal::TEN);
        p.add(7, Decimal::ONE);
        assert_eq!((p.total_in(7), p.total_in(8)), (Decimal::from(11), Decimal::ZERO));
        // Taking back from a period no longer counted changes nothing; from the one counted, it does.
        p.take_back(6, Decimal::ONE);
        p.take_back(7, Decimal::TEN);
        assert_eq!(p.total_in(7), Decimal::ONE);
        p.add(8, Decimal::TWO);
        assert_eq!((p.total_in(7), p.total_in(8)), (Decimal::ZERO, Decimal::TWO));
    }
}
