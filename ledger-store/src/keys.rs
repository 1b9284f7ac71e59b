//! API keys: channels authenticate with `Authorization: Bearer <key>` on both APIs. Only a
//! SHA-256 of each key is stored; a key maps to a channel, its own permissions (the `scopes`
//! column) and its roles (`crate::roles`), each held plainly (`support`) or bound to an owner
//! (`merchant:store-17`, the role's `{scope}` templates bound to it). What a key may do is
//! `ledger_core::permission`'s matching of both against the `Need` a handler asks for.
//!
//! Every process keeps the keys it resolved in a cache that its own listening connection clears
//! at each `NOTIFY ledger_keys` (sent in the transaction of a revocation or a role change), so a
//! change is seen everywhere as soon as it commits. While that connection is down (not yet
//! connected, lost, or no runtime to run it on) the cache is not used at all: every request
//! resolves its key in the database, until the connection listens again (reconnected with
//! back-off, the cache cleared then).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ledger_core::permission::{Need, Permission, PermissionError, Permissions};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::roles::{Grant, InvalidGrantScope};

/// The channel every change to keys and roles is announced on.
pub const CHANNEL: &str = "ledger_keys";
/// At most this many permissions of its own per key, and per role.
pub const MAX_PERMISSIONS: usize = 64;
/// At most this many roles per key.
pub const MAX_ROLES: usize = 16;

/// Why a caller was refused.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("a valid API key is required: Authorization: Bearer <key>")]
    Unauthorized,
    /// The permission the key lacks, e.g. `orders:complete:trader-6`.
    #[error("this key lacks the permission {0}")]
    Forbidden(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// The key in an `Authorization: Bearer <key>` header value.
pub fn bearer(authorization: Option<&str>) -> Option<&str> {
    authorization.and_then(|v| v.strip_prefix("Bearer ")).map(str::trim).filter(|k| !k.is_empty() && k.len() <= 256)
}

/// Who is calling: the key's id, its channel, roles, and what it may do (its own permissions and
/// its roles', their templates bound to the owners its grants name).
#[derive(Clone, Debug)]
pub struct Principal {
    pub key_id: Uuid,
    pub channel: String,
    /// The key's grants as stored: `name` or `name:scope`.
    pub roles: Vec<String>,
    pub permissions: Permissions,
}

impl Principal {
    /// `Ok` if the key grants `need`, else the refusal naming it.
    pub fn require(&self, need: &Need<'_>) -> Result<(), KeyError> {
        if self.permissions.grants(need) { Ok(()) } else { Err(KeyError::Forbidden(need.to_string())) }
    }

    /// `Ok` if the key grants `need` for at least one owner: the check before a handler has read
    /// which owner its command concerns (then it calls `require` with the owner).
    pub fn require_some_scope(&self, need: &Need<'_>) -> Result<(), KeyError> {
        if self.permissions.grants_in_some_scope(need) { Ok(()) } else { Err(KeyError::Forbidden(need.to_string())) }
    }
}

fn hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

struct Shared {
    pool: PgPool,
    cache: RwLock<HashMap<[u8; 32], Principal>>,
    /// Raised at every clearing, so a lookup that started before one never fills the cache.
    epoch: AtomicU64,
    /// The listening connection listens: the cache may be used.
    live: AtomicBool,
}

impl Shared {
    fn clear(&self) {
        let mut cache = self.cache.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        cache.clear();
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }
}

/// Resolves keys to principals, caching them until `NOTIFY ledger_keys` says something changed.
pub struct KeyStore {
    shared: Arc<Shared>,
    listener: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for KeyStore {
    fn drop(&mut self) {
        if let Some(task) = &self.listener {
            task.abort();
        }
    }
}

impl KeyStore {
    /// A key store on `pool`; within a tokio runtime it starts its listening connection.
    pub fn new(pool: PgPool) -> KeyStore {
        let shared = Arc::new(Shared {
            pool,
            cache: RwLock::new(HashMap::new()),
            epoch: AtomicU64::new(0),
            live: AtomicBool::new(false),
        });
        let listener = tokio::runtime::Handle::try_current().ok().map(|rt| rt.spawn(listen(shared.clone())));
        KeyStore { shared, listener }
    }

    /// Whether the cache is in use (the listening connection listens).
    pub fn listening(&self) -> bool {
        self.shared.live.load(Ordering::SeqCst)
    }

    /// The caller, if `key` (from `bearer`) is valid and grants `need`.
    pub async fn require(&self, key: Option<&str>, need: &Need<'_>) -> Result<Principal, KeyError> {
        let principal = self.authenticate(key).await?;
        principal.require(need)?;
        Ok(principal)
    }

    /// The caller, if `key` (from `bearer`) is a valid, unrevoked key.
    pub async fn authenticate(&self, key: Option<&str>) -> Result<Principal, KeyError> {
        let key = key.ok_or(KeyError::Unauthorized)?;
        let digest = hash(key);
        let shared = &self.shared;
        let live = shared.live.load(Ordering::SeqCst);
        if live {
            let cache = shared.cache.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(p) = cache.get(&digest) {
                return Ok(p.clone());
            }
        }
        let epoch = shared.epoch.load(Ordering::SeqCst);
        let principal = resolve(&shared.pool, &digest).await?.ok_or(KeyError::Unauthorized)?;
        if live {
            let mut cache = shared.cache.write().unwrap_or_else(std::sync::PoisonError::into_inner);
            if shared.epoch.load(Ordering::SeqCst) == epoch && shared.live.load(Ordering::SeqCst) {
                cache.insert(digest, principal.clone());
            }
        }
        Ok(principal)
    }
}

/// The unrevoked key with this hash, with its own permissions and its roles' (read in the same
/// statement, so a role change is either wholly seen or not at all).
async fn resolve(pool: &PgPool, digest: &[u8; 32]) -> Result<Option<Principal>, sqlx::Error> {
    type Row = (Uuid, String, Vec<String>, Vec<String>, Option<String>, Option<Vec<String>>);
    // One row per role the key holds (one with no role if it holds none).
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT k.id, k.channel, k.roles, k.scopes, r.name, r.permissions FROM api_keys k \
         LEFT JOIN roles r ON r.name = ANY(ARRAY(SELECT split_part(g, ':', 1) FROM unnest(k.roles) g)) \
         WHERE k.key_hash = $1 AND k.revoked_at IS NULL",
    )
    .bind(&digest[..])
    .fetch_all(pool)
    .await?;
    let Some((key_id, channel, grants, scopes, _, _)) = rows.first().cloned() else {
        return Ok(None);
    };
    let roles: HashMap<String, Vec<String>> =
        rows.into_iter().filter_map(|(.., name, permissions)| Some((name?, permissions?))).collect();
    // Stored permissions and grants were checked when written; a malformed one grants nothing.
    let mut permissions: Vec<Permission> = scopes.iter().filter_map(|p| Permission::parse(p).ok()).collect();
    for grant in grants.iter().filter_map(|g| Grant::parse(g).ok()) {
        if let Some(held) = roles.get(grant.role) {
            permissions.extend(grant.permissions(held));
        }
    }
    Ok(Some(Principal { key_id, channel, roles: grants, permissions: Permissions::new(permissions) }))
}

/// The listening connection: clears the cache at every notification; when the connection is
/// lost, stops the cache's use until it listens again (back-off from 100 ms to 5 s).
async fn listen(shared: Arc<Shared>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        if let Err(e) = hear(&shared, &mut backoff).await {
            tracing::warn!(error = %e, "the key store's listening connection failed; keys are read from the database");
        }
        shared.live.store(false, Ordering::SeqCst);
        shared.clear();
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn hear(shared: &Shared, backoff: &mut Duration) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(&shared.pool).await?;
    listener.listen(CHANNEL).await?;
    // Whatever changed before it listened is forgotten, then the cache is used.
    shared.clear();
    shared.live.store(true, Ordering::SeqCst);
    *backoff = Duration::from_millis(100);
    while listener.try_recv().await?.is_some() {
        shared.clear();
    }
    Ok(())
}

/// Announces a change to keys or roles, in the caller's transaction.
pub(crate) async fn announce(tx: &mut sqlx::PgConnection, what: &str) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, $2)").bind(CHANNEL).bind(what).execute(tx).await.map(drop)
}

#[derive(Debug, thiserror::Error)]
pub enum CreateKeyError {
    #[error(transparent)]
    Permission(#[from] PermissionError),
    #[error("unknown role {0:?}")]
    UnknownRole(String),
    #[error(transparent)]
    InvalidRoleScope(#[from] InvalidGrantScope),
    #[error("at most {MAX_PERMISSIONS} permissions and {MAX_ROLES} roles per key")]
    TooMany,
    #[error("a channel name is 1 to 64 characters of a-z A-Z 0-9 _ . -")]
    InvalidChannel,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// Checks every permission (shape, and declared by a domain or the platform) and returns their
/// canonical forms.
pub fn known_permissions(permissions: &[String]) -> Result<Vec<String>, PermissionError> {
    permissions.iter().map(|p| Permission::parse_known(p.trim()).map(|p| p.to_string())).collect()
}

/// Creates a key for `channel` with its own `permissions` and returns `(key id, key)`. The key
/// itself is shown once and never stored.
pub async fn create_key(
    pool: &PgPool,
    channel: &str,
    permissions: &[String],
) -> Result<(Uuid, String), CreateKeyError> {
    create_key_with_roles(pool, channel, &[], permissions).await
}

/// Creates a key for `channel` with `roles` (each `name` or `name:scope`: the role must exist
/// and the scope be an owner id) and its own `permissions`. Checked in this order: the channel,
/// the counts, the permissions, the grants' scopes, the roles' existence; nothing is written
/// unless all pass.
pub async fn create_key_with_roles(
    pool: &PgPool,
    channel: &str,
    roles: &[String],
    permissions: &[String],
) -> Result<(Uuid, String), CreateKeyError> {
    let valid_channel =
        (1..=64).contains(&channel.len()) && channel.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if !valid_channel {
        return Err(CreateKeyError::InvalidChannel);
    }
    if permissions.len() > MAX_PERMISSIONS || roles.len() > MAX_ROLES {
        return Err(CreateKeyError::TooMany);
    }
    let permissions = known_permissions(permissions)?;
    let roles: Vec<String> = roles.iter().map(|r| r.trim().to_owned()).collect();
    let names: Vec<&str> = roles.iter().map(|g| Grant::parse(g).map(|g| g.role)).collect::<Result<_, _>>()?;
    // A name no role can have is unknown before the database sees it (text holds no NUL).
    if let Some(bad) = names.iter().find(|n| !crate::roles::is_role_name(n)) {
        return Err(CreateKeyError::UnknownRole((*bad).to_owned()));
    }
    let existing: Vec<String> =
        sqlx::query_scalar("SELECT name FROM roles WHERE name = ANY($1)").bind(&names).fetch_all(pool).await?;
    if let Some(missing) = names.iter().find(|r| !existing.iter().any(|e| e == *r)) {
        return Err(CreateKeyError::UnknownRole((*missing).to_owned()));
    }
    let id = Uuid::new_v4();
    // 244 random bits from two v4 UUIDs (the OS random source).
    let key = format!("ldg_{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
    sqlx::query("INSERT INTO api_keys (id, channel, scopes, roles, key_hash) VALUES ($1, $2, $3, $4, $5)")
        .bind(id)
        .bind(channel)
        .bind(&permissions)
        .bind(&roles)
        .bind(&hash(&key)[..])
        .execute(pool)
        .await?;
    Ok((id, key))
}

/// Revokes a key by id; true if it existed and was not yet revoked. Every running API stops
/// accepting it as soon as it hears the notification sent with it.
pub async fn revoke_key(pool: &PgPool, id: Uuid) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let done = sqlx::query("UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 1 {
        announce(&mut tx, &format!("revoked {id}")).await?;
    }
    tx.commit().await?;
    Ok(done.rows_affected() == 1)
}

/// A key as it is listed: never the key or its hash.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct KeyInfo {
    pub id: Uuid,
    pub channel: String,
    /// The key's grants: `name` or `name:scope`.
    pub roles: Vec<String>,
    /// The key's own permissions (its roles' are the roles').
    pub permissions: Vec<String>,
    pub created_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
}

/// At most this many keys are listed.
pub const MAX_LISTED_KEYS: i64 = 1000;

/// Every key, oldest first (at most `MAX_LISTED_KEYS`).
pub async fn list_keys(pool: &PgPool) -> Result<Vec<KeyInfo>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, channel, roles, scopes AS permissions, created_at, revoked_at FROM api_keys \
         ORDER BY created_at, id LIMIT $1",
    )
    .bind(MAX_LISTED_KEYS)
    .fetch_all(pool)
    .await
}
