//! A player's movements, in log order: what the statement is made of, so its totals are the
//! replay's.
//!
//! Two sources, one sequence. The wallet read model (`rm_wallet_movements`, by player) holds
//! the movements of every event up to its checkpoint; the process running the read models
//! hands in a [`MovementsReader`] over it (`ApiState::with_wallet_movements`, `ledger up` does).
//! The statement takes the checkpoint once, reads the player's movements at or before it from
//! the read model in keyset pages (the bound fixed, so a checkpoint moving meanwhile neither
//! repeats nor skips one), then the log past it: the wallet events that move money, in windows
//! of positions (`log::page_of`, which reads only those types), each turned into its movements
//! by the core (`wallet::movement::movements`) with the entities it names read from their stored
//! rows in the same window. So a statement is exact to the last commit however far the read
//! model lags, and costs the player's movements plus the log's wallet events not yet projected.
//!
//! Without a reader (the command API on its own) the whole log is the tail: exact, at the cost
//! of every wallet event of the log per statement. A reader that fails (its database down) is
//! `read_model_unavailable` (503), not a silent read of the whole log on the writer's database.
//! A read model whose tables do not exist yet has applied nothing: its reader answers
//! checkpoint 0. `/metrics` counts what statements read from each
//! (`ledger_wallet_statement_read_model_movements_total`,
//! `ledger_wallet_statement_log_events_total`).

use std::collections::HashMap;
use std::fmt::Write;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};

use ledger_core::Timestamp;
use ledger_core::wallet::movement::{Movement, Reference, movements};
use ledger_core::wallet::rows::{RowLookup, named_rows};
use ledger_core::{EntityRow, Event};
use ledger_store::RecordedEvent;
use rust_decimal::Decimal;
use time::OffsetDateTime;
use uuid::Uuid;

use super::statement::{Line, StatementAccount};
use crate::ApiState;
use crate::error::ApiError;

/// The wallet's event types that move a player's money.
pub const MOVING_TYPES: &[&str] = &[
    "DepositSucceeded",
    "WithdrawalRequested",
    "WithdrawalSucceeded",
    "WithdrawalFailed",
    "WithdrawalTimedOut",
    "BetPlaced",
    "WinPaid",
    "BetRolledBack",
    "BonusGranted",
    "BonusConverted",
    "BonusExpired",
    "BonusForfeited",
];

/// Positions read per window of the log.
const WINDOW: i64 = 50_000;

/// Movements read per page of the read model.
pub const READ_MODEL_PAGE: i64 = 10_000;

/// Where a movement stands in the log: its event's position and its place among that event's
/// movements (`seq`, from 0). Keyset order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct MovementKey {
    pub position: i64,
    pub seq: i32,
}

/// A movement as the read model keeps it: its key and the statement's line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedLine {
    pub key: MovementKey,
    pub line: Line,
}

impl AppliedLine {
    /// From a read-model row's fields: `account` is `main`, `bonus` or `locked`; `reference` the
    /// deposit's, withdrawal's or bonus's id or the game transaction's; `round` a game's.
    pub fn new(
        key: MovementKey,
        at: OffsetDateTime,
        account: &str,
        kind: String,
        reference: Uuid,
        round: Option<String>,
        amount: Decimal,
    ) -> Result<AppliedLine, String> {
        let account = StatementAccount::ALL
            .into_iter()
            .find(|a| a.name() == account)
            .ok_or_else(|| format!("movement {key:?}: account {account:?} is not main, bonus or locked"))?;
        let at = i64::try_from(at.unix_timestamp_nanos() / 1000)
            .map_err(|_| format!("movement {key:?}: time {at} is out of range"))?;
        let line = Line {
            position: key.position,
            at: Timestamp(at),
            account,
            kind,
            reference: reference.to_string(),
            round,
            amount,
        };
        Ok(AppliedLine { key, line })
    }
}

/// A read of the read model: its error is logged, never shown.
pub type Reading<'a, T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send + 'a>>;

/// The wallet read model's movements, as the process running the read models provides them.
pub trait MovementsReader: Send + Sync {
    /// The read model's checkpoint: it holds every movement of every event at or before this
    /// position (0 when its tables do not exist yet).
    fn checkpoint(&self) -> Reading<'_, i64>;

    /// `player`'s movements after `after` with positions at most `upto` (a checkpoint it
    /// answered), in keyset order, at most `limit`.
    fn movements<'a>(
        &'a self,
        player: &'a str,
        after: MovementKey,
        upto: i64,
        limit: i64,
    ) -> Reading<'a, Vec<AppliedLine>>;
}

/// What statements read, for `/metrics`.
#[derive(Debug, Default)]
pub struct StatementMetrics {
    /// Movements read from the read model.
    read_model_movements: AtomicU64,
    /// Wallet events read from the log (the tail past the read model's checkpoint).
    log_events: AtomicU64,
}

impl StatementMetrics {
    pub fn render(&self, out: &mut String) {
        for (name, counter) in [
            ("ledger_wallet_statement_read_model_movements_total", &self.read_model_movements),
            ("ledger_wallet_statement_log_events_total", &self.log_events),
        ] {
            let _ = writeln!(out, "# TYPE {name} counter\n{name} {}", counter.load(Ordering::Relaxed));
        }
    }
}

/// Hands every movement of `player` to `each`, in log order: those the read model applied, then
/// those of the log past its checkpoint. Answers the position the log was read to.
pub async fn of_player(
    state: &ApiState,
    player: &str,
    mut each: impl FnMut(Line) -> Result<(), ApiError>,
) -> Result<i64, ApiError> {
    let metrics = &state.inner.wallet;
    let mut after = 0;
    if let Some(reader) = &state.wallet_movements {
        let upto = reader.checkpoint().await.map_err(ApiError::ReadModelFailed)?;
        let mut key = MovementKey::default();
        // Checkpoint 0: nothing applied (perhaps no tables yet), the log is all.
        let mut more = upto > 0;
        while more {
            let page = reader.movements(player, key, upto, READ_MODEL_PAGE).await.map_err(ApiError::ReadModelFailed)?;
            metrics.read_model_movements.fetch_add(page.len() as u64, Ordering::Relaxed);
            more = page.len() as i64 >= READ_MODEL_PAGE;
            for applied in page {
                // A reader out of order or past its bound would count a movement twice.
                if applied.key <= key || applied.key.position > upto {
                    return Err(ApiError::Internal(format!(
                        "the wallet read model answered {:?} after {key:?}, up to {upto}",
                        applied.key
                    )));
                }
                key = applied.key;
                each(applied.line)?;
            }
        }
        after = upto;
    }
    let mut conn = state.inner.pool.acquire().await?;
    loop {
        let (page, reached) = ledger_store::log::page_of(&mut conn, after, WINDOW, MOVING_TYPES).await?;
        if reached <= after {
            return Ok(after);
        }
        metrics.log_events.fetch_add(page.len() as u64, Ordering::Relaxed);
        for (position, m) in of_page(&mut conn, &page).await? {
            if m.player == player {
                each(line(position, m))?;
            }
        }
        after = reached;
    }
}

/// The movements of a page of the log (any events; those of other domains move nothing here),
/// each with its event's position. An event that names an entity with no row is a log and
/// entities that disagree: an internal error.
pub async fn of_page(conn: &mut sqlx::PgConnection, page: &[RecordedEvent]) -> Result<Vec<(i64, Movement)>, ApiError> {
    let mut events = Vec::new();
    for record in page {
        match record.event() {
            Ok(Event::Wallet(e)) => events.push((record.position, e)),
            Ok(_) => {}
            Err(e) => return Err(ApiError::Internal(format!("event at {}: {e}", record.position))),
        }
    }
    let ids: Vec<uuid::Uuid> = events.iter().filter_map(|(_, e)| named_rows(e)).collect();
    let rows: HashMap<uuid::Uuid, EntityRow> = if ids.is_empty() {
        HashMap::new()
    } else {
        ledger_store::log::entities(conn, &ids).await?.into_iter().map(|s| (s.row.id, s.row)).collect()
    };
    let lookup = RowLookup(|id| rows.get(&id).cloned());
    let mut out = Vec::new();
    for (position, event) in &events {
        let moved = movements(event, &lookup).map_err(|e| ApiError::Internal(format!("event at {position}: {e}")))?;
        out.extend(moved.into_iter().map(|m| (*position, m)));
    }
    Ok(out)
}

fn line(position: i64, m: Movement) -> Line {
    use ledger_core::wallet::movement::Account;
    let account = match m.account {
        Account::Main => StatementAccount::Main,
        Account::Bonus => StatementAccount::Bonus,
        Account::Locked => StatementAccount::Locked,
    };
    let round = match &m.reference {
        Reference::Game { round, .. } => Some(round.clone()),
        _ => None,
    };
    Line {
        position,
        at: m.at,
        account,
        kind: m.kind.as_str().to_owned(),
        reference: m.reference.id().to_string(),
        round,
        amount: m.amount,
    }
}
