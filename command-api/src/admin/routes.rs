//! The admin handlers: create, list and revoke keys; set and list roles. Each asks for
//! `keys:write`, calls the store, and records what it did (`super::record`) before answering.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ledger_core::permission::platform::KEYS_WRITE;
use ledger_store::{keys, roles};

use super::wire::*;
use super::{Action, record};
use crate::ApiState;
use crate::body::Json;
use crate::error::{ApiError, Problem};
use crate::handler::{json, require};

#[utoipa::path(post, path = "/v1/admin/keys", tag = "admin", request_body = CreateKeyRequest,
    responses((status = 201, body = CreatedKey, description = "Created; the key is shown this once"),
        (status = 400, body = Problem, description = "invalid_body"),
        (status = 413, body = Problem, description = "payload_too_large"),
        (status = 422, body = Problem, description = "unknown_permission, invalid_permission, unknown_role, invalid_role_scope, invalid_channel or too_many")),
    security(("api_key" = [])))]
pub async fn create_key(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Json(body): Json<CreateKeyRequest>,
) -> Result<Response, ApiError> {
    let who = require(&state, &headers, KEYS_WRITE).await?;
    let (id, key) =
        keys::create_key_with_roles(&state.inner.pool, &body.channel, &body.roles, &body.permissions).await?;
    record(
        &state,
        &who,
        Action::CreateKey { id, channel: &body.channel, roles: &body.roles, permissions: &body.permissions },
    )
    .await;
    Ok(json(StatusCode::CREATED, CreatedKey { id, key }))
}

#[utoipa::path(get, path = "/v1/admin/keys", tag = "admin",
    responses((status = 200, body = KeyList, description = "Every key, oldest first; never the keys themselves")),
    security(("api_key" = [])))]
pub async fn list_keys(State(state): State<ApiState>, headers: HeaderMap) -> Result<Response, ApiError> {
    require(&state, &headers, KEYS_WRITE).await?;
    let keys = keys::list_keys(&state.inner.pool).await?;
    Ok(json(StatusCode::OK, KeyList { keys: keys.into_iter().map(KeyView::from).collect() }))
}

#[utoipa::path(delete, path = "/v1/admin/keys/{id}", tag = "admin", params(("id" = uuid::Uuid, Path)),
    responses((status = 204, description = "Revoked: refused by every process within a second"),
        (status = 404, body = Problem, description = "key_not_found: no active key with this id")),
    security(("api_key" = [])))]
pub async fn revoke_key(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let who = require(&state, &headers, KEYS_WRITE).await?;
    let id = uuid::Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("key"))?;
    if !keys::revoke_key(&state.inner.pool, id).await? {
        return Err(ApiError::NotFound("key"));
    }
    record(&state, &who, Action::RevokeKey { id }).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(put, path = "/v1/admin/roles/{name}", tag = "admin", request_body = RoleRequest,
    params(("name" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,63}$", max_length = 64)),
    responses((status = 200, body = RoleView, description = "Replaced; its keys have the new permissions within a second"),
        (status = 201, body = RoleView, description = "Created"),
        (status = 400, body = Problem, description = "invalid_body"),
        (status = 413, body = Problem, description = "payload_too_large"),
        (status = 422, body = Problem, description = "unknown_permission, invalid_permission, invalid_role_name or too_many")),
    security(("api_key" = [])))]
pub async fn set_role(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Json(body): Json<RoleRequest>,
) -> Result<Response, ApiError> {
    let who = require(&state, &headers, KEYS_WRITE).await?;
    let created = roles::set_role(&state.inner.pool, &name, &body.permissions).await?;
    record(&state, &who, Action::SetRole { name: &name, permissions: &body.permissions }).await;
    let role = roles::list_roles(&state.inner.pool)
        .await?
        .into_iter()
        .find(|r| r.name == name)
        .ok_or_else(|| ApiError::Internal(format!("role {name} was set and is not there")))?;
    Ok(json(if created { StatusCode::CREATED } else { StatusCode::OK }, RoleView::from(role)))
}

#[utoipa::path(get, path = "/v1/admin/roles", tag = "admin",
    responses((status = 200, body = RoleList, description = "Every role by name, its templates as stored (orders:create:{scope})")),
    security(("api_key" = [])))]
pub async fn list_roles(State(state): State<ApiState>, headers: HeaderMap) -> Result<Response, ApiError> {
    require(&state, &headers, KEYS_WRITE).await?;
    let roles = roles::list_roles(&state.inner.pool).await?;
    Ok(json(StatusCode::OK, RoleList { roles: roles.into_iter().map(RoleView::from).collect() }))
}
