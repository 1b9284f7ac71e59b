//! The webhook handlers: endpoints (create, list, read, delete, rotate the secret, recover),
//! messages (read, send again), the attempts log and the event types. Changes ask for
//! `webhooks:write` and are audited; reads ask for `webhooks:read`.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ledger_core::audit::Level;
use ledger_core::permission::platform::{WEBHOOKS_READ, WEBHOOKS_WRITE};
use serde::Deserialize;
use uuid::Uuid;

use super::wire::*;
use crate::ApiState;
use crate::admin::audit_action;
use crate::body::Json;
use crate::error::{ApiError, Problem};
use crate::handler::{json, require};

fn endpoint_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| ApiError::NotFound("webhook endpoint"))
}

fn allow_private(state: &ApiState) -> bool {
    state.config.get(ledger_core::webhook::ALLOW_PRIVATE_KEY).as_bool().unwrap_or(false)
}

#[utoipa::path(post, path = "/v1/webhooks/endpoints", tag = "webhooks", request_body = CreateEndpointRequest,
    responses((status = 201, body = CreatedEndpoint, description = "Created; its secret is shown this once"),
        (status = 400, body = Problem, description = "invalid_body"),
        (status = 413, body = Problem, description = "payload_too_large"),
        (status = 422, body = Problem, description = "endpoint_not_allowed (the URL, its scheme or its address), \
            unknown_event_type, invalid_description or too_many"),
        (status = 503, body = Problem, description = "webhooks_unavailable: no secrets key (LEDGER_SECRETS_KEY)")),
    security(("api_key" = [])))]
pub async fn create_endpoint(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Json(body): Json<CreateEndpointRequest>,
) -> Result<Response, ApiError> {
    let who = require(&state, &headers, WEBHOOKS_WRITE).await?;
    let store = state.webhooks()?;
    let new = webhooks::NewEndpoint { url: body.url, event_types: body.event_types, description: body.description };
    let (endpoint, secret) = store.create(new, allow_private(&state)).await?;
    let after = serde_json::json!({"url": endpoint.url, "event_types": endpoint.event_types});
    audit_action(&state, &who, "webhooks.endpoint_create", Level::Info, endpoint.id.to_string(), Some(after)).await;
    Ok(json(
        StatusCode::CREATED,
        CreatedEndpoint {
            id: endpoint.id,
            url: endpoint.url,
            event_types: endpoint.event_types,
            description: endpoint.description,
            created: rfc3339(endpoint.created_at),
            secret: secret.expose(),
        },
    ))
}

#[utoipa::path(get, path = "/v1/webhooks/endpoints", tag = "webhooks",
    responses((status = 200, body = EndpointList, description = "Every endpoint, oldest first; never their secrets"),
        (status = 503, body = Problem, description = "webhooks_unavailable")),
    security(("api_key" = [])))]
pub async fn list_endpoints(State(state): State<ApiState>, headers: HeaderMap) -> Result<Response, ApiError> {
    require(&state, &headers, WEBHOOKS_READ).await?;
    let endpoints = state.webhooks()?.list().await?;
    Ok(json(StatusCode::OK, EndpointList { endpoints: endpoints.into_iter().map(EndpointView::from).collect() }))
}

#[utoipa::path(get, path = "/v1/webhooks/endpoints/{id}", tag = "webhooks", params(("id" = Uuid, Path)),
    responses((status = 200, body = EndpointView),
        (status = 404, body = Problem, description = "endpoint_not_found"),
        (status = 503, body = Problem, description = "webhooks_unavailable")),
    security(("api_key" = [])))]
pub async fn get_endpoint(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require(&state, &headers, WEBHOOKS_READ).await?;
    let store = state.webhooks()?;
    let endpoint = store.get(endpoint_id(&id)?).await?.ok_or(ApiError::NotFound("webhook endpoint"))?;
    Ok(json(StatusCode::OK, EndpointView::from(endpoint)))
}

#[utoipa::path(delete, path = "/v1/webhooks/endpoints/{id}", tag = "webhooks", params(("id" = Uuid, Path)),
    responses((status = 204, description = "Deleted: no more messages are made for it, and its pending ones are dropped"),
        (status = 404, body = Problem, description = "endpoint_not_found"),
        (status = 503, body = Problem, description = "webhooks_unavailable")),
    security(("api_key" = [])))]
pub async fn delete_endpoint(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let who = require(&state, &headers, WEBHOOKS_WRITE).await?;
    let store = state.webhooks()?;
    let id = endpoint_id(&id)?;
    if !store.delete(id).await? {
        return Err(ApiError::NotFound("webhook endpoint"));
    }
    audit_action(&state, &who, "webhooks.endpoint_delete", Level::Warning, id.to_string(), None).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(post, path = "/v1/webhooks/endpoints/{id}/rotate-secret", tag = "webhooks", params(("id" = Uuid, Path)),
    responses((status = 200, body = RotatedSecret, description = "A new secret, shown this once; the old one signs beside it for 24 hours"),
        (status = 404, body = Problem, description = "endpoint_not_found"),
        (status = 503, body = Problem, description = "webhooks_unavailable")),
    security(("api_key" = [])))]
pub async fn rotate_secret(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let who = require(&state, &headers, WEBHOOKS_WRITE).await?;
    let store = state.webhooks()?;
    let id = endpoint_id(&id)?;
    let secret = store.rotate(id).await?.ok_or(ApiError::NotFound("webhook endpoint"))?;
    audit_action(&state, &who, "webhooks.secret_rotate", Level::Warning, id.to_string(), None).await;
    Ok(json(StatusCode::OK, RotatedSecret { id, secret: secret.expose() }))
}

#[utoipa::path(post, path = "/v1/webhooks/endpoints/{id}/recover", tag = "webhooks", params(("id" = Uuid, Path)),
    request_body = RecoverRequest,
    responses((status = 202, body = Recovered, description = "The failed messages made since then go again, one attempt each"),
        (status = 400, body = Problem, description = "invalid_body: since is not an RFC 3339 time"),
        (status = 404, body = Problem, description = "endpoint_not_found"),
        (status = 413, body = Problem, description = "payload_too_large"),
        (status = 503, body = Problem, description = "webhooks_unavailable")),
    security(("api_key" = [])))]
pub async fn recover_endpoint(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<RecoverRequest>,
) -> Result<Response, ApiError> {
    let who = require(&state, &headers, WEBHOOKS_WRITE).await?;
    let store = state.webhooks()?;
    let id = endpoint_id(&id)?;
    let since = time::OffsetDateTime::parse(&body.since, &time::format_description::well_known::Rfc3339)
        .map_err(|_| ApiError::InvalidBody("since: expected an RFC 3339 time, e.g. 2026-12-01T00:00:00Z".into()))?;
    let requeued = store.recover(id, since).await?.ok_or(ApiError::NotFound("webhook endpoint"))?;
    let after = serde_json::json!({"since": body.since, "requeued": requeued});
    audit_action(&state, &who, "webhooks.recover", Level::Info, id.to_string(), Some(after)).await;
    Ok(json(StatusCode::ACCEPTED, Recovered { requeued }))
}

/// The attempts listing's query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AttemptsQuery {
    /// At most this many (1 to 500, default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// The `next` of the page before.
    #[param(
        pattern = "^-?[0-9]{1,20}\\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\\.[0-9]{1,9}$",
        max_length = 80
    )]
    pub before: Option<String>,
}

#[utoipa::path(get, path = "/v1/webhooks/endpoints/{id}/attempts", tag = "webhooks",
    params(("id" = Uuid, Path), AttemptsQuery),
    responses((status = 200, body = AttemptList, description = "Its attempts, newest first"),
        (status = 404, body = Problem, description = "endpoint_not_found"),
        (status = 503, body = Problem, description = "webhooks_unavailable")),
    security(("api_key" = [])))]
pub async fn list_attempts(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: Result<Query<AttemptsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    require(&state, &headers, WEBHOOKS_READ).await?;
    let Query(query) = query.map_err(|e| ApiError::InvalidQuery(e.body_text()))?;
    let store = state.webhooks()?;
    let id = endpoint_id(&id)?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=webhooks::store::MAX_PAGE).contains(&limit) {
        return Err(ApiError::InvalidQuery("limit: 1 to 500".into()));
    }
    let before = match &query.before {
        Some(text) => {
            Some(webhooks::Cursor::parse(text).ok_or_else(|| ApiError::InvalidQuery("before: not a cursor".into()))?)
        }
        None => None,
    };
    store.get(id).await?.ok_or(ApiError::NotFound("webhook endpoint"))?;
    let attempts = store.attempts(id, before.as_ref(), limit).await?;
    let next = (attempts.len() as i64 == limit).then(|| attempts.last().map(|a| a.cursor().to_text())).flatten();
    Ok(json(StatusCode::OK, AttemptList { attempts: attempts.into_iter().map(AttemptView::from).collect(), next }))
}

#[utoipa::path(get, path = "/v1/webhooks/messages/{id}", tag = "webhooks", params(("id" = Uuid, Path)),
    responses((status = 200, body = MessageView),
        (status = 404, body = Problem, description = "message_not_found"),
        (status = 503, body = Problem, description = "webhooks_unavailable")),
    security(("api_key" = [])))]
pub async fn get_message(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require(&state, &headers, WEBHOOKS_READ).await?;
    let store = state.webhooks()?;
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("webhook message"))?;
    let message = store.message(id).await?.ok_or(ApiError::NotFound("webhook message"))?;
    Ok(json(StatusCode::OK, MessageView::from(message)))
}

#[utoipa::path(post, path = "/v1/webhooks/messages/{id}/retry", tag = "webhooks", params(("id" = Uuid, Path)),
    responses((status = 202, body = MessageView, description = "It goes again now: one more attempt"),
        (status = 404, body = Problem, description = "message_not_found"),
        (status = 409, body = Problem, description = "message_pending: it is still being tried"),
        (status = 503, body = Problem, description = "webhooks_unavailable")),
    security(("api_key" = [])))]
pub async fn retry_message(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let who = require(&state, &headers, WEBHOOKS_WRITE).await?;
    let store = state.webhooks()?;
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("webhook message"))?;
    match store.retry(id).await? {
        None => return Err(ApiError::NotFound("webhook message")),
        Some(false) => {
            return Err(super::refused(
                StatusCode::CONFLICT,
                "message_pending",
                "the message is still pending: it is being tried".into(),
            ));
        }
        Some(true) => {}
    }
    audit_action(&state, &who, "webhooks.retry", Level::Info, id.to_string(), None).await;
    let message = store.message(id).await?.ok_or(ApiError::NotFound("webhook message"))?;
    Ok(json(StatusCode::ACCEPTED, MessageView::from(message)))
}

#[utoipa::path(get, path = "/v1/webhooks/event-types", tag = "webhooks",
    responses((status = 200, body = EventTypeList, description = "Every type of message an endpoint may ask for")),
    security(("api_key" = [])))]
pub async fn list_event_types(State(state): State<ApiState>, headers: HeaderMap) -> Result<Response, ApiError> {
    require(&state, &headers, WEBHOOKS_READ).await?;
    let event_types = ledger_core::webhook::catalog()
        .into_iter()
        .map(|e| EventTypeView { name: e.name, domain: e.domain.to_owned(), event_type: e.event_type.to_owned() })
        .collect();
    Ok(json(StatusCode::OK, EventTypeList { event_types }))
}
