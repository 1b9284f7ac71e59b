//! The reconciliation's part of the GraphQL schema: a provider's runs (by status, and those that
//! found a discrepancy), a run's items (by kind and status), and the discrepancies of every
//! provider. Runs are the writer's entity rows as committed (`entities`), items the rows each
//! run stored beside the log (`recon_items`); both are read from the log's database.

use async_graphql::connection::Connection;
use async_graphql::{Enum, Object, Result, SimpleObject};
use ledger_core::recon::RUN_KIND;
use ledger_core::recon::run::{Run, RunStatus};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::resolve::{Reads, bad_input, internal, log_pool, page, page_size, parse_cursor};

/// Where a run stands.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(rename_items = "snake_case")]
pub enum ReconRunStatus {
    Running,
    Completed,
    Failed,
}

impl ReconRunStatus {
    fn as_str(self) -> &'static str {
        match self {
            ReconRunStatus::Running => "running",
            ReconRunStatus::Completed => "completed",
            ReconRunStatus::Failed => "failed",
        }
    }
}

#[derive(SimpleObject)]
pub struct ReconTotals {
    pub lines: i64,
    pub entries: i64,
    pub matched: i64,
    pub amount_mismatch: i64,
    pub missing_in_ledger: i64,
    pub missing_at_provider: i64,
    pub carried_over: i64,
    pub late_matched: i64,
}

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[derive(SimpleObject)]
pub struct ReconRun {
    pub id: String,
    pub provider: String,
    /// running, completed or failed.
    pub status: String,
    /// manual or scheduled.
    pub trigger: String,
    pub schedule: Option<String>,
    pub from: Option<String>,
    pub as_of: String,
    pub rules: Vec<String>,
    pub reported: Option<String>,
    pub players: Option<String>,
    pub difference: Option<String>,
    /// Whether the balances differ beyond the provider's tolerance (null until completed).
    pub discrepancy: Option<bool>,
    pub totals: Option<ReconTotals>,
    pub reason: Option<String>,
    pub duration_ms: Option<i64>,
    pub started_at: String,
    /// Position of the last event that changed it.
    pub position: i64,
}

fn decimal(d: Option<Decimal>) -> Option<String> {
    d.map(|d| d.to_string())
}

impl ReconRun {
    fn new(r: Run, position: i64) -> ReconRun {
        let status = match r.status {
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
        };
        ReconRun {
            id: r.id.to_string(),
            provider: r.provider,
            status: status.into(),
            trigger: if r.schedule.is_some() { "scheduled" } else { "manual" }.into(),
            schedule: r.schedule,
            from: r.from.map(|t| t.rfc3339()),
            as_of: r.as_of.rfc3339(),
            rules: r.rules.into_iter().map(|r| r.name).collect(),
            reported: decimal(r.reported),
            players: decimal(r.players),
            difference: decimal(r.difference),
            discrepancy: r.balanced.map(|b| !b),
            totals: r.totals.map(|t| ReconTotals {
                lines: count(t.lines),
                entries: count(t.entries),
                matched: count(t.matched),
                amount_mismatch: count(t.amount_mismatch),
                missing_in_ledger: count(t.missing_in_ledger),
                missing_at_provider: count(t.missing_at_provider),
                carried_over: count(t.carried_over),
                late_matched: count(t.late_matched),
            }),
            reason: r.reason,
            duration_ms: r.duration_ms.map(count),
            started_at: r.started_at.rfc3339(),
            position,
        }
    }
}

#[derive(SimpleObject)]
pub struct ReconItem {
    pub id: String,
    pub run_id: String,
    pub seq: i32,
    pub kind: String,
    pub status: String,
    pub rule: Option<String>,
    pub difference: Option<String>,
    /// The provider's line ids and the ledger's transfer ids it names.
    pub line_ids: Vec<String>,
    pub transfer_ids: Vec<String>,
    pub closed_by_run: Option<String>,
}

const KINDS: [&str; 4] = ["matched", "amount_mismatch", "missing_in_ledger", "missing_at_provider"];
const ITEM_STATUSES: [&str; 5] = ["matched", "open", "dismissed", "matched_by_hand", "superseded"];

#[derive(Default)]
pub struct ReconQuery;

#[Object]
impl ReconQuery {
    /// Reconciliation runs, newest first: of one provider or every one, by status, or only those
    /// whose balances differed beyond the tolerance (`discrepancy: true`). Needs `recon:read`.
    #[graphql(guard = "Reads(ledger_core::recon::scope::READ)")]
    async fn recon_runs(
        &self,
        ctx: &async_graphql::Context<'_>,
        provider: Option<String>,
        status: Option<ReconRunStatus>,
        discrepancy: Option<bool>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, ReconRun>> {
        let limit = page_size(first)?;
        let after = parse_cursor(after)?;
        let prefix = provider.map(|p| format!("{p}/"));
        let rows: Vec<(serde_json::Value, i64)> = sqlx::query_as(
            "SELECT state, first_position FROM entities WHERE kind = $1 AND ($2::text IS NULL OR starts_with(key, $2)) \
             AND ($3::text IS NULL OR state->>'status' = $3) \
             AND ($4::boolean IS NULL OR (state->>'balanced')::boolean = NOT $4) \
             AND ($5::bigint IS NULL OR first_position < $5) ORDER BY first_position DESC LIMIT $6",
        )
        .bind(RUN_KIND)
        .bind(prefix)
        .bind(status.map(ReconRunStatus::as_str))
        .bind(discrepancy)
        .bind(after)
        .bind(limit + 1)
        .fetch_all(log_pool(ctx))
        .await
        .map_err(internal)?;
        let mut runs = Vec::with_capacity(rows.len());
        for (state, first_position) in rows {
            let run: Run = serde_json::from_value(state).map_err(|e| async_graphql::Error::new(e.to_string()))?;
            runs.push((run, first_position));
        }
        Ok(page(runs, limit, after.is_some(), |(run, first)| (first.to_string(), ReconRun::new(run, first))))
    }

    /// A run's items in order, by kind and status. Needs `recon:read`.
    #[graphql(guard = "Reads(ledger_core::recon::scope::READ)")]
    async fn recon_items(
        &self,
        ctx: &async_graphql::Context<'_>,
        run: String,
        kind: Option<String>,
        status: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, ReconItem>> {
        let run = Uuid::parse_str(&run).map_err(|_| bad_input("run is a run's id (a UUID)"))?;
        if kind.as_deref().is_some_and(|k| !KINDS.contains(&k)) {
            return Err(bad_input(format!("kind is one of {}", KINDS.join(", "))));
        }
        if status.as_deref().is_some_and(|s| !ITEM_STATUSES.contains(&s)) {
            return Err(bad_input(format!("status is one of {}", ITEM_STATUSES.join(", "))));
        }
        let limit = page_size(first)?;
        let after = parse_cursor(after)?;
        let rows = ledger_store::recon::items(
            log_pool(ctx),
            ledger_core::RunId(run),
            kind.as_deref(),
            status.as_deref(),
            after.unwrap_or(-1),
            limit + 1,
        )
        .await
        .map_err(internal)?;
        Ok(page(rows, limit, after.is_some(), |r| {
            let item = ReconItem {
                id: r.item.id.to_string(),
                run_id: r.run.to_string(),
                seq: i32::try_from(r.item.seq).unwrap_or(i32::MAX),
                kind: r.item.kind.as_str().to_owned(),
                status: r.status.clone(),
                rule: r.item.rule.clone(),
                difference: decimal(r.item.difference),
                line_ids: r.item.lines.iter().map(|l| l.id.clone()).collect(),
                transfer_ids: r.item.entries.iter().map(|e| e.id.to_string()).collect(),
                closed_by_run: r.closed_by_run.map(|u| u.to_string()),
            };
            (r.item.seq.to_string(), item)
        }))
    }
}
