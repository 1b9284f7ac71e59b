//! Every SQL statement of the event store, in one place.

use std::collections::HashMap;

use ledger_core::{Account, AccountId, Timestamp, Transfer};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::record::RecordedEvent;

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
    let decode = |kind: &str, version: &str, payload: &str| -> Result<Option<ledger_core::Event>, sqlx::Error> {
        let Some(kind) = row.try_get::<Option<String>, _>(kind)? else {
            return Ok(None);
        };
        let text: String = row.try_get(payload)?;
        let event = ledger_core::Event::from_parts(&kind, row.try_get(version)?, &text)
            .map_err(|e| sqlx::Error::ColumnDecode { index: payload.to_owned(), source: Box::new(e) })?;
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

/// The events at the given positions, in position order.
pub async fn events_at(conn: &mut PgConnection, positions: &[i64]) -> Result<Vec<RecordedEvent>, sqlx::Error> {
    let sql = format!("{EVENT_COLUMNS} WHERE position = ANY($1) ORDER BY position");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(positions).fetch_all(conn).await?;
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
}

/// One bound parameter of the commit statement.
pub type Param = Box<dyn tokio_postgres::types::ToSql + Sync + Send>;

/// The commit statement: one round trip, one implicit transaction. It first checks that the log
/// ends where the commit was decided (`ledger_log_continues`), then writes the events, the
/// accounts opened in it (inserted whole), the accounts it changed (balances, status, version
/// and position only), the transfers created in it (inserted) and changed by it (updated by
/// id), and notifies `ledger_events` with the new head. Run on the writer's tokio-postgres
/// connection, where commits are pipelined (see `writer::committer`).
pub const WRITE_GROUP: &str = "WITH continues AS (SELECT ledger_log_continues($1::bigint, $2::bytea) AS ok), \
     new_events AS ( \
       INSERT INTO events (position, event_id, stream_id, stream_version, event_type, schema_version, payload, \
         metadata, recorded_at, hash) \
       SELECT p, i, s, v, t, sv, pl::json, m::json, r, h FROM UNNEST($3::bigint[], $4::uuid[], $5::text[], \
         $6::int[], $7::text[], $8::int2[], $9::text[], $10::text[], $11::timestamptz[], $12::bytea[]) \
         AS x(p, i, s, v, t, sv, pl, m, r, h) \
       RETURNING 1), \
     new_accounts AS ( \
       INSERT INTO accounts (id, code, currency, kind, balance_limit, status, metadata, debits_posted, \
         credits_posted, debits_pending, credits_pending, version, opened_at, opened_position, position) \
       SELECT id, code, cur, kind, lim, st, md::jsonb, dp, cp, dh, ch, v, oa, op, p FROM UNNEST($13::uuid[], \
         $14::text[], $15::text[], $16::text[], $17::text[], $18::text[], $19::text[], $20::numeric[], \
         $21::numeric[], $22::numeric[], $23::numeric[], $24::int[], $25::timestamptz[], $26::bigint[], \
         $27::bigint[]) AS x(id, code, cur, kind, lim, st, md, dp, cp, dh, ch, v, oa, op, p) \
       RETURNING 1), \
     changed_accounts AS ( \
       UPDATE accounts a SET status = x.st, debits_posted = x.dp, credits_posted = x.cp, \
         debits_pending = x.dh, credits_pending = x.ch, version = x.v, position = x.p \
       FROM UNNEST($28::uuid[], $29::text[], $30::numeric[], $31::numeric[], $32::numeric[], $33::numeric[], \
         $34::int[], $35::bigint[]) AS x(id, st, dp, cp, dh, ch, v, p) \
       WHERE a.id = x.id \
       RETURNING 1), \
     new_transfers AS ( \
       INSERT INTO transfers (id, status, created_position, position, reversed_by) \
       SELECT * FROM UNNEST($36::uuid[], $37::text[], $38::bigint[], $39::bigint[], $40::uuid[]) \
       RETURNING 1), \
     changed_transfers AS ( \
       UPDATE transfers t SET status = x.st, position = x.p, reversed_by = x.r \
       FROM UNNEST($41::uuid[], $42::text[], $43::bigint[], $44::uuid[]) AS x(id, st, p, r) \
       WHERE t.id = x.id \
       RETURNING 1), \
     notified AS (SELECT pg_notify('ledger_events', $45::text)) \
     SELECT (SELECT ok FROM continues) + (SELECT count(*) FROM new_events) + (SELECT count(*) FROM new_accounts) \
       + (SELECT count(*) FROM changed_accounts) + (SELECT count(*) FROM new_transfers) \
       + (SELECT count(*) FROM changed_transfers) + (SELECT count(*) FROM notified)";

impl GroupWrite<'_> {
    /// The parameters of `WRITE_GROUP`, in order. The events' text is moved, not copied.
    pub fn into_params(self) -> Vec<Param> {
        let e = self.events;
        // Accounts and transfers whose first event is in this commit are new rows (a plain
        // INSERT, no conflict check); the rest already exist and are updated by primary key.
        let first_position = e.first().map_or(i64::MAX, |r| r.position);
        let head = e.last().map_or(self.after.0, |r| r.position);
        let (fresh, changed): (Vec<_>, Vec<_>) =
            self.accounts.iter().copied().partition(|(_, first, _)| *first >= first_position);
        let (created, moved): (Vec<&TransferIndex>, Vec<&TransferIndex>) =
            self.transfers.iter().copied().partition(|t| t.created_position >= first_position);
        fn col<T, U>(rows: &[T], f: impl FnMut(&T) -> U) -> Vec<U> {
            rows.iter().map(f).collect()
        }
        let positions = col(&e, |r| r.position);
        let ids = col(&e, |r| r.event_id);
        let streams = col(&e, |r| r.stream_id.clone());
        let versions = col(&e, |r| r.stream_version);
        let types = col(&e, |r| r.event_type.clone());
        let schema_versions = col(&e, |r| r.schema_version);
        let recorded = col(&e, |r| to_time(r.recorded_at));
        let hashes = col(&e, |r| r.hash.to_vec());
        let (payloads, metadata): (Vec<String>, Vec<String>) = e.into_iter().map(|r| (r.payload, r.metadata)).unzip();
        vec![
            Box::new(self.after.0),
            Box::new(self.after.1.to_vec()),
            Box::new(positions),
            Box::new(ids),
            Box::new(streams),
            Box::new(versions),
            Box::new(types),
            Box::new(schema_versions),
            Box::new(payloads),
            Box::new(metadata),
            Box::new(recorded),
            Box::new(hashes),
            Box::new(col(&fresh, |(a, _, _)| a.id.0)),
            Box::new(col(&fresh, |(a, _, _)| a.code.as_str().to_owned())),
            Box::new(col(&fresh, |(a, _, _)| a.currency.as_str().to_owned())),
            Box::new(col(&fresh, |(a, _, _)| text(&a.kind))),
            Box::new(col(&fresh, |(a, _, _)| text(&a.limit))),
            Box::new(col(&fresh, |(a, _, _)| text(&a.status))),
            Box::new(col(&fresh, |(a, _, _)| a.metadata.to_string())),
            Box::new(col(&fresh, |(a, _, _)| a.balances.debits_posted)),
            Box::new(col(&fresh, |(a, _, _)| a.balances.credits_posted)),
            Box::new(col(&fresh, |(a, _, _)| a.balances.debits_pending)),
            Box::new(col(&fresh, |(a, _, _)| a.balances.credits_pending)),
            Box::new(col(&fresh, |(a, _, _)| version(a))),
            Box::new(col(&fresh, |(a, _, _)| to_time(a.opened_at))),
            Box::new(col(&fresh, |(_, first, _)| *first)),
            Box::new(col(&fresh, |(_, _, last)| *last)),
            Box::new(col(&changed, |(a, _, _)| a.id.0)),
            Box::new(col(&changed, |(a, _, _)| text(&a.status))),
            Box::new(col(&changed, |(a, _, _)| a.balances.debits_posted)),
            Box::new(col(&changed, |(a, _, _)| a.balances.credits_posted)),
            Box::new(col(&changed, |(a, _, _)| a.balances.debits_pending)),
            Box::new(col(&changed, |(a, _, _)| a.balances.credits_pending)),
            Box::new(col(&changed, |(a, _, _)| version(a))),
            Box::new(col(&changed, |(_, _, last)| *last)),
            Box::new(col(&created, |t| t.id)),
            Box::new(col(&created, |t| t.status.as_str())),
            Box::new(col(&created, |t| t.created_position)),
            Box::new(col(&created, |t| t.position)),
            Box::new(col(&created, |t| t.reversed_by)),
            Box::new(col(&moved, |t| t.id)),
            Box::new(col(&moved, |t| t.status.as_str())),
            Box::new(col(&moved, |t| t.position)),
            Box::new(col(&moved, |t| t.reversed_by)),
            // Listeners (projections) hear the new head when the commit lands.
            Box::new(head.to_string()),
        ]
    }
}

fn version(a: &Account) -> i32 {
    i32::try_from(a.version).expect("stream versions fit in i32")
}

/// Positions of the first and latest events of each entity the writer has seen.
pub type Positions = HashMap<Uuid, (i64, i64)>;
