//! The audit log's part of the GraphQL schema: `auditLog`, entries in log order by level,
//! actor (a key id or a channel), action, subject and time.

use async_graphql::connection::Connection;
use async_graphql::{Context, Enum, Json, Object, Result, SimpleObject};
use projections::Model;
use projections::audit::{self as rm, AuditFilter, AuditRow};

use crate::resolve::{Reads, bad_input, internal, page, page_size, parse_cursor, parse_time, pool, rfc3339, wait_for};

/// How much an entry matters.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(rename_items = "snake_case")]
pub enum AuditLevel {
    Info,
    Warning,
    Critical,
}

impl AuditLevel {
    fn name(self) -> &'static str {
        match self {
            AuditLevel::Info => "info",
            AuditLevel::Warning => "warning",
            AuditLevel::Critical => "critical",
        }
    }
}

/// One entry of the audit log.
#[derive(SimpleObject)]
pub struct AuditEntry {
    pub id: String,
    /// The position of its event in the log.
    pub position: i64,
    /// info, warning or critical.
    pub level: String,
    /// The API key that acted, and its channel (none: the engine itself or the command line).
    pub key_id: Option<String>,
    pub channel: Option<String>,
    /// Where it came from: `http`, `job:{name}`, `topic:{topic}`, or none (the command line).
    pub source: Option<String>,
    pub action: String,
    pub subject: String,
    /// A setting's value before and after the change.
    pub before: Option<Json<serde_json::Value>>,
    pub after: Option<Json<serde_json::Value>>,
    pub reason: Option<String>,
    pub at: String,
}

impl From<AuditRow> for AuditEntry {
    fn from(r: AuditRow) -> AuditEntry {
        AuditEntry {
            id: r.id.to_string(),
            position: r.position,
            level: r.level,
            key_id: r.key_id.map(|k| k.to_string()),
            channel: r.channel,
            source: r.source,
            action: r.action,
            subject: r.subject,
            before: r.before.map(Json),
            after: r.after.map(Json),
            reason: r.reason,
            at: rfc3339(r.at),
        }
    }
}

/// The audit log.
#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// Audit entries in log order, by level, actor (a key id or a channel), action, subject and
    /// time (`from` inclusive, `to` exclusive, RFC 3339).
    #[allow(clippy::too_many_arguments)]
    #[graphql(guard = "Reads(ledger_core::audit::READ)")]
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        level: Option<AuditLevel>,
        actor: Option<String>,
        action: Option<String>,
        subject: Option<String>,
        from: Option<String>,
        to: Option<String>,
        min_position: Option<i64>,
    ) -> Result<Connection<String, AuditEntry>> {
        let limit = page_size(first)?;
        let after_position = parse_cursor(after)?;
        let (from, to) = (parse_time("from", from)?, parse_time("to", to)?);
        if let (Some(from), Some(to)) = (from, to)
            && from > to
        {
            return Err(bad_input("from must not be after to"));
        }
        let filter = AuditFilter { level: level.map(|l| l.name().to_owned()), actor, action, subject, from, to };
        wait_for(pool(ctx), Model::Audit, min_position).await?;
        let mut conn = pool(ctx).acquire().await.map_err(internal)?;
        let rows = rm::entries(&mut conn, &filter, after_position, limit + 1).await.map_err(internal)?;
        Ok(page(rows, limit, after_position.is_some(), |r| (r.position.to_string(), r.into())))
    }
}
