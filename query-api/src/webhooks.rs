//! Outbound webhooks' part of the GraphQL schema: an endpoint's attempts log, newest first,
//! read from the log's database where the delivery engine records it.

use async_graphql::connection::Connection;
use async_graphql::{Context, Object, Result, SimpleObject};

use crate::resolve::{Reads, bad_input, internal, log_pool, page, page_size, rfc3339};

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
        let rows = webhooks::store::attempts(log_pool(ctx), endpoint, before.as_ref(), limit + 1).await.map_err(
            |e| match e {
                webhooks::StoreError::Database(e) => internal(e),
                other => internal(sqlx::Error::Protocol(other.to_string())),
            },
        )?;
        Ok(page(rows, limit, before.is_some(), |a| (a.cursor().to_text(), a.into())))
    }
}
