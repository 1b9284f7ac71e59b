//! Roles: named sets of permissions a key may hold beside its own. Setting a role announces it
//! on `keys::CHANNEL` in the same transaction, so every process's key cache forgets what the
//! role granted before as soon as the change commits.

use ledger_core::permission::PermissionError;
use sqlx::PgPool;
use time::OffsetDateTime;

use crate::keys::{MAX_PERMISSIONS, announce, known_permissions};

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

/// A role as stored.
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
    let permissions = known_permissions(permissions)?;
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
