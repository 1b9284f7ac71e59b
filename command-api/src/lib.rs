//! The HTTP command API for payment channels (axum, JSON, under `/v1`): accounts, transfers,
//! holds, reversals, batches and the ordered log. Writes go to the single writer; account reads
//! come from its committed view, so they are strongly consistent.

pub mod admin;
pub mod audit;
mod body;
pub mod certificates;
pub mod config;
mod entity;
pub mod error;
mod handler;
pub mod ledger;
mod limit;
mod metrics;
pub mod openapi;
mod ops;
pub mod orders;
pub mod orders_list;
pub mod payouts;
pub mod recon;
pub mod wallet;
pub mod webhooks;
pub mod xlsx;

pub use ops::Report;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use ledger_store::LedgerHandle;
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::{ApiError, ErrorResponse, render};
use crate::metrics::HttpMetrics;
use ledger_store::config::RuntimeConfig;
use ledger_store::keys::KeyStore;

/// Largest request body, except batches.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Largest batch body: 8190 transfers of about 500 bytes.
pub const MAX_BATCH_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct ApiState {
    inner: Arc<Inner>,
    /// The keys certificate CVCs are sealed with; without them activations and authorizations
    /// answer 503.
    cvc_keys: Option<Arc<dyn secrets::KeyProvider>>,
    /// The certificates' audit trail, where the read models run; without it the audit answers 503.
    audit: Option<Arc<dyn certificates::audit::AuditReader>>,
    /// The read models' own database, for their checkpoints in `/metrics`; `None`: the log's.
    read: Option<PgPool>,
    /// Parts of the process `/healthz` and `/metrics` tell about.
    reports: Arc<[Arc<dyn Report>]>,
    /// The audit log, where the read models run; without it `/v1/admin/audit` answers 503.
    audit_log: Option<Arc<dyn audit::AuditLogReader>>,
    /// The orders read model, where the read models run; without it `GET /v1/orders` answers 503.
    orders: Option<Arc<dyn orders_list::OrdersReader>>,
    /// The wallet read model's movements, where the read models run; without it a statement
    /// reads the whole log.
    wallet_movements: Option<Arc<dyn wallet::movements::MovementsReader>>,
    /// Records audit entries (403s, admin actions) and counts them for `/metrics`.
    auditor: ledger_store::audit::Auditor,
    /// The runtime settings in effect in this process.
    config: RuntimeConfig,
    limiter: Arc<limit::Limiter>,
    /// Webhook endpoints and messages; without a secrets key `/v1/webhooks/…` answers 503.
    webhooks: Option<::webhooks::Store>,
    /// The engine's secrets key (stores' callback secrets, requisites' details); without it those
    /// writes answer 503.
    secrets: Option<Arc<dyn secrets::KeyProvider>>,
}

struct Inner {
    ledger: LedgerHandle,
    pool: PgPool,
    keys: KeyStore,
    http: HttpMetrics,
    /// What wallet statements read.
    wallet: wallet::movements::StatementMetrics,
}

impl ApiState {
    pub fn new(ledger: LedgerHandle, pool: PgPool) -> ApiState {
        let auditor = ledger_store::audit::Auditor::new(ledger.clone());
        // Declared defaults only, and what this process commits, until `with_runtime_config`.
        let config = RuntimeConfig::defaults();
        ApiState {
            limiter: Arc::new(limit::Limiter::new(config.clone())),
            config,
            inner: Arc::new(Inner {
                ledger,
                keys: KeyStore::new(pool.clone()),
                pool,
                http: HttpMetrics::default(),
                wallet: Default::default(),
            }),
            cvc_keys: None,
            audit: None,
            read: None,
            reports: Arc::new([]),
            audit_log: None,
            orders: None,
            wallet_movements: None,
            auditor,
            webhooks: None,
            secrets: None,
        }
    }

    /// Answers `GET /v1/admin/audit` from this reader.
    pub fn with_audit_log(mut self, reader: Arc<dyn audit::AuditLogReader>) -> ApiState {
        self.audit_log = Some(reader);
        self
    }

    /// Answers `GET /v1/orders` from this reader.
    pub fn with_orders_reader(mut self, reader: Arc<dyn orders_list::OrdersReader>) -> ApiState {
        self.orders = Some(reader);
        self
    }

    /// Reads wallet statements' movements from this reader up to its checkpoint, and only the
    /// rest from the log.
    pub fn with_wallet_movements(mut self, reader: Arc<dyn wallet::movements::MovementsReader>) -> ApiState {
        self.wallet_movements = Some(reader);
        self
    }

    /// Records audit entries through this auditor (shared with the process's jobs, so
    /// `/metrics` counts them all).
    pub fn with_auditor(mut self, auditor: ledger_store::audit::Auditor) -> ApiState {
        self.auditor = auditor;
        self
    }

    /// The process's auditor.
    pub fn auditor(&self) -> &ledger_store::audit::Auditor {
        &self.auditor
    }

    /// `/healthz` and `/metrics` tell about this part too.
    pub fn with_report(mut self, report: Arc<dyn Report>) -> ApiState {
        let mut reports = self.reports.to_vec();
        reports.push(report);
        self.reports = reports.into();
        self
    }

    /// Reads the runtime settings (the rate limits among them) from this configuration, which
    /// follows the database.
    pub fn with_runtime_config(mut self, config: RuntimeConfig) -> ApiState {
        self.limiter = Arc::new(limit::Limiter::new(config.clone()));
        self.config = config;
        self
    }

    /// Serves `/v1/webhooks/…` from this store.
    pub fn with_webhooks(mut self, store: ::webhooks::Store) -> ApiState {
        self.webhooks = Some(store);
        self
    }

    fn webhooks(&self) -> Result<&::webhooks::Store, ApiError> {
        self.webhooks.as_ref().ok_or(ApiError::WebhooksUnavailable)
    }

    /// The read models keep their checkpoints in this database (`LEDGER_READ_DATABASE_URL`).
    pub fn with_read_database(mut self, read: PgPool) -> ApiState {
        self.read = Some(read);
        self
    }

    /// Answers `GET /v1/certificates/audit` from this reader.
    pub fn with_certificate_audit(mut self, reader: Arc<dyn certificates::audit::AuditReader>) -> ApiState {
        self.audit = Some(reader);
        self
    }

    /// Seals and opens certificate CVCs with these keys.
    pub fn with_cvc_keys(mut self, keys: Arc<dyn secrets::KeyProvider>) -> ApiState {
        self.cvc_keys = Some(keys);
        self
    }

    /// Seals and opens the orders' secrets (stores' callback secrets, requisites' details) with
    /// the engine's secrets key.
    pub fn with_secrets(mut self, keys: Arc<dyn secrets::KeyProvider>) -> ApiState {
        self.secrets = Some(keys);
        self
    }

    fn secrets(&self) -> Result<&dyn secrets::KeyProvider, ApiError> {
        self.secrets.as_deref().ok_or(ApiError::SecretsKeyMissing)
    }

    fn cvc_keys(&self) -> Result<&dyn secrets::KeyProvider, ApiError> {
        self.cvc_keys.as_deref().ok_or(ApiError::CvcKeysMissing)
    }
}

/// The id of one request, in its extensions, its `x-request-id` header and any problem body.
#[derive(Clone, Copy, Debug)]
pub struct RequestId(pub Uuid);

/// The command API's routes: `/v1/…`, `/healthz`, `/readyz`, `/metrics`.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .merge(ledger::router())
        .merge(certificates::router())
        .merge(payouts::router())
        .merge(orders::router())
        .merge(orders_list::router())
        .merge(wallet::router())
        .merge(recon::router())
        .merge(audit::router())
        .merge(admin::router())
        .merge(config::router())
        .merge(webhooks::router())
        .route("/v1/openapi.json", get(ops::openapi))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .fallback(|| async { ApiError::NotFound("route") })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(state.clone(), limit::layer))
        .layer(middleware::from_fn_with_state(state.clone(), envelope))
        .with_state(state)
}

/// Gives every request an id, renders errors as problem documents, and counts responses.
async fn envelope(State(state): State<ApiState>, mut request: Request, next: Next) -> Response {
    let request_id = RequestId(Uuid::new_v4());
    let route = request.extensions().get::<MatchedPath>().cloned();
    request.extensions_mut().insert(request_id);
    let mut response = next.run(request).await;
    if let Some(error) = response.extensions().get::<Arc<ErrorResponse>>().cloned() {
        // The router's Allow header (on a 405) and the rate limit's headers survive the rendering.
        let kept = response.headers().clone();
        response = render(&error.0, request_id.0);
        for name in std::iter::once("allow").chain(limit::HEADERS) {
            if let Some(value) = kept.get(name) {
                response.headers_mut().insert(header::HeaderName::from_static(name), value.clone());
            }
        }
    } else if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        response = render(&ApiError::PayloadTooLarge, request_id.0);
    }
    if let Ok(value) = HeaderValue::from_str(&request_id.0.to_string()) {
        response.headers_mut().insert("x-request-id", value);
    }
    state.inner.http.record(route.as_ref().map_or("unmatched", MatchedPath::as_str), response.status().as_u16());
    response
}

/// A time of the core as RFC 3339 (UTC).
pub(crate) fn rfc3339(t: ledger_core::Timestamp) -> String {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.micros()) * 1000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}
