//! Roles: named sets of permissions a key may hold beside its own. Setting a role announces it
//! on `keys::CHANNEL` in the same transaction, so every process's key cache forgets what the
//! role granted before as soon as the change commits.
//!
//! A role's permission may be a template, `{scope}` as its whole scope
//! (`orders:create:{scope}`). A key holds a role plainly (`support`) or bound to an owner
//! (`merchant:store-17`): bound, the role's templates grant that owner's scope
//! (`orders:create:store-17`); plain, they grant nothing, and its other permissions are granted
//! either way. Migration 0020 seeds the P2P orders' example roles (`merchant`, `trader`,
//! `support`, `teamlead`, `admin`), which an operator may edit like any other.

use ledger_core::permission::{Permission, PermissionError, RolePermission, is_owner};
use sqlx::PgPool;
use time::OffsetDateTime;

use crate::keys::{MAX_PERMISSIONS, announce};

/// At most this many roles are listed.
pub const MAX_LISTED_ROLES: i64 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum RoleError {
    #[error("a role name is 1 to 64 characters of a-z 0-9 _ -, starting with a letter or digit")]
    InvalidName,
    #[error(transparent)]
    Permission(#[from] PermissionError),
    #[error("at most {MAX_PERMISSIONS} permissions per role")]
    TooMany,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// A role's name: 1 to 64 of `a-z 0-9 _ -`, starting with a letter or digit.
pub fn is_role_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// A key's hold on a role: `name`, or `name:scope` to bind its templates to the owner `scope`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant<'a> {
    pub role: &'a str,
    pub scope: Option<&'a str>,
}

/// A grant whose scope is not an owner id (1 to 64 of `A-Z a-z 0-9 . _ -`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?}: a role is held as name or name:scope, the scope one owner's id, 1 to 64 of A-Z a-z 0-9 . _ - (not * or {{scope}})"
)]
pub struct InvalidGrantScope(pub String);

impl<'a> Grant<'a> {
    /// Splits `name[:scope]` at its first `:` and checks the scope's shape (whether the role
    /// exists is the database's to say).
    pub fn parse(grant: &'a str) -> Result<Grant<'a>, InvalidGrantScope> {
        match grant.split_once(':') {
            None => Ok(Grant { role: grant, scope: None }),
            Some((role, scope)) if is_owner(scope) => Ok(Grant { role, scope: Some(scope) }),
            Some(_) => Err(InvalidGrantScope(grant.to_owned())),
        }
    }

    /// What this grant of a role with `permissions` (as stored) grants: each permission, and
    /// each template bound to the grant's scope (none of them for a plain grant).
    pub fn permissions<'p>(self, permissions: &'p [String]) -> impl Iterator<Item = Permission> + 'p
    where
        'a: 'p,
    {
        // Stored permissions were checked when written; a malformed one grants nothing.
        permissions.iter().filter_map(move |p| RolePermission::parse(p).ok().and_then(|p| p.bind(self.scope)))
    }
}

/// Checks every permission of a role (shape, `{scope}` allowed as a whole scope, and declared
/// by a domain or the platform) and returns their canonical forms.
pub fn known_role_permissions(permissions: &[String]) -> Result<Vec<String>, PermissionError> {
    permissions.iter().map(|p| RolePermission::parse_known(p.trim()).map(|p| p.to_string())).collect()
}

/// A role as stored: its templates as written (`orders:create:{scope}`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Role {
    pub name: String,
    pub permissions: Vec<String>,
    pub updated_at: OffsetDateTime,
}

/// Creates or replaces the role `name`; true if it was new.
pub async fn set_role(pool: &PgPool, name: &str, permissions: &[String]) -> Result<bool, RoleError> {
    if !is_role_name(name) {
        return Err(RoleError::InvalidName);
    }
    if permissions.len() > MAX_PERMISSIONS {
        return Err(RoleError::TooMany);
    }
    let permissions = known_role_permissions(permissions)?;
    let mut tx = pool.begin().await?;
    let created: bool = sqlx::query_scalar(
        "INSERT INTO roles (name, permissions) VALUES ($1, $2) \
         ON CONFLICT (name) DO UPDATE SET permissions = EXCLUDED.permissions, updated_at = now() \
         RETURNING xmax = 0",
    )
    .bind(name)
    .bind(&permissions)
    .fetch_one(&mut *tx)
    .await?;
    announce(&mut tx, &format!("role {name}")).await?;
    tx.commit().await?;
    Ok(created)
}

/// Every role by name (at most `MAX_LISTED_ROLES`).
pub async fn list_roles(pool: &PgPool) -> Result<Vec<Role>, sqlx::Error> {
    let rows: Vec<(String, Vec<String>, OffsetDateTime)> =
        sqlx::query_as("SELECT name, permissions, updated_at FROM roles ORDER BY name LIMIT $1")
            .bind(MAX_LISTED_ROLES)
            .fetch_all(pool)
            .await?;
    Ok(rows.into_iter().map(|(name, permissions, updated_at)| Role { name, permissions, updated_at }).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_is_a_name_or_a_name_bound_to_an_owner() {
        assert_eq!(Grant::parse("support"), Ok(Grant { role: "support", scope: None }));
        assert_eq!(Grant::parse("merchant:store-17"), Ok(Grant { role: "merchant", scope: Some("store-17") }));
        assert_eq!(Grant::parse("merchant:A.b_c-1"), Ok(Grant { role: "merchant", scope: Some("A.b_c-1") }));
        // The name is the database's to know: an unknown one is refused there, not here.
        assert_eq!(Grant::parse("No such"), Ok(Grant { role: "No such", scope: None }));
        let long = format!("merchant:{}", "s".repeat(65));
        for bad in ["merchant:", "merchant:*", "merchant:{scope}", "merchant:a b", "merchant:a:b", long.as_str()] {
            assert_eq!(Grant::parse(bad), Err(InvalidGrantScope(bad.to_owned())), "{bad:?}");
        }
    }

    #[test]
    fn a_bound_grant_binds_the_templates_and_a_plain_one_grants_the_rest() {
        let role: Vec<String> =
            ["orders:create:{scope}", "orders:read:{scope}", "config:read", "orders:read:hq", "no such"]
                .map(String::from)
                .to_vec();
        let granted = |grant: &str| -> Vec<String> {
            Grant::parse(grant).unwrap().permissions(&role).map(|p| p.to_string()).collect()
        };
        assert_eq!(
            granted("merchant:store-17"),
            ["orders:create:store-17", "orders:read:store-17", "config:read", "orders:read:hq"]
        );
        assert_eq!(granted("merchant"), ["config:read", "orders:read:hq"]);
    }
}
