//! The reconciliation's handlers: providers (`recon:admin` to set, `recon:read` to read) and
//! fund movements (`recon:move` to ask for one, `recon:read` to read). Each turns the body into
//! the core's command and answers with the entity as committed; the provider's balances are the
//! writer's memory of its accounts at the moment of the answer.

use std::str::FromStr;
use std::sync::Arc;

use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use ledger_core::recon::scope::{ADMIN, MOVE, READ};
use ledger_core::recon::state::{Movement, Provider};
use ledger_core::recon::{
    Command, MOVEMENT_KIND, MoveMoney, PROVIDER_KIND, Rejection, SetProvider, movement_entity, operational_account,
    provider_entity, transactional_account,
};
use ledger_core::{AccountRef, CurrencyCode, MovementId};
use rust_decimal::Decimal;
use serde::Deserialize;

use super::wire::*;
use crate::body::Json;
use crate::entity::{answered, committed, submit, typed};
use crate::error::{ApiError, Problem};
use crate::handler::{created, json, meta, require};
use crate::{ApiState, RequestId};

fn provider_of(state: &ApiState, id: &str) -> Result<Option<(Arc<Provider>, i64)>, ApiError> {
    committed(state, provider_entity(id).id, PROVIDER_KIND)
}

fn movement_of(state: &ApiState, id: MovementId) -> Result<Option<(Arc<Movement>, i64)>, ApiError> {
    committed(state, movement_entity(id).id, MOVEMENT_KIND)
}

fn at_scale(state: &ApiState, currency: &CurrencyCode, mut d: Decimal) -> String {
    d.rescale(state.inner.ledger.currencies().scale(currency).unwrap_or(2));
    d.to_string()
}

/// A provider's balances, as the writer's memory holds its accounts and the players' sum.
fn balances(state: &ApiState, p: &Provider) -> ReconProviderBalances {
    let view = state.inner.ledger.view();
    let (transactional, operational) = (transactional_account(&p.id).0, operational_account(&p.id).0);
    let account = |id| view.account(&AccountRef::Id(id)).map(|a| a.account);
    let (held, available) =
        account(transactional).map_or((Decimal::ZERO, Decimal::ZERO), |a| (a.balance(), a.available()));
    let operational_balance = account(operational).map_or(Decimal::ZERO, |a| a.balance());
    let players = view.attributed_to(&p.id, &p.currency);
    let text = |d| at_scale(state, &p.currency, d);
    ReconProviderBalances {
        transactional: text(held),
        transactional_available: text(available),
        operational: text(operational_balance),
        players: text(players),
        difference: text(held - players),
        transactional_account: transactional.0,
        operational_account: operational.0,
    }
}

fn provider_body(state: &ApiState, p: &Provider, position: i64) -> ReconProviderBody {
    ReconProviderBody::new(p, balances(state, p), position)
}

#[utoipa::path(put, path = "/v1/recon/providers/{id}", tag = "recon", request_body = ReconProviderRequest,
    params(("id" = String, Path, description = "The provider's id: 1 to 64 of A-Z a-z 0-9 . _ -")),
    responses((status = 200, body = ReconProviderBody, description = "Created (with its two accounts) or changed, or the same fields again"),
        (status = 409, body = Problem, description = "currency_fixed"),
        (status = 422, body = Problem, description = "invalid_provider_id, invalid_name, invalid_base_url, invalid_tolerance, unknown_currency")),
    security(("api_key" = [])))]
pub async fn put_recon_provider(
    State(state): State<ApiState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<ReconProviderRequest>,
) -> Result<Response, ApiError> {
    let who = require(&state, &headers, ADMIN).await?;
    let currency = CurrencyCode::parse(&body.currency)
        .map_err(|_| ApiError::from(Rejection::Ledger(ledger_core::ledger::Rejection::UnknownCurrency)))?;
    let well_formed = !body.tolerance.is_empty() && body.tolerance.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    let tolerance = Decimal::from_str(&body.tolerance)
        .ok()
        .filter(|_| well_formed)
        .ok_or(ApiError::from(Rejection::InvalidTolerance))?;
    let command = SetProvider { id, name: body.name, currency, base_url: body.base_url, tolerance };
    let c = submit(&state, Command::SetProvider(command), meta(&who, &headers, request_id)?).await?;
    let provider: Arc<Provider> = typed(answered(&c)?)?;
    Ok(json(StatusCode::OK, provider_body(&state, &provider, c.position)))
}

#[utoipa::path(get, path = "/v1/recon/providers/{id}", tag = "recon", params(("id" = String, Path)),
    responses((status = 200, body = ReconProviderBody, description = "The provider with its balances now"),
        (status = 404, body = Problem, description = "provider_not_found")),
    security(("api_key" = [])))]
pub async fn get_recon_provider(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require(&state, &headers, READ).await?;
    let (provider, position) = provider_of(&state, &id)?.ok_or(ApiError::from(Rejection::ProviderNotFound))?;
    Ok(json(StatusCode::OK, provider_body(&state, &provider, position)))
}

#[utoipa::path(get, path = "/v1/recon/providers", tag = "recon",
    responses((status = 200, body = ReconProviderList, description = "Every provider by id, with its balances now")),
    security(("api_key" = [])))]
pub async fn list_providers(State(state): State<ApiState>, headers: HeaderMap) -> Result<Response, ApiError> {
    require(&state, &headers, READ).await?;
    let rows = state.inner.ledger.view().entities_keyed(PROVIDER_KIND, "");
    let mut providers = Vec::with_capacity(rows.len());
    for (row, position) in rows {
        let p: Arc<Provider> = typed(&row)?;
        providers.push(provider_body(&state, &p, position));
    }
    Ok(json(StatusCode::OK, ReconProviderList { providers }))
}

#[utoipa::path(post, path = "/v1/recon/movements", tag = "recon", request_body = MovementRequest,
    responses((status = 201, body = MovementBody, description = "Pending: the amount is held and the provider is asked to move it"),
        (status = 200, body = MovementBody, description = "The same body again: the movement as it stands"),
        (status = 404, body = Problem, description = "provider_not_found"),
        (status = 409, body = Problem, description = "movement_exists"),
        (status = 422, body = Problem, description = "segregation_breach (transactional would fall below the players' balances), insufficient_funds, invalid_reason, the amount")),
    security(("api_key" = [])))]
pub async fn create_movement(
    State(state): State<ApiState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    Json(body): Json<MovementRequest>,
) -> Result<Response, ApiError> {
    let who = require(&state, &headers, MOVE).await?;
    let command = MoveMoney {
        id: MovementId(body.id),
        provider: body.provider,
        direction: body.direction.into(),
        amount: body.amount.parse()?,
        reason: body.reason,
    };
    let c = submit(&state, Command::MoveMoney(command), meta(&who, &headers, request_id)?).await?;
    let movement: Arc<Movement> = typed(answered(&c)?)?;
    Ok(json(created(&c), MovementBody::new(&movement, c.position)))
}

#[utoipa::path(get, path = "/v1/recon/movements/{id}", tag = "recon", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = MovementBody, description = "The movement with every call to the provider"),
        (status = 404, body = Problem, description = "movement_not_found")),
    security(("api_key" = [])))]
pub async fn get_movement(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require(&state, &headers, READ).await?;
    let id = uuid::Uuid::parse_str(&id).map_err(|_| ApiError::from(Rejection::MovementNotFound))?;
    let (movement, position) =
        movement_of(&state, MovementId(id))?.ok_or(ApiError::from(Rejection::MovementNotFound))?;
    Ok(json(StatusCode::OK, MovementBody::new(&movement, position)))
}

/// Which provider's movements to list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MovementsQuery {
    /// The provider's id.
    pub provider: String,
}

/// The most movements one list answers.
const MAX_LISTED: usize = 1000;

#[utoipa::path(get, path = "/v1/recon/movements", tag = "recon", params(MovementsQuery),
    responses((status = 200, body = MovementList, description = "The provider's movements, newest first (at most 1000)"),
        (status = 400, body = Problem, description = "invalid_query: no provider, or a parameter it does not take"),
        (status = 404, body = Problem, description = "provider_not_found")),
    security(("api_key" = [])))]
pub async fn list_movements(
    State(state): State<ApiState>,
    headers: HeaderMap,
    query: Result<Query<MovementsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    require(&state, &headers, READ).await?;
    let Query(query) = query.map_err(|e| ApiError::InvalidQuery(e.body_text()))?;
    provider_of(&state, &query.provider)?.ok_or(ApiError::from(Rejection::ProviderNotFound))?;
    let prefix = format!("{}/", query.provider);
    let mut movements = Vec::new();
    for (row, position) in state.inner.ledger.view().entities_keyed(MOVEMENT_KIND, &prefix) {
        let m: Arc<Movement> = typed(&row)?;
        movements.push((m.created_at, MovementBody::new(&m, position)));
    }
    movements.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| b.1.id.cmp(&a.1.id)));
    movements.truncate(MAX_LISTED);
    Ok(json(StatusCode::OK, MovementList { movements: movements.into_iter().map(|(_, m)| m).collect() }))
}
