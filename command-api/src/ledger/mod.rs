//! The ledger domain's endpoints: accounts, transfers, holds, reversals, batches and the ordered
//! log, with their OpenAPI paths and the table that maps the ledger's rejections to HTTP.

pub mod routes;
pub mod wire;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use ledger_core::ledger::Rejection;
use utoipa::OpenApi;

use crate::error::{ApiError, Refusal};
use crate::openapi::{At, Link, Text};
use crate::{ApiState, MAX_BATCH_BODY_BYTES};
use wire::*;

/// The ledger's routes.
pub fn router() -> Router<ApiState> {
    Router::new()
        .route("/v1/accounts", post(routes::open_account).get(routes::find_account))
        .route("/v1/accounts/{id}", get(routes::get_account))
        .route("/v1/accounts/{id}/{action}", post(routes::change_account_status))
        .route("/v1/transfers", post(routes::create_transfer))
        .route("/v1/transfers/batch", post(routes::create_batch).layer(DefaultBodyLimit::max(MAX_BATCH_BODY_BYTES)))
        .route("/v1/transfers/{id}", get(routes::get_transfer))
        .route("/v1/transfers/{id}/post", post(routes::post_pending))
        .route("/v1/transfers/{id}/void", post(routes::void_pending))
        .route("/v1/transfers/{id}/reverse", post(routes::reverse))
        .route("/v1/events", get(routes::events))
}

/// The ledger's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    paths(
        routes::open_account,
        routes::get_account,
        routes::find_account,
        routes::change_account_status,
        routes::create_transfer,
        routes::create_batch,
        routes::post_pending,
        routes::void_pending,
        routes::reverse,
        routes::get_transfer,
        routes::events
    ),
    components(schemas(
        AccountBody,
        BalanceBody,
        OpenAccountRequest,
        TransferRequest,
        PostingRequestBody,
        AccountStatusRequest,
        routes::StatusAction,
        PostPendingRequest,
        ReverseRequest,
        BatchRequest,
        BatchBody,
        BatchItem,
        TransferBody,
        PostingBody,
        EventBody,
        EventPage,
        WireAmount,
        Metadata
    ))
)]
pub struct Doc;

/// The texts the ledger's requests carry, by the core's rules (and an account's code in an
/// answer, so that generators reuse the codes they are given).
pub const TEXTS: &[(At, Text)] = &[
    (At::Property("AccountBody", "code"), Text::AccountCode),
    (At::Property("OpenAccountRequest", "code"), Text::AccountCode),
    (At::Property("OpenAccountRequest", "currency"), Text::Currency),
    (At::Property("PostingRequestBody", "account"), Text::AccountCode),
    (At::Property("SimpleTransfer", "debit"), Text::AccountCode),
    (At::Property("SimpleTransfer", "credit"), Text::AccountCode),
    (At::Property("SimpleTransfer", "external_ref"), Text::ExternalRef),
    (At::Property("MultiLegTransfer", "external_ref"), Text::ExternalRef),
    (At::Property("AccountStatusRequest", "reason"), Text::Reason),
    (At::Parameter("get_account", "id"), Text::AccountCode),
    (At::Parameter("change_account_status", "id"), Text::AccountCode),
    (At::Parameter("find_account", "code"), Text::AccountCode),
];

/// The account or transfer a successful answer carries.
const ID: &[(&str, &str)] = &[("id", "$response.body#/id")];
/// The first transfer of a batch.
const FIRST: &[(&str, &str)] = &[("id", "$response.body#/results/0/id")];

const fn link(from: &'static str, to: &'static str, parameters: &'static [(&'static str, &'static str)]) -> Link {
    Link { from, to, parameters, body: &[] }
}

/// Which operations take the account or transfer a successful answer carries.
pub const LINKS: &[Link] = &[
    link("open_account", "get_account", ID),
    link("open_account", "change_account_status", ID),
    link("open_account", "find_account", &[("code", "$response.body#/code")]),
    link("create_transfer", "get_transfer", ID),
    link("create_transfer", "post_pending", ID),
    link("create_transfer", "void_pending", ID),
    link("create_transfer", "reverse", ID),
    link("create_batch", "get_transfer", FIRST),
    link("create_batch", "post_pending", FIRST),
    link("create_batch", "void_pending", FIRST),
    link("create_batch", "reverse", FIRST),
    link("post_pending", "get_transfer", ID),
    link("post_pending", "reverse", ID),
    link("void_pending", "get_transfer", ID),
    link("reverse", "get_transfer", ID),
];

/// HTTP status of each core rejection: 404 for a missing transfer named in the path, 409 for a
/// conflict with existing state, 422 for everything else the ledger refuses.
pub fn rejection_status(r: Rejection) -> StatusCode {
    use Rejection::*;
    match r {
        PendingTransferNotFound | TransferNotFound => StatusCode::NOT_FOUND,
        ExistsWithDifferentFields
        | AccountCodeExists
        | PendingTransferNotPending
        | PendingTransferAlreadyPosted
        | PendingTransferAlreadyVoided
        | PendingTransferExpired
        | TransferNotPosted
        | TransferAlreadyReversed
        | IdTaken => StatusCode::CONFLICT,
        IdMustNotBeNil
        | InvalidAccountCode
        | UnknownCurrency
        | InvalidMetadata
        | InvalidExternalRef
        | InvalidReason
        | TooFewPostings
        | TooManyPostings
        | AmountMustBePositive
        | TimeoutReservedForPendingTransfer
        | TimeoutTooLong
        | AccountNotFound
        | SameAccountOnBothSides
        | CurrencyMismatch
        | AmountScale
        | Unbalanced
        | AccountFrozen
        | AccountClosed
        | Overflow
        | InsufficientFunds
        | AccountBalanceNotZero
        | PartialPostRequiresSimpleTransfer
        | PostAmountExceedsPending
        | LinkedEventFailed
        | BatchSize => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

impl From<Rejection> for ApiError {
    fn from(r: Rejection) -> Self {
        ApiError::Rejected(refusal(r))
    }
}

/// A ledger rejection as the API answers it.
pub fn refusal(r: Rejection) -> Refusal {
    Refusal { status: rejection_status(r), code: r.code(), detail: r.to_string() }
}
