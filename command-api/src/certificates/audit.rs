//! `GET /v1/certificates/audit`: the certificates' audit trail by time, as CSV (`Accept:
//! text/csv`) or JSON. The rows come from the certificates read model through [`AuditReader`],
//! which the process running the read models provides (`ledger up`): the command API itself
//! does not know the read models.

use std::future::Future;
use std::pin::Pin;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ledger_core::certificates::scope::READ;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::ApiState;
use crate::error::{ApiError, Problem};
use crate::handler::{json, require};

/// One audited action on a certificate.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct AuditEntry {
    /// The log position of the certificate event.
    pub position: i64,
    pub code: String,
    /// issued, activated, cvc_refused, authorized, captured, authorization_voided,
    /// capture_voided, refunded, cancelled or expired.
    pub action: String,
    pub operation_id: Option<String>,
    #[schema(value_type = Option<String>)]
    pub amount: Option<Decimal>,
    pub channel: Option<String>,
    pub initiator: Option<String>,
    pub key_id: Option<Uuid>,
    /// http, topic, job or internal.
    pub source: String,
    pub source_topic: Option<String>,
    pub source_partition: Option<i32>,
    pub source_offset: Option<i64>,
    /// RFC 3339.
    pub at: String,
    #[schema(value_type = String)]
    pub balance_before: Decimal,
    #[schema(value_type = String)]
    pub balance_after: Decimal,
    #[schema(value_type = String)]
    pub available_after: Decimal,
    pub state: String,
}

/// Reads audit rows in log order after `after`, in `[from, to)`.
pub trait AuditReader: Send + Sync {
    fn read(
        &self,
        from: Option<OffsetDateTime>,
        to: Option<OffsetDateTime>,
        after: i64,
        limit: i64,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<AuditEntry>, String>> + Send + '_>>;
}

/// Most rows one answer holds.
pub const MAX_AUDIT_PAGE: i64 = 10_000;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// From this time, inclusive (RFC 3339).
    #[param(format = DateTime)]
    from: Option<String>,
    /// Until this time, exclusive (RFC 3339).
    #[param(format = DateTime)]
    to: Option<String>,
    /// Rows after this log position (default 0): the `next_after` of the page before.
    #[param(minimum = 0)]
    after: Option<i64>,
    /// Page size, 1 to 10000 (default 10000).
    #[param(minimum = 1, maximum = 10000)]
    limit: Option<i64>,
}

/// A page of the audit trail.
#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// Pass as `after` for the next page (the last row's position; `after` when empty).
    pub next_after: i64,
}

/// The CSV columns, in order.
pub const CSV_HEADER: &str = "position,code,action,operation_id,amount,channel,initiator,key_id,source,source_topic,\
source_partition,source_offset,at,balance_before,balance_after,available_after,state";

fn time_param(name: &str, value: Option<&str>) -> Result<Option<OffsetDateTime>, ApiError> {
    value
        .map(|v| {
            OffsetDateTime::parse(v, &Rfc3339)
                .map_err(|_| ApiError::InvalidQuery(format!("{name} must be RFC 3339, e.g. 2026-12-01T00:00:00Z")))
        })
        .transpose()
}

#[utoipa::path(get, path = "/v1/certificates/audit", tag = "certificates", params(AuditQuery),
    responses(
        (status = 200, description = "The audit trail in log order: JSON, or CSV with `Accept: text/csv` \
            (a header row, then one row per entry; the next page's `after` in the `x-next-after` header)",
            content((AuditPage = "application/json"), (String = "text/csv"))),
        (status = 400, body = Problem),
        (status = 503, body = Problem, description = "read_model_unavailable: the read models do not run here")),
    security(("api_key" = [])))]
pub async fn audit(
    State(state): State<ApiState>,
    headers: HeaderMap,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    require(&state, &headers, READ).await?;
    let Query(query) = query.map_err(|e| ApiError::InvalidQuery(e.body_text()))?;
    let from = time_param("from", query.from.as_deref())?;
    let to = time_param("to", query.to.as_deref())?;
    let after = query.after.unwrap_or(0);
    let limit = query.limit.unwrap_or(MAX_AUDIT_PAGE);
    if after < 0 || !(1..=MAX_AUDIT_PAGE).contains(&limit) {
        return Err(ApiError::InvalidQuery(format!("after must be 0 or more and limit 1 to {MAX_AUDIT_PAGE}")));
    }
    let reader = state.audit.as_ref().ok_or(ApiError::ReadModelMissing)?;
    let entries = reader.read(from, to, after, limit).await.map_err(ApiError::Internal)?;
    let next_after = entries.last().map_or(after, |e| e.position);
    let csv = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.split(',').any(|t| t.trim().starts_with("text/csv")));
    if !csv {
        return Ok(json(StatusCode::OK, AuditPage { entries, next_after }));
    }
    let mut out = String::with_capacity(64 + entries.len() * 160);
    out.push_str(CSV_HEADER);
    out.push('\n');
    for e in &entries {
        let fields = [
            e.position.to_string(),
            e.code.clone(),
            e.action.clone(),
            e.operation_id.clone().unwrap_or_default(),
            e.amount.map(|a| a.to_string()).unwrap_or_default(),
            e.channel.clone().unwrap_or_default(),
            e.initiator.clone().unwrap_or_default(),
            e.key_id.map(|k| k.to_string()).unwrap_or_default(),
            e.source.clone(),
            e.source_topic.clone().unwrap_or_default(),
            e.source_partition.map(|p| p.to_string()).unwrap_or_default(),
            e.source_offset.map(|o| o.to_string()).unwrap_or_default(),
            e.at.clone(),
            e.balance_before.to_string(),
            e.balance_after.to_string(),
            e.available_after.to_string(),
            e.state.clone(),
        ];
        let row: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&row.join(","));
        out.push('\n');
    }
    let mut response = (StatusCode::OK, [(header::CONTENT_TYPE, "text/csv; charset=utf-8")], out).into_response();
    response.headers_mut().insert("x-next-after", HeaderValue::from(next_after));
    Ok(response)
}

/// A CSV field, quoted when it holds a comma, a quote or a line break (RFC 4180). A field that
/// a spreadsheet would run as a formula gets a leading quote mark.
pub(crate) fn csv_field(field: &str) -> String {
    let field = if field.starts_with(['=', '+', '-', '@']) && field.parse::<Decimal>().is_err() {
        format!("'{field}")
    } else {
        field.to_owned()
    };
    if field.contains([',', '"', '\n', '\r']) { format!("\"{}\"", field.replace('"', "\"\"")) } else { field }
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("line\nbreak"), "\"line\nbreak\"");
        assert_eq!(csv_field("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(csv_field("-12.50"), "-12.50");
    }
}
