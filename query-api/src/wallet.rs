//! The gaming wallet's part of the GraphQL schema: `walletPlayer(id)`, a player with its
//! balances (main, bonus, locked), KYC level, limits and self-exclusion, and its deposits,
//! withdrawals (each with its saga's steps), game rounds (each with its bets, wins and
//! rollbacks), bonuses and movements (each with its account's balance after it), every list a
//! keyset page in the order its rows were created.
//!
//! The field asks for `wallet:read` scoped by the player (`wallet:read:p-17`; the unscoped
//! permission grants all): the guard (`resolve::ReadsSomeScope`) lets through a key that reads
//! some player's wallet, the resolver asks for the player's own scope.

use std::collections::HashMap;

use async_graphql::connection::Connection;
use async_graphql::{ComplexObject, Context, Enum, Object, Result, SimpleObject};
use ledger_core::Timestamp;
use ledger_core::wallet::LimitKind;
use ledger_core::wallet::event::{Timed, TimedLimits};
use ledger_core::wallet::movement::{Account, Kind};
use ledger_core::wallet::scope::READ;
use projections::Model;
use projections::wallet::{
    self as rm, BonusRow, DepositRow, GameTransactionRow, MovementCursor, MovementFilter, MovementRow, PlayerRow,
    RoundRow, StepRow, WithdrawalRow,
};
use uuid::Uuid;

use crate::resolve::{
    ReadsSomeScope, bad_input, internal, money, page, page_size, parse_cursor, parse_time, pool, require, rfc3339,
    wait_for,
};

/// One of a player's balances.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(rename_items = "snake_case")]
pub enum WalletAccount {
    Main,
    Bonus,
    Locked,
}

/// Why a player's money moved.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(rename_items = "snake_case")]
pub enum WalletMovementKind {
    Deposit,
    WithdrawalLock,
    WithdrawalPaid,
    WithdrawalReturned,
    Bet,
    Win,
    Rollback,
    BonusGranted,
    BonusConverted,
    BonusReturned,
}

impl WalletMovementKind {
    fn core(self) -> Kind {
        match self {
            WalletMovementKind::Deposit => Kind::Deposit,
            WalletMovementKind::WithdrawalLock => Kind::WithdrawalLock,
            WalletMovementKind::WithdrawalPaid => Kind::WithdrawalPaid,
            WalletMovementKind::WithdrawalReturned => Kind::WithdrawalReturned,
            WalletMovementKind::Bet => Kind::Bet,
            WalletMovementKind::Win => Kind::Win,
            WalletMovementKind::Rollback => Kind::Rollback,
            WalletMovementKind::BonusGranted => Kind::BonusGranted,
            WalletMovementKind::BonusConverted => Kind::BonusConverted,
            WalletMovementKind::BonusReturned => Kind::BonusReturned,
        }
    }
}

#[derive(SimpleObject)]
pub struct WalletBalances {
    pub main: String,
    pub bonus: String,
    /// Withdrawals requested, not yet paid or returned.
    pub locked: String,
}

/// A responsible-gaming limit: the value in force, and a looser one waiting for its time.
#[derive(SimpleObject)]
pub struct WalletLimit {
    /// deposit_day, deposit_week, deposit_month, loss_day or withdraw_day.
    pub kind: String,
    /// None: no limit.
    pub value: Option<String>,
    /// Whether a looser value waits (`pendingValue` none: the limit is lifted then).
    pub pending: bool,
    pub pending_value: Option<String>,
    pub pending_from: Option<String>,
}

#[derive(SimpleObject)]
pub struct WalletSelfExclusion {
    /// The end of the self-exclusion in force (none: not excluded).
    pub until: Option<String>,
    /// Whether an earlier end waits for its time.
    pub pending: bool,
    pub pending_until: Option<String>,
    pub pending_from: Option<String>,
}

#[derive(SimpleObject)]
#[graphql(complex)]
pub struct WalletPlayer {
    pub id: String,
    pub currency: String,
    /// none, basic or full.
    pub kyc: String,
    pub balances: WalletBalances,
    pub limits: Vec<WalletLimit>,
    pub self_exclusion: WalletSelfExclusion,
    /// The bonus being wagered.
    pub open_bonus_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// Position of the last event that changed it.
    pub position: i64,
}

/// Amounts of one row as text at one scale: Postgres gives a zero back without its scale
/// (`0`), shown at the scale of the row's other amounts (`0.00` beside `95.00`).
fn same_scale<const N: usize>(mut values: [rust_decimal::Decimal; N]) -> [String; N] {
    let scale = values.iter().map(|d| d.scale()).max().unwrap_or(0);
    values.iter_mut().filter(|d| d.scale() < scale).for_each(|d| d.rescale(scale));
    values.map(money)
}

fn timed_limit(kind: LimitKind, t: &Timed<rust_decimal::Decimal>) -> WalletLimit {
    WalletLimit {
        kind: kind.as_str().to_owned(),
        value: t.value.map(money),
        pending: t.pending.is_some(),
        pending_value: t.pending.and_then(|p| p.value).map(money),
        pending_from: t.pending.map(|p| p.from.rfc3339()),
    }
}

impl TryFrom<PlayerRow> for WalletPlayer {
    type Error = serde_json::Error;

    fn try_from(r: PlayerRow) -> Result<WalletPlayer, serde_json::Error> {
        let limits: TimedLimits = serde_json::from_value(r.limits)?;
        let exclusion: Timed<Timestamp> = serde_json::from_value(r.self_exclusion)?;
        let [main, bonus, locked] = same_scale([r.main, r.bonus, r.locked]);
        Ok(WalletPlayer {
            id: r.id,
            currency: r.currency,
            kyc: r.kyc,
            balances: WalletBalances { main, bonus, locked },
            limits: LimitKind::ALL.into_iter().map(|kind| timed_limit(kind, limits.get(kind))).collect(),
            self_exclusion: WalletSelfExclusion {
                until: exclusion.value.map(Timestamp::rfc3339),
                pending: exclusion.pending.is_some(),
                pending_until: exclusion.pending.and_then(|p| p.value).map(Timestamp::rfc3339),
                pending_from: exclusion.pending.map(|p| p.from.rfc3339()),
            },
            open_bonus_id: r.open_bonus.map(|b| b.to_string()),
            created_at: rfc3339(r.created_at),
            updated_at: rfc3339(r.updated_at),
            position: r.position,
        })
    }
}

#[derive(SimpleObject)]
pub struct WalletDeposit {
    pub id: String,
    pub amount: String,
    pub currency: String,
    pub provider_id: String,
    /// pending, succeeded or failed.
    pub status: String,
    pub provider_reference: Option<String>,
    pub reason: Option<String>,
    /// The provider's webhook that settled it.
    pub event_id: Option<String>,
    /// The ledger transfer that paid main, once it succeeded.
    pub transfer_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub created_position: i64,
    pub position: i64,
}

impl From<DepositRow> for WalletDeposit {
    fn from(r: DepositRow) -> WalletDeposit {
        WalletDeposit {
            id: r.id.to_string(),
            amount: money(r.amount),
            currency: r.currency,
            provider_id: r.provider_id,
            status: r.status,
            provider_reference: r.provider_reference,
            reason: r.reason,
            event_id: r.event_id,
            transfer_id: r.transfer_id.map(|t| t.to_string()),
            created_at: rfc3339(r.created_at),
            updated_at: rfc3339(r.updated_at),
            created_position: r.created_position,
            position: r.position,
        }
    }
}

/// A step of a withdrawal's saga.
#[derive(SimpleObject)]
pub struct WalletWithdrawalStep {
    /// locked, sent, succeeded, failed or timed_out.
    pub status: String,
    /// The ledger transfer the step made (locked: main → locked; succeeded: locked → clearing;
    /// failed, timed_out: locked → main); none for sent.
    pub transfer_id: Option<String>,
    pub provider_reference: Option<String>,
    pub reason: Option<String>,
    pub event_id: Option<String>,
    pub at: String,
    pub position: i64,
}

impl From<StepRow> for WalletWithdrawalStep {
    fn from(s: StepRow) -> WalletWithdrawalStep {
        WalletWithdrawalStep {
            status: s.status,
            transfer_id: s.transfer_id.map(|t| t.to_string()),
            provider_reference: s.provider_reference,
            reason: s.reason,
            event_id: s.event_id,
            at: rfc3339(s.at),
            position: s.position,
        }
    }
}

#[derive(SimpleObject)]
pub struct WalletWithdrawal {
    pub id: String,
    pub amount: String,
    pub currency: String,
    pub provider_id: String,
    /// locked, sent, succeeded, failed or timed_out.
    pub status: String,
    /// When its money returns to main if the provider has not answered.
    pub deadline: String,
    pub provider_reference: Option<String>,
    pub reason: Option<String>,
    pub event_id: Option<String>,
    /// Every step, in order.
    pub steps: Vec<WalletWithdrawalStep>,
    pub created_at: String,
    pub updated_at: String,
    pub created_position: i64,
    pub position: i64,
}

impl WalletWithdrawal {
    fn new(r: WithdrawalRow, steps: Vec<StepRow>) -> WalletWithdrawal {
        WalletWithdrawal {
            id: r.id.to_string(),
            amount: money(r.amount),
            currency: r.currency,
            provider_id: r.provider_id,
            status: r.status,
            deadline: rfc3339(r.deadline),
            provider_reference: r.provider_reference,
            reason: r.reason,
            event_id: r.event_id,
            steps: steps.into_iter().map(Into::into).collect(),
            created_at: rfc3339(r.created_at),
            updated_at: rfc3339(r.updated_at),
            created_position: r.created_position,
            position: r.position,
        }
    }
}

/// A game provider's call: a bet, a win, a rollback, or the tombstone of a bet a rollback named
/// before the bet came.
#[derive(SimpleObject)]
pub struct WalletGameTransaction {
    pub transaction_id: String,
    /// bet, win, rollback or tombstone.
    pub kind: String,
    pub amount: String,
    /// A bet: what it took from main and bonus; a win: what it credited to each.
    pub main: String,
    pub bonus: String,
    /// The bet a rollback names.
    pub reference: Option<String>,
    /// Whether the call closed its round.
    pub round_closed: bool,
    /// The bonus a bet's stake counted toward, and how much.
    pub wagering_bonus_id: Option<String>,
    pub wagering: Option<String>,
    pub transfer_id: Option<String>,
    /// The rollback that reversed this bet, and the reversal.
    pub rolled_back_by: Option<String>,
    pub reversal_transfer_id: Option<String>,
    /// Main and bonus available after the call: what it answered.
    pub balance: String,
    pub bonus_balance: String,
    pub created_at: String,
    pub position: i64,
}

impl From<GameTransactionRow> for WalletGameTransaction {
    fn from(t: GameTransactionRow) -> WalletGameTransaction {
        let [amount, main, bonus, balance, bonus_balance] =
            same_scale([t.amount, t.main, t.bonus, t.balance, t.bonus_balance]);
        WalletGameTransaction {
            transaction_id: t.transaction_id.to_string(),
            kind: t.kind,
            amount,
            main,
            bonus,
            reference: t.reference.map(|r| r.to_string()),
            round_closed: t.round_closed,
            wagering_bonus_id: t.wagering_bonus.map(|b| b.to_string()),
            wagering: t.wagering.map(money),
            transfer_id: t.transfer_id.map(|r| r.to_string()),
            rolled_back_by: t.rolled_back_by.map(|r| r.to_string()),
            reversal_transfer_id: t.reversal_transfer_id.map(|r| r.to_string()),
            balance,
            bonus_balance,
            created_at: rfc3339(t.created_at),
            position: t.position,
        }
    }
}

/// A game round: its live stakes (rolled-back bets left out), its wins, and its calls.
#[derive(SimpleObject)]
pub struct WalletRound {
    pub provider_id: String,
    pub round_id: String,
    pub currency: String,
    pub staked_main: String,
    pub staked_bonus: String,
    pub won_main: String,
    pub won_bonus: String,
    /// Bets made (rolled back or not), wins, rollbacks.
    pub bets: i32,
    pub wins: i32,
    pub rollbacks: i32,
    pub closed: bool,
    /// Its bets, wins and rollbacks, in order.
    pub transactions: Vec<WalletGameTransaction>,
    pub created_at: String,
    pub updated_at: String,
    pub created_position: i64,
    pub position: i64,
}

impl WalletRound {
    fn new(r: RoundRow, transactions: Vec<GameTransactionRow>) -> WalletRound {
        let [staked_main, staked_bonus, won_main, won_bonus] =
            same_scale([r.staked_main, r.staked_bonus, r.won_main, r.won_bonus]);
        WalletRound {
            provider_id: r.provider_id,
            round_id: r.round_id,
            currency: r.currency,
            staked_main,
            staked_bonus,
            won_main,
            won_bonus,
            bets: r.bets,
            wins: r.wins,
            rollbacks: r.rollbacks,
            closed: r.closed,
            transactions: transactions.into_iter().map(Into::into).collect(),
            created_at: rfc3339(r.created_at),
            updated_at: rfc3339(r.updated_at),
            created_position: r.created_position,
            position: r.position,
        }
    }
}

#[derive(SimpleObject)]
pub struct WalletBonus {
    pub id: String,
    pub amount: String,
    pub currency: String,
    pub wagering_multiplier: String,
    /// What its bets must add up to, and what they have.
    pub required: String,
    pub wagered: String,
    /// active, converted, expired or forfeited.
    pub status: String,
    pub expires_at: String,
    /// What its end moved (to main, converted; back to the operator otherwise).
    pub closed_amount: Option<String>,
    pub reason: Option<String>,
    pub grant_transfer_id: String,
    pub close_transfer_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub created_position: i64,
    pub position: i64,
}

impl From<BonusRow> for WalletBonus {
    fn from(b: BonusRow) -> WalletBonus {
        let [amount, required, wagered, closed] =
            same_scale([b.amount, b.required, b.wagered, b.closed_amount.unwrap_or_default()]);
        WalletBonus {
            id: b.id.to_string(),
            amount,
            currency: b.currency,
            wagering_multiplier: money(b.wagering_multiplier),
            required,
            wagered,
            status: b.status,
            expires_at: rfc3339(b.expires_at),
            closed_amount: b.closed_amount.map(|_| closed),
            reason: b.reason,
            grant_transfer_id: b.grant_transfer_id.to_string(),
            close_transfer_id: b.close_transfer_id.map(|t| t.to_string()),
            created_at: rfc3339(b.created_at),
            updated_at: rfc3339(b.updated_at),
            created_position: b.created_position,
            position: b.position,
        }
    }
}

/// A movement of one of the player's balances.
#[derive(SimpleObject)]
pub struct WalletMovement {
    /// The log position of the event that made it, and its place among that event's movements.
    pub position: i64,
    pub seq: i32,
    /// main, bonus or locked.
    pub account: String,
    pub currency: String,
    /// Signed: positive when the balance grew.
    pub amount: String,
    pub balance_after: String,
    /// deposit, withdrawal_lock, withdrawal_paid, withdrawal_returned, bet, win, rollback,
    /// bonus_granted, bonus_converted or bonus_returned.
    pub kind: String,
    /// What it belongs to: deposit, withdrawal, bonus or game, and its id (a game's: the
    /// provider's transaction, with its provider and round).
    pub reference_kind: String,
    pub reference_id: String,
    pub provider_id: Option<String>,
    pub round_id: Option<String>,
    pub transfer_id: String,
    pub at: String,
}

impl From<MovementRow> for WalletMovement {
    fn from(m: MovementRow) -> WalletMovement {
        let [amount, balance_after] = same_scale([m.amount, m.balance_after]);
        WalletMovement {
            position: m.position,
            seq: m.seq,
            account: m.account,
            currency: m.currency,
            amount,
            balance_after,
            kind: m.kind,
            reference_kind: m.reference_kind,
            reference_id: m.reference_id.to_string(),
            provider_id: m.provider_id,
            round_id: m.round_id,
            transfer_id: m.transfer_id.to_string(),
            at: rfc3339(m.at),
        }
    }
}

fn movement_cursor(after: Option<String>) -> Result<Option<MovementCursor>> {
    after
        .map(|c| MovementCursor::parse(&c).ok_or_else(|| bad_input(format!("{c:?} is not a cursor from this list"))))
        .transpose()
}

#[ComplexObject]
impl WalletPlayer {
    /// Its deposits, oldest first.
    async fn deposits(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, WalletDeposit>> {
        let limit = page_size(first)?;
        let after = parse_cursor(after)?;
        let mut conn = pool(ctx).acquire().await.map_err(internal)?;
        let rows = rm::deposits(&mut conn, &self.id, after, limit + 1).await.map_err(internal)?;
        Ok(page(rows, limit, after.is_some(), |r| (r.created_position.to_string(), r.into())))
    }

    /// Its withdrawals, oldest first, each with its steps.
    async fn withdrawals(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, WalletWithdrawal>> {
        let limit = page_size(first)?;
        let after = parse_cursor(after)?;
        let mut conn = pool(ctx).acquire().await.map_err(internal)?;
        let rows = rm::withdrawals(&mut conn, &self.id, after, limit + 1).await.map_err(internal)?;
        let ids: Vec<Uuid> = rows.iter().map(|w| w.id).collect();
        let mut steps: HashMap<Uuid, Vec<StepRow>> = HashMap::new();
        for s in rm::steps(&mut conn, &ids).await.map_err(internal)? {
            steps.entry(s.withdrawal_id).or_default().push(s);
        }
        Ok(page(rows, limit, after.is_some(), |r| {
            let mine = steps.get(&r.id).cloned().unwrap_or_default();
            (r.created_position.to_string(), WalletWithdrawal::new(r, mine))
        }))
    }

    /// Its game rounds, oldest first, each with its bets, wins and rollbacks.
    async fn rounds(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, WalletRound>> {
        let limit = page_size(first)?;
        let after = parse_cursor(after)?;
        let mut conn = pool(ctx).acquire().await.map_err(internal)?;
        let rows = rm::rounds(&mut conn, &self.id, after, limit + 1).await.map_err(internal)?;
        let keys: Vec<(String, String)> = rows.iter().map(|r| (r.provider_id.clone(), r.round_id.clone())).collect();
        let mut calls: HashMap<(String, String), Vec<GameTransactionRow>> = HashMap::new();
        for t in rm::round_transactions(&mut conn, &keys).await.map_err(internal)? {
            calls.entry((t.provider_id.clone(), t.round_id.clone())).or_default().push(t);
        }
        Ok(page(rows, limit, after.is_some(), |r| {
            let mine = calls.get(&(r.provider_id.clone(), r.round_id.clone())).cloned().unwrap_or_default();
            (r.created_position.to_string(), WalletRound::new(r, mine))
        }))
    }

    /// Its bonuses, oldest first.
    async fn bonuses(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, WalletBonus>> {
        let limit = page_size(first)?;
        let after = parse_cursor(after)?;
        let mut conn = pool(ctx).acquire().await.map_err(internal)?;
        let rows = rm::bonuses(&mut conn, &self.id, after, limit + 1).await.map_err(internal)?;
        Ok(page(rows, limit, after.is_some(), |r| (r.created_position.to_string(), r.into())))
    }

    /// Its movements in log order, by account, kind and time (`from` inclusive, `to`
    /// exclusive, RFC 3339), each with its account's balance after it.
    #[allow(clippy::too_many_arguments)]
    async fn movements(
        &self,
        ctx: &Context<'_>,
        account: Option<WalletAccount>,
        kind: Option<WalletMovementKind>,
        from: Option<String>,
        to: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, WalletMovement>> {
        let limit = page_size(first)?;
        let after = movement_cursor(after)?;
        let (from, to) = (parse_time("from", from)?, parse_time("to", to)?);
        if let (Some(from), Some(to)) = (from, to)
            && from > to
        {
            return Err(bad_input("from must not be after to"));
        }
        let account = account.map(|a| match a {
            WalletAccount::Main => Account::Main,
            WalletAccount::Bonus => Account::Bonus,
            WalletAccount::Locked => Account::Locked,
        });
        let filter = MovementFilter { account, kind: kind.map(WalletMovementKind::core), from, to };
        let mut conn = pool(ctx).acquire().await.map_err(internal)?;
        let rows = rm::movements(&mut conn, &self.id, &filter, after, limit + 1).await.map_err(internal)?;
        Ok(page(rows, limit, after.is_some(), |r| (r.cursor().to_string(), r.into())))
    }
}

/// The gaming wallet.
#[derive(Default)]
pub struct WalletQuery;

#[Object]
impl WalletQuery {
    /// A player's wallet, if the key may read that player's (`wallet:read:{player}` or
    /// `wallet:read`).
    #[graphql(guard = "ReadsSomeScope(READ)")]
    async fn wallet_player(
        &self,
        ctx: &Context<'_>,
        id: String,
        min_position: Option<i64>,
    ) -> Result<Option<WalletPlayer>> {
        require(ctx, &READ.of(&id)).await?;
        wait_for(pool(ctx), Model::Wallet, min_position).await?;
        let mut conn = pool(ctx).acquire().await.map_err(internal)?;
        let row = match rm::player(&mut conn, &id).await {
            Ok(row) => row,
            // The read model's runner has not created its tables yet: nothing is applied.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => None,
            Err(e) => return Err(internal(e)),
        };
        let Some(row) = row else { return Ok(None) };
        // Limits the read model wrote from an event always read back.
        let player = WalletPlayer::try_from(row).map_err(|e| internal(sqlx::Error::Decode(Box::new(e))))?;
        Ok(Some(player))
    }
}
