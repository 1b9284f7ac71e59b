//! `GET /v1/admin/audit`: the audit log (`ledger_core::audit`) by level and time, as JSON or
//! CSV (`format=csv`, or `Accept: text/csv`). The rows come from the audit read model through
//! [`AuditLogReader`], which the process running the read models provides (`ledger up`): the
//! command API does not know the read models.

use std::future::Future;
use std::pin::Pin;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::{IntoParams, OpenApi, ToSchema};
use uuid::Uuid;

use crate::ApiState;
use crate::certificates::audit::csv_field;
use crate::error::{ApiError, Problem};
use crate::handler::{json, require};

const READ: ledger_core::permission::Need<'static> = ledger_core::permission::platform::AUDIT_READ;

/// One entry of the audit log.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct AuditLogEntry {
    pub id: Uuid,
    /// The log position of its event.
    pub position: i64,
    /// info, warning or critical.
    pub level: String,
    /// The API key that acted, and its channel (none: the engine itself or the command line).
    pub key_id: Option<Uuid>,
    pub channel: Option<String>,
    /// http, job:{name}, topic:{topic}, or none (the command line).
    pub source: Option<String>,
    pub action: String,
    pub subject: String,
    /// What changed, before and after (any JSON value: a setting's value, an object of fields).
    #[schema(value_type = Option<Value>)]
    pub before: Option<serde_json::Value>,
    #[schema(value_type = Option<Value>)]
    pub after: Option<serde_json::Value>,
    pub reason: Option<String>,
    /// RFC 3339.
    pub at: String,
}

/// What the log is read by: level, `[from, to)`, entries after a position.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AuditLogQuery {
    pub level: Option<ledger_core::audit::Level>,
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
    pub after: i64,
    pub limit: i64,
}

/// Reads audit entries in log order.
pub trait AuditLogReader: Send + Sync {
    fn read(
        &self,
        query: AuditLogQuery,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<AuditLogEntry>, String>> + Send + '_>>;
}

/// Most entries one answer holds.
pub const MAX_PAGE: i64 = 10_000;

/// How the answer is written.
#[derive(Clone, Copy, Debug, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Json,
    Csv,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Only entries of this level.
    level: Option<Level>,
    /// From this time, inclusive (RFC 3339).
    #[param(format = DateTime)]
    from: Option<String>,
    /// Until this time, exclusive (RFC 3339).
    #[param(format = DateTime)]
    to: Option<String>,
    /// Entries after this log position (default 0): the `next_after` of the page before.
    #[param(minimum = 0)]
    after: Option<i64>,
    /// Page size, 1 to 10000 (default 1000).
    #[param(minimum = 1, maximum = 10000)]
    limit: Option<i64>,
    /// json (default) or csv.
    format: Option<Format>,
}

/// An entry's level.
#[derive(Clone, Copy, Debug, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Info,
    Warning,
    Critical,
}

/// A page of the audit log.
#[derive(Serialize, ToSchema)]
pub struct AuditLogPage {
    pub entries: Vec<AuditLogEntry>,
    /// Pass as `after` for the next page (the last entry's position; `after` when empty).
    pub next_after: i64,
}

/// The CSV columns, in order.
pub const CSV_HEADER: &str = "position,id,level,at,key_id,channel,source,action,subject,before,after,reason";

fn time_param(name: &str, value: Option<&str>) -> Result<Option<OffsetDateTime>, ApiError> {
    value
        .map(|v| {
            OffsetDateTime::parse(v, &Rfc3339)
                .map_err(|_| ApiError::InvalidQuery(format!("{name} must be RFC 3339, e.g. 2026-12-01T00:00:00Z")))
        })
        .transpose()
}

#[utoipa::path(get, path = "/v1/admin/audit", tag = "admin", params(AuditParams),
    responses(
        (status = 200, description = "The audit log in log order: JSON, or CSV with `format=csv` or `Accept: \
            text/csv` (a header row, then one row per entry; the next page's `after` in the `x-next-after` header)",
            content((AuditLogPage = "application/json"), (String = "text/csv"))),
        (status = 400, body = Problem),
        (status = 503, body = Problem, description = "read_model_unavailable: the read models do not run here")),
    security(("api_key" = [])))]
pub async fn audit_log(
    State(state): State<ApiState>,
    headers: HeaderMap,
    params: Result<Query<AuditParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    require(&state, &headers, READ).await?;
    let Query(params) = params.map_err(|e| ApiError::InvalidQuery(e.body_text()))?;
    let from = time_param("from", params.from.as_deref())?;
    let to = time_param("to", params.to.as_deref())?;
    let after = params.after.unwrap_or(0);
    let limit = params.limit.unwrap_or(1000);
    if after < 0 || !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::InvalidQuery(format!("after must be 0 or more and limit 1 to {MAX_PAGE}")));
    }
    let level = params.level.map(|l| match l {
        Level::Info => ledger_core::audit::Level::Info,
        Level::Warning => ledger_core::audit::Level::Warning,
        Level::Critical => ledger_core::audit::Level::Critical,
    });
    let reader = state.audit_log.as_ref().ok_or(ApiError::ReadModelMissing)?;
    let entries = reader.read(AuditLogQuery { level, from, to, after, limit }).await.map_err(ApiError::Internal)?;
    let next_after = entries.last().map_or(after, |e| e.position);
    let accepts_csv = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.split(',').any(|t| t.trim().starts_with("text/csv")));
    let csv = match params.format {
        Some(format) => format == Format::Csv,
        None => accepts_csv,
    };
    if !csv {
        return Ok(json(StatusCode::OK, AuditLogPage { entries, next_after }));
    }
    let mut out = String::with_capacity(64 + entries.len() * 160);
    out.push_str(CSV_HEADER);
    out.push('\n');
    let text = |v: &Option<serde_json::Value>| v.as_ref().map(serde_json::Value::to_string).unwrap_or_default();
    for e in &entries {
        let fields = [
            e.position.to_string(),
            e.id.to_string(),
            e.level.clone(),
            e.at.clone(),
            e.key_id.map(|k| k.to_string()).unwrap_or_default(),
            e.channel.clone().unwrap_or_default(),
            e.source.clone().unwrap_or_default(),
            e.action.clone(),
            e.subject.clone(),
            text(&e.before),
            text(&e.after),
            e.reason.clone().unwrap_or_default(),
        ];
        let row: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&row.join(","));
        out.push('\n');
    }
    let mut response = (StatusCode::OK, [(header::CONTENT_TYPE, "text/csv; charset=utf-8")], out).into_response();
    response.headers_mut().insert("x-next-after", HeaderValue::from(next_after));
    Ok(response)
}

pub fn router() -> Router<ApiState> {
    Router::new().route("/v1/admin/audit", get(audit_log))
}

#[derive(OpenApi)]
#[openapi(paths(audit_log), components(schemas(AuditLogEntry, AuditLogPage, Level, Format)))]
pub struct Doc;
