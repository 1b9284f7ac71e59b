//! The P2P orders' handlers. Each authenticates with the permission the issue names, scoped by
//! the store or trader the command concerns (read from the writer's memory first), turns the
//! body into the core's command, submits it and answers with the entity as committed. The edge
//! seals what the core must never see in clear: a store's callback secret (generated here, shown
//! once) and a requisite's card or account details (shown masked).

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use ledger_core::orders::command::{CreateOrder, UpsertRequisite, UpsertStore, UpsertTrader};
use ledger_core::orders::scope::{ADMIN, CANCEL, COMPLETE, CREATE, DISPUTE, FAIL, READ, RESOLVE, REVIEW, TRAFFIC};
use ledger_core::orders::state::{Order, Requisite, Status, Store, Trader};
use ledger_core::orders::{
    Command, ORDER_KIND, REQUISITE_KIND, Rejection, STORE_KIND, Sealed, TRADER_KIND, Terms, requisite_entity,
    store_entity, trader_entity,
};
use ledger_core::permission::Need;
use ledger_core::{AccountRef, CurrencyCode, Entity, EntityRow, OrderId, Timestamp};
use ledger_store::keys::Principal;
use ledger_store::{Committed, EventMeta};

use super::wire::*;
use crate::body::{Json, OptionalJson};
use crate::error::{ApiError, Problem, Refusal};
use crate::handler::{authenticate, created, json, meta, require, require_of, require_some};
use crate::{ApiState, RequestId};

/// The most characters of a requisite's details.
pub const MAX_DETAILS_CHARS: usize = 64;

fn internal(what: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(format!("{what} row: {e}"))
}

fn typed<T: serde::de::DeserializeOwned + Send + Sync + 'static>(row: &EntityRow) -> Result<Arc<T>, ApiError> {
    row.typed::<T>().map_err(|e| internal(&row.kind, e))
}

/// An entity of `kind` as last committed, from the writer's memory.
fn committed<T: serde::de::DeserializeOwned + Send + Sync + 'static>(
    state: &ApiState,
    id: uuid::Uuid,
    kind: &str,
) -> Result<Option<(Arc<T>, i64)>, ApiError> {
    match state.inner.ledger.view().entity(id) {
        Some((row, position)) if row.kind == kind => Ok(Some((typed(&row)?, position))),
        _ => Ok(None),
    }
}

fn store_of(state: &ApiState, id: &str) -> Result<Option<(Arc<Store>, i64)>, ApiError> {
    committed(state, store_entity(id).id, STORE_KIND)
}

fn trader_of(state: &ApiState, id: &str) -> Result<Option<(Arc<Trader>, i64)>, ApiError> {
    committed(state, trader_entity(id).id, TRADER_KIND)
}

fn requisite_of(state: &ApiState, trader: &str, id: &str) -> Result<Option<(Arc<Requisite>, i64)>, ApiError> {
    committed(state, requisite_entity(trader, id).id, REQUISITE_KIND)
}

fn order_of(state: &ApiState, id: OrderId) -> Result<Option<(Arc<Order>, i64)>, ApiError> {
    committed(state, id.0, ORDER_KIND)
}

/// The row a command answered with.
fn answered(c: &Committed) -> Result<&EntityRow, ApiError> {
    match &c.entity {
        Some(Entity::Row(row)) => Ok(row),
        _ => Err(ApiError::Internal("an orders command answered without its entity".into())),
    }
}

async fn submit(state: &ApiState, command: Command, meta: EventMeta) -> Result<Committed, ApiError> {
    Ok(state.inner.ledger.submit(command, meta).await??)
}

fn scale(state: &ApiState, currency: &CurrencyCode) -> u32 {
    state.inner.ledger.currencies().scale(currency).unwrap_or(2)
}

fn now() -> Timestamp {
    let micros = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000;
    Timestamp(i64::try_from(micros).unwrap_or(i64::MAX))
}

/// A fee as the core takes it (its rules are the core's: `invalid_fee`).
fn fee(text: &str) -> Result<rust_decimal::Decimal, ApiError> {
    text.parse().map_err(|_| ApiError::from(Rejection::InvalidFee))
}

fn currency(text: &str) -> Result<CurrencyCode, ApiError> {
    CurrencyCode::parse(text)
        .map_err(|_| ApiError::from(Rejection::Ledger(ledger_core::ledger::Rejection::UnknownCurrency)))
}

fn allow_private(state: &ApiState) -> bool {
    state.config.get(ledger_core::webhook::ALLOW_PRIVATE_KEY).as_bool().unwrap_or(false)
}

/// A callback URL is a receiver the platform may send to (`webhooks::store::check_receiver`).
async fn check_callback(state: &ApiState, url: Option<&str>) -> Result<(), ApiError> {
    let Some(url) = url else { return Ok(()) };
    webhooks::store::check_receiver(url, allow_private(state)).await.map_err(|e| {
        ApiError::Rejected(Refusal {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: Rejection::InvalidCallbackUrl.code(),
            detail: format!("callback_url: {e}"),
        })
    })
}

fn sealed(s: secrets::Sealed) -> Sealed {
    Sealed { key_id: s.key_id, nonce: s.nonce, ciphertext: s.ciphertext }
}

fn unsealed(s: &Sealed) -> secrets::Sealed {
    secrets::Sealed { key_id: s.key_id.clone(), nonce: s.nonce.clone(), ciphertext: s.ciphertext.clone() }
}

/// The context a store's callback secret is sealed under: its callback endpoint's, so the
/// delivery engine opens it as any endpoint's.
fn secret_context(store: &str) -> String {
    format!("webhook-endpoint:{}", ledger_core::webhook::owned_endpoint_id(&ledger_core::orders::store_owner(store)))
}

fn requisite_context(trader: &str, id: &str) -> String {
    format!("order-requisite:{trader}/{id}")
}

/// A new callback secret for a store: in clear (shown once) and sealed.
fn new_secret(state: &ApiState, store: &str) -> Result<(String, Sealed), ApiError> {
    let keys = state.secrets()?;
    let secret = webhooks::WebhookSecret::generate().map_err(|e| ApiError::Internal(e.to_string()))?.expose();
    let sealed = secrets::seal(keys, &secret_context(store), secret.as_bytes())
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((secret, self::sealed(sealed)))
}

fn store_body(state: &ApiState, s: &Store, position: i64, secret: Option<String>) -> StoreBody {
    let (account, _) = ledger_core::orders::store_account(&s.id, &s.settlement_currency);
    let balance = state
        .inner
        .ledger
        .view()
        .account(&AccountRef::Id(account))
        .map_or(rust_decimal::Decimal::ZERO, |a| a.account.balance());
    StoreBody::new(s, at_scale(balance, scale(state, &s.settlement_currency)), position, secret)
}

#[utoipa::path(put, path = "/v1/orders/stores/{id}", tag = "orders", request_body = StoreRequest,
    params(("id" = String, Path, description = "The store's id: 1 to 64 of A-Z a-z 0-9 . _ -")),
    responses((status = 201, body = StoreBody, description = "Created: the answer carries the callback secret, once"),
        (status = 200, body = StoreBody, description = "Updated, or the same fields again"),
        (status = 422, body = Problem)),
    security(("api_key" = [])))]
pub async fn put_store(
    State(state): State<ApiState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<StoreRequest>,
) -> Result<Response, ApiError> {
    let who = require(&state, &headers, ADMIN).await?;
    check_callback(&state, body.callback_url.as_deref()).await?;
    let existing = store_of(&state, &id)?;
    // A new store gets a secret; an existing one keeps its own (the core ignores this one).
    let (clear, secret) = match &existing {
        Some((s, _)) => (None, s.secret.clone()),
        None => {
            let (clear, secret) = new_secret(&state, &id)?;
            (Some(clear), secret)
        }
    };
    let command = UpsertStore {
        id,
        name: body.name,
        fee: fee(&body.fee)?,
        settlement_currency: currency(&body.settlement_currency)?,
        callback_url: body.callback_url,
        secret: secret.clone(),
    };
    let c = submit(&state, Command::UpsertStore(Box::new(command)), meta(&who, &headers, request_id)?).await?;
    let store: Arc<Store> = typed(answered(&c)?)?;
    // Shown only by the command that created the store with it (a concurrent creation won).
    let shown = clear.filter(|_| store.secret == secret);
    let status = if shown.is_some() { StatusCode::CREATED } else { StatusCode::OK };
    Ok(json(status, store_body(&state, &store, c.position, shown)))
}

#[utoipa::path(post, path = "/v1/orders/stores/{id}/rotate-secret", tag = "orders",
    params(("id" = String, Path)),
    responses((status = 200, body = StoreBody, description = "The new callback secret, shown once; the old one signs beside it for 24 h"),
        (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("api_key" = [])))]
pub async fn rotate_secret(
    State(state): State<ApiState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let who = require(&state, &headers, ADMIN).await?;
    let (clear, secret) = new_secret(&state, &id)?;
    let command = Command::RotateStoreSecret(Box::new((id, secret)));
    let c = submit(&state, command, meta(&who, &headers, request_id)?).await?;
    let store: Arc<Store> = typed(answered(&c)?)?;
    Ok(json(StatusCode::OK, store_body(&state, &store, c.position, Some(clear))))
}

#[utoipa::path(get, path = "/v1/orders/stores/{id}", tag = "orders", params(("id" = String, Path)),
    responses((status = 200, body = StoreBody, description = "From the writer's memory, as of the last commit"),
        (status = 404, body = Problem)),
    security(("api_key" = [])))]
pub async fn get_store(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let who = require_some(&state, &headers, READ).await?;
    require_of(&state, &who, &[READ.of(&id)]).await?;
    let (store, position) = store_of(&state, &id)?.ok_or(ApiError::from(Rejection::StoreNotFound))?;
    Ok(json(StatusCode::OK, store_body(&state, &store, position, None)))
}

fn trader_body(state: &ApiState, t: &Trader, position: i64) -> TraderBody {
    let view = state.inner.ledger.view();
    let balance = |id| view.account(&AccountRef::Id(id)).map(|a| (a.account.balance(), a.account.available()));
    let accounts = t
        .currencies
        .iter()
        .map(|c| {
            let (deposit, _) = ledger_core::orders::deposit_account(&t.id, c);
            let (rewards, _) = ledger_core::orders::rewards_account(&t.id, c);
            let zero = rust_decimal::Decimal::ZERO;
            let (deposit_balance, deposit_available) = balance(deposit).unwrap_or((zero, zero));
            let (rewards_balance, _) = balance(rewards).unwrap_or((zero, zero));
            let s = scale(state, c);
            TraderAccounts {
                currency: c.to_string(),
                deposit: deposit.0,
                deposit_balance: at_scale(deposit_balance, s),
                deposit_available: at_scale(deposit_available, s),
                rewards: rewards.0,
                rewards_balance: at_scale(rewards_balance, s),
            }
        })
        .collect();
    TraderBody::new(t, accounts, position)
}

#[utoipa::path(put, path = "/v1/orders/traders/{id}", tag = "orders", request_body = TraderRequest,
    params(("id" = String, Path, description = "The trader's id: 1 to 64 of A-Z a-z 0-9 . _ -")),
    responses((status = 200, body = TraderBody, description = "Created or changed, or the same fields again"),
        (status = 422, body = Problem)),
    security(("api_key" = [])))]
pub async fn put_trader(
    State(state): State<ApiState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<TraderRequest>,
) -> Result<Response, ApiError> {
    let who = require(&state, &headers, ADMIN).await?;
    let currencies = body.currencies.iter().map(|c| currency(&c.0)).collect::<Result<_, _>>()?;
    let command = UpsertTrader {
        id,
        fee: fee(&body.fee)?,
        priority: body.priority,
        traffic_enabled: body.traffic_enabled,
        team_lead: body.team_lead,
        currencies,
    };
    let c = submit(&state, Command::UpsertTrader(Box::new(command)), meta(&who, &headers, request_id)?).await?;
    let trader: Arc<Trader> = typed(answered(&c)?)?;
    Ok(json(StatusCode::OK, trader_body(&state, &trader, c.position)))
}

#[utoipa::path(post, path = "/v1/orders/traders/{id}/traffic", tag = "orders", request_body = TrafficRequest,
    params(("id" = String, Path)),
    responses((status = 200, body = TraderBody), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)),
    security(("api_key" = [])))]
pub async fn traffic(
    State(state): State<ApiState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<TrafficRequest>,
) -> Result<Response, ApiError> {
    // Operators (`orders:admin`), or the trader's team lead (`orders:traffic:{team_lead}`).
    let who = authenticate(&state, &headers).await?;
    let team_lead = if who.require(&ADMIN).is_ok() {
        None
    } else {
        match trader_of(&state, &id)?.and_then(|(t, _)| t.team_lead.clone()) {
            Some(lead) => {
                require_of(&state, &who, &[TRAFFIC.of(&lead)]).await?;
                Some(lead)
            }
            None => {
                require_of(&state, &who, &[ADMIN]).await?;
                None
            }
        }
    };
    let command = Command::SetTraffic { trader: id, enabled: body.enabled, team_lead };
    let c = submit(&state, command, meta(&who, &headers, request_id)?).await?;
    let trader: Arc<Trader> = typed(answered(&c)?)?;
    Ok(json(StatusCode::OK, trader_body(&state, &trader, c.position)))
}

#[utoipa::path(get, path = "/v1/orders/traders/{id}", tag = "orders", params(("id" = String, Path)),
    responses((status = 200, body = TraderBody, description = "From the writer's memory, with its deposit and rewards accounts"),
        (status = 404, body = Problem)),
    security(("api_key" = [])))]
pub async fn get_trader(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let who = require_some(&state, &headers, READ).await?;
    let lead = trader_of(&state, &id)?.and_then(|(t, _)| t.team_lead.clone());
    let mut needs = vec![READ.of(&id)];
    if let Some(lead) = &lead {
        needs.push(READ.of(lead));
    }
    require_of(&state, &who, &needs).await?;
    let (trader, position) = trader_of(&state, &id)?.ok_or(ApiError::from(Rejection::TraderNotFound))?;
    Ok(json(StatusCode::OK, trader_body(&state, &trader, position)))
}

/// What may be shown of a requisite's details: its last four characters.
pub fn masked(details: &str) -> String {
    let visible: Vec<char> = details.chars().filter(|c| !c.is_whitespace()).collect();
    let tail: String = visible[visible.len().saturating_sub(4)..].iter().collect();
    format!("•••• {tail}")
}

#[utoipa::path(put, path = "/v1/orders/traders/{id}/requisites/{requisite_id}", tag = "orders",
    request_body = RequisiteRequest,
    params(("id" = String, Path), ("requisite_id" = String, Path, description = "1 to 64 of A-Z a-z 0-9 . _ -")),
    responses((status = 200, body = RequisiteBody, description = "Created or changed, or the same fields again"),
        (status = 422, body = Problem)),
    security(("api_key" = [])))]
pub async fn put_requisite(
    State(state): State<ApiState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    Path((trader, id)): Path<(String, String)>,
    Json(body): Json<RequisiteRequest>,
) -> Result<Response, ApiError> {
    let who = require(&state, &headers, ADMIN).await?;
    let length = body.details.chars().count();
    if !(4..=MAX_DETAILS_CHARS).contains(&length) || body.details.chars().any(char::is_control) {
        return Err(Rejection::InvalidReference.into());
    }
    let keys = state.secrets()?;
    let context = requisite_context(&trader, &id);
    // The same details again keep their sealed form, so the same body replays.
    let kept = requisite_of(&state, &trader, &id)?
        .map(|(r, _)| r.details.clone())
        .filter(|s| secrets::open(keys, &context, &unsealed(s)).is_ok_and(|clear| clear == body.details.as_bytes()));
    let details = match kept {
        Some(s) => s,
        None => sealed(
            secrets::seal(keys, &context, body.details.as_bytes()).map_err(|e| ApiError::Internal(e.to_string()))?,
        ),
    };
    let command = UpsertRequisite {
        trader,
        id,
        method: body.method,
        bank: body.bank,
        currency: currency(&body.currency)?,
        min_amount: body.min_amount.parse()?,
        max_amount: body.max_amount.parse()?,
        daily_limit: body.daily_limit.parse()?,
        enabled: body.enabled,
        masked: masked(&body.details),
        details,
    };
    let c = submit(&state, Command::UpsertRequisite(Box::new(command)), meta(&who, &headers, request_id)?).await?;
    let r: Arc<Requisite> = typed(answered(&c)?)?;
    Ok(json(StatusCode::OK, RequisiteBody::new(&r, now(), scale(&state, &r.currency))))
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

#[utoipa::path(get, path = "/v1/orders/{id}", tag = "orders", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = OrderBody, description = "From the writer's memory, as of the last commit"),
        (status = 404, body = Problem)),
    security(("api_key" = [])))]
pub async fn get_order(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let who = require_some(&state, &headers, READ).await?;
    let found = order_of(&state, order_id(&id)?)?;
    let Some((order, position)) = found else {
        require_of(&state, &who, &[READ]).await?;
        return Err(Rejection::OrderNotFound.into());
    };
    let trader = order.assignment.as_ref().map(|a| a.trader.as_str());
    let mut needs = vec![READ.of(&order.store)];
    needs.extend(trader.map(|t| READ.of(t)));
    require_of(&state, &who, &needs).await?;
    Ok(json(StatusCode::OK, order_body(&state, &order, position)?))
}

/// Who may move an order: the store, the assigned trader, or support.
#[derive(Clone, Copy)]
enum By {
    Store,
    Trader,
    Support,
}

/// One transition of an order: the caller's key is checked against the order's store or trader
/// (a missing order: against the permission in any scope, then `order_not_found`).
async fn transition(
    state: ApiState,
    request_id: RequestId,
    headers: HeaderMap,
    id: &str,
    need: Need<'static>,
    by: By,
    command: impl FnOnce(OrderId) -> Command,
) -> Result<Response, ApiError> {
    let who: Principal = require_some(&state, &headers, need).await?;
    let id = order_id(id)?;
    if let Some((order, _)) = order_of(&state, id)? {
        let owner = match by {
            By::Store => Some(order.store.clone()),
            By::Trader => order.assignment.as_ref().map(|a| a.trader.clone()),
            By::Support => None,
        };
        match &owner {
            Some(owner) => require_of(&state, &who, &[need.of(owner)]).await?,
            None => require_of(&state, &who, &[need]).await?,
        }
    }
    let c = submit(&state, command(id), meta(&who, &headers, request_id)?).await?;
    order_answer(&state, StatusCode::OK, &c)
}

#[utoipa::path(post, path = "/v1/orders/{id}/complete", tag = "orders", operation_id = "complete_order", request_body = EmptyRequest,
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

#[utoipa::path(post, path = "/v1/orders/{id}/fail", tag = "orders", operation_id = "fail_order", request_body = ReasonRequest,
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

#[utoipa::path(post, path = "/v1/orders/{id}/cancel", tag = "orders", operation_id = "cancel_order", request_body = ReasonRequest,
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

#[utoipa::path(post, path = "/v1/orders/{id}/approve", tag = "orders", operation_id = "approve_order", request_body = EmptyRequest,
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

#[utoipa::path(post, path = "/v1/orders/{id}/deny", tag = "orders", operation_id = "deny_order", request_body = ReasonRequest,
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
