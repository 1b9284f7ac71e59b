//! Recording audit entries (`ledger_core::audit`). An `Auditor` submits each to the writer as an
//! `AuditRecorded` event with the actor's metadata (key, channel, source) and counts them by
//! level (`ledger_audit_entries_total`, per process). What cannot reach the writer (the command
//! line beside a running `ledger up`) writes an `audit_requests` row with `request`, in the same
//! transaction as the change it audits; the running engine's `drain` records those, oldest
//! first.
//!
//! A refused permission is recorded the same way by both APIs (`Auditor::denied`): an
//! `access.denied` warning naming the missing permission, the refused key as its actor.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ledger_core::audit::{Command, Entry, Level};
use tracing::warn;
use uuid::Uuid;

use crate::keys::Principal;
use crate::{EventMeta, LedgerHandle, Source, WriteError};

/// Why an entry was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The entry breaks a rule of `ledger_core::audit::decide` (a caller's bug).
    #[error("audit entry refused: {0}")]
    Refused(ledger_core::audit::Rejection),
    /// The writer could not take it now: retry.
    #[error("audit entry not recorded: {0}")]
    Unavailable(#[from] WriteError),
}

/// Records audit entries through the writer; cheap to clone (clones share the counts).
#[derive(Clone)]
pub struct Auditor {
    ledger: LedgerHandle,
    recorded: Arc<[AtomicU64; 3]>,
}

impl Auditor {
    pub fn new(ledger: LedgerHandle) -> Auditor {
        Auditor { ledger, recorded: Arc::new([AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)]) }
    }

    /// Records `entry`, acted by whom `meta` names; returns once it is committed.
    pub async fn record(&self, entry: Entry, meta: EventMeta) -> Result<(), AuditError> {
        let level = entry.level;
        match self.ledger.submit(Command::Record(Box::new(entry)), meta).await? {
            Ok(_) => {
                self.count(level);
                Ok(())
            }
            Err(refused) => Err(AuditError::Refused(refused)),
        }
    }

    /// Records that `who` was refused `permission` (the text the refusal names): an
    /// `access.denied` warning, `who` its actor. Returns once it is committed; an entry that
    /// could not be recorded is logged, since the refusal is answered either way.
    pub async fn denied(&self, who: &Principal, permission: &str) {
        let entry = Entry {
            id: Uuid::new_v4(),
            level: Level::Warning,
            action: "access.denied".into(),
            subject: permission.to_owned(),
            before: None,
            after: None,
            reason: None,
        };
        if let Err(e) = self.record(entry, actor(who)).await {
            tracing::error!(error = %e, key_id = %who.key_id, "a refusal was not audited");
        }
    }

    /// Counts an entry a domain's own command recorded (`ledger_core::audit::entry_event`), which
    /// this process committed, so `/metrics` counts every entry of the process.
    pub fn count(&self, level: Level) {
        self.recorded[index(level)].fetch_add(1, Ordering::Relaxed);
    }

    /// Entries this process recorded, by level.
    pub fn recorded(&self) -> [(Level, u64); 3] {
        Level::ALL.map(|level| (level, self.recorded[index(level)].load(Ordering::Relaxed)))
    }

    /// `ledger_audit_entries_total{level}` in the text exposition format.
    pub fn render(&self, out: &mut String) {
        out.push_str("# TYPE ledger_audit_entries_total counter\n");
        for (level, n) in self.recorded() {
            out.push_str(&format!("ledger_audit_entries_total{{level=\"{}\"}} {n}\n", level.as_str()));
        }
    }

    /// Records the pending `audit_requests`, oldest first, deleting each once recorded (one
    /// refused by the rules is logged and dropped: it can never be recorded). Returns how many
    /// were recorded.
    pub async fn drain(&self, pool: &sqlx::PgPool) -> Result<usize, DrainError> {
        let rows: Vec<(i64, sqlx::types::Json<Entry>, sqlx::types::Json<EventMeta>)> =
            sqlx::query_as("SELECT seq, entry, meta FROM audit_requests ORDER BY seq LIMIT 1000")
                .fetch_all(pool)
                .await?;
        let mut recorded = 0;
        for (seq, entry, meta) in rows {
            match self.record(entry.0, meta.0).await {
                Ok(()) => recorded += 1,
                Err(AuditError::Refused(why)) => warn!(seq, %why, "an audit request was refused; dropped"),
                Err(AuditError::Unavailable(e)) => return Err(DrainError::Unavailable(e)),
            }
            sqlx::query("DELETE FROM audit_requests WHERE seq = $1").bind(seq).execute(pool).await?;
        }
        Ok(recorded)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DrainError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("the writer is unavailable: {0}")]
    Unavailable(WriteError),
}

/// The metadata naming `who` as the actor of an audit entry made over HTTP (either API).
pub fn actor(who: &Principal) -> EventMeta {
    EventMeta {
        channel: Some(who.channel.clone()),
        key_id: Some(who.key_id),
        source: Some(Source::Http),
        ..EventMeta::default()
    }
}

fn index(level: Level) -> usize {
    match level {
        Level::Info => 0,
        Level::Warning => 1,
        Level::Critical => 2,
    }
}

/// Asks the running engine to record `entry` (acted by whom `meta` names): a row in
/// `audit_requests`, written on `conn`, so in the transaction of the change it audits.
pub async fn request(conn: &mut sqlx::PgConnection, entry: &Entry, meta: &EventMeta) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO audit_requests (entry, meta) VALUES ($1, $2)")
        .bind(sqlx::types::Json(entry))
        .bind(sqlx::types::Json(meta))
        .execute(conn)
        .await
        .map(drop)
}
