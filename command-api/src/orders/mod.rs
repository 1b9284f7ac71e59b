//! The P2P orders' endpoints (seed 003): participants (stores, traders, requisites:
//! `routes::participants`), orders and their transitions (`routes::orders`); their OpenAPI part
//! and the table that maps the orders domain's rejections to HTTP.

pub mod routes;
pub mod wire;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use ledger_core::orders::Rejection;
use utoipa::OpenApi;

use routes::{orders, participants};

use crate::ApiState;
use crate::error::{ApiError, Refusal};
use crate::openapi::{At, Link, Text};
use wire::*;

/// The orders' routes.
pub fn router() -> Router<ApiState> {
    Router::new()
        .route("/v1/orders/stores/{id}", put(participants::put_store).get(participants::get_store))
        .route("/v1/orders/stores/{id}/rotate-secret", post(participants::rotate_store_secret))
        .route("/v1/orders/traders/{id}", put(participants::put_trader).get(participants::get_trader))
        .route("/v1/orders/traders/{id}/traffic", post(participants::traffic))
        .route("/v1/orders/traders/{id}/requisites/{requisite_id}", put(participants::put_requisite))
        .route("/v1/orders", post(orders::create))
        .route("/v1/orders/{id}", get(orders::get_order))
        .route("/v1/orders/{id}/complete", post(orders::complete))
        .route("/v1/orders/{id}/fail", post(orders::fail))
        .route("/v1/orders/{id}/cancel", post(orders::cancel))
        .route("/v1/orders/{id}/approve", post(orders::approve))
        .route("/v1/orders/{id}/deny", post(orders::deny))
        .route("/v1/orders/{id}/dispute", post(orders::dispute))
        .route("/v1/orders/{id}/resolve", post(orders::resolve))
}

/// The orders' part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    paths(
        participants::put_store,
        participants::get_store,
        participants::rotate_store_secret,
        participants::put_trader,
        participants::get_trader,
        participants::traffic,
        participants::put_requisite,
        orders::create,
        orders::get_order,
        orders::complete,
        orders::fail,
        orders::cancel,
        orders::approve,
        orders::deny,
        orders::dispute,
        orders::resolve
    ),
    components(schemas(
        StoreRequest,
        StoreBody,
        WireCurrency,
        TraderRequest,
        TrafficRequest,
        TraderAccounts,
        TraderBody,
        RequisiteRequest,
        RequisiteBody,
        OrderType,
        OrderRequest,
        EmptyRequest,
        ReasonRequest,
        DisputeRequest,
        ResolveOutcome,
        ResolveRequest,
        AssignmentBody,
        OrderBody
    ))
)]
pub struct Doc;

/// The texts the orders' requests carry, by the core's rules.
pub const TEXTS: &[(At, Text)] = &[
    (At::Property("StoreRequest", "name"), Text::Reference),
    (At::Property("StoreRequest", "settlement_currency"), Text::Currency),
    (At::Property("TraderRequest", "team_lead"), Text::Participant),
    (At::Property("RequisiteRequest", "method"), Text::Reference),
    (At::Property("RequisiteRequest", "bank"), Text::Reference),
    (At::Property("RequisiteRequest", "currency"), Text::Currency),
    (At::Property("OrderRequest", "store_id"), Text::Participant),
    (At::Property("OrderRequest", "external_order_id"), Text::Reference),
    (At::Property("OrderRequest", "currency"), Text::Currency),
    (At::Property("OrderRequest", "method"), Text::Reference),
    (At::Property("OrderRequest", "trader_id"), Text::Participant),
    (At::Property("ReasonRequest", "reason"), Text::Reason),
    (At::Property("DisputeRequest", "reason"), Text::Reason),
    (At::Property("ResolveRequest", "reason"), Text::Reason),
    (At::Parameter("put_store", "id"), Text::Participant),
    (At::Parameter("get_store", "id"), Text::Participant),
    (At::Parameter("rotate_store_secret", "id"), Text::Participant),
    (At::Parameter("put_trader", "id"), Text::Participant),
    (At::Parameter("get_trader", "id"), Text::Participant),
    (At::Parameter("traffic", "id"), Text::Participant),
    (At::Parameter("put_requisite", "id"), Text::Participant),
    (At::Parameter("put_requisite", "requisite_id"), Text::Participant),
];

const ID: &[(&str, &str)] = &[("id", "$response.body#/id")];

/// From a new order to what can be done with it, and from a participant to its other routes.
pub const LINKS: &[Link] = &[
    Link { from: "create_order", to: "get_order", parameters: ID, body: &[] },
    Link { from: "create_order", to: "complete_order", parameters: ID, body: &[] },
    Link { from: "create_order", to: "fail_order", parameters: ID, body: &[] },
    Link { from: "create_order", to: "cancel_order", parameters: ID, body: &[] },
    Link { from: "create_order", to: "approve_order", parameters: ID, body: &[] },
    Link { from: "create_order", to: "deny_order", parameters: ID, body: &[] },
    Link { from: "create_order", to: "dispute_order", parameters: ID, body: &[] },
    Link { from: "create_order", to: "resolve_order", parameters: ID, body: &[] },
    Link { from: "put_store", to: "get_store", parameters: ID, body: &[] },
    Link { from: "put_store", to: "rotate_store_secret", parameters: ID, body: &[] },
    Link { from: "get_store", to: "put_store", parameters: ID, body: &[] },
    Link { from: "put_trader", to: "get_trader", parameters: ID, body: &[] },
    Link { from: "put_trader", to: "traffic", parameters: ID, body: &[] },
    Link { from: "get_trader", to: "put_trader", parameters: ID, body: &[] },
];

/// HTTP status of each orders rejection: 404 for what does not exist, 409 for a conflict with
/// what is recorded (a transition the order's status does not allow, another order under the
/// id), 422 for everything else (the ledger's own rules by the ledger's table).
pub fn rejection_status(r: Rejection) -> StatusCode {
    use Rejection::*;
    match r {
        StoreNotFound | TraderNotFound | OrderNotFound => StatusCode::NOT_FOUND,
        OrderExists | InvalidOrderState | SettlementCurrencyFixed | NotTheTeamLead => StatusCode::CONFLICT,
        InvalidParticipantId | InvalidFee | InvalidReference | InvalidCallbackUrl | InvalidLimits | InvalidReason
        | TooManyCurrencies | NoExchangeRate | AmountTooSmall | NoRequisiteAvailable | OrderExpired
        | DisputeWindowClosed => StatusCode::UNPROCESSABLE_ENTITY,
        Ledger(r) => crate::ledger::rejection_status(r),
    }
}

/// An orders rejection as the API answers it.
pub fn refusal(r: Rejection) -> Refusal {
    Refusal { status: rejection_status(r), code: r.code(), detail: r.to_string() }
}

impl From<Rejection> for ApiError {
    fn from(r: Rejection) -> Self {
        ApiError::Rejected(refusal(r))
    }
}
