//! The platform's admin endpoints (`/v1/admin/…`, all asking for `keys:write`): API keys
//! (create, list, revoke) and roles (set, list), their OpenAPI part, and the table that maps
//! the store's refusals to HTTP.
//!
//! Every admin action that succeeds passes through [`record`], the one place to write it to the
//! audit trail; every refused key passes through `crate::handler::require`.

pub mod routes;
pub mod wire;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use ledger_core::permission::PermissionError;
use ledger_store::keys::{CreateKeyError, Principal};
use ledger_store::roles::RoleError;
use utoipa::OpenApi;
use uuid::Uuid;

use crate::ApiState;
use crate::error::{ApiError, Refusal};
use wire::*;

/// The admin routes.
/// What the admin answers lead to: a key made to its revocation, the roles listed to setting one.
pub const LINKS: &[crate::openapi::Link] = &[
    crate::openapi::Link {
        from: "create_key",
        to: "revoke_key",
        parameters: &[("id", "$response.body#/id")],
        body: &[],
    },
    crate::openapi::Link {
        from: "list_roles",
        to: "set_role",
        parameters: &[("name", "$response.body#/roles/0/name")],
        body: &[],
    },
];

pub fn router() -> Router<ApiState> {
    Router::new()
        .route("/v1/admin/keys", post(routes::create_key).get(routes::list_keys))
        .route("/v1/admin/keys/{id}", delete(routes::revoke_key))
        .route("/v1/admin/roles", get(routes::list_roles))
        .route("/v1/admin/roles/{name}", put(routes::set_role))
}

/// The admin part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    paths(routes::create_key, routes::list_keys, routes::revoke_key, routes::set_role, routes::list_roles),
    components(schemas(CreateKeyRequest, CreatedKey, KeyView, KeyList, RoleRequest, RoleView, RoleList))
)]
pub struct Doc;

/// An admin action that was carried out.
#[derive(Debug)]
pub enum Action<'a> {
    CreateKey { id: Uuid, channel: &'a str, roles: &'a [String], permissions: &'a [String] },
    RevokeKey { id: Uuid },
    SetRole { name: &'a str, permissions: &'a [String] },
}

/// Records an admin action by `who` as an audit entry, after it committed and before it is
/// answered (the key itself never: only its id).
pub async fn record(state: &ApiState, who: &Principal, action: Action<'_>) {
    use ledger_core::audit::Level;
    let (name, level, subject, after) = match action {
        Action::CreateKey { id, channel, roles, permissions } => (
            "keys.create",
            Level::Info,
            id.to_string(),
            serde_json::json!({"channel": channel, "roles": roles, "permissions": permissions}),
        ),
        Action::RevokeKey { id } => {
            ("keys.revoke", Level::Warning, id.to_string(), serde_json::json!({"revoked": true}))
        }
        Action::SetRole { name, permissions } => {
            ("roles.set", Level::Info, name.to_owned(), serde_json::json!({"permissions": permissions}))
        }
    };
    audit_action(state, who, name, level, subject, Some(after)).await;
}

/// Records an action of the platform's endpoints (admin, webhooks) by `who` as an audit entry,
/// after it committed and before it is answered. A failure to record is logged: the action
/// stands.
pub async fn audit_action(
    state: &ApiState,
    who: &Principal,
    action: &'static str,
    level: ledger_core::audit::Level,
    subject: String,
    after: Option<serde_json::Value>,
) {
    let entry = ledger_core::audit::Entry {
        id: Uuid::new_v4(),
        level,
        action: action.into(),
        subject,
        before: None,
        after,
        reason: None,
    };
    if let Err(e) = state.auditor().record(entry, ledger_store::audit::actor(who)).await {
        tracing::error!(error = %e, key_id = %who.key_id, action, "an admin action was not audited");
    }
}

fn refused(code: &'static str, detail: String) -> ApiError {
    ApiError::Rejected(Refusal { status: StatusCode::UNPROCESSABLE_ENTITY, code, detail })
}

fn permission_refusal(e: PermissionError) -> ApiError {
    let code = match e {
        PermissionError::Unknown(_) => "unknown_permission",
        PermissionError::Malformed(_) | PermissionError::Placeholder(_) => "invalid_permission",
    };
    refused(code, e.to_string())
}

impl From<CreateKeyError> for ApiError {
    fn from(e: CreateKeyError) -> Self {
        match e {
            CreateKeyError::Permission(e) => permission_refusal(e),
            CreateKeyError::UnknownRole(_) => refused("unknown_role", e.to_string()),
            CreateKeyError::InvalidRoleScope(_) => refused("invalid_role_scope", e.to_string()),
            CreateKeyError::TooMany => refused("too_many", e.to_string()),
            CreateKeyError::InvalidChannel => refused("invalid_channel", e.to_string()),
            CreateKeyError::Database(e) => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<RoleError> for ApiError {
    fn from(e: RoleError) -> Self {
        match e {
            RoleError::Permission(e) => permission_refusal(e),
            RoleError::InvalidName => refused("invalid_role_name", e.to_string()),
            RoleError::TooMany => refused("too_many", e.to_string()),
            RoleError::Database(e) => ApiError::Internal(e.to_string()),
        }
    }
}
