//! The gaming wallet's endpoints (seed 002): players, providers, deposits, withdrawals and
//! bonuses for operators and the cashier; the payment providers' webhooks and the game
//! providers' seamless-wallet calls, signed; their OpenAPI part and the table that maps the
//! wallet's rejections to HTTP.

pub mod movements;
pub mod provider;
pub mod routes;
pub mod statement;
pub mod wire;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use ledger_core::wallet::Rejection;
use utoipa::OpenApi;

use crate::ApiState;
use crate::error::{ApiError, Refusal};
use crate::openapi::{At, Link, Text};
use wire::*;

/// The wallet's routes.
pub fn router() -> Router<ApiState> {
    Router::new()
        .route("/v1/wallet/players/{id}", put(routes::put_player).get(routes::get_player))
        .route("/v1/wallet/players/{id}/bonuses", post(routes::grant_bonus))
        .route("/v1/wallet/players/{id}/statement", get(statement::player_statement))
        .route("/v1/wallet/bonuses/{id}/forfeit", post(routes::forfeit_bonus))
        .route("/v1/wallet/providers/{id}", put(routes::put_provider).get(routes::get_provider))
        .route("/v1/wallet/deposits", post(routes::create_deposit))
        .route("/v1/wallet/deposits/{id}", get(routes::get_deposit))
        .route("/v1/wallet/withdrawals", post(routes::create_withdrawal))
        .route("/v1/wallet/withdrawals/{id}", get(routes::get_withdrawal))
        .route("/v1/wallet/webhooks/payments/{provider}", post(provider::payment_webhook))
        .route("/v1/wallet/games/{provider}/{action}", post(provider::game_call))
}

/// The wallet's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    paths(
        routes::put_player,
        routes::get_player,
        routes::grant_bonus,
        statement::player_statement,
        routes::forfeit_bonus,
        routes::put_provider,
        routes::get_provider,
        routes::create_deposit,
        routes::get_deposit,
        routes::create_withdrawal,
        routes::get_withdrawal,
        provider::payment_webhook,
        provider::game_call
    ),
    components(schemas(
        WireKyc,
        LimitsRequest,
        PlayerRequest,
        PendingBody,
        TimedBody,
        LimitsBody,
        BalancesBody,
        PlayerBody,
        WireProviderKind,
        ProviderRequest,
        ProviderBody,
        PaymentRequest,
        WireDepositStatus,
        DepositBody,
        WireWithdrawalStatus,
        StepBody,
        WithdrawalBody,
        BonusRequest,
        ForfeitRequest,
        WireBonusStatus,
        BonusBody,
        PaymentEventType,
        PaymentEventData,
        PaymentEvent,
        WebhookAnswer,
        GameActionPath,
        GameRequest,
        GameAnswer,
        statement::StatementAccount,
        statement::StatementFormat,
        statement::StatementAccountBody,
        statement::StatementMovementBody,
        statement::StatementBody,
        statement::Workbook
    ))
)]
pub struct Doc;

/// The texts the wallet's requests carry, by the core's rules.
pub const TEXTS: &[(At, Text)] = &[
    (At::Property("PlayerRequest", "currency"), Text::Currency),
    (At::Property("PaymentRequest", "player_id"), Text::Participant),
    (At::Property("PaymentRequest", "currency"), Text::Currency),
    (At::Property("PaymentRequest", "provider"), Text::Participant),
    (At::Property("ForfeitRequest", "reason"), Text::Reason),
    (At::Property("PaymentEventData", "currency"), Text::Currency),
    (At::Property("PaymentEventData", "provider_reference"), Text::Reference),
    (At::Property("PaymentEventData", "reason"), Text::Reason),
    (At::Property("GameRequest", "player_id"), Text::Participant),
    (At::Property("GameRequest", "round"), Text::Reference),
    (At::Property("GameRequest", "currency"), Text::Currency),
    (At::Parameter("payment_webhook", "provider"), Text::Participant),
    (At::Parameter("game_call", "provider"), Text::Participant),
    (At::Parameter("put_player", "id"), Text::Participant),
    (At::Parameter("get_player", "id"), Text::Participant),
    (At::Parameter("grant_bonus", "id"), Text::Participant),
    (At::Parameter("player_statement", "id"), Text::Participant),
    (At::Parameter("put_provider", "id"), Text::Participant),
    (At::Parameter("get_provider", "id"), Text::Participant),
];

const ID: &[(&str, &str)] = &[("id", "$response.body#/id")];

/// From a new payment or participant to its other routes.
pub const LINKS: &[Link] = &[
    Link { from: "create_deposit", to: "get_deposit", parameters: ID, body: &[] },
    Link { from: "create_withdrawal", to: "get_withdrawal", parameters: ID, body: &[] },
    Link { from: "put_player", to: "get_player", parameters: ID, body: &[] },
    Link { from: "put_player", to: "grant_bonus", parameters: ID, body: &[] },
    Link { from: "put_player", to: "player_statement", parameters: ID, body: &[] },
    Link { from: "get_player", to: "player_statement", parameters: ID, body: &[] },
    Link { from: "get_player", to: "put_player", parameters: ID, body: &[] },
    Link { from: "get_provider", to: "put_provider", parameters: ID, body: &[] },
    Link { from: "put_provider", to: "get_provider", parameters: ID, body: &[] },
    Link { from: "grant_bonus", to: "forfeit_bonus", parameters: ID, body: &[] },
];

/// HTTP status of each wallet rejection: 404 for what does not exist, 409 for a conflict with
/// what is recorded, 422 for everything else (the ledger's own rules by the ledger's table).
pub fn rejection_status(r: Rejection) -> StatusCode {
    use Rejection::*;
    match r {
        PlayerNotFound | ProviderNotFound | DepositNotFound | WithdrawalNotFound | BonusNotFound => {
            StatusCode::NOT_FOUND
        }
        CurrencyFixed
        | ProviderKindFixed
        | DepositExists
        | DepositAlreadySettled
        | WithdrawalExists
        | WithdrawalAlreadySettled
        | BonusExists
        | BonusOpen
        | BonusClosed
        | DuplicateTransaction
        | TransactionRolledBack => StatusCode::CONFLICT,
        InvalidParticipantId
        | InvalidReference
        | InvalidBaseUrl
        | InvalidReason
        | InvalidLimit
        | InvalidBonus
        | CurrencyMismatch
        | SelfExcluded
        | LimitExceeded { .. }
        | KycRequired
        | BonusWageringOpen
        | AmountMismatch
        | TransactionNotFound
        | RollbackAfterWin
        | RoundClosed => StatusCode::UNPROCESSABLE_ENTITY,
        Ledger(r) => crate::ledger::rejection_status(r),
    }
}

/// A wallet rejection as the API answers it.
pub fn refusal(r: Rejection) -> Refusal {
    Refusal { status: rejection_status(r), code: r.code(), detail: r.to_string() }
}

impl From<Rejection> for ApiError {
    fn from(r: Rejection) -> Self {
        ApiError::Rejected(refusal(r))
    }
}
