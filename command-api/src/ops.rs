//! The routes that belong to no domain: the OpenAPI document, health, readiness and metrics.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::ApiState;
use crate::handler::json;

pub async fn openapi() -> Response {
    json(StatusCode::OK, crate::openapi::ApiDoc::openapi())
}

pub async fn healthz() -> Response {
    json(StatusCode::OK, serde_json::json!({"status": "ok"}))
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
    let body = state.inner.http.render(&state.inner.ledger, &projections);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}
