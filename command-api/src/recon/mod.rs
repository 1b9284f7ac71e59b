//! The reconciliation's endpoints (seed 000): payment providers with their transactional and
//! operational balances beside what the players are owed, and fund movements between the two;
//! their OpenAPI part and the table that maps the reconciliation's rejections to HTTP.

pub mod items;
pub mod routes;
pub mod runs;
pub mod runs_wire;
pub mod schedules;
pub mod wire;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use ledger_core::recon::Rejection;
use utoipa::OpenApi;

use crate::ApiState;
use crate::error::{ApiError, Refusal};
use crate::openapi::{At, Link, Text};
use wire::*;

/// The reconciliation's routes.
pub fn router() -> Router<ApiState> {
    Router::new()
        .route("/v1/recon/providers", get(routes::list_providers))
        .route("/v1/recon/providers/{id}", put(routes::put_recon_provider).get(routes::get_recon_provider))
        .route("/v1/recon/movements", post(routes::create_movement).get(routes::list_movements))
        .route("/v1/recon/movements/{id}", get(routes::get_movement))
        .route("/v1/recon/rules", get(runs::list_rules))
        .route("/v1/recon/rules/{name}", put(runs::put_rule))
        .route("/v1/recon/runs", post(runs::start_run).get(runs::list_runs))
        .route("/v1/recon/runs/{id}", get(runs::get_run))
        .route("/v1/recon/runs/{id}/items", get(items::run_items))
        .route("/v1/recon/items/{id}/resolve", post(items::resolve_item))
        .route("/v1/recon/schedules", get(schedules::list_schedules))
        .route("/v1/recon/schedules/{id}", put(schedules::put_schedule))
}

/// The reconciliation's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    paths(
        routes::list_providers,
        routes::put_recon_provider,
        routes::get_recon_provider,
        routes::create_movement,
        routes::list_movements,
        routes::get_movement,
        runs::put_rule,
        runs::list_rules,
        runs::start_run,
        runs::get_run,
        runs::list_runs,
        items::run_items,
        items::resolve_item,
        schedules::put_schedule,
        schedules::list_schedules
    ),
    components(schemas(
        ReconProviderRequest,
        ReconProviderBalances,
        ReconProviderBody,
        ReconProviderList,
        WireDirection,
        MovementRequest,
        WireMovementStatus,
        AttemptBody,
        MovementBody,
        MovementList,
        runs_wire::WireStrategy,
        runs_wire::CriterionBody,
        runs_wire::RuleRequest,
        runs_wire::RuleBody,
        runs_wire::RuleList,
        runs_wire::RunRequest,
        runs_wire::WireRunStatus,
        runs_wire::TotalsBody,
        runs_wire::RunBody,
        runs_wire::RunList,
        items::SideBody,
        items::ItemBody,
        items::ItemPage,
        items::ReconResolveRequest,
        items::WireResolution,
        schedules::ScheduleRequest,
        schedules::ScheduleBody,
        schedules::ScheduleList
    ))
)]
pub struct Doc;

/// The texts the reconciliation's requests carry, by the core's rules.
pub const TEXTS: &[(At, Text)] = &[
    (At::Property("ReconProviderRequest", "currency"), Text::Currency),
    (At::Property("MovementRequest", "provider"), Text::Participant),
    (At::Property("MovementRequest", "reason"), Text::Reason),
    (At::Parameter("put_recon_provider", "id"), Text::Participant),
    (At::Parameter("get_recon_provider", "id"), Text::Participant),
    (At::Property("RunRequest", "provider"), Text::Participant),
    (At::Property("ReconResolveRequest", "reason"), Text::Reason),
    (At::Property("ScheduleRequest", "provider"), Text::Participant),
    (At::Parameter("put_schedule", "id"), Text::Participant),
    (At::Property("ReconResolveRequest", "counterpart"), Text::Reference),
    (At::Parameter("list_movements", "provider"), Text::Participant),
    (At::Parameter("list_runs", "provider"), Text::Participant),
];

const ID: &[(&str, &str)] = &[("id", "$response.body#/id")];

/// From a provider or a movement to its other routes.
pub const LINKS: &[Link] = &[
    Link { from: "put_recon_provider", to: "get_recon_provider", parameters: ID, body: &[] },
    Link { from: "get_recon_provider", to: "put_recon_provider", parameters: ID, body: &[] },
    Link { from: "create_movement", to: "get_movement", parameters: ID, body: &[] },
    Link { from: "start_run", to: "get_run", parameters: ID, body: &[] },
    Link { from: "start_run", to: "run_items", parameters: ID, body: &[] },
    Link { from: "list_rules", to: "put_rule", parameters: &[("name", "$response.body#/rules/0/name")], body: &[] },
    Link {
        from: "list_schedules",
        to: "put_schedule",
        parameters: &[("id", "$response.body#/schedules/0/id")],
        body: &[],
    },
    Link { from: "run_items", to: "resolve_item", parameters: &[("id", "$response.body#/items/0/id")], body: &[] },
];

/// HTTP status of each reconciliation rejection: 404 for what does not exist, 409 for a
/// conflict with what is recorded, 422 for everything else (the ledger's own rules by the
/// ledger's table).
pub fn rejection_status(r: Rejection) -> StatusCode {
    use Rejection::*;
    match r {
        ProviderNotFound | MovementNotFound | RunNotFound | RuleNotFound | ScheduleNotFound => StatusCode::NOT_FOUND,
        CurrencyFixed | MovementExists | MovementSettled | RunInProgress | RunExists | RunNotRunning | ItemClosed
        | ScheduleNotDue => StatusCode::CONFLICT,
        InvalidProviderId | InvalidName | InvalidBaseUrl | InvalidTolerance | InvalidReason | SegregationBreach
        | InvalidRuleName | InvalidRule | InvalidRules | InvalidAsOf | InvalidCounterpart | InvalidScheduleId
        | InvalidCron => StatusCode::UNPROCESSABLE_ENTITY,
        Ledger(r) => crate::ledger::rejection_status(r),
    }
}

/// A reconciliation rejection as the API answers it.
pub fn refusal(r: Rejection) -> Refusal {
    Refusal { status: rejection_status(r), code: r.code(), detail: r.to_string() }
}

impl From<Rejection> for ApiError {
    fn from(r: Rejection) -> Self {
        ApiError::Rejected(refusal(r))
    }
}
