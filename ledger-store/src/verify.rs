//! `verify`: recomputes the hash chain and every balance from the log and compares them with
//! the stored state. The first mismatch is reported with the position that shows it.

use std::collections::{HashMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};

use ledger_core::{Currencies, State, Subject, TransferId};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::record::GENESIS_HASH;
use crate::sql;

const PAGE: i64 = 10_000;

#[derive(Debug, PartialEq)]
pub struct VerifyReport {
    pub events: i64,
    pub accounts: usize,
    pub transfers: usize,
    /// Rows of every other domain's entities (certificates, payouts, ...).
    pub entities: usize,
    pub head_hash: [u8; 32],
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("position {position}: {problem}")]
    Event { position: i64, problem: String },
    #[error("{0}")]
    State(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

fn at(position: i64, problem: impl Into<String>) -> VerifyError {
    VerifyError::Event { position, problem: problem.into() }
}

pub async fn verify(url: &str, currencies: Currencies) -> Result<VerifyReport, VerifyError> {
    let mut conn = PgConnection::connect(url).await?;
    // One snapshot for the log and the state tables, so a running writer cannot skew them.
    let mut tx = conn.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *tx).await?;

    let mut state = State::new(currencies);
    let mut prev_hash = GENESIS_HASH;
    let mut expected = 1;
    // First and latest position of each transfer's and each domain entity's stream.
    let mut streams: HashMap<sql::Stored, (i64, i64)> = HashMap::new();
    loop {
        let page = sql::events_page(&mut tx, expected - 1, PAGE).await?;
        if page.is_empty() {
            break;
        }
        for record in page {
            if record.position != expected {
                return Err(at(expected, format!("missing: the next stored position is {}", record.position)));
            }
            if record.chained_hash(&prev_hash) != record.hash {
                return Err(at(record.position, "hash does not match the event's contents and its predecessor"));
            }
            let event = record.event().map_err(|e| at(record.position, format!("cannot be read: {e}")))?;
            if event.stream() != record.stream_id {
                return Err(at(
                    record.position,
                    format!("stream {} but the event belongs to {}", record.stream_id, event.stream()),
                ));
            }
            catch_unwind(AssertUnwindSafe(|| state.apply(&event)))
                .map_err(|_| at(record.position, "does not apply to the state before it"))?;
            let version = state.version(event.subject());
            if version.and_then(|v| i32::try_from(v).ok()) != Some(record.stream_version) {
                return Err(at(
                    record.position,
                    format!("stream version {} should be {version:?}", record.stream_version),
                ));
            }
            // Positions move as the writer moves them: the event's own entity, and any other
            // domain entity whose row it changes (a certificate's operation).
            for touched in state.touched(&event) {
                if let (Subject::Transfer(_) | Subject::Entity(_), true) = (touched.subject, touched.moves)
                    && let Some(stored) = sql::Stored::of(touched.subject)
                {
                    streams.entry(stored).or_insert((record.position, record.position)).1 = record.position;
                }
            }
            prev_hash = record.hash;
            expected += 1;
        }
    }

    let stored = sql::load_accounts(&mut tx).await?;
    for row in &stored {
        let stored = &row.account;
        let Some(replayed) = state.ledger.account(stored.id) else {
            return Err(VerifyError::State(format!(
                "account {} ({}) is stored but never opened in the log",
                stored.code, stored.id
            )));
        };
        if replayed != stored {
            return Err(VerifyError::State(format!(
                "account {} ({}) last changed at position {}: stored {:?} {:?} v{}, the log gives {:?} {:?} v{}",
                stored.code,
                stored.id,
                row.position,
                stored.status,
                stored.balances,
                stored.version,
                replayed.status,
                replayed.balances,
                replayed.version
            )));
        }
    }
    if stored.len() != state.ledger.accounts().count() {
        return Err(VerifyError::State(format!(
            "{} accounts stored, {} opened in the log",
            stored.len(),
            state.ledger.accounts().count()
        )));
    }

    let mut seen = HashSet::new();
    let mut after = Uuid::nil();
    loop {
        let page = sql::transfers_page(&mut tx, after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for row in page {
            let Some(replayed) = state.ledger.transfer(TransferId(row.id)) else {
                return Err(VerifyError::State(format!("transfer {} is stored but not in the log", row.id)));
            };
            let (first, latest) = streams.get(&sql::Stored::Transfer(row.id)).copied().unwrap_or_default();
            let expected = sql::StoredTransfer {
                id: row.id,
                status: replayed.status.as_str().to_owned(),
                created_position: first,
                position: latest,
                reversed_by: replayed.reversed_by.map(|t| t.0),
            };
            if row != expected {
                return Err(VerifyError::State(format!(
                    "transfer {}: stored {row:?}, the log gives {expected:?}",
                    row.id
                )));
            }
            seen.insert(row.id);
        }
    }
    if seen.len() != state.ledger.transfer_count() {
        return Err(VerifyError::State(format!(
            "{} transfers stored, {} in the log",
            seen.len(),
            state.ledger.transfer_count()
        )));
    }

    // Every domain's entities: the stored rows are exactly the replay's.
    let stored_entities = sql::load_entities(&mut tx).await?;
    let mut replayed: HashMap<Uuid, ledger_core::EntityRow> = state.rows().into_iter().map(|r| (r.id, r)).collect();
    for stored in &stored_entities {
        let row = &stored.row;
        let Some(expected) = replayed.remove(&row.id) else {
            return Err(VerifyError::State(format!("{} {} is stored but not in the log", row.kind, row.key)));
        };
        let (first, latest) = streams.get(&sql::Stored::Entity(row.id)).copied().unwrap_or_default();
        if !row.same_as(&expected) || (stored.first_position, stored.position) != (first, latest) {
            return Err(VerifyError::State(format!(
                "{} {} last changed at position {}: stored v{} {}, the log gives v{} {} (positions {first}..{latest})",
                row.kind, row.key, stored.position, row.version, row.state, expected.version, expected.state
            )));
        }
    }
    if let Some(missing) = replayed.values().next() {
        return Err(VerifyError::State(format!("{} {} is in the log but not stored", missing.kind, missing.key)));
    }
    tx.rollback().await?;
    Ok(VerifyReport {
        events: expected - 1,
        accounts: stored.len(),
        transfers: seen.len(),
        entities: stored_entities.len(),
        head_hash: prev_hash,
    })
}
