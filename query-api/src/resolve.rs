//! What every part of the schema uses to resolve its fields: page sizes and Relay pages,
//! cursors, times, money as text, the typed errors, `minPosition` waits, and the databases.
//! The ledger's part and every domain's import it; it imports none of them.

use std::time::Duration;

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, Error, ErrorExtensions, Result};
use projections::Model;
use projections::read;
use rust_decimal::Decimal;
use sqlx::PgPool;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Largest page any list returns.
pub const MAX_PAGE: i32 = 100;
/// How long a query waits for a projection to reach `minPosition`.
pub const MIN_POSITION_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

pub(crate) fn money(d: Decimal) -> String {
    d.to_string()
}

pub(crate) fn bad_input(message: impl Into<String>) -> Error {
    Error::new(message).extend_with(|_, e| e.set("code", "invalid_argument"))
}

pub(crate) fn internal(e: sqlx::Error) -> Error {
    tracing::error!(error = %e, "query failed");
    Error::new("internal error").extend_with(|_, ext| ext.set("code", "internal"))
}

pub(crate) fn page_size(first: Option<i32>) -> Result<i64> {
    match first.unwrap_or(20) {
        n @ 1..=MAX_PAGE => Ok(i64::from(n)),
        n => Err(bad_input(format!("first must be 1 to {MAX_PAGE}, not {n}"))),
    }
}

/// A Relay page from `limit + 1` fetched rows: the extra row only says there is a next page.
pub(crate) fn page<R, N: async_graphql::OutputType>(
    mut rows: Vec<R>,
    limit: i64,
    has_previous: bool,
    edge: impl Fn(R) -> (String, N),
) -> Connection<String, N> {
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let mut page = Connection::new(has_previous, more);
    page.edges.extend(rows.into_iter().map(|r| {
        let (cursor, node) = edge(r);
        Edge::new(cursor, node)
    }));
    page
}

pub(crate) fn parse_cursor(after: Option<String>) -> Result<Option<i64>> {
    after.map(|c| c.parse().map_err(|_| bad_input(format!("{c:?} is not a cursor from this list")))).transpose()
}

pub(crate) fn parse_time(name: &str, value: Option<String>) -> Result<Option<OffsetDateTime>> {
    value
        .map(|v| {
            OffsetDateTime::parse(&v, &Rfc3339)
                .map_err(|_| bad_input(format!("{name} must be RFC 3339, e.g. 2026-11-26T12:00:00Z")))
        })
        .transpose()
}

pub(crate) fn parse_day(name: &str, value: Option<String>) -> Result<Option<time::Date>> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    value
        .map(|v| time::Date::parse(&v, &format).map_err(|_| bad_input(format!("{name} must be YYYY-MM-DD"))))
        .transpose()
}

/// Waits until `model` has applied `min_position`, or fails after the timeout.
pub(crate) async fn wait_for(pool: &PgPool, model: Model, min_position: Option<i64>) -> Result<()> {
    let Some(min) = min_position else { return Ok(()) };
    let deadline = tokio::time::Instant::now() + MIN_POSITION_TIMEOUT;
    loop {
        let mut conn = pool.acquire().await.map_err(internal)?;
        let at = read::checkpoint(&mut conn, model).await.map_err(internal)?;
        drop(conn);
        if at >= min {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::new(format!(
                "the {} read model is at position {at}, not yet {min}; retry shortly",
                model.name()
            ))
            .extend_with(|_, e| e.set("code", "min_position_timeout")));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
/// The read models' database.
pub(crate) fn pool<'a>(ctx: &'a Context<'_>) -> &'a PgPool {
    ctx.data_unchecked::<crate::Databases>().read()
}

/// The read models' database when it is not the log's.
pub(crate) fn separate<'a>(ctx: &'a Context<'_>) -> Option<&'a PgPool> {
    ctx.data_unchecked::<crate::Databases>().read.as_ref()
}

/// The log's database.
pub(crate) fn log_pool<'a>(ctx: &'a Context<'_>) -> &'a PgPool {
    &ctx.data_unchecked::<crate::Databases>().log
}

/// A root field's permission: the caller's key (in the request's data) must grant `{resource}:read`
/// (`*:read` and the old `read` grant every one). A refusal is a GraphQL error with code
/// `forbidden` and the missing `permission`: the one place the query API's 403s happen, each
/// audited (`Auditor::denied`, when the request has an auditor) before it is answered.
pub struct Reads(pub ledger_core::permission::Need<'static>);

impl async_graphql::Guard for Reads {
    async fn check(&self, ctx: &Context<'_>) -> Result<()> {
        require(ctx, &self.0).await
    }
}

/// A root field whose answer concerns one owner (an order's store or trader), known only once
/// the field has read it or its arguments name it: the key must grant `{resource}:read` for some
/// owner here, and the resolver asks [`require`] (or [`require_any`]) for the owner's own
/// (`orders:read:store-1`) once it knows it.
pub struct ReadsSomeScope(pub ledger_core::permission::Need<'static>);

impl async_graphql::Guard for ReadsSomeScope {
    async fn check(&self, ctx: &Context<'_>) -> Result<()> {
        let who = ctx.data_opt::<ledger_store::keys::Principal>();
        if who.is_some_and(|who| who.require_some_scope(&self.0).is_ok()) {
            return Ok(());
        }
        refuse(ctx, self.0.to_string()).await
    }
}

/// `Ok` if the caller's key grants `need`; else the audited `forbidden` error naming it.
pub(crate) async fn require(ctx: &Context<'_>, need: &ledger_core::permission::Need<'_>) -> Result<()> {
    require_any(ctx, std::slice::from_ref(need)).await
}

/// `Ok` if the caller's key grants one of `needs` (an order's store's scope or its trader's);
/// else the audited `forbidden` error naming the first.
pub(crate) async fn require_any(ctx: &Context<'_>, needs: &[ledger_core::permission::Need<'_>]) -> Result<()> {
    let who = ctx.data_opt::<ledger_store::keys::Principal>();
    if who.is_some_and(|who| needs.iter().any(|need| who.require(need).is_ok())) {
        return Ok(());
    }
    refuse(ctx, needs.first().map(ToString::to_string).unwrap_or_default()).await
}

async fn refuse(ctx: &Context<'_>, permission: String) -> Result<()> {
    let who = ctx.data_opt::<ledger_store::keys::Principal>();
    if let (Some(who), Some(auditor)) = (who, ctx.data_opt::<ledger_store::audit::Auditor>()) {
        auditor.denied(who, &permission).await;
    }
    Err(Error::new(format!("this key lacks the permission {permission}")).extend_with(|_, e| {
        e.set("code", "forbidden");
        e.set("permission", permission.as_str());
    }))
}
