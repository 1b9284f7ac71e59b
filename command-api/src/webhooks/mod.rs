//! Outbound webhooks over HTTP (`/v1/webhooks/…`): endpoints and their secrets, messages sent
//! again, the attempts log and the event types; their OpenAPI part, the store's refusals as
//! HTTP, and what `/metrics` and `/healthz` tell of deliveries. The engine is the `webhooks`
//! crate's; without a secrets key these endpoints answer 503.

pub mod routes;
pub mod wire;

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use utoipa::OpenApi;
use webhooks::StoreError;

use crate::ApiState;
use crate::error::{ApiError, Refusal};
use wire::*;

/// The texts the webhook requests carry: an endpoint's description is a reason's text.
pub const TEXTS: &[(crate::openapi::At, crate::openapi::Text)] =
    &[(crate::openapi::At::Property("CreateEndpointRequest", "description"), crate::openapi::Text::Reason)];

/// What an endpoint's answers lead to.
pub const LINKS: &[crate::openapi::Link] = &[
    crate::openapi::Link {
        from: "create_endpoint",
        to: "get_endpoint",
        parameters: &[("id", "$response.body#/id")],
        body: &[],
    },
    crate::openapi::Link {
        from: "create_endpoint",
        to: "list_attempts",
        parameters: &[("id", "$response.body#/id")],
        body: &[],
    },
    crate::openapi::Link {
        from: "create_endpoint",
        to: "rotate_secret",
        parameters: &[("id", "$response.body#/id")],
        body: &[],
    },
    crate::openapi::Link {
        from: "create_endpoint",
        to: "recover_endpoint",
        parameters: &[("id", "$response.body#/id")],
        body: &[],
    },
    crate::openapi::Link {
        from: "create_endpoint",
        to: "delete_endpoint",
        parameters: &[("id", "$response.body#/id")],
        body: &[],
    },
    crate::openapi::Link {
        from: "list_attempts",
        to: "get_message",
        parameters: &[("id", "$response.body#/attempts/0/message_id")],
        body: &[],
    },
    crate::openapi::Link {
        from: "list_attempts",
        to: "retry_message",
        parameters: &[("id", "$response.body#/attempts/0/message_id")],
        body: &[],
    },
];

pub fn router() -> Router<ApiState> {
    Router::new()
        .route("/v1/webhooks/endpoints", post(routes::create_endpoint).get(routes::list_endpoints))
        .route("/v1/webhooks/endpoints/{id}", get(routes::get_endpoint).delete(routes::delete_endpoint))
        .route("/v1/webhooks/endpoints/{id}/rotate-secret", post(routes::rotate_secret))
        .route("/v1/webhooks/endpoints/{id}/recover", post(routes::recover_endpoint))
        .route("/v1/webhooks/endpoints/{id}/attempts", get(routes::list_attempts))
        .route("/v1/webhooks/messages/{id}", get(routes::get_message))
        .route("/v1/webhooks/messages/{id}/retry", post(routes::retry_message))
        .route("/v1/webhooks/event-types", get(routes::list_event_types))
}

/// The webhooks' part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    paths(
        routes::create_endpoint,
        routes::list_endpoints,
        routes::get_endpoint,
        routes::delete_endpoint,
        routes::rotate_secret,
        routes::recover_endpoint,
        routes::list_attempts,
        routes::get_message,
        routes::retry_message,
        routes::list_event_types
    ),
    components(schemas(
        CreateEndpointRequest,
        CreatedEndpoint,
        EndpointView,
        EndpointList,
        RotatedSecret,
        RecoverRequest,
        Recovered,
        MessageView,
        AttemptView,
        AttemptList,
        EventTypeView,
        EventTypeList
    ))
)]
pub struct Doc;

fn refused(status: StatusCode, code: &'static str, detail: String) -> ApiError {
    ApiError::Rejected(Refusal { status, code, detail })
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let unprocessable = |code| refused(StatusCode::UNPROCESSABLE_ENTITY, code, e.to_string());
        match &e {
            StoreError::NotAllowed(why) => refused(
                StatusCode::UNPROCESSABLE_ENTITY,
                "endpoint_not_allowed",
                format!("endpoint not allowed: {why}"),
            ),
            StoreError::Unresolvable(_) => unprocessable("endpoint_not_allowed"),
            StoreError::Filter(_) => unprocessable("unknown_event_type"),
            StoreError::Description => unprocessable("invalid_description"),
            StoreError::TooMany => unprocessable("too_many"),
            StoreError::Secret(_) | StoreError::Database(_) => ApiError::Internal(e.to_string()),
        }
    }
}

/// `/healthz` and `/metrics` of the delivery engine.
pub struct Deliveries(pub Arc<webhooks::Metrics>);

impl crate::Report for Deliveries {
    fn name(&self) -> &'static str {
        "webhooks"
    }

    fn health(&self) -> serde_json::Value {
        let m = &self.0;
        let depth = m.depth.lock().map(|d| d.iter().map(|(_, n)| n).sum::<i64>()).unwrap_or(0);
        serde_json::json!({
            "delivering": m.active.load(Ordering::Relaxed),
            "pending": depth,
            "delivered": m.delivered.load(Ordering::Relaxed),
            "failed": m.failed.load(Ordering::Relaxed),
        })
    }

    fn metrics(&self, out: &mut String) {
        let m = &self.0;
        out.push_str("# HELP ledger_webhook_deliveries_total Webhook attempts by outcome: delivered, retried (failed, tried again), failed (undelivered for good).\n");
        out.push_str("# TYPE ledger_webhook_deliveries_total counter\n");
        for (outcome, n) in [("delivered", &m.delivered), ("retried", &m.retried), ("failed", &m.failed)] {
            let _ =
                writeln!(out, "ledger_webhook_deliveries_total{{outcome=\"{outcome}\"}} {}", n.load(Ordering::Relaxed));
        }
        out.push_str("# HELP ledger_webhook_attempt_seconds Time spent on webhook attempts.\n");
        out.push_str("# TYPE ledger_webhook_attempt_seconds summary\n");
        let micros = m.latency_micros.load(Ordering::Relaxed);
        let _ = writeln!(out, "ledger_webhook_attempt_seconds_sum {}.{:06}", micros / 1_000_000, micros % 1_000_000);
        let _ = writeln!(out, "ledger_webhook_attempt_seconds_count {}", m.attempts.load(Ordering::Relaxed));
        out.push_str("# HELP ledger_webhook_queue_depth Pending webhook messages per endpoint.\n");
        out.push_str("# TYPE ledger_webhook_queue_depth gauge\n");
        if let Ok(depth) = m.depth.lock() {
            for (endpoint, n) in depth.iter() {
                let _ = writeln!(out, "ledger_webhook_queue_depth{{endpoint=\"{endpoint}\"}} {n}");
            }
        }
        out.push_str("# HELP ledger_webhook_delivering Whether this process delivers webhooks (1) or stands by (0).\n");
        out.push_str("# TYPE ledger_webhook_delivering gauge\n");
        let _ = writeln!(out, "ledger_webhook_delivering {}", u8::from(m.active.load(Ordering::Relaxed)));
    }
}
