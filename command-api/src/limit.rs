//! Per-key rate limits: one layer on every route of the command API. A request with a valid key
//! takes a token from its key's bucket (GCRA, `governor`): the quota is the runtime setting
//! `rate_limit.key.{key_id}`, else `rate_limit.default` (`ledger_core::rate_limit`), rebuilt when
//! the configuration changes. Over the quota it is answered 429 `rate_limited` with
//! `Retry-After`; every answer to a request with a valid key carries `X-RateLimit-Limit` (the
//! burst), `X-RateLimit-Remaining` and `X-RateLimit-Reset` (seconds until the bucket is full).
//! Buckets are per process: N processes behind a balancer allow N times the quota. A request
//! without a valid key passes untouched (its handler answers 401).
//!
//! A key's refusals are audited (`rate_limit.exceeded`, a warning, the key its actor and
//! subject, its quota after) at most once a minute per key and process: a burst of 429s is one
//! entry. Only refusals look at when the key was last audited, and the entry is recorded beside
//! the answer, never before it.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use ledger_core::rate_limit::{self, Quota};
use ledger_store::config::RuntimeConfig;
use ledger_store::keys::bearer;
use uuid::Uuid;

use crate::ApiState;
use crate::error::ApiError;

/// The headers the layer answers with (they survive the rendering of a problem).
pub(crate) const HEADERS: [&str; 4] =
    ["retry-after", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"];

type Bucket = governor::RateLimiter<NotKeyed, InMemoryState, DefaultClock, StateInformationMiddleware>;

/// How long after a key's audited refusal its next refusals go unaudited.
pub(crate) const AUDIT_INTERVAL: Duration = Duration::from_secs(60);

/// The most keys whose last audited refusal is remembered: past it, the ones older than the
/// interval are forgotten, and if none is, refusals of further keys go unaudited until one is.
pub(crate) const MAX_AUDITED_KEYS: usize = 10_000;

/// The buckets of every key seen, and the quotas they were made with.
pub(crate) struct Limiter {
    config: RuntimeConfig,
    clock: DefaultClock,
    limits: RwLock<Limits>,
    /// When each refused key's refusal was last audited.
    audited: Mutex<HashMap<Uuid, Instant>>,
}

struct Limits {
    /// The configuration's generation the quotas were read at.
    generation: Option<u64>,
    enabled: bool,
    default: Quota,
    keys: HashMap<Uuid, Quota>,
    buckets: HashMap<Uuid, (Quota, Bucket)>,
}

/// What a request learnt of its key's bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub quota: Quota,
    pub remaining: u32,
    /// `Some(seconds)`: refused, retry after this long.
    pub retry_after_s: Option<u64>,
}

impl Outcome {
    /// Seconds until the bucket is full again.
    fn reset_s(self) -> u64 {
        u64::from(self.quota.burst - self.remaining).div_ceil(u64::from(self.quota.per_second))
    }

    fn write(self, headers: &mut HeaderMap) {
        let number = |n: u64| HeaderValue::from(n);
        headers.insert("x-ratelimit-limit", number(self.quota.burst.into()));
        headers.insert("x-ratelimit-remaining", number(self.remaining.into()));
        headers.insert("x-ratelimit-reset", number(self.reset_s()));
        if let Some(seconds) = self.retry_after_s {
            headers.insert(header::RETRY_AFTER, number(seconds));
        }
    }
}

fn bucket(quota: Quota) -> Bucket {
    let nonzero = |n: u32| NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
    let quota = governor::Quota::per_second(nonzero(quota.per_second)).allow_burst(nonzero(quota.burst));
    governor::RateLimiter::direct(quota).with_middleware::<StateInformationMiddleware>()
}

impl Limiter {
    pub(crate) fn new(config: RuntimeConfig) -> Limiter {
        let limits = Limits {
            generation: None,
            enabled: true,
            default: rate_limit::DEFAULT,
            keys: HashMap::new(),
            buckets: HashMap::new(),
        };
        Limiter {
            config,
            clock: DefaultClock::default(),
            limits: RwLock::new(limits),
            audited: Mutex::new(HashMap::new()),
        }
    }

    /// Whether a refusal of `key` at `now` is to be audited: its first since `AUDIT_INTERVAL`
    /// (and room to remember it, within `MAX_AUDITED_KEYS`). Called on refusals only.
    pub(crate) fn audit_refusal(&self, key: Uuid, now: Instant) -> bool {
        let mut audited = self.audited.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let recent = |at: &Instant| now.saturating_duration_since(*at) < AUDIT_INTERVAL;
        if audited.get(&key).is_some_and(recent) {
            return false;
        }
        if !audited.contains_key(&key) && audited.len() >= MAX_AUDITED_KEYS {
            audited.retain(|_, at| recent(at));
            if audited.len() >= MAX_AUDITED_KEYS {
                return false;
            }
        }
        audited.insert(key, now);
        true
    }

    /// Whether `rate_limit.enabled` is on.
    pub(crate) fn enabled(&self) -> bool {
        let generation = self.config.generation();
        let limits = self.limits.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        if limits.generation == Some(generation) {
            return limits.enabled;
        }
        drop(limits);
        let mut limits = self.limits.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.reread(&mut limits, generation);
        limits.enabled
    }

    /// Takes one token from `key`'s bucket.
    pub(crate) fn check(&self, key: Uuid) -> Outcome {
        let generation = self.config.generation();
        {
            let limits = self.limits.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            if limits.generation == Some(generation)
                && let Some((quota, bucket)) = limits.buckets.get(&key)
            {
                return self.take(*quota, bucket);
            }
        }
        let mut limits = self.limits.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if limits.generation != Some(generation) {
            self.reread(&mut limits, generation);
        }
        let quota = limits.keys.get(&key).copied().unwrap_or(limits.default);
        let (quota, bucket) = limits.buckets.entry(key).or_insert_with(|| (quota, bucket(quota)));
        self.take(*quota, bucket)
    }

    fn take(&self, quota: Quota, bucket: &Bucket) -> Outcome {
        match bucket.check() {
            Ok(snapshot) => Outcome { quota, remaining: snapshot.remaining_burst_capacity(), retry_after_s: None },
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                Outcome { quota, remaining: 0, retry_after_s: Some(seconds.max(1)) }
            }
        }
    }

    /// Reads the quotas again; a bucket whose quota did not change keeps its tokens.
    fn reread(&self, limits: &mut Limits, generation: u64) {
        limits.enabled = self.config.get(rate_limit::ENABLED_KEY) != serde_json::Value::Bool(false);
        limits.default = Quota::from_value(&self.config.get(rate_limit::DEFAULT_KEY)).unwrap_or(rate_limit::DEFAULT);
        limits.keys = self
            .config
            .keys()
            .iter()
            .filter_map(|key| {
                let id = Uuid::parse_str(key.strip_prefix(rate_limit::KEY_PREFIX)?).ok()?;
                Some((id, Quota::from_value(&self.config.get(key))?))
            })
            .collect();
        let Limits { default, keys, buckets, .. } = limits;
        buckets.retain(|key, (quota, _)| keys.get(key).unwrap_or(default) == quota);
        limits.generation = Some(generation);
    }
}

/// The layer: looks the key up (the key store's cache, as the handler will), takes a token, and
/// answers 429 or adds the headers to the handler's answer.
pub(crate) async fn layer(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    if !state.limiter.enabled() {
        return next.run(request).await;
    }
    let authorization = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let Some(key) = bearer(authorization) else { return next.run(request).await };
    let Ok(principal) = state.inner.keys.authenticate(Some(key)).await else { return next.run(request).await };
    let outcome = state.limiter.check(principal.key_id);
    let mut response = match outcome.retry_after_s {
        Some(seconds) => {
            if state.limiter.audit_refusal(principal.key_id, Instant::now()) {
                tokio::spawn(audit(state.auditor.clone(), principal, outcome.quota));
            }
            ApiError::RateLimited(seconds).into_response()
        }
        None => next.run(request).await,
    };
    outcome.write(response.headers_mut());
    response
}

/// Records that `who` went over `quota`.
async fn audit(auditor: ledger_store::audit::Auditor, who: ledger_store::keys::Principal, quota: Quota) {
    let entry = ledger_core::audit::Entry {
        id: Uuid::new_v4(),
        level: ledger_core::audit::Level::Warning,
        action: "rate_limit.exceeded".into(),
        subject: who.key_id.to_string(),
        before: None,
        after: Some(serde_json::json!({"limit_per_second": quota.per_second, "burst": quota.burst})),
        reason: None,
    };
    if let Err(e) = auditor.record(entry, ledger_store::audit::actor(&who)).await {
        tracing::error!(error = %e, key_id = %who.key_id, "a burst of refusals was not audited");
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;

    fn limiter(file: serde_json::Value) -> Limiter {
        let file = BTreeMap::from([(rate_limit::DEFAULT_KEY.to_owned(), file)]);
        Limiter::new(RuntimeConfig::detached(file).unwrap())
    }

    #[test]
    fn a_burst_is_allowed_then_refused_with_the_wait_and_each_key_has_its_own_bucket() {
        let limiter = limiter(json!({"per_second": 1, "burst": 3}));
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let quota = Quota { per_second: 1, burst: 3 };
        let remaining: Vec<u32> = (0..3).map(|_| limiter.check(a).remaining).collect();
        assert_eq!(remaining, [2, 1, 0]);
        let refused = limiter.check(a);
        assert_eq!(refused, Outcome { quota, remaining: 0, retry_after_s: Some(1) });
        assert_eq!(refused.reset_s(), 3);
        assert_eq!(limiter.check(b), Outcome { quota, remaining: 2, retry_after_s: None });
        let mut headers = HeaderMap::new();
        refused.write(&mut headers);
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        assert_eq!(header("x-ratelimit-limit").as_deref(), Some("3"));
        assert_eq!(header("x-ratelimit-remaining").as_deref(), Some("0"));
        assert_eq!(header("x-ratelimit-reset").as_deref(), Some("3"));
        assert_eq!(header("retry-after").as_deref(), Some("1"));
    }

    #[test]
    fn a_keys_refusals_are_audited_once_a_minute_and_the_keys_remembered_are_bounded() {
        let limiter = limiter(json!({"per_second": 1, "burst": 1}));
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert!(limiter.audit_refusal(a, t0));
        assert!(!limiter.audit_refusal(a, t0));
        assert!(!limiter.audit_refusal(a, at(59)));
        assert!(limiter.audit_refusal(b, at(59)), "each key its own minute");
        assert!(limiter.audit_refusal(a, at(60)));
        assert!(!limiter.audit_refusal(a, at(119)));
        // Full: keys older than the interval make room; when none is, new keys go unaudited.
        let now = at(200);
        for n in 0..MAX_AUDITED_KEYS as u128 - 2 {
            assert!(limiter.audit_refusal(Uuid::from_u128(1_000 + n), now));
        }
        assert!(limiter.audit_refusal(Uuid::from_u128(3), now), "a and b are forgotten");
        assert!(limiter.audit_refusal(a, now));
        assert!(!limiter.audit_refusal(Uuid::from_u128(4), now), "none is older than the interval");
        assert!(!limiter.audit_refusal(a, now), "a remembered key stays remembered");
        assert!(limiter.audited.lock().unwrap().len() <= MAX_AUDITED_KEYS);
        assert!(limiter.audit_refusal(Uuid::from_u128(4), now + AUDIT_INTERVAL));
        assert!(limiter.audited.lock().unwrap().len() <= MAX_AUDITED_KEYS);
    }

    #[test]
    fn a_key_of_its_own_quota_gets_it_and_a_change_rebuilds_only_changed_buckets() {
        let slow = Quota { per_second: 1, burst: 5 };
        let config =
            RuntimeConfig::detached(BTreeMap::from([(rate_limit::DEFAULT_KEY.to_owned(), slow.to_value())])).unwrap();
        let limiter = Limiter::new(config.clone());
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        assert_eq!(limiter.check(a).quota, slow);
        assert_eq!(limiter.check(b).remaining, 4);
        let key = format!("{}{a}", rate_limit::KEY_PREFIX);
        let row = |version: u32| {
            let entry = ledger_core::config::state::Entry {
                key: key.clone(),
                value: Some(json!({"per_second": 2, "burst": 2})),
                at: ledger_core::Timestamp(1),
                version,
            };
            ledger_core::EntityRow {
                kind: "config".into(),
                id: ledger_core::config::entity(&key).id,
                key: key.clone(),
                version,
                state: serde_json::to_string(&entry).unwrap().into(),
                typed: Default::default(),
            }
        };
        config.absorb(&row(1), 5);
        assert_eq!(
            limiter.check(a),
            Outcome { quota: Quota { per_second: 2, burst: 2 }, remaining: 1, retry_after_s: None }
        );
        // The other key's bucket kept its tokens.
        assert_eq!(limiter.check(b), Outcome { quota: slow, remaining: 3, retry_after_s: None });
        assert!(limiter.enabled());
        let off = BTreeMap::from([(rate_limit::ENABLED_KEY.to_owned(), serde_json::Value::Bool(false))]);
        assert!(!Limiter::new(RuntimeConfig::detached(off).unwrap()).enabled());
    }
}
