//! The audit log's read model: one row per entry (`AuditRecorded`), keyed by the entry's id (an
//! entry recorded twice, a retry after a crash, shows once), with who acted as the event's
//! metadata says (key, channel, source), searchable by level, actor, action, subject and time.

use ledger_core::audit::Event;
use ledger_store::EventMeta;
use ledger_store::sql::to_time;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::ApplyError;
use crate::page::PageView;

pub struct AuditModel;

impl crate::ReadModel for AuditModel {
    fn name(&self) -> &'static str {
        "audit"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["rm_audit"]
    }

    fn create_sql(&self, v: i32) -> String {
        format!(
            "CREATE TABLE IF NOT EXISTS rm_audit_v{v} (id UUID PRIMARY KEY, position BIGINT NOT NULL, \
             level TEXT NOT NULL, key_id UUID, channel TEXT, source TEXT, action TEXT NOT NULL, \
             subject TEXT NOT NULL, before JSONB, after JSONB, reason TEXT, at TIMESTAMPTZ NOT NULL); \
             CREATE UNIQUE INDEX IF NOT EXISTS rm_audit_v{v}_log ON rm_audit_v{v} (position); \
             CREATE INDEX IF NOT EXISTS rm_audit_v{v}_at ON rm_audit_v{v} (at, position);"
        )
    }

    fn deferred_indexes(&self, v: i32) -> Vec<String> {
        vec![format!("rm_audit_v{v}_at")]
    }

    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        v: i32,
        page: &'a PageView<'a>,
        _: &'a mut crate::Memo,
    ) -> crate::Applying<'a> {
        Box::pin(apply(conn, v, page))
    }
}

/// One entry of the audit log.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct AuditRow {
    pub id: Uuid,
    pub position: i64,
    pub level: String,
    pub key_id: Option<Uuid>,
    pub channel: Option<String>,
    /// `http`, `job:{name}`, `topic:{topic}` or none (the command line).
    pub source: Option<String>,
    pub action: String,
    pub subject: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub reason: Option<String>,
    pub at: OffsetDateTime,
}

fn source(meta: &EventMeta) -> Option<String> {
    meta.source.as_ref().map(|s| match s {
        ledger_store::Source::Http => "http".to_owned(),
        ledger_store::Source::Topic { topic, .. } => format!("topic:{topic}"),
        ledger_store::Source::Job { name } => format!("job:{name}"),
    })
}

async fn apply(conn: &mut PgConnection, v: i32, page: &PageView<'_>) -> Result<(), ApplyError> {
    let mut rows = Vec::new();
    for (record, event) in page.iter() {
        let Some(Event::Recorded(e)) = event.audit() else { continue };
        let meta: EventMeta = serde_json::from_str(&record.metadata)
            .map_err(|error| ApplyError::Poison { position: record.position, error: error.to_string() })?;
        let entry = &e.entry;
        rows.push(AuditRow {
            id: entry.id,
            position: record.position,
            level: entry.level.as_str().to_owned(),
            key_id: meta.key_id,
            channel: meta.channel.clone(),
            source: source(&meta),
            action: entry.action.clone(),
            subject: entry.subject.clone(),
            before: entry.before.clone(),
            after: entry.after.clone(),
            reason: entry.reason.clone(),
            at: to_time(e.at),
        });
    }
    if rows.is_empty() {
        return Ok(());
    }
    let r = &rows;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO rm_audit_v{v} (id, position, level, key_id, channel, source, action, subject, before, after, \
         reason, at) SELECT * FROM UNNEST($1::uuid[], $2::bigint[], $3::text[], $4::uuid[], $5::text[], $6::text[], \
         $7::text[], $8::text[], $9::jsonb[], $10::jsonb[], $11::text[], $12::timestamptz[]) \
         ON CONFLICT (id) DO NOTHING"
    )))
    .bind(r.iter().map(|x| x.id).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.position).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.level.as_str()).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.key_id).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.channel.clone()).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.source.clone()).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.action.as_str()).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.subject.as_str()).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.before.clone()).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.after.clone()).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.reason.clone()).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.at).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// What the audit log is searched by; every one optional (`from` inclusive, `to` exclusive).
/// `actor` is a key id or a channel name.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub level: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub subject: Option<String>,
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
}

/// Entries in log order after `after_position`, filtered.
pub async fn entries(
    conn: &mut PgConnection,
    filter: &AuditFilter,
    after_position: Option<i64>,
    limit: i64,
) -> Result<Vec<AuditRow>, sqlx::Error> {
    let key = filter.actor.as_deref().and_then(|a| Uuid::parse_str(a).ok());
    sqlx::query_as(
        "SELECT id, position, level, key_id, channel, source, action, subject, before, after, reason, at \
         FROM rm_audit WHERE ($1::bigint IS NULL OR position > $1) AND ($2::text IS NULL OR level = $2) \
         AND ($3::text IS NULL OR channel = $3 OR key_id = $4) AND ($5::text IS NULL OR action = $5) \
         AND ($6::text IS NULL OR subject = $6) AND ($7::timestamptz IS NULL OR at >= $7) \
         AND ($8::timestamptz IS NULL OR at < $8) ORDER BY position LIMIT $9",
    )
    .bind(after_position)
    .bind(&filter.level)
    .bind(&filter.actor)
    .bind(key)
    .bind(&filter.action)
    .bind(&filter.subject)
    .bind(filter.from)
    .bind(filter.to)
    .bind(limit)
    .fetch_all(conn)
    .await
}
