//! API keys: channels authenticate with `Authorization: Bearer <key>` on both APIs. Only a
//! SHA-256 of each key is stored; a key maps to a channel name and scopes.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

/// Why a caller was refused.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("a valid API key is required: Authorization: Bearer <key>")]
    Unauthorized,
    #[error("this key lacks the scope {}", .0.as_str())]
    Forbidden(Scope),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// The key in an `Authorization: Bearer <key>` header value.
pub fn bearer(authorization: Option<&str>) -> Option<&str> {
    authorization.and_then(|v| v.strip_prefix("Bearer ")).map(str::trim).filter(|k| !k.is_empty() && k.len() <= 256)
}

/// A permission a key grants: `read`, or one a domain declares (`ledger_core::domain::scopes`),
/// e.g. `transfers:write`, `certificates:redeem`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scope(&'static str);

#[allow(non_upper_case_globals)]
impl Scope {
    pub const AccountsWrite: Scope = Scope(ledger_core::ledger::scope::ACCOUNTS_WRITE);
    pub const TransfersWrite: Scope = Scope(ledger_core::ledger::scope::TRANSFERS_WRITE);
    pub const Read: Scope = Scope(ledger_core::domain::READ_SCOPE);

    /// A declared scope by its name (`None`: no domain declares it).
    pub fn parse(s: &str) -> Option<Scope> {
        ledger_core::domain::scopes().find(|known| *known == s).map(Scope)
    }

    /// A scope a domain declares, by the constant it declares it with.
    pub const fn declared(name: &'static str) -> Scope {
        Scope(name)
    }

    pub fn as_str(self) -> &'static str {
        self.0
    }
}

/// Who is calling: the key's id, its channel and scopes.
#[derive(Clone, Debug)]
pub struct Principal {
    pub key_id: Uuid,
    pub channel: String,
    pub scopes: Vec<Scope>,
}

fn hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Keys seen so far, by hash; a miss asks the database (keys are created by another process).
pub struct KeyStore {
    pool: PgPool,
    cache: RwLock<HashMap<[u8; 32], (Principal, Instant)>>,
    ttl: Duration,
}

/// How long a validated key is trusted before it is looked up again (so a revocation takes
/// effect within this time).
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(30);

impl KeyStore {
    pub fn new(pool: PgPool) -> KeyStore {
        KeyStore::with_ttl(pool, KEY_CACHE_TTL)
    }

    pub fn with_ttl(pool: PgPool, ttl: Duration) -> KeyStore {
        KeyStore { pool, cache: RwLock::new(HashMap::new()), ttl }
    }

    /// The caller, if `key` (from `bearer`) is valid and has `scope`.
    pub async fn require(&self, key: Option<&str>, scope: Scope) -> Result<Principal, KeyError> {
        let principal = self.principal(key.ok_or(KeyError::Unauthorized)?).await?;
        if principal.scopes.contains(&scope) { Ok(principal) } else { Err(KeyError::Forbidden(scope)) }
    }

    /// The caller, if `key` is valid, whatever its scopes (the rate limiter's look-up).
    pub async fn principal(&self, key: &str) -> Result<Principal, KeyError> {
        let digest = hash(key);
        let cached = self
            .cache
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&digest)
            .filter(|(_, checked)| checked.elapsed() < self.ttl)
            .map(|(p, _)| p.clone());
        let principal = match cached {
            Some(p) => p,
            None => {
                let row: Option<(Uuid, String, Vec<String>)> = sqlx::query_as(
                    "SELECT id, channel, scopes FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
                )
                .bind(&digest[..])
                .fetch_optional(&self.pool)
                .await?;
                let Some((key_id, channel, scopes)) = row else {
                    self.cache.write().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&digest);
                    return Err(KeyError::Unauthorized);
                };
                let principal =
                    Principal { key_id, channel, scopes: scopes.iter().filter_map(|s| Scope::parse(s)).collect() };
                self.cache
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(digest, (principal.clone(), Instant::now()));
                principal
            }
        };
        Ok(principal)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CreateKeyError {
    #[error("unknown scope {0:?}; scopes are {known}", known = ledger_core::domain::scopes().collect::<Vec<_>>().join(", "))]
    UnknownScope(String),
    #[error("a channel name is 1 to 64 characters of a-z A-Z 0-9 _ . -")]
    InvalidChannel,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// Creates a key for `channel` with `scopes` and returns `(key id, key)`. The key itself is
/// shown once and never stored.
pub async fn create_key(pool: &PgPool, channel: &str, scopes: &[String]) -> Result<(Uuid, String), CreateKeyError> {
    let valid_channel =
        (1..=64).contains(&channel.len()) && channel.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if !valid_channel {
        return Err(CreateKeyError::InvalidChannel);
    }
    let scopes: Vec<&'static str> = scopes
        .iter()
        .map(|s| Scope::parse(s.trim()).map(Scope::as_str).ok_or_else(|| CreateKeyError::UnknownScope(s.clone())))
        .collect::<Result<_, _>>()?;
    let id = Uuid::new_v4();
    // 244 random bits from two v4 UUIDs (the OS random source).
    let key = format!("ldg_{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
    sqlx::query("INSERT INTO api_keys (id, channel, scopes, key_hash) VALUES ($1, $2, $3, $4)")
        .bind(id)
        .bind(channel)
        .bind(&scopes)
        .bind(&hash(&key)[..])
        .execute(pool)
        .await?;
    Ok((id, key))
}

/// Revokes a key by id; true if it existed and was not yet revoked. Running APIs stop accepting
/// it within `KEY_CACHE_TTL`.
pub async fn revoke_key(pool: &PgPool, id: Uuid) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}
