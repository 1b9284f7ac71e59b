//! Outbound webhooks' part of the GraphQL schema, read from the log's database where the
//! delivery engine records it: an operator endpoint's attempts log, newest first, and an
//! order's callbacks (its delivery log through its store's endpoint), in log order.

use async_graphql::connection::Connection;
use async_graphql::{Context, Object, Result, SimpleObject};

use ledger_core::orders;

use crate::resolve::{
    Reads, ReadsSomeScope, bad_input, internal, log_pool, page, page_size, parse_cursor, require, rfc3339,
};

/// One attempt to deliver a webhook message.
#[derive(SimpleObject)]
pub struct WebhookAttempt {
    /// The message's `webhook-id`.
    pub message_id: String,
    /// 1 for the first attempt.
    pub attempt: i32,
    pub event_type: String,
    pub at: String,
    /// The receiver's HTTP status; none when it did not answer.
    pub status_code: Option<i32>,
    pub latency_ms: i32,
    /// Why it was not delivered.
    pub error: Option<String>,
}

impl From<webhooks::Attempt> for WebhookAttempt {
    fn from(a: webhooks::Attempt) -> WebhookAttempt {
        WebhookAttempt {
            message_id: a.message_id.to_string(),
            attempt: a.attempt,
            event_type: a.event_type,
            at: rfc3339(a.at),
            status_code: a.status_code,
            latency_ms: a.latency_ms,
            error: a.error,
        }
    }
}

/// One callback of an order: a message to its store's endpoint, with its attempts.
#[derive(SimpleObject)]
pub struct OrderCallback {
    /// The message's `webhook-id`.
    pub message_id: String,
    /// `orders.status_changed`.
    pub event_type: String,
    /// The position in the log of the status change it tells of.
    pub position: i64,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// Where it goes: the order's callback URL, else its store's.
    pub url: Option<String>,
    /// How many attempts were made.
    pub attempt_count: i32,
    /// The receiver's HTTP status at the last attempt; none before one, or without an answer.
    pub last_status_code: Option<i32>,
    /// When the next attempt is due (while pending).
    pub next_attempt: Option<String>,
    pub created: String,
    pub finished: Option<String>,
    /// Its attempts, the first first (at most the latest 50).
    pub attempts: Vec<WebhookAttempt>,
}

impl From<webhooks::Delivery> for OrderCallback {
    fn from(d: webhooks::Delivery) -> OrderCallback {
        let last_status_code = d.last_status_code();
        let m = d.message;
        OrderCallback {
            message_id: m.id.to_string(),
            event_type: m.event_type,
            position: m.position,
            next_attempt: (m.status == "pending").then(|| rfc3339(m.next_at)),
            status: m.status,
            url: d.url,
            attempt_count: m.attempts,
            last_status_code,
            created: rfc3339(m.created_at),
            finished: m.finished_at.map(rfc3339),
            attempts: d.attempts.into_iter().map(WebhookAttempt::from).collect(),
        }
    }
}

fn store_error(e: webhooks::StoreError) -> async_graphql::Error {
    match e {
        webhooks::StoreError::Database(e) => internal(e),
        other => internal(sqlx::Error::Protocol(other.to_string())),
    }
}

#[derive(Default)]
pub struct WebhooksQuery;

#[Object]
impl WebhooksQuery {
    /// An endpoint's delivery attempts, newest first.
    #[graphql(guard = "Reads(ledger_core::permission::platform::WEBHOOKS_READ)")]
    async fn webhook_attempts(
        &self,
        ctx: &Context<'_>,
        endpoint_id: String,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, WebhookAttempt>> {
        let limit = page_size(first)?;
        let endpoint = uuid::Uuid::parse_str(&endpoint_id).map_err(|_| bad_input("endpointId is not a UUID"))?;
        let before = match &after {
            Some(text) => Some(webhooks::Cursor::parse(text).ok_or_else(|| bad_input("after is not a cursor"))?),
            None => None,
        };
        let rows = webhooks::store::attempts(log_pool(ctx), endpoint, before.as_ref(), limit + 1)
            .await
            .map_err(store_error)?;
        Ok(page(rows, limit, before.is_some(), |a| (a.cursor().to_text(), a.into())))
    }

    /// An order's callbacks to its store (`orders.status_changed`), in the order of the status
    /// changes they tell of, each with its attempts. Needs `orders:read`, or `orders:read:{store}`
    /// for the order's store.
    #[graphql(guard = "ReadsSomeScope(orders::scope::READ)")]
    async fn order_callbacks(
        &self,
        ctx: &Context<'_>,
        order_id: String,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, OrderCallback>> {
        let limit = page_size(first)?;
        let id = uuid::Uuid::parse_str(&order_id).map_err(|_| bad_input("orderId is not a UUID"))?;
        let after = parse_cursor(after)?;
        let mut conn = log_pool(ctx).acquire().await.map_err(internal)?;
        let stored = ledger_store::log::entities(&mut conn, &[id]).await.map_err(internal)?;
        drop(conn);
        let order = stored
            .iter()
            .find(|s| s.row.kind == orders::ORDER_KIND)
            .and_then(|s| s.row.parse::<orders::state::Order>().ok());
        let Some(order) = order else {
            // No such order: only a key that reads every store's orders is told so (an empty log).
            require(ctx, &orders::scope::READ).await?;
            return Ok(Connection::new(false, false));
        };
        require(ctx, &orders::scope::READ.of(&order.store)).await?;
        let owner = orders::store_owner(&order.store);
        let rows = webhooks::store::deliveries(log_pool(ctx), &owner, &order.id.to_string(), after, limit + 1)
            .await
            .map_err(store_error)?;
        Ok(page(rows, limit, after.is_some(), |d| (d.message.position.to_string(), d.into())))
    }
}
