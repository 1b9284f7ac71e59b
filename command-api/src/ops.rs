//! The routes that belong to no domain: the OpenAPI document, health, readiness and metrics.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::ApiState;
use crate::handler::json;

pub async fn openapi() -> Response {
    json(StatusCode::OK, crate::openapi::ApiDoc::openapi())
}

/// A part of the process outside the API that `/healthz` and `/metrics` tell about (the Kafka
/// consumers and their topics): the binary hands them in, so this crate knows none of them.
pub trait Report: Send + Sync + 'static {
    /// Its key in `/healthz`.
    fn name(&self) -> &'static str;
    /// What `/healthz` shows under that key.
    fn health(&self) -> serde_json::Value;
    /// Its lines of the metrics text exposition.
    fn metrics(&self, out: &mut String);
}

/// Alive: 200 while the process serves, with what each reported part says (a missing Kafka
/// topic is news, not death: the process keeps serving and consumes it once it exists).
pub async fn healthz(State(state): State<ApiState>) -> Response {
    let mut body = serde_json::Map::new();
    body.insert("status".into(), "ok".into());
    for report in state.reports.iter() {
        body.insert(report.name().into(), report.health());
    }
    json(StatusCode::OK, serde_json::Value::Object(body))
}

/// Ready when the writer runs and the database answers.
pub async fn readyz(State(state): State<ApiState>) -> Response {
    let db = sqlx::query("SELECT 1").execute(&state.inner.pool).await.is_ok();
    let writer = state.inner.ledger.is_running();
    let status = if db && writer { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    json(status, serde_json::json!({"database": db, "writer": writer}))
}

pub async fn metrics(State(state): State<ApiState>) -> Response {
    let projections = match (state.inner.pool.acquire().await, &state.read) {
        (Ok(mut conn), None) => ledger_store::follow::status(&mut conn).await.unwrap_or_default(),
        (Ok(mut conn), Some(read)) => match read.acquire().await {
            Ok(mut read) => ledger_store::follow::status_with(&mut conn, Some(&mut read)).await.unwrap_or_default(),
            Err(_) => Vec::new(),
        },
        (Err(_), _) => Vec::new(),
    };
    let mut body = state.inner.http.render(&state.inner.ledger, &projections);
    state.auditor.render(&mut body);
    state.inner.wallet.render(&mut body);
    for report in state.reports.iter() {
        report.metrics(&mut body);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}
