//! The gift certificates' endpoints (seed 004), their OpenAPI part and the table that maps the
//! certificates domain's rejections to HTTP.

pub mod audit;
pub mod routes;
pub mod wire;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use ledger_core::certificates::Rejection;
use utoipa::OpenApi;

use crate::error::{ApiError, Refusal};
use crate::{ApiState, MAX_BATCH_BODY_BYTES};
use wire::*;

/// The certificates' routes.
pub fn router() -> Router<ApiState> {
    Router::new()
        .route("/v1/certificates/upload/batch", post(routes::upload).layer(DefaultBodyLimit::max(MAX_BATCH_BODY_BYTES)))
        .route("/v1/certificates/{code}/activate", post(routes::activate))
        .route("/v1/certificates/{code}/authorize", post(routes::authorize))
        .route("/v1/certificates/{code}/capture", post(routes::capture))
        .route("/v1/certificates/{code}/void", post(routes::void))
        .route("/v1/certificates/{code}/refund", post(routes::refund))
        .route("/v1/certificates/{code}/cancel", post(routes::cancel))
        .route("/v1/certificates/{code}/balance", get(routes::balance))
        .route("/v1/certificates/audit", get(audit::audit))
}

/// The certificates' part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    paths(
        routes::upload,
        routes::activate,
        routes::authorize,
        routes::capture,
        routes::void,
        routes::refund,
        routes::cancel,
        routes::balance,
        audit::audit
    ),
    components(schemas(
        UploadRow,
        UploadRequest,
        UploadResult,
        RowProblem,
        UploadBody,
        ActivateRequest,
        AuthorizeRequest,
        CaptureRequest,
        VoidRequest,
        RefundRequest,
        CancelRequest,
        CertificateBody,
        audit::AuditEntry,
        audit::AuditPage
    ))
)]
pub struct Doc;

/// HTTP status of each certificates rejection: 404 for a certificate or operation that does not
/// exist, 409 for a conflict with the certificate's state, 422 for everything else (the
/// ledger's own rules by the ledger's table).
pub fn rejection_status(r: Rejection) -> StatusCode {
    use Rejection::*;
    match r {
        CertificateNotFound | OperationNotFound => StatusCode::NOT_FOUND,
        ExistsWithDifferentFields
        | CertificateNotActive
        | CertificateNotIssued
        | CertificateExpired
        | CertificateCancelled
        | CertificateRefunded
        | CertificateLocked
        | AuthorizationAlreadyCaptured
        | AuthorizationVoided
        | AuthorizationOpen => StatusCode::CONFLICT,
        InvalidCertificateCode
        | InvalidOperationId
        | InvalidReference
        | InvalidPhone
        | InvalidCampaign
        | InvalidReason
        | InvalidExpiry
        | PhoneRequired
        | PaymentMismatch
        | CaptureExceedsAuthorization => StatusCode::UNPROCESSABLE_ENTITY,
        Ledger(r) => crate::ledger::rejection_status(r),
    }
}

/// A certificates rejection as the API answers it.
pub fn refusal(r: Rejection) -> Refusal {
    Refusal { status: rejection_status(r), code: r.code(), detail: r.to_string() }
}

impl From<Rejection> for ApiError {
    fn from(r: Rejection) -> Self {
        ApiError::Rejected(refusal(r))
    }
}

/// A presented CVC that does not match: counted by the core, answered as a refusal.
pub fn invalid_cvc() -> ApiError {
    ApiError::Rejected(Refusal {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        code: "invalid_cvc",
        detail: "the CVC does not match; the fifth wrong one in a row locks the certificate for 15 minutes".into(),
    })
}
