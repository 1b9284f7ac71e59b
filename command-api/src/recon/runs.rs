//! The reconciliation's rules (`recon:admin` to set, `recon:read` to read) and runs
//! (`recon:run` to start one, `recon:read` to read). A run is started here and computed by the
//! engine's runtime (the provider's report against the ledger); its answer is 202 with the run
//! as it stands, and `GET /v1/recon/runs/{id}` follows it.

use std::sync::Arc;

use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use ledger_core::RunId;
use ledger_core::recon::rule::Rule;
use ledger_core::recon::run::{RuleRow, Run};
use ledger_core::recon::scope::{ADMIN, READ, RUN};
use ledger_core::recon::{
    Command, PROVIDER_KIND, RULE_KIND, RUN_KIND, Rejection, StartRun, provider_entity, run_entity,
};
use serde::Deserialize;

use super::runs_wire::*;
use crate::body::Json;
use crate::entity::{answered, committed, instant, submit, typed};
use crate::error::{ApiError, Problem, Refusal};
use crate::handler::{json, meta, require};
use crate::{ApiState, RequestId};

#[utoipa::path(put, path = "/v1/recon/rules/{name}", tag = "recon", request_body = RuleRequest,
    params(("name" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,63}$", max_length = 64,
        description = "The rule's name: 1 to 64 of a-z 0-9 _ -, starting with a letter or digit")),
    responses((status = 200, body = RuleBody, description = "Created or replaced (its canonical form), or the same rule again"),
        (status = 422, body = Problem, description = "invalid_rule (which value is wrong), invalid_rule_name")),
    security(("api_key" = [])))]
pub async fn put_rule(
    State(state): State<ApiState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Json(body): Json<RuleRequest>,
) -> Result<Response, ApiError> {
    let who = require(&state, &headers, ADMIN).await?;
    let spec = body.spec();
    // The core refuses the same rules; here the answer says which value is wrong.
    if let Err(e) = Rule::check(&spec) {
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return Err(ApiError::Rejected(Refusal { status, code: "invalid_rule", detail: e.to_string() }));
    }
    let c = submit(&state, Command::SetRule { name, spec }, meta(&who, &headers, request_id)?).await?;
    let rule: Arc<RuleRow> = typed(answered(&c)?)?;
    Ok(json(StatusCode::OK, RuleBody::new(&rule)))
}

#[utoipa::path(get, path = "/v1/recon/rules", tag = "recon",
    responses((status = 200, body = RuleList, description = "Every rule by name")),
    security(("api_key" = [])))]
pub async fn list_rules(State(state): State<ApiState>, headers: HeaderMap) -> Result<Response, ApiError> {
    require(&state, &headers, READ).await?;
    let mut rules = Vec::new();
    for (row, _) in state.inner.ledger.view().entities_keyed(RULE_KIND, "") {
        let r: Arc<RuleRow> = typed(&row)?;
        rules.push(RuleBody::new(&r));
    }
    Ok(json(StatusCode::OK, RuleList { rules }))
}

#[utoipa::path(post, path = "/v1/recon/runs", tag = "recon", request_body = RunRequest,
    responses((status = 202, body = RunBody, description = "Started: the engine computes it; GET its URL to follow it"),
        (status = 200, body = RunBody, description = "The same body again: the run as it stands"),
        (status = 404, body = Problem, description = "provider_not_found, rule_not_found"),
        (status = 409, body = Problem, description = "run_in_progress, run_exists"),
        (status = 422, body = Problem, description = "invalid_rules, invalid_as_of")),
    security(("api_key" = [])))]
pub async fn start_run(
    State(state): State<ApiState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    Json(body): Json<RunRequest>,
) -> Result<Response, ApiError> {
    let who = require(&state, &headers, RUN).await?;
    let as_of = body.as_of.as_deref().map(|t| instant("as_of", t)).transpose()?;
    let rules = match body.rules {
        Some(rules) => rules,
        None => state.inner.ledger.view().entities_keyed(RULE_KIND, "").into_iter().map(|(row, _)| row.key).collect(),
    };
    let id = RunId(body.id.unwrap_or_else(uuid::Uuid::new_v4));
    let command = StartRun { id, provider: body.provider, as_of, rules, schedule: None };
    let c = submit(&state, Command::StartRun(command), meta(&who, &headers, request_id)?).await?;
    let run: Arc<Run> = typed(answered(&c)?)?;
    let status = if c.replayed { StatusCode::OK } else { StatusCode::ACCEPTED };
    Ok(json(status, RunBody::new(&run, c.position)))
}

#[utoipa::path(get, path = "/v1/recon/runs/{id}", tag = "recon", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = RunBody, description = "The run: running, or its result"),
        (status = 404, body = Problem, description = "run_not_found")),
    security(("api_key" = [])))]
pub async fn get_run(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require(&state, &headers, READ).await?;
    let id = uuid::Uuid::parse_str(&id).map_err(|_| ApiError::from(Rejection::RunNotFound))?;
    let (run, position): (Arc<Run>, i64) =
        committed(&state, run_entity(RunId(id)).id, RUN_KIND)?.ok_or(ApiError::from(Rejection::RunNotFound))?;
    Ok(json(StatusCode::OK, RunBody::new(&run, position)))
}

/// Which provider's runs to list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RunsQuery {
    /// The provider's id.
    pub provider: String,
}

#[utoipa::path(get, path = "/v1/recon/runs", tag = "recon", params(RunsQuery),
    responses((status = 200, body = RunList, description = "The provider's runs, newest first (at most 1000)"),
        (status = 400, body = Problem, description = "invalid_query: no provider, or a parameter it does not take"),
        (status = 404, body = Problem, description = "provider_not_found")),
    security(("api_key" = [])))]
pub async fn list_runs(
    State(state): State<ApiState>,
    headers: HeaderMap,
    query: Result<Query<RunsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    require(&state, &headers, READ).await?;
    let Query(query) = query.map_err(|e| ApiError::InvalidQuery(e.body_text()))?;
    let view = state.inner.ledger.view();
    if view.entity(provider_entity(&query.provider).id).is_none_or(|(row, _)| row.kind != PROVIDER_KIND) {
        return Err(Rejection::ProviderNotFound.into());
    }
    let mut runs = Vec::new();
    for (row, position) in view.entities_keyed(RUN_KIND, &format!("{}/", query.provider)) {
        let r: Arc<Run> = typed(&row)?;
        runs.push((r.started_at, RunBody::new(&r, position)));
    }
    runs.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| b.1.id.cmp(&a.1.id)));
    runs.truncate(1000);
    Ok(json(StatusCode::OK, RunList { runs: runs.into_iter().map(|(_, r)| r).collect() }))
}
