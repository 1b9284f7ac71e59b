//! Request and response bodies of the admin endpoints. Keys are never listed, only shown once
//! when created; their hashes never leave the store.

use ledger_store::keys::KeyInfo;
use ledger_store::roles::Role;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;
use utoipa::openapi::{Array, ArrayBuilder, ObjectBuilder, Type};
use uuid::Uuid;

/// A key to create: its channel, its roles and its own permissions.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    /// The channel the key's events are recorded under.
    #[schema(pattern = "^[A-Za-z0-9_.-]{1,64}$", min_length = 1, max_length = 64, example = "pos")]
    pub channel: String,
    /// Roles (each must exist, else `unknown_role`).
    #[serde(default)]
    #[schema(schema_with = role_list)]
    pub roles: Vec<String>,
    /// The key's own permissions (`resource:action[:scope]`; `unknown_permission` if no domain
    /// declares the resource and action).
    #[serde(default)]
    #[schema(schema_with = permission_list)]
    pub permissions: Vec<String>,
}

/// A key created: shown this once, never again.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedKey {
    pub id: Uuid,
    /// `Authorization: Bearer <key>`.
    #[schema(example = "ldg_6f1c…")]
    pub key: String,
}

/// A key as listed (never the key itself).
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyView {
    pub id: Uuid,
    pub channel: String,
    pub roles: Vec<String>,
    /// The key's own permissions; its roles' are listed with the roles.
    pub permissions: Vec<String>,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub created: String,
    /// RFC 3339, or null while the key is active.
    #[schema(format = DateTime)]
    pub revoked: Option<String>,
}

/// Every key, oldest first (at most 1000).
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyList {
    pub keys: Vec<KeyView>,
}

/// A role's permissions: replaces what it had.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleRequest {
    #[schema(schema_with = permission_list)]
    pub permissions: Vec<String>,
}

/// A role as stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoleView {
    pub name: String,
    pub permissions: Vec<String>,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub updated: String,
}

/// Every role by name (at most 1000).
#[derive(Debug, Serialize, ToSchema)]
pub struct RoleList {
    pub roles: Vec<RoleView>,
}

/// The pattern of a known permission: `*`, the old `read`, or `resource:action[:scope]` whose
/// resource and action (each a name or `*`) some domain or the platform declares, the scope an
/// owner id or `*`. It is what `Permission::parse_known` accepts (`invalid_permission`,
/// `unknown_permission` otherwise), spelt out from the declared pairs, so the document names
/// every permission a key may be given.
pub fn permission_pattern() -> String {
    let mut actions: std::collections::BTreeMap<&str, std::collections::BTreeSet<&str>> = Default::default();
    for need in ledger_core::permission::declared() {
        actions.entry(need.resource).or_default().insert(need.action);
        actions.entry("*").or_default().insert(need.action);
    }
    let pairs: Vec<String> = actions
        .iter()
        .map(|(resource, actions)| {
            let resource = if *resource == "*" { r"\*" } else { resource };
            let actions: Vec<&str> = actions.iter().copied().collect();
            format!(r"{resource}:(\*|{})", actions.join("|"))
        })
        .collect();
    format!(r"^(\*|read|({})(:(\*|[A-Za-z0-9._-]{{1,64}}))?)$", pairs.join("|"))
}
/// The shape of a role's name.
pub const ROLE_PATTERN: &str = "^[a-z0-9][a-z0-9_-]{0,63}$";

fn list(pattern: &str, max_length: usize, max_items: usize, example: serde_json::Value) -> Array {
    let item = ObjectBuilder::new().schema_type(Type::String).pattern(Some(pattern)).max_length(Some(max_length));
    ArrayBuilder::new().items(item).max_items(Some(max_items)).examples([example]).build()
}

fn permission_list() -> Array {
    list(
        &permission_pattern(),
        130,
        ledger_store::keys::MAX_PERMISSIONS,
        serde_json::json!(["accounts:read", "payouts:request:client-7"]),
    )
}

fn role_list() -> Array {
    list(ROLE_PATTERN, 64, ledger_store::keys::MAX_ROLES, serde_json::json!(["clerk"]))
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

impl From<KeyInfo> for KeyView {
    fn from(k: KeyInfo) -> KeyView {
        KeyView {
            id: k.id,
            channel: k.channel,
            roles: k.roles,
            permissions: k.permissions,
            created: rfc3339(k.created_at),
            revoked: k.revoked_at.map(rfc3339),
        }
    }
}

impl From<Role> for RoleView {
    fn from(r: Role) -> RoleView {
        RoleView { name: r.name, permissions: r.permissions, updated: rfc3339(r.updated_at) }
    }
}

#[cfg(test)]
mod tests {
    use ledger_core::permission::Permission;

    use super::*;

    /// The pattern accepts what the ledger accepts, and nothing else.
    #[test]
    fn the_permission_pattern_is_what_the_ledger_takes() {
        let pattern = regex::Regex::new(&permission_pattern()).unwrap();
        let mut samples: Vec<String> = ["*", "read", "*:*", "*:read", "*:*:x", "read:x", "*:x", "x:*", "accounts", ""]
            .into_iter()
            .map(str::to_owned)
            .collect();
        for need in ledger_core::permission::declared() {
            let (r, a) = (need.resource, need.action);
            for sample in [
                format!("{r}:{a}"),
                format!("{r}:*"),
                format!("*:{a}"),
                format!("{r}:{a}:client-7"),
                format!("{r}:{a}:*"),
                format!("{r}:{a}:a b"),
                format!("{r}:{a}:"),
                format!("{r}:{a}:x:y"),
                format!("{r}:{a}x"),
                format!("{r}x:{a}"),
                format!("{r}:nothing"),
                format!("{r}:{a}:{}", "s".repeat(64)),
                format!("{r}:{a}:{}", "s".repeat(65)),
            ] {
                samples.push(sample);
            }
        }
        let mut accepted = 0;
        for sample in &samples {
            let taken = Permission::parse_known(sample).is_ok();
            assert_eq!(pattern.is_match(sample), taken, "{sample:?}");
            accepted += usize::from(taken);
        }
        assert!(accepted > samples.len() / 3, "the samples try both ways");
    }
}
