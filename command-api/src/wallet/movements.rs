//! A player's movements read from the log: the wallet events that move money, in windows of
//! positions (`log::page_of`, which reads only those types), each turned into its movements by
//! the core (`wallet::movement::movements`) with the entities it names read from their stored
//! rows in the same window. What the statement is made of, so its totals are the replay's.
//!
//! The cost is a read of the log's wallet events (the types are filtered by Postgres, the
//! player here): a statement of a player with few movements on a long log still reads every
//! wallet event once.

use std::collections::HashMap;

use ledger_core::wallet::movement::{Movement, Reference, movements};
use ledger_core::wallet::rows::{RowLookup, named_rows};
use ledger_core::{EntityRow, Event};
use ledger_store::RecordedEvent;

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

/// Positions read per window.
const WINDOW: i64 = 50_000;

/// Hands every movement of `player` to `each`, in log order, and answers the position the log
/// was read to.
pub async fn of_player(
    state: &ApiState,
    player: &str,
    mut each: impl FnMut(Line) -> Result<(), ApiError>,
) -> Result<i64, ApiError> {
    let mut conn = state.inner.pool.acquire().await?;
    let mut after = 0;
    loop {
        let (page, reached) = ledger_store::log::page_of(&mut conn, after, WINDOW, MOVING_TYPES).await?;
        if reached <= after {
            return Ok(after);
        }
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
