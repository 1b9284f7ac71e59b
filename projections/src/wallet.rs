//! The gaming wallet's read model (seed 002): every player with its balances (main, bonus,
//! locked), KYC level, limits and self-exclusion; deposits; withdrawals with each step of
//! their saga; game rounds with their bets, wins and rollbacks (each game transaction a row);
//! bonuses with their wagering; and every movement of a player's money with the balance of its
//! account after it.
//!
//! Movements are the core's (`ledger_core::wallet::movement`): this model only numbers them
//! (`position` of the event, `seq` within it) and keeps each account's running balance, so the
//! last movement of an account says what the player's row says. An event that names an entity
//! this model never saw created is poison: the log and the model disagree.
//!
//! Rows are read back per page for the entities its events name (by key), changed in memory in
//! log order and written once at the end of the page, one statement per table over arrays.

use std::collections::{HashMap, HashSet};
use std::fmt;

use ledger_core::domain::DomainEvent;
use ledger_core::wallet::movement::{self, Account, Lookup, Owned, Reference, Stake};
use ledger_core::wallet::state::TxKind;
use ledger_core::wallet::{Event, event::GameTx};
use ledger_core::{BonusId, CurrencyCode, DepositId, WithdrawalId};
use ledger_store::sql::{text, to_time};
use rust_decimal::Decimal;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::ApplyError;
use crate::page::PageView;

pub struct WalletModel;

const TABLES: &[&str] = &[
    "rm_wallet_players",
    "rm_wallet_deposits",
    "rm_wallet_withdrawals",
    "rm_wallet_withdrawal_steps",
    "rm_wallet_rounds",
    "rm_wallet_game_transactions",
    "rm_wallet_bonuses",
    "rm_wallet_movements",
];

impl crate::ReadModel for WalletModel {
    fn name(&self) -> &'static str {
        "wallet"
    }

    fn tables(&self) -> &'static [&'static str] {
        TABLES
    }

    // Lists read a player's rows by creation (`created_position`), movements by position and
    // sequence: each index ends in its keyset.
    fn create_sql(&self, v: i32) -> String {
        format!(
            "CREATE TABLE IF NOT EXISTS rm_wallet_players_v{v} (id TEXT PRIMARY KEY, currency TEXT NOT NULL, \
             kyc TEXT NOT NULL, self_exclusion JSONB NOT NULL, limits JSONB NOT NULL, main NUMERIC NOT NULL, \
             bonus NUMERIC NOT NULL, locked NUMERIC NOT NULL, open_bonus UUID, created_at TIMESTAMPTZ NOT NULL, \
             updated_at TIMESTAMPTZ NOT NULL, created_position BIGINT NOT NULL, position BIGINT NOT NULL); \
             CREATE TABLE IF NOT EXISTS rm_wallet_deposits_v{v} (id UUID PRIMARY KEY, player_id TEXT NOT NULL, \
             amount NUMERIC NOT NULL, currency TEXT NOT NULL, provider_id TEXT NOT NULL, status TEXT NOT NULL, \
             provider_reference TEXT, reason TEXT, event_id TEXT, transfer_id UUID, \
             created_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL, created_position BIGINT NOT NULL, \
             position BIGINT NOT NULL); \
             CREATE INDEX IF NOT EXISTS rm_wallet_deposits_v{v}_player ON rm_wallet_deposits_v{v} \
             (player_id, created_position); \
             CREATE TABLE IF NOT EXISTS rm_wallet_withdrawals_v{v} (id UUID PRIMARY KEY, player_id TEXT NOT NULL, \
             amount NUMERIC NOT NULL, currency TEXT NOT NULL, provider_id TEXT NOT NULL, status TEXT NOT NULL, \
             deadline TIMESTAMPTZ NOT NULL, provider_reference TEXT, reason TEXT, event_id TEXT, \
             created_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL, created_position BIGINT NOT NULL, \
             position BIGINT NOT NULL); \
             CREATE INDEX IF NOT EXISTS rm_wallet_withdrawals_v{v}_player ON rm_wallet_withdrawals_v{v} \
             (player_id, created_position); \
             CREATE TABLE IF NOT EXISTS rm_wallet_withdrawal_steps_v{v} (withdrawal_id UUID NOT NULL, \
             position BIGINT NOT NULL, status TEXT NOT NULL, transfer_id UUID, provider_reference TEXT, \
             reason TEXT, event_id TEXT, at TIMESTAMPTZ NOT NULL, PRIMARY KEY (withdrawal_id, position)); \
             CREATE TABLE IF NOT EXISTS rm_wallet_rounds_v{v} (provider_id TEXT NOT NULL, round_id TEXT NOT NULL, \
             player_id TEXT NOT NULL, currency TEXT NOT NULL, staked_main NUMERIC NOT NULL, \
             staked_bonus NUMERIC NOT NULL, won_main NUMERIC NOT NULL, won_bonus NUMERIC NOT NULL, \
             bets INTEGER NOT NULL, wins INTEGER NOT NULL, rollbacks INTEGER NOT NULL, closed BOOLEAN NOT NULL, \
             created_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL, created_position BIGINT NOT NULL, \
             position BIGINT NOT NULL, PRIMARY KEY (provider_id, round_id)); \
             CREATE INDEX IF NOT EXISTS rm_wallet_rounds_v{v}_player ON rm_wallet_rounds_v{v} \
             (player_id, created_position); \
             CREATE TABLE IF NOT EXISTS rm_wallet_game_transactions_v{v} (provider_id TEXT NOT NULL, \
             transaction_id UUID NOT NULL, kind TEXT NOT NULL, player_id TEXT NOT NULL, round_id TEXT NOT NULL, \
             amount NUMERIC NOT NULL, currency TEXT, main NUMERIC NOT NULL, bonus NUMERIC NOT NULL, \
             reference UUID, round_closed BOOLEAN NOT NULL, wagering_bonus UUID, wagering NUMERIC, \
             transfer_id UUID, rolled_back_by UUID, reversal_transfer_id UUID, balance NUMERIC NOT NULL, \
             bonus_balance NUMERIC NOT NULL, created_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL, \
             created_position BIGINT NOT NULL, position BIGINT NOT NULL, PRIMARY KEY (provider_id, transaction_id)); \
             CREATE INDEX IF NOT EXISTS rm_wallet_game_transactions_v{v}_round ON rm_wallet_game_transactions_v{v} \
             (provider_id, round_id, created_position); \
             CREATE TABLE IF NOT EXISTS rm_wallet_bonuses_v{v} (id UUID PRIMARY KEY, player_id TEXT NOT NULL, \
             amount NUMERIC NOT NULL, currency TEXT NOT NULL, wagering_multiplier NUMERIC NOT NULL, \
             required NUMERIC NOT NULL, wagered NUMERIC NOT NULL, status TEXT NOT NULL, \
             expires_at TIMESTAMPTZ NOT NULL, closed_amount NUMERIC, reason TEXT, grant_transfer_id UUID NOT NULL, \
             close_transfer_id UUID, created_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL, \
             created_position BIGINT NOT NULL, position BIGINT NOT NULL); \
             CREATE INDEX IF NOT EXISTS rm_wallet_bonuses_v{v}_player ON rm_wallet_bonuses_v{v} \
             (player_id, created_position); \
             CREATE TABLE IF NOT EXISTS rm_wallet_movements_v{v} (position BIGINT NOT NULL, seq INTEGER NOT NULL, \
             player_id TEXT NOT NULL, account TEXT NOT NULL, currency TEXT NOT NULL, amount NUMERIC NOT NULL, \
             balance_after NUMERIC NOT NULL, kind TEXT NOT NULL, reference_kind TEXT NOT NULL, \
             reference_id UUID NOT NULL, provider_id TEXT, round_id TEXT, transfer_id UUID NOT NULL, \
             at TIMESTAMPTZ NOT NULL, PRIMARY KEY (position, seq)); \
             CREATE INDEX IF NOT EXISTS rm_wallet_movements_v{v}_player ON rm_wallet_movements_v{v} \
             (player_id, position, seq);"
        )
    }

    fn deferred_indexes(&self, v: i32) -> Vec<String> {
        let mut all: Vec<String> = ["deposits", "withdrawals", "rounds", "bonuses", "movements"]
            .iter()
            .map(|t| format!("rm_wallet_{t}_v{v}_player"))
            .collect();
        all.push(format!("rm_wallet_game_transactions_v{v}_round"));
        all
    }

    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        v: i32,
        page: &'a PageView<'a>,
        _: &'a mut crate::Memo,
    ) -> crate::Applying<'a> {
        Box::pin(apply(conn, v, page))
    }
}

#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct PlayerRow {
    pub id: String,
    pub currency: String,
    /// `none`, `basic` or `full`.
    pub kyc: String,
    /// The self-exclusion as decided: `{value, pending: {value, from}}`, times in µs.
    pub self_exclusion: serde_json::Value,
    /// Each limit as decided, in force and pending (`ledger_core::wallet::event::TimedLimits`).
    pub limits: serde_json::Value,
    pub main: Decimal,
    pub bonus: Decimal,
    pub locked: Decimal,
    /// The bonus being wagered.
    pub open_bonus: Option<Uuid>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub created_position: i64,
    pub position: i64,
}

impl PlayerRow {
    fn balance_mut(&mut self, account: Account) -> &mut Decimal {
        match account {
            Account::Main => &mut self.main,
            Account::Bonus => &mut self.bonus,
            Account::Locked => &mut self.locked,
        }
    }
}

#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct DepositRow {
    pub id: Uuid,
    pub player_id: String,
    pub amount: Decimal,
    pub currency: String,
    pub provider_id: String,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    pub provider_reference: Option<String>,
    pub reason: Option<String>,
    pub event_id: Option<String>,
    pub transfer_id: Option<Uuid>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub created_position: i64,
    pub position: i64,
}

#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct WithdrawalRow {
    pub id: Uuid,
    pub player_id: String,
    pub amount: Decimal,
    pub currency: String,
    pub provider_id: String,
    /// `locked`, `sent`, `succeeded`, `failed` or `timed_out`.
    pub status: String,
    pub deadline: OffsetDateTime,
    pub provider_reference: Option<String>,
    pub reason: Option<String>,
    pub event_id: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub created_position: i64,
    pub position: i64,
}

/// A step of a withdrawal's saga: the event at `position` moved it to `status`.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct StepRow {
    pub withdrawal_id: Uuid,
    pub position: i64,
    pub status: String,
    pub transfer_id: Option<Uuid>,
    pub provider_reference: Option<String>,
    pub reason: Option<String>,
    pub event_id: Option<String>,
    pub at: OffsetDateTime,
}

/// A game round: its live stakes (rolled-back bets taken out), its wins, how many calls of each
/// kind it had, and whether it is closed.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct RoundRow {
    pub provider_id: String,
    pub round_id: String,
    pub player_id: String,
    pub currency: String,
    pub staked_main: Decimal,
    pub staked_bonus: Decimal,
    pub won_main: Decimal,
    pub won_bonus: Decimal,
    pub bets: i32,
    pub wins: i32,
    pub rollbacks: i32,
    pub closed: bool,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub created_position: i64,
    pub position: i64,
}

/// A bet, win, rollback, or the tombstone of a bet a rollback named before it came.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct GameTransactionRow {
    pub provider_id: String,
    pub transaction_id: Uuid,
    /// `bet`, `win`, `rollback` or `tombstone`.
    pub kind: String,
    pub player_id: String,
    pub round_id: String,
    pub amount: Decimal,
    pub currency: Option<String>,
    /// A bet: what it took from main and bonus; a win: what it credited to each.
    pub main: Decimal,
    pub bonus: Decimal,
    pub reference: Option<Uuid>,
    pub round_closed: bool,
    /// The bonus a bet's stake counted toward, and how much.
    pub wagering_bonus: Option<Uuid>,
    pub wagering: Option<Decimal>,
    pub transfer_id: Option<Uuid>,
    pub rolled_back_by: Option<Uuid>,
    pub reversal_transfer_id: Option<Uuid>,
    /// Main and bonus available after the call: what it answered.
    pub balance: Decimal,
    pub bonus_balance: Decimal,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub created_position: i64,
    pub position: i64,
}

#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct BonusRow {
    pub id: Uuid,
    pub player_id: String,
    pub amount: Decimal,
    pub currency: String,
    pub wagering_multiplier: Decimal,
    pub required: Decimal,
    pub wagered: Decimal,
    /// `active`, `converted`, `expired` or `forfeited`.
    pub status: String,
    pub expires_at: OffsetDateTime,
    pub closed_amount: Option<Decimal>,
    pub reason: Option<String>,
    pub grant_transfer_id: Uuid,
    pub close_transfer_id: Option<Uuid>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub created_position: i64,
    pub position: i64,
}

/// A movement of a player's money, with its account's balance after it.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct MovementRow {
    pub position: i64,
    pub seq: i32,
    pub player_id: String,
    /// `main`, `bonus` or `locked`.
    pub account: String,
    pub currency: String,
    /// Signed: positive when the balance grew.
    pub amount: Decimal,
    pub balance_after: Decimal,
    /// `deposit`, `withdrawal_lock`, `withdrawal_paid`, `withdrawal_returned`, `bet`, `win`,
    /// `rollback`, `bonus_granted`, `bonus_converted` or `bonus_returned`.
    pub kind: String,
    /// `deposit`, `withdrawal`, `bonus` or `game`, and its id (a game's: the transaction's).
    pub reference_kind: String,
    pub reference_id: Uuid,
    pub provider_id: Option<String>,
    pub round_id: Option<String>,
    pub transfer_id: Uuid,
    pub at: OffsetDateTime,
}

impl MovementRow {
    pub fn cursor(&self) -> MovementCursor {
        MovementCursor { position: self.position, seq: self.seq }
    }
}

/// Where a list of movements goes on from: the one it ended with. As text `{position}_{seq}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct MovementCursor {
    pub position: i64,
    pub seq: i32,
}

impl MovementCursor {
    pub fn parse(text: &str) -> Option<MovementCursor> {
        let (position, seq) = text.split_once('_')?;
        let (position, seq): (i64, i32) = (position.parse().ok()?, seq.parse().ok()?);
        (position >= 0 && seq >= 0).then_some(MovementCursor { position, seq })
    }
}

impl fmt::Display for MovementCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}", self.position, self.seq)
    }
}

/// The rows a page touches, as they stand after the events applied so far.
#[derive(Default)]
struct Rows {
    players: HashMap<String, PlayerRow>,
    deposits: HashMap<Uuid, DepositRow>,
    withdrawals: HashMap<Uuid, WithdrawalRow>,
    rounds: HashMap<(String, String), RoundRow>,
    transactions: HashMap<(String, Uuid), GameTransactionRow>,
    bonuses: HashMap<Uuid, BonusRow>,
}

fn currency(code: &str) -> Option<CurrencyCode> {
    CurrencyCode::parse(code).ok()
}

impl Lookup for Rows {
    fn deposit(&self, id: DepositId) -> Option<Owned> {
        let d = self.deposits.get(&id.0)?;
        Some(Owned { player: d.player_id.clone(), currency: currency(&d.currency)?, amount: d.amount })
    }

    fn withdrawal(&self, id: WithdrawalId) -> Option<Owned> {
        let w = self.withdrawals.get(&id.0)?;
        Some(Owned { player: w.player_id.clone(), currency: currency(&w.currency)?, amount: w.amount })
    }

    fn bonus(&self, id: BonusId) -> Option<Owned> {
        let b = self.bonuses.get(&id.0)?;
        Some(Owned { player: b.player_id.clone(), currency: currency(&b.currency)?, amount: b.amount })
    }

    fn bet(&self, provider: &str, transaction: Uuid) -> Option<Stake> {
        let t = self.transactions.get(&(provider.to_owned(), transaction)).filter(|t| t.kind == "bet")?;
        Some(Stake {
            player: t.player_id.clone(),
            currency: currency(t.currency.as_deref()?)?,
            round: t.round_id.clone(),
            main: t.main,
            bonus: t.bonus,
        })
    }
}

/// The keys of the rows a page's events name.
#[derive(Default)]
struct Keys {
    players: HashSet<String>,
    deposits: HashSet<Uuid>,
    withdrawals: HashSet<Uuid>,
    rounds: HashSet<(String, String)>,
    transactions: HashSet<(String, Uuid)>,
    bonuses: HashSet<Uuid>,
}

impl Keys {
    fn of(&mut self, event: &Event) {
        match event {
            Event::PlayerUpserted(e) => {
                self.players.insert(e.id.clone());
            }
            Event::ProviderUpserted(_) => {}
            Event::DepositCreated(e) => {
                self.players.insert(e.player.clone());
                self.deposits.insert(e.id.0);
            }
            Event::DepositSucceeded(e) | Event::DepositFailed(e) => {
                self.deposits.insert(e.id.0);
            }
            Event::WithdrawalRequested(e) => {
                self.players.insert(e.player.clone());
                self.withdrawals.insert(e.id.0);
            }
            Event::WithdrawalSent(e)
            | Event::WithdrawalSucceeded(e)
            | Event::WithdrawalFailed(e)
            | Event::WithdrawalTimedOut(e) => {
                self.withdrawals.insert(e.id.0);
            }
            Event::BetPlaced(e) | Event::WinPaid(e) | Event::RollbackRecorded(e) => {
                self.players.insert(e.player.clone());
                self.rounds.insert((e.provider.clone(), e.round.clone()));
                self.transactions.insert((e.provider.clone(), e.transaction));
                if let Some(w) = e.wagering {
                    self.bonuses.insert(w.bonus.0);
                }
            }
            Event::BetRolledBack(e) => {
                self.transactions.insert((e.provider.clone(), e.transaction));
                if let Some(w) = e.wagering {
                    self.bonuses.insert(w.bonus.0);
                }
            }
            Event::BetTombstoned(e) => {
                self.transactions.insert((e.provider.clone(), e.transaction));
            }
            Event::BonusGranted(e) => {
                self.players.insert(e.player.clone());
                self.bonuses.insert(e.id.0);
            }
            Event::BonusConverted(e) | Event::BonusExpired(e) | Event::BonusForfeited(e) => {
                self.bonuses.insert(e.id.0);
            }
        }
    }
}

async fn load(conn: &mut PgConnection, v: i32, mut keys: Keys) -> Result<Rows, sqlx::Error> {
    let mut rows = Rows::default();
    let ids = |set: &HashSet<Uuid>| set.iter().copied().collect::<Vec<Uuid>>();
    let deposits: Vec<DepositRow> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT * FROM rm_wallet_deposits_v{v} WHERE id = ANY($1)")))
            .bind(ids(&keys.deposits))
            .fetch_all(&mut *conn)
            .await?;
    let withdrawals: Vec<WithdrawalRow> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT * FROM rm_wallet_withdrawals_v{v} WHERE id = ANY($1)")))
            .bind(ids(&keys.withdrawals))
            .fetch_all(&mut *conn)
            .await?;
    let bonuses: Vec<BonusRow> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT * FROM rm_wallet_bonuses_v{v} WHERE id = ANY($1)")))
            .bind(ids(&keys.bonuses))
            .fetch_all(&mut *conn)
            .await?;
    let (providers, transactions): (Vec<String>, Vec<Uuid>) = keys.transactions.iter().cloned().unzip();
    let txs: Vec<GameTransactionRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT t.* FROM rm_wallet_game_transactions_v{v} t \
         JOIN UNNEST($1::text[], $2::uuid[]) AS k(provider_id, transaction_id) USING (provider_id, transaction_id)"
    )))
    .bind(providers)
    .bind(transactions)
    .fetch_all(&mut *conn)
    .await?;
    // The players (and rounds) the entities name, besides those the events name.
    keys.players.extend(deposits.iter().map(|d| d.player_id.clone()));
    keys.players.extend(withdrawals.iter().map(|w| w.player_id.clone()));
    keys.players.extend(bonuses.iter().map(|b| b.player_id.clone()));
    keys.players.extend(txs.iter().map(|t| t.player_id.clone()));
    keys.rounds.extend(txs.iter().map(|t| (t.provider_id.clone(), t.round_id.clone())));
    let players: Vec<PlayerRow> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT * FROM rm_wallet_players_v{v} WHERE id = ANY($1)")))
            .bind(keys.players.into_iter().collect::<Vec<String>>())
            .fetch_all(&mut *conn)
            .await?;
    let (providers, round_ids): (Vec<String>, Vec<String>) = keys.rounds.into_iter().unzip();
    let rounds: Vec<RoundRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT r.* FROM rm_wallet_rounds_v{v} r \
         JOIN UNNEST($1::text[], $2::text[]) AS k(provider_id, round_id) USING (provider_id, round_id)"
    )))
    .bind(providers)
    .bind(round_ids)
    .fetch_all(&mut *conn)
    .await?;
    rows.players.extend(players.into_iter().map(|p| (p.id.clone(), p)));
    rows.deposits.extend(deposits.into_iter().map(|d| (d.id, d)));
    rows.withdrawals.extend(withdrawals.into_iter().map(|w| (w.id, w)));
    rows.bonuses.extend(bonuses.into_iter().map(|b| (b.id, b)));
    rows.transactions.extend(txs.into_iter().map(|t| ((t.provider_id.clone(), t.transaction_id), t)));
    rows.rounds.extend(rounds.into_iter().map(|r| ((r.provider_id.clone(), r.round_id.clone()), r)));
    Ok(rows)
}

/// What a page changed: the keys of the rows to write, and the rows only ever added.
#[derive(Default)]
struct Changed {
    players: HashSet<String>,
    deposits: HashSet<Uuid>,
    withdrawals: HashSet<Uuid>,
    rounds: HashSet<(String, String)>,
    transactions: HashSet<(String, Uuid)>,
    bonuses: HashSet<Uuid>,
    steps: Vec<StepRow>,
    movements: Vec<MovementRow>,
}

async fn apply(conn: &mut PgConnection, v: i32, page: &PageView<'_>) -> Result<(), ApplyError> {
    let events: Vec<(i64, &Event)> = page.iter().filter_map(|(r, e)| e.wallet().map(|e| (r.position, e))).collect();
    if events.is_empty() {
        return Ok(());
    }
    let mut keys = Keys::default();
    for (_, e) in &events {
        keys.of(e);
    }
    let mut rows = load(conn, v, keys).await?;
    let mut changed = Changed::default();
    for (position, event) in events {
        let poison = |error: String| ApplyError::Poison { position, error };
        let moved = movement::movements(event, &rows).map_err(|e| poison(e.to_string()))?;
        for (seq, m) in moved.into_iter().enumerate() {
            let player =
                rows.players.get_mut(&m.player).ok_or_else(|| poison(format!("player {} is not known", m.player)))?;
            let balance = player.balance_mut(m.account);
            *balance += m.amount;
            let (provider_id, round_id) = match &m.reference {
                Reference::Game { provider, round, .. } => (Some(provider.clone()), Some(round.clone())),
                _ => (None, None),
            };
            changed.movements.push(MovementRow {
                position,
                seq: i32::try_from(seq).expect("an event makes a handful of movements"),
                player_id: m.player.clone(),
                account: m.account.as_str().to_owned(),
                currency: m.currency.to_string(),
                amount: m.amount,
                balance_after: *balance,
                kind: m.kind.as_str().to_owned(),
                reference_kind: m.reference.kind().to_owned(),
                reference_id: m.reference.id(),
                provider_id,
                round_id,
                transfer_id: m.transfer.0,
                at: to_time(m.at),
            });
            (player.updated_at, player.position) = (to_time(m.at), position);
            changed.players.insert(m.player);
        }
        update(&mut rows, &mut changed, position, event).map_err(poison)?;
    }
    write(conn, v, &rows, changed).await?;
    Ok(())
}

/// Applies one event to the rows (its movements are already counted).
fn update(rows: &mut Rows, changed: &mut Changed, position: i64, event: &Event) -> Result<(), String> {
    let at = to_time(event.at());
    let missing =
        |kind: &str, id: &dyn fmt::Display| format!("{} names {kind} {id}, which is not known", event.event_type());
    match event {
        Event::PlayerUpserted(e) => {
            let self_exclusion = serde_json::to_value(e.self_exclusion).map_err(|e| e.to_string())?;
            let limits = serde_json::to_value(e.limits).map_err(|e| e.to_string())?;
            let zero = Decimal::ZERO;
            let p = rows.players.entry(e.id.clone()).or_insert_with(|| PlayerRow {
                id: e.id.clone(),
                currency: e.currency.to_string(),
                kyc: String::new(),
                self_exclusion: serde_json::Value::Null,
                limits: serde_json::Value::Null,
                main: zero,
                bonus: zero,
                locked: zero,
                open_bonus: None,
                created_at: at,
                updated_at: at,
                created_position: position,
                position,
            });
            p.kyc = text(&e.kyc);
            (p.self_exclusion, p.limits) = (self_exclusion, limits);
            (p.updated_at, p.position) = (at, position);
            changed.players.insert(e.id.clone());
        }
        Event::ProviderUpserted(_) => {}
        Event::DepositCreated(e) => {
            rows.deposits.insert(
                e.id.0,
                DepositRow {
                    id: e.id.0,
                    player_id: e.player.clone(),
                    amount: e.amount,
                    currency: e.currency.to_string(),
                    provider_id: e.provider.clone(),
                    status: "pending".into(),
                    provider_reference: None,
                    reason: None,
                    event_id: None,
                    transfer_id: None,
                    created_at: at,
                    updated_at: at,
                    created_position: position,
                    position,
                },
            );
            changed.deposits.insert(e.id.0);
        }
        Event::DepositSucceeded(e) | Event::DepositFailed(e) => {
            let d = rows.deposits.get_mut(&e.id.0).ok_or_else(|| missing("deposit", &e.id))?;
            d.status = if matches!(event, Event::DepositFailed(_)) { "failed" } else { "succeeded" }.into();
            d.provider_reference.clone_from(&e.provider_reference);
            d.reason.clone_from(&e.reason);
            d.event_id.clone_from(&e.event_id);
            d.transfer_id = e.transfer.map(|t| t.0);
            (d.updated_at, d.position) = (at, position);
            changed.deposits.insert(e.id.0);
        }
        Event::WithdrawalRequested(e) => {
            rows.withdrawals.insert(
                e.id.0,
                WithdrawalRow {
                    id: e.id.0,
                    player_id: e.player.clone(),
                    amount: e.amount,
                    currency: e.currency.to_string(),
                    provider_id: e.provider.clone(),
                    status: "locked".into(),
                    deadline: to_time(e.deadline),
                    provider_reference: None,
                    reason: None,
                    event_id: None,
                    created_at: at,
                    updated_at: at,
                    created_position: position,
                    position,
                },
            );
            changed.steps.push(StepRow {
                withdrawal_id: e.id.0,
                position,
                status: "locked".into(),
                transfer_id: Some(e.transfer.0),
                provider_reference: None,
                reason: None,
                event_id: None,
                at,
            });
            changed.withdrawals.insert(e.id.0);
        }
        Event::WithdrawalSent(e)
        | Event::WithdrawalSucceeded(e)
        | Event::WithdrawalFailed(e)
        | Event::WithdrawalTimedOut(e) => {
            let status = match event {
                Event::WithdrawalSent(_) => "sent",
                Event::WithdrawalSucceeded(_) => "succeeded",
                Event::WithdrawalFailed(_) => "failed",
                _ => "timed_out",
            };
            let w = rows.withdrawals.get_mut(&e.id.0).ok_or_else(|| missing("withdrawal", &e.id))?;
            w.status = status.into();
            // As the writer's state: a step keeps what an earlier one said unless it says more.
            if e.provider_reference.is_some() {
                w.provider_reference.clone_from(&e.provider_reference);
            }
            if e.reason.is_some() {
                w.reason.clone_from(&e.reason);
            }
            if e.event_id.is_some() {
                w.event_id.clone_from(&e.event_id);
            }
            (w.updated_at, w.position) = (at, position);
            changed.steps.push(StepRow {
                withdrawal_id: e.id.0,
                position,
                status: status.into(),
                transfer_id: e.transfer.map(|t| t.0),
                provider_reference: e.provider_reference.clone(),
                reason: e.reason.clone(),
                event_id: e.event_id.clone(),
                at,
            });
            changed.withdrawals.insert(e.id.0);
        }
        Event::BetPlaced(e) | Event::WinPaid(e) | Event::RollbackRecorded(e) => {
            let kind = match event {
                Event::BetPlaced(_) => TxKind::Bet,
                Event::WinPaid(_) => TxKind::Win,
                _ => TxKind::Rollback,
            };
            game_tx(rows, changed, position, kind, e)?;
        }
        Event::BetRolledBack(e) => {
            let key = (e.provider.clone(), e.transaction);
            let bet = rows.transactions.get_mut(&key).ok_or_else(|| missing("bet", &e.transaction))?;
            bet.rolled_back_by = Some(e.by);
            bet.reversal_transfer_id = e.transfer.map(|t| t.0);
            (bet.updated_at, bet.position) = (at, position);
            let (round_key, main, bonus) = ((bet.provider_id.clone(), bet.round_id.clone()), bet.main, bet.bonus);
            changed.transactions.insert(key);
            let round = rows.rounds.get_mut(&round_key).ok_or_else(|| missing("round", &round_key.1))?;
            round.staked_main -= main;
            round.staked_bonus -= bonus;
            (round.updated_at, round.position) = (at, position);
            changed.rounds.insert(round_key);
            wager(rows, changed, e.wagering, Decimal::NEGATIVE_ONE, at, position);
        }
        Event::BetTombstoned(e) => {
            let zero = Decimal::ZERO;
            let key = (e.provider.clone(), e.transaction);
            rows.transactions.insert(
                key.clone(),
                GameTransactionRow {
                    provider_id: e.provider.clone(),
                    transaction_id: e.transaction,
                    kind: text(&TxKind::Tombstone),
                    player_id: e.player.clone(),
                    round_id: e.round.clone(),
                    amount: zero,
                    currency: None,
                    main: zero,
                    bonus: zero,
                    reference: None,
                    round_closed: false,
                    wagering_bonus: None,
                    wagering: None,
                    transfer_id: None,
                    rolled_back_by: Some(e.by),
                    reversal_transfer_id: None,
                    balance: zero,
                    bonus_balance: zero,
                    created_at: at,
                    updated_at: at,
                    created_position: position,
                    position,
                },
            );
            changed.transactions.insert(key);
        }
        Event::BonusGranted(e) => {
            rows.bonuses.insert(
                e.id.0,
                BonusRow {
                    id: e.id.0,
                    player_id: e.player.clone(),
                    amount: e.amount,
                    currency: e.currency.to_string(),
                    wagering_multiplier: e.wagering_multiplier,
                    required: e.required,
                    wagered: Decimal::ZERO,
                    status: "active".into(),
                    expires_at: to_time(e.expires_at),
                    closed_amount: None,
                    reason: None,
                    grant_transfer_id: e.transfer.0,
                    close_transfer_id: None,
                    created_at: at,
                    updated_at: at,
                    created_position: position,
                    position,
                },
            );
            changed.bonuses.insert(e.id.0);
            let p = rows.players.get_mut(&e.player).ok_or_else(|| missing("player", &e.player))?;
            p.open_bonus = Some(e.id.0);
            (p.updated_at, p.position) = (at, position);
            changed.players.insert(e.player.clone());
        }
        Event::BonusConverted(e) | Event::BonusExpired(e) | Event::BonusForfeited(e) => {
            let status = match event {
                Event::BonusConverted(_) => "converted",
                Event::BonusExpired(_) => "expired",
                _ => "forfeited",
            };
            let b = rows.bonuses.get_mut(&e.id.0).ok_or_else(|| missing("bonus", &e.id))?;
            b.status = status.into();
            b.closed_amount = Some(e.amount);
            b.reason.clone_from(&e.reason);
            b.close_transfer_id = e.transfer.map(|t| t.0);
            (b.updated_at, b.position) = (at, position);
            let player = b.player_id.clone();
            changed.bonuses.insert(e.id.0);
            let p = rows.players.get_mut(&player).ok_or_else(|| missing("player", &player))?;
            p.open_bonus = None;
            (p.updated_at, p.position) = (at, position);
            changed.players.insert(player);
        }
    }
    Ok(())
}

/// A bet's wagering counted toward (or, rolled back, taken from) a bonus still open.
fn wager(
    rows: &mut Rows,
    changed: &mut Changed,
    wagering: Option<ledger_core::wallet::event::Wagering>,
    sign: Decimal,
    at: OffsetDateTime,
    position: i64,
) {
    if let Some(w) = wagering
        && let Some(b) = rows.bonuses.get_mut(&w.bonus.0)
        && b.status == "active"
    {
        b.wagered += sign * w.amount;
        (b.updated_at, b.position) = (at, position);
        changed.bonuses.insert(w.bonus.0);
    }
}

fn game_tx(rows: &mut Rows, changed: &mut Changed, position: i64, kind: TxKind, e: &GameTx) -> Result<(), String> {
    let at = to_time(e.at);
    let zero = Decimal::ZERO;
    let round_key = (e.provider.clone(), e.round.clone());
    let round = rows.rounds.entry(round_key.clone()).or_insert_with(|| RoundRow {
        provider_id: e.provider.clone(),
        round_id: e.round.clone(),
        player_id: e.player.clone(),
        currency: e.currency.to_string(),
        staked_main: zero,
        staked_bonus: zero,
        won_main: zero,
        won_bonus: zero,
        bets: 0,
        wins: 0,
        rollbacks: 0,
        closed: false,
        created_at: at,
        updated_at: at,
        created_position: position,
        position,
    });
    match kind {
        TxKind::Bet => {
            round.staked_main += e.main;
            round.staked_bonus += e.bonus;
            round.bets += 1;
        }
        TxKind::Win => {
            round.won_main += e.main;
            round.won_bonus += e.bonus;
            round.wins += 1;
        }
        TxKind::Rollback | TxKind::Tombstone => round.rollbacks += 1,
    }
    round.closed |= e.round_closed;
    (round.updated_at, round.position) = (at, position);
    changed.rounds.insert(round_key);
    let key = (e.provider.clone(), e.transaction);
    rows.transactions.insert(
        key.clone(),
        GameTransactionRow {
            provider_id: e.provider.clone(),
            transaction_id: e.transaction,
            kind: text(&kind),
            player_id: e.player.clone(),
            round_id: e.round.clone(),
            amount: e.amount,
            currency: Some(e.currency.to_string()),
            main: e.main,
            bonus: e.bonus,
            reference: e.reference,
            round_closed: e.round_closed,
            wagering_bonus: e.wagering.map(|w| w.bonus.0),
            wagering: e.wagering.map(|w| w.amount),
            transfer_id: e.transfer.map(|t| t.0),
            rolled_back_by: None,
            reversal_transfer_id: None,
            balance: e.balance,
            bonus_balance: e.bonus_balance,
            created_at: at,
            updated_at: at,
            created_position: position,
            position,
        },
    );
    changed.transactions.insert(key);
    if kind == TxKind::Bet {
        wager(rows, changed, e.wagering, Decimal::ONE, at, position);
    }
    Ok(())
}

async fn write(conn: &mut PgConnection, v: i32, rows: &Rows, changed: Changed) -> Result<(), sqlx::Error> {
    // One statement per table over arrays, each table's rows in key order: two appliers never
    // lock rows in opposite orders.
    let mut p: Vec<&PlayerRow> = changed.players.iter().map(|k| &rows.players[k]).collect();
    p.sort_by(|a, b| a.id.cmp(&b.id));
    if !p.is_empty() {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO rm_wallet_players_v{v} (id, currency, kyc, self_exclusion, limits, main, bonus, locked, \
             open_bonus, created_at, updated_at, created_position, position) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::jsonb[], $6::numeric[], \
             $7::numeric[], $8::numeric[], $9::uuid[], $10::timestamptz[], $11::timestamptz[], $12::bigint[], \
             $13::bigint[]) \
             ON CONFLICT (id) DO UPDATE SET kyc = EXCLUDED.kyc, self_exclusion = EXCLUDED.self_exclusion, \
             limits = EXCLUDED.limits, main = EXCLUDED.main, bonus = EXCLUDED.bonus, locked = EXCLUDED.locked, \
             open_bonus = EXCLUDED.open_bonus, updated_at = EXCLUDED.updated_at, position = EXCLUDED.position"
        )))
        .bind(p.iter().map(|x| x.id.as_str()).collect::<Vec<_>>())
        .bind(p.iter().map(|x| x.currency.as_str()).collect::<Vec<_>>())
        .bind(p.iter().map(|x| x.kyc.as_str()).collect::<Vec<_>>())
        .bind(p.iter().map(|x| x.self_exclusion.clone()).collect::<Vec<_>>())
        .bind(p.iter().map(|x| x.limits.clone()).collect::<Vec<_>>())
        .bind(p.iter().map(|x| x.main).collect::<Vec<_>>())
        .bind(p.iter().map(|x| x.bonus).collect::<Vec<_>>())
        .bind(p.iter().map(|x| x.locked).collect::<Vec<_>>())
        .bind(p.iter().map(|x| x.open_bonus).collect::<Vec<_>>())
        .bind(p.iter().map(|x| x.created_at).collect::<Vec<_>>())
        .bind(p.iter().map(|x| x.updated_at).collect::<Vec<_>>())
        .bind(p.iter().map(|x| x.created_position).collect::<Vec<_>>())
        .bind(p.iter().map(|x| x.position).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    }
    let mut d: Vec<&DepositRow> = changed.deposits.iter().map(|k| &rows.deposits[k]).collect();
    d.sort_by_key(|x| x.id);
    if !d.is_empty() {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO rm_wallet_deposits_v{v} (id, player_id, amount, currency, provider_id, status, \
             provider_reference, reason, event_id, transfer_id, created_at, updated_at, created_position, position) \
             SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::numeric[], $4::text[], $5::text[], $6::text[], \
             $7::text[], $8::text[], $9::text[], $10::uuid[], $11::timestamptz[], $12::timestamptz[], $13::bigint[], \
             $14::bigint[]) \
             ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, \
             provider_reference = EXCLUDED.provider_reference, reason = EXCLUDED.reason, \
             event_id = EXCLUDED.event_id, transfer_id = EXCLUDED.transfer_id, updated_at = EXCLUDED.updated_at, \
             position = EXCLUDED.position"
        )))
        .bind(d.iter().map(|x| x.id).collect::<Vec<_>>())
        .bind(d.iter().map(|x| x.player_id.as_str()).collect::<Vec<_>>())
        .bind(d.iter().map(|x| x.amount).collect::<Vec<_>>())
        .bind(d.iter().map(|x| x.currency.as_str()).collect::<Vec<_>>())
        .bind(d.iter().map(|x| x.provider_id.as_str()).collect::<Vec<_>>())
        .bind(d.iter().map(|x| x.status.as_str()).collect::<Vec<_>>())
        .bind(d.iter().map(|x| x.provider_reference.clone()).collect::<Vec<_>>())
        .bind(d.iter().map(|x| x.reason.clone()).collect::<Vec<_>>())
        .bind(d.iter().map(|x| x.event_id.clone()).collect::<Vec<_>>())
        .bind(d.iter().map(|x| x.transfer_id).collect::<Vec<_>>())
        .bind(d.iter().map(|x| x.created_at).collect::<Vec<_>>())
        .bind(d.iter().map(|x| x.updated_at).collect::<Vec<_>>())
        .bind(d.iter().map(|x| x.created_position).collect::<Vec<_>>())
        .bind(d.iter().map(|x| x.position).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    }
    let mut w: Vec<&WithdrawalRow> = changed.withdrawals.iter().map(|k| &rows.withdrawals[k]).collect();
    w.sort_by_key(|x| x.id);
    if !w.is_empty() {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO rm_wallet_withdrawals_v{v} (id, player_id, amount, currency, provider_id, status, deadline, \
             provider_reference, reason, event_id, created_at, updated_at, created_position, position) \
             SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::numeric[], $4::text[], $5::text[], $6::text[], \
             $7::timestamptz[], $8::text[], $9::text[], $10::text[], $11::timestamptz[], $12::timestamptz[], \
             $13::bigint[], $14::bigint[]) \
             ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, \
             provider_reference = EXCLUDED.provider_reference, reason = EXCLUDED.reason, \
             event_id = EXCLUDED.event_id, updated_at = EXCLUDED.updated_at, position = EXCLUDED.position"
        )))
        .bind(w.iter().map(|x| x.id).collect::<Vec<_>>())
        .bind(w.iter().map(|x| x.player_id.as_str()).collect::<Vec<_>>())
        .bind(w.iter().map(|x| x.amount).collect::<Vec<_>>())
        .bind(w.iter().map(|x| x.currency.as_str()).collect::<Vec<_>>())
        .bind(w.iter().map(|x| x.provider_id.as_str()).collect::<Vec<_>>())
        .bind(w.iter().map(|x| x.status.as_str()).collect::<Vec<_>>())
        .bind(w.iter().map(|x| x.deadline).collect::<Vec<_>>())
        .bind(w.iter().map(|x| x.provider_reference.clone()).collect::<Vec<_>>())
        .bind(w.iter().map(|x| x.reason.clone()).collect::<Vec<_>>())
        .bind(w.iter().map(|x| x.event_id.clone()).collect::<Vec<_>>())
        .bind(w.iter().map(|x| x.created_at).collect::<Vec<_>>())
        .bind(w.iter().map(|x| x.updated_at).collect::<Vec<_>>())
        .bind(w.iter().map(|x| x.created_position).collect::<Vec<_>>())
        .bind(w.iter().map(|x| x.position).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    }
    let st = &changed.steps;
    if !st.is_empty() {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO rm_wallet_withdrawal_steps_v{v} (withdrawal_id, position, status, transfer_id, \
             provider_reference, reason, event_id, at) \
             SELECT * FROM UNNEST($1::uuid[], $2::bigint[], $3::text[], $4::uuid[], $5::text[], $6::text[], \
             $7::text[], $8::timestamptz[])"
        )))
        .bind(st.iter().map(|x| x.withdrawal_id).collect::<Vec<_>>())
        .bind(st.iter().map(|x| x.position).collect::<Vec<_>>())
        .bind(st.iter().map(|x| x.status.as_str()).collect::<Vec<_>>())
        .bind(st.iter().map(|x| x.transfer_id).collect::<Vec<_>>())
        .bind(st.iter().map(|x| x.provider_reference.clone()).collect::<Vec<_>>())
        .bind(st.iter().map(|x| x.reason.clone()).collect::<Vec<_>>())
        .bind(st.iter().map(|x| x.event_id.clone()).collect::<Vec<_>>())
        .bind(st.iter().map(|x| x.at).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    }
    let mut r: Vec<&RoundRow> = changed.rounds.iter().map(|k| &rows.rounds[k]).collect();
    r.sort_by(|a, b| (&a.provider_id, &a.round_id).cmp(&(&b.provider_id, &b.round_id)));
    if !r.is_empty() {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO rm_wallet_rounds_v{v} (provider_id, round_id, player_id, currency, staked_main, \
             staked_bonus, won_main, won_bonus, bets, wins, rollbacks, closed, created_at, updated_at, \
             created_position, position) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::numeric[], $6::numeric[], \
             $7::numeric[], $8::numeric[], $9::int[], $10::int[], $11::int[], $12::boolean[], $13::timestamptz[], \
             $14::timestamptz[], $15::bigint[], $16::bigint[]) \
             ON CONFLICT (provider_id, round_id) DO UPDATE SET staked_main = EXCLUDED.staked_main, \
             staked_bonus = EXCLUDED.staked_bonus, won_main = EXCLUDED.won_main, won_bonus = EXCLUDED.won_bonus, \
             bets = EXCLUDED.bets, wins = EXCLUDED.wins, rollbacks = EXCLUDED.rollbacks, closed = EXCLUDED.closed, \
             updated_at = EXCLUDED.updated_at, position = EXCLUDED.position"
        )))
        .bind(r.iter().map(|x| x.provider_id.as_str()).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.round_id.as_str()).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.player_id.as_str()).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.currency.as_str()).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.staked_main).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.staked_bonus).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.won_main).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.won_bonus).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.bets).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.wins).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.rollbacks).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.closed).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.created_at).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.updated_at).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.created_position).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.position).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    }
    let mut t: Vec<&GameTransactionRow> = changed.transactions.iter().map(|k| &rows.transactions[k]).collect();
    t.sort_by(|a, b| (&a.provider_id, a.transaction_id).cmp(&(&b.provider_id, b.transaction_id)));
    if !t.is_empty() {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO rm_wallet_game_transactions_v{v} (provider_id, transaction_id, kind, player_id, round_id, \
             amount, currency, main, bonus, reference, round_closed, wagering_bonus, wagering, transfer_id, \
             rolled_back_by, reversal_transfer_id, balance, bonus_balance, created_at, updated_at, \
             created_position, position) \
             SELECT * FROM UNNEST($1::text[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::numeric[], \
             $7::text[], $8::numeric[], $9::numeric[], $10::uuid[], $11::boolean[], $12::uuid[], $13::numeric[], \
             $14::uuid[], $15::uuid[], $16::uuid[], $17::numeric[], $18::numeric[], $19::timestamptz[], \
             $20::timestamptz[], $21::bigint[], $22::bigint[]) \
             ON CONFLICT (provider_id, transaction_id) DO UPDATE SET rolled_back_by = EXCLUDED.rolled_back_by, \
             reversal_transfer_id = EXCLUDED.reversal_transfer_id, updated_at = EXCLUDED.updated_at, \
             position = EXCLUDED.position"
        )))
        .bind(t.iter().map(|x| x.provider_id.as_str()).collect::<Vec<_>>())
        .bind(t.iter().map(|x| x.transaction_id).collect::<Vec<_>>())
        .bind(t.iter().map(|x| x.kind.as_str()).collect::<Vec<_>>())
        .bind(t.iter().map(|x| x.player_id.as_str()).collect::<Vec<_>>())
        .bind(t.iter().map(|x| x.round_id.as_str()).collect::<Vec<_>>())
        .bind(t.iter().map(|x| x.amount).collect::<Vec<_>>())
        .bind(t.iter().map(|x| x.currency.clone()).collect::<Vec<_>>())
        .bind(t.iter().map(|x| x.main).collect::<Vec<_>>())
        .bind(t.iter().map(|x| x.bonus).collect::<Vec<_>>())
        .bind(t.iter().map(|x| x.reference).collect::<Vec<_>>())
        .bind(t.iter().map(|x| x.round_closed).collect::<Vec<_>>())
        .bind(t.iter().map(|x| x.wagering_bonus).collect::<Vec<_>>())
        .bind(t.iter().map(|x| x.wagering).collect::<Vec<_>>())
        .bind(t.iter().map(|x| x.transfer_id).collect::<Vec<_>>())
        .bind(t.iter().map(|x| x.rolled_back_by).collect::<Vec<_>>())
        .bind(t.iter().map(|x| x.reversal_transfer_id).collect::<Vec<_>>())
        .bind(t.iter().map(|x| x.balance).collect::<Vec<_>>())
        .bind(t.iter().map(|x| x.bonus_balance).collect::<Vec<_>>())
        .bind(t.iter().map(|x| x.created_at).collect::<Vec<_>>())
        .bind(t.iter().map(|x| x.updated_at).collect::<Vec<_>>())
        .bind(t.iter().map(|x| x.created_position).collect::<Vec<_>>())
        .bind(t.iter().map(|x| x.position).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    }
    let mut b: Vec<&BonusRow> = changed.bonuses.iter().map(|k| &rows.bonuses[k]).collect();
    b.sort_by_key(|x| x.id);
    if !b.is_empty() {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO rm_wallet_bonuses_v{v} (id, player_id, amount, currency, wagering_multiplier, required, \
             wagered, status, expires_at, closed_amount, reason, grant_transfer_id, close_transfer_id, created_at, \
             updated_at, created_position, position) \
             SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::numeric[], $4::text[], $5::numeric[], $6::numeric[], \
             $7::numeric[], $8::text[], $9::timestamptz[], $10::numeric[], $11::text[], $12::uuid[], $13::uuid[], \
             $14::timestamptz[], $15::timestamptz[], $16::bigint[], $17::bigint[]) \
             ON CONFLICT (id) DO UPDATE SET wagered = EXCLUDED.wagered, status = EXCLUDED.status, \
             closed_amount = EXCLUDED.closed_amount, reason = EXCLUDED.reason, \
             close_transfer_id = EXCLUDED.close_transfer_id, updated_at = EXCLUDED.updated_at, \
             position = EXCLUDED.position"
        )))
        .bind(b.iter().map(|x| x.id).collect::<Vec<_>>())
        .bind(b.iter().map(|x| x.player_id.as_str()).collect::<Vec<_>>())
        .bind(b.iter().map(|x| x.amount).collect::<Vec<_>>())
        .bind(b.iter().map(|x| x.currency.as_str()).collect::<Vec<_>>())
        .bind(b.iter().map(|x| x.wagering_multiplier).collect::<Vec<_>>())
        .bind(b.iter().map(|x| x.required).collect::<Vec<_>>())
        .bind(b.iter().map(|x| x.wagered).collect::<Vec<_>>())
        .bind(b.iter().map(|x| x.status.as_str()).collect::<Vec<_>>())
        .bind(b.iter().map(|x| x.expires_at).collect::<Vec<_>>())
        .bind(b.iter().map(|x| x.closed_amount).collect::<Vec<_>>())
        .bind(b.iter().map(|x| x.reason.clone()).collect::<Vec<_>>())
        .bind(b.iter().map(|x| x.grant_transfer_id).collect::<Vec<_>>())
        .bind(b.iter().map(|x| x.close_transfer_id).collect::<Vec<_>>())
        .bind(b.iter().map(|x| x.created_at).collect::<Vec<_>>())
        .bind(b.iter().map(|x| x.updated_at).collect::<Vec<_>>())
        .bind(b.iter().map(|x| x.created_position).collect::<Vec<_>>())
        .bind(b.iter().map(|x| x.position).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    }
    let m = &changed.movements;
    if !m.is_empty() {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO rm_wallet_movements_v{v} (position, seq, player_id, account, currency, amount, \
             balance_after, kind, reference_kind, reference_id, provider_id, round_id, transfer_id, at) \
             SELECT * FROM UNNEST($1::bigint[], $2::int[], $3::text[], $4::text[], $5::text[], $6::numeric[], \
             $7::numeric[], $8::text[], $9::text[], $10::uuid[], $11::text[], $12::text[], $13::uuid[], \
             $14::timestamptz[])"
        )))
        .bind(m.iter().map(|x| x.position).collect::<Vec<_>>())
        .bind(m.iter().map(|x| x.seq).collect::<Vec<_>>())
        .bind(m.iter().map(|x| x.player_id.as_str()).collect::<Vec<_>>())
        .bind(m.iter().map(|x| x.account.as_str()).collect::<Vec<_>>())
        .bind(m.iter().map(|x| x.currency.as_str()).collect::<Vec<_>>())
        .bind(m.iter().map(|x| x.amount).collect::<Vec<_>>())
        .bind(m.iter().map(|x| x.balance_after).collect::<Vec<_>>())
        .bind(m.iter().map(|x| x.kind.as_str()).collect::<Vec<_>>())
        .bind(m.iter().map(|x| x.reference_kind.as_str()).collect::<Vec<_>>())
        .bind(m.iter().map(|x| x.reference_id).collect::<Vec<_>>())
        .bind(m.iter().map(|x| x.provider_id.clone()).collect::<Vec<_>>())
        .bind(m.iter().map(|x| x.round_id.clone()).collect::<Vec<_>>())
        .bind(m.iter().map(|x| x.transfer_id).collect::<Vec<_>>())
        .bind(m.iter().map(|x| x.at).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

// Reads, through the stable names (views) of the current version.

pub async fn player(conn: &mut PgConnection, id: &str) -> Result<Option<PlayerRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM rm_wallet_players WHERE id = $1").bind(id).fetch_optional(conn).await
}

/// A player's rows of `table`, oldest first, after the row created at `after`, at most `limit`.
async fn of_player<T>(
    conn: &mut PgConnection,
    table: &str,
    player: &str,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<T>, sqlx::Error>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
{
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT * FROM {table} WHERE player_id = $1 AND created_position > $2 ORDER BY created_position LIMIT $3"
    )))
    .bind(player)
    .bind(after.unwrap_or(-1))
    .bind(limit)
    .fetch_all(conn)
    .await
}

pub async fn deposits(
    conn: &mut PgConnection,
    player: &str,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<DepositRow>, sqlx::Error> {
    of_player(conn, "rm_wallet_deposits", player, after, limit).await
}

pub async fn withdrawals(
    conn: &mut PgConnection,
    player: &str,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<WithdrawalRow>, sqlx::Error> {
    of_player(conn, "rm_wallet_withdrawals", player, after, limit).await
}

pub async fn rounds(
    conn: &mut PgConnection,
    player: &str,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<RoundRow>, sqlx::Error> {
    of_player(conn, "rm_wallet_rounds", player, after, limit).await
}

pub async fn bonuses(
    conn: &mut PgConnection,
    player: &str,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<BonusRow>, sqlx::Error> {
    of_player(conn, "rm_wallet_bonuses", player, after, limit).await
}

/// The steps of these withdrawals, each withdrawal's in order.
pub async fn steps(conn: &mut PgConnection, withdrawals: &[Uuid]) -> Result<Vec<StepRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM rm_wallet_withdrawal_steps WHERE withdrawal_id = ANY($1) ORDER BY withdrawal_id, position",
    )
    .bind(withdrawals)
    .fetch_all(conn)
    .await
}

/// The transactions of these rounds (`(provider, round)`), each round's in order.
pub async fn round_transactions(
    conn: &mut PgConnection,
    rounds: &[(String, String)],
) -> Result<Vec<GameTransactionRow>, sqlx::Error> {
    let (providers, ids): (Vec<String>, Vec<String>) = rounds.iter().cloned().unzip();
    sqlx::query_as(
        "SELECT t.* FROM rm_wallet_game_transactions t \
         JOIN UNNEST($1::text[], $2::text[]) AS k(provider_id, round_id) USING (provider_id, round_id) \
         ORDER BY t.provider_id, t.round_id, t.created_position, t.transaction_id",
    )
    .bind(providers)
    .bind(ids)
    .fetch_all(conn)
    .await
}

/// Filters of a player's movements; every one optional.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MovementFilter {
    pub account: Option<Account>,
    pub kind: Option<movement::Kind>,
    /// `from` inclusive, `to` exclusive.
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
}

/// A player's movements in log order, after `after`, at most `limit`.
pub async fn movements(
    conn: &mut PgConnection,
    player: &str,
    filter: &MovementFilter,
    after: Option<MovementCursor>,
    limit: i64,
) -> Result<Vec<MovementRow>, sqlx::Error> {
    let mut q = sqlx::QueryBuilder::new("SELECT * FROM rm_wallet_movements WHERE player_id = ");
    q.push_bind(player.to_owned());
    if let Some(account) = filter.account {
        q.push(" AND account = ").push_bind(account.as_str());
    }
    if let Some(kind) = filter.kind {
        q.push(" AND kind = ").push_bind(kind.as_str());
    }
    if let Some(from) = filter.from {
        q.push(" AND at >= ").push_bind(from);
    }
    if let Some(to) = filter.to {
        q.push(" AND at < ").push_bind(to);
    }
    if let Some(after) = after {
        q.push(" AND (position, seq) > (").push_bind(after.position).push(", ").push_bind(after.seq).push(")");
    }
    q.push(" ORDER BY position, seq LIMIT ").push_bind(limit);
    q.build_query_as().fetch_all(conn).await
}

/// A player's movements at or before position `upto` (a checkpoint of this model), in log order
/// after `after`, at most `limit`: what a statement takes from the read model, the log giving
/// the rest (`command_api::wallet::movements`). Through the player's index.
pub async fn movements_upto(
    conn: &mut PgConnection,
    player: &str,
    after: MovementCursor,
    upto: i64,
    limit: i64,
) -> Result<Vec<MovementRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM rm_wallet_movements WHERE player_id = $1 AND (position, seq) > ($2, $3) \
         AND position <= $4 ORDER BY position, seq LIMIT $5",
    )
    .bind(player)
    .bind(after.position)
    .bind(after.seq)
    .bind(upto)
    .bind(limit)
    .fetch_all(conn)
    .await
}
