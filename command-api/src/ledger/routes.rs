//! The handlers: each authenticates, turns the body into a core command, submits it to the
//! writer and shapes the answer. No SQL and no business rules live here.

use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use ledger_core::ledger::{Command, Rejection};
use ledger_core::{AccountId, BatchMode, CurrencyCode, OpenAccount, TransferId};
use ledger_store::{Committed, Entity};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use super::rejection_status;
use super::wire::{
    AccountBody, AccountStatusRequest, BatchBody, BatchItem, BatchRequest, EventBody, EventPage, OpenAccountRequest,
    PostPendingRequest, ReverseRequest, TransferBody, TransferRequest, account_ref, limit_for,
};
use crate::body::{Json, OptionalJson};
use crate::error::{ApiError, Problem};
use crate::handler::{created, json, meta, require};
use crate::{ApiState, RequestId};
use ledger_core::ledger::scope::{ACCOUNTS_READ, ACCOUNTS_WRITE, EVENTS_READ, TRANSFERS_READ, TRANSFERS_WRITE};

fn transfer_body(c: &Committed) -> Result<TransferBody, ApiError> {
    match &c.entity {
        Some(Entity::Transfer(t)) => Ok(TransferBody::new(t, c.position)),
        _ => Err(ApiError::Internal("a transfer command answered without its transfer".to_owned())),
    }
}

fn path_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| ApiError::NotFound("transfer"))
}

#[utoipa::path(post, path = "/v1/accounts", tag = "accounts", request_body = OpenAccountRequest,
    responses((status = 201, body = AccountBody), (status = 200, description = "A retry of the same request", body = AccountBody),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, description = "account_code_exists, exists_with_different_fields", body = Problem),
        (status = 422, body = Problem)),
    security(("api_key" = [])))]
pub async fn open_account(
    State(state): State<ApiState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    Json(body): Json<OpenAccountRequest>,
) -> Result<Response, ApiError> {
    let who = require(&state, &headers, ACCOUNTS_WRITE).await?;
    let command = Command::OpenAccount(OpenAccount {
        id: AccountId(body.id.unwrap_or_else(Uuid::new_v4)),
        code: body.code,
        currency: CurrencyCode::parse(&body.currency).map_err(|_| Rejection::UnknownCurrency)?,
        kind: body.kind,
        limit: limit_for(body.kind, body.no_overdraft),
        metadata: body.metadata.unwrap_or_else(|| serde_json::json!({})),
    });
    let c = state.inner.ledger.submit(command, meta(&who, &headers, request_id)?).await??;
    match &c.entity {
        Some(Entity::Account(a)) => Ok(json(created(&c), AccountBody::new(a, c.position, scale(&state, a)))),
        _ => Err(ApiError::Internal("an account command answered without its account".to_owned())),
    }
}

fn account_answer(state: &ApiState, account: &ledger_core::AccountRef) -> Result<Response, ApiError> {
    let view = state.inner.ledger.view();
    // Read the head first: the account is then at least that fresh.
    let head = view.head();
    let found = view.account(account).ok_or(ApiError::NotFound("account"))?;
    let scale = scale(state, &found.account);
    Ok(json(StatusCode::OK, AccountBody::new(&found.account, head.max(found.position), scale)))
}

fn scale(state: &ApiState, account: &ledger_core::Account) -> u32 {
    state.inner.ledger.currencies().scale(&account.currency).unwrap_or(0)
}

#[utoipa::path(get, path = "/v1/accounts/{id}", tag = "accounts",
    params(("id" = String, Path, description = "Account id or code")),
    responses((status = 200, body = AccountBody), (status = 404, body = Problem)), security(("api_key" = [])))]
pub async fn get_account(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require(&state, &headers, ACCOUNTS_READ).await?;
    account_answer(&state, &account_ref(&id))
}

/// What `POST /v1/accounts/{id}/{action}` does to the account.
#[derive(Clone, Copy, Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatusAction {
    /// Transfers touching the account are refused with `account_frozen` until it is unfrozen.
    Freeze,
    Unfreeze,
    /// Final; needs a zero balance and no holds.
    Close,
}

#[utoipa::path(post, path = "/v1/accounts/{id}/{action}", tag = "accounts",
    request_body(content = Option<AccountStatusRequest>, description = "Optional: an empty body gives no reason"),
    params(("id" = String, Path, description = "Account id or code"),
        ("action" = StatusAction, Path, description = "freeze, unfreeze or close")),
    responses((status = 200, description = "The account with its new status; the same status again changes nothing", body = AccountBody),
        (status = 404, body = Problem),
        (status = 422, description = "account_closed, account_balance_not_zero, invalid_reason", body = Problem)),
    security(("api_key" = [])))]
pub async fn change_account_status(
    State(state): State<ApiState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    OptionalJson(body): OptionalJson<AccountStatusRequest>,
) -> Result<Response, ApiError> {
    let action: StatusAction =
        serde_json::from_value(serde_json::Value::String(action)).map_err(|_| ApiError::NotFound("route"))?;
    let who = require(&state, &headers, ACCOUNTS_WRITE).await?;
    let account = state.inner.ledger.view().account(&account_ref(&id)).ok_or(ApiError::NotFound("account"))?;
    let (id, reason) = (account.account.id, body.reason);
    let command = match action {
        StatusAction::Freeze => Command::FreezeAccount { id, reason },
        StatusAction::Unfreeze => Command::UnfreezeAccount { id, reason },
        StatusAction::Close => Command::CloseAccount { id, reason },
    };
    let c = state.inner.ledger.submit(command, meta(&who, &headers, request_id)?).await??;
    match &c.entity {
        Some(Entity::Account(a)) => Ok(json(StatusCode::OK, AccountBody::new(a, c.position, scale(&state, a)))),
        _ => Err(ApiError::Internal("an account command answered without its account".to_owned())),
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FindAccount {
    /// The account's unique code.
    code: String,
}

#[utoipa::path(get, path = "/v1/accounts", tag = "accounts", params(FindAccount),
    responses((status = 200, body = AccountBody), (status = 404, body = Problem)), security(("api_key" = [])))]
pub async fn find_account(
    State(state): State<ApiState>,
    headers: HeaderMap,
    query: Result<Query<FindAccount>, QueryRejection>,
) -> Result<Response, ApiError> {
    require(&state, &headers, ACCOUNTS_READ).await?;
    let Query(query) = query.map_err(|e| ApiError::InvalidQuery(e.body_text()))?;
    account_answer(&state, &ledger_core::AccountRef::Code(query.code))
}

#[utoipa::path(post, path = "/v1/transfers", tag = "transfers", request_body = TransferRequest,
    responses((status = 201, body = TransferBody), (status = 200, description = "A retry of the same request", body = TransferBody),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, description = "exists_with_different_fields", body = Problem),
        (status = 413, body = Problem), (status = 422, description = "insufficient_funds, unbalanced, amount_scale, …", body = Problem)),
    security(("api_key" = [])))]
pub async fn create_transfer(
    State(state): State<ApiState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    Json(body): Json<TransferRequest>,
) -> Result<Response, ApiError> {
    let who = require(&state, &headers, TRANSFERS_WRITE).await?;
    let command = Command::CreateTransfer(body.into_command()?);
    let c = state.inner.ledger.submit(command, meta(&who, &headers, request_id)?).await??;
    Ok(json(created(&c), transfer_body(&c)?))
}

#[utoipa::path(post, path = "/v1/transfers/batch", tag = "transfers", request_body = BatchRequest,
    responses((status = 200, description = "One result per transfer, in order", body = BatchBody),
        (status = 400, body = Problem), (status = 413, body = Problem), (status = 422, description = "batch_size", body = Problem)),
    security(("api_key" = [])))]
pub async fn create_batch(
    State(state): State<ApiState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    Json(body): Json<BatchRequest>,
) -> Result<Response, ApiError> {
    let who = require(&state, &headers, TRANSFERS_WRITE).await?;
    let items = body
        .transfers
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            t.check_documented().map_err(|r| ApiError::InvalidItem { index: i, refusal: super::refusal(r) })?;
            t.into_command().map_err(|e| match e {
                ApiError::InvalidBody(m) | ApiError::InvalidAmount(m) => {
                    ApiError::InvalidBody(format!("transfers[{i}]: {m}"))
                }
                other => other,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let ids: Vec<Uuid> = items.iter().map(|t| t.id.0).collect();
    let mode = if body.linked { BatchMode::Linked } else { BatchMode::Independent };
    let decisions = state.inner.ledger.submit_batch(items, mode, meta(&who, &headers, request_id)?).await??;
    let results = decisions
        .into_iter()
        .zip(ids)
        .enumerate()
        .map(|(index, (d, id))| match d {
            Ok(c) => {
                let Some(Entity::Transfer(t)) = &c.entity else {
                    return Err(ApiError::Internal("a transfer command answered without its transfer".to_owned()));
                };
                Ok(BatchItem {
                    index,
                    status: created(&c).as_u16(),
                    id,
                    transfer_status: Some(t.status.as_str().to_owned()),
                    position: Some(c.position),
                    error: None,
                })
            }
            Err(r) => Ok(BatchItem {
                index,
                status: rejection_status(r).as_u16(),
                id,
                transfer_status: None,
                position: None,
                error: Some(ApiError::from(r).problem(request_id.0)),
            }),
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(json(StatusCode::OK, BatchBody { results }))
}

#[utoipa::path(post, path = "/v1/transfers/{id}/post", tag = "transfers", request_body(content = Option<PostPendingRequest>, description = "Optional: an empty body posts the whole hold"),
    params(("id" = Uuid, Path, description = "The pending transfer")),
    responses((status = 200, body = TransferBody), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("api_key" = [])))]
pub async fn post_pending(
    State(state): State<ApiState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<PostPendingRequest>,
) -> Result<Response, ApiError> {
    let who = require(&state, &headers, TRANSFERS_WRITE).await?;
    let amount = body.amount.map(|a| a.parse()).transpose()?;
    let command = Command::PostPendingTransfer { pending_id: TransferId(path_id(&id)?), amount };
    let c = state.inner.ledger.submit(command, meta(&who, &headers, request_id)?).await??;
    Ok(json(StatusCode::OK, transfer_body(&c)?))
}

#[utoipa::path(post, path = "/v1/transfers/{id}/void", tag = "transfers",
    params(("id" = Uuid, Path, description = "The pending transfer")),
    responses((status = 200, body = TransferBody), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("api_key" = [])))]
pub async fn void_pending(
    State(state): State<ApiState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let who = require(&state, &headers, TRANSFERS_WRITE).await?;
    let command = Command::VoidPendingTransfer { pending_id: TransferId(path_id(&id)?) };
    let c = state.inner.ledger.submit(command, meta(&who, &headers, request_id)?).await??;
    Ok(json(StatusCode::OK, transfer_body(&c)?))
}

#[utoipa::path(post, path = "/v1/transfers/{id}/reverse", tag = "transfers", request_body = ReverseRequest,
    params(("id" = Uuid, Path, description = "The posted transfer to undo")),
    responses((status = 201, description = "The compensating transfer", body = TransferBody), (status = 200, body = TransferBody),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("api_key" = [])))]
pub async fn reverse(
    State(state): State<ApiState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<ReverseRequest>,
) -> Result<Response, ApiError> {
    let who = require(&state, &headers, TRANSFERS_WRITE).await?;
    let command = Command::ReverseTransfer {
        id: TransferId(body.id),
        transfer_id: TransferId(path_id(&id)?),
        metadata: body.metadata.unwrap_or(serde_json::Value::Null),
    };
    let c = state.inner.ledger.submit(command, meta(&who, &headers, request_id)?).await??;
    Ok(json(created(&c), transfer_body(&c)?))
}

#[utoipa::path(get, path = "/v1/transfers/{id}", tag = "transfers", params(("id" = Uuid, Path)),
    responses((status = 200, body = TransferBody), (status = 404, body = Problem)), security(("api_key" = [])))]
pub async fn get_transfer(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require(&state, &headers, TRANSFERS_READ).await?;
    let id = path_id(&id)?;
    let mut conn = state.inner.pool.acquire().await?;
    let row = ledger_store::sql::load_transfers(&mut conn, &[id]).await?.pop().ok_or(ApiError::NotFound("transfer"))?;
    Ok(json(StatusCode::OK, TransferBody::new(&row.transfer, row.position)))
}

/// Most events one page returns.
pub const MAX_EVENT_PAGE: i64 = 1000;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Return events after this position (default 0).
    #[param(minimum = 0)]
    after: Option<i64>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

#[utoipa::path(get, path = "/v1/events", tag = "events", params(EventsQuery),
    responses((status = 200, body = EventPage), (status = 400, body = Problem)), security(("api_key" = [])))]
pub async fn events(
    State(state): State<ApiState>,
    headers: HeaderMap,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    require(&state, &headers, EVENTS_READ).await?;
    let Query(query) = query.map_err(|e| ApiError::InvalidQuery(e.body_text()))?;
    let after = query.after.unwrap_or(0);
    let limit = query.limit.unwrap_or(100);
    if after < 0 || !(1..=MAX_EVENT_PAGE).contains(&limit) {
        return Err(ApiError::InvalidQuery(format!("after must be 0 or more and limit 1 to {MAX_EVENT_PAGE}")));
    }
    let mut conn = state.inner.pool.acquire().await?;
    let page = ledger_store::log::page(&mut conn, after, limit).await?;
    let next_after = page.last().map_or(after, |e| e.position);
    let events = page
        .into_iter()
        .map(EventBody::new)
        .collect::<Result<_, _>>()
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(json(StatusCode::OK, EventPage { events, next_after }))
}
