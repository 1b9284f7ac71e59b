//! What providers send the wallet: a payment provider's webhooks (deposit and withdrawal
//! outcomes) and a game provider's seamless-wallet calls (balance, bet, win, rollback). No API
//! key: each is signed with its provider's secret by the Standard Webhooks scheme and checked by
//! the platform's verifier; a missing, bad or stale signature is 401 and nothing is written.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use ledger_core::wallet::command::{GameAction, GameCall, ProviderKind, Settle};
use ledger_core::wallet::state::Provider;
use ledger_core::wallet::{Command, Rejection};
use ledger_core::{DepositId, WithdrawalId};
use ledger_store::{Committed, EventMeta};
use outbound::webhooks::{HEADER_ID, Verifier};

use super::routes::{at_scale, balances, currency, open_secret, player_of, provider_of, terms};
use super::wire::*;
use crate::error::{ApiError, Problem, Refusal};
use crate::handler::json;
use crate::{ApiState, RequestId};

fn unauthorized(why: impl std::fmt::Display) -> ApiError {
    ApiError::Rejected(Refusal { status: StatusCode::UNAUTHORIZED, code: "invalid_signature", detail: why.to_string() })
}

/// The provider of `kind` whose secret signed this message, and the message's id.
fn verified(
    state: &ApiState,
    id: &str,
    kind: ProviderKind,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Provider, String), ApiError> {
    // An unknown provider is refused like a bad signature: the answer says nothing of who exists.
    let (provider, _) = provider_of(state, id)?
        .filter(|(p, _)| p.kind == kind)
        .ok_or_else(|| unauthorized("no provider of this kind has this id"))?;
    let secret = open_secret(state, &provider)?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let message = Verifier::new(secret).verify(headers, body, now).map_err(unauthorized)?;
    Ok(((*provider).clone(), message.id))
}

/// Who the command came from: the provider, by the signature it checked out with.
fn provider_meta(provider: &str, headers: &HeaderMap, request_id: RequestId) -> EventMeta {
    let message = headers.get(HEADER_ID).and_then(|v| v.to_str().ok()).unwrap_or_default();
    EventMeta {
        correlation_id: Some(request_id.0),
        causation_id: None,
        channel: Some(format!("wallet-provider:{provider}")),
        initiator: Some(format!("webhook {}", message.chars().take(100).collect::<String>())),
        key_id: None,
        source: Some(ledger_store::Source::Http),
    }
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::InvalidBody(e.to_string()))
}

#[utoipa::path(post, path = "/v1/wallet/webhooks/payments/{provider}", tag = "wallet", request_body = PaymentEvent,
    params(("provider" = String, Path, description = "The payment provider's id"),
        ("webhook-id" = String, Header, description = "The message's id (Standard Webhooks)"),
        ("webhook-timestamp" = i64, Header, description = "Seconds since the Unix epoch, within 5 minutes of now"),
        ("webhook-signature" = String, Header, description = "v1,<base64 HMAC-SHA256> with the provider's secret")),
    responses((status = 200, body = WebhookAnswer, description = "Recorded, or recorded before the same way"),
        (status = 401, body = Problem, description = "invalid_signature: missing, bad or stale, or no such provider"),
        (status = 404, body = Problem, description = "deposit_not_found, withdrawal_not_found"),
        (status = 409, body = Problem, description = "deposit_already_settled, withdrawal_already_settled"),
        (status = 422, body = Problem, description = "amount_mismatch, invalid_reference, invalid_reason")))]
pub async fn payment_webhook(
    State(state): State<ApiState>,
    axum::Extension(request_id): axum::Extension<RequestId>,
    headers: HeaderMap,
    Path(provider): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (provider, event_id) = verified(&state, &provider, ProviderKind::Payments, &headers, &body)?;
    let event: PaymentEvent = parse(&body)?;
    let d = event.data;
    let meta = provider_meta(&provider.id, &headers, request_id);
    let (succeeded, amount, currency) = (
        matches!(event.r#type, PaymentEventType::DepositSucceeded | PaymentEventType::WithdrawalSucceeded),
        d.amount.parse()?,
        currency(&d.currency)?,
    );
    let (reference, reason) = (d.provider_reference, d.reason);
    let command = match event.r#type {
        PaymentEventType::DepositSucceeded | PaymentEventType::DepositFailed => {
            Command::SettleDeposit(Box::new(Settle {
                id: DepositId(d.id),
                provider: provider.id.clone(),
                succeeded,
                amount,
                currency,
                provider_reference: reference,
                reason,
                event_id,
            }))
        }
        PaymentEventType::WithdrawalSucceeded | PaymentEventType::WithdrawalFailed => {
            Command::SettleWithdrawal(Box::new(Settle {
                id: WithdrawalId(d.id),
                provider: provider.id.clone(),
                succeeded,
                amount,
                currency,
                provider_reference: reference,
                reason,
                event_id,
            }))
        }
    };
    let c = crate::entity::submit(&state, command, meta).await?;
    let row = crate::entity::answered(&c)?;
    let state_json: serde_json::Value = row.parse().map_err(|e| ApiError::Internal(e.to_string()))?;
    let status = state_json.get("status").and_then(|s| s.as_str()).unwrap_or_default().to_owned();
    Ok(json(StatusCode::OK, WebhookAnswer { status: "accepted".into(), id: d.id, payment_status: status }))
}

/// The answer with the player's balances as they stand (the player may be unknown).
fn answer(
    state: &ApiState,
    status: &'static str,
    player: &str,
    request_uuid: uuid::Uuid,
) -> Result<GameAnswer, ApiError> {
    let Some((p, _)) = player_of(state, player)? else {
        return Ok(GameAnswer { status, balance: None, bonus_balance: None, currency: None, request_uuid });
    };
    let (main, bonus, _) = balances(state, player);
    Ok(GameAnswer {
        status,
        balance: Some(at_scale(state, &p.currency, main)),
        bonus_balance: Some(at_scale(state, &p.currency, bonus)),
        currency: Some(p.currency.to_string()),
        request_uuid,
    })
}

/// The answer a recorded game transaction gave (a replay answers it again).
fn recorded(state: &ApiState, c: &Committed, request_uuid: uuid::Uuid) -> Result<GameAnswer, ApiError> {
    let row = crate::entity::answered(c)?;
    let t: std::sync::Arc<ledger_core::wallet::state::GameTransaction> = crate::entity::typed(row)?;
    let currency = t.currency.clone().ok_or_else(|| ApiError::Internal("a recorded call has a currency".into()))?;
    Ok(GameAnswer {
        status: "OK",
        balance: Some(at_scale(state, &currency, t.balance)),
        bonus_balance: Some(at_scale(state, &currency, t.bonus_balance)),
        currency: Some(currency.to_string()),
        request_uuid,
    })
}

#[utoipa::path(post, path = "/v1/wallet/games/{provider}/{action}", tag = "wallet", request_body = GameRequest,
    params(("provider" = String, Path, description = "The game provider's id"),
        ("action" = GameActionPath, Path, description = "balance, bet, win or rollback (another answers INVALID_REQUEST)"),
        ("webhook-id" = String, Header, description = "The call's id (Standard Webhooks)"),
        ("webhook-timestamp" = i64, Header, description = "Seconds since the Unix epoch, within 5 minutes of now"),
        ("webhook-signature" = String, Header, description = "v1,<base64 HMAC-SHA256> with the provider's secret")),
    responses((status = 200, body = GameAnswer, description = "OK, or a code the aggregator acts on, with the balances"),
        (status = 401, body = Problem, description = "invalid_signature: missing, bad or stale, or no such provider")))]
pub async fn game_call(
    State(state): State<ApiState>,
    axum::Extension(request_id): axum::Extension<RequestId>,
    headers: HeaderMap,
    Path((provider, action)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (provider, _) = verified(&state, &provider, ProviderKind::Games, &headers, &body)?;
    let invalid = |request_uuid| GameAnswer {
        status: "INVALID_REQUEST",
        balance: None,
        bonus_balance: None,
        currency: None,
        request_uuid,
    };
    let Ok(request) = serde_json::from_slice::<GameRequest>(&body) else {
        return Ok(json(StatusCode::OK, invalid(uuid::Uuid::nil())));
    };
    let rid = request.request_uuid;
    let action = match action.as_str() {
        "balance" => return Ok(json(StatusCode::OK, answer(&state, "OK", &request.player_id, rid)?)),
        "bet" => GameAction::Bet,
        "win" => GameAction::Win,
        "rollback" => GameAction::Rollback,
        _ => return Ok(json(StatusCode::OK, invalid(rid))),
    };
    let (Some(transaction), Some(round), Some(amount), Some(code)) =
        (request.transaction_uuid, request.round, request.amount, request.currency)
    else {
        return Ok(json(StatusCode::OK, answer(&state, "INVALID_REQUEST", &request.player_id, rid)?));
    };
    let (Ok(amount), Ok(currency)) = (amount.parse(), currency(&code)) else {
        return Ok(json(StatusCode::OK, answer(&state, "INVALID_REQUEST", &request.player_id, rid)?));
    };
    let terms = terms(&state);
    let call = GameCall {
        provider: provider.id.clone(),
        action,
        transaction,
        player: request.player_id.clone(),
        round,
        amount,
        currency,
        reference: request.reference_transaction_uuid,
        round_closed: request.round_closed,
        bonus_first: terms.bonus_first,
        wagering_bonus_only: terms.wagering_bonus_only,
    };
    let meta = provider_meta(&provider.id, &headers, request_id);
    match state.inner.ledger.submit(Command::Game(Box::new(call)), meta).await? {
        Ok(c) => Ok(json(StatusCode::OK, recorded(&state, &c, rid)?)),
        Err(r) => Ok(json(StatusCode::OK, answer(&state, Rejection::game_status(r), &request.player_id, rid)?)),
    }
}
