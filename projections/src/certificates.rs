//! The certificates domain's read model: every certificate with its state, balance and links
//! (order, payment, client, campaign), its operations by `operation_id`, and the audit trail
//! (one row per certificate event: action, operation, channel, initiator, source, time, balance
//! before and after). Balances come from the events themselves, which carry them as the writer
//! computed them.

use std::collections::HashMap;

use ledger_core::certificates::Event;
use ledger_core::certificates::event::{BalanceChange, CertificateOperation};
use ledger_store::sql::to_time;
use ledger_store::{EventMeta, Source};
use rust_decimal::Decimal;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::ApplyError;
use crate::page::PageView;

pub struct CertificatesModel;

impl crate::ReadModel for CertificatesModel {
    fn name(&self) -> &'static str {
        "certificates"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["rm_certificates", "rm_certificate_operations", "rm_certificate_audit"]
    }

    // A certificate and its operations are rewritten as they move on: half of each of their pages is kept
    // free (set on every start) so a rewrite stays on its page (a HOT update).
    fn create_sql(&self, v: i32) -> String {
        format!(
            "CREATE TABLE IF NOT EXISTS rm_certificates_v{v} (id UUID PRIMARY KEY, code TEXT NOT NULL, \
             state TEXT NOT NULL, currency TEXT NOT NULL, nominal NUMERIC NOT NULL, balance NUMERIC NOT NULL, \
             available NUMERIC NOT NULL, campaign TEXT, order_id TEXT, payment_id TEXT, client_id TEXT, \
             expires_at TIMESTAMPTZ, issued_at TIMESTAMPTZ NOT NULL, position BIGINT NOT NULL, \
             updated_at TIMESTAMPTZ NOT NULL); \
             ALTER TABLE rm_certificates_v{v} SET (fillfactor = 50); \
             CREATE UNIQUE INDEX IF NOT EXISTS rm_certificates_v{v}_code ON rm_certificates_v{v} (code); \
             CREATE INDEX IF NOT EXISTS rm_certificates_v{v}_state ON rm_certificates_v{v} (state, code); \
             CREATE INDEX IF NOT EXISTS rm_certificates_v{v}_campaign ON rm_certificates_v{v} (campaign, code); \
             CREATE TABLE IF NOT EXISTS rm_certificate_operations_v{v} (certificate_id UUID NOT NULL, \
             operation_id TEXT NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL, amount NUMERIC NOT NULL, \
             captured NUMERIC, reason TEXT, created_position BIGINT NOT NULL, position BIGINT NOT NULL, \
             created_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL, \
             PRIMARY KEY (certificate_id, operation_id)); \
             ALTER TABLE rm_certificate_operations_v{v} SET (fillfactor = 50); \
             CREATE INDEX IF NOT EXISTS rm_certificate_operations_v{v}_log ON rm_certificate_operations_v{v} \
             (certificate_id, created_position); \
             CREATE TABLE IF NOT EXISTS rm_certificate_audit_v{v} (position BIGINT PRIMARY KEY, \
             certificate_id UUID NOT NULL, code TEXT NOT NULL, action TEXT NOT NULL, operation_id TEXT, \
             amount NUMERIC, channel TEXT, initiator TEXT, key_id UUID, source TEXT NOT NULL, \
             source_topic TEXT, source_partition INTEGER, source_offset BIGINT, at TIMESTAMPTZ NOT NULL, \
             balance_before NUMERIC NOT NULL, balance_after NUMERIC NOT NULL, available_after NUMERIC NOT NULL, \
             state TEXT NOT NULL); \
             CREATE INDEX IF NOT EXISTS rm_certificate_audit_v{v}_certificate ON rm_certificate_audit_v{v} \
             (certificate_id, position); \
             CREATE INDEX IF NOT EXISTS rm_certificate_audit_v{v}_at ON rm_certificate_audit_v{v} (at, position);"
        )
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

#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct CertificateRow {
    pub id: Uuid,
    pub code: String,
    pub state: String,
    pub currency: String,
    pub nominal: Decimal,
    pub balance: Decimal,
    pub available: Decimal,
    pub campaign: Option<String>,
    pub order_id: Option<String>,
    pub payment_id: Option<String>,
    pub client_id: Option<String>,
    pub expires_at: Option<OffsetDateTime>,
    pub issued_at: OffsetDateTime,
    pub position: i64,
    pub updated_at: OffsetDateTime,
}

#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct OperationRow {
    pub certificate_id: Uuid,
    pub operation_id: String,
    pub kind: String,
    pub status: String,
    pub amount: Decimal,
    pub captured: Option<Decimal>,
    pub reason: Option<String>,
    pub created_position: i64,
    pub position: i64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct AuditRow {
    pub position: i64,
    pub certificate_id: Uuid,
    pub code: String,
    pub action: String,
    pub operation_id: Option<String>,
    pub amount: Option<Decimal>,
    pub channel: Option<String>,
    pub initiator: Option<String>,
    pub key_id: Option<Uuid>,
    /// `http`, `topic` or `job`.
    pub source: String,
    pub source_topic: Option<String>,
    pub source_partition: Option<i32>,
    pub source_offset: Option<i64>,
    pub at: OffsetDateTime,
    pub balance_before: Decimal,
    pub balance_after: Decimal,
    pub available_after: Decimal,
    pub state: String,
}

async fn apply(conn: &mut PgConnection, v: i32, page: &PageView<'_>) -> Result<(), ApplyError> {
    let events: Vec<(&ledger_store::RecordedEvent, &Event)> =
        page.iter().filter_map(|(r, e)| e.certificates().map(|e| (r, e))).collect();
    if events.is_empty() {
        return Ok(());
    }
    let mut ids: Vec<Uuid> = events.iter().map(|(_, e)| e.certificate().0).collect();
    ids.sort();
    ids.dedup();
    let mut certificates: HashMap<Uuid, CertificateRow> = HashMap::new();
    let stored: Vec<CertificateRow> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT * FROM rm_certificates_v{v} WHERE id = ANY($1)")))
            .bind(&ids)
            .fetch_all(&mut *conn)
            .await?;
    certificates.extend(stored.into_iter().map(|row| (row.id, row)));
    let keys: Vec<(Uuid, String)> =
        events.iter().filter_map(|(_, e)| operation(e).map(|op| (op.id.0, op.operation_id.clone()))).collect();
    let mut operations: HashMap<(Uuid, String), OperationRow> = HashMap::new();
    let stored: Vec<OperationRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT o.* FROM rm_certificate_operations_v{v} o JOIN UNNEST($1::uuid[], $2::text[]) k(c, op) \
         ON o.certificate_id = k.c AND o.operation_id = k.op"
    )))
    .bind(keys.iter().map(|k| k.0).collect::<Vec<_>>())
    .bind(keys.iter().map(|k| k.1.as_str()).collect::<Vec<_>>())
    .fetch_all(&mut *conn)
    .await?;
    operations.extend(stored.into_iter().map(|row| ((row.certificate_id, row.operation_id.clone()), row)));
    let mut audit = Vec::with_capacity(events.len());
    for (record, event) in events {
        let position = record.position;
        let poison = |error: String| ApplyError::Poison { position, error };
        let at = to_time(record.recorded_at);
        let id = event.certificate().0;
        if let Event::Issued(e) = event {
            certificates.insert(
                id,
                CertificateRow {
                    id,
                    code: e.code.clone(),
                    state: e.state.as_str().to_owned(),
                    currency: e.currency.to_string(),
                    nominal: e.nominal,
                    balance: Decimal::ZERO,
                    available: Decimal::ZERO,
                    campaign: e.campaign.clone(),
                    order_id: None,
                    payment_id: None,
                    client_id: None,
                    expires_at: e.expires_at.map(to_time),
                    issued_at: to_time(e.at),
                    position,
                    updated_at: at,
                },
            );
        }
        let row = certificates.get_mut(&id).ok_or_else(|| poison(format!("certificate {id} was never issued")))?;
        let zero = BalanceChange { before: row.balance, after: row.balance, available: row.available };
        let (change, amount, operation_id) = match event {
            Event::Issued(_) => (zero, None, None),
            Event::Activated(e) => {
                row.order_id = Some(e.order_id.clone());
                row.payment_id = Some(e.payment_id.clone());
                row.client_id = e.client_id.clone();
                (e.balance, Some(e.balance.after - e.balance.before), None)
            }
            Event::CvcRefused(e) => (zero, None, Some(e.operation_id.clone())),
            Event::Expired(e) => (e.balance, Some(e.amount), None),
            Event::Authorized(e)
            | Event::Captured(e)
            | Event::AuthorizationVoided(e)
            | Event::CaptureVoided(e)
            | Event::Refunded(e)
            | Event::Cancelled(e) => {
                let key = (id, e.operation_id.clone());
                let (kind, status) = match event {
                    Event::Authorized(_) => ("authorization", "open"),
                    Event::Captured(_) => ("authorization", "captured"),
                    Event::AuthorizationVoided(_) => ("authorization", "voided"),
                    Event::CaptureVoided(_) => ("authorization", "capture_voided"),
                    Event::Refunded(_) => ("refund", "done"),
                    _ => ("cancellation", "done"),
                };
                let op = operations.entry(key).or_insert_with(|| OperationRow {
                    certificate_id: id,
                    operation_id: e.operation_id.clone(),
                    kind: kind.to_owned(),
                    status: status.to_owned(),
                    amount: e.amount,
                    captured: None,
                    reason: e.reason.clone(),
                    created_position: position,
                    position,
                    created_at: at,
                    updated_at: at,
                });
                op.status = status.to_owned();
                if matches!(event, Event::Captured(_)) {
                    op.captured = Some(e.amount);
                }
                op.position = position;
                op.updated_at = at;
                (e.balance, Some(e.amount), Some(e.operation_id.clone()))
            }
        };
        row.state = event.state().as_str().to_owned();
        row.balance = change.after;
        row.available = change.available;
        row.position = position;
        row.updated_at = at;
        let meta: EventMeta = serde_json::from_str(&record.metadata).unwrap_or_default();
        let (source, topic, partition, offset) = match meta.source {
            Some(Source::Http) => ("http", None, None, None),
            Some(Source::Topic { topic, partition, offset }) => ("topic", Some(topic), Some(partition), Some(offset)),
            Some(Source::Job { .. }) => ("job", None, None, None),
            None => ("internal", None, None, None),
        };
        audit.push(AuditRow {
            position,
            certificate_id: id,
            code: row.code.clone(),
            action: event.action().to_owned(),
            operation_id,
            amount,
            channel: meta.channel,
            initiator: meta.initiator,
            key_id: meta.key_id,
            source: source.to_owned(),
            source_topic: topic,
            source_partition: partition,
            source_offset: offset,
            at,
            balance_before: change.before,
            balance_after: change.after,
            available_after: change.available,
            state: row.state.clone(),
        });
    }
    write(conn, v, certificates.into_values().collect(), operations.into_values().collect(), audit).await
}

fn operation(event: &Event) -> Option<&CertificateOperation> {
    match event {
        Event::Authorized(e)
        | Event::Captured(e)
        | Event::AuthorizationVoided(e)
        | Event::CaptureVoided(e)
        | Event::Refunded(e)
        | Event::Cancelled(e) => Some(e),
        _ => None,
    }
}

async fn write(
    conn: &mut PgConnection,
    v: i32,
    mut rows: Vec<CertificateRow>,
    mut ops: Vec<OperationRow>,
    audit: Vec<AuditRow>,
) -> Result<(), ApplyError> {
    // In key order: two appliers never lock rows in opposite orders.
    rows.sort_by_key(|r| r.id);
    ops.sort_by(|a, b| (a.certificate_id, &a.operation_id).cmp(&(b.certificate_id, &b.operation_id)));
    let col = |f: &dyn Fn(&CertificateRow) -> Option<String>| rows.iter().map(f).collect::<Vec<_>>();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO rm_certificates_v{v} (id, code, state, currency, nominal, balance, available, campaign, \
         order_id, payment_id, client_id, expires_at, issued_at, position, updated_at) \
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::numeric[], $6::numeric[], \
         $7::numeric[], $8::text[], $9::text[], $10::text[], $11::text[], $12::timestamptz[], $13::timestamptz[], \
         $14::bigint[], $15::timestamptz[]) \
         ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state, balance = EXCLUDED.balance, \
         available = EXCLUDED.available, order_id = EXCLUDED.order_id, payment_id = EXCLUDED.payment_id, \
         client_id = EXCLUDED.client_id, position = EXCLUDED.position, updated_at = EXCLUDED.updated_at"
    )))
    .bind(rows.iter().map(|r| r.id).collect::<Vec<_>>())
    .bind(col(&|r| Some(r.code.clone())))
    .bind(col(&|r| Some(r.state.clone())))
    .bind(col(&|r| Some(r.currency.clone())))
    .bind(rows.iter().map(|r| r.nominal).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.balance).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.available).collect::<Vec<_>>())
    .bind(col(&|r| r.campaign.clone()))
    .bind(col(&|r| r.order_id.clone()))
    .bind(col(&|r| r.payment_id.clone()))
    .bind(col(&|r| r.client_id.clone()))
    .bind(rows.iter().map(|r| r.expires_at).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.issued_at).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.position).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.updated_at).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO rm_certificate_operations_v{v} (certificate_id, operation_id, kind, status, amount, captured, \
         reason, created_position, position, created_at, updated_at) \
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::numeric[], $6::numeric[], \
         $7::text[], $8::bigint[], $9::bigint[], $10::timestamptz[], $11::timestamptz[]) \
         ON CONFLICT (certificate_id, operation_id) DO UPDATE SET status = EXCLUDED.status, \
         captured = EXCLUDED.captured, position = EXCLUDED.position, updated_at = EXCLUDED.updated_at"
    )))
    .bind(ops.iter().map(|o| o.certificate_id).collect::<Vec<_>>())
    .bind(ops.iter().map(|o| o.operation_id.as_str()).collect::<Vec<_>>())
    .bind(ops.iter().map(|o| o.kind.as_str()).collect::<Vec<_>>())
    .bind(ops.iter().map(|o| o.status.as_str()).collect::<Vec<_>>())
    .bind(ops.iter().map(|o| o.amount).collect::<Vec<_>>())
    .bind(ops.iter().map(|o| o.captured).collect::<Vec<_>>())
    .bind(ops.iter().map(|o| o.reason.clone()).collect::<Vec<_>>())
    .bind(ops.iter().map(|o| o.created_position).collect::<Vec<_>>())
    .bind(ops.iter().map(|o| o.position).collect::<Vec<_>>())
    .bind(ops.iter().map(|o| o.created_at).collect::<Vec<_>>())
    .bind(ops.iter().map(|o| o.updated_at).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;
    let a = &audit;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO rm_certificate_audit_v{v} (position, certificate_id, code, action, operation_id, amount, \
         channel, initiator, key_id, source, source_topic, source_partition, source_offset, at, balance_before, \
         balance_after, available_after, state) \
         SELECT * FROM UNNEST($1::bigint[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::numeric[], \
         $7::text[], $8::text[], $9::uuid[], $10::text[], $11::text[], $12::int[], $13::bigint[], \
         $14::timestamptz[], $15::numeric[], $16::numeric[], $17::numeric[], $18::text[])"
    )))
    .bind(a.iter().map(|r| r.position).collect::<Vec<_>>())
    .bind(a.iter().map(|r| r.certificate_id).collect::<Vec<_>>())
    .bind(a.iter().map(|r| r.code.as_str()).collect::<Vec<_>>())
    .bind(a.iter().map(|r| r.action.as_str()).collect::<Vec<_>>())
    .bind(a.iter().map(|r| r.operation_id.clone()).collect::<Vec<_>>())
    .bind(a.iter().map(|r| r.amount).collect::<Vec<_>>())
    .bind(a.iter().map(|r| r.channel.clone()).collect::<Vec<_>>())
    .bind(a.iter().map(|r| r.initiator.clone()).collect::<Vec<_>>())
    .bind(a.iter().map(|r| r.key_id).collect::<Vec<_>>())
    .bind(a.iter().map(|r| r.source.as_str()).collect::<Vec<_>>())
    .bind(a.iter().map(|r| r.source_topic.clone()).collect::<Vec<_>>())
    .bind(a.iter().map(|r| r.source_partition).collect::<Vec<_>>())
    .bind(a.iter().map(|r| r.source_offset).collect::<Vec<_>>())
    .bind(a.iter().map(|r| r.at).collect::<Vec<_>>())
    .bind(a.iter().map(|r| r.balance_before).collect::<Vec<_>>())
    .bind(a.iter().map(|r| r.balance_after).collect::<Vec<_>>())
    .bind(a.iter().map(|r| r.available_after).collect::<Vec<_>>())
    .bind(a.iter().map(|r| r.state.as_str()).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Filters of the certificate list; every one optional.
#[derive(Clone, Debug, Default)]
pub struct CertificateFilter {
    pub state: Option<String>,
    pub campaign: Option<String>,
}

pub async fn certificate(conn: &mut PgConnection, code: &str) -> Result<Option<CertificateRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM rm_certificates WHERE code = $1").bind(code).fetch_optional(conn).await
}

/// Certificates in code order after `after_code`.
pub async fn certificates(
    conn: &mut PgConnection,
    filter: &CertificateFilter,
    after_code: Option<&str>,
    limit: i64,
) -> Result<Vec<CertificateRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM rm_certificates WHERE ($1::text IS NULL OR code > $1) AND ($2::text IS NULL OR state = $2) \
         AND ($3::text IS NULL OR campaign = $3) ORDER BY code LIMIT $4",
    )
    .bind(after_code)
    .bind(&filter.state)
    .bind(&filter.campaign)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// A certificate's operations in the order they were opened, after the one opened at
/// `after_position`.
pub async fn operations(
    conn: &mut PgConnection,
    certificate: Uuid,
    after_position: Option<i64>,
    limit: i64,
) -> Result<Vec<OperationRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM rm_certificate_operations WHERE certificate_id = $1 \
         AND ($2::bigint IS NULL OR created_position > $2) ORDER BY created_position LIMIT $3",
    )
    .bind(certificate)
    .bind(after_position)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Audit rows in log order after `after_position`: of one certificate, or of every certificate
/// in a time range (`from` inclusive, `to` exclusive).
pub async fn audit(
    conn: &mut PgConnection,
    certificate: Option<Uuid>,
    from: Option<OffsetDateTime>,
    to: Option<OffsetDateTime>,
    after_position: Option<i64>,
    limit: i64,
) -> Result<Vec<AuditRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM rm_certificate_audit WHERE ($1::uuid IS NULL OR certificate_id = $1) \
         AND ($2::timestamptz IS NULL OR at >= $2) AND ($3::timestamptz IS NULL OR at < $3) \
         AND ($4::bigint IS NULL OR position > $4) ORDER BY position LIMIT $5",
    )
    .bind(certificate)
    .bind(from)
    .bind(to)
    .bind(after_position)
    .bind(limit)
    .fetch_all(conn)
    .await
}
