//! What a reconciliation run reads of the ledger's read models: the balance changes of a
//! provider's transactional account in a period, with the transfers that made them (the
//! ledger's side of the statement), and the players' balances as of a time.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

/// A posted change of an account's balance, and the transfer that made it.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub position: i64,
    pub at: OffsetDateTime,
    /// The account's balance change (normal side: up is positive).
    pub amount: Decimal,
    pub transfer: Uuid,
    pub external_ref: Option<String>,
    /// The transfer's metadata, its string values only.
    pub metadata: BTreeMap<String, String>,
}

/// A balance change's row: position, time, change, and its transfer when created there.
type ChangeRow = (i64, OffsetDateTime, Decimal, Option<Uuid>, Option<String>, Option<serde_json::Value>);

fn strings(metadata: &serde_json::Value) -> BTreeMap<String, String> {
    metadata
        .as_object()
        .map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned()))).collect())
        .unwrap_or_default()
}

/// The posted balance changes of `account` recorded in `[from, to)` at positions up to `upto`,
/// in order, each with its transfer: found by the position that created it (a transfer posted
/// at once) or, for the rest (a pending transfer posted later), by its latest position.
pub async fn account_changes(
    conn: &mut PgConnection,
    account: Uuid,
    from: Option<OffsetDateTime>,
    to: OffsetDateTime,
    upto: i64,
) -> Result<Vec<Change>, sqlx::Error> {
    let rows: Vec<ChangeRow> = sqlx::query_as(
        "WITH h AS (SELECT position, recorded_at, balance - coalesce(lag(balance) OVER (ORDER BY position), 0) \
             AS change FROM rm_balance_history WHERE account_id = $1 AND position <= $4) \
             SELECT h.position, h.recorded_at, h.change, t.id, t.external_ref, t.metadata FROM h \
             LEFT JOIN rm_transfers t ON t.created_position = h.position \
             WHERE h.change <> 0 AND ($2::timestamptz IS NULL OR h.recorded_at >= $2) AND h.recorded_at < $3 \
             ORDER BY h.position",
    )
    .bind(account)
    .bind(from)
    .bind(to)
    .bind(upto)
    .fetch_all(&mut *conn)
    .await?;
    let settled: Vec<i64> = rows.iter().filter(|r| r.3.is_none()).map(|r| r.0).collect();
    let mut later: BTreeMap<i64, (Uuid, Option<String>, serde_json::Value)> = BTreeMap::new();
    if !settled.is_empty() {
        let found: Vec<(i64, Uuid, Option<String>, serde_json::Value)> = sqlx::query_as(
            "SELECT position, id, external_ref, metadata FROM rm_transfers WHERE pending AND position = ANY($1)",
        )
        .bind(&settled)
        .fetch_all(&mut *conn)
        .await?;
        later.extend(found.into_iter().map(|(p, id, r, m)| (p, (id, r, m))));
    }
    let mut out = Vec::with_capacity(rows.len());
    for (position, at, amount, id, external_ref, metadata) in rows {
        let (transfer, external_ref, metadata) = match id {
            Some(id) => (id, external_ref, metadata.unwrap_or_default()),
            None => match later.remove(&position) {
                Some(found) => found,
                None => continue,
            },
        };
        out.push(Change { position, at, amount, transfer, external_ref, metadata: strings(&metadata) });
    }
    Ok(out)
}

/// The sum of `accounts`' balances as of `at`: each one's last change at or before it.
pub async fn balances_at(
    conn: &mut PgConnection,
    accounts: &[Uuid],
    at: OffsetDateTime,
) -> Result<Decimal, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT coalesce(sum(h.balance), 0) FROM unnest($1::uuid[]) AS a(id) CROSS JOIN LATERAL \
         (SELECT balance FROM rm_balance_history WHERE account_id = a.id AND recorded_at <= $2 \
         ORDER BY position DESC LIMIT 1) h",
    )
    .bind(accounts)
    .bind(at)
    .fetch_one(conn)
    .await
}
