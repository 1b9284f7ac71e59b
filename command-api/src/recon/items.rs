//! A run's items as a report (`recon:read`): JSON pages or the whole run as CSV, filtered by
//! kind and status. Items are kept beside the log (`ledger_store::recon`); each names its
//! statement lines and ledger entries, and the open items of earlier runs it closed.

use std::sync::Arc;

use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ledger_core::RunId;
use ledger_core::recon::run::ItemResolution;
use ledger_core::recon::scope::{READ, RESOLVE};
use ledger_core::recon::{
    Command, RESOLUTION_KIND, RUN_KIND, Rejection, Resolution, ResolveItem, resolution_entity, run_entity,
};
use ledger_store::recon::ItemRow;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::body::Json;
use crate::certificates::audit::csv_field;
use crate::entity::submit;
use crate::error::{ApiError, Problem, Refusal};
use crate::handler::{json, meta, require};
use crate::{ApiState, RequestId};

/// Which items, and how.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ItemsQuery {
    /// `matched`, `amount_mismatch`, `missing_in_ledger` or `missing_at_provider`.
    #[param(pattern = "^(matched|amount_mismatch|missing_in_ledger|missing_at_provider)$")]
    pub kind: Option<String>,
    /// `matched`, `open`, `dismissed`, `matched_by_hand` or `superseded`.
    #[param(pattern = "^(matched|open|dismissed|matched_by_hand|superseded)$")]
    pub status: Option<String>,
    /// The `next` of the page before (JSON only).
    pub after: Option<i64>,
    /// 1 to 1000 (JSON only; default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// `json` (default) or `csv` (every item of the run matching the filters).
    #[param(pattern = "^(json|csv)$")]
    pub format: Option<String>,
}

/// A statement line or a ledger entry as an item names it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SideBody {
    /// The provider's line id, or the ledger's transfer id.
    pub id: String,
    pub amount: String,
    pub currency: String,
    pub reference: String,
    #[schema(format = DateTime)]
    pub date: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ItemBody {
    pub id: Uuid,
    pub run_id: Uuid,
    pub seq: u32,
    /// `matched`, `amount_mismatch`, `missing_in_ledger` or `missing_at_provider`.
    pub kind: String,
    /// `matched`, `open`, `dismissed`, `matched_by_hand` or `superseded`.
    pub status: String,
    pub rule: Option<String>,
    /// Line − entry, for an amount mismatch.
    pub difference: Option<String>,
    pub lines: Vec<SideBody>,
    pub entries: Vec<SideBody>,
    /// Open items of earlier runs this one matched late or superseded.
    pub carried: Vec<Uuid>,
    /// The run (and its item) that closed this one, when a later run did.
    pub closed_by_run: Option<Uuid>,
    pub closed_by_item: Option<Uuid>,
    #[schema(value_type = Option<Object>)]
    pub resolution: Option<serde_json::Value>,
}

/// An item's resolution by hand as the log holds it (the store's copy may lag it by a crash).
fn resolved(state: &ApiState, item: Uuid) -> Option<Arc<ItemResolution>> {
    let (row, _) = state.inner.ledger.view().entity(resolution_entity(item).id)?;
    (row.kind == RESOLUTION_KIND).then(|| row.typed::<ItemResolution>().ok()).flatten()
}

fn resolution_json(r: &ItemResolution) -> serde_json::Value {
    serde_json::json!({"action": r.action, "counterpart": r.counterpart, "reason": r.reason, "at": r.at.rfc3339()})
}

impl ItemBody {
    fn new(state: &ApiState, r: &ItemRow) -> ItemBody {
        let i = &r.item;
        let by_hand = resolved(state, i.id);
        ItemBody {
            id: i.id,
            run_id: r.run.0,
            seq: i.seq,
            kind: i.kind.as_str().to_owned(),
            status: by_hand.as_ref().map_or_else(|| r.status.clone(), |h| h.status().to_owned()),
            rule: i.rule.clone(),
            difference: i.difference.map(|d| d.to_string()),
            lines: i
                .lines
                .iter()
                .map(|l| SideBody {
                    id: l.id.clone(),
                    amount: l.amount.to_string(),
                    currency: l.currency.clone(),
                    reference: l.reference.clone(),
                    date: l.date.rfc3339(),
                })
                .collect(),
            entries: i
                .entries
                .iter()
                .map(|e| SideBody {
                    id: e.id.to_string(),
                    amount: e.amount.to_string(),
                    currency: e.currency.clone(),
                    reference: e.reference.clone(),
                    date: e.date.rfc3339(),
                })
                .collect(),
            carried: i.carried.clone(),
            closed_by_run: r.closed_by_run,
            closed_by_item: r.closed_by_item,
            resolution: by_hand.as_deref().map(resolution_json).or_else(|| r.resolution.clone()),
        }
    }
}

/// A page of a run's items.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemPage {
    pub items: Vec<ItemBody>,
    /// `after` for the next page; null on the last.
    pub next: Option<i64>,
}

const KINDS: [&str; 4] = ["matched", "amount_mismatch", "missing_in_ledger", "missing_at_provider"];
const STATUSES: [&str; 5] = ["matched", "open", "dismissed", "matched_by_hand", "superseded"];

fn invalid(code: &'static str, detail: String) -> ApiError {
    ApiError::Rejected(Refusal { status: StatusCode::UNPROCESSABLE_ENTITY, code, detail })
}

const CSV_HEADER: &str = "seq,id,kind,status,rule,difference,line_ids,line_amounts,line_references,entry_ids,entry_amounts,entry_references,closed_by_run";

fn csv(rows: &[ItemRow]) -> String {
    let mut out = String::with_capacity(64 + rows.len() * 160);
    out.push_str(CSV_HEADER);
    out.push('\n');
    for r in rows {
        let i = &r.item;
        let join = |v: Vec<String>| v.join(" ");
        let fields = [
            i.seq.to_string(),
            i.id.to_string(),
            i.kind.as_str().to_owned(),
            r.status.clone(),
            i.rule.clone().unwrap_or_default(),
            i.difference.map(|d| d.to_string()).unwrap_or_default(),
            join(i.lines.iter().map(|l| l.id.clone()).collect()),
            join(i.lines.iter().map(|l| l.amount.to_string()).collect()),
            join(i.lines.iter().map(|l| l.reference.clone()).collect()),
            join(i.entries.iter().map(|e| e.id.to_string()).collect()),
            join(i.entries.iter().map(|e| e.amount.to_string()).collect()),
            join(i.entries.iter().map(|e| e.reference.clone()).collect()),
            r.closed_by_run.map(|u| u.to_string()).unwrap_or_default(),
        ];
        let fields: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}

#[utoipa::path(get, path = "/v1/recon/runs/{id}/items", tag = "recon", params(("id" = uuid::Uuid, Path), ItemsQuery),
    responses(
        (status = 200, description = "The run's items: a JSON page, or every item as CSV",
            content((ItemPage = "application/json"), (String = "text/csv"))),
        (status = 400, body = Problem, description = "invalid_query"),
        (status = 404, body = Problem, description = "run_not_found"),
        (status = 422, body = Problem, description = "invalid_filter (an unknown kind or status, a limit outside 1 to 1000), invalid_format")),
    security(("api_key" = [])))]
pub async fn run_items(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: Result<Query<ItemsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    require(&state, &headers, READ).await?;
    let Query(q) = query.map_err(|e| ApiError::InvalidQuery(e.body_text()))?;
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::from(Rejection::RunNotFound))?;
    match state.inner.ledger.view().entity(run_entity(RunId(id)).id) {
        Some((row, _)) if row.kind == RUN_KIND => {}
        _ => return Err(Rejection::RunNotFound.into()),
    }
    if q.kind.as_deref().is_some_and(|k| !KINDS.contains(&k)) {
        return Err(invalid("invalid_filter", format!("kind is one of {}", KINDS.join(", "))));
    }
    if q.status.as_deref().is_some_and(|s| !STATUSES.contains(&s)) {
        return Err(invalid("invalid_filter", format!("status is one of {}", STATUSES.join(", "))));
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(invalid("invalid_filter", "limit is 1 to 1000".into()));
    }
    let pool = &state.inner.pool;
    let (kind, status) = (q.kind.as_deref(), q.status.as_deref());
    match q.format.as_deref().unwrap_or("json") {
        "json" => {
            let rows = ledger_store::recon::items(pool, RunId(id), kind, status, q.after.unwrap_or(-1), limit + 1)
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            let page = usize::try_from(limit).unwrap_or(usize::MAX);
            let more = rows.len() > page;
            let items: Vec<ItemBody> = rows.iter().take(page).map(|r| ItemBody::new(&state, r)).collect();
            let next = if more { items.last().map(|i| i64::from(i.seq)) } else { None };
            Ok(json(StatusCode::OK, ItemPage { items, next }))
        }
        "csv" => {
            let rows = ledger_store::recon::items(pool, RunId(id), kind, status, -1, i64::MAX)
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            let disposition = format!("attachment; filename=\"recon-run-{id}.csv\"");
            let headers = [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (header::CONTENT_DISPOSITION, disposition),
            ];
            Ok((StatusCode::OK, headers, csv(&rows)).into_response())
        }
        other => Err(invalid("invalid_format", format!("{other:?}: the format is json or csv"))),
    }
}

/// What an operator decides about an open item.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReconResolveRequest {
    pub action: WireResolution,
    /// For a match: the counterpart's id (a statement line's, or a ledger transfer's).
    pub counterpart: Option<String>,
    #[schema(example = "bank fee booked on the operational account")]
    pub reason: String,
}

#[derive(Clone, Copy, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WireResolution {
    Match,
    Dismiss,
}

fn not_found() -> ApiError {
    ApiError::Rejected(Refusal {
        status: StatusCode::NOT_FOUND,
        code: "item_not_found",
        detail: "item not found".into(),
    })
}

#[utoipa::path(post, path = "/v1/recon/items/{id}/resolve", tag = "recon", params(("id" = uuid::Uuid, Path)),
    request_body = ReconResolveRequest,
    responses((status = 200, body = ItemBody, description = "Resolved (audited), or the same resolution again"),
        (status = 404, body = Problem, description = "item_not_found"),
        (status = 409, body = Problem, description = "item_closed: a run matched or superseded it, or it was resolved otherwise"),
        (status = 422, body = Problem, description = "invalid_reason, invalid_counterpart")),
    security(("api_key" = [])))]
pub async fn resolve_item(
    State(state): State<ApiState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<ReconResolveRequest>,
) -> Result<Response, ApiError> {
    let who = require(&state, &headers, RESOLVE).await?;
    let id = Uuid::parse_str(&id).map_err(|_| not_found())?;
    let pool = &state.inner.pool;
    let row = ledger_store::recon::item(pool, id)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .ok_or_else(not_found)?;
    let action = match body.action {
        WireResolution::Match => Resolution::Match,
        WireResolution::Dismiss => Resolution::Dismiss,
    };
    let command = ResolveItem {
        item: id,
        run: row.run,
        provider: row.provider.clone(),
        status: row.status.clone(),
        action,
        counterpart: body.counterpart,
        reason: body.reason,
    };
    submit(&state, Command::ResolveItem(Box::new(command)), meta(&who, &headers, request_id)?).await?;
    if let Some(done) = resolved(&state, id) {
        ledger_store::recon::mark_resolved(pool, id, done.status(), &resolution_json(&done))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
    }
    let row = ledger_store::recon::item(pool, id)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .ok_or_else(not_found)?;
    Ok(json(StatusCode::OK, ItemBody::new(&state, &row)))
}
