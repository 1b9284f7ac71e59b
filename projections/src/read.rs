//! Queries over the read models, for the query API. The views (`rm_balances`, …) always point at
//! each projection's active version, so a rebuild switches readers without them noticing.

use ledger_core::AccountRef;
use rust_decimal::Decimal;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::Model;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AccountRow {
    pub account_id: Uuid,
    pub code: String,
    pub currency: String,
    pub kind: String,
    pub status: String,
    pub debits_posted: Decimal,
    pub credits_posted: Decimal,
    pub debits_pending: Decimal,
    pub credits_pending: Decimal,
    pub balance: Decimal,
    pub available: Decimal,
    pub position: i64,
    pub updated_at: OffsetDateTime,
}

const ACCOUNT: &str = "SELECT account_id, code, currency, kind, status, debits_posted, credits_posted, debits_pending, \
     credits_pending, balance, available, position, updated_at FROM rm_balances";

pub async fn account(conn: &mut PgConnection, account: &AccountRef) -> Result<Option<AccountRow>, sqlx::Error> {
    match account {
        AccountRef::Id(id) => {
            sqlx::query_as(sqlx::AssertSqlSafe(format!("{ACCOUNT} WHERE account_id = $1")))
                .bind(id.0)
                .fetch_optional(conn)
                .await
        }
        AccountRef::Code(code) => {
            sqlx::query_as(sqlx::AssertSqlSafe(format!("{ACCOUNT} WHERE code = $1")))
                .bind(code)
                .fetch_optional(conn)
                .await
        }
    }
}

/// Accounts in code order after `after_code`, optionally by currency and code prefix.
pub async fn accounts(
    conn: &mut PgConnection,
    after_code: Option<&str>,
    limit: i64,
    currency: Option<&str>,
    code_prefix: Option<&str>,
) -> Result<Vec<AccountRow>, sqlx::Error> {
    let sql = format!(
        "{ACCOUNT} WHERE ($1::text IS NULL OR code > $1) AND ($2::text IS NULL OR currency = $2) \
         AND ($3::text IS NULL OR starts_with(code, $3)) ORDER BY code LIMIT $4"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(after_code)
        .bind(currency)
        .bind(code_prefix)
        .bind(limit)
        .fetch_all(conn)
        .await
}

/// Named, not `*`: a layout that adds columns to `rm_transfers` (the legs' arrays, definition
/// 4) must not change the rows of statements prepared before its switch.
const TRANSFER_COLUMNS: &str = "id, status, pending, external_ref, channel, initiator, metadata, created_at, \
     created_position, position, timeout_at, reverses, reversed_by, posted";

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct TransferRow {
    pub id: Uuid,
    pub status: String,
    pub pending: bool,
    pub external_ref: Option<String>,
    pub channel: Option<String>,
    pub initiator: Option<String>,
    pub metadata: serde_json::Value,
    pub created_at: OffsetDateTime,
    pub created_position: i64,
    pub position: i64,
    pub timeout_at: Option<OffsetDateTime>,
    pub reverses: Option<Uuid>,
    pub reversed_by: Option<Uuid>,
    pub posted: Option<serde_json::Value>,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct LegRow {
    pub transfer_id: Uuid,
    pub n: i32,
    pub account_id: Uuid,
    pub side: String,
    pub amount: Decimal,
}

/// Journal filters; every one is optional.
#[derive(Clone, Debug, Default)]
pub struct TransferFilter {
    pub account: Option<Uuid>,
    pub status: Option<String>,
    pub channel: Option<String>,
    pub external_ref: Option<String>,
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
    /// JSON the transfer's metadata must contain (`@>`).
    pub metadata: Option<serde_json::Value>,
}

/// Transfers in log order after `after_position` that match `filter`. The account filter goes
/// through the account events: a transfer touches an account when the account events keep that
/// account at the position that created it (every layout of both read models keeps it so).
pub async fn transfers(
    conn: &mut PgConnection,
    filter: &TransferFilter,
    after_position: Option<i64>,
    limit: i64,
) -> Result<Vec<TransferRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {TRANSFER_COLUMNS} FROM rm_transfers t WHERE ($1::bigint IS NULL OR created_position > $1) \
         AND ($2::uuid IS NULL OR EXISTS (SELECT 1 FROM rm_account_events a \
         WHERE a.account_id = $2 AND a.position = t.created_position)) \
         AND ($3::text IS NULL OR status = $3) AND ($4::text IS NULL OR channel = $4) \
         AND ($5::text IS NULL OR external_ref = $5) AND ($6::timestamptz IS NULL OR created_at >= $6) \
         AND ($7::timestamptz IS NULL OR created_at < $7) AND ($8::jsonb IS NULL OR metadata @> $8) \
         AND ($8::jsonb IS NULL OR $8 = '{{}}'::jsonb OR metadata NOT IN ('{{}}'::jsonb, 'null'::jsonb)) \
         ORDER BY created_position LIMIT $9"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(after_position)
        .bind(filter.account)
        .bind(&filter.status)
        .bind(&filter.channel)
        .bind(&filter.external_ref)
        .bind(filter.from)
        .bind(filter.to)
        .bind(&filter.metadata)
        .bind(limit)
        .fetch_all(conn)
        .await
}

pub async fn transfer(conn: &mut PgConnection, id: Uuid) -> Result<Option<TransferRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {TRANSFER_COLUMNS} FROM rm_transfers WHERE id = $1")))
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// Whether a query failed on journal tables of layout definition 1 (legs keyed by transfer id,
/// without their position): they serve while an upgrade rebuilds them, and are read the old
/// way until the switch.
fn before_definition_2(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(e) if e.code().as_deref() == Some("42703"))
}

/// The legs of the given transfers, in order.
pub async fn legs(conn: &mut PgConnection, transfers: &[TransferRow]) -> Result<Vec<LegRow>, sqlx::Error> {
    let positions: Vec<i64> = transfers.iter().map(|t| t.created_position).collect();
    let found = sqlx::query_as(
        "SELECT transfer_id, n, account_id, side, amount FROM rm_legs WHERE position = ANY($1) ORDER BY position, n",
    )
    .bind(&positions)
    .fetch_all(&mut *conn)
    .await;
    match found {
        Err(e) if before_definition_2(&e) => {
            let ids: Vec<Uuid> = transfers.iter().map(|t| t.id).collect();
            sqlx::query_as("SELECT * FROM rm_legs WHERE transfer_id = ANY($1) ORDER BY transfer_id, n")
                .bind(&ids)
                .fetch_all(conn)
                .await
        }
        found => found,
    }
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SnapshotRow {
    pub account_id: Uuid,
    pub position: i64,
    pub recorded_at: OffsetDateTime,
    pub debits_posted: Decimal,
    pub credits_posted: Decimal,
    pub debits_pending: Decimal,
    pub credits_pending: Decimal,
    pub balance: Decimal,
    pub available: Decimal,
}

/// The balance of an account as of a time or a position: its last change at or before it.
/// A time is bounded by the balance clock (one row per applied page): no history row past the
/// first page that ends after the time can be at or before it, so the scan stays within a page.
pub async fn balance_at(
    conn: &mut PgConnection,
    account: Uuid,
    at: Option<OffsetDateTime>,
    position: Option<i64>,
) -> Result<Option<SnapshotRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM rm_balance_history WHERE account_id = $1 AND ($2::timestamptz IS NULL OR recorded_at <= $2) \
         AND ($3::bigint IS NULL OR position <= $3) \
         AND position <= coalesce((SELECT min(position) FROM rm_balance_clock WHERE recorded_at > $2), 9223372036854775807) \
         ORDER BY position DESC LIMIT 1",
    )
    .bind(account)
    .bind(at)
    .bind(position)
    .fetch_optional(conn)
    .await
}

/// Balance changes of an account after a position, oldest first.
pub async fn balance_changes(
    conn: &mut PgConnection,
    account: Uuid,
    after: i64,
    limit: i64,
) -> Result<Vec<SnapshotRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM rm_balance_history WHERE account_id = $1 AND position > $2 ORDER BY position LIMIT $3",
    )
    .bind(account)
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Events after `after`, optionally of one stream, one type, or touching one account. A stream
/// or an account is found through the `account_events` read model (every ledger event touches
/// an account; it keeps each event's stream and type), which indexes events by account and by
/// stream: the log itself keeps no index by stream. The events themselves come from the log
/// (`log`: the same database as `read` unless the read models have their own).
pub async fn events(
    read: &mut PgConnection,
    log: &mut PgConnection,
    after: i64,
    limit: i64,
    stream: Option<&str>,
    event_type: Option<&str>,
    account: Option<Uuid>,
) -> Result<Vec<ledger_store::RecordedEvent>, sqlx::Error> {
    let positions: Vec<i64> = match (stream, account) {
        (Some(stream), _) => {
            sqlx::query_scalar(
                // The stream is on the event's first account row (definition 2; on every row
                // before it): the account, when given, is looked up among all of its rows.
                "SELECT DISTINCT s.position FROM rm_account_events s WHERE s.stream_id = $1 AND s.position > $2 \
                 AND ($3::text IS NULL OR s.event_type = $3) AND ($4::uuid IS NULL OR EXISTS \
                 (SELECT 1 FROM rm_account_events a WHERE a.account_id = $4 AND a.position = s.position)) \
                 ORDER BY s.position LIMIT $5",
            )
            .bind(stream)
            .bind(after)
            .bind(event_type)
            .bind(account)
            .bind(limit)
            .fetch_all(&mut *read)
            .await?
        }
        (None, Some(account)) => {
            sqlx::query_scalar(
                "SELECT position FROM rm_account_events WHERE account_id = $1 AND position > $2 \
                 AND ($3::text IS NULL OR event_type = $3) ORDER BY position LIMIT $4",
            )
            .bind(account)
            .bind(after)
            .bind(event_type)
            .bind(limit)
            .fetch_all(&mut *read)
            .await?
        }
        (None, None) => {
            sqlx::query_scalar(
                "SELECT position FROM events WHERE position > $1 AND ($2::text IS NULL OR event_type = $2) \
                 ORDER BY position LIMIT $3",
            )
            .bind(after)
            .bind(event_type)
            .bind(limit)
            .fetch_all(&mut *log)
            .await?
        }
    };
    ledger_store::log::at(log, &positions).await
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct TurnoverRow {
    pub day: time::Date,
    pub debits: Decimal,
    pub credits: Decimal,
}

pub async fn turnover(
    conn: &mut PgConnection,
    account: Uuid,
    from: Option<time::Date>,
    to: Option<time::Date>,
) -> Result<Vec<TurnoverRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT day, debits, credits FROM rm_turnover WHERE account_id = $1 AND ($2::date IS NULL OR day >= $2) \
         AND ($3::date IS NULL OR day <= $3) ORDER BY day",
    )
    .bind(account)
    .bind(from)
    .bind(to)
    .fetch_all(conn)
    .await
}

/// A projection's checkpoint (0 before it ever ran).
pub async fn checkpoint(conn: &mut PgConnection, model: Model) -> Result<i64, sqlx::Error> {
    let found: Option<i64> = sqlx::query_scalar("SELECT checkpoint FROM projections WHERE name = $1")
        .bind(model.name())
        .fetch_optional(conn)
        .await
        .or_else(not_created_yet)?;
    Ok(found.unwrap_or(0))
}

/// The position every read model reflects: the lowest checkpoint.
pub async fn reflected_position(conn: &mut PgConnection) -> Result<i64, sqlx::Error> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT min(checkpoint) FROM projections").fetch_one(conn).await.or_else(not_created_yet)?;
    Ok(found.unwrap_or(0))
}

/// A read database the runner has not prepared yet (no `projections` table: it is created with
/// the read models' first checkpoint) has applied nothing: position 0, not an error.
fn not_created_yet(e: sqlx::Error) -> Result<Option<i64>, sqlx::Error> {
    match &e {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("42P01") => Ok(None),
        _ => Err(e),
    }
}
