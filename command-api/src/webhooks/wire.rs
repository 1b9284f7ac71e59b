//! Request and response bodies of the webhook endpoints. A secret appears in one answer only:
//! the one that creates it (creation, rotation).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;
use utoipa::openapi::{Array, ArrayBuilder, ObjectBuilder, Type};
use uuid::Uuid;

/// An endpoint to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpointRequest {
    /// `https://…` (plain `http://` and loopback or private addresses only with the runtime
    /// setting `webhooks.allow_private`).
    #[schema(
        pattern = "^https?://[^\\s@/?#]+([/?#][^\\s]*)?$",
        min_length = 8,
        max_length = 2048,
        example = "https://hooks.example.com/ledger"
    )]
    pub url: String,
    /// Event types (`GET /v1/webhooks/event-types`), `{domain}.*`, or `*` for all.
    #[schema(schema_with = event_type_list)]
    pub event_types: Vec<String>,
    /// What it is for: not blank, at most 500 characters, no control characters.
    #[serde(default)]
    #[schema(example = "ERP")]
    pub description: Option<String>,
}

fn event_type_list() -> Array {
    let item = ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(r"^(\*|[a-z][a-z_]*\.(\*|[a-z][a-z_]*))$"))
        .max_length(Some(128));
    ArrayBuilder::new()
        .items(item)
        .min_items(Some(1))
        .max_items(Some(ledger_core::webhook::MAX_EVENT_TYPES))
        .examples([serde_json::json!(["ledger.transfer_posted", "audit.critical"])])
        .build()
}

/// An endpoint as stored (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointView {
    pub id: Uuid,
    pub url: String,
    pub event_types: Vec<String>,
    pub description: Option<String>,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub created: String,
}

/// An endpoint just created, with its signing secret shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedEndpoint {
    pub id: Uuid,
    pub url: String,
    pub event_types: Vec<String>,
    pub description: Option<String>,
    #[schema(format = DateTime)]
    pub created: String,
    /// `whsec_<base64>`: verify each message's `webhook-signature` with it (Standard Webhooks).
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub secret: String,
}

/// Every endpoint, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointList {
    pub endpoints: Vec<EndpointView>,
}

/// A new secret; the one before it goes on signing beside it for 24 hours.
#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedSecret {
    pub id: Uuid,
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub secret: String,
}

/// Which failed messages to send again.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoverRequest {
    /// RFC 3339: the failed messages made since then are sent again.
    #[schema(format = DateTime, example = "2026-12-01T00:00:00Z")]
    pub since: String,
}

/// How many messages go again.
#[derive(Debug, Serialize, ToSchema)]
pub struct Recovered {
    pub requeued: u64,
}

/// A message.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageView {
    /// Its `webhook-id`.
    pub id: Uuid,
    pub endpoint_id: Uuid,
    pub event_type: String,
    /// The position in the log of the event it tells of.
    pub position: i64,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: i32,
    /// RFC 3339: when the next attempt is due (while pending).
    #[schema(format = DateTime)]
    pub next_attempt: Option<String>,
    #[schema(format = DateTime)]
    pub created: String,
    #[schema(format = DateTime)]
    pub finished: Option<String>,
}

/// One attempt to deliver a message.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptView {
    pub message_id: Uuid,
    /// 1 for the first attempt.
    pub attempt: i32,
    pub event_type: String,
    #[schema(format = DateTime)]
    pub at: String,
    /// The receiver's HTTP status; null when it did not answer.
    pub status_code: Option<i32>,
    pub latency_ms: i32,
    /// Why it was not delivered (`answered 500`, a timeout, a refused connection …).
    pub error: Option<String>,
}

/// An endpoint's attempts, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptList {
    pub attempts: Vec<AttemptView>,
    /// Pass as `before` for the next page; null on the last one.
    pub next: Option<String>,
}

/// A message type endpoints may ask for.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventTypeView {
    /// `{domain}.{event}`, e.g. `ledger.transfer_posted`; audit entries by level: `audit.critical`.
    pub name: String,
    pub domain: String,
    /// The log's event type it comes from.
    pub event_type: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventTypeList {
    pub event_types: Vec<EventTypeView>,
}

pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

impl From<webhooks::Endpoint> for EndpointView {
    fn from(e: webhooks::Endpoint) -> EndpointView {
        EndpointView {
            id: e.id,
            url: e.url,
            event_types: e.event_types,
            description: e.description,
            created: rfc3339(e.created_at),
        }
    }
}

impl From<webhooks::Message> for MessageView {
    fn from(m: webhooks::Message) -> MessageView {
        MessageView {
            id: m.id,
            endpoint_id: m.endpoint_id,
            event_type: m.event_type,
            position: m.position,
            next_attempt: (m.status == "pending").then(|| rfc3339(m.next_at)),
            status: m.status,
            attempts: m.attempts,
            created: rfc3339(m.created_at),
            finished: m.finished_at.map(rfc3339),
        }
    }
}

impl From<webhooks::Attempt> for AttemptView {
    fn from(a: webhooks::Attempt) -> AttemptView {
        AttemptView {
            message_id: a.message_id,
            attempt: a.attempt,
            event_type: a.event_type,
            at: rfc3339(a.at),
            status_code: a.status_code,
            latency_ms: a.latency_ms,
            error: a.error,
        }
    }
}
