//! How far the read models got: the projections' status, a part of the schema no domain owns.

use async_graphql::{Context, Object, Result, SimpleObject};

use crate::resolve::{Reads, internal, log_pool, separate};

#[derive(SimpleObject, Clone)]
pub struct Projection {
    pub name: String,
    pub version: i32,
    pub checkpoint: i64,
    pub head: i64,
    /// Head position minus checkpoint.
    pub lag: i64,
    pub halted_position: Option<i64>,
    pub halted_error: Option<String>,
}

impl From<projections::ProjectionStatus> for Projection {
    fn from(s: projections::ProjectionStatus) -> Projection {
        let projections::ProjectionStatus { name, version, checkpoint, head, lag, halted_position, halted_error } = s;
        Projection { name, version, checkpoint, head, lag, halted_position, halted_error }
    }
}

/// Accounts, transfers, balances and the log.
/// How far the read models got.
#[derive(Default)]
pub struct OperationsQuery;

#[Object]
impl OperationsQuery {
    /// Every projection's version, checkpoint, lag and halt.
    #[graphql(guard = "Reads(ledger_core::ledger::scope::PROJECTIONS_READ)")]
    async fn projections(&self, ctx: &Context<'_>) -> Result<Vec<Projection>> {
        let mut log = log_pool(ctx).acquire().await.map_err(internal)?;
        let rows = if let Some(read) = separate(ctx) {
            let mut read = read.acquire().await.map_err(internal)?;
            projections::status_with(&mut log, Some(&mut read)).await
        } else {
            projections::status(&mut log).await
        };
        let rows = rows.map_err(internal)?;
        Ok(rows.into_iter().map(Projection::from).collect())
    }
}
