//! Every SQL statement of the event store, in one place.

use std::collections::HashMap;

use ledger_core::{Account, AccountId, EntityRow, Timestamp, Transfer};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::record::RecordedEvent;
use crate::rows;

/// The advisory lock that fences the single writer of a database.
pub const WRITER_LOCK_KEY: i64 = 0x6c65_6467_6572_0001;

pub fn to_time(t: Timestamp) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.micros()) * 1000)
        .expect("timestamps are within years 1..9999")
}

pub fn from_time(t: OffsetDateTime) -> Timestamp {
    Timestamp(i64::try_from(t.unix_timestamp_nanos() / 1000).expect("timestamps fit in i64 microseconds"))
}

/// A unit enum's serde name (`"liability"`), for TEXT columns.
pub fn text<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        other => unreachable!("unit enums serialize to strings, got {other:?}"),
    }
}

/// Reads a unit enum back from its serde name.
pub fn parse<T: DeserializeOwned>(column: &str, value: String) -> Result<T, sqlx::Error> {
    serde_json::from_value(serde_json::Value::String(value))
        .map_err(|e| sqlx::Error::ColumnDecode { index: column.to_owned(), source: Box::new(e) })
}

/// The last position and its hash, or `(0, genesis)` for an empty log.
pub async fn head(conn: &mut PgConnection) -> Result<Option<(i64, Vec<u8>)>, sqlx::Error> {
    sqlx::query_as("SELECT position, hash FROM events ORDER BY position DESC LIMIT 1").fetch_optional(conn).await
}

/// An account row with the positions of its first and latest events.
pub struct AccountRow {
    pub account: Account,
    pub opened_position: i64,
    pub position: i64,
}

const ACCOUNT_COLUMNS: &str = "id, code, currency, kind, balance_limit, status, metadata, debits_posted, credits_posted, \
     debits_pending, credits_pending, version, opened_at, opened_position, position";

fn account_row(row: PgRow) -> Result<AccountRow, sqlx::Error> {
    let version: i32 = row.try_get("version")?;
    Ok(AccountRow {
        account: Account {
            id: AccountId(row.try_get("id")?),
            code: row.try_get("code")?,
            currency: parse("currency", row.try_get("currency")?)?,
            kind: parse("kind", row.try_get("kind")?)?,
            limit: parse("balance_limit", row.try_get("balance_limit")?)?,
            status: parse("status", row.try_get("status")?)?,
            metadata: row.try_get("metadata")?,
            balances: ledger_core::Balances {
                debits_posted: row.try_get("debits_posted")?,
                credits_posted: row.try_get("credits_posted")?,
                debits_pending: row.try_get("debits_pending")?,
                credits_pending: row.try_get("credits_pending")?,
            },
            version: u32::try_from(version).unwrap_or(0),
            opened_at: from_time(row.try_get("opened_at")?),
        },
        opened_position: row.try_get("opened_position")?,
        position: row.try_get("position")?,
    })
}

/// A domain entity as stored, with the positions of its first and latest events.
pub struct StoredEntity {
    pub row: EntityRow,
    pub first_position: i64,
    pub position: i64,
}

/// Every domain entity row (start-up and `verify`), in the order the entities were created:
/// an entity that belongs to another (a certificate's operation) comes after it.
pub async fn load_entities(conn: &mut PgConnection) -> Result<Vec<StoredEntity>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, kind, key, version, first_position, position, state::text AS state FROM entities \
         ORDER BY first_position, id",
    )
    .fetch_all(conn)
    .await?;
    entity_rows(rows)
}

/// Every stored row of one kind of entity, by key (the `(kind, key)` index).
pub async fn entities_of_kind(conn: &mut PgConnection, kind: &str) -> Result<Vec<StoredEntity>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, kind, key, version, first_position, position, state::text AS state FROM entities \
         WHERE kind = $1 ORDER BY key",
    )
    .bind(kind)
    .fetch_all(conn)
    .await?;
    entity_rows(rows)
}

/// The latest stored rows of the given entities (those that exist), by id.
pub async fn entities_by_id(conn: &mut PgConnection, ids: &[uuid::Uuid]) -> Result<Vec<StoredEntity>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, kind, key, version, first_position, position, state::text AS state FROM entities \
         WHERE id = ANY($1) ORDER BY id",
    )
    .bind(ids)
    .fetch_all(conn)
    .await?;
    entity_rows(rows)
}

fn entity_rows(rows: Vec<PgRow>) -> Result<Vec<StoredEntity>, sqlx::Error> {
    rows.into_iter()
        .map(|row| {
            let version: i32 = row.try_get("version")?;
            Ok(StoredEntity {
                row: EntityRow {
                    kind: row.try_get("kind")?,
                    id: row.try_get("id")?,
                    key: row.try_get("key")?,
                    version: u32::try_from(version).unwrap_or(0),
                    state: row.try_get::<String, _>("state")?.into(),
                    typed: Default::default(),
                },
                first_position: row.try_get("first_position")?,
                position: row.try_get("position")?,
            })
        })
        .collect()
}

pub async fn load_accounts(conn: &mut PgConnection) -> Result<Vec<AccountRow>, sqlx::Error> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(conn).await?;
    rows.into_iter().map(account_row).collect()
}

/// A transfer rebuilt from its stream, with the positions of its first and latest events.
pub struct TransferRow {
    pub transfer: Transfer,
    pub created_position: i64,
    pub position: i64,
}

/// Joins a transfer row with its creating and latest events, from which it is rebuilt.
const TRANSFER_QUERY: &str = "SELECT t.id, t.reversed_by, t.created_position, t.position, \
     c.event_type AS c_type, c.schema_version AS c_version, c.payload::text AS c_payload, \
     l.event_type AS l_type, l.schema_version AS l_version, l.payload::text AS l_payload \
     FROM transfers t JOIN events c ON c.position = t.created_position \
     LEFT JOIN events l ON l.position = t.position AND t.position <> t.created_position";

fn transfer_row(row: PgRow) -> Result<TransferRow, sqlx::Error> {
    let decode =
        |kind: &str, version: &str, payload: &str| -> Result<Option<ledger_core::ledger::Event>, sqlx::Error> {
            let Some(kind) = row.try_get::<Option<String>, _>(kind)? else {
                return Ok(None);
            };
            let text: String = row.try_get(payload)?;
            let event = ledger_core::Event::from_parts(&kind, row.try_get(version)?, &text)
                .map_err(|e| sqlx::Error::ColumnDecode { index: payload.to_owned(), source: Box::new(e) })?;
            let event = ledger_core::ledger::Event::try_from(event).map_err(|other| sqlx::Error::ColumnDecode {
                index: payload.to_owned(),
                source: format!("{} is not a transfer's event", other.event_type()).into(),
            })?;
            Ok(Some(event))
        };
    let events: Vec<_> = [decode("c_type", "c_version", "c_payload")?, decode("l_type", "l_version", "l_payload")?]
        .into_iter()
        .flatten()
        .collect();
    let id: Uuid = row.try_get("id")?;
    let reversed_by: Option<Uuid> = row.try_get("reversed_by")?;
    let transfer = Transfer::rebuild(&events, reversed_by.map(ledger_core::TransferId)).ok_or_else(|| {
        sqlx::Error::ColumnDecode {
            index: "c_payload".into(),
            source: format!("transfer {id} does not rebuild from its events").into(),
        }
    })?;
    Ok(TransferRow { transfer, created_position: row.try_get("created_position")?, position: row.try_get("position")? })
}

pub async fn load_pending_transfers(conn: &mut PgConnection) -> Result<Vec<TransferRow>, sqlx::Error> {
    let sql = format!("{TRANSFER_QUERY} WHERE t.status = 'pending'");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(conn).await?;
    rows.into_iter().map(transfer_row).collect()
}

pub async fn load_transfers(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<TransferRow>, sqlx::Error> {
    let sql = format!("{TRANSFER_QUERY} WHERE t.id = ANY($1)");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(ids).fetch_all(conn).await?;
    rows.into_iter().map(transfer_row).collect()
}

/// A `transfers` row as stored (for `verify`).
#[derive(Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredTransfer {
    pub id: Uuid,
    pub status: String,
    pub created_position: i64,
    pub position: i64,
    pub reversed_by: Option<Uuid>,
}

/// Transfer rows in id order after `after`, a page at a time.
pub async fn transfers_page(
    conn: &mut PgConnection,
    after: Uuid,
    limit: i64,
) -> Result<Vec<StoredTransfer>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, status, created_position, position, reversed_by FROM transfers WHERE id > $1 ORDER BY id LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Events after `after` in position order, at most `limit`.
pub async fn events_page(conn: &mut PgConnection, after: i64, limit: i64) -> Result<Vec<RecordedEvent>, sqlx::Error> {
    let sql = format!("{EVENT_COLUMNS} WHERE position > $1 ORDER BY position LIMIT $2");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(after).bind(limit).fetch_all(conn).await?;
    rows.into_iter().map(event_row).collect()
}

/// The events of the given types in the next `limit` positions after `after`, and the position
/// the window reached: `after + limit`, or the head of the log if that is nearer. A follower
/// that wants a few types (the SMS outbox: activations) moves its checkpoint to that position
/// without reading, sending or decoding everything else. Positions are dense and a commit lands
/// whole, so every position up to the head read first is in the log when the events are read.
pub async fn events_page_of(
    conn: &mut PgConnection,
    after: i64,
    limit: i64,
    types: &[&str],
) -> Result<(Vec<RecordedEvent>, i64), sqlx::Error> {
    let head: i64 = sqlx::query_scalar("SELECT LEAST(COALESCE(MAX(position), 0), $1 + $2) FROM events")
        .bind(after)
        .bind(limit)
        .fetch_one(&mut *conn)
        .await?;
    if head <= after {
        return Ok((Vec::new(), after));
    }
    let sql =
        format!("{EVENT_COLUMNS} WHERE position > $1 AND position <= $2 AND event_type = ANY($3) ORDER BY position");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(after).bind(head).bind(types).fetch_all(conn).await?;
    Ok((rows.into_iter().map(event_row).collect::<Result<_, _>>()?, head))
}

/// The events at the given positions, in position order.
pub async fn events_at(conn: &mut PgConnection, positions: &[i64]) -> Result<Vec<RecordedEvent>, sqlx::Error> {
    let sql = format!("{EVENT_COLUMNS} WHERE position = ANY($1) ORDER BY position");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(positions).fetch_all(conn).await?;
    rows.into_iter().map(event_row).collect()
}

/// The events that created the given transfers (found through `transfers.created_position`),
/// in position order. Unknown ids are left out.
pub async fn transfer_creations(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<RecordedEvent>, sqlx::Error> {
    let sql = format!(
        "{EVENT_COLUMNS} WHERE position IN (SELECT created_position FROM transfers WHERE id = ANY($1)) ORDER BY position"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(ids).fetch_all(conn).await?;
    rows.into_iter().map(event_row).collect()
}

const EVENT_COLUMNS: &str = "SELECT position, event_id, stream_id, stream_version, event_type, schema_version, \
     payload::text AS payload, metadata::text AS metadata, recorded_at, hash FROM events";

fn event_row(row: PgRow) -> Result<RecordedEvent, sqlx::Error> {
    let hash: Vec<u8> = row.try_get("hash")?;
    Ok(RecordedEvent {
        position: row.try_get("position")?,
        event_id: row.try_get("event_id")?,
        stream_id: row.try_get("stream_id")?,
        stream_version: row.try_get("stream_version")?,
        event_type: row.try_get("event_type")?,
        schema_version: row.try_get("schema_version")?,
        payload: row.try_get("payload")?,
        metadata: row.try_get("metadata")?,
        recorded_at: from_time(row.try_get("recorded_at")?),
        hash: hash.try_into().unwrap_or([0xff; 32]),
    })
}

/// A `transfers` row as written: the index of a transfer's stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferIndex {
    pub id: Uuid,
    pub status: ledger_core::TransferStatus,
    pub created_position: i64,
    pub position: i64,
    pub reversed_by: Option<Uuid>,
}

/// What one commit writes: its events (moved in), the new rows of what they touched, and the
/// end of the log it was decided on (position and hash; 0 for an empty log).
pub struct GroupWrite<'a> {
    pub after: (i64, [u8; 32]),
    pub events: Vec<RecordedEvent>,
    pub accounts: Vec<(&'a Account, i64, i64)>,
    pub transfers: Vec<&'a TransferIndex>,
    pub entities: Vec<(&'a EntityRow, i64, i64)>,
}

/// One bound parameter of the commit statement.
pub type Param = Box<dyn tokio_postgres::types::ToSql + Sync + Send>;

/// The commit statement: one round trip, one implicit transaction. It first checks that the log
/// ends where the commit was decided (an index probe; `ledger_log_continues` runs only when the
/// probe misses, to accept an empty log or raise), then writes the events, the
/// accounts opened in it (inserted whole), the accounts it changed (balances, status, version
/// and position only), the transfers created in it (inserted) and changed by it (updated by
/// id), the domain entities created in it (one generic keyed row each, inserted) and changed by it
/// (updated by id), and
/// notifies `ledger_events` with the new head. Rows travel as one array of composite
/// values per table (`rows`). Run on the writer's tokio-postgres connection, where commits are
/// pipelined (see `writer::committer`).
pub const WRITE_GROUP: &str = "WITH continues AS (SELECT CASE WHEN EXISTS (SELECT 1 FROM events \
       WHERE position = $1::bigint AND hash = $2::bytea) THEN 1 ELSE ledger_log_continues($1, $2) END AS ok), \
     new_events AS (INSERT INTO events SELECT * FROM UNNEST($3::events[]) RETURNING 1), \
     new_accounts AS (INSERT INTO accounts SELECT * FROM UNNEST($4::accounts[]) RETURNING 1), \
     changed_accounts AS ( \
       UPDATE accounts a SET status = x.status, debits_posted = x.debits_posted, credits_posted = x.credits_posted, \
         debits_pending = x.debits_pending, credits_pending = x.credits_pending, version = x.version, \
         position = x.position \
       FROM UNNEST($5::ledger_account_change[]) AS x WHERE a.id = x.id \
       RETURNING 1), \
     new_transfers AS (INSERT INTO transfers SELECT * FROM UNNEST($6::transfers[]) RETURNING 1), \
     changed_transfers AS ( \
       UPDATE transfers t SET status = x.status, position = x.position, reversed_by = x.reversed_by \
       FROM UNNEST($7::ledger_transfer_change[]) AS x WHERE t.id = x.id \
       RETURNING 1), \
     new_entities AS (INSERT INTO entities SELECT * FROM UNNEST($8::entities[]) RETURNING 1), \
     changed_entities AS ( \
       UPDATE entities e SET key = x.key, version = x.version, position = x.position, state = x.state \
       FROM UNNEST($9::ledger_entity_change[]) AS x WHERE e.id = x.id \
       RETURNING 1), \
     notified AS (SELECT pg_notify('ledger_events', $10::text)) \
     SELECT (SELECT ok FROM continues) + (SELECT count(*) FROM new_events) + (SELECT count(*) FROM new_accounts) \
       + (SELECT count(*) FROM changed_accounts) + (SELECT count(*) FROM new_transfers) \
       + (SELECT count(*) FROM changed_transfers) + (SELECT count(*) FROM new_entities) \
       + (SELECT count(*) FROM changed_entities) + (SELECT count(*) FROM notified)";

impl GroupWrite<'_> {
    /// The parameters of `WRITE_GROUP`, in order. The events are moved, not copied.
    pub fn into_params(self) -> Vec<Param> {
        // Accounts, transfers and entities whose first event is in this commit are new rows (a
        // plain INSERT, no conflict check); the rest already exist and are updated by primary key.
        let first_position = self.events.first().map_or(i64::MAX, |r| r.position);
        let head = self.events.last().map_or(self.after.0, |r| r.position);
        let (mut fresh, mut changed) = (Vec::new(), Vec::new());
        for (account, first, last) in self.accounts {
            if first >= first_position {
                fresh.push(rows::NewAccount(account.clone(), first, last));
            } else {
                changed.push(rows::AccountChange::new(account, last));
            }
        }
        let (mut created, mut moved) = (Vec::new(), Vec::new());
        for transfer in self.transfers {
            if transfer.created_position >= first_position {
                created.push(rows::NewTransfer(transfer.clone()));
            } else {
                moved.push(rows::TransferChange(transfer.clone()));
            }
        }
        let (mut born, mut rewritten) = (Vec::new(), Vec::new());
        for (row, first, last) in self.entities {
            if first >= first_position {
                born.push(rows::EntityRowOut(row.clone(), first, last));
            } else {
                rewritten.push(rows::EntityChange(row.clone(), last));
            }
        }
        let events: Vec<rows::EventRow> = self.events.into_iter().map(rows::EventRow).collect();
        vec![
            Box::new(self.after.0),
            Box::new(self.after.1.to_vec()),
            Box::new(events),
            Box::new(fresh),
            Box::new(changed),
            Box::new(created),
            Box::new(moved),
            Box::new(born),
            Box::new(rewritten),
            // Listeners (projections) hear the new head when the commit lands.
            Box::new(head.to_string()),
        ]
    }
}

/// Positions of the first and latest events of each entity the writer has seen.
pub type Positions = HashMap<Stored, (i64, i64)>;

/// What a pair of positions belongs to. Callers choose account and transfer ids, so an account
/// and a transfer may share one: the kind of row is part of the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stored {
    Account(Uuid),
    Transfer(Uuid),
    Entity(Uuid),
}

impl Stored {
    /// The row an event's subject is stored in (none: a record, which has no row).
    pub fn of(subject: ledger_core::Subject) -> Option<Stored> {
        match subject {
            ledger_core::Subject::Account(id) => Some(Stored::Account(id.0)),
            ledger_core::Subject::Transfer(id) => Some(Stored::Transfer(id.0)),
            ledger_core::Subject::Entity(e) => Some(Stored::Entity(e.id)),
            ledger_core::Subject::Record(_) => None,
        }
    }
}
