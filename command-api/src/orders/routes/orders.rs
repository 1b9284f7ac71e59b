//! Orders: created, read, and moved along the transition table by their store, their trader or
//! support.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use ledger_core::OrderId;
use ledger_core::orders::command::CreateOrder;
use ledger_core::orders::scope::{CANCEL, COMPLETE, CREATE, DISPUTE, FAIL, READ, RESOLVE, REVIEW};
use ledger_core::orders::state::{Order, Status};
use ledger_core::orders::{Command, ORDER_KIND, Rejection, Terms};
use ledger_core::permission::Need;
use ledger_store::Committed;
use ledger_store::keys::Principal;

use super::{answered, check_callback, committed, currency, requisite_of, scale, store_of, submit, typed};
use crate::body::{Json, OptionalJson};
use crate::error::{ApiError, Problem, Refusal};
use crate::handler::{created, json, meta, require, require_of, require_some};
use crate::orders::wire::*;
use crate::{ApiState, RequestId};

fn order_of(state: &ApiState, id: OrderId) -> Result<Option<(Arc<Order>, i64)>, ApiError> {
    committed(state, id.0, ORDER_KIND)
}

fn order_body(state: &ApiState, o: &Order, position: i64) -> Result<OrderBody, ApiError> {
    let requisite = match &o.assignment {
        Some(a) => requisite_of(state, &a.trader, &a.requisite)?.map(|(r, _)| r),
        None => None,
    };
    let (fiat, settlement) = (scale(state, &o.currency), scale(state, &o.settlement_currency));
    Ok(OrderBody::new(o, requisite.as_deref(), fiat, settlement, position))
}

/// The answer to an order command: the order as committed; one denied by the fraud rule is a
/// refusal (`fraud_denied`), however often it is asked.
fn order_answer(state: &ApiState, status: StatusCode, c: &Committed) -> Result<Response, ApiError> {
    let order: Arc<Order> = typed(answered(c)?)?;
    if order.status == Status::Denied && order.reason.is_none() && order.version == 1 {
        return Err(ApiError::Rejected(Refusal {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: ledger_core::orders::rejection::FRAUD_DENIED,
            detail: format!("order {} is over the fraud limit and was denied; nothing is held", order.id),
        }));
    }
    Ok(json(status, order_body(state, &order, c.position)?))
}

#[utoipa::path(post, path = "/v1/orders", tag = "orders", operation_id = "create_order", request_body = OrderRequest,
    responses((status = 201, body = OrderBody, description = "Created: pending (assigned and held) or manual_review (nothing held)"),
        (status = 200, body = OrderBody, description = "The same body again: the order as it stands"),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("api_key" = [])))]
pub async fn create(
    State(state): State<ApiState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    Json(body): Json<OrderRequest>,
) -> Result<Response, ApiError> {
    let who = require(&state, &headers, CREATE.of(&body.store_id)).await?;
    check_callback(&state, body.callback_url.as_deref()).await?;
    let fiat = currency(&body.currency)?;
    // The terms are read for the store's settlement currency (an unknown store: the core says so).
    let settlement = store_of(&state, &body.store_id)?.map_or(fiat.clone(), |(s, _)| s.settlement_currency.clone());
    let terms = Terms::resolve(|key| state.config.get(key), &fiat, &settlement);
    let command = CreateOrder {
        id: OrderId(body.id),
        store: body.store_id,
        kind: body.kind.into(),
        external_order_id: body.external_order_id,
        amount: body.amount.parse()?,
        currency: fiat,
        method: body.method,
        trader: body.trader_id,
        callback_url: body.callback_url,
        terms,
    };
    let c = submit(&state, Command::Create(Box::new(command)), meta(&who, &headers, request_id)?).await?;
    order_answer(&state, created(&c), &c)
}

fn order_id(text: &str) -> Result<OrderId, ApiError> {
    uuid::Uuid::parse_str(text).map(OrderId).map_err(|_| Rejection::OrderNotFound.into())
}

/// Whose scope a permission on an order is asked in.
#[derive(Clone, Copy)]
enum By {
    /// Its store's.
    Store,
    /// Its assigned trader's (unscoped while none is).
    Trader,
    /// Its store's or its trader's, either: who reads it.
    StoreOrTrader,
    /// None: the permission unscoped (support).
    Support,
}

impl By {
    fn owners(self, o: &Order) -> Vec<&str> {
        let trader = o.assignment.as_ref().map(|a| a.trader.as_str());
        match self {
            By::Store => vec![o.store.as_str()],
            By::Trader => trader.into_iter().collect(),
            By::StoreOrTrader => std::iter::once(o.store.as_str()).chain(trader).collect(),
            By::Support => Vec::new(),
        }
    }
}

/// The caller and the order, as every order handler starts: the key must grant `need` in some
/// scope before anything is read, then, the order read from the writer's memory, `need` scoped
/// by one of its owners `by` names (unscoped when there are none), so a key learns nothing of
/// another owner's orders. A missing order is `None`, for the handler to answer.
async fn authorized(
    state: &ApiState,
    headers: &HeaderMap,
    id: &str,
    need: Need<'static>,
    by: By,
) -> Result<(Principal, OrderId, Option<(Arc<Order>, i64)>), ApiError> {
    let who = require_some(state, headers, need).await?;
    let id = order_id(id)?;
    let found = order_of(state, id)?;
    if let Some((order, _)) = &found {
        let mut needs: Vec<Need<'_>> = by.owners(order).into_iter().map(|owner| need.of(owner)).collect();
        if needs.is_empty() {
            needs.push(need);
        }
        require_of(state, &who, &needs).await?;
    }
    Ok((who, id, found))
}

#[utoipa::path(get, path = "/v1/orders/{id}", tag = "orders", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = OrderBody, description = "From the writer's memory, as of the last commit"),
        (status = 404, body = Problem)),
    security(("api_key" = [])))]
pub async fn get_order(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (who, _, found) = authorized(&state, &headers, &id, READ, By::StoreOrTrader).await?;
    let Some((order, position)) = found else {
        require_of(&state, &who, &[READ]).await?;
        return Err(Rejection::OrderNotFound.into());
    };
    Ok(json(StatusCode::OK, order_body(&state, &order, position)?))
}

/// One transition of an order by whoever `by` names (a missing order: the permission in some
/// scope is enough to hear `order_not_found` from the core).
async fn transition(
    state: ApiState,
    request_id: RequestId,
    headers: HeaderMap,
    id: &str,
    need: Need<'static>,
    by: By,
    command: impl FnOnce(OrderId) -> Command,
) -> Result<Response, ApiError> {
    let (who, id, _) = authorized(&state, &headers, id, need, by).await?;
    let c = submit(&state, command(id), meta(&who, &headers, request_id)?).await?;
    order_answer(&state, StatusCode::OK, &c)
}

#[utoipa::path(post, path = "/v1/orders/{id}/complete", tag = "orders", operation_id = "complete_order",
    request_body(content = Option<EmptyRequest>, description = "Optional: an empty body (or null) is the same as {}"),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = OrderBody, description = "Completed: the held entry is posted (`orders:complete:{trader}`)"),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("api_key" = [])))]
pub async fn complete(
    State(state): State<ApiState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    Path(id): Path<String>,
    OptionalJson(EmptyRequest {}): OptionalJson<EmptyRequest>,
) -> Result<Response, ApiError> {
    transition(state, request_id, headers, &id, COMPLETE, By::Trader, |id| Command::Complete { id }).await
}

#[utoipa::path(post, path = "/v1/orders/{id}/fail", tag = "orders", operation_id = "fail_order",
    request_body(content = Option<ReasonRequest>, description = "Optional: an empty body (or null) is the same as {}"),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = OrderBody, description = "Failed: the hold is voided (`orders:fail:{trader}`)"),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("api_key" = [])))]
pub async fn fail(
    State(state): State<ApiState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    Path(id): Path<String>,
    OptionalJson(ReasonRequest { reason }): OptionalJson<ReasonRequest>,
) -> Result<Response, ApiError> {
    transition(state, request_id, headers, &id, FAIL, By::Trader, |id| Command::Fail { id, reason }).await
}

#[utoipa::path(post, path = "/v1/orders/{id}/cancel", tag = "orders", operation_id = "cancel_order",
    request_body(content = Option<ReasonRequest>, description = "Optional: an empty body (or null) is the same as {}"),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = OrderBody, description = "Cancelled: the hold is voided (`orders:cancel:{store}`)"),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("api_key" = [])))]
pub async fn cancel(
    State(state): State<ApiState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    Path(id): Path<String>,
    OptionalJson(ReasonRequest { reason }): OptionalJson<ReasonRequest>,
) -> Result<Response, ApiError> {
    transition(state, request_id, headers, &id, CANCEL, By::Store, |id| Command::Cancel { id, reason }).await
}

#[utoipa::path(post, path = "/v1/orders/{id}/approve", tag = "orders", operation_id = "approve_order",
    request_body(content = Option<EmptyRequest>, description = "Optional: an empty body (or null) is the same as {}"),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = OrderBody, description = "Approved from review: assigned and held (`orders:review`)"),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("api_key" = [])))]
pub async fn approve(
    State(state): State<ApiState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    Path(id): Path<String>,
    OptionalJson(EmptyRequest {}): OptionalJson<EmptyRequest>,
) -> Result<Response, ApiError> {
    transition(state, request_id, headers, &id, REVIEW, By::Support, |id| Command::Approve { id }).await
}

#[utoipa::path(post, path = "/v1/orders/{id}/deny", tag = "orders", operation_id = "deny_order",
    request_body(content = Option<ReasonRequest>, description = "Optional: an empty body (or null) is the same as {}"),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = OrderBody, description = "Denied from review (`orders:review`)"),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("api_key" = [])))]
pub async fn deny(
    State(state): State<ApiState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    Path(id): Path<String>,
    OptionalJson(ReasonRequest { reason }): OptionalJson<ReasonRequest>,
) -> Result<Response, ApiError> {
    transition(state, request_id, headers, &id, REVIEW, By::Support, |id| Command::Deny { id, reason }).await
}

#[utoipa::path(post, path = "/v1/orders/{id}/dispute", tag = "orders", operation_id = "dispute_order", request_body = DisputeRequest,
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = OrderBody, description = "Disputed within the dispute window (`orders:dispute:{store}`)"),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("api_key" = [])))]
pub async fn dispute(
    State(state): State<ApiState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<DisputeRequest>,
) -> Result<Response, ApiError> {
    let reason = body.reason;
    transition(state, request_id, headers, &id, DISPUTE, By::Store, |id| Command::Dispute { id, reason }).await
}

#[utoipa::path(post, path = "/v1/orders/{id}/resolve", tag = "orders", operation_id = "resolve_order", request_body = ResolveRequest,
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = OrderBody, description = "Settled: upheld (completed again) or reversed leg by leg (`orders:resolve`)"),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("api_key" = [])))]
pub async fn resolve(
    State(state): State<ApiState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<ResolveRequest>,
) -> Result<Response, ApiError> {
    let (outcome, reason) = (body.outcome.into(), body.reason);
    transition(state, request_id, headers, &id, RESOLVE, By::Support, |id| Command::Resolve { id, outcome, reason })
        .await
}
