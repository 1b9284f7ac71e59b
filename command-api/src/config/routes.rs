//! The configuration handlers. Values are read from this process's `RuntimeConfig` (a change
//! this process commits is in it at once; another process's within a second). A change is
//! checked here first, to name why a value is refused, then decided by the writer, which
//! commits its audit entry with it (`ledger_core::config::decide`).

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use ledger_core::Entity;
use ledger_core::config::{Command, Rejection};
use ledger_core::permission::Need;
use ledger_core::settings::{self, Setting};
use ledger_store::keys::Principal;

use super::refusal;
use super::wire::*;
use crate::body::Json;
use crate::error::{ApiError, Problem};
use crate::handler::{json, meta, require};
use crate::{ApiState, RequestId};

const WRITE: Need<'static> = ledger_core::permission::platform::CONFIG_WRITE;
const READ: Need<'static> = ledger_core::permission::platform::CONFIG_READ;

fn setting(key: &str) -> Result<&'static Setting, ApiError> {
    settings::find(key).ok_or(ApiError::NotFound("config key"))
}

/// A key that may change the config may change a setting that asks for more only with that too.
fn allowed(who: &Principal, setting: &Setting) -> Result<(), ApiError> {
    let (resource, action) = setting.permission.split_once(':').unwrap_or((setting.permission, "write"));
    who.require(&Need { resource, action, scope: None }).map_err(ApiError::from)
}

#[utoipa::path(get, path = "/v1/config", tag = "config",
    responses((status = 200, body = ConfigList, description = "Every setting in effect in this process")),
    security(("api_key" = [])))]
pub async fn list(State(state): State<ApiState>, headers: HeaderMap) -> Result<Response, ApiError> {
    require(&state, &headers, READ).await?;
    let keys = state.config.keys();
    let mut entries = Vec::new();
    for setting in settings::all() {
        entries.push(ConfigEntry::new(&state.config, setting, setting.name));
        if setting.is_pattern() {
            for key in keys.iter().filter(|k| setting.matches(k)) {
                entries.push(ConfigEntry::new(&state.config, setting, key));
            }
        }
    }
    Ok(json(StatusCode::OK, ConfigList { settings: entries }))
}

#[utoipa::path(get, path = "/v1/config/{key}", tag = "config", params(("key" = String, Path)),
    responses((status = 200, body = ConfigEntry), (status = 404, body = Problem, description = "unknown_config_key")),
    security(("api_key" = [])))]
pub async fn get(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    require(&state, &headers, READ).await?;
    Ok(json(StatusCode::OK, ConfigEntry::new(&state.config, setting(&key)?, &key)))
}

#[utoipa::path(put, path = "/v1/config/{key}", tag = "config", params(("key" = String, Path)),
    request_body = SetConfigBody,
    responses((status = 200, body = ConfigEntry, description = "Set (the same value again changes nothing)"),
        (status = 404, body = Problem, description = "unknown_config_key"),
        (status = 422, body = Problem, description = "invalid_config_value, naming why")),
    security(("api_key" = [])))]
pub async fn set(
    State(state): State<ApiState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    Path(key): Path<String>,
    Json(body): Json<SetConfigBody>,
) -> Result<Response, ApiError> {
    let who = require(&state, &headers, WRITE).await?;
    let setting = setting(&key)?;
    allowed(&who, setting)?;
    if let Err(why) = setting.check(&body.value) {
        return Err(ApiError::Rejected(refusal(Rejection::InvalidConfigValue, Some(why))));
    }
    change(&state, &who, &headers, request_id, setting, Command::set(key, body.value)).await
}

#[utoipa::path(delete, path = "/v1/config/{key}", tag = "config", params(("key" = String, Path)),
    responses((status = 200, body = ConfigEntry, description = "Reset: the file's default, else the declared one, applies"),
        (status = 404, body = Problem, description = "unknown_config_key")),
    security(("api_key" = [])))]
pub async fn reset(
    State(state): State<ApiState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    let who = require(&state, &headers, WRITE).await?;
    let setting = setting(&key)?;
    allowed(&who, setting)?;
    change(&state, &who, &headers, request_id, setting, Command::reset(key)).await
}

async fn change(
    state: &ApiState,
    who: &Principal,
    headers: &HeaderMap,
    request_id: RequestId,
    setting: &'static Setting,
    command: Command,
) -> Result<Response, ApiError> {
    let key = command.key().to_owned();
    let c = state.inner.ledger.submit(command, meta(who, headers, request_id)?).await??;
    // A change commits its own audit entry (`config.set`, `config.reset`: info) beside it.
    if !c.replayed {
        state.auditor.count(ledger_core::audit::Level::Info);
    }
    // This process uses its own change at once.
    if let Some(Entity::Row(row)) = &c.entity {
        state.config.absorb(row, c.position);
    }
    Ok(json(StatusCode::OK, ConfigEntry::new(&state.config, setting, &key)))
}
