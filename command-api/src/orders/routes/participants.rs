//! Stores, traders, their traffic and their requisites. The edge seals what the core must never
//! see in clear: a store's callback secret (generated here, shown once) and a requisite's card or
//! account details (shown masked).

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use ledger_core::orders::command::{UpsertRequisite, UpsertStore, UpsertTrader};
use ledger_core::orders::scope::{ADMIN, READ, TRAFFIC};
use ledger_core::orders::state::{Requisite, Store, Trader};
use ledger_core::orders::{
    Command, REQUISITE_KIND, Rejection, Sealed, TRADER_KIND, requisites_key_prefix, trader_entity,
};
use ledger_core::{AccountRef, Timestamp};

use super::{answered, check_callback, committed, currency, requisite_of, scale, store_of, submit, typed};
use crate::body::Json;
use crate::error::{ApiError, Problem};
use crate::handler::{authenticate, json, meta, require, require_of, require_some};
use crate::orders::wire::*;
use crate::{ApiState, RequestId};

/// The most characters of a requisite's details.
pub const MAX_DETAILS_CHARS: usize = 64;

fn trader_of(state: &ApiState, id: &str) -> Result<Option<(Arc<Trader>, i64)>, ApiError> {
    committed(state, trader_entity(id).id, TRADER_KIND)
}

fn now() -> Timestamp {
    let micros = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000;
    Timestamp(i64::try_from(micros).unwrap_or(i64::MAX))
}

/// A fee as the core takes it (its rules are the core's: `invalid_fee`).
fn fee(text: &str) -> Result<rust_decimal::Decimal, ApiError> {
    text.parse().map_err(|_| ApiError::from(Rejection::InvalidFee))
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
pub async fn rotate_store_secret(
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

/// A trader with its accounts' balances and its requisites, from the writer's memory.
fn trader_body(state: &ApiState, t: &Trader, position: i64) -> Result<TraderBody, ApiError> {
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
    let now = now();
    let requisites = view
        .entities_keyed(REQUISITE_KIND, &requisites_key_prefix(&t.id))
        .iter()
        .map(|(row, _)| {
            let r: Arc<Requisite> = typed(row)?;
            Ok(RequisiteBody::new(&r, now, scale(state, &r.currency)))
        })
        .collect::<Result<_, ApiError>>()?;
    Ok(TraderBody::new(t, accounts, requisites, position))
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
    Ok(json(StatusCode::OK, trader_body(&state, &trader, c.position)?))
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
    Ok(json(StatusCode::OK, trader_body(&state, &trader, c.position)?))
}

#[utoipa::path(get, path = "/v1/orders/traders/{id}", tag = "orders", params(("id" = String, Path)),
    responses((status = 200, body = TraderBody, description = "From the writer's memory, with its deposit and rewards accounts and its requisites (details masked)"),
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
    Ok(json(StatusCode::OK, trader_body(&state, &trader, position)?))
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
