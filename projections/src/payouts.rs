//! The payouts domain's read model: requests, payouts and cash-payment-facts, and each client's
//! payout history (every movement of a payout account by a payout, with the account's balance
//! before and after, as the writer computed it).

use std::collections::HashMap;

use ledger_core::payouts::Event;
use ledger_store::sql::to_time;
use rust_decimal::Decimal;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::ApplyError;
use crate::page::PageView;

pub struct PayoutsModel;

impl crate::ReadModel for PayoutsModel {
    fn name(&self) -> &'static str {
        "payouts"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["rm_payout_requests", "rm_payouts", "rm_cash_payment_facts", "rm_payout_history"]
    }

    // Requests and payouts are rewritten as they move on: half of each of their pages is kept
    // free (set on every start) so a rewrite stays on its page (a HOT update).
    fn create_sql(&self, v: i32) -> String {
        format!(
            "CREATE TABLE IF NOT EXISTS rm_payout_requests_v{v} (id UUID PRIMARY KEY, client_id TEXT NOT NULL, \
             status TEXT NOT NULL, error TEXT, payouts INTEGER NOT NULL, created_position BIGINT NOT NULL, \
             position BIGINT NOT NULL, created_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL); \
             ALTER TABLE rm_payout_requests_v{v} SET (fillfactor = 50); \
             CREATE INDEX IF NOT EXISTS rm_payout_requests_v{v}_log ON rm_payout_requests_v{v} (created_position); \
             CREATE INDEX IF NOT EXISTS rm_payout_requests_v{v}_client ON rm_payout_requests_v{v} \
             (client_id, created_position); \
             CREATE TABLE IF NOT EXISTS rm_payouts_v{v} (id UUID PRIMARY KEY, request_id UUID NOT NULL, \
             client_id TEXT NOT NULL, account_id UUID NOT NULL, amount NUMERIC NOT NULL, currency TEXT NOT NULL, \
             status TEXT NOT NULL, reason TEXT, cash_payment_fact UUID, sent_at TIMESTAMPTZ, \
             created_position BIGINT NOT NULL, position BIGINT NOT NULL, created_at TIMESTAMPTZ NOT NULL, \
             updated_at TIMESTAMPTZ NOT NULL); \
             ALTER TABLE rm_payouts_v{v} SET (fillfactor = 50); \
             CREATE INDEX IF NOT EXISTS rm_payouts_v{v}_log ON rm_payouts_v{v} (created_position); \
             CREATE INDEX IF NOT EXISTS rm_payouts_v{v}_client ON rm_payouts_v{v} (client_id, created_position); \
             CREATE INDEX IF NOT EXISTS rm_payouts_v{v}_request ON rm_payouts_v{v} (request_id); \
             CREATE TABLE IF NOT EXISTS rm_cash_payment_facts_v{v} (id UUID PRIMARY KEY, payout_id UUID NOT NULL, \
             client_id TEXT NOT NULL, account_id UUID NOT NULL, amount NUMERIC NOT NULL, currency TEXT NOT NULL, \
             at TIMESTAMPTZ NOT NULL, position BIGINT NOT NULL); \
             CREATE INDEX IF NOT EXISTS rm_cash_payment_facts_v{v}_log ON rm_cash_payment_facts_v{v} (position); \
             CREATE INDEX IF NOT EXISTS rm_cash_payment_facts_v{v}_client ON rm_cash_payment_facts_v{v} \
             (client_id, position); \
             CREATE TABLE IF NOT EXISTS rm_payout_history_v{v} (position BIGINT PRIMARY KEY, client_id TEXT NOT NULL, \
             payout_id UUID NOT NULL, action TEXT NOT NULL, account_id UUID NOT NULL, amount NUMERIC NOT NULL, \
             currency TEXT NOT NULL, balance_before NUMERIC NOT NULL, balance_after NUMERIC NOT NULL, \
             at TIMESTAMPTZ NOT NULL); \
             CREATE INDEX IF NOT EXISTS rm_payout_history_v{v}_client ON rm_payout_history_v{v} (client_id, position);"
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
pub struct RequestRow {
    pub id: Uuid,
    pub client_id: String,
    pub status: String,
    pub error: Option<String>,
    pub payouts: i32,
    pub created_position: i64,
    pub position: i64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct PayoutRow {
    pub id: Uuid,
    pub request_id: Uuid,
    pub client_id: String,
    pub account_id: Uuid,
    pub amount: Decimal,
    pub currency: String,
    pub status: String,
    pub reason: Option<String>,
    pub cash_payment_fact: Option<Uuid>,
    pub sent_at: Option<OffsetDateTime>,
    pub created_position: i64,
    pub position: i64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct CashPaymentFactRow {
    pub id: Uuid,
    pub payout_id: Uuid,
    pub client_id: String,
    pub account_id: Uuid,
    pub amount: Decimal,
    pub currency: String,
    pub at: OffsetDateTime,
    pub position: i64,
}

#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct HistoryRow {
    pub position: i64,
    pub client_id: String,
    pub payout_id: Uuid,
    /// `sent` (the amount left the payout account) or `returned` (a rejected payout came back).
    pub action: String,
    pub account_id: Uuid,
    pub amount: Decimal,
    pub currency: String,
    pub balance_before: Decimal,
    pub balance_after: Decimal,
    pub at: OffsetDateTime,
}

async fn apply(conn: &mut PgConnection, v: i32, page: &PageView<'_>) -> Result<(), ApplyError> {
    let events: Vec<(&ledger_store::RecordedEvent, &Event)> =
        page.iter().filter_map(|(r, e)| e.payouts().map(|e| (r, e))).collect();
    if events.is_empty() {
        return Ok(());
    }
    let ids = |kind: &str| -> Vec<Uuid> {
        let mut ids: Vec<Uuid> =
            events.iter().map(|(_, e)| e.entity()).filter(|e| e.kind == kind).map(|e| e.id).collect();
        ids.sort();
        ids.dedup();
        ids
    };
    let (request_ids, payout_ids) = (ids(ledger_core::payouts::REQUEST_KIND), ids(ledger_core::payouts::PAYOUT_KIND));
    let mut requests: HashMap<Uuid, RequestRow> = HashMap::new();
    let stored: Vec<RequestRow> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT * FROM rm_payout_requests_v{v} WHERE id = ANY($1)")))
            .bind(&request_ids)
            .fetch_all(&mut *conn)
            .await?;
    requests.extend(stored.into_iter().map(|r| (r.id, r)));
    let mut payouts: HashMap<Uuid, PayoutRow> = HashMap::new();
    let stored: Vec<PayoutRow> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT * FROM rm_payouts_v{v} WHERE id = ANY($1)")))
            .bind(&payout_ids)
            .fetch_all(&mut *conn)
            .await?;
    payouts.extend(stored.into_iter().map(|p| (p.id, p)));
    let (mut facts, mut history) = (Vec::new(), Vec::new());
    for (record, event) in events {
        let position = record.position;
        let poison = |error: String| ApplyError::Poison { position, error };
        let at = to_time(record.recorded_at);
        match event {
            Event::Requested(e) => {
                requests.insert(
                    e.id.0,
                    RequestRow {
                        id: e.id.0,
                        client_id: e.client_id.clone(),
                        status: "new".into(),
                        error: None,
                        payouts: 0,
                        created_position: position,
                        position,
                        created_at: at,
                        updated_at: at,
                    },
                );
            }
            Event::RequestDone(_) | Event::RequestFailed(_) => {
                let id = event.entity().id;
                let r = requests.get_mut(&id).ok_or_else(|| poison(format!("request {id} was never made")))?;
                match event {
                    Event::RequestDone(e) => {
                        r.status = "done".into();
                        r.payouts = i32::try_from(e.payouts.len()).unwrap_or(i32::MAX);
                    }
                    Event::RequestFailed(e) => {
                        r.status = "error".into();
                        r.error = Some(e.error.clone());
                    }
                    _ => {}
                }
                (r.position, r.updated_at) = (position, at);
            }
            Event::Created(e) => {
                payouts.insert(
                    e.id.0,
                    PayoutRow {
                        id: e.id.0,
                        request_id: e.request.0,
                        client_id: e.client_id.clone(),
                        account_id: e.account.0,
                        amount: e.amount,
                        currency: e.currency.to_string(),
                        status: "new".into(),
                        reason: None,
                        cash_payment_fact: None,
                        sent_at: None,
                        created_position: position,
                        position,
                        created_at: at,
                        updated_at: at,
                    },
                );
            }
            Event::Sent(_) | Event::Failed(_) | Event::Paid(_) | Event::Rejected(_) => {
                let id = event.entity().id;
                let p = payouts.get_mut(&id).ok_or_else(|| poison(format!("payout {id} was never made")))?;
                let moved = |action: &str, before: Decimal, after: Decimal| HistoryRow {
                    position,
                    client_id: p.client_id.clone(),
                    payout_id: id,
                    action: action.into(),
                    account_id: p.account_id,
                    amount: p.amount,
                    currency: p.currency.clone(),
                    balance_before: before,
                    balance_after: after,
                    at,
                };
                match event {
                    Event::Sent(e) => {
                        history.push(moved("sent", e.balance.before, e.balance.after));
                        facts.push(CashPaymentFactRow {
                            id: e.cash_payment_fact,
                            payout_id: id,
                            client_id: e.client_id.clone(),
                            account_id: e.account.0,
                            amount: e.amount,
                            currency: e.currency.to_string(),
                            at: to_time(e.at),
                            position,
                        });
                        p.status = "sent".into();
                        p.cash_payment_fact = Some(e.cash_payment_fact);
                        p.sent_at = Some(to_time(e.at));
                    }
                    Event::Failed(e) | Event::Paid(e) | Event::Rejected(e) => {
                        if let (Event::Rejected(_), Some(b)) = (event, e.balance) {
                            history.push(moved("returned", b.before, b.after));
                        }
                        p.status = match event {
                            Event::Failed(_) => "failed",
                            Event::Paid(_) => "paid",
                            _ => "rejected",
                        }
                        .into();
                        p.reason.clone_from(&e.reason);
                    }
                    _ => {}
                }
                (p.position, p.updated_at) = (position, at);
            }
        }
    }
    write(conn, v, requests.into_values().collect(), payouts.into_values().collect(), facts, history).await
}

async fn write(
    conn: &mut PgConnection,
    v: i32,
    mut requests: Vec<RequestRow>,
    mut payouts: Vec<PayoutRow>,
    facts: Vec<CashPaymentFactRow>,
    history: Vec<HistoryRow>,
) -> Result<(), ApplyError> {
    // In key order: two appliers never lock rows in opposite orders.
    requests.sort_by_key(|r| r.id);
    payouts.sort_by_key(|p| p.id);
    let r = &requests;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO rm_payout_requests_v{v} (id, client_id, status, error, payouts, created_position, position, \
         created_at, updated_at) SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int[], \
         $6::bigint[], $7::bigint[], $8::timestamptz[], $9::timestamptz[]) \
         ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, error = EXCLUDED.error, \
         payouts = EXCLUDED.payouts, position = EXCLUDED.position, updated_at = EXCLUDED.updated_at"
    )))
    .bind(r.iter().map(|x| x.id).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.client_id.as_str()).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.status.as_str()).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.error.clone()).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.payouts).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.created_position).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.position).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.created_at).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.updated_at).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;
    let p = &payouts;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO rm_payouts_v{v} (id, request_id, client_id, account_id, amount, currency, status, reason, \
         cash_payment_fact, sent_at, created_position, position, created_at, updated_at) \
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::uuid[], $5::numeric[], $6::text[], \
         $7::text[], $8::text[], $9::uuid[], $10::timestamptz[], $11::bigint[], $12::bigint[], \
         $13::timestamptz[], $14::timestamptz[]) \
         ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, reason = EXCLUDED.reason, \
         cash_payment_fact = EXCLUDED.cash_payment_fact, sent_at = EXCLUDED.sent_at, \
         position = EXCLUDED.position, updated_at = EXCLUDED.updated_at"
    )))
    .bind(p.iter().map(|x| x.id).collect::<Vec<_>>())
    .bind(p.iter().map(|x| x.request_id).collect::<Vec<_>>())
    .bind(p.iter().map(|x| x.client_id.as_str()).collect::<Vec<_>>())
    .bind(p.iter().map(|x| x.account_id).collect::<Vec<_>>())
    .bind(p.iter().map(|x| x.amount).collect::<Vec<_>>())
    .bind(p.iter().map(|x| x.currency.as_str()).collect::<Vec<_>>())
    .bind(p.iter().map(|x| x.status.as_str()).collect::<Vec<_>>())
    .bind(p.iter().map(|x| x.reason.clone()).collect::<Vec<_>>())
    .bind(p.iter().map(|x| x.cash_payment_fact).collect::<Vec<_>>())
    .bind(p.iter().map(|x| x.sent_at).collect::<Vec<_>>())
    .bind(p.iter().map(|x| x.created_position).collect::<Vec<_>>())
    .bind(p.iter().map(|x| x.position).collect::<Vec<_>>())
    .bind(p.iter().map(|x| x.created_at).collect::<Vec<_>>())
    .bind(p.iter().map(|x| x.updated_at).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;
    let f = &facts;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO rm_cash_payment_facts_v{v} (id, payout_id, client_id, account_id, amount, currency, at, \
         position) SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::uuid[], $5::numeric[], \
         $6::text[], $7::timestamptz[], $8::bigint[])"
    )))
    .bind(f.iter().map(|x| x.id).collect::<Vec<_>>())
    .bind(f.iter().map(|x| x.payout_id).collect::<Vec<_>>())
    .bind(f.iter().map(|x| x.client_id.as_str()).collect::<Vec<_>>())
    .bind(f.iter().map(|x| x.account_id).collect::<Vec<_>>())
    .bind(f.iter().map(|x| x.amount).collect::<Vec<_>>())
    .bind(f.iter().map(|x| x.currency.as_str()).collect::<Vec<_>>())
    .bind(f.iter().map(|x| x.at).collect::<Vec<_>>())
    .bind(f.iter().map(|x| x.position).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;
    let h = &history;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO rm_payout_history_v{v} (position, client_id, payout_id, action, account_id, amount, currency, \
         balance_before, balance_after, at) SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::uuid[], $4::text[], \
         $5::uuid[], $6::numeric[], $7::text[], $8::numeric[], $9::numeric[], $10::timestamptz[])"
    )))
    .bind(h.iter().map(|x| x.position).collect::<Vec<_>>())
    .bind(h.iter().map(|x| x.client_id.as_str()).collect::<Vec<_>>())
    .bind(h.iter().map(|x| x.payout_id).collect::<Vec<_>>())
    .bind(h.iter().map(|x| x.action.as_str()).collect::<Vec<_>>())
    .bind(h.iter().map(|x| x.account_id).collect::<Vec<_>>())
    .bind(h.iter().map(|x| x.amount).collect::<Vec<_>>())
    .bind(h.iter().map(|x| x.currency.as_str()).collect::<Vec<_>>())
    .bind(h.iter().map(|x| x.balance_before).collect::<Vec<_>>())
    .bind(h.iter().map(|x| x.balance_after).collect::<Vec<_>>())
    .bind(h.iter().map(|x| x.at).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Filters of the request and payout lists; every one optional (`from` inclusive, `to`
/// exclusive, on the time each was made).
#[derive(Clone, Debug, Default)]
pub struct PayoutFilter {
    pub client_id: Option<String>,
    pub status: Option<String>,
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
}

/// Requests in the order they were made, after `after_position`.
pub async fn requests(
    conn: &mut PgConnection,
    filter: &PayoutFilter,
    after_position: Option<i64>,
    limit: i64,
) -> Result<Vec<RequestRow>, sqlx::Error> {
    made(conn, "rm_payout_requests", filter, after_position, limit).await
}

/// Payouts in the order they were made, after `after_position`.
pub async fn payouts(
    conn: &mut PgConnection,
    filter: &PayoutFilter,
    after_position: Option<i64>,
    limit: i64,
) -> Result<Vec<PayoutRow>, sqlx::Error> {
    made(conn, "rm_payouts", filter, after_position, limit).await
}

/// Rows of `view` (requests or payouts) in the order they were made, filtered.
async fn made<T>(
    conn: &mut PgConnection,
    view: &'static str,
    filter: &PayoutFilter,
    after_position: Option<i64>,
    limit: i64,
) -> Result<Vec<T>, sqlx::Error>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
{
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT * FROM {view} WHERE ($1::bigint IS NULL OR created_position > $1) \
         AND ($2::text IS NULL OR client_id = $2) AND ($3::text IS NULL OR status = $3) \
         AND ($4::timestamptz IS NULL OR created_at >= $4) AND ($5::timestamptz IS NULL OR created_at < $5) \
         ORDER BY created_position LIMIT $6"
    )))
    .bind(after_position)
    .bind(&filter.client_id)
    .bind(&filter.status)
    .bind(filter.from)
    .bind(filter.to)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// A request's payouts.
pub async fn payouts_of(conn: &mut PgConnection, request: Uuid) -> Result<Vec<PayoutRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM rm_payouts WHERE request_id = $1 ORDER BY created_position")
        .bind(request)
        .fetch_all(conn)
        .await
}

/// Cash-payment-facts in log order after `after_position`, by client and time.
pub async fn cash_payment_facts(
    conn: &mut PgConnection,
    filter: &PayoutFilter,
    after_position: Option<i64>,
    limit: i64,
) -> Result<Vec<CashPaymentFactRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM rm_cash_payment_facts WHERE ($1::bigint IS NULL OR position > $1) \
         AND ($2::text IS NULL OR client_id = $2) AND ($3::timestamptz IS NULL OR at >= $3) \
         AND ($4::timestamptz IS NULL OR at < $4) ORDER BY position LIMIT $5",
    )
    .bind(after_position)
    .bind(&filter.client_id)
    .bind(filter.from)
    .bind(filter.to)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// A client's payout history in log order after `after_position`.
pub async fn history(
    conn: &mut PgConnection,
    client_id: &str,
    after_position: Option<i64>,
    limit: i64,
) -> Result<Vec<HistoryRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM rm_payout_history WHERE client_id = $1 AND ($2::bigint IS NULL OR position > $2) \
         ORDER BY position LIMIT $3",
    )
    .bind(client_id)
    .bind(after_position)
    .bind(limit)
    .fetch_all(conn)
    .await
}
