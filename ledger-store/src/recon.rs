//! Reconciliation runs' results beside the log (`recon_statement_lines`, `recon_items`): what
//! the runtime writes before it records a run's completion, what the next run carries over, and
//! what the reports read. The `RunCompleted` event holds the SHA-256 of both, computed by the
//! core (`ledger_core::recon::items`).

use ledger_core::RunId;
use ledger_core::recon::items::{Assembled, Closed, Item, ItemKind, OpenItem};
use ledger_core::recon::matching::{Entry, Line};
use rust_decimal::Decimal;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

/// Rows per statement of a bulk insert.
const BATCH: usize = 5_000;

/// Writes a run's lines and items, and closes the open items it matched late or superseded, in
/// one transaction; a retry of the same run replaces what an earlier attempt wrote.
pub async fn store_result(
    pool: &PgPool,
    run: RunId,
    provider: &str,
    lines: &[Line],
    result: &Assembled,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM recon_statement_lines WHERE run_id = $1").bind(run.0).execute(&mut *tx).await?;
    sqlx::query("DELETE FROM recon_items WHERE run_id = $1").bind(run.0).execute(&mut *tx).await?;
    for (n, chunk) in lines.chunks(BATCH).enumerate() {
        let start = i32::try_from(n * BATCH).unwrap_or(i32::MAX);
        let seqs: Vec<i32> =
            (0..chunk.len()).map(|i| start.saturating_add(i32::try_from(i).unwrap_or(i32::MAX))).collect();
        // Lines are strings, decimals and maps of strings: they always serialize.
        let bodies: Vec<serde_json::Value> =
            chunk.iter().map(|l| serde_json::to_value(l).expect("lines serialize")).collect();
        sqlx::query(
            "INSERT INTO recon_statement_lines (run_id, seq, line) SELECT $1, * FROM unnest($2::int[], $3::jsonb[])",
        )
        .bind(run.0)
        .bind(&seqs)
        .bind(&bodies)
        .execute(&mut *tx)
        .await?;
    }
    for chunk in result.items.chunks(BATCH) {
        let ids: Vec<Uuid> = chunk.iter().map(|i| i.id).collect();
        let seqs: Vec<i32> = chunk.iter().map(|i| i32::try_from(i.seq).unwrap_or(i32::MAX)).collect();
        let kinds: Vec<&str> = chunk.iter().map(|i| i.kind.as_str()).collect();
        let rules: Vec<Option<&str>> = chunk.iter().map(|i| i.rule.as_deref()).collect();
        let differences: Vec<Option<Decimal>> = chunk.iter().map(|i| i.difference).collect();
        let bodies: Vec<serde_json::Value> =
            chunk.iter().map(|i| json!({"lines": i.lines, "entries": i.entries, "carried": i.carried})).collect();
        let statuses: Vec<&str> = chunk.iter().map(|i| if i.open() { "open" } else { "matched" }).collect();
        sqlx::query(
            "INSERT INTO recon_items (id, run_id, provider, seq, kind, rule, difference, body, status) \
             SELECT i, $2, $3, s, k, r, d, b, st FROM unnest($1::uuid[], $4::int[], $5::text[], $6::text[], \
             $7::numeric[], $8::jsonb[], $9::text[]) AS t(i, s, k, r, d, b, st)",
        )
        .bind(&ids)
        .bind(run.0)
        .bind(provider)
        .bind(&seqs)
        .bind(&kinds)
        .bind(&rules)
        .bind(&differences)
        .bind(&bodies)
        .bind(&statuses)
        .execute(&mut *tx)
        .await?;
    }
    for (open, how, by) in &result.closed {
        let status = match how {
            Closed::Matched => "matched",
            Closed::Superseded => "superseded",
        };
        sqlx::query(
            "UPDATE recon_items SET status = $2, closed_by_run = $3, closed_by_item = $4 WHERE id = $1 AND status = 'open'",
        )
        .bind(open)
        .bind(status)
        .bind(run.0)
        .bind(by)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

fn kind(text: &str) -> Option<ItemKind> {
    [ItemKind::Matched, ItemKind::AmountMismatch, ItemKind::MissingInLedger, ItemKind::MissingAtProvider]
        .into_iter()
        .find(|k| k.as_str() == text)
}

#[derive(serde::Deserialize)]
struct Body {
    lines: Vec<Line>,
    entries: Vec<Entry>,
    #[serde(default)]
    carried: Vec<Uuid>,
}

/// The provider's open items of runs other than `run`, oldest first: what `run` carries over.
pub async fn open_items(pool: &PgPool, provider: &str, run: RunId) -> Result<Vec<OpenItem>, sqlx::Error> {
    let rows: Vec<(Uuid, String, serde_json::Value)> = sqlx::query_as(
        "SELECT id, kind, body FROM recon_items WHERE provider = $1 AND status = 'open' AND run_id <> $2 \
         ORDER BY created_at, run_id, seq",
    )
    .bind(provider)
    .bind(run.0)
    .fetch_all(pool)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for (id, k, body) in rows {
        let body: Body = serde_json::from_value(body).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        let kind = kind(&k).ok_or_else(|| sqlx::Error::Decode(format!("item {id}: kind {k:?}").into()))?;
        out.push(OpenItem { id, kind, lines: body.lines, entries: body.entries });
    }
    Ok(out)
}

/// An item as the reports list it.
#[derive(Clone, Debug, PartialEq)]
pub struct ItemRow {
    pub item: Item,
    pub run: RunId,
    pub provider: String,
    pub status: String,
    pub closed_by_run: Option<Uuid>,
    pub closed_by_item: Option<Uuid>,
    pub resolution: Option<serde_json::Value>,
}

type Row = (
    Uuid,
    Uuid,
    String,
    i32,
    String,
    Option<String>,
    Option<Decimal>,
    serde_json::Value,
    String,
    Option<Uuid>,
    Option<Uuid>,
    Option<serde_json::Value>,
);

fn item_row(r: Row) -> Result<ItemRow, sqlx::Error> {
    let (id, run, provider, seq, k, rule, difference, body, status, closed_by_run, closed_by_item, resolution) = r;
    let body: Body = serde_json::from_value(body).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    let kind = kind(&k).ok_or_else(|| sqlx::Error::Decode(format!("item {id}: kind {k:?}").into()))?;
    let seq = u32::try_from(seq).unwrap_or_default();
    let item =
        Item { id, seq, kind, rule, lines: body.lines, entries: body.entries, difference, carried: body.carried };
    Ok(ItemRow { item, run: RunId(run), provider, status, closed_by_run, closed_by_item, resolution })
}

/// A run's items after `after` (a seq; -1 for the first), of a kind and a status when given, in
/// order, at most `limit`.
pub async fn items(
    pool: &PgPool,
    run: RunId,
    kind: Option<&str>,
    status: Option<&str>,
    after: i64,
    limit: i64,
) -> Result<Vec<ItemRow>, sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, run_id, provider, seq, kind, rule, difference, body, status, closed_by_run, closed_by_item, \
         resolution FROM recon_items WHERE run_id = $1 AND ($2::text IS NULL OR kind = $2) \
         AND ($3::text IS NULL OR status = $3) AND seq > $4 ORDER BY seq LIMIT $5",
    )
    .bind(run.0)
    .bind(kind)
    .bind(status)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(item_row).collect()
}

/// One item by id.
pub async fn item(pool: &PgPool, id: Uuid) -> Result<Option<ItemRow>, sqlx::Error> {
    let row: Option<Row> = sqlx::query_as(
        "SELECT id, run_id, provider, seq, kind, rule, difference, body, status, closed_by_run, closed_by_item, \
         resolution FROM recon_items WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    row.map(item_row).transpose()
}

/// The liability accounts in `currency` attributed to `provider` (`metadata.provider`): the
/// players whose money it holds.
pub async fn attributed_accounts(pool: &PgPool, provider: &str, currency: &str) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM accounts WHERE kind = 'liability' AND currency = $2 AND metadata->>'provider' = $1 ORDER BY id",
    )
    .bind(provider)
    .bind(currency)
    .fetch_all(pool)
    .await
}

/// Marks an open item resolved by hand: its status and the resolution as recorded in the log.
pub async fn mark_resolved(
    pool: &PgPool,
    item: Uuid,
    status: &str,
    resolution: &serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE recon_items SET status = $2, resolution = $3 WHERE id = $1 AND status = 'open'")
        .bind(item)
        .bind(status)
        .bind(resolution)
        .execute(pool)
        .await?;
    Ok(())
}
