//! What both HTTP APIs (commands and GraphQL) share at the edge, so they answer alike: the
//! problem document (RFC 9457 plus a stable `code` and the `request_id`), its media type, and the
//! rows of the code table for what both meet before any handler runs (a missing, unknown or
//! revoked key; a key without the scope; an internal error).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ledger_store::keys::KeyError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// The media type of every error either API answers.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One row of a code table: the HTTP status, the stable code, the title.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Code {
    pub status: StatusCode,
    pub code: &'static str,
    pub title: &'static str,
}

pub const UNAUTHORIZED: Code =
    Code { status: StatusCode::UNAUTHORIZED, code: "unauthorized", title: "Missing or invalid API key" };
pub const FORBIDDEN: Code =
    Code { status: StatusCode::FORBIDDEN, code: "forbidden", title: "The API key lacks a scope" };
pub const INTERNAL: Code =
    Code { status: StatusCode::INTERNAL_SERVER_ERROR, code: "internal", title: "Internal error" };

/// What an internal error says to the caller: nothing but where to look.
pub const INTERNAL_DETAIL: &str = "internal error; quote the request id to the operator";

/// The row of a key refusal.
pub fn key_code(error: &KeyError) -> Code {
    match error {
        KeyError::Unauthorized => UNAUTHORIZED,
        KeyError::Forbidden(_) => FORBIDDEN,
        KeyError::Database(_) => INTERNAL,
    }
}

/// RFC 9457 problem details, plus the stable `code` and the `request_id`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    pub r#type: String,
    pub title: String,
    pub status: u16,
    pub code: String,
    pub detail: String,
    pub request_id: Uuid,
}

impl Problem {
    pub fn new(code: Code, detail: String, request_id: Uuid) -> Problem {
        Problem {
            r#type: format!("/problems/{}", code.code),
            title: code.title.to_owned(),
            status: code.status.as_u16(),
            code: code.code.to_owned(),
            detail,
            request_id,
        }
    }

    /// A key refusal as a problem; a database failure behind it is logged, never sent.
    pub fn for_key(error: &KeyError, request_id: Uuid) -> Problem {
        let detail = match error {
            KeyError::Database(e) => {
                tracing::error!(%request_id, error = %e, "key lookup failed");
                INTERNAL_DETAIL.to_owned()
            }
            other => other.to_string(),
        };
        Problem::new(key_code(error), detail, request_id)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(self)).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        response
    }
}
