//! Schedules of reconciliation runs (`recon:admin` to set, `recon:read` to list): a provider,
//! a five-field cron expression in UTC and the rules. One scheduler among the running engines
//! fires them (`ledger up`'s reconciliation jobs, under a lock in the database).

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use ledger_core::recon::cron::Cron;
use ledger_core::recon::schedule::{Schedule, SetSchedule};
use ledger_core::recon::scope::{ADMIN, READ};
use ledger_core::recon::{Command, SCHEDULE_KIND};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::body::Json;
use crate::entity::{answered, submit, typed};
use crate::error::{ApiError, Problem, Refusal};
use crate::handler::{json, meta, require};
use crate::{ApiState, RequestId};

/// A schedule to create or change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleRequest {
    #[schema(example = "psp-a")]
    pub provider: String,
    /// `minute hour day-of-month month day-of-week`, UTC (else `invalid_cron`, naming the field).
    #[schema(example = "0 2 * * *", pattern = "^\\s*[0-9*,/-]+(\\s+[0-9*,/-]+){4}\\s*$")]
    pub cron: String,
    /// The rules' names, applied in order.
    #[schema(schema_with = super::runs_wire::rule_names)]
    pub rules: Vec<String>,
    pub enabled: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduleBody {
    pub id: String,
    pub provider: String,
    pub cron: String,
    pub rules: Vec<String>,
    pub enabled: bool,
    /// When it fires next; null when disabled.
    #[schema(format = DateTime)]
    pub next_due: Option<String>,
    #[schema(format = DateTime)]
    pub last_fired: Option<String>,
    /// The run the last firing started.
    pub last_run: Option<uuid::Uuid>,
    /// Why the last firing started none (`run_in_progress`, …).
    pub last_skipped: Option<String>,
    pub version: u32,
}

impl ScheduleBody {
    fn new(s: &Schedule) -> ScheduleBody {
        ScheduleBody {
            id: s.id.clone(),
            provider: s.provider.clone(),
            cron: s.cron.clone(),
            rules: s.rules.clone(),
            enabled: s.enabled,
            next_due: s.next_due.map(|t| t.rfc3339()),
            last_fired: s.last_fired.map(|t| t.rfc3339()),
            last_run: s.last_run.map(|r| r.0),
            last_skipped: s.last_skipped.clone(),
            version: s.version,
        }
    }
}

/// Every schedule by id.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduleList {
    pub schedules: Vec<ScheduleBody>,
}

#[utoipa::path(put, path = "/v1/recon/schedules/{id}", tag = "recon", request_body = ScheduleRequest,
    params(("id" = String, Path, description = "The schedule's id: 1 to 64 of A-Z a-z 0-9 . _ -")),
    responses((status = 200, body = ScheduleBody, description = "Created or changed, or the same fields again"),
        (status = 404, body = Problem, description = "provider_not_found, rule_not_found"),
        (status = 422, body = Problem, description = "invalid_cron (naming the field), invalid_rules, invalid_schedule_id")),
    security(("api_key" = [])))]
pub async fn put_schedule(
    State(state): State<ApiState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<ScheduleRequest>,
) -> Result<Response, ApiError> {
    let who = require(&state, &headers, ADMIN).await?;
    if let Err(e) = Cron::parse(&body.cron) {
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return Err(ApiError::Rejected(Refusal { status, code: "invalid_cron", detail: e.to_string() }));
    }
    let command =
        SetSchedule { id, provider: body.provider, cron: body.cron, rules: body.rules, enabled: body.enabled };
    let c = submit(&state, Command::SetSchedule(command), meta(&who, &headers, request_id)?).await?;
    let schedule: Arc<Schedule> = typed(answered(&c)?)?;
    Ok(json(StatusCode::OK, ScheduleBody::new(&schedule)))
}

#[utoipa::path(get, path = "/v1/recon/schedules", tag = "recon",
    responses((status = 200, body = ScheduleList, description = "Every schedule by id")),
    security(("api_key" = [])))]
pub async fn list_schedules(State(state): State<ApiState>, headers: HeaderMap) -> Result<Response, ApiError> {
    require(&state, &headers, READ).await?;
    let mut schedules = Vec::new();
    for (row, _) in state.inner.ledger.view().entities_keyed(SCHEDULE_KIND, "") {
        let s: Arc<Schedule> = typed(&row)?;
        schedules.push(ScheduleBody::new(&s));
    }
    Ok(json(StatusCode::OK, ScheduleList { schedules }))
}
