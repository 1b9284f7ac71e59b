//! The payout handlers: intake (the cheapest write there is: the request is recorded, nothing
//! else), a request as it stands from the writer's memory, and one run of a gate.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use ledger_core::payouts::scope::{GATE, READ, REQUEST};
use ledger_core::payouts::state::{Payout, Request};
use ledger_core::payouts::{Command, PAYOUT_KIND, REQUEST_KIND};
use ledger_core::{Entity, PayoutId, PayoutRequestId};

use super::wire::*;
use crate::body::Json;
use crate::error::{ApiError, Problem};
use crate::handler::{json, meta, require};
use crate::{ApiState, RequestId};

/// What a gate takes at a time when the caller does not say.
pub const DEFAULT_GATE_LIMIT: u32 = 1000;

fn internal(what: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(format!("{what} row: {e}"))
}

#[utoipa::path(post, path = "/v1/payouts/requests", tag = "payouts", request_body = PayoutRequestBody,
    responses((status = 202, body = RequestAccepted, description = "Recorded; the request gate plans it later (a retry answers the same)"),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("api_key" = [])))]
pub async fn request(
    State(state): State<ApiState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    Json(body): Json<PayoutRequestBody>,
) -> Result<Response, ApiError> {
    // A client's back office may hold `payouts:request:{client_id}`: its own clients only.
    let who = require(&state, &headers, REQUEST.of(&body.client_id)).await?;
    let command = Command::Request { id: PayoutRequestId(body.id), client_id: body.client_id };
    let c = state.inner.ledger.submit(command, meta(&who, &headers, request_id)?).await??;
    Ok(json(StatusCode::ACCEPTED, RequestAccepted { id: body.id, status: "new", position: c.position }))
}

#[utoipa::path(get, path = "/v1/payouts/requests/{id}", tag = "payouts", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = PayoutRequestView, description = "From the writer's memory, as of the last commit"),
        (status = 404, body = Problem)),
    security(("api_key" = [])))]
pub async fn get_request(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require(&state, &headers, READ).await?;
    let not_found = || ApiError::NotFound("payout request");
    let id = uuid::Uuid::parse_str(&id).map_err(|_| not_found())?;
    let view = state.inner.ledger.view();
    let (row, position) = view.entity(id).filter(|(row, _)| row.kind == REQUEST_KIND).ok_or_else(not_found)?;
    let request = row.typed::<Request>().map_err(|e| internal(REQUEST_KIND, e))?;
    let mut payouts = Vec::with_capacity(request.payouts.len());
    for PayoutId(id) in &request.payouts {
        let (row, _) = view.entity(*id).ok_or_else(|| internal(PAYOUT_KIND, "missing"))?;
        payouts.push(Payout::clone(&*row.typed::<Payout>().map_err(|e| internal(PAYOUT_KIND, e))?));
    }
    let currencies = state.inner.ledger.currencies();
    let scale =
        |code: &str| ledger_core::CurrencyCode::parse(code).ok().and_then(|c| currencies.scale(&c)).unwrap_or(2);
    Ok(json(StatusCode::OK, PayoutRequestView::new(&request, &payouts, position, scale)))
}

#[utoipa::path(post, path = "/v1/payouts/gates/{gate}", tag = "payouts", request_body = GateRequest,
    params(("gate" = String, Path, description = "`plan`: the request gate; `send`: the ERP gate", pattern = "^(plan|send)$")),
    responses((status = 200, body = GateRun), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("api_key" = [])))]
pub async fn gate(
    State(state): State<ApiState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    Path(gate): Path<String>,
    Json(body): Json<GateRequest>,
) -> Result<Response, ApiError> {
    let who = require(&state, &headers, GATE).await?;
    let limit = body.limit.unwrap_or(DEFAULT_GATE_LIMIT);
    let command = match gate.as_str() {
        "plan" => Command::PlanNew { limit },
        "send" => Command::SendNew { limit },
        _ => return Err(ApiError::NotFound("gate")),
    };
    let c = state.inner.ledger.submit(command, meta(&who, &headers, request_id)?).await??;
    debug_assert!(!matches!(c.entity, Some(Entity::Row(_))), "a gate answers with no entity");
    Ok(json(StatusCode::OK, GateRun { changed: !c.replayed, position: c.position }))
}
