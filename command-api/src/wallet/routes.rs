//! The wallet's operator and cashier handlers: players, providers, deposits, withdrawals and
//! bonuses. Each asks for the permission the issue names (`wallet:admin`; `wallet:pay:{player}`
//! for the cashier; `wallet:read` or `wallet:read:{player}` for reads), turns the body into the
//! core's command with the runtime terms it runs under, and answers with the entity as
//! committed. A provider's secret is sealed here and never shown again.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use ledger_core::wallet::command::{
    CreateDeposit, GrantBonus, Limits, RequestWithdrawal, UpsertPlayer, UpsertProvider,
};
use ledger_core::wallet::scope::{ADMIN, PAY, READ};
use ledger_core::wallet::state::{Bonus, Deposit, Player, Provider, Withdrawal};
use ledger_core::wallet::{
    BONUS_KIND, Command, DEPOSIT_KIND, PLAYER_KIND, PROVIDER_KIND, Rejection, Terms, WITHDRAWAL_KIND, bonus_account,
    bonus_entity, deposit_entity, locked_account, main_account, player_entity, provider_entity, withdrawal_entity,
};
use ledger_core::{AccountRef, BonusId, CurrencyCode, DepositId, WithdrawalId};
use rust_decimal::Decimal;

use super::wire::*;
use crate::body::{Json, OptionalJson};
use crate::entity::{answered, committed, instant, now, submit, typed};
use crate::error::{ApiError, Problem, Refusal};
use crate::handler::{created, json, meta, require, require_of, require_some};
use crate::{ApiState, RequestId};

pub(super) fn player_of(state: &ApiState, id: &str) -> Result<Option<(Arc<Player>, i64)>, ApiError> {
    committed(state, player_entity(id).id, PLAYER_KIND)
}

pub(super) fn provider_of(state: &ApiState, id: &str) -> Result<Option<(Arc<Provider>, i64)>, ApiError> {
    committed(state, provider_entity(id).id, PROVIDER_KIND)
}

fn deposit_of(state: &ApiState, id: DepositId) -> Result<Option<(Arc<Deposit>, i64)>, ApiError> {
    committed(state, deposit_entity(id).id, DEPOSIT_KIND)
}

fn withdrawal_of(state: &ApiState, id: WithdrawalId) -> Result<Option<(Arc<Withdrawal>, i64)>, ApiError> {
    committed(state, withdrawal_entity(id).id, WITHDRAWAL_KIND)
}

fn bonus_of(state: &ApiState, id: BonusId) -> Result<Option<(Arc<Bonus>, i64)>, ApiError> {
    committed(state, bonus_entity(id).id, BONUS_KIND)
}

pub(super) fn terms(state: &ApiState) -> Terms {
    Terms::resolve(|key| state.config.get(key))
}

pub(super) fn currency(text: &str) -> Result<CurrencyCode, ApiError> {
    CurrencyCode::parse(text)
        .map_err(|_| ApiError::from(Rejection::Ledger(ledger_core::ledger::Rejection::UnknownCurrency)))
}

/// A player's balances, as the writer's memory holds its accounts.
pub(super) fn balances(state: &ApiState, player: &str) -> (Decimal, Decimal, Decimal) {
    let view = state.inner.ledger.view();
    let available = |id| view.account(&AccountRef::Id(id)).map_or(Decimal::ZERO, |a| a.account.available());
    (available(main_account(player).0), available(bonus_account(player).0), available(locked_account(player).0))
}

pub(super) fn at_scale(state: &ApiState, currency: &CurrencyCode, mut d: Decimal) -> String {
    d.rescale(state.inner.ledger.currencies().scale(currency).unwrap_or(2));
    d.to_string()
}

fn player_body(state: &ApiState, p: &Player, position: i64) -> Result<PlayerBody, ApiError> {
    let (main, bonus, locked) = balances(state, &p.id);
    let text = |d| at_scale(state, &p.currency, d);
    let balances = BalancesBody {
        main: text(main),
        bonus: text(bonus),
        locked: text(locked),
        withdrawable: text(main),
        main_account: main_account(&p.id).0.0,
        bonus_account: bonus_account(&p.id).0.0,
        locked_account: locked_account(&p.id).0.0,
    };
    let bonus = match p.bonus {
        Some(id) => bonus_of(state, id)?.map(|(b, _)| BonusBody::new(&b)),
        None => None,
    };
    Ok(PlayerBody::new(p, balances, bonus, position, now()))
}

/// A payment's or bonus's id in a path: one that is not a UUID names nothing.
fn uuid_or(text: &str, missing: Rejection) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::parse_str(text).map_err(|_| missing.into())
}

fn limit(amount: Option<crate::ledger::wire::WireAmount>) -> Result<Option<Decimal>, ApiError> {
    amount.map(|a| a.parse()).transpose()
}

#[utoipa::path(put, path = "/v1/wallet/players/{id}", tag = "wallet", request_body = PlayerRequest,
    params(("id" = String, Path, description = "The player's id: 1 to 64 of A-Z a-z 0-9 . _ -")),
    responses((status = 200, body = PlayerBody, description = "Created or changed, or the same fields again"),
        (status = 409, body = Problem, description = "currency_fixed"),
        (status = 422, body = Problem, description = "invalid_participant_id, invalid_limit, unknown_currency")),
    security(("api_key" = [])))]
pub async fn put_player(
    State(state): State<ApiState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<PlayerRequest>,
) -> Result<Response, ApiError> {
    let who = require(&state, &headers, ADMIN).await?;
    let l = body.limits;
    let limits = Limits {
        deposit_day: limit(l.deposit_day)?,
        deposit_week: limit(l.deposit_week)?,
        deposit_month: limit(l.deposit_month)?,
        loss_day: limit(l.loss_day)?,
        withdraw_day: limit(l.withdraw_day)?,
    };
    let command = UpsertPlayer {
        id,
        currency: currency(&body.currency)?,
        kyc: body.kyc.into(),
        self_excluded_until: body
            .self_excluded_until
            .as_deref()
            .map(|t| instant("self_excluded_until", t))
            .transpose()?,
        limits,
        cooldown_hours: terms(&state).cooldown_hours,
    };
    let c = submit(&state, Command::UpsertPlayer(Box::new(command)), meta(&who, &headers, request_id)?).await?;
    let player: Arc<Player> = typed(answered(&c)?)?;
    Ok(json(StatusCode::OK, player_body(&state, &player, c.position)?))
}

#[utoipa::path(get, path = "/v1/wallet/players/{id}", tag = "wallet", params(("id" = String, Path)),
    responses((status = 200, body = PlayerBody, description = "Balances, limits in force and pending, KYC, the open bonus"),
        (status = 404, body = Problem, description = "player_not_found")),
    security(("api_key" = [])))]
pub async fn get_player(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let who = require_some(&state, &headers, READ).await?;
    require_of(&state, &who, &[READ.of(&id)]).await?;
    let (player, position) = player_of(&state, &id)?.ok_or(ApiError::from(Rejection::PlayerNotFound))?;
    Ok(json(StatusCode::OK, player_body(&state, &player, position)?))
}

/// The context a provider's secret is sealed under.
pub(super) fn secret_context(provider: &str) -> String {
    format!("wallet-provider:{provider}")
}

pub(super) fn unsealed(s: &ledger_core::sealed::Sealed) -> secrets::Sealed {
    secrets::Sealed { key_id: s.key_id.clone(), nonce: s.nonce.clone(), ciphertext: s.ciphertext.clone() }
}

/// A provider's secret in clear, opened with the engine's key.
pub(super) fn open_secret(state: &ApiState, p: &Provider) -> Result<webhooks::WebhookSecret, ApiError> {
    let clear = secrets::open(state.secrets()?, &secret_context(&p.id), &unsealed(&p.secret))
        .map_err(|e| ApiError::Internal(format!("provider {} secret: {e}", p.id)))?;
    let text = String::from_utf8(clear).map_err(|e| ApiError::Internal(e.to_string()))?;
    webhooks::WebhookSecret::parse(&text).map_err(|e| ApiError::Internal(e.to_string()))
}

#[utoipa::path(put, path = "/v1/wallet/providers/{id}", tag = "wallet", request_body = ProviderRequest,
    params(("id" = String, Path, description = "The provider's id: 1 to 64 of A-Z a-z 0-9 . _ -")),
    responses((status = 200, body = ProviderBody, description = "Created or changed (the secret is never shown)"),
        (status = 409, body = Problem, description = "provider_kind_fixed"),
        (status = 422, body = Problem, description = "invalid_participant_id, invalid_secret, invalid_base_url"),
        (status = 503, body = Problem, description = "secrets_key_missing: no LEDGER_SECRETS_KEY to seal the secret")),
    security(("api_key" = [])))]
pub async fn put_provider(
    State(state): State<ApiState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<ProviderRequest>,
) -> Result<Response, ApiError> {
    let who = require(&state, &headers, ADMIN).await?;
    let secret = webhooks::WebhookSecret::parse(&body.secret).map_err(|_| {
        ApiError::Rejected(Refusal {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "invalid_secret",
            detail: "a secret is whsec_ and the base64 of 24 to 64 bytes".into(),
        })
    })?;
    if body.base_url.as_deref().is_some_and(|u| !(u.starts_with("http://") || u.starts_with("https://"))) {
        return Err(Rejection::InvalidBaseUrl.into());
    }
    let keys = state.secrets()?;
    // The same secret again keeps its sealed form, so the same body is no change.
    let existing = provider_of(&state, &id)?;
    let kept = match &existing {
        Some((p, _)) => open_secret(&state, p).ok().filter(|s| s.expose() == secret.expose()).map(|_| p.secret.clone()),
        None => None,
    };
    let sealed = match kept {
        Some(sealed) => sealed,
        None => {
            let s = secrets::seal(keys, &secret_context(&id), secret.expose().as_bytes())
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            ledger_core::sealed::Sealed { key_id: s.key_id, nonce: s.nonce, ciphertext: s.ciphertext }
        }
    };
    let command = UpsertProvider { id, kind: body.kind.into(), secret: sealed, base_url: body.base_url };
    let c = submit(&state, Command::UpsertProvider(Box::new(command)), meta(&who, &headers, request_id)?).await?;
    let provider: Arc<Provider> = typed(answered(&c)?)?;
    Ok(json(StatusCode::OK, ProviderBody::new(&provider, c.position)))
}

#[utoipa::path(get, path = "/v1/wallet/providers/{id}", tag = "wallet", params(("id" = String, Path)),
    responses((status = 200, body = ProviderBody), (status = 404, body = Problem, description = "provider_not_found")),
    security(("api_key" = [])))]
pub async fn get_provider(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require(&state, &headers, ADMIN).await?;
    let (provider, position) = provider_of(&state, &id)?.ok_or(ApiError::from(Rejection::ProviderNotFound))?;
    Ok(json(StatusCode::OK, ProviderBody::new(&provider, position)))
}

fn redirect_url(state: &ApiState, d: &Deposit) -> Result<Option<String>, ApiError> {
    let base = provider_of(state, &d.provider)?.and_then(|(p, _)| p.base_url.clone());
    Ok(base.map(|b| format!("{}/pay/{}?amount={}&currency={}", b.trim_end_matches('/'), d.id, d.amount, d.currency)))
}

#[utoipa::path(post, path = "/v1/wallet/deposits", tag = "wallet", request_body = PaymentRequest,
    responses((status = 201, body = DepositBody, description = "Pending: pay at redirect_url; nothing moved yet"),
        (status = 200, body = DepositBody, description = "The same body again: the original"),
        (status = 404, body = Problem, description = "player_not_found, provider_not_found"),
        (status = 409, body = Problem, description = "deposit_exists"),
        (status = 422, body = Problem, description = "limit_exceeded (the limit and what it leaves), self_excluded, currency_mismatch, the amount")),
    security(("api_key" = [])))]
pub async fn create_deposit(
    State(state): State<ApiState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    Json(body): Json<PaymentRequest>,
) -> Result<Response, ApiError> {
    let who = require_some(&state, &headers, PAY).await?;
    require_of(&state, &who, &[PAY.of(&body.player_id)]).await?;
    let command = CreateDeposit {
        id: DepositId(body.id),
        player: body.player_id,
        amount: body.amount.parse()?,
        currency: currency(&body.currency)?,
        provider: body.provider,
    };
    let c = submit(&state, Command::CreateDeposit(Box::new(command)), meta(&who, &headers, request_id)?).await?;
    let deposit: Arc<Deposit> = typed(answered(&c)?)?;
    Ok(json(created(&c), DepositBody::new(&deposit, redirect_url(&state, &deposit)?, c.position)))
}

#[utoipa::path(get, path = "/v1/wallet/deposits/{id}", tag = "wallet", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = DepositBody), (status = 404, body = Problem, description = "deposit_not_found")),
    security(("api_key" = [])))]
pub async fn get_deposit(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let who = require_some(&state, &headers, READ).await?;
    let id = uuid_or(&id, Rejection::DepositNotFound)?;
    let found = deposit_of(&state, DepositId(id))?;
    let player = found.as_ref().map_or(String::new(), |(d, _)| d.player.clone());
    require_of(&state, &who, &[READ.of(&player)]).await?;
    let (deposit, position) = found.ok_or(ApiError::from(Rejection::DepositNotFound))?;
    Ok(json(StatusCode::OK, DepositBody::new(&deposit, redirect_url(&state, &deposit)?, position)))
}

#[utoipa::path(post, path = "/v1/wallet/withdrawals", tag = "wallet", request_body = PaymentRequest,
    responses((status = 201, body = WithdrawalBody, description = "Locked: main → locked; the payout goes to the provider"),
        (status = 200, body = WithdrawalBody, description = "The same body again: the withdrawal as it stands"),
        (status = 404, body = Problem, description = "player_not_found, provider_not_found"),
        (status = 409, body = Problem, description = "withdrawal_exists"),
        (status = 422, body = Problem, description = "kyc_required, limit_exceeded, bonus_wagering_open, insufficient_funds, currency_mismatch, the amount")),
    security(("api_key" = [])))]
pub async fn create_withdrawal(
    State(state): State<ApiState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    Json(body): Json<PaymentRequest>,
) -> Result<Response, ApiError> {
    let who = require_some(&state, &headers, PAY).await?;
    require_of(&state, &who, &[PAY.of(&body.player_id)]).await?;
    let terms = terms(&state);
    let command = RequestWithdrawal {
        id: WithdrawalId(body.id),
        player: body.player_id,
        amount: body.amount.parse()?,
        currency: currency(&body.currency)?,
        provider: body.provider,
        timeout_seconds: terms.withdrawal_timeout_seconds,
        open_bonus: terms.open_bonus,
    };
    let c = submit(&state, Command::RequestWithdrawal(Box::new(command)), meta(&who, &headers, request_id)?).await?;
    let withdrawal: Arc<Withdrawal> = typed(answered(&c)?)?;
    Ok(json(created(&c), WithdrawalBody::new(&withdrawal, c.position)))
}

#[utoipa::path(get, path = "/v1/wallet/withdrawals/{id}", tag = "wallet", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = WithdrawalBody, description = "The withdrawal and each step of its saga"),
        (status = 404, body = Problem, description = "withdrawal_not_found")),
    security(("api_key" = [])))]
pub async fn get_withdrawal(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let who = require_some(&state, &headers, READ).await?;
    let id = uuid_or(&id, Rejection::WithdrawalNotFound)?;
    let found = withdrawal_of(&state, WithdrawalId(id))?;
    let player = found.as_ref().map_or(String::new(), |(w, _)| w.player.clone());
    require_of(&state, &who, &[READ.of(&player)]).await?;
    let (withdrawal, position) = found.ok_or(ApiError::from(Rejection::WithdrawalNotFound))?;
    Ok(json(StatusCode::OK, WithdrawalBody::new(&withdrawal, position)))
}

#[utoipa::path(post, path = "/v1/wallet/players/{id}/bonuses", tag = "wallet", request_body = BonusRequest,
    params(("id" = String, Path)),
    responses((status = 201, body = BonusBody, description = "Granted: bonus_cost → bonus"),
        (status = 200, body = BonusBody, description = "The same body again: the bonus as it stands"),
        (status = 404, body = Problem, description = "player_not_found"),
        (status = 409, body = Problem, description = "bonus_exists, bonus_open"),
        (status = 422, body = Problem, description = "invalid_bonus, the amount")),
    security(("api_key" = [])))]
pub async fn grant_bonus(
    State(state): State<ApiState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<BonusRequest>,
) -> Result<Response, ApiError> {
    let who = require(&state, &headers, ADMIN).await?;
    let command = GrantBonus {
        id: BonusId(body.id),
        player: id,
        amount: body.amount.parse()?,
        wagering_multiplier: body.wagering_multiplier.parse()?,
        expires_at: instant("expires_at", &body.expires_at)?,
    };
    let c = submit(&state, Command::GrantBonus(Box::new(command)), meta(&who, &headers, request_id)?).await?;
    let bonus: Arc<Bonus> = typed(answered(&c)?)?;
    Ok(json(created(&c), BonusBody::new(&bonus)))
}

#[utoipa::path(post, path = "/v1/wallet/bonuses/{id}/forfeit", tag = "wallet",
    request_body(content = Option<ForfeitRequest>, description = "Optional: an empty body (or null) gives no reason"),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = BonusBody, description = "Forfeited: what was left went back to bonus_cost"),
        (status = 404, body = Problem, description = "bonus_not_found"),
        (status = 409, body = Problem, description = "bonus_closed"),
        (status = 422, body = Problem, description = "invalid_reason")),
    security(("api_key" = [])))]
pub async fn forfeit_bonus(
    State(state): State<ApiState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<ForfeitRequest>,
) -> Result<Response, ApiError> {
    let who = require(&state, &headers, ADMIN).await?;
    let id = uuid_or(&id, Rejection::BonusNotFound)?;
    let command = Command::ForfeitBonus { id: BonusId(id), reason: body.reason };
    let c = submit(&state, command, meta(&who, &headers, request_id)?).await?;
    let bonus: Arc<Bonus> = typed(answered(&c)?)?;
    Ok(json(StatusCode::OK, BonusBody::new(&bonus)))
}
