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
    /// Roles, each `name` or `name:scope` (the document's description: `GRANTS`).
    #[serde(default)]
    #[schema(schema_with = grant_list)]
    pub roles: Vec<String>,
    /// The key's own permissions (the document's description: `KEY_PERMISSIONS`).
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
    /// Its roles as it holds them: `name` or `name:scope`.
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
    /// The role's permissions (the document's description: `ROLE_PERMISSIONS`).
    #[schema(schema_with = role_permission_list)]
    pub permissions: Vec<String>,
}

/// A role as stored, its templates as written (`orders:create:{scope}`).
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
    pattern(r"\*|[A-Za-z0-9._-]{1,64}")
}

/// The pattern of a role's known permission: a key's, or one whose scope is `{scope}` (what
/// `RolePermission::parse_known` accepts).
pub fn role_permission_pattern() -> String {
    pattern(r"\*|[A-Za-z0-9._-]{1,64}|\{scope\}")
}

fn pattern(scopes: &str) -> String {
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
    format!(r"^(\*|read|({})(:({scopes}))?)$", pairs.join("|"))
}

/// The shape of a key's hold on a role: its name, or its name and the owner it is bound to.
pub const GRANT_PATTERN: &str = "^[a-z0-9][a-z0-9_-]{0,63}(:[A-Za-z0-9._-]{1,64})?$";

/// A key's roles.
const GRANTS: &str = "Roles, each held plainly (`support`) or bound to an owner (`merchant:store-17`): \
    bound, the role's permissions whose scope is `{scope}` are the key's with the owner's id as their scope \
    (`orders:create:store-17`); plain, the key has none of those, only the role's others. The role must \
    exist (`unknown_role`) and the scope be an owner id (`invalid_role_scope`).";
/// A key's own permissions.
const KEY_PERMISSIONS: &str = "The key's own permissions, `resource:action[:scope]` (`unknown_permission` \
    if no domain declares the resource and action); the scope `{scope}` is a role's only (`invalid_permission`).";
/// A role's permissions.
const ROLE_PERMISSIONS: &str = "As a key's, or with `{scope}` as the whole scope (`orders:create:{scope}`): \
    a template, which a key that holds the role bound to an owner has with that owner as its scope, and a \
    key that holds it plainly has not.";

fn list(pattern: &str, max_length: usize, max_items: usize, example: serde_json::Value, about: &str) -> Array {
    let item = ObjectBuilder::new().schema_type(Type::String).pattern(Some(pattern)).max_length(Some(max_length));
    ArrayBuilder::new().items(item).max_items(Some(max_items)).examples([example]).description(Some(about)).build()
}

fn permission_list() -> Array {
    list(
        &permission_pattern(),
        130,
        ledger_store::keys::MAX_PERMISSIONS,
        serde_json::json!(["accounts:read", "payouts:request:client-7"]),
        KEY_PERMISSIONS,
    )
}

fn role_permission_list() -> Array {
    list(
        &role_permission_pattern(),
        130,
        ledger_store::keys::MAX_PERMISSIONS,
        serde_json::json!(["orders:read:{scope}", "orders:create:{scope}", "config:read"]),
        ROLE_PERMISSIONS,
    )
}

fn grant_list() -> Array {
    let example = serde_json::json!(["support", "merchant:store-17"]);
    list(GRANT_PATTERN, 129, ledger_store::keys::MAX_ROLES, example, GRANTS)
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
    use ledger_core::permission::{Permission, RolePermission};

    use super::*;

    /// Samples of every shape, right and wrong, around each declared pair.
    fn samples() -> Vec<String> {
        let mut samples: Vec<String> = ["*", "read", "*:*", "*:read", "*:*:x", "read:x", "*:x", "x:*", "accounts", ""]
            .into_iter()
            .chain(["{scope}", "*:*:{scope}", "*:read:{scope}", "read:{scope}", "*:{scope}"])
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
                format!("{r}:{a}:{{scope}}"),
                format!("{r}:*:{{scope}}"),
                format!("{r}:{a}:{{scope}}x"),
                format!("{r}:{a}:{{scope}}:x"),
                format!("{r}:{a}:{{store}}"),
                format!("{r}:{{scope}}"),
                format!("{r}:nothing:{{scope}}"),
            ] {
                samples.push(sample);
            }
        }
        samples
    }

    /// `pattern` matches exactly what `takes` takes among the samples, and both ways occur.
    fn check(pattern: &str, takes: impl Fn(&str) -> bool) -> Vec<String> {
        let regex = regex::Regex::new(pattern).unwrap();
        let samples = samples();
        let taken: Vec<String> = samples.iter().filter(|s| takes(s)).cloned().collect();
        for sample in &samples {
            assert_eq!(regex.is_match(sample), takes(sample), "{sample:?}");
        }
        assert!(taken.len() > samples.len() / 4 && taken.len() < samples.len(), "the samples try both ways");
        taken
    }

    /// The patterns accept what the ledger accepts, and nothing else.
    #[test]
    fn the_permission_patterns_are_what_the_ledger_takes() {
        let keys = check(&permission_pattern(), |s| Permission::parse_known(s).is_ok());
        let roles = check(&role_permission_pattern(), |s| RolePermission::parse_known(s).is_ok());
        assert!(keys.iter().all(|p| roles.contains(p)), "a role may hold whatever a key may");
        assert!(roles.contains(&"orders:create:{scope}".to_owned()) && !keys.iter().any(|p| p.contains("{scope}")));
    }

    #[test]
    fn the_grant_pattern_is_what_the_ledger_takes() {
        let regex = regex::Regex::new(GRANT_PATTERN).unwrap();
        let long = format!("merchant:{}", "s".repeat(65));
        for grant in ["support", "merchant:store-17", "a:A.b_c-1", "9-x_y"] {
            assert!(regex.is_match(grant) && ledger_store::roles::Grant::parse(grant).is_ok(), "{grant}");
        }
        for grant in ["merchant:", "merchant:*", "merchant:{scope}", "merchant:a b", "merchant:a:b", long.as_str()] {
            assert!(!regex.is_match(grant) && ledger_store::roles::Grant::parse(grant).is_err(), "{grant}");
        }
        // Names the pattern refuses are names no role has (the table checks them the same way).
        for name in ["Support", "-x", "", "x!"] {
            assert!(!regex.is_match(name) && !ledger_store::roles::is_role_name(name), "{name:?}");
        }
    }
}
