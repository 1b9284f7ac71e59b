//! The certificate handlers: each authenticates with its channel's scope, turns the body into the
//! core's command, submits it to the writer and answers with the certificate as committed. The
//! CVC is generated and sealed here (the core never sees it in clear) and compared here with a
//! presented one; the core counts wrong ones and locks.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use futures_util::future::join_all;
use ledger_core::certificates::command::{Activate, Issue};
use ledger_core::certificates::scope::{ACTIVATE, ADMIN, READ, REDEEM, UPLOAD};
use ledger_core::certificates::state::Certificate;
use ledger_core::certificates::{Command, KIND, Rejection};
use ledger_core::{AccountRef, CertificateId, Entity, EntityRow};
use ledger_store::{Committed, EventMeta};
use secrets::Cvc;

use super::wire::*;
use crate::body::Json;
use crate::error::{ApiError, Problem};
use crate::handler::{created, json, meta, require};
use crate::{ApiState, RequestId};

/// The certificate as committed, and its account's balances from the same commit.
fn answer(state: &ApiState, status: StatusCode, c: &Committed) -> Result<Response, ApiError> {
    let Some(Entity::Row(row)) = &c.entity else {
        return Err(ApiError::Internal("a certificate command answered without its certificate".into()));
    };
    let certificate = certificate(row)?;
    Ok(json(status, body(state, &certificate, c.position)))
}

fn certificate(row: &EntityRow) -> Result<Arc<Certificate>, ApiError> {
    row.typed().map_err(|e| ApiError::Internal(format!("certificate row: {e}")))
}

fn body(state: &ApiState, c: &Certificate, position: i64) -> CertificateBody {
    let ledger = &state.inner.ledger;
    let account = ledger.view().account(&AccountRef::Id(c.account)).map(|a| a.account);
    let scale = ledger.currencies().scale(&c.currency).unwrap_or(2);
    CertificateBody::new(c, account.as_ref(), position, scale)
}

/// The certificate as last committed, from the writer's memory.
fn committed(state: &ApiState, code: &str) -> Result<Option<(Arc<Certificate>, i64)>, ApiError> {
    match state.inner.ledger.view().entity(CertificateId::of(code).0) {
        Some((row, position)) if row.kind == KIND => Ok(Some((certificate(&row)?, position))),
        _ => Ok(None),
    }
}

async fn submit(state: &ApiState, command: Command, meta: EventMeta) -> Result<Committed, ApiError> {
    Ok(state.inner.ledger.submit(command, meta).await??)
}

#[utoipa::path(post, path = "/v1/certificates/upload/batch", tag = "certificates",
    request_body(content(
        (UploadRequest = "application/json"),
        (UploadCsv = "text/csv"))),
    responses((status = 200, body = UploadBody, description = "One result per row, in input order; a bad row rejects only itself")),
    security(("api_key" = [])))]
pub async fn upload(
    State(state): State<ApiState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let who = require(&state, &headers, UPLOAD).await?;
    let meta = meta(&who, &headers, request_id)?;
    let mime = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).and_then(|v| v.split(';').next());
    let rows: Rows = match mime.map(|m| m.trim().to_ascii_lowercase()).as_deref() {
        Some("application/json") => {
            let request: UploadRequest = crate::body::parse(&body)?;
            request.certificates.into_iter().map(|row| (row.code.clone(), row.into_issue())).collect()
        }
        Some("text/csv") => csv_rows(&body)?,
        _ => return Err(ApiError::InvalidBody("expected Content-Type: application/json or text/csv".into())),
    };
    // A CSV file of the header alone uploads nothing; JSON needs at least one row.
    let json_body = mime.is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
    if (json_body && rows.is_empty()) || rows.len() > MAX_UPLOAD_ROWS {
        return Err(ApiError::InvalidBody(format!("an upload holds 1 to {MAX_UPLOAD_ROWS} rows")));
    }
    // Every row is its own command, submitted together so they share commits.
    let results = join_all(rows.into_iter().map(|(code, issue)| {
        let (state, meta) = (&state, meta.clone());
        async move {
            let outcome = match issue {
                Ok(issue) => submit(state, Command::Issue(Box::new(issue)), meta).await,
                Err(e) => Err(e),
            };
            match outcome {
                Ok(c) => UploadResult { code, result: if c.replayed { "exists" } else { "issued" }, problem: None },
                Err(e @ (ApiError::Overloaded | ApiError::Unavailable | ApiError::Internal(_))) => {
                    let problem = e.problem(request_id.0);
                    UploadResult {
                        code,
                        result: "rejected",
                        problem: Some(RowProblem { code: problem.code.to_owned(), detail: problem.detail }),
                    }
                }
                Err(e) => UploadResult {
                    code,
                    result: "rejected",
                    problem: Some(RowProblem { code: e.code().code.to_owned(), detail: e.to_string() }),
                },
            }
        }
    }))
    .await;
    Ok(json(StatusCode::OK, UploadBody { results }))
}

/// Uploaded rows: the code (for the answer) and the command, or why the row cannot be read.
type Rows = Vec<(String, Result<Issue, ApiError>)>;

/// CSV rows under the header `code,nominal,currency,expires_at,campaign,phone` (empty cells are
/// absent fields). A malformed row is rejected alone; a missing or different header refuses
/// the upload.
fn csv_rows(body: &[u8]) -> Result<Rows, ApiError> {
    const HEADER: [&str; 6] = ["code", "nominal", "currency", "expires_at", "campaign", "phone"];
    let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(body);
    let header = reader.headers().map_err(|e| ApiError::InvalidBody(format!("CSV header: {e}")))?;
    if header.iter().map(str::trim).ne(HEADER) {
        return Err(ApiError::InvalidBody(format!("the CSV header row must be {}", HEADER.join(","))));
    }
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let row = match record {
            Ok(r) if r.len() == HEADER.len() => r,
            Ok(r) => {
                let code = r.get(0).unwrap_or_default().to_owned();
                let detail = format!("row {}: {} fields, expected {}", i + 1, r.len(), HEADER.len());
                rows.push((code, Err(ApiError::InvalidBody(detail))));
                continue;
            }
            Err(e) => {
                rows.push((String::new(), Err(ApiError::InvalidBody(format!("row {}: {e}", i + 1)))));
                continue;
            }
        };
        let cell = |n: usize| Some(row.get(n).unwrap_or_default().trim()).filter(|s| !s.is_empty());
        let code = cell(0).unwrap_or_default().to_owned();
        let parsed = UploadRow {
            code: code.clone(),
            nominal: crate::ledger::wire::WireAmount::new(cell(1).unwrap_or_default()),
            currency: cell(2).unwrap_or_default().to_owned(),
            expires_at: cell(3).map(str::to_owned),
            campaign: cell(4).map(str::to_owned),
            phone: cell(5).map(str::to_owned),
        }
        .into_issue();
        rows.push((code, parsed));
    }
    Ok(rows)
}

#[utoipa::path(post, path = "/v1/certificates/{code}/activate", tag = "certificates", request_body = ActivateRequest,
    params(("code" = String, Path)),
    responses((status = 200, body = CertificateBody, description = "Active; the CVC goes to the phone, never to the caller"),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("api_key" = [])))]
pub async fn activate(
    State(state): State<ApiState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    Path(code): Path<String>,
    Json(body): Json<ActivateRequest>,
) -> Result<Response, ApiError> {
    let who = require(&state, &headers, ACTIVATE).await?;
    let meta = meta(&who, &headers, request_id)?;
    let keys = state.cvc_keys()?;
    let cvc = Cvc::generate().map_err(|e| ApiError::Internal(e.to_string()))?;
    let cvc = secrets::seal_cvc(keys, &code, &cvc).map_err(|e| ApiError::Internal(e.to_string()))?;
    let command = Command::Activate(Box::new(Activate {
        code,
        order_id: body.order_id,
        payment_id: body.payment_id,
        phone: body.phone,
        client_id: body.client_id,
        paid: None,
        cvc,
    }));
    let c = submit(&state, command, meta).await?;
    answer(&state, StatusCode::OK, &c)
}

#[utoipa::path(post, path = "/v1/certificates/{code}/authorize", tag = "certificates", request_body = AuthorizeRequest,
    params(("code" = String, Path)),
    responses((status = 201, body = CertificateBody, description = "The amount is held"),
        (status = 200, body = CertificateBody, description = "A retry of an authorization already held"),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("api_key" = [])))]
pub async fn authorize(
    State(state): State<ApiState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    Path(code): Path<String>,
    Json(body): Json<AuthorizeRequest>,
) -> Result<Response, ApiError> {
    let who = require(&state, &headers, REDEEM).await?;
    let meta = meta(&who, &headers, request_id)?;
    let amount = body.amount.parse()?;
    // A certificate with a CVC checks the one presented (a retry of an authorization still
    // holding its amount replays without it, given a CVC of the right shape); the core decides
    // everything else (not found, not active, locked, a retry of a settled one, ...) in its
    // documented order.
    if let Some((certificate, _)) = committed(&state, &code)?
        && let Some(sealed) = &certificate.cvc
        && (!certificate.open.contains_key(&body.operation_id) || !Cvc::well_formed(&body.cvc))
    {
        let stored =
            secrets::open_cvc(state.cvc_keys()?, &code, sealed).map_err(|e| ApiError::Internal(e.to_string()))?;
        if !stored.matches(&Cvc::presented(&body.cvc)) {
            let refuse = Command::RefuseCvc { code, operation_id: body.operation_id };
            submit(&state, refuse, meta).await?;
            return Err(super::invalid_cvc());
        }
    }
    let command = Command::Authorize { code, operation_id: body.operation_id, amount };
    let c = submit(&state, command, meta).await?;
    answer(&state, created(&c), &c)
}

#[utoipa::path(post, path = "/v1/certificates/{code}/capture", tag = "certificates", request_body = CaptureRequest,
    params(("code" = String, Path)),
    responses((status = 200, body = CertificateBody), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)),
    security(("api_key" = [])))]
pub async fn capture(
    State(state): State<ApiState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    Path(code): Path<String>,
    Json(body): Json<CaptureRequest>,
) -> Result<Response, ApiError> {
    let who = require(&state, &headers, REDEEM).await?;
    let amount = body.amount.map(|a| a.parse()).transpose()?;
    let command = Command::Capture { code, operation_id: body.operation_id, amount };
    let c = submit(&state, command, meta(&who, &headers, request_id)?).await?;
    answer(&state, StatusCode::OK, &c)
}

#[utoipa::path(post, path = "/v1/certificates/{code}/void", tag = "certificates", request_body = VoidRequest,
    params(("code" = String, Path)),
    responses((status = 200, body = CertificateBody, description = "Released, or the captured amount returned"),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("api_key" = [])))]
pub async fn void(
    State(state): State<ApiState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    Path(code): Path<String>,
    Json(body): Json<VoidRequest>,
) -> Result<Response, ApiError> {
    let who = require(&state, &headers, REDEEM).await?;
    let command = Command::Void { code, operation_id: body.operation_id };
    let c = submit(&state, command, meta(&who, &headers, request_id)?).await?;
    answer(&state, StatusCode::OK, &c)
}

#[utoipa::path(post, path = "/v1/certificates/{code}/refund", tag = "certificates", request_body = RefundRequest,
    params(("code" = String, Path)),
    responses((status = 200, body = CertificateBody), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)),
    security(("api_key" = [])))]
pub async fn refund(
    State(state): State<ApiState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    Path(code): Path<String>,
    Json(body): Json<RefundRequest>,
) -> Result<Response, ApiError> {
    let who = require(&state, &headers, ACTIVATE).await?;
    let command = Command::Refund { code, operation_id: body.operation_id, reason: body.reason };
    let c = submit(&state, command, meta(&who, &headers, request_id)?).await?;
    answer(&state, StatusCode::OK, &c)
}

#[utoipa::path(post, path = "/v1/certificates/{code}/cancel", tag = "certificates", request_body = CancelRequest,
    params(("code" = String, Path)),
    responses((status = 200, body = CertificateBody), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)),
    security(("api_key" = [])))]
pub async fn cancel(
    State(state): State<ApiState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    Path(code): Path<String>,
    Json(body): Json<CancelRequest>,
) -> Result<Response, ApiError> {
    let who = require(&state, &headers, ADMIN).await?;
    let command = Command::Cancel { code, operation_id: body.operation_id, reason: body.reason };
    let c = submit(&state, command, meta(&who, &headers, request_id)?).await?;
    answer(&state, StatusCode::OK, &c)
}

#[utoipa::path(get, path = "/v1/certificates/{code}/balance", tag = "certificates",
    params(("code" = String, Path)),
    responses((status = 200, body = CertificateBody, description = "From the writer's memory, as of the last commit"),
        (status = 404, body = Problem)),
    security(("api_key" = [])))]
pub async fn balance(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(code): Path<String>,
) -> Result<Response, ApiError> {
    require(&state, &headers, READ).await?;
    let (certificate, position) = committed(&state, &code)?.ok_or(Rejection::CertificateNotFound)?;
    Ok(json(StatusCode::OK, body(&state, &certificate, position)))
}
