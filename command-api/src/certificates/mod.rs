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
use crate::openapi::{At, Link, Text};
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

/// The texts the certificates' requests carry, by the core's rules. The upload's rows are left
/// to their types: a row out of its rules rejects only itself.
pub const TEXTS: &[(At, Text)] = &[
    (At::Property("ActivateRequest", "order_id"), Text::Reference),
    (At::Property("ActivateRequest", "payment_id"), Text::Reference),
    (At::Property("ActivateRequest", "client_id"), Text::Reference),
    (At::Property("ActivateRequest", "phone"), Text::Phone),
    (At::Property("AuthorizeRequest", "operation_id"), Text::Reference),
    (At::Property("AuthorizeRequest", "cvc"), Text::Cvc),
    (At::Property("CaptureRequest", "operation_id"), Text::Reference),
    (At::Property("VoidRequest", "operation_id"), Text::Reference),
    (At::Property("RefundRequest", "operation_id"), Text::Reference),
    (At::Property("RefundRequest", "reason"), Text::Reason),
    (At::Property("CancelRequest", "operation_id"), Text::Reference),
    (At::Property("CancelRequest", "reason"), Text::Reason),
    (At::Parameter("activate", "code"), Text::CertificateCode),
    (At::Parameter("authorize", "code"), Text::CertificateCode),
    (At::Parameter("capture", "code"), Text::CertificateCode),
    (At::Parameter("void", "code"), Text::CertificateCode),
    (At::Parameter("refund", "code"), Text::CertificateCode),
    (At::Parameter("cancel", "code"), Text::CertificateCode),
    (At::Parameter("balance", "code"), Text::CertificateCode),
];

/// The certificate of the upload's first row.
const UPLOADED: &[(&str, &str)] = &[("code", "$response.body#/results/0/code")];
/// The certificate the request named.
const SAME: &[(&str, &str)] = &[("code", "$request.path.code")];
/// The authorization the request named.
const OPERATION: &[(&str, &str)] = &[("operation_id", "$request.body#/operation_id")];

const fn link(from: &'static str, to: &'static str, parameters: &'static [(&'static str, &'static str)]) -> Link {
    Link { from, to, parameters, body: &[] }
}

/// From an uploaded certificate to its activation, from an active one to what can be done with
/// it, and from an authorization to its capture or void.
pub const LINKS: &[Link] = &[
    link("upload", "activate", UPLOADED),
    link("upload", "balance", UPLOADED),
    link("upload", "cancel", UPLOADED),
    link("activate", "authorize", SAME),
    link("activate", "balance", SAME),
    link("activate", "refund", SAME),
    link("activate", "cancel", SAME),
    Link { from: "authorize", to: "capture", parameters: SAME, body: OPERATION },
    Link { from: "authorize", to: "void", parameters: SAME, body: OPERATION },
    link("authorize", "balance", SAME),
    Link { from: "capture", to: "void", parameters: SAME, body: OPERATION },
    link("capture", "refund", SAME),
    link("capture", "balance", SAME),
    link("void", "refund", SAME),
    link("void", "balance", SAME),
    link("refund", "balance", SAME),
    link("cancel", "balance", SAME),
];

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
