//! The payouts domain's part of the GraphQL schema: requests, payouts and cash-payment-facts by
//! client, status and time, and a client's payout history with the payout account's balance
//! before and after each movement.

use async_graphql::connection::Connection;
use async_graphql::{ComplexObject, Context, Enum, Object, Result, SimpleObject};
use projections::Model;
use projections::payouts::{self as rm, CashPaymentFactRow, HistoryRow, PayoutFilter, PayoutRow, RequestRow};
use uuid::Uuid;

use crate::resolve::{
    Reads, bad_input, internal, money, page, page_size, parse_cursor, parse_time, pool, rfc3339, wait_for,
};

/// A payout request's status.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(rename_items = "snake_case")]
pub enum PayoutRequestStatus {
    New,
    Done,
    Error,
}

/// A payout's status.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(rename_items = "snake_case")]
pub enum PayoutStatus {
    New,
    Sent,
    Failed,
    Paid,
    Rejected,
}

#[derive(SimpleObject)]
#[graphql(complex)]
pub struct PayoutRequest {
    #[graphql(skip)]
    uuid: Uuid,
    pub id: String,
    pub client_id: String,
    /// new, done or error.
    pub status: String,
    pub error: Option<String>,
    /// How many payouts it made.
    pub payout_count: i32,
    pub created_at: String,
    pub updated_at: String,
    /// Position of the last event that changed it.
    pub position: i64,
}

impl From<RequestRow> for PayoutRequest {
    fn from(r: RequestRow) -> PayoutRequest {
        PayoutRequest {
            uuid: r.id,
            id: r.id.to_string(),
            client_id: r.client_id,
            status: r.status,
            error: r.error,
            payout_count: r.payouts,
            created_at: rfc3339(r.created_at),
            updated_at: rfc3339(r.updated_at),
            position: r.position,
        }
    }
}

#[ComplexObject]
impl PayoutRequest {
    /// The payouts it made, in the order they were made.
    async fn payouts(&self, ctx: &Context<'_>) -> Result<Vec<Payout>> {
        let mut conn = pool(ctx).acquire().await.map_err(internal)?;
        Ok(rm::payouts_of(&mut conn, self.uuid).await.map_err(internal)?.into_iter().map(Payout::from).collect())
    }
}

#[derive(SimpleObject)]
pub struct Payout {
    pub id: String,
    pub request_id: String,
    pub client_id: String,
    /// The payout account it is taken from.
    pub account_id: String,
    pub amount: String,
    pub currency: String,
    /// new, sent, failed, paid or rejected.
    pub status: String,
    /// Why it failed or was rejected.
    pub reason: Option<String>,
    pub cash_payment_fact: Option<String>,
    pub sent_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub position: i64,
}

impl From<PayoutRow> for Payout {
    fn from(r: PayoutRow) -> Payout {
        Payout {
            id: r.id.to_string(),
            request_id: r.request_id.to_string(),
            client_id: r.client_id,
            account_id: r.account_id.to_string(),
            amount: money(r.amount),
            currency: r.currency,
            status: r.status,
            reason: r.reason,
            cash_payment_fact: r.cash_payment_fact.map(|c| c.to_string()),
            sent_at: r.sent_at.map(rfc3339),
            created_at: rfc3339(r.created_at),
            updated_at: rfc3339(r.updated_at),
            position: r.position,
        }
    }
}

/// The record of a payout sent: what left which account, when.
#[derive(SimpleObject)]
pub struct CashPaymentFact {
    pub id: String,
    pub payout_id: String,
    pub client_id: String,
    pub account_id: String,
    pub amount: String,
    pub currency: String,
    pub at: String,
    pub position: i64,
}

impl From<CashPaymentFactRow> for CashPaymentFact {
    fn from(r: CashPaymentFactRow) -> CashPaymentFact {
        CashPaymentFact {
            id: r.id.to_string(),
            payout_id: r.payout_id.to_string(),
            client_id: r.client_id,
            account_id: r.account_id.to_string(),
            amount: money(r.amount),
            currency: r.currency,
            at: rfc3339(r.at),
            position: r.position,
        }
    }
}

/// A movement of a payout account by a payout: sent (the amount left) or returned (a rejected
/// payout came back), with the account's posted balance around it.
#[derive(SimpleObject)]
pub struct PayoutMovement {
    pub position: i64,
    pub payout_id: String,
    /// sent or returned.
    pub action: String,
    pub account_id: String,
    pub amount: String,
    pub currency: String,
    pub balance_before: String,
    pub balance_after: String,
    pub at: String,
}

impl From<HistoryRow> for PayoutMovement {
    fn from(mut r: HistoryRow) -> PayoutMovement {
        // Postgres gives a zero back without its scale: shown at the amount's, the currency's.
        let scale = r.amount.scale();
        r.balance_before.rescale(scale);
        r.balance_after.rescale(scale);
        PayoutMovement {
            position: r.position,
            payout_id: r.payout_id.to_string(),
            action: r.action,
            account_id: r.account_id.to_string(),
            amount: money(r.amount),
            currency: r.currency,
            balance_before: money(r.balance_before),
            balance_after: money(r.balance_after),
            at: rfc3339(r.at),
        }
    }
}

fn filter(
    client: Option<String>,
    status: Option<&'static str>,
    from: Option<String>,
    to: Option<String>,
) -> Result<PayoutFilter> {
    let (from, to) = (parse_time("from", from)?, parse_time("to", to)?);
    if let (Some(from), Some(to)) = (from, to)
        && from > to
    {
        return Err(bad_input("from must not be after to"));
    }
    Ok(PayoutFilter { client_id: client, status: status.map(str::to_owned), from, to })
}

fn request_status(s: PayoutRequestStatus) -> &'static str {
    match s {
        PayoutRequestStatus::New => "new",
        PayoutRequestStatus::Done => "done",
        PayoutRequestStatus::Error => "error",
    }
}

fn payout_status(s: PayoutStatus) -> &'static str {
    match s {
        PayoutStatus::New => "new",
        PayoutStatus::Sent => "sent",
        PayoutStatus::Failed => "failed",
        PayoutStatus::Paid => "paid",
        PayoutStatus::Rejected => "rejected",
    }
}

/// Payouts.
#[derive(Default)]
pub struct PayoutsQuery;

#[Object]
impl PayoutsQuery {
    /// Payout requests in the order they were made, by client, status and time (`from`
    /// inclusive, `to` exclusive, RFC 3339).
    #[allow(clippy::too_many_arguments)]
    #[graphql(guard = "Reads(ledger_core::payouts::scope::READ)")]
    async fn payout_requests(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        client: Option<String>,
        status: Option<PayoutRequestStatus>,
        from: Option<String>,
        to: Option<String>,
        min_position: Option<i64>,
    ) -> Result<Connection<String, PayoutRequest>> {
        let limit = page_size(first)?;
        let after_position = parse_cursor(after)?;
        let filter = filter(client, status.map(request_status), from, to)?;
        wait_for(pool(ctx), Model::Payouts, min_position).await?;
        let mut conn = pool(ctx).acquire().await.map_err(internal)?;
        let rows = rm::requests(&mut conn, &filter, after_position, limit + 1).await.map_err(internal)?;
        Ok(page(rows, limit, after_position.is_some(), |r| (r.created_position.to_string(), r.into())))
    }

    /// Payouts in the order they were made, by client, status and time.
    #[allow(clippy::too_many_arguments)]
    #[graphql(guard = "Reads(ledger_core::payouts::scope::READ)")]
    async fn payouts(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        client: Option<String>,
        status: Option<PayoutStatus>,
        from: Option<String>,
        to: Option<String>,
        min_position: Option<i64>,
    ) -> Result<Connection<String, Payout>> {
        let limit = page_size(first)?;
        let after_position = parse_cursor(after)?;
        let filter = filter(client, status.map(payout_status), from, to)?;
        wait_for(pool(ctx), Model::Payouts, min_position).await?;
        let mut conn = pool(ctx).acquire().await.map_err(internal)?;
        let rows = rm::payouts(&mut conn, &filter, after_position, limit + 1).await.map_err(internal)?;
        Ok(page(rows, limit, after_position.is_some(), |r| (r.created_position.to_string(), r.into())))
    }

    /// Cash-payment-facts in log order, by client and time.
    #[allow(clippy::too_many_arguments)]
    #[graphql(guard = "Reads(ledger_core::payouts::scope::READ)")]
    async fn cash_payment_facts(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        client: Option<String>,
        from: Option<String>,
        to: Option<String>,
        min_position: Option<i64>,
    ) -> Result<Connection<String, CashPaymentFact>> {
        let limit = page_size(first)?;
        let after_position = parse_cursor(after)?;
        let filter = filter(client, None, from, to)?;
        wait_for(pool(ctx), Model::Payouts, min_position).await?;
        let mut conn = pool(ctx).acquire().await.map_err(internal)?;
        let rows = rm::cash_payment_facts(&mut conn, &filter, after_position, limit + 1).await.map_err(internal)?;
        Ok(page(rows, limit, after_position.is_some(), |r| (r.position.to_string(), r.into())))
    }

    /// A client's payout history in log order: each payout sent or returned, with the payout
    /// account's balance before and after.
    #[graphql(guard = "Reads(ledger_core::payouts::scope::READ)")]
    async fn payout_history(
        &self,
        ctx: &Context<'_>,
        client: String,
        first: Option<i32>,
        after: Option<String>,
        min_position: Option<i64>,
    ) -> Result<Connection<String, PayoutMovement>> {
        let limit = page_size(first)?;
        let after_position = parse_cursor(after)?;
        wait_for(pool(ctx), Model::Payouts, min_position).await?;
        let mut conn = pool(ctx).acquire().await.map_err(internal)?;
        let rows = rm::history(&mut conn, &client, after_position, limit + 1).await.map_err(internal)?;
        Ok(page(rows, limit, after_position.is_some(), |r| (r.position.to_string(), r.into())))
    }
}
