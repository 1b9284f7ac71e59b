//! The API's one error type and its stable code table, rendered as `application/problem+json`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ledger_store::WriteError;
use uuid::Uuid;

/// A domain's refusal of a command, as that domain's table maps it to HTTP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{}", .0.detail)]
    Rejected(Refusal),
    /// An item of a batch breaks a constraint of the document: the batch is refused whole.
    #[error("transfers[{index}]: {}", refusal.detail)]
    InvalidItem { index: usize, refusal: Refusal },
    #[error("{0}")]
    InvalidBody(String),
    #[error("{0}")]
    InvalidAmount(String),
    #[error("{0}")]
    InvalidQuery(String),
    #[error("a valid API key is required: Authorization: Bearer <key>")]
    Unauthorized,
    /// The permission the key lacks, e.g. `payouts:request:client-6`.
    #[error("this key lacks the permission {0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("this path does not take that method (see the Allow header)")]
    MethodNotAllowed,
    #[error("the body exceeds the size limit (64 KiB, or 4 MiB for a batch)")]
    PayloadTooLarge,
    #[error("this key is over its rate limit; retry after {0} s (Retry-After)")]
    RateLimited(u64),
    #[error("the writer's queue is full; retry with the same id")]
    Overloaded,
    #[error("the ledger is unavailable; retry with the same id")]
    Unavailable,
    #[error("no key is configured to seal certificate CVCs (LEDGER_SECRETS_KEY)")]
    CvcKeysMissing,
    #[error("no secrets key is configured to seal webhook secrets (LEDGER_SECRETS_KEY)")]
    WebhooksUnavailable,
    #[error(
        "no secrets key is configured to seal stores' callback secrets and requisites' details (LEDGER_SECRETS_KEY)"
    )]
    SecretsKeyMissing,
    #[error("the read models do not run in this process")]
    ReadModelMissing,
    /// A read model's reader failed (its database down): the detail is logged, never sent.
    #[error("the read model did not answer; retry later")]
    ReadModelFailed(String),
    #[error("internal error")]
    Internal(String),
}

pub use api_common::{Code, Problem};

impl ApiError {
    pub fn code(&self) -> Code {
        let c = |status, code, title| Code { status, code, title };
        match self {
            ApiError::Rejected(r) => c(r.status, r.code, "The ledger rejected the command"),
            ApiError::InvalidItem { refusal: r, .. } => {
                c(r.status, r.code, "An item of the batch breaks a constraint of the API")
            }
            ApiError::InvalidBody(_) => c(StatusCode::BAD_REQUEST, "invalid_body", "The request body is not valid"),
            ApiError::InvalidAmount(_) => {
                c(StatusCode::BAD_REQUEST, "invalid_amount", "An amount is not a decimal string")
            }
            ApiError::InvalidQuery(_) => c(StatusCode::BAD_REQUEST, "invalid_query", "The query string is not valid"),
            ApiError::Unauthorized => api_common::UNAUTHORIZED,
            ApiError::Forbidden(_) => api_common::FORBIDDEN,
            ApiError::NotFound("account") => c(StatusCode::NOT_FOUND, "account_not_found", "Account not found"),
            ApiError::NotFound("transfer") => c(StatusCode::NOT_FOUND, "transfer_not_found", "Transfer not found"),
            ApiError::NotFound("key") => c(StatusCode::NOT_FOUND, "key_not_found", "No active key with this id"),
            ApiError::NotFound("payout request") => {
                c(StatusCode::NOT_FOUND, "payout_request_not_found", "Payout request not found")
            }
            ApiError::NotFound("config key") => {
                c(StatusCode::NOT_FOUND, "unknown_config_key", "No setting has this key")
            }
            ApiError::NotFound("webhook endpoint") => {
                c(StatusCode::NOT_FOUND, "endpoint_not_found", "No webhook endpoint with this id")
            }
            ApiError::NotFound("webhook message") => {
                c(StatusCode::NOT_FOUND, "message_not_found", "No webhook message with this id")
            }
            ApiError::NotFound(_) => c(StatusCode::NOT_FOUND, "not_found", "Not found"),
            ApiError::MethodNotAllowed => {
                c(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "The method is not allowed here")
            }
            ApiError::PayloadTooLarge => {
                c(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "The request body is too large")
            }
            ApiError::RateLimited(_) => {
                c(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "The key is over its rate limit")
            }
            ApiError::Overloaded => c(StatusCode::SERVICE_UNAVAILABLE, "overloaded", "The ledger is overloaded"),
            ApiError::Unavailable => c(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "The ledger is unavailable"),
            ApiError::CvcKeysMissing => {
                c(StatusCode::SERVICE_UNAVAILABLE, "cvc_keys_missing", "Certificates are not configured")
            }
            ApiError::WebhooksUnavailable => {
                c(StatusCode::SERVICE_UNAVAILABLE, "webhooks_unavailable", "Webhooks are not configured")
            }
            ApiError::SecretsKeyMissing => {
                c(StatusCode::SERVICE_UNAVAILABLE, "secrets_key_missing", "No secrets key is configured")
            }
            ApiError::ReadModelMissing => {
                c(StatusCode::SERVICE_UNAVAILABLE, "read_model_unavailable", "The read model is not available here")
            }
            ApiError::ReadModelFailed(_) => {
                c(StatusCode::SERVICE_UNAVAILABLE, "read_model_unavailable", "The read model is not available here")
            }
            ApiError::Internal(_) => api_common::INTERNAL,
        }
    }

    /// The problem document, with the request id that ties it to the server's logs.
    pub fn problem(&self, request_id: Uuid) -> Problem {
        let detail = match self {
            // Internal details are logged, never sent.
            ApiError::Internal(_) => api_common::INTERNAL_DETAIL.to_owned(),
            other => other.to_string(),
        };
        Problem::new(self.code(), detail, request_id)
    }
}

impl From<WriteError> for ApiError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Overloaded => ApiError::Overloaded,
            WriteError::Unavailable => ApiError::Unavailable,
        }
    }
}

impl From<ledger_store::keys::KeyError> for ApiError {
    fn from(e: ledger_store::keys::KeyError) -> Self {
        use ledger_store::keys::KeyError;
        match e {
            KeyError::Unauthorized => ApiError::Unauthorized,
            KeyError::Forbidden(permission) => ApiError::Forbidden(permission),
            KeyError::Database(e) => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::Internal(e.to_string())
    }
}

/// An error on its way out: the request-id middleware fills in the id.
pub struct ErrorResponse(pub ApiError);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.code().status;
        let mut response = status.into_response();
        response.extensions_mut().insert(std::sync::Arc::new(ErrorResponse(self)));
        response
    }
}

/// Renders a problem body for an error the middleware found on a response.
pub fn render(error: &ApiError, request_id: Uuid) -> Response {
    if let ApiError::Internal(detail) = error {
        tracing::error!(%request_id, detail, "internal error");
    }
    if let ApiError::ReadModelFailed(detail) = error {
        tracing::warn!(%request_id, detail, "a read model did not answer");
    }
    error.problem(request_id).into_response()
}
