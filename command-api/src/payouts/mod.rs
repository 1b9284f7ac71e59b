//! The payouts' endpoints (seed 001): request intake, a request as it stands, and the gates for
//! operators who run them apart from `ledger up`; their OpenAPI part and the table that maps
//! the payouts domain's rejections to HTTP.

pub mod routes;
pub mod wire;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use ledger_core::payouts::Rejection;
use utoipa::OpenApi;

use crate::ApiState;
use crate::error::{ApiError, Refusal};
use crate::openapi::{At, Link, Text};
use wire::*;

/// The payouts' routes.
pub fn router() -> Router<ApiState> {
    Router::new()
        .route("/v1/payouts/requests", post(routes::request))
        .route("/v1/payouts/requests/{id}", get(routes::get_request))
        .route("/v1/payouts/gates/{gate}", post(routes::gate))
}

/// The payouts' part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    paths(routes::request, routes::get_request, routes::gate),
    components(schemas(PayoutRequestBody, RequestAccepted, PayoutRequestView, PayoutView, GateRequest, GateRun))
)]
pub struct Doc;

/// The texts the payouts' requests carry, by the core's rules.
pub const TEXTS: &[(At, Text)] = &[(At::Property("PayoutRequestBody", "client_id"), Text::Reference)];

/// From a request taken to the request as it stands.
pub const LINKS: &[Link] =
    &[Link { from: "request", to: "get_request", parameters: &[("id", "$response.body#/id")], body: &[] }];

/// HTTP status of each payouts rejection: 404 for a payout that does not exist, 409 for a
/// conflict with what is recorded, 422 for everything else (the ledger's own rules by the
/// ledger's table).
pub fn rejection_status(r: Rejection) -> StatusCode {
    use Rejection::*;
    match r {
        PayoutNotFound => StatusCode::NOT_FOUND,
        ExistsWithDifferentFields | InvalidTransition => StatusCode::CONFLICT,
        InvalidClientId | InvalidLimit | InvalidReason => StatusCode::UNPROCESSABLE_ENTITY,
        Ledger(r) => crate::ledger::rejection_status(r),
    }
}

/// A payouts rejection as the API answers it.
pub fn refusal(r: Rejection) -> Refusal {
    Refusal { status: rejection_status(r), code: r.code(), detail: r.to_string() }
}

impl From<Rejection> for ApiError {
    fn from(r: Rejection) -> Self {
        ApiError::Rejected(refusal(r))
    }
}
