//! The audit log inside `ledger up`: the job that records what other processes asked to be
//! audited (`audit_requests`: the command line beside a running engine), and the reader behind
//! `GET /v1/admin/audit`. Entries themselves are recorded by the parts that act, through the
//! process's `Auditor` (the API's, shared with this job, so `/metrics` counts them all).

use std::sync::Arc;
use std::time::Duration;

use tracing::warn;

use crate::domains::{Context as Up, Domain, Running};

/// The audit log as `ledger up` runs it: no settings of its own.
#[derive(Debug)]
pub struct Audit;

pub fn load(table: Option<toml::Value>) -> anyhow::Result<Box<dyn Domain>> {
    #[derive(Debug, Default, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {}
    let File {} = crate::domains::table("audit", table)?;
    Ok(Box::new(Audit))
}

/// How often the requests of other processes are looked for.
const DRAIN_INTERVAL: Duration = Duration::from_secs(1);

impl Domain for Audit {
    fn start(&self, cx: &Up<'_>, api: &mut command_api::ApiState) -> anyhow::Result<Running> {
        *api = api.clone().with_audit_log(Arc::new(ReadModelAuditLog(cx.read_pool.clone())));
        let (auditor, pool, mut stopped) = (api.auditor().clone(), cx.pool.clone(), cx.stopped.clone());
        let drain = tokio::spawn(async move {
            loop {
                if let Err(e) = auditor.drain(&pool).await {
                    warn!(error = %e, "audit requests not recorded yet; retrying");
                }
                tokio::select! {
                    () = tokio::time::sleep(DRAIN_INTERVAL) => {}
                    _ = stopped.wait_for(|s| *s) => return,
                }
            }
        });
        Ok(Running { tasks: vec![drain], aborted: Vec::new() })
    }
}

/// The audit endpoint's rows, read from the audit read model.
struct ReadModelAuditLog(sqlx::PgPool);

impl command_api::audit::AuditLogReader for ReadModelAuditLog {
    fn read(
        &self,
        query: command_api::audit::AuditLogQuery,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Vec<command_api::audit::AuditLogEntry>, String>> + Send + '_>,
    > {
        use time::format_description::well_known::Rfc3339;
        Box::pin(async move {
            let mut conn = self.0.acquire().await.map_err(|e| e.to_string())?;
            let filter = projections::audit::AuditFilter {
                level: query.level.map(|l| l.as_str().to_owned()),
                from: query.from,
                to: query.to,
                ..Default::default()
            };
            let rows = match projections::audit::entries(&mut conn, &filter, Some(query.after), query.limit).await {
                Ok(rows) => rows,
                // The read model's runner has not created its tables yet: nothing is applied.
                Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => Vec::new(),
                Err(e) => return Err(e.to_string()),
            };
            Ok(rows
                .into_iter()
                .map(|r| command_api::audit::AuditLogEntry {
                    id: r.id,
                    position: r.position,
                    level: r.level,
                    key_id: r.key_id,
                    channel: r.channel,
                    source: r.source,
                    action: r.action,
                    subject: r.subject,
                    before: r.before,
                    after: r.after,
                    reason: r.reason,
                    at: r.at.format(&Rfc3339).unwrap_or_default(),
                })
                .collect())
        })
    }
}
